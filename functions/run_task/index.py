"""CDK ``custom_resources.Provider`` handler: run one ECS Fargate task as a deploy step and wait for its exit code.

``on_event`` starts the task (a database migration or any one-off command) and ``is_complete`` polls it until it
has stopped; the resource (and so the deployment) fails unless the container ``ContainerName`` exited with code 0.

ResourceProperties (strings / lists of strings, as CloudFormation sends them): ``Cluster`` (ARN or name),
``TaskDefinition`` (ARN), ``Subnets`` (list), ``SecurityGroups`` (list), ``ContainerName`` (the essential container
whose exit code decides), ``LogGroup`` and ``LogStreamPrefix`` (the awslogs group and stream prefix, only quoted in
the failure message), optional ``Trigger`` (opaque; change it to run the task again, otherwise unused).

- Create/Update: unless the stack is rolling back, ``ecs:RunTask`` (FARGATE, count 1, no public IP); returns
  ``PhysicalResourceId`` ``run-task-<LogicalResourceId>`` (kept on every Update, so CloudFormation never sends a
  Delete for a replaced id) and ``Data`` ``{"TaskArn": ...}``. While the stack status ends with
  ``ROLLBACK_IN_PROGRESS`` the task is NOT run (re-running the previous version does not reverse a migration):
  ``Data`` is ``{"Skipped": "rollback"}``.
- Delete: nothing to do (a finished task leaves nothing behind).
- ``is_complete``: ``{"IsComplete": False}`` until the task is STOPPED; then ``{"IsComplete": True, "Data":
  {"ExitCode": "0", "TaskArn": ...}}`` or an exception whose one-line message (the CloudFormation failure reason)
  names the task, its exit code, the stop reasons and the log stream.

The function's role needs ``cloudformation:DescribeStacks`` on the stack, ``ecs:RunTask`` on the task definition,
``ecs:DescribeTasks`` and ``iam:PassRole`` for the task's execution and task roles. Logs carry ids and statuses only:
never the task's environment, overrides or any other property value.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.config import Config

LOG = logging.getLogger("run_task")
LOG.setLevel(logging.INFO)
# botocore logs request/response bodies at DEBUG (task descriptions include environment overrides): keep it quiet.
logging.getLogger("botocore").setLevel(logging.WARNING)

_BOTO_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"})
STARTED_BY = "cloudformation"  # ECS allows at most 36 characters
MAX_REASON = 900  # what the operator reads in the stack events; keep it well inside CloudFormation's limits
SKIPPED_ROLLBACK = {"Skipped": "rollback"}


class RunTaskError(Exception):
    """The task could not be started, failed, or the request violates the property contract."""


def _clients() -> tuple[Any, Any]:
    """Return ``(ecs, cloudformation)`` clients; tests may monkeypatch this."""
    return boto3.client("ecs", config=_BOTO_CONFIG), boto3.client("cloudformation", config=_BOTO_CONFIG)


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def _required(props: dict[str, Any], key: str) -> str:
    value = str(props.get(key) or "").strip()
    if not value:
        raise RunTaskError(f"property {key} is required")
    return value


def _string_list(props: dict[str, Any], key: str) -> list[str]:
    raw = props.get(key)
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
    values = [str(item).strip() for item in items if str(item).strip()]
    if not values:
        raise RunTaskError(f"property {key} must be a non-empty list")
    return values


def _task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _family_revision(task_definition_arn: str) -> str:
    return task_definition_arn.rsplit("/", 1)[-1] or "unknown task definition"


def _physical_id(event: dict[str, Any]) -> str:
    existing = str(event.get("PhysicalResourceId") or "")
    return existing or f"run-task-{event.get('LogicalResourceId') or 'unknown'}"


def _stack_status(cloudformation: Any, stack_id: str) -> str:
    stacks = cloudformation.describe_stacks(StackName=stack_id).get("Stacks") or []
    return str(stacks[0].get("StackStatus") or "") if stacks else ""


def _failure_reasons(failures: list[dict[str, Any]]) -> str:
    parts = [
        _one_line(": ".join(str(f[k]) for k in ("arn", "reason", "detail") if f.get(k))) or "unknown failure"
        for f in failures
    ]
    return "; ".join(parts) or "no task and no failure returned"


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Provider ``onEvent``: start the task on Create/Update (unless rolling back); Delete is a no-op."""
    request_type = str(event.get("RequestType", ""))
    physical_id = _physical_id(event)
    LOG.info("%s %s (%s)", request_type, event.get("LogicalResourceId"), physical_id)
    if request_type == "Delete":
        return {"PhysicalResourceId": physical_id}
    if request_type not in ("Create", "Update"):
        raise RunTaskError(f"unknown RequestType {_shorten(_one_line(request_type), 40)!r}")

    props: dict[str, Any] = dict(event.get("ResourceProperties") or {})
    cluster, task_definition = _required(props, "Cluster"), _required(props, "TaskDefinition")
    subnets, security_groups = _string_list(props, "Subnets"), _string_list(props, "SecurityGroups")
    for key in ("ContainerName", "LogGroup", "LogStreamPrefix"):
        _required(props, key)  # checked now so a bad resource fails before anything runs

    ecs, cloudformation = _clients()
    status = _stack_status(cloudformation, str(event["StackId"]))
    if status.endswith("ROLLBACK_IN_PROGRESS"):
        LOG.warning(
            "stack is %s: task %s NOT run (re-running the previous version does not reverse a migration)",
            status,
            _family_revision(task_definition),
        )
        return {"PhysicalResourceId": physical_id, "Data": dict(SKIPPED_ROLLBACK)}

    response = ecs.run_task(
        cluster=cluster,
        taskDefinition=task_definition,
        launchType="FARGATE",
        count=1,
        startedBy=STARTED_BY,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": security_groups,
                "assignPublicIp": "DISABLED",
            }
        },
    )
    tasks = response.get("tasks") or []
    failures = response.get("failures") or []
    if failures or not tasks:
        message = f"could not start {_family_revision(task_definition)}: {_failure_reasons(failures)}"
        raise RunTaskError(_shorten(message, MAX_REASON))
    task_arn = str(tasks[0]["taskArn"])
    LOG.info("started task %s of %s (stack %s)", _task_id(task_arn), _family_revision(task_definition), status)
    return {"PhysicalResourceId": physical_id, "Data": {"TaskArn": task_arn}}


def _failure_message(task: dict[str, Any], props: dict[str, Any], container_name: str) -> str:
    """One line: which task, which exit code, why, and where its logs are (reasons shortened to fit)."""
    task_id = _task_id(str(task.get("taskArn") or ""))
    container = next((c for c in task.get("containers") or [] if c.get("name") == container_name), None)
    exit_code = container.get("exitCode") if container else None
    stopped_reason = _one_line(task.get("stoppedReason"))
    stop_code = _one_line(task.get("stopCode"))
    if stop_code and stop_code != "EssentialContainerExited":
        stopped_reason = f"{stop_code}: {stopped_reason}" if stopped_reason else stop_code
    container_reason = (
        _one_line(container.get("reason")) if container else f"container {container_name} not found in the task"
    )
    reasons = [r for r in (stopped_reason or "no stopped reason", container_reason) if r]
    if len(reasons) == 2 and reasons[1] in reasons[0]:
        reasons = reasons[:1]  # a start failure often repeats the container's reason in the task's
    head = (
        f"task {task_id} of {_family_revision(str(task.get('taskDefinitionArn') or ''))} stopped with exit code "
        f"{'none' if exit_code is None else exit_code}"
    )
    stream = f"{props.get('LogStreamPrefix') or ''}/{container_name}/{task_id}"
    tail = f"; logs: {props.get('LogGroup') or 'unknown log group'} stream {stream}"
    budget = max(MAX_REASON - len(head) - len(tail) - 3, 40)
    return _shorten(f"{head} ({_shorten('; '.join(reasons), budget)}){tail}", MAX_REASON)


def is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Provider ``isComplete``: done when there is no task or it stopped with exit 0; raises when it failed."""
    data: dict[str, Any] = dict(event.get("Data") or {})
    task_arn = str(data.get("TaskArn") or "")
    if not task_arn:
        LOG.info("%s %s: no task to wait for", event.get("RequestType"), event.get("LogicalResourceId"))
        return {"IsComplete": True}

    props: dict[str, Any] = dict(event.get("ResourceProperties") or {})
    cluster, container_name = _required(props, "Cluster"), _required(props, "ContainerName")
    ecs, _ = _clients()
    response = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])
    tasks = response.get("tasks") or []
    task = next((t for t in tasks if t.get("taskArn") == task_arn), tasks[0] if len(tasks) == 1 else None)
    if task is None:
        reasons = _failure_reasons(response.get("failures") or [])
        raise RunTaskError(_shorten(f"task {_task_id(task_arn)} not found in cluster {cluster}: {reasons}", MAX_REASON))

    status = str(task.get("lastStatus") or "")
    if status != "STOPPED":
        LOG.info("task %s is %s (desired %s)", _task_id(task_arn), status, task.get("desiredStatus"))
        return {"IsComplete": False}

    container = next((c for c in task.get("containers") or [] if c.get("name") == container_name), None)
    if container is not None and container.get("exitCode") == 0:
        LOG.info("task %s stopped; container %s exited 0", _task_id(task_arn), container_name)
        return {"IsComplete": True, "Data": {"ExitCode": "0", "TaskArn": task_arn}}
    message = _failure_message(task, props, container_name)
    LOG.error("%s", message)
    raise RunTaskError(message)
