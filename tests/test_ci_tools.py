"""The deploy workflow's steps as commands: plan, deploy an assembly, watch the alarms, roll back (tools/ci.py,
tools/rollback.py). AWS is moto (offline_aws), gh and cdk are fakes that record what they were asked."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from config import load_config
from tests.conftest import EXAMPLES
from tools import ci, rollback

pytestmark = pytest.mark.usefixtures("offline_aws")
SERVICES = ["--config", str(EXAMPLES["services"])]

# What `cdk deploy --progress events` prints when a stack update fails (the CDK CLI's event line shape).
EVENT = "shop-staging-ecs | 1/4 | 10:01:05 AM | {status:<20} | {type} | {rest}"
CDK_FAILURE = [
    "shop-staging-ecs: deploying... [1/1]",
    EVENT.format(status="UPDATE_IN_PROGRESS", type="AWS::CloudFormation::Stack", rest="shop-staging-ecs"),
    EVENT.format(
        status="UPDATE_FAILED",
        type="AWS::ECS::TaskDefinition",
        rest="Web/TaskDef (WebTaskDef1) Resource update cancelled",
    ),
    EVENT.format(
        status="UPDATE_FAILED",
        type="AWS::ECS::Service",
        rest='Web/Service (WebService2) Resource handler returned message: "Invalid request provided: CreateService '
        'error: unable to assume the service linked role"',
    ),
    " ❌  shop-staging-ecs failed: The stack named shop-staging-ecs failed to deploy: UPDATE_ROLLBACK_COMPLETE",
]


class Recorder:
    def __init__(self, *results: tuple[int, str]) -> None:
        self.calls: list[list[str]] = []
        self.results = list(results)

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(command)
        code, out = self.results.pop(0) if self.results else (0, "")
        return subprocess.CompletedProcess(command, code, stdout=out, stderr="gh: not logged in" if code else "")


class Streamer:
    """Stands for tools.ci.stream: records the command, returns (exit code, output lines)."""

    def __init__(self, code: int = 0, lines: list[str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.code, self.lines = code, lines or []

    def __call__(self, command: list[str]) -> tuple[int, list[str]]:
        self.calls.append(command)
        return self.code, self.lines


def assembly(tmp_path: Path, commit: str = "abc1234") -> Path:
    directory = tmp_path / "staging"
    directory.mkdir()
    (directory / "manifest.json").write_text("{}")
    (directory / "COMMIT").write_text(commit)
    return directory


def test_plan_names_the_role_and_environment_of_each_ci_stage_and_skips_the_others(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLES["services"].read_text())
    (tmp_path / "staging.yaml").write_text(yaml.safe_dump({**raw, "ci": {**raw["ci"], "environment": "stg"}}))
    (tmp_path / "dev.yaml").write_text(Path("config/stages/dev.yaml").read_text())
    (tmp_path / "prod.yaml").write_text("app: [")
    plan = ci.plan(tmp_path)
    assert plan["staging"] == {
        "enabled": True,
        "environment": "stg",
        "role_arn": "arn:aws:iam::123456789012:role/shop-staging-ci-deploy",
        "account": "123456789012",
        "region": "eu-west-1",
    }
    assert plan["dev"] == {"enabled": False, "reason": "no ci: in the stage file"}
    assert plan["prod"]["enabled"] is False and "has problems" in plan["prod"]["reason"]


def test_plan_is_one_github_output_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert ci.main(["plan"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("plan=") and set(json.loads(line[5:])) == {"dev", "staging", "prod"}


def test_the_first_failure_is_the_cause_not_the_cancellations() -> None:
    reason = ci.first_failure(CDK_FAILURE)
    assert reason is not None and reason.startswith("shop-staging-ecs: UPDATE_FAILED AWS::ECS::Service Web/Service")
    assert "unable to assume the service linked role" in reason
    assert ci.first_failure(["all good"]) is None


def test_deploy_runs_cdk_on_the_given_assembly_after_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, directory = Streamer(0, ["done"]), assembly(tmp_path)
    assert ci.main(["deploy", *SERVICES, "--assembly", str(directory)], run=run, gate=lambda _: 0) == 0
    (command,) = run.calls
    assert command[:6] == ["npx", "--no-install", "cdk", "deploy", "--app", str(directory)]
    assert "--require-approval" in command and "never" in command
    assert "==> deploying shop-staging to 123456789012/eu-west-1 from abc1234" in capsys.readouterr().err


def test_a_failed_deploy_prints_cloudformations_first_reason_as_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Streamer(1, CDK_FAILURE)
    assert ci.main(["deploy", *SERVICES, "--assembly", str(assembly(tmp_path))], run=run, gate=lambda _: 0) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "WebService2" in errors[0] and "service linked role" in errors[0]


def test_deploy_refuses_without_an_assembly_or_past_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Streamer()
    assert ci.main(["deploy", *SERVICES, "--assembly", str(tmp_path / "none")], run=run, gate=lambda _: 0) == 2
    assert "no cloud assembly there" in capsys.readouterr().err
    assert ci.main(["deploy", *SERVICES, "--assembly", str(assembly(tmp_path))], run=run, gate=lambda _: 2) == 2
    assert not run.calls


def put_alarm(name: str, state: str, actions: list[str] | None = None) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmActions=actions or [],
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"{state} in the test")


def test_verify_fails_when_a_stage_alarm_fires_after_the_deploy_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(path=EXAMPLES["services"])
    output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    put_alarm("shop-prod-web-5xx", "ALARM")  # another stage's alarm
    put_alarm("shop-staging-jobs-DeadLetters", "ALARM")  # stuck before the deploy: not this release's doing
    put_alarm("shop-staging-web-latency", "OK")
    time.sleep(0.01)
    started = datetime.now(UTC)
    waits: list[float] = []
    session = boto3.session.Session()
    assert ci.verify(config, 1, session=session, since=started, sleep=waits.append, every=30) == 0
    assert waits == [30, 30]  # three checks over one minute
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 1 and "shop-staging-jobs-DeadLetters" in warnings[0] and not output.exists()
    scaling = "arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:x:resource/ecs/service/c/s:policyName/q"
    put_alarm("shop-staging-ecs-AlarmHigh-1234", "ALARM", [scaling])  # a scaling alarm: load, not the release
    assert ci.verify(config, 0, session=session, since=started, sleep=waits.append) == 0
    put_alarm("shop-staging-web-5xx", "ALARM")
    assert ci.verify(config, 1, session=session, since=started, sleep=waits.append) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("::error")]
    assert errors == ["::error title=shop-staging alarm after deploy::shop-staging-web-5xx (ALARM in the test)"]
    assert output.read_text() == "fired=true\n"


def test_verify_that_cannot_read_the_alarms_refuses_without_asking_for_a_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))

    class Broken:
        def client(self, *_: Any, **__: Any) -> Any:
            raise RuntimeError("throttled")

    assert ci.main(["verify", *SERVICES, "--minutes", "0"], session=Broken()) == 2
    assert "cannot verify shop-staging: [local-credentials]" in capsys.readouterr().err and not output.exists()


def test_annotations_escape_what_the_runner_would_read_as_commands() -> None:
    assert ci.annotation("error", "a: b, c", "100% done\nnext") == "::error title=a%3A b%2C c::100%25 done%0Anext"


# -- make rollback -----------------------------------------------------------------------------------------------


def artifact(name: str, run_id: int, sha: str, created: str, *, expired: bool = False) -> dict[str, Any]:
    return {"name": name, "expired": expired, "created_at": created, "workflow_run": {"id": run_id, "head_sha": sha}}


def pages(*artifacts: dict[str, Any]) -> str:
    """What ``gh api --paginate --slurp .../actions/artifacts`` prints: a list of pages."""
    half = len(artifacts) // 2
    return json.dumps([{"artifacts": list(artifacts[:half])}, {"artifacts": list(artifacts[half:])}])


A, B, C = "a" * 40, "b" * 40, "c" * 40
PUSHES = (
    artifact("deployed-staging", 30, C, "2026-12-03"),
    artifact("deployed-staging", 10, A, "2026-12-01"),
    artifact("deployed-staging", 20, B, "2026-12-02"),
    artifact("deployed-staging", 5, "0" * 40, "2026-09-01", expired=True),
    artifact("deployed-prod", 9, C, "2026-12-09"),
)


def listing_of(*artifacts: dict[str, Any]) -> dict[str, Any]:
    return {"artifacts": list(artifacts)}


def test_the_release_before_the_live_one_is_chosen_or_the_one_asked_for() -> None:
    found = rollback.releases(listing_of(*PUSHES), "staging")
    assert [r.run_id for r in found] == [30, 20, 10]
    assert rollback.choose(found).run_id == 20  # type: ignore[union-attr]
    assert rollback.choose(found, to="10").run_id == 10  # type: ignore[union-attr]
    assert rollback.choose(found, to="aaaaaaa").run_id == 10  # type: ignore[union-attr]
    assert rollback.choose(found, to="aaa") is None  # too short to be a commit
    assert rollback.choose(found[:1]) is None


def test_after_a_rollback_the_next_one_goes_further_back_never_forward_to_the_bad_release() -> None:
    rolled_to_b = artifact("rolled-back-staging-to-20", 31, "d" * 40, "2026-12-04")
    listing = listing_of(*PUSHES, rolled_to_b)
    found, rolled = rollback.releases(listing, "staging"), rollback.rollbacks(listing, "staging")
    assert rolled == [("2026-12-04", 20)]
    assert rollback.live(found, rolled).run_id == 20  # type: ignore[union-attr]
    assert rollback.choose(found, rolled).run_id == 10  # type: ignore[union-attr]  # A, not C again
    # A push deploy after the rollback is live again, and the one before it is B's.
    newer = rollback.releases(
        listing_of(*PUSHES, rolled_to_b, artifact("deployed-staging", 40, "e" * 40, "2026-12-05")), "staging"
    )
    assert rollback.choose(newer, rolled).run_id == 30  # type: ignore[union-attr]


def test_the_workflow_rolls_a_failed_release_back_to_the_one_live_before_its_run() -> None:
    found = rollback.releases(listing_of(*PUSHES), "staging")
    assert rollback.choose(found, current_run=99).run_id == 30  # type: ignore[union-attr]  # run 99 kept nothing
    rolled = [("2026-12-04", 20)]
    assert rollback.choose(found, rolled, current_run=99).run_id == 20  # type: ignore[union-attr]


def test_make_rollback_asks_the_workflow_to_deploy_the_previous_release(capsys: pytest.CaptureFixture[str]) -> None:
    gh = Recorder((0, pages(*PUSHES)), (0, ""))
    assert rollback.main(["--stage", "staging"], run=gh, which=lambda _: "/usr/bin/gh") == 0
    assert gh.calls[0] == ["gh", "api", "--paginate", "--slurp", "repos/{owner}/{repo}/actions/artifacts?per_page=100"]
    assert gh.calls[1] == [
        "gh", "workflow", "run", "deploy.yml", "-f", "rollback_stage=staging", "-f", "rollback_run_id=20"
    ]  # fmt: skip
    assert f"rolling shop-staging back to {'b' * 12} (run 20" in capsys.readouterr().err


def test_rollback_here_downloads_the_release_deploys_it_and_names_it_for_the_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    gh, deployed = Recorder((0, pages(*PUSHES)), (0, "")), []
    argv = ["--stage", "staging", "--here", "--current-run", "30"]

    def deploy(config: Any, directory: Path) -> int:
        deployed.append((config.stage, directory.name))
        return 0

    assert rollback.main(argv, run=gh, which=lambda _: "gh", deploy=deploy) == 0
    assert gh.calls[1][:6] == ["gh", "run", "download", "20", "-n", "deployed-staging"]
    assert deployed == [("staging", "staging")]
    assert output.read_text() == "release_run_id=20\n"


@pytest.mark.parametrize(
    ("which", "results", "expected"),
    [
        (None, [], "[config] gh: not found — install the GitHub CLI"),
        ("gh", [(1, "")], "[config] gh api: gh: not logged in — run gh auth login"),
        ("gh", [(0, pages(PUSHES[0]))], "[manual-rollback] deployed-staging: 1 kept — an earlier release is not"),
    ],
)
def test_rollback_refuses_in_one_line(
    which: str | None, results: list[tuple[int, str]], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rollback.main(["--stage", "staging"], run=Recorder(*results), which=lambda _: which) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("cannot roll back shop-staging: ") and expected in line
