"""AWS errors become one line each; clients retry throttling adaptively; the runner never lets one escape."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    TokenRetrievalError,
)
from doctor_world import REGION, Clients

from config import AppConfig
from doctor.aws import Aws, explain
from doctor.checks import run_checks
from doctor.model import Check, Context, Finding, NotChecked, Verdict


def client_error(code: str, message: str = "details", operation: str = "DescribeThings") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message + "\nsecond line"}}, operation)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NoCredentialsError(), "no AWS credentials found"),
        (TokenRetrievalError(provider="sso", error_msg="expired"), "SSO token could not be refreshed"),
        (
            EndpointConnectionError(endpoint_url="https://rds.xx-nowhere-1.amazonaws.com/"),
            "cannot reach https://rds.xx-nowhere-1.amazonaws.com/",
        ),
        (ReadTimeoutError(endpoint_url="https://ssm"), "AWS did not answer in time"),
        (client_error("AccessDeniedException", "not authorized"), "access denied for DescribeThings: "),
        (client_error("UnauthorizedOperation"), "access denied for DescribeThings"),
        (client_error("ExpiredToken"), "credentials rejected (ExpiredToken)"),
        (client_error("ThrottlingException"), "throttled by AWS on DescribeThings even after retries"),
        (client_error("SomethingElse", "odd"), "DescribeThings failed: SomethingElse: odd"),
        (RuntimeError("boom"), "unexpected RuntimeError: boom"),
    ],
)
def test_every_error_is_one_line(error: BaseException, expected: str) -> None:
    line = explain(error)
    assert line.startswith(expected)
    assert "\n" not in line and "Traceback" not in line


def test_clients_retry_adaptively_and_are_reused() -> None:
    aws = Aws()
    client = aws.client("ssm", REGION)
    # botocore counts the first call too: max_attempts=8 retries means 9 attempts in all.
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 9}
    assert client.meta.region_name == REGION
    assert aws.client("ssm", REGION) is client
    assert aws.default_region == REGION


def test_runner_turns_anything_into_one_warn_row(clients: Clients, config: AppConfig) -> None:
    def denied(ctx: Context) -> list[Finding]:
        raise client_error("AccessDenied", "no", "GetThing")

    def skipped(ctx: Context) -> list[Finding]:
        raise NotChecked("stack shop-dev-data not deployed in eu-west-1")

    def broken(ctx: Context) -> list[Finding]:
        raise KeyError("Outputs")

    checks = [
        Check("redis-sg", "cache", denied),
        Check("logs-missing", "logs", skipped),
        Check("rds-public-access", "db", broken),
    ]
    started: list[str] = []
    ctx = Context(config=config, aws=clients, region=REGION)
    findings = run_checks(ctx, checks, on_start=lambda check: started.append(check.check_id))
    assert started == ["redis-sg", "logs-missing", "rds-public-access"]
    assert [(f.check_id, f.resource, f.verdict) for f in findings] == [
        ("redis-sg", "cache", Verdict.WARN),
        ("logs-missing", "logs", Verdict.WARN),
        ("rds-public-access", "db", Verdict.WARN),
    ]
    assert findings[0].advice.startswith("could not run: access denied for GetThing")
    assert findings[1].advice == "not checked: stack shop-dev-data not deployed in eu-west-1"
    assert findings[2].advice == "could not run: unexpected KeyError: 'Outputs'"
