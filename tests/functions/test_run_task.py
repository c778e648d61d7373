"""Unit tests for the run-task Provider handler (functions/run_task/index.py).

ECS runs on moto where moto can produce the state (start a Fargate task, poll it until STOPPED with exit 0, an
unknown task). moto 5.2.5 cannot serve the rest, so those tests use ``botocore.stub.Stubber`` and say so:
CloudFormation ``describe_stacks`` (moto's cloudformation backend fails to import here: no
``openapi_spec_validator``), a STOPPED task with a given exit code, stop code or container reason (moto's containers
always report exit code 0), ``run_task``/``describe_tasks`` ``failures`` (moto never returns any).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

REGION = "eu-west-1"
ACCOUNT = "123456789012"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/shop-dev-ecs/0f1e2d3c"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/shop-dev"
TASK_DEF_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/shop-dev-migrate:7"
TASK_ID = "5f0c6a0d2b1e4c7f9a8b7c6d5e4f3a2b"
TASK_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/shop-dev/{TASK_ID}"
LOG_GROUP = "/shop/dev/ecs"
LOG_PREFIX = "migrate"
CONTAINER = "app"
NOT_LOGGED = "do-not-log-this-value-4f1c"


@pytest.fixture
def mod(handler_module: Any) -> Iterator[ModuleType]:
    with handler_module("run_task") as module:
        yield module


@pytest.fixture
def ecs(mod: ModuleType) -> Any:
    return boto3.client("ecs", region_name=REGION)


@pytest.fixture
def ec2(mod: ModuleType) -> Any:
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def moto_props(ecs: Any, ec2: Any) -> dict[str, Any]:
    """A moto cluster, a Fargate task definition, a private subnet and a security group, as resource properties."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    # moto's Fargate run_task reads the ENI's private DNS name, which only exists with DNS hostnames on.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.16.0/20")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="compute", Description="compute", VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName="shop-dev")["cluster"]["clusterArn"]
    task_definition = ecs.register_task_definition(
        family="shop-dev-migrate",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        # moto sums container-level cpu/memory when placing a task (TypeError without them).
        containerDefinitions=[{"name": CONTAINER, "image": "img:1", "essential": True, "cpu": 256, "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    return _props(cluster, task_definition, [subnet], [group])


def _props(
    cluster: str = CLUSTER_ARN,
    task_definition: str = TASK_DEF_ARN,
    subnets: list[str] | None = None,
    groups: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:provider-framework-onEvent",
        "Cluster": cluster,
        "TaskDefinition": task_definition,
        "Subnets": subnets or ["subnet-0aaa", "subnet-0bbb"],
        "SecurityGroups": groups or ["sg-0ccc"],
        "ContainerName": CONTAINER,
        "LogGroup": LOG_GROUP,
        "LogStreamPrefix": LOG_PREFIX,
        "Trigger": "img:1",
    }


def _event(request_type: str, props: dict[str, Any], physical_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": props["ServiceToken"],
        "ResponseURL": "https://cfn-response.example/presigned",
        "StackId": STACK_ID,
        "RequestId": "req-1",
        "LogicalResourceId": "Migrate",
        "ResourceType": "Custom::RunTask",
        "ResourceProperties": props,
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if request_type == "Update":
        event["OldResourceProperties"] = {**props, "Trigger": "img:0"}
    return event


def _merged(event: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What the Provider framework hands to isComplete: the request merged with onEvent's output."""
    return {**event, **result}


def _context() -> Any:
    return SimpleNamespace(log_stream_name="2026/01/01/[$LATEST]abc")


def _stack_client(*statuses: str) -> tuple[Any, Stubber]:
    """Stubber: CloudFormation describe_stacks answering each status in turn (moto's backend cannot load here)."""
    client = boto3.client("cloudformation", region_name=REGION)
    stubber = Stubber(client)
    for status in statuses:
        stack = {"StackName": "shop-dev-ecs", "StackId": STACK_ID, "CreationTime": "2026-01-01T00:00:00Z"}
        stubber.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": status}]}, {"StackName": STACK_ID})
    stubber.activate()
    return client, stubber


def _use(mod: ModuleType, monkeypatch: pytest.MonkeyPatch, ecs: Any, cloudformation: Any) -> None:
    monkeypatch.setattr(mod, "_clients", lambda: (ecs, cloudformation))


def _stubbed_ecs() -> tuple[Any, Stubber]:
    client = boto3.client("ecs", region_name=REGION)
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


def _stopped(
    exit_code: int | None, stopped_reason: str, stop_code: str, container_reason: str | None = None
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": CONTAINER, "lastStatus": "STOPPED", "taskArn": TASK_ARN}
    if exit_code is not None:
        container["exitCode"] = exit_code
    if container_reason is not None:
        container["reason"] = container_reason
    sidecar = {"name": "log-router", "lastStatus": "STOPPED", "exitCode": 0, "taskArn": TASK_ARN}
    task = {
        "taskArn": TASK_ARN,
        "taskDefinitionArn": TASK_DEF_ARN,
        "clusterArn": CLUSTER_ARN,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stoppedReason": stopped_reason,
        "stopCode": stop_code,
        "containers": [sidecar, container],
    }
    return {"tasks": [task], "failures": []}


def _is_complete_stubbed(mod: ModuleType, monkeypatch: pytest.MonkeyPatch, response: dict[str, Any]) -> Any:
    """Stubber: describe_tasks answers ``response`` once; returns a callable running is_complete on TASK_ARN."""
    client, stubber = _stubbed_ecs()
    stubber.add_response("describe_tasks", response, {"cluster": CLUSTER_ARN, "tasks": [TASK_ARN]})
    _use(mod, monkeypatch, client, None)
    event = _merged(
        _event("Create", _props()), {"PhysicalResourceId": "run-task-Migrate", "Data": {"TaskArn": TASK_ARN}}
    )

    def run() -> Any:
        try:
            return mod.is_complete(event, _context())
        finally:
            stubber.assert_no_pending_responses()

    return run


# --- on_event ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack_status", ["CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"])
def test_create_runs_one_fargate_task_in_private_subnets(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, ecs: Any, ec2: Any, moto_props: dict[str, Any], stack_status: str
) -> None:
    sent: list[dict[str, Any]] = []
    ecs.meta.events.register("provide-client-params.ecs.RunTask", lambda params, **_: sent.append(dict(params)))
    cloudformation, stubber = _stack_client(stack_status)
    _use(mod, monkeypatch, ecs, cloudformation)

    result = mod.on_event(_event("Create", moto_props), _context())

    stubber.assert_no_pending_responses()
    assert sent == [
        {
            "cluster": moto_props["Cluster"],
            "taskDefinition": moto_props["TaskDefinition"],
            "launchType": "FARGATE",
            "count": 1,
            "startedBy": "cloudformation",
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": moto_props["Subnets"],
                    "securityGroups": moto_props["SecurityGroups"],
                    "assignPublicIp": "DISABLED",
                }
            },
        }
    ]
    assert result["PhysicalResourceId"] == "run-task-Migrate"
    task_arn = result["Data"]["TaskArn"]
    assert set(result["Data"]) == {"TaskArn"}
    task = ecs.describe_tasks(cluster=moto_props["Cluster"], tasks=[task_arn])["tasks"][0]
    assert task["taskDefinitionArn"] == moto_props["TaskDefinition"]
    assert (task["launchType"], task["startedBy"]) == ("FARGATE", "cloudformation")
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert details["subnetId"] == moto_props["Subnets"][0]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[details["networkInterfaceId"]])["NetworkInterfaces"][0]
    assert [g["GroupId"] for g in eni["Groups"]] == moto_props["SecurityGroups"]
    assert len(ecs.list_tasks(cluster=moto_props["Cluster"])["taskArns"]) == 1


@pytest.mark.parametrize("stack_status", ["UPDATE_ROLLBACK_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"])
def test_rollback_does_not_run_the_task(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, stack_status: str
) -> None:
    """Stubber: describe_stacks reports the rollback; the ECS stub has no responses, so any ECS call would fail."""
    caplog.set_level("INFO")
    cloudformation, stack_stubber = _stack_client(stack_status)
    ecs_client, ecs_stubber = _stubbed_ecs()
    _use(mod, monkeypatch, ecs_client, cloudformation)
    event = _event("Update", _props(), physical_id="run-task-Migrate")

    result = mod.on_event(event, _context())

    assert result == {"PhysicalResourceId": "run-task-Migrate", "Data": {"Skipped": "rollback"}}
    stack_stubber.assert_no_pending_responses()
    assert mod.is_complete(_merged(event, result), _context()) == {"IsComplete": True}
    ecs_stubber.assert_no_pending_responses()
    assert stack_status in caplog.text
    assert "NOT run" in caplog.text


def test_delete_is_a_no_op(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clients() -> Any:
        raise AssertionError("Delete must not call AWS")

    monkeypatch.setattr(mod, "_clients", no_clients)
    event = _event("Delete", _props(), physical_id="run-task-Migrate")

    result = mod.on_event(event, _context())

    assert result == {"PhysicalResourceId": "run-task-Migrate"}
    assert mod.is_complete(_merged(event, result), _context()) == {"IsComplete": True}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            {"tasks": [], "failures": [{"arn": TASK_DEF_ARN, "reason": "RESOURCE:ENI", "detail": "no free ENI"}]},
            f"could not start shop-dev-migrate:7: {TASK_DEF_ARN}: RESOURCE:ENI: no free ENI",
        ),
        ({"tasks": [], "failures": []}, "could not start shop-dev-migrate:7: no task and no failure returned"),
        (
            {"tasks": [{"taskArn": TASK_ARN}], "failures": [{"reason": "AGENT"}]},
            "could not start shop-dev-migrate:7: AGENT",
        ),
    ],
)
def test_run_task_failures_raise(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, response: dict[str, Any], expected: str
) -> None:
    """Stubber: moto's run_task never returns ``failures`` (nor an empty task list)."""
    cloudformation, _ = _stack_client("UPDATE_IN_PROGRESS")
    ecs_client, stubber = _stubbed_ecs()
    stubber.add_response("run_task", response)
    _use(mod, monkeypatch, ecs_client, cloudformation)

    with pytest.raises(mod.RunTaskError) as raised:
        mod.on_event(_event("Update", _props(), physical_id="run-task-Migrate"), _context())

    assert str(raised.value) == expected
    stubber.assert_no_pending_responses()


def test_update_keeps_the_physical_id_and_runs_again(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, ecs: Any, moto_props: dict[str, Any]
) -> None:
    cloudformation, stubber = _stack_client("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS")
    _use(mod, monkeypatch, ecs, cloudformation)

    created = mod.on_event(_event("Create", moto_props), _context())
    physical_id = created["PhysicalResourceId"]
    updated = mod.on_event(_event("Update", {**moto_props, "Trigger": "img:2"}, physical_id=physical_id), _context())

    stubber.assert_no_pending_responses()
    assert physical_id == "run-task-Migrate"
    assert updated["PhysicalResourceId"] == physical_id
    assert updated["Data"]["TaskArn"] != created["Data"]["TaskArn"]
    assert len(ecs.list_tasks(cluster=moto_props["Cluster"])["taskArns"]) == 2


def test_update_keeps_an_existing_id_even_if_the_logical_id_differs(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, ecs: Any, moto_props: dict[str, Any]
) -> None:
    cloudformation, _ = _stack_client("UPDATE_IN_PROGRESS")
    _use(mod, monkeypatch, ecs, cloudformation)
    result = mod.on_event(_event("Update", moto_props, physical_id="an-id-from-an-older-version"), _context())
    assert result["PhysicalResourceId"] == "an-id-from-an-older-version"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("Cluster", "", "property Cluster is required"),
        ("TaskDefinition", " ", "property TaskDefinition is required"),
        ("Subnets", [], "property Subnets must be a non-empty list"),
        ("SecurityGroups", None, "property SecurityGroups must be a non-empty list"),
        ("ContainerName", "", "property ContainerName is required"),
        ("LogGroup", "", "property LogGroup is required"),
    ],
)
def test_contract_violations_fail_before_any_call(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, key: str, value: Any, message: str
) -> None:
    def no_clients() -> Any:
        raise AssertionError("an invalid request must not call AWS")

    monkeypatch.setattr(mod, "_clients", no_clients)
    with pytest.raises(mod.RunTaskError, match=f"^{message}$"):
        mod.on_event(_event("Create", {**_props(), key: value}), _context())


# --- is_complete ---------------------------------------------------------------------------------------------------


def test_is_complete_polls_until_stopped_with_exit_0(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, ecs: Any, moto_props: dict[str, Any]
) -> None:
    cloudformation, _ = _stack_client("CREATE_IN_PROGRESS")
    _use(mod, monkeypatch, ecs, cloudformation)
    event = _event("Create", moto_props)
    merged = _merged(event, mod.on_event(event, _context()))
    task_arn = merged["Data"]["TaskArn"]

    # moto advances the task one state per describe_tasks: DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED.
    polls = [mod.is_complete(merged, _context()) for _ in range(3)]
    done = mod.is_complete(merged, _context())

    assert polls == [{"IsComplete": False}] * 3  # the framework refuses Data while not complete
    assert done == {"IsComplete": True, "Data": {"ExitCode": "0", "TaskArn": task_arn}}


def test_is_complete_running_task_is_not_complete(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber: a task still in RUNNING (moto starts there but moves on at the first describe)."""
    running = _stopped(None, "", "")
    task = running["tasks"][0]
    task.update(lastStatus="RUNNING", desiredStatus="RUNNING")
    del task["stoppedReason"], task["stopCode"]
    assert _is_complete_stubbed(mod, monkeypatch, running)() == {"IsComplete": False}


def test_is_complete_exit_0_is_success(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber: a STOPPED task with the decisive container's exit code set explicitly."""
    response = _stopped(0, "Essential container in task exited", "EssentialContainerExited")
    result = _is_complete_stubbed(mod, monkeypatch, response)()
    assert result == {"IsComplete": True, "Data": {"ExitCode": "0", "TaskArn": TASK_ARN}}


def test_is_complete_exit_1_raises_with_code_reason_and_logs(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Stubber: moto cannot make a container exit non-zero."""
    response = _stopped(1, "Essential container in task exited", "EssentialContainerExited")
    with pytest.raises(mod.RunTaskError) as raised:
        _is_complete_stubbed(mod, monkeypatch, response)()
    assert str(raised.value) == (
        f"task {TASK_ID} of shop-dev-migrate:7 stopped with exit code 1 (Essential container in task exited); "
        f"logs: /shop/dev/ecs stream migrate/app/{TASK_ID}"
    )
    assert str(raised.value) in caplog.text


def test_is_complete_exit_code_of_the_named_container_decides(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber: the sidecar exited 0, the named container 137 (killed) with its own reason."""
    response = _stopped(137, "Essential container in task exited", "EssentialContainerExited", "OutOfMemoryError")
    with pytest.raises(
        mod.RunTaskError, match=r"exit code 137 \(Essential container in task exited; OutOfMemoryError\)"
    ):
        _is_complete_stubbed(mod, monkeypatch, response)()


def test_task_failed_to_start_raises_with_reason(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber: a task that never started (no exit code), as ECS reports an image pull failure."""
    pull = "CannotPullContainerError: pull image manifest has been retried 5 time(s): img:1 not found"
    response = _stopped(None, pull, "TaskFailedToStart", pull)
    with pytest.raises(mod.RunTaskError) as raised:
        _is_complete_stubbed(mod, monkeypatch, response)()
    assert str(raised.value) == (
        f"task {TASK_ID} of shop-dev-migrate:7 stopped with exit code none (TaskFailedToStart: {pull}); "
        f"logs: /shop/dev/ecs stream migrate/app/{TASK_ID}"
    )


def test_missing_container_raises(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber: a STOPPED task without the named container (wrong ContainerName) is not a success."""
    response = _stopped(0, "Essential container in task exited", "EssentialContainerExited")
    response["tasks"][0]["containers"] = response["tasks"][0]["containers"][:1]
    with pytest.raises(mod.RunTaskError, match=r"exit code none \(.*; container app not found in the task\)"):
        _is_complete_stubbed(mod, monkeypatch, response)()


def test_long_reasons_are_shortened_but_keep_the_log_location(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber: a multi-line, very long stopped reason."""
    response = _stopped(2, "ResourceInitializationError:\n" + "x" * 3000, "TaskFailedToStart", "y" * 2000)
    with pytest.raises(mod.RunTaskError) as raised:
        _is_complete_stubbed(mod, monkeypatch, response)()
    message = str(raised.value)
    assert len(message) <= 900
    assert "\n" not in message
    assert message.startswith(f"task {TASK_ID} of shop-dev-migrate:7 stopped with exit code 2 (TaskFailedToStart: ")
    assert message.endswith(f"...); logs: /shop/dev/ecs stream migrate/app/{TASK_ID}")


def test_missing_task_reported_as_failure_raises(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber: ECS answers an unknown arn under ``failures`` (moto returns no failure at all)."""
    response = {"tasks": [], "failures": [{"arn": TASK_ARN, "reason": "MISSING"}]}
    with pytest.raises(mod.RunTaskError) as raised:
        _is_complete_stubbed(mod, monkeypatch, response)()
    assert str(raised.value) == f"task {TASK_ID} not found in cluster {CLUSTER_ARN}: {TASK_ARN}: MISSING"


def test_missing_task_on_moto_raises(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch, ecs: Any, moto_props: dict[str, Any]
) -> None:
    _use(mod, monkeypatch, ecs, None)
    arn = moto_props["Cluster"].replace(":cluster/", ":task/") + "/00000000000000000000000000000000"
    event = _merged(_event("Create", moto_props), {"PhysicalResourceId": "run-task-Migrate", "Data": {"TaskArn": arn}})
    with pytest.raises(mod.RunTaskError, match=r"^task 0{32} not found in cluster .*: no task and no failure returned"):
        mod.is_complete(event, _context())


# --- plumbing ------------------------------------------------------------------------------------------------------


def test_clients_use_short_timeouts_and_standard_retries(mod: ModuleType) -> None:
    ecs_client, cloudformation = mod._clients()
    assert (ecs_client.meta.service_model.service_name, cloudformation.meta.service_model.service_name) == (
        "ecs",
        "cloudformation",
    )
    for client in (ecs_client, cloudformation):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (5, 15)
        assert config.retries["mode"] == "standard"


def test_logs_carry_ids_and_statuses_only(
    mod: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    ecs: Any,
    moto_props: dict[str, Any],
) -> None:
    caplog.set_level("DEBUG")
    cloudformation, _ = _stack_client("CREATE_IN_PROGRESS")
    _use(mod, monkeypatch, ecs, cloudformation)
    event = _event("Create", {**moto_props, "Trigger": NOT_LOGGED, "Extra": NOT_LOGGED})
    event["OldResourceProperties"] = {"Extra": NOT_LOGGED}
    merged = _merged(event, mod.on_event(event, _context()))
    results = [mod.is_complete(merged, _context()) for _ in range(4)]

    assert results[-1]["IsComplete"] is True
    assert "started task" in caplog.text
    assert NOT_LOGGED not in caplog.text
    assert NOT_LOGGED not in repr(results)
