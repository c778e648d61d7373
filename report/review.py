"""``make review``: what the working tree changes compared to a git ref, for every stage, offline.

The base ref is checked out in a temporary ``git worktree``; the base and the working tree are synthesized
at the same time (one process each, every stage in it, see ``tools/synth_stages.py``), then each stage is
compared (:mod:`report.compare`) and written to ``OUT/<stage>/REVIEW.md`` + ``review.json``, with one
combined ``OUT/comment.md`` for the pull request. The working tree's assemblies stay in ``cdk.out/<stage>/``.

Exit code 0 when the working tree synthesizes (whatever it changes), 1 when it is refused (the comment then
carries the refusal lines), 2 for a usage problem (unknown ref or stage, not a git checkout).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from report.assembly import AssemblyError, load_assembly
from report.compare import review
from report.extract import build_report
from report.render import render_json, render_markdown
from report.render_review import StagePage, environment, render_comment, render_page, render_page_json

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tools" / "synth_stages.py"


class ReviewError(Exception):
    """A problem with the request itself (not with the infrastructure)."""


def git(*args: str, cwd: Path = ROOT) -> str:
    """Run git and return its stripped stdout; a failure becomes a :class:`ReviewError` with git's message."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ReviewError(f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def default_base() -> str:
    """The merge base of HEAD with the default branch (``origin/HEAD``, else ``origin/main``, ``main``, ``master``)."""
    candidates = []
    with contextlib.suppress(ReviewError):
        candidates.append(git("symbolic-ref", "--short", "refs/remotes/origin/HEAD"))
    candidates += ["origin/main", "main", "origin/master", "master"]
    for branch in candidates:
        try:
            return git("merge-base", "HEAD", branch)
        except ReviewError:
            continue
    raise ReviewError("no default branch found to compare with; pass BASE=<git ref>")


def describe(ref: str, sha: str) -> str:
    """``<ref> (<short sha> <subject>)`` of the base, for the page header (the subject cut at a word)."""
    text = git("log", "-1", "--format=%h %s", sha)
    if len(text) > 60:
        text = text[:60].rsplit(" ", 1)[0] + " …"
    return text if ref == sha else f"{ref} ({text})"


def stages_of(root: Path) -> list[str]:
    """Every stage file of a checkout."""
    return sorted(path.stem for path in (root / "config" / "stages").glob("*.yaml"))


def synthesize(cwd: Path, out: Path, stages: Sequence[str]) -> subprocess.Popen[str]:
    """Start the one-process synthesis of ``stages`` of the checkout at ``cwd`` into ``out/<stage>``."""
    return subprocess.Popen(
        [sys.executable, str(RUNNER), "--out", str(out), *stages],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def refusal_lines(output: str) -> list[str]:
    """The refusal lines of a synthesis log (``cannot synthesize …`` and the indented problems after it)."""
    lines, inside = [], False
    for line in output.splitlines():
        if line.startswith("cannot synthesize") or line.startswith("[config]"):
            inside = True
            lines.append(line)
        elif inside and line.startswith("  "):
            lines.append(line)
        else:
            inside = False
    return lines


def page(stage: str, base_dir: Path | None, head_dir: Path, base_name: str, head_name: str) -> StagePage:
    """Compare one stage's two assemblies (no comparison when the base has none)."""
    head = load_assembly(head_dir)
    head_report = build_report(head)
    compared = None
    if base_dir is not None and (base_dir / "manifest.json").is_file():
        base = load_assembly(base_dir)
        compared = review(build_report(base), head_report, base, head)
    return StagePage(
        stage, base_name, head_name, environment(head), compared, render_markdown(head_report), render_json(head_report)
    )


def write(out: Path, pages: Sequence[StagePage], refusals: Sequence[str]) -> Path:
    """Write every stage page and the combined comment; return the comment's path."""
    for item in pages:
        folder = out / item.stage
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "REVIEW.md").write_text(render_page(item), encoding="utf-8")
        (folder / "review.json").write_text(render_page_json(item), encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    comment = out / "comment.md"
    comment.write_text(render_comment(pages, refusals), encoding="utf-8")
    return comment


def run(base_ref: str | None, stages: Sequence[str], out: Path, cdk_out: Path) -> int:
    """The whole review; returns the exit code."""
    git("rev-parse", "--show-toplevel")
    if out.exists():
        shutil.rmtree(out)  # never leave an earlier review behind that could be mistaken for this one
    base = base_ref or default_base()
    try:
        base_sha = git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except ReviewError:
        raise ReviewError(
            f"BASE={base}: not a commit of this repository (a branch, tag or SHA; fetch it first)"
        ) from None
    names = [name for stage in stages for name in stage.split(",") if name]
    wanted = names if names and names != ["all"] else stages_of(ROOT)
    unknown = [stage for stage in wanted if stage not in stages_of(ROOT)]
    if unknown:
        raise ReviewError(
            f"STAGE {', '.join(unknown)}: no config/stages/<stage>.yaml (known: {', '.join(stages_of(ROOT))})"
        )
    base_name, head_name = describe(base, base_sha), "working tree"
    started = time.perf_counter()
    print(f"==> review: {', '.join(wanted)} at {base_name} → working tree (both synthesized offline, in parallel)")
    with tempfile.TemporaryDirectory(prefix="review-base-") as temporary:
        worktree, base_out = Path(temporary) / "checkout", Path(temporary) / "cdk.out"
        git("worktree", "add", "--detach", "--quiet", str(worktree), base_sha)
        try:
            base_stages = [stage for stage in wanted if (worktree / "config" / "stages" / f"{stage}.yaml").is_file()]
            jobs = [synthesize(ROOT, cdk_out, wanted)]
            if base_stages:
                jobs.append(synthesize(worktree, base_out, base_stages))
            logs = [job.communicate()[0] for job in jobs]
            head_ok = jobs[0].returncode == 0
            print(f"==> synthesized in {time.perf_counter() - started:.1f} s; comparing")
            if len(logs) > 1 and jobs[1].returncode != 0:
                print(
                    f"note: the base {base_name} does not synthesize every stage; those pages show the inventory only"
                )
            refusals = [line.replace(f"{ROOT}/", "") for line in refusal_lines(logs[0])] if not head_ok else []
            pages = []
            for stage in wanted:
                head_dir = cdk_out / stage
                if not (head_dir / "manifest.json").is_file():
                    continue
                pages.append(page(stage, base_out / stage, head_dir, base_name, head_name))
            comment = write(out, pages, refusals)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    for line in refusals:
        print(line, file=sys.stderr)
    print(f"==> wrote {comment} and {len(pages)} stage page(s) under {out}/ in {time.perf_counter() - started:.1f} s")
    return 0 if head_ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m report.review", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", metavar="REF", help="git ref to compare with (default: merge base with the default branch)"
    )
    parser.add_argument("--stage", nargs="*", default=["all"], metavar="STAGE", help="stages (default: all)")
    parser.add_argument("--out", type=Path, default=Path("cdk.out/review"), help="default: cdk.out/review")
    parser.add_argument("--cdk-out", type=Path, default=Path("cdk.out"), help="where the working tree's assemblies go")
    args = parser.parse_args(argv)
    try:
        return run(args.base, args.stage, args.out.resolve(), args.cdk_out.resolve())
    except (ReviewError, AssemblyError) as error:
        print(f"[config] review: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
