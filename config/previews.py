"""Preview stages: ``pr-<number>`` (e.g. ``pr-123``), made from ``config/preview.yaml`` instead of a stage file.

``config/preview.yaml`` names a ``base`` stage file (``config/stages/<base>.yaml``) and ``overrides`` deep-merged
onto it (mappings merge key by key; lists and plain values replace). ``load_config("pr-123")`` uses it when
``config/stages/pr-123.yaml`` does not exist: base + overrides + ``stage: pr-123``, then the schema as for every
stage. A preview behaves like dev wherever the code tells stages apart (HTTP allowed, no prod-only rules, data
deleted with the stage); the one difference: it must name its ``account``, and that account is not the one of
``config/stages/prod.yaml`` (preview-in-prod-account) — a preview is made and destroyed per pull request, so it
never shares an account with customer data.

This module imports nothing from ``config/__init__`` (``config.schema`` imports it for the stage name check).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.loader import InputRefused, read_stage_file
from config.redact import show

CONFIG_DIR = Path(__file__).parent
PREVIEW_FILE = CONFIG_DIR / "preview.yaml"
STAGES_DIR = CONFIG_DIR / "stages"
STAGE_NAMES = ("dev", "staging", "prod")
# pr-<pull request number>: no leading zero (pr-7 and pr-07 would be two stages of one pull request), at most
# 6 digits: <app>-pr-999999-<purpose> stays 2 characters longer than <app>-staging-<purpose> (names with limits).
PREVIEW_NAME = re.compile(r"pr-[1-9][0-9]{0,5}")
PREVIEW_HINT = "a preview name pr-<number> (the pull request's, 1 to 6 digits, no leading zero: pr-123)"
RULE = "preview-in-prod-account"
PREVIEW_KEYS = ("base", "overrides")


class PreviewRefused(Exception):
    """The preview cannot be made: ``source`` names the preview file and its base, ``problems`` one line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.source = source
        self.problems = problems


def is_preview(stage: object) -> bool:
    return isinstance(stage, str) and PREVIEW_NAME.fullmatch(stage) is not None


def stage_name(value: str) -> str:
    """The schema's check of ``stage``: dev, staging, prod or a preview name."""
    if value in STAGE_NAMES or is_preview(value):
        return value
    raise ValueError(f"[config] use one of {', '.join(STAGE_NAMES)} or {PREVIEW_HINT}")


def preview_source(stage: str, preview_file: Path, base: str | None = None) -> str:
    where = f"{preview_file} (base config/stages/{base}.yaml)" if base else str(preview_file)
    return f"{where} as stage {stage}"


def preview_data(stage: str, preview_file: Path | None = None, stages_dir: Path | None = None) -> tuple[str, Any]:
    """(source, raw stage data) of preview ``stage``: the base stage file with the overrides and ``stage``
    applied, not yet validated; raises ``PreviewRefused`` when the preview file or its base cannot be used."""
    preview_file, stages_dir = preview_file or PREVIEW_FILE, stages_dir or STAGES_DIR
    source = preview_source(stage, preview_file)
    spec = _read(preview_file, source)
    if not isinstance(spec, Mapping):
        raise PreviewRefused(
            source, [f"[config] {preview_file}: {type(spec).__name__} — write base: <stage> and overrides: {{...}}"]
        )
    problems = [
        f"[config] {key}: in {preview_file} — unknown key; remove it (known keys here: {', '.join(PREVIEW_KEYS)})"
        for key in spec
        if key not in PREVIEW_KEYS
    ]
    base = spec.get("base")
    known = sorted(path.stem for path in stages_dir.glob("*.yaml") if not is_preview(path.stem))
    if base not in known:
        problems.append(
            f"[config] base: {show(base)} in {preview_file} — name the stage file a preview starts from, one of: "
            f"{', '.join(known)}"
        )
    overrides = spec.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        problems.append(f"[config] overrides: in {preview_file} — write a mapping of stage-file keys")
    elif "stage" in overrides:
        problems.append(
            f"[config] overrides.stage: in {preview_file} — the stage is the preview's name ({stage}); remove the key"
        )
    if problems:
        raise PreviewRefused(source, problems)
    source = preview_source(stage, preview_file, base)
    raw = _read(stages_dir / f"{base}.yaml", source)
    if not isinstance(raw, Mapping):
        raise PreviewRefused(source, [f"[config] config/stages/{base}.yaml: not a mapping — fix the base stage file"])
    return source, {**merge(raw, overrides), "stage": stage}


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` deep-merged onto ``base``: mappings key by key, anything else (lists too) replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def account_problems(stage: str, account: str | None, prod_file: Path | None = None) -> list[str]:
    """preview-in-prod-account: a preview names its account, and it is not production's."""
    prod_file = prod_file or STAGES_DIR / "prod.yaml"
    fix = (
        f'a preview ({stage}) deploys to one named account that is not prod\'s; set account: "<12-digit id>" of a '
        "sandbox account in the overrides of config/preview.yaml (or in the preview's own stage file)"
    )
    if account is None:
        return [f"[{RULE}] account: not set — {fix}"]
    if not prod_file.is_file():
        return []
    try:
        prod = read_stage_file(prod_file)
    except (InputRefused, OSError):
        return [
            f"[{RULE}] account: {show(account)} — cannot read {prod_file} to compare with prod's account; fix that file"
        ]
    prod_account = prod.get("account") if isinstance(prod, Mapping) else None
    if str(prod_account) == account:
        return [f"[{RULE}] account: {show(account)} — the account of prod ({prod_file}); {fix}"]
    return []


def _read(path: Path, source: str) -> Any:
    try:
        return read_stage_file(path)
    except InputRefused as refused:
        raise PreviewRefused(source, [refused.line]) from None
    except OSError as error:
        raise PreviewRefused(source, [f"[config] {path}: cannot read — {error.strerror}; check the path"]) from None
