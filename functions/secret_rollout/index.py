"""Roll out the services that read a Parameter Store parameter when it changes (catalogue id secret-rollout-stale).

IAM (the function reads no parameter value: no ``ssm:*`` and no ``kms:*`` at all), besides its own log group:

- ``ecs`` target:
  ``ecs:DescribeServices`` and ``ecs:UpdateService`` on
  ``arn:${Partition}:ecs:${Region}:${Account}:service/${ClusterName}/${ServiceName}`` (each reader service).
  A forced new deployment of the same task definition passes no role: no ``iam:PassRole``.
- ``eb`` target:
  ``elasticbeanstalk:DescribeEnvironments`` and ``elasticbeanstalk:UpdateEnvironment`` on
  ``arn:${Partition}:elasticbeanstalk:${Region}:${Account}:environment/${ApplicationName}/${EnvironmentName}``
  (UpdateEnvironment may also be conditioned on ``elasticbeanstalk:InApplication`` =
  ``arn:...:application/${ApplicationName}`` and ``elasticbeanstalk:FromApplicationVersion`` like
  ``arn:...:applicationversion/${ApplicationName}/*``).
  Underneath: Elastic Beanstalk runs the deployment with the CALLER's permissions ("Elastic Beanstalk uses user
  permissions to launch all of the resources in an environment ... requires AWS CloudFormation permissions to
  orchestrate resource deployments and updates", EB developer guide, user policy). A rolling-with-additional-batch
  or immutable redeploy of the current version updates the environment's stack, suspends/resumes and resizes (or,
  immutable, creates and deletes a temporary) Auto Scaling group, launches and terminates instances and moves them
  in the target group. The scoped set, after AWS's own ``AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy``:

  - ``cloudformation:GetTemplate``, ``UpdateStack``, ``CancelUpdateStack``, ``DescribeStacks``,
    ``DescribeStackEvents``, ``DescribeStackResource``, ``DescribeStackResources`` on
    ``arn:${Partition}:cloudformation:${Region}:${Account}:stack/awseb-e-*/*``;
  - ``autoscaling:SuspendProcesses``, ``ResumeProcesses``, ``UpdateAutoScalingGroup``, ``SetDesiredCapacity``,
    ``TerminateInstanceInAutoScalingGroup``, ``CreateAutoScalingGroup``, ``DeleteAutoScalingGroup``,
    ``AttachInstances``, ``DetachInstances``, ``CreateOrUpdateTags``, ``PutNotificationConfiguration``,
    ``PutScalingPolicy``, ``DeletePolicy``, ``PutScheduledUpdateGroupAction``, ``DeleteScheduledAction`` on
    ``arn:${Partition}:autoscaling:${Region}:${Account}:autoScalingGroup:*:autoScalingGroupName/awseb-e-*``;
  - ``ec2:RunInstances`` (condition ``ec2:LaunchTemplate`` like ``arn:...:launch-template/*``),
    ``ec2:CreateLaunchTemplateVersion``, ``ec2:CreateLaunchTemplate``, ``ec2:DeleteLaunchTemplate``,
    ``ec2:DeleteLaunchTemplateVersions``, ``ec2:CreateTags`` (condition ``ec2:CreateAction`` in
    CreateLaunchTemplate/RunInstances) on ``*``; ``ec2:TerminateInstances`` on ``arn:...:instance/*`` with
    ``ec2:ResourceTag/aws:cloudformation:stack-id`` like ``arn:...:stack/awseb-e-*``;
  - ``elasticloadbalancing:RegisterTargets``, ``DeregisterTargets`` on
    ``arn:${Partition}:elasticloadbalancing:${Region}:${Account}:targetgroup/awseb-*``;
  - read-only on ``*`` (no resource scope): ``autoscaling:Describe*`` (AutoScalingGroups, AutoScalingInstances,
    LaunchConfigurations, ScalingActivities, ScheduledActions, NotificationConfigurations),
    ``ec2:Describe*`` (Instances, Images, Subnets, SecurityGroups, Vpcs, LaunchTemplates, LaunchTemplateVersions,
    AccountAttributes, AvailabilityZones), ``elasticloadbalancing:DescribeTargetGroups``, ``DescribeTargetHealth``,
    ``DescribeLoadBalancers``;
  - ``iam:PassRole`` on the environment's instance role (condition ``iam:PassedToService`` = ``ec2.amazonaws.com``):
    the new instances get the instance profile;
  - ``s3:GetObject``, ``s3:GetObjectVersion`` on the running version's source bundle (here the CDK asset object
    ``arn:${Partition}:s3:::${AssetBucket}/${BundleKey}``) and on EB's storage bucket
    ``arn:${Partition}:s3:::elasticbeanstalk-${Region}-${Account}/*`` (+ ``s3:ListBucket``,
    ``s3:GetBucketLocation`` on the bucket itself).

  Parts of this fail only asynchronously (an EB event "... is not authorized to perform ..."), after
  UpdateEnvironment has returned: validate the grant once with a real change in a dev stage.
  ``cloudformation:DescribeStacks`` on the stage's data and EB stacks: a redeploy waits while either deploys.

Event: EventBridge, ``source`` ``aws.ssm``, ``detail-type`` ``Parameter Store Change``, ``detail`` ``{"name",
"type", "operation"}``; ``Create`` and ``Update`` roll out, ``Delete`` and ``LabelParameterVersion`` are logged and
ignored. Configuration: environment variable ``ROLLOUT`` (JSON), either
``{"ecs": {"cluster": "<name or ARN>", "readers": {"<parameter name>": ["<service name or ARN>", ...]}},
"eb": {"readers": {"<parameter name>": ["<environment name>", ...]}}}``, one key or both (the EB stack runs its
workers as ECS services).

- ECS: a service whose PRIMARY deployment was created at or after the event's ``time`` is skipped (its tasks start
  after the change and read the new value; this also absorbs the several events one rotation produces); otherwise
  ``UpdateService(forceNewDeployment=True)``: the service's own rolling deployment, health checks and circuit
  breaker do the rest. A service not found or not ACTIVE is logged and skipped.
- Elastic Beanstalk reads environment secrets only at instance bootstrap and deployment ("When secret values are
  updated or rotated ..., you must manually refresh your environment variables"). An environment updated at or
  after the event's ``time`` is skipped; one that is not ``Ready`` (an update in progress) makes the invocation
  fail so that Lambda's asynchronous retry tries again later; otherwise its running version is redeployed
  (``UpdateEnvironment(VersionLabel=<current>)``) under the environment's own deployment policy.

Every reader is tried before the function fails, and a retry skips what was already rolled out (the check above),
so retries are safe. Returns ``{"parameter", "restarted", "skipped"}``. Logs carry names, statuses and times only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

LOG = logging.getLogger("secret_rollout")
LOG.setLevel(logging.INFO)
# botocore logs request/response bodies at DEBUG (service descriptions include environment and secret references).
logging.getLogger("botocore").setLevel(logging.WARNING)

_BOTO_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"})
CODE = "secret-rollout-stale"
ENV_VAR = "ROLLOUT"
DETAIL_TYPE = "Parameter Store Change"
ROLL_OUT_OPERATIONS = ("Create", "Update")
ECS_BATCH = 10  # DescribeServices takes at most 10 services per call
GONE_EB_STATUSES = ("Terminating", "Terminated")


class RolloutError(Exception):
    """Bad configuration, a malformed event or a failed roll-out; ``str()`` starts with ``[secret-rollout-stale]``."""

    def __init__(self, message: str) -> None:
        super().__init__(f"[{CODE}] {message}")


def _clients() -> tuple[Any, Any]:
    """Return ``(ecs, elasticbeanstalk)`` clients; tests may monkeypatch this."""
    return boto3.client("ecs", config=_BOTO_CONFIG), boto3.client("elasticbeanstalk", config=_BOTO_CONFIG)


def _one_line(text: Any, limit: int = 300) -> str:
    line = " ".join(str(text or "").split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise RolloutError(f"{ENV_VAR}: {where} must be a non-empty list of non-empty strings")
    return list(dict.fromkeys(v.strip() for v in value))


def load_config(raw: str | None) -> dict[str, Any]:
    """Parse and check ``ROLLOUT``: ``{"ecs": {"cluster", "readers"}, "eb": {"readers"}}`` with one or both keys
    (the EB stack runs its workers as ECS services next to the environment); ``readers`` maps a parameter name
    to the services / environments that read it and may be empty (a stage without secrets)."""
    if raw is None or not raw.strip():
        raise RolloutError(f"environment variable {ENV_VAR} is not set")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RolloutError(f"{ENV_VAR} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict) or not data or set(data) - {"ecs", "eb"}:
        raise RolloutError(f'{ENV_VAR} must be a JSON object with the keys "ecs" and/or "eb"')
    config: dict[str, Any] = {}
    for target, section in data.items():
        if not isinstance(section, dict):
            raise RolloutError(f"{ENV_VAR}: {target} must be an object")
        readers = section.get("readers")
        if not isinstance(readers, dict):
            raise RolloutError(f"{ENV_VAR}: {target}.readers must be an object (parameter name -> list of readers)")
        parsed: dict[str, Any] = {"readers": {}}
        for name, ids in readers.items():
            if not name.strip():
                raise RolloutError(f"{ENV_VAR}: {target}.readers has an empty parameter name")
            parsed["readers"][name.strip()] = _names(ids, f"{target}.readers[{_one_line(name, 80)!r}]")
        if target == "eb":
            parsed["stacks"] = _names(section["stacks"], "eb.stacks") if section.get("stacks") else []
        if target == "ecs":
            cluster = section.get("cluster")
            if not isinstance(cluster, str) or not cluster.strip():
                raise RolloutError(f"{ENV_VAR}: ecs.cluster (name or ARN) is required")
            parsed["cluster"] = cluster.strip()
        config[target] = parsed
    return config


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "unknown"


def _short(identifier: str) -> str:
    """A service name from its name or ARN (``.../service/<cluster>/<name>`` or the old ``.../service/<name>``)."""
    return identifier.rsplit("/", 1)[-1]


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _error_text(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    code = (response.get("Error") or {}).get("Code") if isinstance(response, dict) else None
    return _one_line(f"{type(exc).__name__}{f' {code}' if code else ''}: {exc}")


def _roll_out_ecs(ecs: Any, cluster: str, services: list[str], changed_at: datetime, summary: dict[str, Any]) -> None:
    failures: list[str] = []
    for batch in _chunks(services, ECS_BATCH):
        response = ecs.describe_services(cluster=cluster, services=batch)
        found: dict[str, dict[str, Any]] = {}
        for service in response.get("services") or []:
            for key in (service.get("serviceName"), service.get("serviceArn")):
                if key:
                    found[str(key)] = service
        for requested in batch:
            service = found.get(requested) or found.get(_short(requested))
            if service is None:
                LOG.warning("service %s not found in cluster %s: skipped", _short(requested), _short(cluster))
                summary["skipped"].append(requested)
                continue
            name = str(service.get("serviceName") or _short(requested))
            status = str(service.get("status") or "")
            if status != "ACTIVE":
                LOG.warning("service %s is %s: skipped", name, status or "of unknown status")
                summary["skipped"].append(requested)
                continue
            primary = next((d for d in service.get("deployments") or [] if d.get("status") == "PRIMARY"), None)
            created = _utc(primary.get("createdAt")) if primary else None
            if created is not None and created >= changed_at:
                LOG.info(
                    "service %s: primary deployment %s created %s, at or after the change (%s): skipped",
                    name,
                    _short(str(primary.get("id") if primary else "")),
                    _iso(created),
                    _iso(changed_at),
                )
                summary["skipped"].append(requested)
                continue
            try:
                result = ecs.update_service(cluster=cluster, service=requested, forceNewDeployment=True)
            except Exception as exc:
                LOG.error("service %s: new deployment failed: %s", name, _error_text(exc))
                failures.append(f"{name}: {_error_text(exc)}")
                continue
            new: dict[str, Any] = next(
                (d for d in (result.get("service") or {}).get("deployments") or [] if d.get("status") == "PRIMARY"),
                {},
            )
            LOG.info(
                "service %s: new deployment %s started (previous primary created %s, change at %s)",
                name,
                new.get("id") or "unknown",
                _iso(created),
                _iso(changed_at),
            )
            summary["restarted"].append(requested)
    if failures:
        raise RolloutError(f"could not roll out {len(failures)} ECS service(s): {'; '.join(failures)}")


def _cloudformation() -> Any:
    """A CloudFormation client; tests may monkeypatch this."""
    return boto3.client("cloudformation", config=_BOTO_CONFIG)


def _deploying(stacks: list[str]) -> list[str]:
    """``name (STATUS)`` of the stage stacks CloudFormation is working on: a redeploy started now could collide with
    CloudFormation's own update of the environment in the same deploy."""
    if not stacks:
        return []
    cloudformation = _cloudformation()
    busy = []
    for name in stacks:
        try:
            described = cloudformation.describe_stacks(StackName=name).get("Stacks") or []
        except Exception as exc:  # a stack that does not exist (yet) is not deploying
            LOG.info("stack %s not described (%s): not deploying", name, _error_text(exc))
            continue
        status = str((described[0] if described else {}).get("StackStatus") or "")
        if status.endswith("_IN_PROGRESS"):
            busy.append(f"{name} ({status})")
    return busy


def _roll_out_eb(
    eb: Any, environments: list[str], changed_at: datetime, summary: dict[str, Any], stacks: list[str] | None = None
) -> None:
    deploying = _deploying(stacks or [])
    if deploying:
        LOG.warning(
            "a deploy is running (%s): failing this invocation so that Lambda's asynchronous retry redeploys the "
            "environment after it (the deploy may well roll it out itself)",
            ", ".join(deploying),
        )
        raise RolloutError(f"deferred while the stage deploys: {', '.join(deploying)}")
    response = eb.describe_environments(EnvironmentNames=environments, IncludeDeleted=False)
    described = {
        str(e.get("EnvironmentName")): e
        for e in response.get("Environments") or []
        if e.get("Status") not in GONE_EB_STATUSES
    }
    busy: list[str] = []
    failures: list[str] = []
    for name in environments:
        environment = described.get(name)
        if environment is None:
            LOG.warning("environment %s not found (or terminated): skipped", name)
            summary["skipped"].append(name)
            continue
        updated = _utc(environment.get("DateUpdated"))
        status = str(environment.get("Status") or "")
        if updated is not None and updated >= changed_at:
            LOG.info(
                "environment %s: updated %s (%s), at or after the change (%s): skipped",
                name,
                _iso(updated),
                status,
                _iso(changed_at),
            )
            summary["skipped"].append(name)
            continue
        if status != "Ready":
            LOG.warning(
                "environment %s is %s (an update in progress, started %s): failing this invocation so that "
                "Lambda's asynchronous retry redeploys it later",
                name,
                status or "of unknown status",
                _iso(updated),
            )
            busy.append(f"{name} ({status or 'unknown'})")
            continue
        version = str(environment.get("VersionLabel") or "")
        if not version:
            LOG.error("environment %s runs no application version: nothing to redeploy", name)
            failures.append(f"{name}: no VersionLabel to redeploy")
            continue
        try:
            eb.update_environment(EnvironmentName=name, VersionLabel=version)
        except Exception as exc:
            LOG.error("environment %s: redeploy failed: %s", name, _error_text(exc))
            failures.append(f"{name}: {_error_text(exc)}")
            continue
        LOG.info(
            "environment %s: redeploying version %s (last updated %s, change at %s)",
            name,
            version,
            _iso(updated),
            _iso(changed_at),
        )
        summary["restarted"].append(name)
    problems = []
    if busy:
        problems.append(f"not Ready, retry later: {', '.join(busy)}")
    if failures:
        problems.append(f"failed: {'; '.join(failures)}")
    if problems:
        raise RolloutError(f"could not redeploy every Elastic Beanstalk environment ({' | '.join(problems)})")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point (EventBridge, asynchronous): returns ``{"parameter", "restarted", "skipped"}``."""
    config = load_config(os.environ.get(ENV_VAR))
    raw_detail = event.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    name = str(detail.get("name") or "").strip()
    operation = str(detail.get("operation") or "")
    summary: dict[str, Any] = {"parameter": name, "restarted": [], "skipped": []}
    if event.get("source") != "aws.ssm" or event.get("detail-type") != DETAIL_TYPE:
        LOG.warning(
            "ignored an event that is not an SSM %s (source %s, detail-type %s)",
            DETAIL_TYPE,
            _one_line(event.get("source"), 60),
            _one_line(event.get("detail-type"), 60),
        )
        return summary
    if not name:
        raise RolloutError("the event has no detail.name")
    if operation not in ROLL_OUT_OPERATIONS:
        LOG.info("parameter %s: operation %s ignored (only Create and Update roll out)", name, operation or "none")
        return summary
    readers = {target: section["readers"].get(name) or [] for target, section in config.items()}
    if not any(readers.values()):
        LOG.info("parameter %s: no reader configured: nothing to roll out", name)
        return summary
    changed_at = _utc(event.get("time"))
    if changed_at is None:
        raise RolloutError("the event has no valid time (ISO 8601)")
    ecs, eb = _clients()
    errors: list[str] = []
    for target, ids in readers.items():
        if not ids:
            continue
        LOG.info(
            "parameter %s: %s at %s; rolling out %s reader(s) on %s: %s",
            name,
            operation,
            _iso(changed_at),
            len(ids),
            target,
            ", ".join(_short(r) for r in ids),
        )
        try:
            if target == "ecs":
                _roll_out_ecs(ecs, config["ecs"]["cluster"], ids, changed_at, summary)
            else:
                _roll_out_eb(eb, ids, changed_at, summary, config["eb"].get("stacks", []))
        except RolloutError as exc:  # try the other target too, then fail so Lambda retries
            errors.append(str(exc).removeprefix(f"[{CODE}] "))
    if errors:
        raise RolloutError(" | ".join(errors))
    LOG.info("parameter %s: restarted %s, skipped %s", name, summary["restarted"], summary["skipped"])
    return summary
