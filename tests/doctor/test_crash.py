"""app-startup-crash: why a service crashes on start, per target, with its last log lines masked.

ECS is moto behind the world's ``EcsWithStartTimes``, wrapped once more by ``EcsFates``: moto stops a task but keeps
no ``stoppedAt``, ``stopCode`` or container exit code / reason, and counts no running task in ``describe_services``;
``EcsFates`` adds what a real stopped task carries. Elastic Beanstalk's events and health APIs are not in moto:
Stubber answers. Logs are moto. "Now" is ``secrets.clock``, fixed per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from doctor_world import (
    REGION,
    SECRET_VALUE,
    EcsWithStartTimes,
    StageFile,
    World,
    allow_parameters,
    deny_master_secrets,
    ecs_service,
    make_ctx,
    rows,
    with_ecs,
)

from config import AppConfig, load_config
from config.redact import hidden
from doctor.checks import POST_DEPLOY, crash, run_checks, secrets
from doctor.cli import main
from doctor.model import Finding, Verdict

NOW = datetime.now(UTC).replace(microsecond=0)
DB_URL = "postgresql://u:p@h/db"
STRIPE = "sk_live_51HqLyjWDarjtT1zdp7dcXyz"
LEAKY = [  # what a crashing app prints: a traceback, and two secrets a careless log line carries
    "INFO booting worker with pid 7",
    f"settings loaded: DATABASE_URL={DB_URL} LOG_LEVEL=debug",
    f"stripe client ready with key {STRIPE}",
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 3, in <module>',
    "sqlalchemy.exc.OperationalError: could not connect to server: Connection refused",
    "worker exited with code 1",
]
EB_ENV = "shop-dev"
EB_LOG = f"/aws/elasticbeanstalk/{EB_ENV}/var/log/eb-docker/containers/eb-current-app/stdouterr.log"
EKS_LOG = "/shop/dev/eks/app"
WORKER = "shop-dev-worker-1A2B"


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "clock", lambda: NOW)


@pytest.fixture
def with_worker(stage_file: StageFile) -> AppConfig:
    """dev with a worker next to web."""
    return load_config(
        path=stage_file(
            services={"web": {"kind": "web"}, "worker": {"kind": "worker", "command": ["celery", "worker"]}}
        )
    )


class EcsFates:
    """The world's ECS plus what moto leaves out: a stopped task's ``stoppedAt``, ``stopCode`` and containers
    (exit code, reason), each service's ``runningCount``, and deployments the circuit breaker failed."""

    def __init__(self, inner: EcsWithStartTimes) -> None:
        self.inner = inner
        self.fates: dict[str, dict[str, Any]] = {}
        self.failed: dict[str, dict[str, Any]] = {}  # service name -> an extra FAILED deployment

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def describe_tasks(self, **request: Any) -> dict[str, Any]:
        reply: dict[str, Any] = self.inner.describe_tasks(**request)
        for task in reply["tasks"]:
            task.update(self.fates.get(task["taskArn"], {}))
        return reply

    def describe_services(self, **request: Any) -> dict[str, Any]:
        reply: dict[str, Any] = self.inner.client.describe_services(**request)
        for service in reply["services"]:
            name = service["serviceName"]
            running = self.inner.list_tasks(cluster=request["cluster"], serviceName=name, desiredStatus="RUNNING")
            service["runningCount"] = len(running["taskArns"])
            if name in self.failed:
                service["deployments"].append(self.failed[name])
        return reply

    def stop(
        self,
        cluster: str,
        arn: str,
        *,
        reason: str,
        code: str,
        exit_code: int | None = None,
        container_reason: str | None = None,
        ago: timedelta = timedelta(minutes=5),
    ) -> str:
        """Stop task ``arn`` the way ECS would have: ``ago`` before now, with that reason, code and exit."""
        self.inner.client.stop_task(cluster=cluster, task=arn, reason=reason)
        container: dict[str, Any] = {"name": "app", "lastStatus": "STOPPED"}
        if exit_code is not None:
            container["exitCode"] = exit_code
        if container_reason:
            container["reason"] = container_reason
        self.fates[arn] = {"stoppedAt": NOW - ago, "stopCode": code, "containers": [container]}
        return arn

    def crash(self, cluster: str, service: str, **fate: Any) -> str:
        """Start one task of ``service`` and stop it (see ``stop``); returns its ARN."""
        [arn] = self.inner.start_tasks(cluster, service, at=NOW - timedelta(minutes=10))
        return self.stop(cluster, arn, **fate)


@pytest.fixture
def ecs(world: World) -> EcsFates:
    inner = world.clients.overrides[("ecs", REGION)]
    assert isinstance(inner, EcsWithStartTimes)
    fates = EcsFates(inner)
    world.clients.overrides[("ecs", REGION)] = fates
    return fates


def web_task(ecs: EcsFates) -> str:
    """The world's running web task (the first one started)."""
    return str(next(iter(ecs.inner.started)))


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def write_log(
    world: World, group: str, stream: str, lines: list[str], *, ago: timedelta = timedelta(minutes=6)
) -> None:
    logs = world.clients.client("logs", REGION)
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int((NOW - ago).timestamp() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": start + i, "message": line} for i, line in enumerate(lines)],
    )


def ecs_stack(world: World, **groups: str) -> None:
    with_ecs(world, LogGroups=json.dumps({"web": world.target_log, **groups}))


def assert_masked(text: str, *, shown: bool = True) -> None:
    """Neither secret of ``LEAKY`` (nor a part of it) nor a Parameter Store value is in ``text``; with ``shown``,
    both are there masked."""
    for secret in (DB_URL, "u:p@", STRIPE, STRIPE[8:], SECRET_VALUE, SECRET_VALUE[:12]):
        assert secret not in text
    if shown:
        assert "DATABASE_URL=<hidden: 21 chars>" in text
        assert hidden(STRIPE) in text


# -- ECS ---------------------------------------------------------------------------------------------------------------


def test_ecs_web_crashing_below_its_desired_count_fails_with_the_cause_and_masked_log_lines(
    world: World, config: AppConfig, ecs: EcsFates
) -> None:
    arn = ecs.stop(
        world.cluster,
        web_task(ecs),
        reason="Essential container in task exited",
        code="EssentialContainerExited",
        exit_code=1,
    )
    write_log(world, world.target_log, f"web/app/{task_id(arn)}", LEAKY)
    ecs_stack(world)
    [finding] = crash.crashes(make_ctx(world.clients, config, targets=("ecs",)))
    assert (finding.check_id, finding.resource, finding.verdict) == ("app-startup-crash", "ecs web", Verdict.FAIL)
    assert finding.advice == (
        f"ECS service {world.web_service} (cluster {world.cluster}): 1 task(s) crashed in the last hour, 0 of 1 "
        f'running; newest {secrets._when(NOW - timedelta(minutes=5))}: "Essential container in task exited" '
        "(EssentialContainerExited; app exit 1): the app exited with code 1: the log lines say why (a missing "
        "setting, the database unreachable, an import error)"
    )
    lines = finding.detail.splitlines()
    assert lines[0] == "stopped tasks (newest first):"
    assert lines[1].endswith(
        f'{task_id(arn)}: "Essential container in task exited" (EssentialContainerExited; app exit 1)'
    )
    header = f"last 20 lines of {world.target_log} web/app/{task_id(arn)} (masked; ! marks errors and exits):"
    assert lines[2] == header
    assert lines[3:] == [
        "  INFO booting worker with pid 7",
        "  settings loaded: DATABASE_URL=<hidden: 21 chars> LOG_LEVEL=debug",
        f"  stripe client ready with key {hidden(STRIPE)}",
        "! Traceback (most recent call last):",
        '    File "/app/main.py", line 3, in <module>',
        "! sqlalchemy.exc.OperationalError: could not connect to server: Connection refused",
        "! worker exited with code 1",
    ]
    assert_masked(finding.detail)
    assert "\n" not in finding.advice


def test_ecs_crash_at_the_desired_count_warns(world: World, config: AppConfig, ecs: EcsFates) -> None:
    """A task crashed, its replacement runs: the service recovered (or keeps replacing crashing copies)."""
    ecs.crash(
        world.cluster,
        world.web_service,
        reason="Task failed ELB health checks in (target-group arn:...)",
        code="ServiceSchedulerInitiated",
        exit_code=143,
    )
    ecs_stack(world)
    [finding] = crash.crashes(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.WARN
    assert "1 task(s) crashed in the last hour, 1 of 1 running" in finding.advice
    assert "the health checks failed: the app must answer /health on port 8000 with 200 within " in finding.advice
    assert "health.boot_seconds (60s)" in finding.advice
    assert finding.advice.endswith("(at its desired count now: it recovered, or keeps replacing crashing copies)")
    assert finding.detail.endswith(
        "no log lines in /ecs/shop-dev for these tasks: the container never started (see the reasons above)"
    )


def test_ecs_crashes_with_different_causes_name_each(world: World, config: AppConfig, ecs: EcsFates) -> None:
    ecs.crash(
        world.cluster,
        world.web_service,
        reason="CannotPullContainerError: ref pull has been retried 1 time(s): not found",
        code="TaskFailedToStart",
        ago=timedelta(minutes=30),
    )
    ecs.stop(
        world.cluster,
        web_task(ecs),
        reason="Essential container in task exited",
        code="EssentialContainerExited",
        exit_code=1,
    )
    ecs_stack(world)
    [finding] = crash.crashes(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.FAIL
    assert "2 task(s) crashed in the last hour, 0 of 1 running" in finding.advice
    assert finding.advice.endswith("an import error) (1 other cause(s) among them: see below)")
    lines = finding.detail.splitlines()
    assert lines[1].endswith("(EssentialContainerExited; app exit 1)")  # newest first
    assert lines[2].endswith(
        '"CannotPullContainerError: ref pull has been retried 1 time(s): not found" (TaskFailedToStart)'
    )
    assert lines[3].startswith("other cause: the image cannot be pulled: check that the tag exists")


def test_ecs_healthy_service_passes_and_deploy_replacements_are_no_crash(
    world: World, config: AppConfig, ecs: EcsFates
) -> None:
    ecs.crash(
        world.cluster,
        world.web_service,
        reason="Scaling activity initiated by (deployment ecs-svc/1)",
        code="ServiceSchedulerInitiated",
        exit_code=143,
    )
    ecs.crash(
        world.cluster,
        world.web_service,
        reason="Essential container in task exited",
        code="EssentialContainerExited",
        exit_code=1,
        ago=timedelta(hours=3),
    )  # before the last hour
    ecs_stack(world)
    [finding] = crash.crashes(make_ctx(world.clients, config, targets=("ecs",)))
    assert (finding.resource, finding.verdict, finding.detail) == ("ecs web", Verdict.PASS, "")
    assert finding.advice == (
        f"ECS service {world.web_service} (cluster {world.cluster}): no task crashed in the last hour (1 of 1 "
        "running; 1 stopped by deployments or scaling)"
    )


def test_ecs_worker_is_found_by_its_app_service_and_its_own_log_group(
    world: World, with_worker: AppConfig, ecs: EcsFates
) -> None:
    ecs_service(world.clients, world.cluster, WORKER, "worker")
    arn = ecs.crash(
        world.cluster,
        WORKER,
        reason="OutOfMemoryError: Container killed due to memory usage",
        code="EssentialContainerExited",
        exit_code=137,
        container_reason="OutOfMemoryError: Container killed",
    )
    write_log(world, "/ecs/shop-dev-worker", f"worker/app/{task_id(arn)}", ["loading 4 GiB model", "Killed"])
    ecs_stack(world, worker="/ecs/shop-dev-worker")
    findings = crash.crashes(make_ctx(world.clients, with_worker, targets=("ecs",)))
    assert [(f.resource, f.verdict) for f in findings] == [("ecs web", Verdict.PASS), ("ecs worker", Verdict.FAIL)]
    worker = findings[1]
    assert worker.advice.startswith(f"ECS service {WORKER} (cluster {world.cluster}): 1 task(s) crashed")
    assert "(EssentialContainerExited; app exit 137: OutOfMemoryError: Container killed)" in worker.advice
    assert "killed for lack of memory: raise memory_mib (now 1024 MiB with cpu 512) under services.worker.ecs" in (
        worker.advice
    )
    assert worker.detail.splitlines()[-3:] == [
        f"last 20 lines of /ecs/shop-dev-worker worker/app/{task_id(arn)} (masked; ! marks errors and exits):",
        "  loading 4 GiB model",
        "! Killed",
    ]


def test_ecs_deployment_rolled_back_warns(world: World, config: AppConfig, ecs: EcsFates) -> None:
    ecs.failed[world.web_service] = {
        "id": "ecs-svc/9876",
        "status": "ACTIVE",
        "taskDefinition": f"arn:aws:ecs:{REGION}:123456789012:task-definition/shop-dev-web:7",
        "rolloutState": "FAILED",
        "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
    }
    ecs_stack(world)
    findings = crash.crashes(make_ctx(world.clients, config, targets=("ecs",)))
    assert [f.verdict for f in findings] == [Verdict.PASS, Verdict.WARN]
    assert findings[1].advice.startswith(
        f"ECS service {world.web_service} (cluster {world.cluster}): deployment ecs-svc/9876 of shop-dev-web:7 "
        "failed (ECS deployment circuit breaker: tasks failed to start.): the circuit breaker rolls back"
    )


@pytest.mark.parametrize(
    ("reason", "code", "exit_code", "container_reason", "fix"),
    [
        (
            "CannotPullContainerError: pull image manifest has been retried 1 time(s): not found",
            "TaskFailedToStart",
            None,
            None,
            "the image cannot be pulled: check that the tag exists",
        ),
        (
            "ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve secrets from "
            "ssm: AccessDeniedException",
            "TaskFailedToStart",
            None,
            None,
            "a secret could not be read at start: the execution role cannot read a parameter, or the parameter is "
            "missing: see the ssm-securestring-missing, provided-secret-missing and secret-read-permission rows of "
            "`make doctor STAGE=dev`",
        ),
        (
            "ResourceInitializationError: failed to validate logger args: The specified log group does not exist",
            "TaskFailedToStart",
            None,
            None,
            "the task could not be set up: the private subnets must reach ECR",
        ),
        (
            "Essential container in task exited",
            "EssentialContainerExited",
            137,
            "OutOfMemoryError: Container killed due to memory usage",
            "killed for lack of memory: raise memory_mib",
        ),
        (
            "Task failed ELB health checks in (target-group x)",
            "ServiceSchedulerInitiated",
            143,
            None,
            "the health checks failed",
        ),
        ("Essential container in task exited", "EssentialContainerExited", 3, None, "the app exited with code 3"),
        ("Essential container in task exited", "EssentialContainerExited", 0, None, "the app's process returned"),
        ("Scaling activity initiated by (deployment ecs-svc/1)", "ServiceSchedulerInitiated", 143, None, None),
        ("Task stopped by user", "UserInitiated", 137, None, None),
    ],
)
def test_stopped_tasks_are_classified(
    config: AppConfig, reason: str, code: str, exit_code: int | None, container_reason: str | None, fix: str | None
) -> None:
    container: dict[str, Any] = {"name": "app", "exitCode": exit_code, "reason": container_reason}
    task = {"stoppedReason": reason, "stopCode": code, "containers": [container]}
    found = crash.classify(config, config.web, task)
    assert (found is None) if fix is None else (found is not None and found.startswith(fix))


# -- Elastic Beanstalk ---------------------------------------------------------------------------------------------


def eb_stub(
    world: World,
    *,
    health: str,
    status: str,
    events: list[dict[str, Any]],
    causes: list[str],
    instance_causes: list[str],
) -> Stubber:
    """The eb stack and the stubbed EB answers, in the order the check asks."""
    world.clients.add_stack("shop-dev-eb", {"EnvironmentName": EB_ENV, "LogGroups": json.dumps({"web": EB_LOG})})
    stub = world.clients.stub("elasticbeanstalk")
    stub.add_response(
        "describe_environments",
        {"Environments": [{"EnvironmentName": EB_ENV, "Status": "Ready", "Health": health, "HealthStatus": status}]},
        {"EnvironmentNames": [EB_ENV], "IncludeDeleted": False},
    )
    stub.add_response(
        "describe_events",
        {"Events": events},
        {"EnvironmentName": EB_ENV, "StartTime": NOW - timedelta(hours=1), "Severity": "WARN", "MaxRecords": 10},
    )
    stub.add_response(
        "describe_environment_health",
        {"EnvironmentName": EB_ENV, "HealthStatus": status, "Status": "Ready", "Causes": causes},
        {"EnvironmentName": EB_ENV, "AttributeNames": ["Causes", "HealthStatus", "Status"]},
    )
    stub.add_response(
        "describe_instances_health",
        {"InstanceHealthList": [{"InstanceId": "i-0abc", "HealthStatus": status, "Causes": instance_causes}]},
        {"EnvironmentName": EB_ENV, "AttributeNames": ["HealthStatus", "Causes"]},
    )
    return stub


def test_eb_red_environment_fails_with_events_causes_and_masked_log_lines(world: World, config: AppConfig) -> None:
    events = [
        {
            "EventDate": NOW - timedelta(minutes=9),
            "Severity": "WARN",
            "Message": "Environment health has transitioned from Ok to Severe.",
            "EnvironmentName": EB_ENV,
        },
        {
            "EventDate": NOW - timedelta(minutes=2),
            "Severity": "ERROR",
            "Message": f"Instance deployment failed. DATABASE_URL={DB_URL}",
            "EnvironmentName": EB_ENV,
        },
    ]
    stub = eb_stub(
        world,
        health="Red",
        status="Severe",
        events=events,
        causes=["100.0 % of the requests are failing with HTTP 5xx."],
        instance_causes=["Application deployment failed at 2026-01-01T00:00:00Z."],
    )
    write_log(world, EB_LOG, "i-0abc", LEAKY)
    [finding] = crash.crashes(make_ctx(world.clients, config, targets=("eb",)))
    stub.assert_no_pending_responses()
    assert (finding.resource, finding.verdict) == ("eb web", Verdict.FAIL)
    assert finding.advice == (
        "EB environment shop-dev: health Red (Severe); 100.0 % of the requests are failing with HTTP 5xx; 2 WARN or "
        "worse event(s) in the last hour, newest: Instance deployment failed. DATABASE_URL=<hidden: 21 chars>: a "
        "failing /health, a missing setting or a crash at boot is the usual cause; the events, causes and log lines "
        "below say which"
    )
    lines = finding.detail.splitlines()
    assert lines[:6] == [
        "events of the last hour, WARN and worse, newest first:",
        f"  {secrets._when(NOW - timedelta(minutes=2))} ERROR Instance deployment failed. "
        "DATABASE_URL=<hidden: 21 chars>",
        f"  {secrets._when(NOW - timedelta(minutes=9))} WARN Environment health has transitioned from Ok to Severe.",
        "health causes:",
        "  environment: 100.0 % of the requests are failing with HTTP 5xx.",
        "  i-0abc (Severe): Application deployment failed at 2026-01-01T00:00:00Z.",
    ]
    assert lines[6] == f"last 20 lines of {EB_LOG} i-0abc (masked; ! marks errors and exits):"
    assert "! Traceback (most recent call last):" in lines
    assert_masked(finding.detail)


def test_eb_green_environment_passes(world: World, config: AppConfig) -> None:
    stub = eb_stub(world, health="Green", status="Ok", events=[], causes=[], instance_causes=[])
    [finding] = crash.crashes(make_ctx(world.clients, config, targets=("eb",)))
    stub.assert_no_pending_responses()
    assert (finding.resource, finding.verdict, finding.detail) == ("eb web", Verdict.PASS, "")
    assert finding.advice == "EB environment shop-dev: health Green (Ok), no WARN or worse event in the last hour"


def test_eb_workers_are_judged_in_the_task_cluster(world: World, with_worker: AppConfig, ecs: EcsFates) -> None:
    eb_stub(world, health="Green", status="Ok", events=[], causes=[], instance_causes=[])
    ecs.create_cluster(clusterName="shop-dev-eb-tasks")
    ecs_service(world.clients, "shop-dev-eb-tasks", WORKER, "worker")
    ecs.crash(
        "shop-dev-eb-tasks",
        WORKER,
        reason="Essential container in task exited",
        code="EssentialContainerExited",
        exit_code=2,
    )
    world.clients.add_stack(
        "shop-dev-eb",
        {"EnvironmentName": EB_ENV, "TaskClusterName": "shop-dev-eb-tasks", "LogGroups": json.dumps({"web": EB_LOG})},
    )
    findings = crash.crashes(make_ctx(world.clients, with_worker, targets=("eb",)))
    assert [(f.resource, f.verdict) for f in findings] == [("eb web", Verdict.PASS), ("eb worker", Verdict.FAIL)]
    assert findings[1].advice.startswith(f"ECS service {WORKER} (cluster shop-dev-eb-tasks): 1 task(s) crashed")
    assert findings[1].detail.endswith("no log lines: the LogGroups output of shop-dev-eb names no worker")


# -- EKS ---------------------------------------------------------------------------------------------------------------

KUBECTL = (
    "the Kubernetes API is private (eks.endpoint_access: private), so doctor cannot read pod events; from inside the "
    "VPC run `aws eks update-kubeconfig --name shop-dev --region eu-west-1`, then `kubectl -n app get events "
    "--field-selector involvedObject.kind=Pod`, `kubectl -n app describe pod -l app.kubernetes.io/name=shop` and "
    "`kubectl -n app logs deployment/shop --previous`"
)


def pod_stream(pod: str, container: int) -> str:
    return f"fargate-kube.var.log.containers.{pod}_app_app-{container:064x}.log"


def fluent_bit(line: str) -> str:
    """A record as Fargate's log router ships it."""
    return json.dumps({"log": f"{line}\n", "stream": "stderr", "time": "2026-01-01T00:00:00.0Z"})


def eks_stack(world: World) -> None:
    world.clients.add_stack(
        "shop-dev-eks", {"ClusterName": "shop-dev", "LogGroupName": EKS_LOG, "LogGroups": json.dumps({"web": EKS_LOG})}
    )


def test_eks_crash_loop_fails_with_the_kubectl_commands_and_masked_log_lines(world: World, config: AppConfig) -> None:
    pod = "shop-7d9f8b6c5d-x2x9z"
    for n, ago in enumerate((40, 25, 10)):  # the same pod's container started three times
        write_log(world, EKS_LOG, pod_stream(pod, n), [fluent_bit(line) for line in LEAKY], ago=timedelta(minutes=ago))
    write_log(world, EKS_LOG, pod_stream("shop-worker-5c6b7d8f9-abcde", 0), [fluent_bit("Traceback: not web's")])
    eks_stack(world)
    [finding] = crash.crashes(make_ctx(world.clients, config, targets=("eks",)))
    assert (finding.resource, finding.verdict) == ("eks web", Verdict.FAIL)
    assert finding.advice == (
        f"Deployment shop (namespace app) is crash-looping: pod {pod} started 3 containers in the last hour and its "
        f"log ends with errors (below); {KUBECTL}"
    )
    lines = finding.detail.splitlines()
    assert lines[0] == f"last 20 lines of {EKS_LOG} {pod_stream(pod, 2)} (masked; ! marks errors and exits):"
    assert "! sqlalchemy.exc.OperationalError: could not connect to server: Connection refused" in lines
    assert "not web's" not in finding.detail
    assert_masked(finding.detail)


def test_eks_healthy_pods_pass_and_say_how_to_read_pod_events(world: World, config: AppConfig) -> None:
    write_log(world, EKS_LOG, pod_stream("shop-7d9f8b6c5d-x2x9z", 0), [fluent_bit('"GET /health HTTP/1.1" 200')])
    eks_stack(world)
    [finding] = crash.crashes(make_ctx(world.clients, config, targets=("eks",)))
    assert (finding.resource, finding.verdict, finding.detail) == ("eks web", Verdict.PASS, "")
    assert finding.advice == (
        "Deployment shop (namespace app): 1 container log stream(s) of its pods in the last hour, none ends with an "
        f"error; pod events are not read: {KUBECTL}"
    )


def test_eks_errors_without_restarts_warn(world: World, with_worker: AppConfig) -> None:
    pod = "shop-worker-5c6b7d8f9-abcde"
    write_log(world, EKS_LOG, pod_stream(pod, 0), [fluent_bit("KeyError: 'STRIPE_WEBHOOK'")])
    eks_stack(world)
    findings = crash.crashes(make_ctx(world.clients, with_worker, targets=("eks",)))
    assert [(f.resource, f.verdict) for f in findings] == [("eks web", Verdict.PASS), ("eks worker", Verdict.WARN)]
    assert findings[1].advice.startswith(
        f"Deployment shop-worker (namespace app): pod {pod} logged errors or an exit in the last hour (below), no "
        "restart seen in the logs;"
    )
    assert "`kubectl -n app describe pod -l app.kubernetes.io/name=shop-worker`" in findings[1].advice
    assert findings[1].detail.splitlines()[1] == "! KeyError: 'STRIPE_WEBHOOK'"


# -- masking, and no Parameter Store value ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (f"DATABASE_URL={DB_URL}", "DATABASE_URL=<hidden: 21 chars>"),
        (f'{{"DATABASE_URL": "{DB_URL}", "port": 5432}}', '{"DATABASE_URL": "<hidden: 21 chars>", "port": 5432}'),
        (f"connecting to {DB_URL} now", "connecting to <hidden: 21 chars> now"),
        (f"key={STRIPE}", f"key={hidden(STRIPE)}"),
        (f"charging with {STRIPE}.", f"charging with {hidden(STRIPE + '.')}"),
        ("password: hunter2", "password: <hidden: 7 chars>"),
        ("KeyError: 'DATABASE_URL'", "KeyError: 'DATABASE_URL'"),  # a name is no secret: the diagnosis stays
        ("\x1b[31mERROR\x1b[0m boot\tfailed", "ERROR boot failed"),
        ("x" * 300, "x" * 239 + "…"),
    ],
)
def test_log_lines_are_masked(line: str, masked: str) -> None:
    assert crash.mask_line(line) == masked


class SsmCalls:
    """Every SSM operation the (shared, moto) SSM client is asked for while active."""

    def __init__(self, world: World) -> None:
        self.client = world.clients.client("ssm", REGION)
        self.names: list[str] = []

    def record(self, model: Any, **_: Any) -> None:
        self.names.append(str(model.name))

    def __enter__(self) -> SsmCalls:
        self.client.meta.events.register("before-call.ssm", self.record)
        return self

    def __exit__(self, *_: object) -> None:
        self.client.meta.events.unregister("before-call.ssm", self.record)


@pytest.fixture
def ssm_calls(world: World) -> Iterator[SsmCalls]:
    with SsmCalls(world) as calls:
        yield calls


def test_no_parameter_store_value_is_ever_fetched(
    world: World, stage_file: StageFile, ecs: EcsFates, ssm_calls: SsmCalls, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole CLI with a crashing ECS service whose log prints secrets: the report masks them, the crash check
    asks SSM nothing, and no check of the run reads a value (only DescribeParameters metadata)."""
    arn = ecs.stop(
        world.cluster,
        web_task(ecs),
        reason="Essential container in task exited",
        code="EssentialContainerExited",
        exit_code=1,
    )
    write_log(world, world.target_log, f"web/app/{task_id(arn)}", [*LEAKY, f"SECRET_KEY={SECRET_VALUE}"])
    ecs_stack(world)
    crash.crashes(make_ctx(world.clients, load_config(path=stage_file()), targets=("ecs",)))
    assert ssm_calls.names == []
    iam = world.clients.stub("iam")
    allow_parameters(iam, world.consumer_role)
    deny_master_secrets(iam, world)
    path = stage_file(targets=["ecs"])
    assert main(["--config", str(path), "--json"], aws=world.clients) == 1
    out, err = capsys.readouterr()
    [row] = [f for f in json.loads(out)["findings"] if f["check_id"] == "app-startup-crash"]
    assert row["verdict"] == "fail" and "! worker exited with code 1" in row["detail"]
    assert main(["--config", str(path)], aws=world.clients) == 1  # the table: the detail under the advice
    table, table_err = capsys.readouterr()
    assert "settings loaded:" in table and "! worker exited with code 1" in table
    assert_masked(out + err)
    assert_masked(table + table_err, shown=False)  # the table may wrap a masked value
    assert ssm_calls.names and set(ssm_calls.names) == {"DescribeParameters"}
    assert not [name for name in ssm_calls.names if name.startswith("GetParameter")]


def test_post_deploy_runs_the_check(world: World, config: AppConfig) -> None:
    assert "app-startup-crash" in {c.check_id for c in POST_DEPLOY}
    findings: list[Finding] = run_checks(
        make_ctx(world.clients, config, targets=("ecs",)), [c for c in POST_DEPLOY if c.check_id == "app-startup-crash"]
    )
    [skipped] = rows(findings, "app-startup-crash")
    assert (
        skipped.verdict is Verdict.WARN
        and skipped.advice == "not checked: stack shop-dev-ecs not deployed in eu-west-1"
    )
