"""The review report of every real stage, snapshotted: a change to what a reviewer reads is itself reviewed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from report.assembly import load_assembly
from report.extract import build_report
from report.render import render_markdown
from tests.conftest import STAGES, synthesized


@pytest.mark.parametrize("stage", STAGES)
def test_stage_report_snapshot(stage: str, snapshot) -> None:  # type: ignore[no-untyped-def]
    s = synthesized(stage)
    markdown = render_markdown(build_report(load_assembly(Path(s.assembly.directory)), []))
    assert "0.0.0.0/0" in markdown  # the ALB's public listener is flagged as internet-facing
    assert markdown == snapshot


@pytest.mark.parametrize("stage", STAGES)
def test_stage_report_names_resources_not_tokens(stage: str) -> None:
    """Cross-stack references and logical IDs are resolved to what a reviewer calls the resource."""
    s = synthesized(stage)
    markdown = render_markdown(build_report(load_assembly(Path(s.assembly.directory)), []))
    assert "GetStackOutput(" not in markdown and "ImportValue(" not in markdown and "Import:" not in markdown
    # a logical ID is a construct path squashed, with an 8-hex-digit hash: none may stand alone as a name
    assert re.findall(r"`(?:[\w-]+/)?[A-Za-z][A-Za-z0-9]*[0-9A-F]{8}(?: \(inline\))?`", markdown) == []
    assert "PostgreSQL (shop-" in markdown and "Redis (shop-" in markdown
