"""The review report of every real stage, snapshotted: a change to what a reviewer reads is itself reviewed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from constructs.guards import register_guards
from report.assembly import load_assembly
from report.compare import review
from report.extract import build_report
from report.render import render_markdown
from report.render_review import StagePage, environment, render_page
from stacks import build_stacks
from tests.conftest import STAGES, new_app, stage_config, synthesized


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


def test_a_real_review_of_two_configurations(snapshot) -> None:  # type: ignore[no-untyped-def]
    """dev as it is against dev with a renamed database and a new image: the database replacement leads the page
    (with its cause), the image shows as image changes only, and no token or logical ID is left."""
    base_dir = Path(synthesized("dev").assembly.directory)
    config = stage_config("dev")
    head_config = stage_config(
        "dev",
        image=config.image.replace(":1.0.0", ":1.1.0"),
        database={**config.database.model_dump(), "database_name": "shop2"},
    )
    app = new_app()
    build_stacks(app, head_config)
    register_guards(app, head_config)
    head_dir = Path(app.synth().directory)
    base, head = load_assembly(base_dir), load_assembly(head_dir)
    changes = review(build_report(base), build_report(head), base, head)
    first = changes.loud[0]
    assert (first.name, first.action, first.certainty, first.cause) == (
        "PostgreSQL (shop-dev-data)",
        "replace",
        "would",
        "DBName (create-only)",
    )
    assert {row.what for row in changes.runtime} == {"image"}
    page = StagePage("dev", "base", "head", environment(head), changes, "", "{}")
    markdown = render_page(page)
    assert "GetStackOutput(" not in markdown and "ImportValue(" not in markdown
    assert markdown == snapshot
