"""Unit tests for the secret roll-out handler (functions/secret_rollout/index.py).

ECS and Elastic Beanstalk are fakes: scripted ``describe_*`` answers and recorded ``update_*`` calls (moto cannot
set a deployment's ``createdAt``, an environment's ``DateUpdated`` or a non-Ready status). The module is loaded inside
moto with fake credentials all the same, so nothing can reach AWS.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

PARAM = "/shop/prod/DATABASE_URL"
OTHER_PARAM = "/shop/prod/REDIS_URL"
CHANGED = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)
BEFORE = CHANGED - timedelta(days=3)
AFTER = CHANGED + timedelta(seconds=20)
CLUSTER = "arn:aws:ecs:eu-west-1:123456789012:cluster/shop-prod"
WEB_ARN = "arn:aws:ecs:eu-west-1:123456789012:service/shop-prod/web"
CONTEXT = SimpleNamespace(log_stream_name="2026/12/02/[$LATEST]abc")


@pytest.fixture
def mod(handler_module: Any) -> Iterator[ModuleType]:
    with handler_module("secret_rollout") as module:
        yield module


class FakeEcs:
    """``describe_services`` answers from ``services`` (name -> description); ``update_service`` is recorded."""

    def __init__(self, services: dict[str, dict[str, Any]], fail_updates: frozenset[str] = frozenset()) -> None:
        self.services = services
        self.fail_updates = fail_updates
        self.described: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    def describe_services(self, **kwargs: Any) -> dict[str, Any]:
        self.described.append(kwargs)
        assert len(kwargs["services"]) <= 10
        found, failures = [], []
        for requested in kwargs["services"]:
            service = self.services.get(requested.rsplit("/", 1)[-1])
            if service is None:
                failures.append({"arn": requested, "reason": "MISSING"})
            else:
                found.append(service)
        return {"services": found, "failures": failures}

    def update_service(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        if kwargs["service"].rsplit("/", 1)[-1] in self.fail_updates:
            raise RuntimeError("throttled")
        deployment = {"id": "ecs-svc/999", "status": "PRIMARY", "createdAt": datetime.now(UTC)}
        return {"service": {"serviceName": kwargs["service"], "deployments": [deployment]}}


class FakeEb:
    """``describe_environments`` answers from ``environments``; ``update_environment`` is recorded."""

    def __init__(self, environments: list[dict[str, Any]]) -> None:
        self.environments = environments
        self.described: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    def describe_environments(self, **kwargs: Any) -> dict[str, Any]:
        self.described.append(kwargs)
        wanted = set(kwargs["EnvironmentNames"])
        return {"Environments": [e for e in self.environments if e["EnvironmentName"] in wanted]}

    def update_environment(self, **kwargs: Any) -> dict[str, Any]:
        self.updates.append(kwargs)
        return {"EnvironmentName": kwargs["EnvironmentName"], "Status": "Updating"}


class Untouchable:
    """A client that must not be used at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


def _service(name: str, created: datetime, status: str = "ACTIVE") -> dict[str, Any]:
    deployments = [
        {"id": f"ecs-svc/{name}-new", "status": "PRIMARY", "createdAt": created},
        {"id": f"ecs-svc/{name}-old", "status": "ACTIVE", "createdAt": BEFORE - timedelta(days=30)},
    ]
    return {
        "serviceName": name,
        "serviceArn": f"arn:aws:ecs:eu-west-1:123456789012:service/shop-prod/{name}",
        "status": status,
        "deployments": deployments,
    }


def _environment(name: str, updated: datetime, status: str = "Ready", version: str = "v-42") -> dict[str, Any]:
    return {
        "EnvironmentName": name,
        "ApplicationName": "shop-prod",
        "VersionLabel": version,
        "Status": status,
        "Health": "Green",
        "DateUpdated": updated,
    }


def _event(name: str = PARAM, operation: str = "Update", time: str = "2026-12-02T10:00:00Z") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "source": "aws.ssm",
        "detail-type": "Parameter Store Change",
        "account": "123456789012",
        "time": time,
        "region": "eu-west-1",
        "resources": [f"arn:aws:ssm:eu-west-1:123456789012:parameter{name}"],
        "detail": {"name": name, "type": "SecureString", "operation": operation},
    }


def _ecs_config(readers: dict[str, list[str]]) -> str:
    return json.dumps({"ecs": {"cluster": CLUSTER, "readers": readers}})


def _eb_config(readers: dict[str, list[str]]) -> str:
    return json.dumps({"eb": {"readers": readers}})


def _use(mod: ModuleType, monkeypatch: pytest.MonkeyPatch, config: str, ecs: Any = None, eb: Any = None) -> None:
    monkeypatch.setenv("ROLLOUT", config)
    monkeypatch.setattr(mod, "_clients", lambda: (ecs or Untouchable(), eb or Untouchable()))


# --- ECS -------------------------------------------------------------------------------------------------------


def test_ecs_restarts_a_service_whose_deployment_predates_the_change(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ecs = FakeEcs({"web": _service("web", BEFORE)})
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web"]}), ecs=ecs)

    result = mod.handler(_event(), CONTEXT)

    assert result == {"parameter": PARAM, "restarted": ["web"], "skipped": []}
    assert ecs.described == [{"cluster": CLUSTER, "services": ["web"]}]
    assert ecs.updates == [{"cluster": CLUSTER, "service": "web", "forceNewDeployment": True}]
    assert "new deployment ecs-svc/999 started" in caplog.text


@pytest.mark.parametrize("created", [CHANGED, AFTER], ids=["same-second", "after"])
def test_ecs_skips_a_service_whose_primary_deployment_is_not_older_than_the_change(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, created: datetime
) -> None:
    ecs = FakeEcs({"web": _service("web", created)})
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web"]}), ecs=ecs)

    result = mod.handler(_event(), CONTEXT)

    assert result == {"parameter": PARAM, "restarted": [], "skipped": ["web"]}
    assert ecs.updates == []


def test_ecs_the_events_of_one_rotation_restart_once(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first event starts a deployment; the later events of the same rotation (earlier times) skip it."""
    services = {"web": _service("web", BEFORE)}
    ecs = FakeEcs(services)
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web"]}), ecs=ecs)

    mod.handler(_event(time="2026-12-02T10:00:00Z"), CONTEXT)
    services["web"] = _service("web", CHANGED + timedelta(seconds=2))  # what ECS now reports
    for second in ("00", "01", "02"):
        assert mod.handler(_event(time=f"2026-12-02T10:00:{second}Z"), CONTEXT)["skipped"] == ["web"]

    assert len(ecs.updates) == 1


def test_ecs_several_services_each_decided_on_its_own(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ecs = FakeEcs(
        {
            "web": _service("web", BEFORE),
            "worker": _service("worker", BEFORE),
            "fresh": _service("fresh", AFTER),
            "retired": _service("retired", BEFORE, status="INACTIVE"),
        }
    )
    readers = {PARAM: [WEB_ARN, "worker", "fresh", "retired", "gone"], OTHER_PARAM: ["cache-only"]}
    _use(mod, monkeypatch, _ecs_config(readers), ecs=ecs)

    result = mod.handler(_event(), CONTEXT)

    assert result == {"parameter": PARAM, "restarted": [WEB_ARN, "worker"], "skipped": ["fresh", "retired", "gone"]}
    assert [u["service"] for u in ecs.updates] == [WEB_ARN, "worker"]
    assert all(u == {"cluster": CLUSTER, "service": u["service"], "forceNewDeployment": True} for u in ecs.updates)
    assert "service retired is INACTIVE: skipped" in caplog.text
    assert "service gone not found in cluster shop-prod: skipped" in caplog.text
    assert "cache-only" not in caplog.text


def test_ecs_more_than_ten_services_are_described_in_batches(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"svc{i}" for i in range(23)]
    ecs = FakeEcs({n: _service(n, BEFORE) for n in names})
    _use(mod, monkeypatch, _ecs_config({PARAM: names}), ecs=ecs)

    result = mod.handler(_event(), CONTEXT)

    assert [len(call["services"]) for call in ecs.described] == [10, 10, 3]
    assert result["restarted"] == names


def test_ecs_a_failed_update_still_rolls_out_the_others_then_fails_for_a_retry(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    ecs = FakeEcs({"web": _service("web", BEFORE), "worker": _service("worker", BEFORE)}, frozenset({"web"}))
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web", "worker"]}), ecs=ecs)

    with pytest.raises(mod.RolloutError) as raised:
        mod.handler(_event(), CONTEXT)

    assert [u["service"] for u in ecs.updates] == ["web", "worker"]
    assert str(raised.value) == (
        "[secret-rollout-stale] could not roll out 1 ECS service(s): web: RuntimeError: throttled"
    )


# --- events that roll nothing out ----------------------------------------------------------------------------------


def test_unknown_parameter_has_no_reader(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web"]}))  # any client call would fail

    result = mod.handler(_event(name="/shop/prod/UNRELATED"), CONTEXT)

    assert result == {"parameter": "/shop/prod/UNRELATED", "restarted": [], "skipped": []}
    assert "no reader" in caplog.text


@pytest.mark.parametrize("operation", ["Delete", "LabelParameterVersion"])
def test_operations_other_than_create_and_update_are_ignored(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, operation: str
) -> None:
    caplog.set_level(logging.INFO)
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web"]}))

    result = mod.handler(_event(operation=operation), CONTEXT)

    assert result == {"parameter": PARAM, "restarted": [], "skipped": []}
    assert f"operation {operation} ignored" in caplog.text


def test_create_rolls_out_like_update(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    ecs = FakeEcs({"web": _service("web", BEFORE)})
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web"]}), ecs=ecs)

    assert mod.handler(_event(operation="Create"), CONTEXT)["restarted"] == ["web"]


def test_an_event_from_another_source_is_ignored(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web"]}))
    event = {**_event(), "source": "aws.secretsmanager", "detail-type": "AWS API Call via CloudTrail"}

    assert mod.handler(event, CONTEXT) == {"parameter": PARAM, "restarted": [], "skipped": []}


def test_an_event_without_a_valid_time_is_refused(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(mod, monkeypatch, _ecs_config({PARAM: ["web"]}))

    with pytest.raises(mod.RolloutError, match=r"^\[secret-rollout-stale\] the event has no valid time"):
        mod.handler(_event(time="yesterday"), CONTEXT)


# --- Elastic Beanstalk -----------------------------------------------------------------------------------------


def test_eb_redeploys_the_running_version(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    eb = FakeEb([_environment("shop-prod-web", BEFORE, version="app-7f3c-abc")])
    _use(mod, monkeypatch, _eb_config({PARAM: ["shop-prod-web"]}), eb=eb)

    result = mod.handler(_event(), CONTEXT)

    assert result == {"parameter": PARAM, "restarted": ["shop-prod-web"], "skipped": []}
    assert eb.described == [{"EnvironmentNames": ["shop-prod-web"], "IncludeDeleted": False}]
    assert eb.updates == [{"EnvironmentName": "shop-prod-web", "VersionLabel": "app-7f3c-abc"}]
    assert "redeploying version app-7f3c-abc" in caplog.text


@pytest.mark.parametrize("status", ["Updating", "Launching", "Aborting"])
def test_eb_not_ready_raises_so_lambda_retries(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, status: str
) -> None:
    eb = FakeEb([_environment("shop-prod-web", BEFORE, status=status), _environment("shop-prod-admin", BEFORE)])
    _use(mod, monkeypatch, _eb_config({PARAM: ["shop-prod-web", "shop-prod-admin"]}), eb=eb)

    with pytest.raises(mod.RolloutError) as raised:
        mod.handler(_event(), CONTEXT)

    assert str(raised.value) == (
        "[secret-rollout-stale] could not redeploy every Elastic Beanstalk environment "
        f"(not Ready, retry later: shop-prod-web ({status}))"
    )
    assert eb.updates == [{"EnvironmentName": "shop-prod-admin", "VersionLabel": "v-42"}]  # the Ready one still goes
    assert "Lambda's asynchronous retry" in caplog.text


@pytest.mark.parametrize("status", ["Ready", "Updating"])
def test_eb_updated_since_the_change_is_skipped(mod: ModuleType, monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    eb = FakeEb([_environment("shop-prod-web", AFTER, status=status)])
    _use(mod, monkeypatch, _eb_config({PARAM: ["shop-prod-web"]}), eb=eb)

    result = mod.handler(_event(), CONTEXT)

    assert result == {"parameter": PARAM, "restarted": [], "skipped": ["shop-prod-web"]}
    assert eb.updates == []


def test_eb_missing_or_terminated_environment_is_skipped(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    eb = FakeEb([_environment("old", BEFORE, status="Terminated")])
    _use(mod, monkeypatch, _eb_config({PARAM: ["old", "never"]}), eb=eb)

    result = mod.handler(_event(), CONTEXT)

    assert result == {"parameter": PARAM, "restarted": [], "skipped": ["old", "never"]}
    assert eb.updates == []
    assert "environment never not found" in caplog.text


# --- configuration ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"ecs": {"readers": ', "ROLLOUT is not valid JSON (Expecting value at line 1 column 21)"),
        ("", "environment variable ROLLOUT is not set"),
        ('["ecs"]', 'ROLLOUT must be a JSON object with the keys "ecs" and/or "eb"'),
        ('{"eks": {"readers": {"/a": ["x"]}}}', 'ROLLOUT must be a JSON object with the keys "ecs" and/or "eb"'),
        ('{"eb": {"readers": []}}', "ROLLOUT: eb.readers must be an object"),
        ('{"eb": {"readers": {"/a": "env"}}}', "ROLLOUT: eb.readers['/a'] must be a non-empty list"),
        ('{"eb": {"readers": {"/a": [""]}}}', "ROLLOUT: eb.readers['/a'] must be a non-empty list"),
        ('{"ecs": {"readers": {"/a": ["web"]}}}', "ROLLOUT: ecs.cluster (name or ARN) is required"),
    ],
)
def test_bad_rollout_configuration_is_one_clear_error(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, raw: str, message: str
) -> None:
    _use(mod, monkeypatch, raw)

    with pytest.raises(mod.RolloutError) as raised:
        mod.handler(_event(), CONTEXT)

    text = str(raised.value)
    assert text.startswith(f"[secret-rollout-stale] {message}")
    assert "\n" not in text
    assert raised.value.__suppress_context__ or raised.value.__context__ is None  # no chained traceback


def test_missing_rollout_variable_is_one_clear_error(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLOUT", raising=False)
    monkeypatch.setattr(mod, "_clients", lambda: (Untouchable(), Untouchable()))

    with pytest.raises(mod.RolloutError, match=r"^\[secret-rollout-stale\] environment variable ROLLOUT is not set$"):
        mod.handler(_event(), CONTEXT)


# --- no parameter access -------------------------------------------------------------------------------------------


def test_the_client_factory_builds_no_ssm_or_kms_client(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def fake_client(service: str, **_: Any) -> str:
        built.append(service)
        return service

    monkeypatch.setattr(mod.boto3, "client", fake_client)

    assert mod._clients() == ("ecs", "elasticbeanstalk")
    assert built == ["ecs", "elasticbeanstalk"]


def test_the_eb_stack_rolls_out_its_environment_and_its_ecs_workers(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One function per stack: the EB stack's workers are ECS services next to the environment; one changed
    parameter restarts both, and a busy environment does not stop the workers' deployment."""
    ecs = FakeEcs({"worker": _service("worker", BEFORE)})
    eb = FakeEb([_environment("shop-prod-web", BEFORE, status="Updating")])
    config = json.dumps(
        {"ecs": {"cluster": CLUSTER, "readers": {PARAM: ["worker"]}}, "eb": {"readers": {PARAM: ["shop-prod-web"]}}}
    )
    _use(mod, monkeypatch, config, ecs=ecs, eb=eb)

    with pytest.raises(mod.RolloutError, match="shop-prod-web"):
        mod.handler(_event(), CONTEXT)

    assert ecs.updates == [{"cluster": CLUSTER, "service": "worker", "forceNewDeployment": True}]
    assert eb.updates == []


class FakeCloudFormation:
    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        if StackName not in self.statuses:
            raise RuntimeError(f"Stack with id {StackName} does not exist")
        return {"Stacks": [{"StackName": StackName, "StackStatus": self.statuses[StackName]}]}


@pytest.mark.parametrize(("status", "deferred"), [("UPDATE_IN_PROGRESS", True), ("UPDATE_COMPLETE", False)])
def test_eb_waits_while_a_stack_of_the_stage_deploys(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, status: str, deferred: bool
) -> None:
    """A deploy that rewrites a parameter (data stack) and then updates the environment itself (EB stack) must not
    find the environment busy with our redeploy: while either stack is in progress the invocation fails (retried)."""
    eb = FakeEb([_environment("shop-prod-web", BEFORE)])
    config = json.dumps({"eb": {"readers": {PARAM: ["shop-prod-web"]}, "stacks": ["shop-prod-data", "shop-prod-eb"]}})
    _use(mod, monkeypatch, config, eb=eb)
    monkeypatch.setattr(mod, "_cloudformation", lambda: FakeCloudFormation({"shop-prod-data": status}))
    if deferred:
        with pytest.raises(mod.RolloutError, match=r"deferred while the stage deploys: shop-prod-data \(UPDATE_IN"):
            mod.handler(_event(), CONTEXT)
        assert eb.updates == []
    else:
        assert mod.handler(_event(), CONTEXT)["restarted"] == ["shop-prod-web"]
