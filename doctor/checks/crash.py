"""app-startup-crash: why a service crashes on start, per target, with the last lines of its log (masked).

ECS (the ecs stack's cluster; the eb stack's task cluster for workers): the tasks of each web and worker service that
stopped in the last hour (stoppedReason, stopCode, each container's exit code and reason), classified with a one-line
fix, with the last lines of the newest crashed task's log stream; and a deployment the circuit breaker rolled back.
Elastic Beanstalk: the environment's WARN-and-worse events of the last hour, its health causes and each instance's,
with the last lines of the web container's log. EKS: doctor cannot read pod events (the Kubernetes API is private),
so the last lines of each Deployment's pod streams in the app's log group, and the kubectl commands to run instead.

Read-only, and never a Parameter Store value: every log line, event and reason is masked (``config.redact``) before
it is shown; ``detail`` of a finding holds those lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from config.redact import hidden, looks_secret
from config.schema import AppConfig
from config.services import Service
from doctor.aws import error_code, explain
from doctor.checks import secrets
from doctor.checks.targets import _environment
from doctor.model import Context, Finding, NotChecked, fail, ok, warn

CHECK_ID = "app-startup-crash"
WINDOW = timedelta(hours=1)
TAIL = 20  # log lines shown per crash
LINE_CHARS = 240  # a log line longer than this is cut (after masking)
EVENTS = 10  # Elastic Beanstalk events shown
STOPPED_SHOWN = 5  # stopped tasks listed in the detail
STOPPED_READ = 300  # stopped tasks read per service at most (ECS keeps them about an hour)
CONTAINER = "app"  # the container of every task (constructs/service_task.py): streams are <service>/app/<task id>
EKS_STREAM = "fargate-kube.var.log.containers."  # Fargate's log router: prefix fargate- + the tail input's tag
STREAM_PAGES = 10  # newest log stream pages read per EKS log group
# Stopped on purpose: a deployment replacing copies, a scale-in, someone's stop-task, Spot.
SCHEDULED_STOPS = frozenset({"ServiceSchedulerInitiated", "UserInitiated", "SpotInterruption", "TerminationNotice"})
FLAGGED = re.compile(
    r"Traceback \(most recent call last\)|[A-Za-z]*(?:Error|Exception)\b|\b(?:ERROR|CRITICAL|FATAL)\b"
    r"|\b[Ee]xit(?:s|ed|ing)?\b|\bKilled\b"
)
FLAG = "! "  # marks a flagged line in a finding's detail

# -- masking ---------------------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")  # ANSI colours, control characters
# NAME=value, NAME: value, "NAME": "value", 'NAME': 'value' (not scheme://, which the token pass judges whole).
_PAIR = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>["']?\s*[=:](?!//)\s*)(?P<value>"[^"]*"|'[^']*'|[^\s"',;&]+)"""
)
_TOKEN = re.compile(r"""[^\s"'`,;()<>\[\]{}=]+""")


def mask_line(text: str) -> str:
    """``text`` (one log line, event or reason) as it may be printed: control characters dropped, every value
    that looks secret by its name (``DATABASE_URL=...``, ``"password": ...``) or by its shape (a URL with
    credentials, ``sk_live_...``, an AWS key, a JWT ...) replaced by ``config.redact.hidden``, then cut."""
    line = _CONTROL.sub("", " ".join(text.replace("\t", " ").splitlines())).rstrip()
    line = _PAIR.sub(_mask_pair, line)
    line = _TOKEN.sub(lambda m: hidden(m[0]) if looks_secret("", m[0]) else m[0], line)
    return line if len(line) <= LINE_CHARS else f"{line[: LINE_CHARS - 1]}…"


def _mask_pair(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[:1] in ("'", '"') and len(value) > 1 else ""
    bare = value[1:-1] if quote else value
    if not bare or not looks_secret(match["name"], bare):
        return match[0]
    return f"{match['name']}{match['sep']}{quote}{hidden(bare)}{quote}"


def shown(messages: Sequence[str]) -> list[str]:
    """Log messages as detail lines: masked, one line each, errors and exits flagged with ``!``."""
    lines: list[str] = []
    for message in messages:
        for part in _text(message).splitlines() or [""]:
            line = mask_line(part)
            lines.append(f"{FLAG if FLAGGED.search(line) else '  '}{line}")
    return lines[-TAIL:]


def _text(message: str) -> str:
    """A log event's text: Fluent Bit (EKS) ships ``{"log": "...", "stream": ...}`` records, awslogs the line."""
    if message.startswith("{"):
        try:
            record = json.loads(message)
        except ValueError:
            return message
        if isinstance(record, dict) and isinstance(record.get("log"), str):
            return str(record["log"])
    return message


def _tail_header(group: str, stream: str) -> str:
    return f"last {TAIL} lines of {group} {stream} (masked; {FLAG.strip()} marks errors and exits):"


# -- the check ---------------------------------------------------------------------------------------------------------

LONG_RUNNING = secrets.LONG_RUNNING  # web and worker: a job or the migration step fails its run, not its start


def crashes(ctx: Context) -> list[Finding]:
    """app-startup-crash: per target and long-running service, why it crashes on start (see the module doc)."""
    findings: list[Finding] = []
    runners: dict[str, Callable[[Context, list[Service]], list[Finding]]] = {
        "ecs": _ecs_target,
        "eb": _eb_target,
        "eks": _eks_target,
    }
    for purpose in ctx.targets:
        services = [s for s in ctx.config.workloads if s.kind in LONG_RUNNING and s.runs_on(purpose)]
        if purpose not in runners or not services:
            continue
        try:
            findings.extend(runners[purpose](ctx, services))
        except NotChecked as skipped:
            findings.append(warn(CHECK_ID, f"{purpose} services", f"not checked: {skipped}"))
        except Exception as error:  # one target failing leaves the others checked
            findings.append(warn(CHECK_ID, f"{purpose} services", f"could not run: {explain(error)}"))
    return findings


def _each(
    ctx: Context, purpose: str, services: list[Service], row: Callable[[Service], list[Finding]]
) -> list[Finding]:
    """``row(service)`` for each service; one that cannot be checked becomes one warn row, the others still run."""
    findings: list[Finding] = []
    for service in services:
        resource = f"{purpose} {service.name}"
        try:
            findings.extend(row(service))
        except NotChecked as skipped:
            findings.append(warn(CHECK_ID, resource, f"not checked: {skipped}"))
        except Exception as error:
            findings.append(warn(CHECK_ID, resource, f"could not run: {explain(error)}"))
    return findings


def _log_groups(ctx: Context, purpose: str) -> dict[str, str]:
    """``{service name: log group}`` of the stack's ``LogGroups`` output; {} when the stack predates it."""
    text = ctx.stack(purpose).outputs.get("LogGroups")
    if not text:
        return {}
    try:
        groups = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in groups.items()} if isinstance(groups, dict) else {}


def _no_log_groups(ctx: Context, purpose: str) -> str:
    return f"no log lines: stack {ctx.config.stack_name(purpose)} has no LogGroups output; redeploy it"


def _tail(ctx: Context, group: str, stream: str) -> list[str] | None:
    """The last ``TAIL`` messages of ``stream``; None when the stream (or group) does not exist."""
    try:
        reply = ctx.client("logs").get_log_events(
            logGroupName=group, logStreamName=stream, limit=TAIL, startFromHead=False
        )
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    return [str(e.get("message", "")) for e in reply.get("events", [])]


# -- ECS -------------------------------------------------------------------------------------------------------------


def _ecs_target(ctx: Context, services: list[Service]) -> list[Finding]:
    cluster = ctx.output("ecs", "ClusterName")
    groups = _log_groups(ctx, "ecs")
    by_app: dict[str, dict[str, str]] = {}

    def row(service: Service) -> list[Finding]:
        name = ctx.output("ecs", "ServiceName") if service.is_web else _worker(ctx, "ecs", cluster, service, by_app)
        return _ecs_rows(ctx, "ecs", cluster, name, service, groups)

    return _each(ctx, "ecs", services, row)


def _worker(ctx: Context, purpose: str, cluster: str, service: Service, by_app: dict[str, dict[str, str]]) -> str:
    """The ECS service whose task definition says ``APP_SERVICE=<service>`` (as secret-rollout-stale finds it)."""
    if cluster not in by_app:
        by_app[cluster] = secrets._ecs_services_by_app(ctx, cluster)
    if service.name not in by_app[cluster]:
        raise NotChecked(
            f"no ECS service in cluster {cluster} runs APP_SERVICE={service.name}; redeploy the {purpose} stack"
        )
    return by_app[cluster][service.name]


def _ecs_rows(
    ctx: Context, purpose: str, cluster: str, name: str, service: Service, groups: dict[str, str]
) -> list[Finding]:
    """The crash row of one ECS service (fail / warn / ok), and a warn row per deployment rolled back."""
    ecs = ctx.client("ecs")
    described = ecs.describe_services(cluster=cluster, services=[name]).get("services", [])
    if not described or described[0].get("status") != "ACTIVE":
        raise NotChecked(f"ECS service {name} is not active in cluster {cluster}")
    found = described[0]
    desired, running = int(found.get("desiredCount", 0)), int(found.get("runningCount", 0))
    resource, what = f"{purpose} {service.name}", f"ECS service {name} (cluster {cluster})"
    now = secrets.clock()
    stopped = _stopped_tasks(ctx, cluster, name, now - WINDOW)
    crashed = [(task, fix) for task in stopped if (fix := classify(ctx.config, service, task)) is not None]
    findings: list[Finding] = []
    if not crashed:
        replaced = f"; {len(stopped)} stopped by deployments or scaling" if stopped else ""
        findings.append(
            ok(
                CHECK_ID,
                resource,
                f"{what}: no task crashed in the last hour ({running} of {desired} running{replaced})",
            )
        )
    else:
        task, fix = crashed[0]
        causes = {f for _, f in crashed}
        others = f" ({len(causes) - 1} other cause(s) among them: see below)" if len(causes) > 1 else ""
        line = (
            f"{what}: {len(crashed)} task(s) crashed in the last hour, {running} of {desired} running; newest "
            f"{_when(task.get('stoppedAt'))}: {facts(task)}: {fix}{others}"
        )
        detail = ["stopped tasks (newest first):"]
        detail += [f"  {_when(t.get('stoppedAt'))} {_task_id(t)}: {facts(t)}" for t, _ in crashed[:STOPPED_SHOWN]]
        if len(crashed) > STOPPED_SHOWN:
            detail.append(f"  … and {len(crashed) - STOPPED_SHOWN} more")
        detail += [f"other cause: {other}" for other in dict.fromkeys(f for _, f in crashed) if other != fix]
        detail += _ecs_log(ctx, purpose, service, [t for t, _ in crashed], groups)
        if running < desired:
            findings.append(fail(CHECK_ID, resource, line, "\n".join(detail)))
        else:
            line += " (at its desired count now: it recovered, or keeps replacing crashing copies)"
            findings.append(warn(CHECK_ID, resource, line, "\n".join(detail)))
    for deployment in found.get("deployments", []):
        if deployment.get("rolloutState") == "FAILED":
            definition = str(deployment.get("taskDefinition", "?")).rsplit("/", 1)[-1]
            reason = mask_line(str(deployment.get("rolloutStateReason") or "no reason given"))
            findings.append(
                warn(
                    CHECK_ID,
                    resource,
                    f"{what}: deployment {deployment.get('id', '?')} of {definition} failed ({reason}): the circuit "
                    "breaker rolls back to the previous task definition; the crashed tasks' reasons and log lines "
                    "say why the new one did not start",
                )
            )
    return findings


def _stopped_tasks(ctx: Context, cluster: str, name: str, since: datetime) -> list[dict[str, Any]]:
    """The service's tasks stopped since ``since`` (or at an unknown time), newest first."""
    ecs = ctx.client("ecs")
    arns: list[str] = []
    request: dict[str, Any] = {"cluster": cluster, "serviceName": name, "desiredStatus": "STOPPED"}
    while len(arns) < STOPPED_READ:
        reply = ecs.list_tasks(**request)
        arns.extend(reply.get("taskArns", []))
        if not reply.get("nextToken"):
            break
        request["nextToken"] = reply["nextToken"]
    tasks: list[dict[str, Any]] = []
    for start in range(0, min(len(arns), STOPPED_READ), 100):  # describe_tasks takes at most 100
        tasks.extend(ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100]).get("tasks", []))
    recent = [t for t in tasks if not t.get("stoppedAt") or secrets._utc(t["stoppedAt"]) >= since]
    return sorted(recent, key=lambda t: secrets._utc(t["stoppedAt"]) if t.get("stoppedAt") else since, reverse=True)


def classify(config: AppConfig, service: Service, task: dict[str, Any]) -> str | None:
    """The one-line fix for a task that stopped because it crashed; None when it was stopped on purpose."""
    containers = task.get("containers", [])
    reasons = " ".join([str(task.get("stoppedReason", "")), *(str(c.get("reason", "")) for c in containers)])
    exits = [int(c["exitCode"]) for c in containers if c.get("exitCode") is not None]
    code = task.get("stopCode")
    if "CannotPullContainerError" in reasons:
        return (
            "the image cannot be pulled: check that the tag exists (ecr-pull-permission), that the execution role may "
            "pull from the repository, and that the private subnets reach ECR and S3 (NAT or endpoints)"
        )
    if "ResourceInitializationError" in reasons:
        if re.search(r"secret|ssm|parameter", reasons, re.IGNORECASE):
            return (
                "a secret could not be read at start: the execution role cannot read a parameter, or the parameter "
                "is missing: see the ssm-securestring-missing, provided-secret-missing and secret-read-permission "
                f"rows of `make doctor STAGE={config.stage}` (and that the private subnets reach SSM)"
            )
        return (
            "the task could not be set up: the private subnets must reach ECR, CloudWatch Logs and SSM (NAT or "
            "endpoints) and the service's log group must exist (logs-missing)"
        )
    if 137 in exits and "OutOfMemory" in reasons:
        sizing = service.ecs
        return (
            f"killed for lack of memory: raise memory_mib (now {sizing.memory_mib} MiB with cpu {sizing.cpu}) under "
            f"services.{service.name}.ecs (or the stage's ecs:) to a valid Fargate pair, then redeploy"
        )
    if re.search(r"failed (ELB|container) health checks", reasons, re.IGNORECASE):
        health = config.health
        return (
            f"the health checks failed: the app must answer {health.liveness_path} on port {config.health_port} "
            f"with {health.matcher} within health.boot_seconds ({health.boot_seconds}s) of starting; the log lines "
            "show a crash at boot, a slow start or another port (alb-health-check-path)"
        )
    if code in SCHEDULED_STOPS:
        return None
    failed = [e for e in exits if e != 0]
    if failed:
        return (
            f"the app exited with code {failed[0]}: the log lines say why (a missing setting, the database "
            "unreachable, an import error)"
        )
    if code == "EssentialContainerExited":
        return "the app's process returned (exit code 0): a web server or worker must keep running; check its command"
    if code == "TaskFailedToStart":
        return "the task failed to start: see its stopped reason"
    return None


def facts(task: dict[str, Any]) -> str:
    """What ECS says about one stopped task, masked: reason, stop code, each container's exit code and reason."""
    said = [str(task.get("stopCode") or "")]
    for container in task.get("containers", []):
        exit_code, reason = container.get("exitCode"), container.get("reason")
        if exit_code is None and not reason:
            continue
        text = f"{container.get('name', '?')} exit {exit_code if exit_code is not None else '?'}"
        said.append(f"{text}: {reason}" if reason else text)
    codes = "; ".join(s for s in said if s)
    reason = str(task.get("stoppedReason") or "no stopped reason")
    return mask_line(f'"{reason}"' + (f" ({codes})" if codes else ""))


def _ecs_log(
    ctx: Context, purpose: str, service: Service, crashed: list[dict[str, Any]], groups: dict[str, str]
) -> list[str]:
    """The last lines of the newest crashed task that logged anything (tasks that never started log nothing)."""
    group = groups.get(service.name)
    if not groups:
        return [_no_log_groups(ctx, purpose)]
    if not group:
        return [f"no log lines: the LogGroups output of {ctx.config.stack_name(purpose)} names no {service.name}"]
    for task in crashed[:3]:
        stream = f"{service.name}/{CONTAINER}/{_task_id(task)}"
        messages = _tail(ctx, group, stream)
        if messages:
            return [_tail_header(group, stream), *shown(messages)]
    return [f"no log lines in {group} for these tasks: the container never started (see the reasons above)"]


def _task_id(task: dict[str, Any]) -> str:
    return str(task.get("taskArn", "?")).rsplit("/", 1)[-1]


def _when(value: Any) -> str:
    return secrets._when(value) if value else "at an unknown time"


# -- Elastic Beanstalk -------------------------------------------------------------------------------------------------


def _eb_target(ctx: Context, services: list[Service]) -> list[Finding]:
    groups = _log_groups(ctx, "eb")
    by_app: dict[str, dict[str, str]] = {}

    def row(service: Service) -> list[Finding]:
        if service.is_web:
            return [_eb_row(ctx, service, groups)]
        cluster = ctx.output("eb", "TaskClusterName")  # the workers run as Fargate services next to EB
        return _ecs_rows(ctx, "eb", cluster, _worker(ctx, "eb", cluster, service, by_app), service, groups)

    return _each(ctx, "eb", services, row)


def _eb_row(ctx: Context, service: Service, groups: dict[str, str]) -> Finding:
    name = ctx.output("eb", "EnvironmentName")
    resource, what = f"eb {service.name}", f"EB environment {name}"
    environment = _environment(ctx, name)
    if environment is None:
        raise NotChecked(f"EB environment {name} not found in {ctx.region} (see eb-env-exists)")
    eb = ctx.client("elasticbeanstalk")
    reply = eb.describe_events(
        EnvironmentName=name, StartTime=secrets.clock() - WINDOW, Severity="WARN", MaxRecords=EVENTS
    )
    events = sorted(reply.get("Events", []), key=lambda e: secrets._utc(e["EventDate"]), reverse=True)[:EVENTS]
    color, status = environment.get("Health", "?"), environment.get("HealthStatus", "?")
    causes: list[str] = []
    try:
        health = eb.describe_environment_health(
            EnvironmentName=name, AttributeNames=["Causes", "HealthStatus", "Status"]
        )
        status = health.get("HealthStatus") or status
        causes = [mask_line(str(c)) for c in health.get("Causes", [])]
        instances = _instance_causes(eb, name)
        unavailable = ""
    except Exception as error:  # basic health, or no permission: events and logs still say a lot
        instances, unavailable = [], f"health causes unavailable ({explain(error)})"
    summary = f"health {color} ({status})"
    if color == "Red" or status == "Severe":
        verdict = fail
    elif events or causes or instances or color == "Yellow":
        verdict = warn
    else:
        return ok(CHECK_ID, resource, f"{what}: {summary}, no WARN or worse event in the last hour")
    seen = [summary]
    if causes:
        seen.append(causes[0].rstrip("."))
    elif instances:
        seen.append(instances[0].strip().rstrip("."))
    if events:
        newest = mask_line(str(events[0].get("Message", ""))).rstrip(".")
        seen.append(f"{len(events)} WARN or worse event(s) in the last hour, newest: {newest}")
    line = (
        f"{what}: {'; '.join(seen)}: a failing {ctx.config.health.liveness_path}, a missing setting or a crash at "
        "boot is the usual cause; the events, causes and log lines below say which"
    )
    detail: list[str] = []
    if events:
        detail.append("events of the last hour, WARN and worse, newest first:")
        detail += [
            f"  {secrets._when(e['EventDate'])} {e.get('Severity', '?')} {mask_line(str(e.get('Message', '')))}"
            for e in events
        ]
    if causes or instances:
        detail.append("health causes:")
        detail += [f"  environment: {c}" for c in causes] + instances
    if unavailable:
        detail.append(unavailable)
    detail += _eb_log(ctx, service, groups)
    return verdict(CHECK_ID, resource, line, "\n".join(detail))


def _instance_causes(eb: Any, name: str) -> list[str]:
    lines: list[str] = []
    request: dict[str, Any] = {"EnvironmentName": name, "AttributeNames": ["HealthStatus", "Causes"]}
    while True:
        reply = eb.describe_instances_health(**request)
        for instance in reply.get("InstanceHealthList", []):
            for cause in instance.get("Causes", []):
                where = f"{instance.get('InstanceId', '?')} ({instance.get('HealthStatus', '?')})"
                lines.append(f"  {where}: {mask_line(str(cause))}")
        if not reply.get("NextToken"):
            return lines
        request["NextToken"] = reply["NextToken"]


def _eb_log(ctx: Context, service: Service, groups: dict[str, str]) -> list[str]:
    """The last lines of the web container's log group, from its newest stream (one per instance)."""
    group = groups.get(service.name)
    if not group:
        return [_no_log_groups(ctx, "eb")] if not groups else [f"no log lines: LogGroups names no {service.name}"]
    try:
        streams = ctx.client("logs").describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", descending=True, limit=1
        )["logStreams"]
    except Exception as error:
        if error_code(error) == "ResourceNotFoundException":
            return [f"no log lines: {group} does not exist (StreamLogs off? see logs-missing)"]
        raise
    if not streams:
        return [f"no log lines: {group} has no stream yet"]
    stream = str(streams[0]["logStreamName"])
    messages = _tail(ctx, group, stream) or []
    return [_tail_header(group, stream), *shown(messages)] if messages else [f"no log lines in {group} {stream}"]


# -- EKS ---------------------------------------------------------------------------------------------------------------


def _eks_target(ctx: Context, services: list[Service]) -> list[Finding]:
    groups = _log_groups(ctx, "eks")
    fallback = ctx.stack("eks").outputs.get("LogGroupName")
    since = secrets.clock() - WINDOW
    recent: dict[str, list[dict[str, Any]]] = {}  # log group -> its streams written in the last hour, newest first

    def row(service: Service) -> list[Finding]:
        group = groups.get(service.name) or fallback
        if not group:
            raise NotChecked(f"stack {ctx.config.stack_name('eks')} has neither LogGroups nor LogGroupName; redeploy")
        if group not in recent:
            recent[group] = _recent_streams(ctx, group, since)
        return [_eks_row(ctx, service, group, recent[group])]

    return _each(ctx, "eks", services, row)


def _recent_streams(ctx: Context, group: str, since: datetime) -> list[dict[str, Any]]:
    logs = ctx.client("logs")
    cutoff = since.timestamp() * 1000
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"logGroupName": group, "orderBy": "LastEventTime", "descending": True}
    for _ in range(STREAM_PAGES):
        reply = logs.describe_log_streams(**request)
        # lastEventTimestamp lags ingestion (up to an hour, eventually consistent): a stream counts as recent by
        # the newest of its times; a container (re)started in the window has a fresh creationTime.
        fresh = [s for s in reply.get("logStreams", []) if max(_stream_times(s)) >= cutoff]
        found.extend(fresh)
        if not fresh or not reply.get("nextToken"):
            break
        request["nextToken"] = reply["nextToken"]
    return found


def _stream_times(stream: dict[str, Any]) -> list[int]:
    return [int(stream.get(k, 0)) for k in ("creationTime", "lastEventTimestamp", "lastIngestionTime")]


def deployment_name(ctx: Context, service: Service) -> str:
    """The Deployment of ``service`` (k8s/app_chart.py: the app's name for web; k8s/service_chart.py:
    ``<app>-<service>`` otherwise), also its pods' ``app.kubernetes.io/name`` label."""
    return ctx.config.app if service.is_web else f"{ctx.config.app}-{service.name}"


def _eks_row(ctx: Context, service: Service, group: str, streams: list[dict[str, Any]]) -> Finding:
    namespace, deployment = ctx.config.eks.namespace, deployment_name(ctx, service)
    resource = f"eks {service.name}"
    # A pod of a Deployment is <deployment>-<replica set hash>-<5 chars>; each container (re)start is a new stream.
    pods = re.compile(
        rf"^{re.escape(EKS_STREAM)}(?P<pod>{re.escape(deployment)}-[a-z0-9]{{1,10}}-[a-z0-9]{{5}})_{re.escape(namespace)}_"
    )
    mine = [(m["pod"], s) for s in streams if (m := pods.match(str(s.get("logStreamName", ""))))]
    starts: dict[str, int] = {}
    for pod, _ in mine:
        starts[pod] = starts.get(pod, 0) + 1
    erroring: list[tuple[str, str, list[str]]] = []  # (pod, stream, lines) whose last lines flag an error or exit
    for pod, found in mine[:5]:
        name = str(found["logStreamName"])
        lines = shown(_tail(ctx, group, name) or [])
        if any(line.startswith(FLAG) for line in lines):
            erroring.append((pod, name, lines))
    how = _kubectl(ctx, namespace, deployment)
    what = f"Deployment {deployment} (namespace {namespace})"
    if not erroring:
        seen = (
            f"{len(mine)} container log stream(s) of its pods in the last hour, none ends with an error"
            if mine
            else "no pod of it logged in the last hour (idle, or not started: a pod that cannot start logs nothing)"
        )
        return ok(CHECK_ID, resource, f"{what}: {seen}; pod events are not read: {how}")
    pod, stream, lines = erroring[0]
    detail = "\n".join([_tail_header(group, stream), *lines])
    restarted = {p: n for p, n in starts.items() if n > 1 and any(e[0] == p for e in erroring)}
    if restarted:
        loop, times = max(restarted.items(), key=lambda item: item[1])
        return fail(
            CHECK_ID,
            resource,
            f"{what} is crash-looping: pod {loop} started {times} containers in the last hour and its log ends with "
            f"errors (below); {how}",
            detail,
        )
    return warn(
        CHECK_ID,
        resource,
        f"{what}: pod {pod} logged errors or an exit in the last hour (below), no restart seen in the logs; {how}",
        detail,
    )


def _kubectl(ctx: Context, namespace: str, deployment: str) -> str:
    why = (
        "the Kubernetes API is private (eks.endpoint_access: private), so doctor cannot read pod events"
        if ctx.config.eks.endpoint_access == "private"
        else "doctor reads AWS APIs only, not the Kubernetes API, so it cannot read pod events"
    )
    cluster = ctx.stack("eks").outputs.get("ClusterName")
    login = f"`aws eks update-kubeconfig --name {cluster} --region {ctx.region}`, then " if cluster else ""
    return (
        f"{why}; from inside the VPC run {login}`kubectl -n {namespace} get events --field-selector "
        f"involvedObject.kind=Pod`, `kubectl -n {namespace} describe pod -l app.kubernetes.io/name={deployment}` and "
        f"`kubectl -n {namespace} logs deployment/{deployment} --previous`"
    )
