"""``make logs`` (tools/logs.py): which group and streams it reads, what it prints, what it masks and refuses.

CloudWatch Logs, SSM and STS are moto. moto's CloudFormation cannot be imported in this venv (it needs
``openapi_spec_validator``), so the compute stacks and their ``LogGroups`` output live in a ``describe_stacks``
fake that raises the ``ValidationError`` AWS raises for an unknown stack (as in tests/doctor/doctor_world.py).
The stage is config/examples/services.yaml (staging, account 123456789012 = moto's; web, worker, two jobs and the
migration step on ecs, eb and eks).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError, NoCredentialsError

from config.redact import hidden
from tools import logs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "examples" / "services.yaml"
REGION = "eu-west-1"
NOW = time.time()  # moto refuses events older than 14 days: the tests' clock is the real one, frozen
ECS_GROUP = "shop-staging-ecs-ServiceLogs1234"
WORKER_GROUP = "shop-staging-ecs-WorkerLogs5678"
EKS_GROUP = "/shop/staging/eks/app"
EKS = "fargate-kube.var.log.containers."
PROVIDED = "correct-horse-battery-staple-42"  # STRIPE_API_KEY's value: no secret-looking shape at all
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ .*$")


class FakeCloudFormation:
    def __init__(self, stacks: dict[str, dict[str, Any]]) -> None:
        self.stacks = stacks

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in self.stacks:
            error = {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}}
            raise ClientError(error, "DescribeStacks")
        return {"Stacks": [self.stacks[StackName]]}


class Clients:
    """A ``ClientSource``: moto for everything but CloudFormation."""

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}
        self.session = boto3.session.Session(region_name=REGION)

    @property
    def default_region(self) -> str | None:
        return REGION

    def client(self, service: str, region: str) -> Any:
        if service == "cloudformation":
            return FakeCloudFormation(self.stacks)
        return self.session.client(service, region_name=region)

    def deploy(self, purpose: str, groups: dict[str, str]) -> None:
        name = f"shop-staging-{purpose}"
        self.stacks[name] = {
            "StackName": name,
            "StackStatus": "UPDATE_COMPLETE",
            "Outputs": [{"OutputKey": "LogGroups", "OutputValue": json.dumps(groups)}],
        }


class NoCredentials:
    default_region = REGION

    def client(self, service: str, region: str) -> Any:
        class Sts:
            def get_caller_identity(self) -> dict[str, str]:
                raise NoCredentialsError()

        return Sts()


pytestmark = pytest.mark.usefixtures("offline_aws")  # tests/conftest.py: fake keys, moto


@pytest.fixture
def aws() -> Clients:
    clients = Clients()
    groups = {"web": ECS_GROUP, "worker": WORKER_GROUP, "nightly-report": "g3", "migrate": "g4"}
    clients.deploy("ecs", groups)
    clients.deploy("eks", dict.fromkeys(("web", "worker", "purge-sessions", "migrate"), EKS_GROUP))
    clients.client("ssm", REGION).put_parameter(
        Name="/shop/staging/STRIPE_API_KEY", Value=PROVIDED, Type="SecureString"
    )
    return clients


def put(aws: Clients, group: str, stream: str, *events: tuple[float, str]) -> None:
    """Events at ``NOW - seconds ago``."""
    client = aws.client("logs", REGION)
    if not client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        client.create_log_group(logGroupName=group)
    if not client.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    batch = [{"timestamp": int((NOW - ago) * 1000), "message": message} for ago, message in sorted(events)[::-1]]
    client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def run(aws: Any, *args: str, capsys: pytest.CaptureFixture[str], **kwargs: Any) -> tuple[int, list[str], str]:
    code = logs.main(["--config", str(EXAMPLE), *args], aws=aws, now=lambda: NOW, **kwargs)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_web_on_ecs_oldest_first_one_line_each_after_the_banner(
    aws: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    task_a, task_b = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
    put(aws, ECS_GROUP, f"web/app/{task_a}", (3600, "too old for 10m"), (300, "GET /health 200"), (60, "third"))
    put(aws, ECS_GROUP, f"web/app/{task_b}", (120, "second\nwith a second line"))
    code, out, err = run(aws, capsys=capsys)
    assert code == logs.OK
    assert [line.split(" ", 1)[1] for line in out] == [
        "01234567 GET /health 200",
        "fedcba98 second\\nwith a second line",
        "01234567 third",
    ]
    assert all(LINE.match(line) for line in out)
    banner = err.splitlines()
    assert banner[0] == "==> stage staging of shop: account 123456789012, region eu-west-1"
    assert banner[1].startswith("==> caller arn:aws:")
    assert banner[2] == (
        f"==> web on ecs: log group {ECS_GROUP} (stack shop-staging-ecs), streams web/app/*, since 10m"
    )
    assert banner[3].startswith("==> masked: secret-looking values and the stage's 1 SecureString value(s)")


def test_a_worker_on_eks_reads_only_its_pods_streams(aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    put(aws, EKS_GROUP, f"{EKS}shop-7d9f8b6c4-x2k9p_app_app-1a2b.log", (50, "web request"))
    put(aws, EKS_GROUP, f"{EKS}shop-worker-5c6d7f8b9-abcde_app_app-3c4d.log", (40, "task done"))
    put(aws, EKS_GROUP, f"{EKS}shop-purge-sessions-29000000-qwert_app_app-5e6f.log", (30, "purged 3"))
    put(aws, EKS_GROUP, f"{EKS}coredns-6b9c4-zzzzz_kube-system_coredns-7a8b.log", (20, "dns"))

    code, out, err = run(aws, "--service", "worker", "--target", "eks", capsys=capsys)
    assert code == logs.OK
    assert [line.split(" ", 1)[1] for line in out] == ["shop-worker-5c6d7f8b9-abcde task done"]
    assert f"==> worker on eks: log group {EKS_GROUP} (stack shop-staging-eks), streams {EKS}shop-worker-*" in err

    # web's prefix (shop-) also matches the other services' pods: those are left out
    code, out, _ = run(aws, "--target", "eks", capsys=capsys)
    assert [line.split(" ", 1)[1] for line in out] == ["shop-7d9f8b6c4-x2k9p web request"]


def test_secret_looking_values_and_the_stages_secure_strings_are_masked(
    aws: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    stripe = "sk_live_51HxYzAbCdEfGhIjKlMnOp"
    put(
        aws,
        ECS_GROUP,
        "web/app/0123456789abcdef0123456789abcdef",
        (50, f"charging with {stripe}"),
        (40, 'login {"user": "bob", "password": "hunter 22"}'),
        (30, "connecting to postgresql://app_user:Pw0rd9x@db.internal:5432/app"),
        (20, f"configured payments key={PROVIDED} ok"),
        (10, f"plain mention {PROVIDED}"),
    )
    code, out, err = run(aws, capsys=capsys)
    assert code == logs.OK
    text = "\n".join(out) + err
    for secret in (stripe, "hunter 22", "Pw0rd9x", PROVIDED):
        assert secret not in text
    messages = [line.split(" ", 2)[2] for line in out]
    assert messages == [
        "charging with <hidden: 30 chars, sha256 " + hidden(stripe).split("sha256 ")[1],
        'login {"user": "bob", "password": "<hidden: 9 chars>"}',
        "connecting to postgresql://app_user:<hidden: 7 chars>@db.internal:5432/app",
        f"configured payments key={hidden(PROVIDED)} ok",
        f"plain mention {hidden(PROVIDED)}",
    ]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), (" 5m ", 300)])
def test_since_accepts_seconds_minutes_hours_days(text: str, seconds: int) -> None:
    assert logs.parse_since(text) == seconds


@pytest.mark.parametrize("text", ["10", "10x", "0m", "-5m", "1.5h", "", "m"])
def test_a_bad_since_is_one_config_line(text: str, aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(aws, f"--since={text}", capsys=capsys)
    assert code == logs.REFUSED and out == []
    assert err.startswith("cannot read logs: [config] SINCE: ") and "30s, 10m, 2h or 1d" in err
    assert len(err.splitlines()) == 1


def test_since_widens_the_window(aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    put(aws, ECS_GROUP, "web/app/0123456789abcdef0123456789abcdef", (7000, "two hours ago"), (60, "now"))
    assert [line.split(" ", 2)[2] for line in run(aws, "--since", "2h", capsys=capsys)[1]] == ["two hours ago", "now"]
    assert [line.split(" ", 2)[2] for line in run(aws, "--since", "30m", capsys=capsys)[1]] == ["now"]


def test_an_unknown_service_lists_the_services(aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(aws, "--service", "wroker", capsys=capsys)
    assert code == logs.REFUSED and out == []
    assert err == (
        "cannot read logs: [config] SERVICE: 'wroker' — not a service of stage staging; its services: web, worker, "
        "nightly-report, purge-sessions, migrate\n"
    )


def test_a_target_that_does_not_run_the_service_is_refused(aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(aws, "--service", "purge-sessions", "--target", "ecs", capsys=capsys)
    assert code == logs.REFUSED
    assert "[config] TARGET: 'ecs' — job purge-sessions runs on eks only" in err


def test_a_stack_not_deployed_names_the_deploy(aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(aws, "--target", "eb", capsys=capsys)
    assert code == logs.REFUSED and out == []
    assert err.splitlines()[-1] == (
        "cannot read logs: [logs-missing] shop-staging-eb: not deployed in eu-west-1 — eb is in targets but its "
        "stack is not: run make deploy STAGE=staging"
    )
    assert "Traceback" not in err


def test_a_missing_log_group_is_one_line(aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(aws, capsys=capsys)  # the stack names ECS_GROUP; nothing created it
    assert code == logs.REFUSED and out == []
    assert err.splitlines()[-1].startswith(
        f"cannot read logs: [logs-missing] {ECS_GROUP}: no such log group in eu-west-1 — named by shop-staging-ecs"
    )


def test_credentials_of_another_account_are_refused_before_reading(
    aws: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(aws, ECS_GROUP, "web/app/0123456789abcdef0123456789abcdef", (60, "must not be shown"))
    path = tmp_path / "staging.yaml"
    example = {k: v for k, v in yaml.safe_load(EXAMPLE.read_text()).items() if k != "operators"}  # its account's
    path.write_text(yaml.safe_dump({**example, "account": "111111111111"}))
    code = logs.main(["--config", str(path)], aws=aws, now=lambda: NOW)
    out, err = capsys.readouterr()
    assert code == logs.REFUSED and out == ""
    assert err.splitlines()[-1] == (
        "cannot read logs: [region-mismatch] account: 123456789012 — the credentials are for account 123456789012, "
        "the stage file pins 111111111111; switch profile (AWS_PROFILE=... or aws sso login) to that account"
    )


def test_no_credentials_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(NoCredentials(), capsys=capsys)
    assert code == logs.REFUSED and out == []
    assert err.startswith("cannot read logs: [local-credentials] caller: no AWS credentials found")
    assert len(err.splitlines()) == 1


def test_follow_polls_from_the_last_event_until_ctrl_c(aws: Clients, capsys: pytest.CaptureFixture[str]) -> None:
    stream = "web/app/0123456789abcdef0123456789abcdef"
    put(aws, ECS_GROUP, stream, (60, "before"))
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            put(aws, ECS_GROUP, stream, (1, "while following"))
        elif len(naps) == 3:
            raise KeyboardInterrupt

    code, out, err = run(aws, "--follow", capsys=capsys, sleep=sleep)
    assert code == logs.OK
    assert [line.split(" ", 2)[2] for line in out] == ["before", "while following"]  # each once
    assert naps == [logs.POLL_SECONDS] * 3
    assert "following (Ctrl-C stops)" in err and "Traceback" not in err
