"""Parameters, who may read them, and whether the services run their current versions. No value is ever read
(secrets-printed): only ``describe_parameters`` metadata, IAM policy simulation and start times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config.kinds import parameter_family
from doctor.aws import explain
from doctor.model import Context, Finding, NotChecked, fail, ok, warn

READ_ACTION = "ssm:GetParameters"
DECRYPT_ACTION = "kms:Decrypt"
SECRET_ACTION = "secretsmanager:GetSecretValue"


def parameter_metadata(ctx: Context) -> dict[str, dict[str, Any]]:
    """``{name: describe_parameters entry}`` for the stage's parameter-delivered settings that exist (secrets and
    ``{from: ...}`` parts); values never read."""
    keys = [*ctx.config.parameter_settings, *ctx.config.redis_databases]  # with services' own Redis databases
    names = [ctx.config.parameter_name(key) for key in keys]
    found: dict[str, dict[str, Any]] = {}
    paginator = ctx.client("ssm").get_paginator("describe_parameters")
    for start in range(0, len(names), 50):  # a filter takes at most 50 values
        chunk = names[start : start + 50]
        for page in paginator.paginate(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": chunk}]):
            for parameter in page.get("Parameters", []):
                found[str(parameter["Name"])] = parameter
    return found


def provided_settings(ctx: Context) -> list[str]:
    """The ``{secret: provided}`` settings of the stage: the team stores them, the deploy only checks them."""
    return [name for name, kind in ctx.config.parameter_settings.items() if kind == "provided"]


def secure_strings(ctx: Context) -> list[Finding]:
    """ssm-securestring-missing: every ``/<app>/<stage>/<NAME>`` the deploy writes exists: a secret as a
    SecureString, a ``{from: ...}`` part of the connection as a String (by design: a host or port is no secret).
    Provided secrets are provided-secret-missing's (its fix is ``make secret``, not a redeploy)."""
    managed = {name: kind for name, kind in ctx.config.parameter_settings.items() if kind != "provided"}
    if not managed:
        return [
            ok(
                "ssm-securestring-missing",
                f"/{ctx.config.app}/{ctx.config.stage}/*",
                "the stage has no parameters the deploy writes",
            )
        ]
    found = parameter_metadata(ctx)
    findings: list[Finding] = []
    for setting, kind in managed.items():
        name = ctx.config.parameter_name(setting)
        parameter = found.get(name)
        part = parameter_family(kind) == "part"
        if parameter is None:
            findings.append(
                fail(
                    "ssm-securestring-missing",
                    name,
                    f"missing in {ctx.region}: the app cannot start; redeploy the data stack, which "
                    "creates it (never create it by hand with a value in shell history)",
                )
            )
        elif part and parameter.get("Type") in ("String", "SecureString"):
            findings.append(
                ok(
                    "ssm-securestring-missing",
                    name,
                    f"{parameter.get('Type')} ({{from: {kind}}}: a part of the connection, not a secret), version "
                    f"{parameter.get('Version', '?')} (value not read)",
                )
            )
        elif part or parameter.get("Type") != "SecureString":
            expected = "a String" if part else "a SecureString"
            plain = "" if part else " (stored in plain text)"
            findings.append(
                fail(
                    "ssm-securestring-missing",
                    name,
                    f"is a {parameter.get('Type')}{plain}: delete it and redeploy "
                    f"the data stack so it is recreated as {expected}",
                )
            )
        else:
            findings.append(
                ok(
                    "ssm-securestring-missing",
                    name,
                    f"SecureString, key {parameter.get('KeyId', 'alias/aws/ssm')}, version "
                    f"{parameter.get('Version', '?')} (value not read)",
                )
            )
    return findings


def provided_secrets(ctx: Context) -> list[Finding]:
    """provided-secret-missing: every ``{secret: provided}`` setting's parameter exists as a SecureString (the
    deploy fails without it); a missing one names the ``make secret`` command that stores it."""
    provided = provided_settings(ctx)
    if not provided:
        return []
    found = parameter_metadata(ctx)
    stage = ctx.config.stage
    findings: list[Finding] = []
    for setting in provided:
        name = ctx.config.parameter_name(setting)
        parameter = found.get(name)
        command = f"make secret STAGE={stage} NAME={setting}"
        if parameter is None:
            findings.append(
                fail(
                    "provided-secret-missing",
                    name,
                    f"missing in {ctx.region}: the deploy fails and no service can start; store the value with "
                    f"`{command}` (prompts without echo, or reads stdin)",
                )
            )
        elif parameter.get("Type") != "SecureString":
            findings.append(
                fail(
                    "provided-secret-missing",
                    name,
                    f"is a {parameter.get('Type')} (stored in plain text): delete it (`aws ssm delete-parameter "
                    f"--name {name} --region {ctx.region}`), rotate the value it held, then `{command}`",
                )
            )
        else:
            findings.append(
                ok(
                    "provided-secret-missing",
                    name,
                    f"SecureString, key {parameter.get('KeyId', 'alias/aws/ssm')}, version "
                    f"{parameter.get('Version', '?')}, last changed {_when(parameter.get('LastModifiedDate'))} "
                    "(value not read)",
                )
            )
    return findings


def read_permission(ctx: Context) -> list[Finding]:
    """secret-read-permission: each target's consumer role may ssm:GetParameters every secret setting (and
    kms:Decrypt a customer key), and is not granted the data stores' master secrets it does not need.

    Uses iam:SimulatePrincipalPolicy: identity policies and permission boundaries of the role, not SCPs.
    """
    findings: list[Finding] = []
    consumers: dict[str, str] = {}
    for purpose in ctx.targets:
        try:
            consumers[purpose] = ctx.output(purpose, "ConsumerRoleArn")
        except NotChecked as skipped:
            findings.append(warn("secret-read-permission", f"{purpose} consumer", f"not checked: {skipped}"))
    if not consumers:
        return findings
    if ctx.identity is None:
        raise NotChecked("caller identity unknown")
    found = parameter_metadata(ctx)
    arns = {
        f"arn:{ctx.identity.partition}:ssm:{ctx.region}:{ctx.identity.account}:parameter{name}": name
        for name in (
            ctx.config.parameter_name(key) for key in [*ctx.config.parameter_settings, *ctx.config.redis_databases]
        )
    }
    keys = sorted({str(p["KeyId"]) for p in found.values() if ":key/" in str(p.get("KeyId", ""))})
    data = ctx.stacks.get(ctx.config.stack_name("data"))
    data_outputs = data.outputs if data is not None else {}
    master_secrets = [data_outputs[k] for k in ("DatabaseSecretArn", "CacheAuthSecretArn") if data_outputs.get(k)]
    iam = ctx.client("iam")
    for purpose, role in sorted(consumers.items()):
        denied = _denied(iam, role, READ_ACTION, list(arns)) if arns else []
        denied += _denied(iam, role, DECRYPT_ACTION, keys) if keys else []
        for action, resource, decision in denied:
            findings.append(
                fail(
                    "secret-read-permission",
                    role,
                    f"{purpose} consumer cannot {action} on {arns.get(resource, resource)} "
                    f"({decision}): grant it with the data stack's AppSecrets.grant_read(role)",
                )
            )
        allowed = _allowed(iam, role, SECRET_ACTION, master_secrets) if master_secrets else []
        for resource in allowed:
            findings.append(
                warn(
                    "secret-read-permission",
                    role,
                    f"{purpose} consumer may {SECRET_ACTION} on {resource}; it needs only the "
                    "SecureString parameters: narrow the grant",
                )
            )
        if not denied and not allowed:
            findings.append(
                ok(
                    "secret-read-permission",
                    role,
                    f"{purpose} consumer may read all {len(arns)} parameter(s)"
                    + (f" and decrypt with {len(keys)} customer key(s)" if keys else ""),
                )
            )
    return findings


def _simulate(iam: Any, role: str, action: str, resources: list[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    request: dict[str, Any] = {"PolicySourceArn": role, "ActionNames": [action], "ResourceArns": resources}
    while True:
        reply = iam.simulate_principal_policy(**request)
        results.extend(reply.get("EvaluationResults", []))
        if not reply.get("IsTruncated"):
            return results
        request["Marker"] = reply["Marker"]


def _denied(iam: Any, role: str, action: str, resources: list[str]) -> list[tuple[str, str, str]]:
    return [
        (action, str(r.get("EvalResourceName", "*")), str(r.get("EvalDecision")))
        for r in _simulate(iam, role, action, resources)
        if r.get("EvalDecision") != "allowed"
    ]


def _allowed(iam: Any, role: str, action: str, resources: list[str]) -> list[str]:
    return [
        str(r.get("EvalResourceName", "*"))
        for r in _simulate(iam, role, action, resources)
        if r.get("EvalDecision") == "allowed"
    ]


# -- secret-rollout-stale -----------------------------------------------------------------------------------------

ROLLOUT_ID = "secret-rollout-stale"
LONG_RUNNING = ("web", "worker")  # jobs and the migration step read their parameters at each run
GRACE = timedelta(minutes=15)  # a roll-out started by the change replaces the copies within this time


def clock() -> datetime:
    """Now, in UTC (tests replace it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Change:
    """The newest change among the parameters one service reads."""

    parameter: str
    at: datetime
    version: str


@dataclass(frozen=True)
class Copies:
    """When the running copies of one service on one target last (re)started, and how to force a roll-out."""

    what: str  # "ECS service shop-dev-Service-abc in cluster c" / "EB environment shop-dev"
    unit: str  # task / instance
    started: list[datetime]
    force: str
    rolling: bool = False  # a deployment (or an EB update) is in progress
    rolling_since: datetime | None = None  # when that deployment started, if known
    basis: str = ""  # how the times were found, when not per copy
    pending: int = 0  # copies not started yet: they read the current value when they start


def rollout_stale(ctx: Context) -> list[Finding]:
    """secret-rollout-stale: every long-running service (web, worker) on every enabled target runs copies started
    after the newest change of the parameters it reads (ECS: running tasks' startedAt; EB: each instance's last
    deployment, else the environment's last update). EKS cannot be judged through AWS APIs (Reloader restarts the
    pods): one warn row with the kubectl commands. Only metadata is read: LastModifiedDate, never a value."""
    readers = [s for s in ctx.config.workloads if s.kind in LONG_RUNNING and s.secrets]
    here = {p: [s for s in readers if s.runs_on(p)] for p in ctx.targets}
    if not any(here.values()):
        return []
    found = parameter_metadata(ctx)
    now = clock()
    findings: list[Finding] = []
    clusters: dict[str, dict[str, str]] = {}  # cluster -> {APP_SERVICE: ECS service name}
    for purpose, services in here.items():
        if purpose == "eks" and services:
            findings.append(_eks_row(ctx, services, found))
            continue
        for service in services:
            resource = f"{purpose} {service.name}"
            change = _last_change(ctx, service.secrets, found)
            if change is None:
                findings.append(
                    warn(
                        ROLLOUT_ID,
                        resource,
                        "not checked: none of the parameters it reads exists (see ssm-securestring-missing and "
                        "provided-secret-missing)",
                    )
                )
                continue
            try:
                copies = _copies(ctx, purpose, service.name, service.is_web, clusters)
            except NotChecked as skipped:
                findings.append(warn(ROLLOUT_ID, resource, f"not checked: {skipped}"))
                continue
            except Exception as error:  # one service's lookup failing leaves the others checked
                findings.append(warn(ROLLOUT_ID, resource, f"could not run: {explain(error)}"))
                continue
            findings.append(_judge(ctx, purpose, resource, change, copies, now))
    return findings


def _last_change(ctx: Context, settings: tuple[str, ...], found: dict[str, dict[str, Any]]) -> Change | None:
    changes = [
        Change(name, _utc(found[name]["LastModifiedDate"]), str(found[name].get("Version", "?")))
        for name in (ctx.config.parameter_name(s) for s in settings)
        if name in found and found[name].get("LastModifiedDate")
    ]
    return max(changes, key=lambda c: c.at, default=None)


def _judge(ctx: Context, purpose: str, resource: str, change: Change, copies: Copies, now: datetime) -> Finding:
    n = len(copies.started) + copies.pending
    unit = f"{copies.unit}(s)"
    changed = f"{change.parameter} changed {_when(change.at)} (version {change.version})"
    basis = f" ({copies.basis})" if copies.basis else ""
    if copies.pending:
        basis += f" ({copies.pending} still starting: they read the current value)"
    if not n:
        return warn(
            ROLLOUT_ID,
            resource,
            f"{copies.what}: no running {copies.unit}, nothing to compare with {changed}; read the service's "
            "events (desired count 0, or copies that keep stopping)",
        )
    stale = sorted(t for t in copies.started if t < change.at)
    if not stale:
        return ok(
            ROLLOUT_ID,
            resource,
            f"{copies.what}: all {n} running {unit} started after {changed}"
            + (f"; oldest started {_when(min(copies.started))}" if copies.started else "")
            + basis,
        )
    older = f"{len(stale)} of {n} running {unit} started before {changed} (oldest {_when(stale[0])}){basis}"
    # A deployment started at or after the change, still replacing copies: the roll-out at work.
    rolling = copies.rolling and (copies.rolling_since is None or copies.rolling_since >= change.at)
    if rolling or now - change.at < GRACE:
        return warn(
            ROLLOUT_ID,
            resource,
            f"rolling out: {copies.what}: {older}; a roll-out replaces them within minutes of the change: re-run "
            f"`make doctor STAGE={ctx.config.stage}` after {_when(change.at + GRACE)}",
        )
    stack = ctx.config.stack_name(purpose)
    alarm = (
        f"{ctx.prefix}-secret-rollout-failed" if purpose == "ecs" else f"{ctx.prefix}-{purpose}-secret-rollout-failed"
    )
    return fail(
        ROLLOUT_ID,
        resource,
        f"{copies.what}: {older}: they still run the old value. Find why the roll-out did not replace them in the "
        f"logs of the secret roll-out function of stack {stack} (its failures: alarm {alarm}), or force it: "
        f"`{copies.force}`",
    )


def _copies(ctx: Context, purpose: str, name: str, web: bool, clusters: dict[str, dict[str, str]]) -> Copies:
    """The running copies of service ``name`` on target ``purpose`` (ecs or eb)."""
    if purpose == "eb" and web:
        return _eb_copies(ctx)
    cluster = ctx.output(purpose, "ClusterName" if purpose == "ecs" else "TaskClusterName")
    if purpose == "ecs" and web:
        service = ctx.output("ecs", "ServiceName")
    else:
        if cluster not in clusters:
            clusters[cluster] = _ecs_services_by_app(ctx, cluster)
        if name not in clusters[cluster]:
            raise NotChecked(
                f"no ECS service in cluster {cluster} runs APP_SERVICE={name}; redeploy the {purpose} stack"
            )
        service = clusters[cluster][name]
    return _ecs_copies(ctx, cluster, service)


def _ecs_services_by_app(ctx: Context, cluster: str) -> dict[str, str]:
    """``{APP_SERVICE of its task definition: ECS service name}`` of the cluster's active services."""
    ecs = ctx.client("ecs")
    arns: list[str] = []
    for page in ecs.get_paginator("list_services").paginate(cluster=cluster):
        arns.extend(page.get("serviceArns", []))
    found: dict[str, str] = {}
    for start in range(0, len(arns), 10):  # describe_services takes at most 10
        for service in ecs.describe_services(cluster=cluster, services=arns[start : start + 10]).get("services", []):
            if service.get("status") != "ACTIVE":
                continue
            task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
            for container in task.get("containerDefinitions", []):
                app = {e.get("name"): e.get("value") for e in container.get("environment", [])}.get("APP_SERVICE")
                if app:
                    found[str(app)] = str(service["serviceName"])
    return found


def _ecs_copies(ctx: Context, cluster: str, name: str) -> Copies:
    ecs = ctx.client("ecs")
    force = f"aws ecs update-service --cluster {cluster} --service {name} --force-new-deployment --region {ctx.region}"
    described = ecs.describe_services(cluster=cluster, services=[name]).get("services", [])
    if not described or described[0].get("status") != "ACTIVE":
        raise NotChecked(f"ECS service {name} is not active in cluster {cluster}")
    deployments = described[0].get("deployments", [])
    arns: list[str] = []
    request: dict[str, Any] = {"cluster": cluster, "serviceName": name, "desiredStatus": "RUNNING"}
    while True:
        reply = ecs.list_tasks(**request)
        arns.extend(reply.get("taskArns", []))
        if not reply.get("nextToken"):
            break
        request["nextToken"] = reply["nextToken"]
    started: list[datetime] = []
    pending = 0
    for start in range(0, len(arns), 100):  # describe_tasks takes at most 100
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100]).get("tasks", []):
            if task.get("startedAt"):
                started.append(_utc(task["startedAt"]))
            else:
                pending += 1
    primary = [d for d in deployments if d.get("status") == "PRIMARY"]
    since = primary[0].get("createdAt") if primary else None
    rolling = bool(primary) and primary[0].get("rolloutState") == "IN_PROGRESS" and len(deployments) > 1
    return Copies(
        what=f"ECS service {name} (cluster {cluster})",
        unit="task",
        started=started,
        force=force,
        rolling=rolling,
        rolling_since=_utc(since) if since else None,
        pending=pending,
    )


def _eb_copies(ctx: Context) -> Copies:
    """Each instance's last deployment time (enhanced health), else the environment's last update."""
    name = ctx.output("eb", "EnvironmentName")
    eb = ctx.client("elasticbeanstalk")
    environments = [
        e
        for e in eb.describe_environments(EnvironmentNames=[name], IncludeDeleted=False).get("Environments", [])
        if e.get("EnvironmentName") == name and e.get("Status") != "Terminated"
    ]
    if not environments:
        raise NotChecked(f"EB environment {name} not found in {ctx.region}")
    environment = environments[0]
    label = environment.get("VersionLabel") or ctx.stack("eb").outputs.get("ApplicationVersion") or "<current>"
    force = (
        f"aws elasticbeanstalk update-environment --environment-name {name} --version-label {label} "
        f"--region {ctx.region}"
    )
    updated = _utc(environment["DateUpdated"]) if environment.get("DateUpdated") else None
    times: list[datetime | None] = []
    unavailable = ""
    try:
        request: dict[str, Any] = {"EnvironmentName": name, "AttributeNames": ["Deployment"]}
        while True:
            reply = eb.describe_instances_health(**request)
            for instance in reply.get("InstanceHealthList", []):
                when = instance.get("Deployment", {}).get("DeploymentTime")
                times.append(_utc(when) if when else None)
            if not reply.get("NextToken"):
                break
            request["NextToken"] = reply["NextToken"]
    except Exception as error:  # basic health, or no permission: the environment's last update instead
        unavailable, times = f"instance deployment times unavailable ({explain(error)}); ", []
    basis = ""
    if not times or None in times:
        if updated is None:
            raise NotChecked(f"EB environment {name} reports neither instance deployment times nor DateUpdated")
        known = [t for t in times if t is not None]
        basis = unavailable + (
            f"{len(times) - len(known)} instance(s) without a deployment time counted at the environment's last "
            f"update {_when(updated)}"
            if known
            else f"judged by the environment's last update {_when(updated)}"
        )
        times = [t or updated for t in times] or [updated]
    return Copies(
        what=f"EB environment {name}",
        unit="instance",
        started=[t for t in times if t is not None],
        force=force,
        rolling=environment.get("Status") == "Updating",
        basis=basis,
    )


def _eks_row(ctx: Context, services: list[Any], found: dict[str, dict[str, Any]]) -> Finding:
    names = [s.name for s in services]
    change = _last_change(ctx, tuple(setting for s in services for setting in s.secrets), found)
    namespace = ctx.config.eks.namespace
    changed = f"; newest change: {change.parameter} {_when(change.at)} (version {change.version})" if change else ""
    return warn(
        ROLLOUT_ID,
        f"eks {', '.join(names)}",
        "not checkable through AWS APIs: External Secrets refreshes each Kubernetes Secret from Parameter Store and "
        f"Reloader restarts the Deployments that use it{changed}. Check with `kubectl -n {namespace} get "
        f"externalsecret` (last sync) against `kubectl -n {namespace} get pods` (AGE): a pod older than the sync "
        f"still runs the old value; `kubectl -n {namespace} rollout restart deployment/<name>` replaces it",
    )


def _utc(value: Any) -> datetime:
    """A boto3 timestamp (datetime, or ISO text from a stub) as an aware UTC datetime."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _when(value: Any) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "?"
