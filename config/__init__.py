"""Load and validate a stage file: ``load_config(stage=...)`` or ``load_config(path=...)``.

Bad input raises ``ConfigError`` holding one line per problem, ``[<id or config>] <field.path>: <value> — <fix>``;
``app.py`` prints those lines and exits non-zero without a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.schema import PLACEHOLDER_ACCOUNT, AppConfig, SecretRef

__all__ = ["PLACEHOLDER_ACCOUNT", "AppConfig", "ConfigError", "SecretRef", "load_config", "resolve_account"]

STAGES_DIR = Path(__file__).parent / "stages"
_NOT_SET = object()
_ID = re.compile(r"^\[(?P<id>[a-z0-9-]+)\]\s*(?P<text>.*)$", re.DOTALL)


class ConfigError(Exception):
    """A stage file that cannot be used; ``problems`` holds one formatted line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.source = source
        self.problems = problems


def load_config(stage: str | None = None, *, path: str | Path | None = None) -> AppConfig:
    """Read ``config/stages/<stage>.yaml`` (or ``path``) and validate it once."""
    if path is None:
        if stage is None or not re.fullmatch(r"[a-z0-9-]+", stage):
            raise ConfigError("stage", [f"[config] stage: {stage!r} — pass -c stage=dev|staging|prod"])
        path = STAGES_DIR / f"{stage}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in STAGES_DIR.glob("*.yaml")))
            raise ConfigError(str(path), [f"[config] stage: {stage!r} — no file {path}; known stages: {known}"])
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(source, [f"[config] {source}: cannot read — {error.strerror}"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(source, [f"[config] {source}: {where} — invalid YAML: {problem}"]) from None
    if not isinstance(raw, Mapping):
        raise ConfigError(source, [f"[config] {source}: {type(raw).__name__} — the file must be a YAML mapping"])
    if stage is not None and raw.get("stage") not in (None, stage):
        raise ConfigError(source, [f"[config] stage: {raw.get('stage')!r} — file {source} is for stage {stage!r}"])
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(source, _format(error)) from None


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
        loc = [str(part) for part in item["loc"] if part not in ("plain", "secret")]
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "value_error" and message.startswith("@"):
            # Cross-field checks report several problems, each as "@field.path@ [id] text".
            for part in message.split("\n"):
                field, _, text = part[1:].partition("@ ")
                lines.append(_line(text, field, _lookup(item["input"], field)))
            continue
        path = ".".join(loc) or "<root>"
        value = item.get("input")
        if item["type"] == "extra_forbidden":
            known = ", ".join(_known_keys(item["loc"][:-1]))
            lines.append(f"[config] {path}: {_show(value)} — unknown key; remove it (known keys here: {known})")
        elif item["type"] == "missing":
            lines.append(f"[config] {path}: missing — this field is required")
        else:
            lines.append(_line(message, path, value))
    return lines


def _line(message: str, path: str, value: Any) -> str:
    match = _ID.match(message)
    rule, text = (match["id"], match["text"]) if match else ("config", message)
    return f"[{rule}] {path}: {_show(value)} — {text}"


def _show(value: Any) -> str:
    if value is _NOT_SET:
        return "not set"
    if isinstance(value, Mapping | list):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return repr(value)


def _lookup(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(data, Mapping) or key not in data:
            return _NOT_SET
        data = data[key]
    return data


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] | None = AppConfig
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return []
        annotation = model.model_fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return sorted(model.model_fields) if model else []
