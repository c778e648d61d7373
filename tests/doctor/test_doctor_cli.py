"""The CLI in-process: ``main([...], aws=<moto-backed clients>)``, its JSON, its table, its exit codes, and
that no secret value ever reaches stdout or stderr (secrets-printed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from doctor_world import (
    REGION,
    SECRET_VALUE,
    Clients,
    StageFile,
    World,
    allow_parameters,
    deny_master_secrets,
    with_ecs,
)

from doctor.checks.identity import BOOTSTRAP_PARAMETER
from doctor.cli import main

ROOT = Path(__file__).resolve().parents[2]
FINDING_KEYS = {"check_id", "resource", "verdict", "advice"}


def run(capsys: pytest.CaptureFixture[str], *argv: str, aws: Clients | None = None) -> tuple[int, str, str]:
    code = main(list(argv), aws=aws)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_document_for_ci(world: World, stage_file: StageFile, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(stage_file()), "--json", aws=world.clients)
    document = json.loads(out)  # stdout holds the JSON document and nothing else
    assert code == 0 and document["exit_code"] == 0
    assert set(document) == {"app", "stage", "region", "mode", "caller", "findings", "summary", "exit_code"}
    assert (document["app"], document["stage"], document["region"], document["mode"]) == (
        "shop",
        "dev",
        REGION,
        "post-deploy",
    )
    assert document["caller"] == {"account": "123456789012", "arn": "arn:aws:sts::123456789012:user/moto"}
    assert document["findings"] and all(set(f) == FINDING_KEYS for f in document["findings"])
    assert {f["verdict"] for f in document["findings"]} <= {"pass", "warn"}
    assert document["summary"]["fail"] == 0
    assert sum(document["summary"].values()) == len(document["findings"])


def test_stage_with_the_ecs_target_reads_its_stack(
    world: World, stage_file: StageFile, capsys: pytest.CaptureFixture[str]
) -> None:
    """targets: [ecs] in the stage file: the ecs stack's outputs drive the SG, target-health, log and
    permission checks (iam.simulate_principal_policy is not in moto: Stubber answers)."""
    with_ecs(world)
    iam = world.clients.stub("iam")
    allow_parameters(iam, world.consumer_role)
    deny_master_secrets(iam, world)
    code, out, _ = run(capsys, "--config", str(stage_file(targets=["ecs"])), "--json", aws=world.clients)
    findings = json.loads(out)["findings"]
    assert code == 0
    assert [f["check_id"] for f in findings if f["verdict"] != "pass"] == ["local-credentials"]
    assert {"region-mismatch", "shop-dev-ecs"} <= {v for f in findings for v in (f["check_id"], f["resource"])}
    assert any(f["check_id"] == "alb-health-check-path" and "1/1 targets healthy" in f["advice"] for f in findings)
    iam.assert_no_pending_responses()


def test_a_failed_check_exits_1(world: World, stage_file: StageFile, capsys: pytest.CaptureFixture[str]) -> None:
    world.clients.client("rds", REGION).modify_db_instance(DBInstanceIdentifier=world.db_id, PubliclyAccessible=True)
    code, out, _ = run(capsys, "--config", str(stage_file()), "--json", aws=world.clients)
    document = json.loads(out)
    assert code == 1 and document["exit_code"] == 1
    assert {"check_id": "rds-public-access", "verdict": "fail"}.items() <= next(
        f for f in document["findings"] if f["check_id"] == "rds-public-access"
    ).items()


def test_table_for_people(world: World, stage_file: StageFile, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--stage", "dev", "--config", str(stage_file()), aws=world.clients)
    assert code == 0
    assert "doctor shop-dev (post-deploy) in eu-west-1 as arn:aws:sts::123456789012:user/moto" in out
    for check_id in ("local-credentials", "region-mismatch", "sg-compute-to-rds", "ssm-securestring-missing"):
        assert check_id in out
    assert out.rstrip().splitlines()[-1].endswith("0 fail")
    assert err == ""  # progress goes to stderr only when stderr is a terminal


def test_preflight_fails_without_bootstrap_and_passes_with_it(
    world: World, stage_file: StageFile, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(stage_file())
    code, out, _ = run(capsys, "--config", path, "--preflight", "--json", aws=world.clients)
    document = json.loads(out)
    assert (code, document["mode"]) == (1, "preflight")
    assert [f["resource"] for f in document["findings"] if f["verdict"] == "fail"] == ["cdk bootstrap (eu-west-1)"]
    world.clients.client("ssm", REGION).put_parameter(Name=BOOTSTRAP_PARAMETER, Value="30", Type="String")
    code, out, _ = run(capsys, "--config", path, "--preflight", "--json", aws=world.clients)
    assert code == 0
    assert {f["check_id"] for f in json.loads(out)["findings"]} == {
        "local-credentials",
        "region-mismatch",
        "ecr-pull-permission",
    }


def test_region_override_is_reported(world: World, stage_file: StageFile, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(stage_file()), "--json", "--region", "us-east-1", aws=world.clients)
    findings = json.loads(out)["findings"]
    assert code == 1  # nothing of the stage is in us-east-1
    override = next(f for f in findings if f["resource"] == "region")
    assert override["verdict"] == "warn" and "--region us-east-1 overrides the stage's eu-west-1" in override["advice"]


def test_no_secret_value_is_ever_printed(
    world: World, stage_file: StageFile, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SecureStrings, the DB master password and the Redis token all hold SECRET_VALUE; a plain String
    parameter holding it too must not be echoed either."""
    world.clients.client("ssm", REGION).put_parameter(
        Name="/shop/dev/SECRET_KEY", Value=SECRET_VALUE, Type="String", Overwrite=True
    )
    path = str(stage_file())
    seen = ""
    for extra in ([], ["--json"], ["--preflight"], ["--preflight", "--json"]):
        _, out, err = run(capsys, "--config", path, *extra, aws=world.clients)
        seen += out + err
    assert "/shop/dev/SECRET_KEY" in seen  # the parameter is reported ...
    assert SECRET_VALUE not in seen  # ... its value never
    assert SECRET_VALUE[:12] not in seen


def test_no_credentials_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, stage_file: StageFile, capsys: pytest.CaptureFixture[str]
) -> None:
    """No moto here: the real default chain finds nothing (no env keys, no files, no instance metadata)."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    code, out, err = run(capsys, "--config", str(stage_file()), "--json")
    document = json.loads(out)
    assert code == 2 and document["exit_code"] == 2
    [finding] = document["findings"]
    assert (finding["check_id"], finding["verdict"]) == ("local-credentials", "fail")
    assert finding["advice"].startswith("no AWS credentials found") and "\n" not in finding["advice"]
    assert "Traceback" not in out + err


def test_config_problems_exit_2_with_one_line_each(stage_file: StageFile, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--config", str(stage_file(region="mars-north-1", image="nginx:latest")))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].endswith("has 2 problem(s):")
    assert any(line.strip().startswith("[region-mismatch] region: 'mars-north-1'") for line in lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "pass --stage NAME"),
        (["--stage", "qa"], "no file"),
        (["--stage", "dev", "--region", "moon-1"], "--region 'moon-1' is not an AWS region"),
        (["--stage", "dev", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "--preflight" in out and "exit codes" in out


def test_python_dash_m_doctor_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "doctor", "--stage", "qa"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("doctor: ") and "Traceback" not in done.stderr
