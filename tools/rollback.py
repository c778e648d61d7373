"""``make rollback STAGE=...``: redeploy the previous good release of a stage, the assembly it was deployed from.

Every successful push deploy of the workflow (.github/workflows/deploy-stage.yml) keeps the stage's synthesized
cloud assembly as the artifact ``deployed-<stage>`` (90 days); every rollback leaves a marker
``rolled-back-<stage>-to-<run id>``, so what runs now is known. A rollback picks a release (default: the one
deployed before the one live now; ``--to`` a run id or commit) and either asks the workflow to deploy it
(default: ``gh workflow run deploy.yml``, so the environment's reviewers and the alarm check still apply), or with
``--here`` downloads and deploys it with the caller's credentials (what the workflow itself does when the alarms
fire after a deploy: ``--here --current-run $GITHUB_RUN_ID``). Needs the GitHub CLI (``gh``), authenticated.
Exit codes: 0 done, 1 the deploy failed, 2 refused (no gh, nothing to roll back to, stage file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.stage_file import stage_from

OK, FAILED, REFUSED = 0, 1, 2
Runner = Callable[..., "subprocess.CompletedProcess[str]"]
WORKFLOW = "deploy.yml"


@dataclass(frozen=True)
class Release:
    """One kept assembly of a push deploy: the run that made it, its commit, when."""

    run_id: int
    commit: str
    created_at: str

    def __str__(self) -> str:
        return f"{self.commit[:12]} (run {self.run_id}, deployed {self.created_at})"


def artifact_name(stage: str) -> str:
    return f"deployed-{stage}"


def marker_prefix(stage: str) -> str:
    """Artifacts ``rolled-back-<stage>-to-<run id>``: a rollback redeployed that run's release (then it is live)."""
    return f"rolled-back-{stage}-to-"


def releases(listing: dict[str, Any], stage: str) -> list[Release]:
    """The stage's kept push-deploy assemblies from ``gh api .../actions/artifacts``, newest first."""
    found = [
        Release(int(a["workflow_run"]["id"]), str(a["workflow_run"].get("head_sha") or "?"), str(a["created_at"]))
        for a in listing.get("artifacts", [])
        if a.get("name") == artifact_name(stage) and not a.get("expired") and a.get("workflow_run")
    ]
    return sorted(found, key=lambda r: r.created_at, reverse=True)


def rollbacks(listing: dict[str, Any], stage: str) -> list[tuple[str, int]]:
    """(when, release run id) of every rollback of the stage, newest first."""
    prefix = marker_prefix(stage)
    found = [
        (str(a["created_at"]), int(a["name"][len(prefix) :]))
        for a in listing.get("artifacts", [])
        if str(a.get("name", "")).startswith(prefix) and a["name"][len(prefix) :].isdigit()
    ]
    return sorted(found, reverse=True)


def live(found: Sequence[Release], rolled: Sequence[tuple[str, int]]) -> Release | None:
    """The release that runs now: the newest push deploy, unless a rollback since then redeployed an older one."""
    newest = found[0] if found else None
    if rolled and (newest is None or rolled[0][0] > newest.created_at):
        return next((r for r in found if r.run_id == rolled[0][1]), newest)
    return newest


def choose(
    found: Sequence[Release],
    rolled: Sequence[tuple[str, int]] = (),
    *,
    to: str | None = None,
    current_run: int | None = None,
) -> Release | None:
    """``to`` (run id or commit prefix), else the release deployed before the one live now. In the workflow
    (``current_run``: the run whose release failed and kept nothing) the one live before that run."""
    if to:
        return next((r for r in found if str(r.run_id) == to or (len(to) >= 7 and r.commit.startswith(to))), None)
    others = [r for r in found if r.run_id != current_run]
    now = live(others, rolled)
    if current_run is not None or now is None:
        return now
    return next((r for r in others if r.created_at < now.created_at), None)


def main(
    argv: Sequence[str] | None = None,
    *,
    run: Runner = subprocess.run,
    deploy: Callable[..., int] | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rollback", description=__doc__.splitlines()[0])
    parser.add_argument("--stage")
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--to", help="a deploy run id or commit (default: the release before the newest)")
    parser.add_argument("--here", action="store_true", help="deploy with these credentials instead of the workflow")
    parser.add_argument("--current-run", type=int, help="in the workflow: the run whose release failed")
    args = parser.parse_args(argv)
    config = stage_from(args, command="rollback", what="cannot roll back")
    if config is None:
        return REFUSED
    name = f"{config.app}-{config.stage}"
    if which("gh") is None:
        print(
            f"cannot roll back {name}: [config] gh: not found — install the GitHub CLI (https://cli.github.com) and "
            "run gh auth login; or set image: to the previous tag and make deploy",
            file=sys.stderr,
        )
        return REFUSED
    listed = run(
        ["gh", "api", "--paginate", "--slurp", "repos/{owner}/{repo}/actions/artifacts?per_page=100"],
        check=False,
        text=True,
        capture_output=True,
    )
    if listed.returncode != 0:
        print(
            f"cannot roll back {name}: [config] gh api: {' '.join(listed.stderr.split())[:200]} — run gh auth login "
            "in the repository's checkout (or set GH_REPO=<owner>/<name>)",
            file=sys.stderr,
        )
        return REFUSED
    pages = json.loads(listed.stdout or "[]")
    listing = {"artifacts": [a for page in pages for a in page.get("artifacts", [])]}
    found, rolled = releases(listing, config.stage), rollbacks(listing, config.stage)
    target = choose(found, rolled, to=args.to, current_run=args.current_run)
    if target is None:
        wanted = f"the release {args.to}" if args.to else "an earlier release"
        print(
            f"cannot roll back {name}: [manual-rollback] {artifact_name(config.stage)}: {len(found)} kept — "
            f"{wanted} is not among the workflow's kept assemblies (they expire after 90 days); set image: to "
            "the previous tag and make deploy",
            file=sys.stderr,
        )
        return REFUSED
    print(f"==> rolling {name} back to {target}", file=sys.stderr)
    if not args.here:
        command = [
            "gh",
            "workflow",
            "run",
            WORKFLOW,
            "-f",
            f"rollback_stage={config.stage}",
            "-f",
            f"rollback_run_id={target.run_id}",
        ]
        done = run(command, check=False, text=True)
        if done.returncode == 0:
            print(
                f"==> asked {WORKFLOW} to deploy it (the environment's reviewers approve it): gh run watch",
                file=sys.stderr,
            )
        return OK if done.returncode == 0 else FAILED
    with tempfile.TemporaryDirectory(prefix="rollback-") as directory:
        assembly = Path(directory) / config.stage
        fetched = run(
            ["gh", "run", "download", str(target.run_id), "-n", artifact_name(config.stage), "-D", str(assembly)],
            check=False,
            text=True,
        )
        if fetched.returncode != 0:
            return FAILED
        if deploy is None:
            from doctor.gate import main as gate
            from tools.ci import deploy as deploy_assembly

            code = deploy_assembly(config, assembly, gate=gate)
        else:
            code = deploy(config, assembly)
    output = os.environ.get("GITHUB_OUTPUT")
    if code == OK and output:  # the workflow keeps a marker: this release is live again (rolled-back-<stage>-to-<run>)
        with open(output, "a", encoding="utf-8") as handle:
            handle.write(f"release_run_id={target.run_id}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
