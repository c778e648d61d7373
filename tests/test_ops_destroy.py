"""``make destroy`` (tools/destroy.py): prod refused, the plan it prints, the typed confirmation, and the order
protection off -> cdk destroy (-> protection back on when cdk fails). cdk never runs: ``run`` is a recorder.

STS and RDS are moto; CloudFormation is a fake (moto's cannot be imported in this venv, and has no
UpdateTerminationProtection): ``describe_stacks`` over a dict, ``update_termination_protection`` recorded.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from tools import destroy

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
DB = "shop-staging-data-databasedefault1a2b3c"


class FakeCloudFormation:
    def __init__(self, stacks: dict[str, dict[str, Any]], calls: list[tuple[str, Any]]) -> None:
        self.stacks = stacks
        self.calls = calls

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in self.stacks:
            error = {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}}
            raise ClientError(error, "DescribeStacks")
        return {"Stacks": [self.stacks[StackName]]}

    def update_termination_protection(self, EnableTerminationProtection: bool, StackName: str) -> dict[str, str]:
        self.calls.append(("termination-protection", EnableTerminationProtection))
        self.stacks[StackName]["EnableTerminationProtection"] = EnableTerminationProtection
        return {"StackId": StackName}


class Clients:
    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.session = boto3.session.Session(region_name=REGION)

    @property
    def default_region(self) -> str | None:
        return REGION

    def client(self, service: str, region: str) -> Any:
        if service == "cloudformation":
            return FakeCloudFormation(self.stacks, self.calls)
        return self.session.client(service, region_name=region)

    def deploy(self, name: str, outputs: dict[str, str] | None = None, *, protected: bool = False) -> None:
        self.stacks[name] = {
            "StackName": name,
            "StackStatus": "UPDATE_COMPLETE",
            "EnableTerminationProtection": protected,
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in (outputs or {}).items()],
        }

    def protected(self, name: str) -> bool:
        return bool(self.stacks[name]["EnableTerminationProtection"])


class Recorder:
    """``subprocess.run`` stand-in: records the command and what the protections were when cdk would start."""

    def __init__(self, aws: Clients, returncode: int = 0, data: str = "shop-dev-data") -> None:
        self.aws, self.returncode, self.data = aws, returncode, data
        self.commands: list[list[str]] = []
        self.protected_at_start: bool | None = None

    def __call__(self, command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        self.protected_at_start = self.aws.protected(self.data) if self.data in self.aws.stacks else None
        self.aws.calls.append(("cdk", command))
        return subprocess.CompletedProcess(command, self.returncode)


pytestmark = pytest.mark.usefixtures("offline_aws")  # tests/conftest.py: fake keys, moto


@pytest.fixture
def dev() -> Clients:
    """dev (targets [ecs], no account: the caller's) with its three stacks deployed."""
    aws = Clients()
    aws.deploy("shop-dev-network")
    aws.deploy(
        "shop-dev-data",
        {"DatabaseInstanceId": "shop-dev-db", "CacheReplicationGroupId": "shop-dev-cache"},
        protected=True,
    )
    aws.deploy("shop-dev-ecs", {"LogGroups": "{}"})
    return aws


def test_prod_is_refused_before_anything_is_read(capsys: pytest.CaptureFixture[str]) -> None:
    class Untouchable:
        default_region = REGION

        def client(self, service: str, region: str) -> Any:
            raise AssertionError(f"prod must not reach AWS ({service})")

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("cdk must not run for prod")

    for argv in (["--stage", "prod"], ["--config", str(ROOT / "config" / "stages" / "prod.yaml"), "--yes"]):
        assert destroy.main(argv, aws=Untouchable(), run=never) == destroy.REFUSED
        out, err = capsys.readouterr()
        assert out == "" and len(err.splitlines()) == 1
        assert "[config] STAGE: 'prod' — prod is never destroyed from here; to change it, edit" in err
        assert "make deploy STAGE=prod" in err and "CloudFormation console" in err


def test_the_plan_says_what_goes_and_what_stays(dev: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    run = Recorder(dev)
    assert destroy.main(["--stage", "dev"], aws=dev, stdin=io.StringIO("no\n"), run=run) == destroy.FAILED
    out, err = capsys.readouterr()
    assert "==> stage dev of shop: account 123456789012 (the caller's: the stage file names none)" in err
    lines = out.splitlines()
    assert lines[0] == "==> make destroy STAGE=dev deletes, compute first and network last, in eu-west-1:"
    assert [line.split()[0] for line in lines[1:8] if line.startswith("  shop-")] == [
        "shop-dev-ecs",
        "shop-dev-data",
        "shop-dev-network",
    ]
    assert "  shop-dev-data     UPDATE_COMPLETE: termination protection on: turned off only after you confirm" in lines
    assert (
        "    PostgreSQL shop-dev-db: DELETED with all its data and automated backups — no final snapshot "
        "(only prod keeps one)"
    ) in lines
    assert "    Redis shop-dev-cache: DELETED, no final snapshot" in lines
    assert "  shop-dev-ecs      UPDATE_COMPLETE: the ECS cluster with web, migrate, the ALB and its access-log" in out
    kept = out[out.index("==> it keeps:") :]
    assert (
        "the Parameter Store settings /shop/dev/* (4: DATABASE_URL, JWT_SECRET_KEY, REDIS_URL, SECRET_KEY; retained"
    ) in kept
    assert "RDS's /aws/rds/instance/shop-dev-db/*" in kept
    assert "the images in 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api: not this project's" in kept
    assert "the alarm topic's KMS key" in kept and "the CDK bootstrap (CDKToolkit)" in kept
    assert "Elastic Beanstalk" not in kept  # dev has no eb target


def test_a_mismatched_confirmation_changes_nothing(dev: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    for answer in ("no\n", "Dev\n", "prod\n", ""):  # "" is end of input
        run = Recorder(dev)
        assert destroy.main(["--stage", "dev"], aws=dev, stdin=io.StringIO(answer), run=run) == destroy.FAILED
        assert run.commands == [] and dev.calls == []
        assert dev.protected("shop-dev-data")
        err = capsys.readouterr().err
        assert "type the stage name (dev) to destroy it, anything else cancels:" in err
        assert "==> not destroyed: the answer was not 'dev'; nothing was changed" in err


def test_confirmed_turns_protection_off_then_runs_cdk_destroy(dev: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    run = Recorder(dev)
    assert destroy.main(["--stage", "dev"], aws=dev, stdin=io.StringIO("dev\n"), run=run) == destroy.DESTROYED
    command = ["npx", "--no-install", "cdk", "destroy", "--all", "--force", "-c", "stage=dev"]
    assert dev.calls == [("termination-protection", False), ("cdk", command)]
    assert run.protected_at_start is False
    err = capsys.readouterr().err
    assert "==> termination protection of shop-dev-data turned off" in err
    assert "==> destroyed shop-dev" in err


def test_yes_skips_the_question(dev: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    run = Recorder(dev)  # an empty stdin would cancel if it were read
    assert destroy.main(["--stage", "dev", "--yes"], aws=dev, stdin=io.StringIO(""), run=run) == destroy.DESTROYED
    assert len(run.commands) == 1
    assert "type the stage name" not in capsys.readouterr().err


def test_a_failed_cdk_destroy_turns_protection_back_on(dev: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    run = Recorder(dev, returncode=1)
    assert destroy.main(["--stage", "dev", "--yes"], aws=dev, run=run) == destroy.FAILED
    assert [c[0] for c in dev.calls] == ["termination-protection", "cdk", "termination-protection"]
    assert dev.protected("shop-dev-data")
    err = capsys.readouterr().err
    assert "==> cdk destroy stopped with exit code 1" in err
    assert "==> shop-dev-data still exists: termination protection turned back on" in err


def test_staging_database_deletion_protection_is_lifted_only_after_confirming(
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws = Clients()
    aws.deploy("shop-staging-network")
    aws.deploy("shop-staging-data", {"DatabaseInstanceId": DB}, protected=True)
    rds = aws.client("rds", REGION)
    rds.create_db_instance(
        DBInstanceIdentifier=DB,
        DBInstanceClass="db.t4g.small",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="not-a-real-password-1",
        DeletionProtection=True,
    )

    def protection() -> bool:
        return bool(rds.describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]["DeletionProtection"])

    assert destroy.main(["--stage", "staging"], aws=aws, stdin=io.StringIO("dev\n"), run=Recorder(aws)) == 1
    assert protection() and "its deletion protection (database.deletion_protection)" in capsys.readouterr().out

    seen: list[bool] = []

    def cdk(command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        seen.append(protection())
        return subprocess.CompletedProcess(command, 1)  # fails: everything is turned back on

    assert destroy.main(["--stage", "staging"], aws=aws, stdin=io.StringIO("staging\n"), run=cdk) == 1
    assert seen == [False] and protection() and aws.protected("shop-staging-data")
    err = capsys.readouterr().err
    assert f"==> deletion protection of PostgreSQL {DB} turned off" in err
    assert f"==> PostgreSQL {DB} still exists: deletion protection turned back on" in err


def test_credentials_of_another_account_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    aws = Clients()
    aws.deploy("shop-staging-data", protected=True)
    staging = yaml.safe_load((ROOT / "config" / "stages" / "staging.yaml").read_text())
    path = tmp_path / "staging.yaml"
    path.write_text(yaml.safe_dump({**staging, "account": "111111111111"}))
    run = Recorder(aws, data="shop-staging-data")
    assert destroy.main(["--config", str(path), "--yes"], aws=aws, run=run) == destroy.REFUSED
    out, err = capsys.readouterr()
    assert out == "" and run.commands == [] and aws.calls == []
    assert "cannot destroy shop-staging: [region-mismatch] account: 123456789012 — the credentials are for" in err


def test_nothing_deployed_is_nothing_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    run = Recorder(Clients())
    assert destroy.main(["--stage", "dev", "--yes"], aws=Clients(), run=run) == destroy.DESTROYED
    assert run.commands == []
    assert "==> nothing to destroy: no stack of shop-dev in eu-west-1" in capsys.readouterr().out


def test_a_deployed_stack_of_a_removed_target_is_named(dev: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    dev.deploy("shop-dev-eks")
    destroy.main(["--stage", "dev"], aws=dev, stdin=io.StringIO("\n"), run=Recorder(dev))
    out = capsys.readouterr().out
    assert "warning: shop-dev-eks is deployed but eks is not in targets: cdk destroy does not see it" in out
