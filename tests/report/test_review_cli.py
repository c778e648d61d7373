"""`make review` end to end (a git worktree of the base, both sides synthesized in parallel, pages and comment)
and the one-process synthesis of several stages, also for a checkout whose app.py predates it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from report.render_review import MARKER
from report.review import refusal_lines

ROOT = Path(__file__).resolve().parents[2]


def test_make_review_against_head_writes_a_page_per_stage_and_one_comment(tmp_path: Path) -> None:
    out, cdk_out = tmp_path / "review", tmp_path / "cdk.out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "report.review",
            "--base",
            "HEAD",
            "--stage",
            "dev",
            "--out",
            str(out),
            "--cdk-out",
            str(cdk_out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    comment = (out / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(MARKER) and "### dev" in comment
    page = json.loads((out / "dev" / "review.json").read_text(encoding="utf-8"))
    assert page["compared"] is True and page["stage"] == "dev"
    assert (cdk_out / "dev" / "manifest.json").is_file()  # the working tree's assembly stays for deploy/report
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "review-base-" not in worktrees.stdout  # the base checkout is removed again


def test_an_unknown_ref_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "report.review", "--base", "no-such-ref", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("[config] review: git rev-parse --verify no-such-ref^{commit}:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_refusal_lines_are_taken_from_the_synthesis_log() -> None:
    log = "\n".join(
        [
            "synthesizing shop-dev in 000000000000/eu-west-1 ...",
            "cannot synthesize: shop-dev: 1 problem(s):",
            "  [db-public] database.publicly_accessible: true — keep the database private",
            "==> stage dev: refused (lines above)",
        ]
    )
    assert refusal_lines(log) == [
        "cannot synthesize: shop-dev: 1 problem(s):",
        "  [db-public] database.publicly_accessible: true — keep the database private",
    ]


def test_a_checkout_whose_main_builds_its_own_app_is_synthesized_too(tmp_path: Path) -> None:
    """A base ref from before `main(app)` existed: the runner hands it the App through the module's `cdk` name."""
    (tmp_path / "config" / "stages").mkdir(parents=True)
    (tmp_path / "config" / "stages" / "tiny.yaml").write_text("stage: tiny\n", encoding="utf-8")
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python app.py", "context": {}}), encoding="utf-8")
    (tmp_path / "app.py").write_text(
        "import aws_cdk as cdk\n\n\n"
        "def main():\n"
        "    app = cdk.App()\n"
        "    cdk.Stack(app, f\"Tiny-{app.node.try_get_context('stage')}\")\n"
        "    app.synth()\n"
        "    return 0\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "synth_stages.py"), "--out", str(tmp_path / "out"), "all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "tiny" / "Tiny-tiny.template.json").is_file()
    assert "1 stage(s)" in result.stderr
