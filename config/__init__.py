"""Load and validate a stage file: ``load_config(stage=...)`` or ``load_config(path=...)``.

Bad input raises ``ConfigError`` holding one line per problem, ``[<id or config>] <field.path>: <value> — <fix>``;
``app.py`` prints those lines and exits non-zero without a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.errors import describe
from config.loader import InputRefused, read_stage_file
from config.previews import PREVIEW_HINT, PreviewRefused, account_problems, is_preview, preview_data
from config.redact import show, unprintable
from config.schema import PLACEHOLDER_ACCOUNT, AppConfig, SecretRef

__all__ = ["PLACEHOLDER_ACCOUNT", "AppConfig", "ConfigError", "SecretRef", "load_config", "resolve_account"]

STAGES_DIR = Path(__file__).parent / "stages"
_NOT_SET = object()
MAX_LINE = 500  # one refusal is one readable line
SETTING_TAGS = ("plain", "secret", "from")  # config.schema.SettingValue's discriminator tags
_ID = re.compile(r"^\[(?P<id>[a-z0-9-]+)\]\s*(?P<text>.*)$", re.DOTALL)


class ConfigError(Exception):
    """A stage file that cannot be used; ``problems`` holds one formatted line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.source = source
        self.problems = problems

    def print(self, what: str) -> None:
        """To stderr, for a command line tool: ``<what>: <file> has N problem(s):`` then one indented line each."""
        print(f"{what}: {self.source} has {len(self.problems)} problem(s):", file=sys.stderr)
        for line in self.problems:
            print(f"  {line}", file=sys.stderr)


def load_config(stage: str | None = None, *, path: str | Path | None = None) -> AppConfig:
    """Read ``config/stages/<stage>.yaml`` (or ``path``) and validate it once; raise ``ConfigError`` otherwise.

    A preview name (``pr-123``) without its own stage file is made from ``config/preview.yaml`` (config.previews)."""
    if path is None:
        if stage is None or not re.fullmatch(r"[a-z0-9-]{1,30}", stage):
            raise ConfigError(
                "stage",
                [f"[config] stage: {show(stage)} — pass -c stage=dev|staging|prod|pr-<number> (or -c config=PATH)"],
            )
        path = STAGES_DIR / f"{stage}.yaml"
        if not path.exists() and is_preview(stage):
            try:
                source, raw = preview_data(stage)
            except PreviewRefused as refused:
                raise ConfigError(refused.source, refused.problems) from None
            return _validate(source, raw)
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in STAGES_DIR.glob("*.yaml")))
            raise ConfigError(
                str(path), [f"[config] stage: {stage!r} — no file {path}; use one of: {known}, or {PREVIEW_HINT}"]
            )
    source = str(path)
    try:
        raw = read_stage_file(Path(path))
    except InputRefused as refused:
        raise ConfigError(source, [refused.line]) from None
    except OSError as error:
        raise ConfigError(source, [f"[config] {source}: cannot read — {error.strerror}; check the path"]) from None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            source, [f"[config] {source}: {type(raw).__name__} — the file must be a YAML mapping (key: value lines)"]
        )
    if stage is not None and raw.get("stage") not in (None, stage):
        raise ConfigError(
            source, [f"[config] stage: {show(raw.get('stage'))} — file {source} is for another stage than {stage!r}"]
        )
    return _validate(source, raw)


def _validate(source: str, raw: Mapping[str, Any]) -> AppConfig:
    """The schema, then the rule that needs another stage file: a preview is not in prod's account."""
    try:
        config = AppConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(source, _format(error)) from None
    problems = account_problems(config.stage, config.account) if is_preview(config.stage) else []
    if problems:
        raise ConfigError(source, problems)
    return config


def resolve_account(config: AppConfig, environ: Mapping[str, str] = os.environ) -> tuple[AppConfig, str | None]:
    """Fill ``account`` from CDK_DEFAULT_ACCOUNT, or the offline placeholder; return a notice when it fell back."""
    if config.account:
        return config, None
    account = environ.get("CDK_DEFAULT_ACCOUNT") or ""
    if re.fullmatch(r"\d{12}", account):
        return config.model_copy(update={"account": account}), f"account: not set, using CDK_DEFAULT_ACCOUNT={account}"
    notice = (
        f"account: not set and no credentials; synthesizing for placeholder account {PLACEHOLDER_ACCOUNT}. "
        "Set 'account:' in the stage file (or run with credentials) before 'cdk deploy'."
    )
    return config.model_copy(update={"account": PLACEHOLDER_ACCOUNT}), notice


def _format(error: ValidationError) -> list[str]:
    lines: list[str] = []
    for item in error.errors(include_url=False):
        raw_loc = list(item["loc"])
        if len(raw_loc) > 2 and raw_loc[0] == "settings" and raw_loc[2] in SETTING_TAGS:
            del raw_loc[2]  # the discriminator's tag (plain / secret / from), not a key of the file
        loc = [_key(part) for part in raw_loc]
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "value_error" and message.startswith("@"):
            # Checks that report several problems send each as "@relative.path@ [id] text".
            for part in message.split("\n"):
                relative, _, text = part[1:].partition("@ ")
                path = ".".join([*loc, relative] if relative else loc) or "<root>"
                lines.append(_line(text, path, _lookup(item["input"], relative) if relative else item["input"]))
            continue
        path = ".".join(loc) or "<root>"
        if item["type"] == "value_error":
            lines.append(_line(message, path, item.get("input")))
        else:
            rule, fix = describe(item, loc)
            lines.append(f"[{rule}] {path}: {_show(item.get('input', _NOT_SET), path, item['type'])} — {fix}")
    return lines


def _key(part: Any) -> str:
    """A path segment as printed: plain keys as they are, anything else (newlines, 5 KB keys) shown safely."""
    text = str(part)
    return text if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", text) else show(text)


def _line(message: str, path: str, value: Any) -> str:
    match = _ID.match(message)
    rule, text = (match["id"], match["text"]) if match else ("config", message)
    shown = _show(value, path)
    # A validator may quote the value (or an item of it) in its fix: never print it whole, never print a secret.
    for raw, replacement in unprintable(value, path.rsplit(".", 1)[-1]):
        text = text.replace(repr(raw), replacement).replace(raw, replacement)
    line = f"[{rule}] {path}: {shown} — {text}"
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def _show(value: Any, path: str, error_type: str = "") -> str:
    if value is _NOT_SET or error_type == "missing":
        return "not set"
    return show(value, path.rsplit(".", 1)[-1])


def _lookup(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        elif isinstance(data, Mapping) and key in data:
            data = data[key]
        else:
            return _NOT_SET
    return data
