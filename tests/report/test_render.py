"""Tests of the rendered review (``REVIEW.md`` snapshot, JSON twin, determinism) and of the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from report.__main__ import main
from report.assembly import load_assembly, load_k8s
from report.extract import Edge, build_report
from report.render import code, mermaid, render_json, render_markdown

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
ASSET_HASH = re.compile(r"[0-9a-f]{64}")
INVENTORY_SECTIONS = [
    "Summary",
    "Stacks",
    "Services",
    "Reachability",
    "Secrets",
    "Health checks",
    "Alarms",
    "IAM",
    "Stateful resources",
]


class MarkdownSnapshot(SingleFileSnapshotExtension):
    """Stores the snapshot as a readable ``.md`` file."""

    _write_mode = WriteMode.TEXT
    file_extension = "md"


def run_report(out: Path, *extra: str) -> tuple[str, str]:
    """Run the CLI on the fixture assembly (with k8s manifests) and return both outputs."""
    args = ["--out", str(out), "--k8s", str(FIXTURES / "k8s"), *extra, str(FIXTURES / "assembly")]
    assert main(args) == 0
    return (out / "REVIEW.md").read_text(encoding="utf-8"), (out / "review.json").read_text(encoding="utf-8")


def test_review_md_matches_snapshot(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    markdown, _ = run_report(tmp_path)
    assert markdown == snapshot.use_extension(MarkdownSnapshot)


def test_with_a_base_the_page_says_what_changes_first_and_keeps_the_inventory(tmp_path: Path) -> None:
    markdown, text = run_report(tmp_path, "--base", str(FIXTURES / "base"))
    sections = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert sections[0] == "Replacements and deletions"
    inventory = sections.index("Inventory after this change")
    assert sections[inventory + 1 :] == INVENTORY_SECTIONS
    assert "<details>" in markdown.split("## Inventory after this change", 1)[1]
    review = json.loads(text)
    assert review["compared"] is True
    assert set(review["inventory"]) >= {"reachability", "iam", "stateful"}


def test_review_md_has_one_section_per_topic(tmp_path: Path) -> None:
    markdown, _ = run_report(tmp_path)
    sections = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert sections == INVENTORY_SECTIONS
    assert "```mermaid\nflowchart LR\n" in markdown


def test_json_twin_has_every_section_and_the_same_summary(tmp_path: Path) -> None:
    _, text = run_report(tmp_path)
    review = json.loads(text)
    assert sorted(review) == [
        "alarms",
        "health_checks",
        "iam",
        "reachability",
        "routes",
        "secrets",
        "services",
        "stacks",
        "stateful",
        "summary",
    ]
    assert review["summary"]["internet_facing_ingress"] == 2
    assert [edge["internet"] for edge in review["reachability"]].count(True) == 2
    assert {"source", "destination", "protocol", "ports", "stack"} <= set(review["reachability"][0])


def test_output_is_deterministic(tmp_path: Path) -> None:
    first = run_report(tmp_path / "one")
    second = run_report(tmp_path / "two")
    assert first == second
    stacks = load_assembly(FIXTURES / "assembly")
    k8s = load_k8s(FIXTURES / "k8s")
    forward = build_report(stacks, k8s)
    backward = build_report(list(reversed(stacks)), list(reversed(k8s)))
    assert render_markdown(forward) == render_markdown(backward)
    assert render_json(forward) == render_json(backward)


def test_asset_hashes_are_scrubbed(tmp_path: Path) -> None:
    markdown, text = run_report(tmp_path)
    assert not ASSET_HASH.search(markdown)
    assert not ASSET_HASH.search(text)
    assert "asset.<asset-hash>/healthcheck.sh" in text


def test_missing_cloud_assembly_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "cdk.out"
    result = subprocess.run(
        [sys.executable, "-m", "report", str(missing)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr == f"report: no cloud assembly at {missing} — run 'make synth' first\n"
    assert result.stdout == ""


def test_defaults_read_cdk_out_and_k8s_dist_only_for_an_eks_assembly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(FIXTURES / "assembly", tmp_path / "cdk.out")
    shutil.copytree(FIXTURES / "k8s", tmp_path / "k8s" / "dist")
    monkeypatch.chdir(tmp_path)

    def secret_sources() -> set[str]:
        assert main([]) == 0
        review = json.loads((tmp_path / "cdk.out" / "review.json").read_text(encoding="utf-8"))
        assert (tmp_path / "cdk.out" / "REVIEW.md").is_file()
        return {use["source"] for use in review["secrets"]}

    assert "ExternalSecret" not in secret_sources()  # no EKS stack: the manifests are not this stage's
    template_path = next((tmp_path / "cdk.out").rglob("*.template.json"))
    template = json.loads(template_path.read_text(encoding="utf-8"))
    template["Resources"]["Manifest"] = {"Type": "Custom::AWSCDK-EKS-KubernetesResource", "Properties": {}}
    template_path.write_text(json.dumps(template), encoding="utf-8")
    assert "ExternalSecret" in secret_sources()


def test_missing_base_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base", str(tmp_path / "nope"), "--out", str(tmp_path), str(FIXTURES / "assembly")]) == 2
    assert capsys.readouterr().err == f"report: no base cloud assembly at {tmp_path / 'nope'}\n"


def test_mermaid_node_ids_are_sanitized_and_unique() -> None:
    edges = [
        Edge("0.0.0.0/0", "web tasks", "tcp", "443", "ingress", "App", "Web", "", True),
        Edge("web-tasks", 'say "hi"', "tcp", "80", "egress", "App", "Web", "", False),
    ]
    lines = mermaid(edges)
    nodes = dict(re.findall(r'^  (\S+)\["(.*)"\]$', "\n".join(lines), flags=re.MULTILINE))
    assert all(re.fullmatch(r"n_[A-Za-z0-9_]+", node) for node in nodes)
    assert sorted(nodes.values()) == ["0.0.0.0/0", "say #quot;hi#quot;", "web tasks", "web-tasks"]
    assert "  class n_0_0_0_0_0 internet" in lines


def test_table_cells_escape_pipes() -> None:
    assert code("curl -f http://localhost/ || exit 1") == r"`curl -f http://localhost/ \|\| exit 1`"
    assert code("") == "—"


def test_the_nist_report_of_make_scan_is_listed_with_its_reasons(tmp_path: Path) -> None:
    assembly = tmp_path / "cdk.out"
    shutil.copytree(FIXTURES / "assembly", assembly)
    findings = [
        {"rule": "ALBWAFEnabled", "description": "no WAF", "resources": ["a"], "reason": ""},
        {"rule": "LambdaDLQ", "description": "no DLQ", "resources": ["b", "c"], "reason": "deploy-time helper"},
    ]
    (assembly / "nist-800-53-r5.json").write_text(json.dumps(findings), encoding="utf-8")
    assert main([str(assembly)]) == 0
    markdown = (assembly / "REVIEW.md").read_text(encoding="utf-8")
    section = markdown.split("## NIST 800-53 R5", 1)[1]
    assert "| `ALBWAFEnabled` | no WAF | 1 | **open** |" in section
    assert "| `LambdaDLQ` | no DLQ | 2 | deploy-time helper |" in section
