"""The review report of every real stage, snapshotted: a change to what a reviewer reads is itself reviewed."""

from __future__ import annotations

from pathlib import Path

import pytest

from report.assembly import load_assembly
from report.extract import build_report
from report.render import render_markdown
from tests.conftest import STAGES, synthesized


@pytest.mark.parametrize("stage", STAGES)
def test_stage_report_snapshot(stage: str, snapshot) -> None:  # type: ignore[no-untyped-def]
    s = synthesized(stage)
    markdown = render_markdown(build_report(load_assembly(Path(s.assembly.directory)), [], None))
    assert "0.0.0.0/0" in markdown  # the ALB's public listener is flagged as internet-facing
    assert markdown == snapshot
