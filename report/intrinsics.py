"""Compact, readable rendering of CloudFormation values and intrinsic functions.

``fmt`` turns any template value into a short string for a review table:
``{"Ref": "X"}`` becomes ``Ref:X``, ``{"Fn::GetAtt": ["X", "Arn"]}`` becomes ``X.Arn`` and
``Fn::Join`` / ``Fn::Sub`` are flattened with embedded tokens shown as ``${X.Attr}``.
Asset hashes (64 hex digits) are scrubbed so that the output does not churn on every build.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ASSET_HASH = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")


def scrub(text: str) -> str:
    """Replace every 64-hex-digit asset hash in ``text`` with ``<asset-hash>``."""
    return ASSET_HASH.sub("<asset-hash>", text)


def intrinsic(value: Any) -> tuple[str, Any] | None:
    """Return ``(function name, argument)`` when ``value`` is a CloudFormation intrinsic."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" or key.startswith("Fn::"):
            return str(key), arg
    return None


def getatt_name(arg: Any) -> str:
    """Render the argument of ``Fn::GetAtt`` (list or dotted string) as ``X.Attr``."""
    if isinstance(arg, list):
        return ".".join(fmt(part) for part in arg)
    return fmt(arg)


def fmt(value: Any) -> str:
    """Render any template value compactly; intrinsics become ``Ref:X``, ``X.Attr``, flattened strings."""
    fn = intrinsic(value)
    if fn is not None:
        name, arg = fn
        if name == "Ref":
            return f"Ref:{fmt(arg)}"
        if name == "Fn::GetAtt":
            return getatt_name(arg)
        if name == "Fn::ImportValue":
            return f"Import:{fmt(arg)}"
        if name in ("Fn::Join", "Fn::Sub"):
            return flatten(value)
        args = arg if isinstance(arg, list) else [arg]
        return f"{name.removeprefix('Fn::')}({', '.join(fmt(a) for a in args)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {fmt(val)}" for key, val in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return scrub(str(value))


def token(value: Any) -> str:
    """Render ``value`` as it would appear inside a flattened string: literals as-is, tokens as ``${...}``."""
    fn = intrinsic(value)
    if fn is None:
        return fmt(value)
    name, arg = fn
    if name == "Ref":
        return "${" + fmt(arg) + "}"
    if name in ("Fn::Join", "Fn::Sub"):
        return flatten(value)
    return "${" + fmt(value) + "}"


def flatten(value: Any) -> str:
    """Flatten ``Fn::Join`` / ``Fn::Sub`` into one string; anything else is rendered with :func:`fmt`."""
    fn = intrinsic(value)
    if fn is None:
        return fmt(value)
    name, arg = fn
    if name == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
        return scrub(str(arg[0]).join(token(part) for part in arg[1]))
    if name == "Fn::Sub":
        return sub_string(arg, token)
    return fmt(value)


def sub_string(arg: Any, render: Callable[[Any], str], free: Callable[[str], str] | None = None) -> str:
    """Render an ``Fn::Sub`` argument.

    ``${Var}`` placeholders bound in the variable map become ``render(value)``; free ones (resource
    or pseudo-parameter names) become ``free(name)`` and are kept verbatim when ``free`` is None.
    """
    if isinstance(arg, list) and arg:
        template, variables = str(arg[0]), arg[1] if len(arg) > 1 and isinstance(arg[1], dict) else {}
    else:
        template, variables = str(arg), {}

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in variables:
            return render(variables[key])
        return free(key) if free is not None else match.group(0)

    return scrub(re.sub(r"\$\{([^}!]+)\}", replace, template))


def as_list(value: Any) -> list[Any]:
    """``value`` as a list: ``None`` -> ``[]``, a scalar -> ``[value]``."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def texts(value: Any) -> tuple[str, ...]:
    """Each item of a string-or-list property, rendered with :func:`fmt`."""
    return tuple(fmt(item) for item in as_list(value))


def number(value: Any, unit: str = "") -> str:
    """A numeric setting with its unit (``30s``); ``""`` when unset."""
    return f"{fmt(value)}{unit}" if value is not None else ""
