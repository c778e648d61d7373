"""checkov, a scanner nobody here wrote, over every stage, example and EKS manifest: no finding without a reason.

Skips are written by the construct or chart that owns the resource (``Metadata.checkov.skip`` on CloudFormation
resources, ``checkov.io/skipN`` annotations on Kubernetes objects), each with its reason; see ``make scan``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k8s.synth import build
from tests.conftest import EXAMPLES, STAGES, stage_config, synthesized
from tools.scan import Scan, ci_target, run_checkov, scan_all

BAD_TEMPLATE = {
    "Resources": {
        # versioning off and no reason: a finding nobody explained
        "Uploads": {"Type": "AWS::S3::Bucket", "Properties": {}},
        # a skip written without its reason
        "Logs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"RetentionInDays": 30},
            "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_158"}]}},
        },
    }
}


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> list[Scan]:
    targets = [(name, Path(synthesized(name).assembly.directory), "cloudformation") for name in (*STAGES, *EXAMPLES)]
    for name in EXAMPLES:
        config = stage_config(name)
        if "eks" in config.targets:
            manifests = tmp_path_factory.mktemp(f"{name}-k8s")
            build(config, manifests)
            targets.append((f"{name} manifests", manifests, "kubernetes"))
        targets += ci_target(config, tmp_path_factory.mktemp(f"{name}-ci"))
    assert any(label.endswith(" ci") for label, _, _ in targets), "the services example deploys from CI"
    return scan_all(targets)


def test_every_checkov_finding_is_fixed_or_skipped_with_its_reason(scans: list[Scan]) -> None:
    assert {scan.framework for scan in scans} == {"cloudformation", "kubernetes"}
    # The <app>-ci stack is small (a provider and roles); every other target has over 100 passing checks.
    assert all(scan.passed > (5 if scan.label.endswith(" ci") else 100) for scan in scans), [
        (scan.label, scan.passed, scan.error) for scan in scans
    ]
    assert [line for scan in scans for line in scan.problems()] == []


def test_real_findings_are_fixed_not_skipped(scans: list[Scan]) -> None:
    """The findings the issue called real must not reappear as skips: they are fixed in the templates."""
    fixed = {"CKV_AWS_58", "CKV_AWS_118", "CKV_AWS_21", "CKV_K8S_31", "CKV_K8S_38"}
    assert sorted({f.check for scan in scans for f in scan.skipped} & fixed) == []


def test_an_unexplained_finding_and_a_skip_without_reason_fail_the_scan(tmp_path: Path) -> None:
    (tmp_path / "bad.template.json").write_text(json.dumps(BAD_TEMPLATE), encoding="utf-8")
    problems = run_checkov("bad", tmp_path, "cloudformation").problems()
    assert any("CKV_AWS_21 AWS::S3::Bucket.Uploads" in line for line in problems)
    assert any("CKV_AWS_158 AWS::Logs::LogGroup.Logs is skipped without a reason" in line for line in problems)
