"""One reviewed JSON snapshot per stack per stage (asset hashes scrubbed). Re-record with `make snapshots`."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import EXAMPLES, STAGES, synthesized

ASSET_HASH = re.compile(r"[0-9a-f]{64}")


def scrub(template: dict[str, Any]) -> Any:
    """Asset hashes change with any byte of an asset; construct paths repeat the logical IDs (and are named in
    the review report, which has its own snapshots); the reviewable content is everything else."""
    clean = json.loads(ASSET_HASH.sub("<asset-hash>", json.dumps(template)))
    for resource in clean.get("Resources", {}).values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict):
            metadata.pop("aws:cdk:path", None)
            if not metadata:
                del resource["Metadata"]
    return clean


@pytest.fixture
def snapshot_json(snapshot):  # type: ignore[no-untyped-def]
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("stage", [*STAGES, *EXAMPLES])
@pytest.mark.parametrize("purpose", ["network", "data", "resources", "ecs", "eb"])
def test_template_snapshot(stage: str, purpose: str, snapshot_json) -> None:  # type: ignore[no-untyped-def]
    s = synthesized(stage)
    stack = getattr(s.stacks, purpose)
    if stack is None:
        pytest.skip(f"stage {stage} has no {purpose} stack")
    assert scrub(s.template(stack)) == snapshot_json
