"""``make rollback STAGE=...``: redeploy the previous good release of a stage, the assembly it was deployed from.

Every successful deploy of the workflow (.github/workflows/deploy-stage.yml) keeps the stage's synthesized cloud
assembly as the artifact ``deployed-<stage>`` (90 days). A rollback picks one of them (default: the one before the
newest, i.e. before what runs now; ``--to`` a run id or commit) and either asks the workflow to deploy it
(default: ``gh workflow run deploy.yml``, so the environment's reviewers and the alarm check still apply), or with
``--here`` downloads and deploys it with the caller's credentials (what the workflow itself does when the alarms
fire after a deploy: ``--here --current-run $GITHUB_RUN_ID``). Needs the GitHub CLI (``gh``), authenticated.
Exit codes: 0 done, 1 the deploy failed, 2 refused (no gh, nothing to roll back to, stage file).
"""

from __future__ import annotations

import argparse
import json
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
    """One kept assembly: the deploy run that made it and its commit."""

    run_id: int
    commit: str
    created_at: str

    def __str__(self) -> str:
        return f"{self.commit[:12]} (run {self.run_id}, deployed {self.created_at})"


def artifact_name(stage: str) -> str:
    return f"deployed-{stage}"


def releases(listing: dict[str, Any], stage: str) -> list[Release]:
    """The stage's kept assemblies from ``gh api .../actions/artifacts?name=...``, newest first."""
    found = [
        Release(int(a["workflow_run"]["id"]), str(a["workflow_run"].get("head_sha") or "?"), str(a["created_at"]))
        for a in listing.get("artifacts", [])
        if a.get("name") == artifact_name(stage) and not a.get("expired") and a.get("workflow_run")
    ]
    return sorted(found, key=lambda r: r.created_at, reverse=True)


def choose(found: Sequence[Release], *, to: str | None = None, current_run: int | None = None) -> Release | None:
    """``to`` (run id or commit prefix); in the workflow, the newest not made by ``current_run``; from a laptop,
    the one before the newest (the newest is what runs now)."""
    if to:
        return next((r for r in found if str(r.run_id) == to or (len(to) >= 7 and r.commit.startswith(to))), None)
    if current_run is not None:
        return next((r for r in found if r.run_id != current_run), None)
    return found[1] if len(found) > 1 else None


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
        ["gh", "api", f"repos/{{owner}}/{{repo}}/actions/artifacts?name={artifact_name(config.stage)}&per_page=100"],
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
    found = releases(json.loads(listed.stdout or "{}"), config.stage)
    target = choose(found, to=args.to, current_run=args.current_run)
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

            return deploy_assembly(config, assembly, run=run, gate=gate)
        return deploy(config, assembly)


if __name__ == "__main__":
    sys.exit(main())
