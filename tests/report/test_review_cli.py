"""`make review` end to end (a git worktree of the base, both sides synthesized in parallel, pages and comment)
and the one-process synthesis of several stages, also for a checkout whose app.py predates it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from report.render_review import MARKER
from report.review import refusal_lines, write

ROOT = Path(__file__).resolve().parents[2]


def _checkout_with_two_commits(root: Path) -> None:
    """This repository's files (as in the working tree) as a fresh git repository, then one more commit that
    renames the dev database and bumps the image: a real two-commit review, independent of local state."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file() and not name.startswith(("tests/", "k8s/dist/")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    env = {**os.environ, "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    identity = ["-c", "user.name=review", "-c", "user.email=review@example.com", "-c", "commit.gpgsign=false"]

    def commit(message: str) -> None:
        subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
        subprocess.run(["git", *identity, "commit", "-qm", message], cwd=root, check=True, env=env)

    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    commit("base")
    stage = root / "config" / "stages" / "dev.yaml"
    text = stage.read_text(encoding="utf-8")
    text = text.replace("shop-api:1.0.0", "shop-api:1.1.0").replace(
        "database:\n", "database:\n  database_name: shop2\n"
    )
    stage.write_text(text, encoding="utf-8")
    commit("rename the database, new image")


def test_make_review_of_two_commits(tmp_path: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    """Both commits synthesized in parallel from a git worktree; the database replacement leads with its cause,
    the image bump is only image rows, no token is left, and the base checkout is removed again."""
    checkout = tmp_path / "repo"
    _checkout_with_two_commits(checkout)
    result = subprocess.run(
        [sys.executable, "-m", "report.review", "--base", "HEAD~1", "--stage", "dev"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = checkout / "cdk.out" / "review"
    page = json.loads((out / "dev" / "review.json").read_text(encoding="utf-8"))
    assert page["compared"] is True
    first = page["resources"][0]
    assert (first["name"], first["action"], first["certainty"], first["cause"]) == (
        "PostgreSQL (shop-dev-data)",
        "replace",
        "would",
        "DBName (create-only)",
    )
    # The database name is part of how DATABASE_URL is made: its readers roll out (their settings revision).
    assert {row["what"] for row in page["runtime"]} == {"image", "settings revision"}
    recipes = [f for f in page["findings"] if f["section"] == "secrets"]
    assert [(f["change"], f["subject"]) for f in recipes] == [
        ("built differently", "shop-dev-data/Settings/DATABASE_URL")
    ]
    assert (checkout / "cdk.out" / "dev" / "manifest.json").is_file()  # the working tree's assembly stays
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=checkout, capture_output=True, text=True, check=True)
    assert "review-base-" not in worktrees.stdout
    comment = (out / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(MARKER)
    markdown = (out / "dev" / "REVIEW.md").read_text(encoding="utf-8")
    assert "GetStackOutput(" not in markdown and "ImportValue(" not in markdown
    assert re.sub(r"\b[0-9a-f]{7,} base\b", "<sha> base", comment) == snapshot


def test_an_unknown_ref_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "report.review", "--base", "no-such-ref", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("[config] review: BASE=no-such-ref: not a commit of this repository")
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


def test_a_working_tree_refused_for_every_stage_still_writes_the_comment(tmp_path: Path) -> None:
    """No stage page at all (every stage refused): the comment with the refusal lines is still written."""
    lines = ["cannot synthesize: config/stages/dev.yaml has 1 problem(s):", "  [config] colour: 'blue' — unknown key"]
    comment = write(tmp_path / "review", [], lines)
    text = comment.read_text(encoding="utf-8")
    assert text.startswith(MARKER) and "does not synthesize" in text and "[config] colour" in text
