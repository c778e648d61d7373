"""Who is calling, where, and whether the stage's stacks and data stores are in the stage's region."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from doctor.aws import error_code, explain
from doctor.model import ClientSource, Context, Finding, Identity, NotChecked, StackInfo, fail, ok, warn

BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_STACK = "CDKToolkit"
STACK_MISSING_CODE = "ValidationError"  # what describe_stacks answers for an unknown stack name
GOOD_STATUS = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})


def whoami(aws: ClientSource, region: str) -> Identity:
    """The caller behind the default credential chain (sts:GetCallerIdentity needs no permission)."""
    reply = aws.client("sts", region).get_caller_identity()
    return Identity(account=str(reply["Account"]), arn=str(reply["Arn"]), user_id=str(reply["UserId"]))


def caller(ctx: Context) -> list[Finding]:
    """local-credentials and region-mismatch: show account, ARN and regions; judge the kind of caller."""
    me = ctx.identity
    if me is None:
        raise NotChecked("caller identity unknown")
    default = ctx.aws.default_region or "not set"
    seen = f"account {me.account}, default region {default}, doctor looks in {ctx.region}"
    if me.kind == "root":
        caller_finding = fail(
            "local-credentials",
            me.arn,
            f"{seen}. Root credentials: never deploy or diagnose as root; use an SSO role",
        )
    elif me.kind == "user":
        caller_finding = warn(
            "local-credentials",
            me.arn,
            (
                f"{seen}. Long-lived IAM user keys: use an assumed role (aws sso login, CI OIDC) so cdk deploy goes "
                "through the CDK bootstrap roles; no *FullAccess policies on users (iam-deployer-overprivileged)"
            ),
        )
    else:
        caller_finding = ok("local-credentials", me.arn, seen)
    findings = [caller_finding]

    stage_region = ctx.config.region
    if ctx.region != stage_region:
        findings.append(
            warn(
                "region-mismatch",
                "region",
                f"--region {ctx.region} overrides the stage's {stage_region}: results describe "
                f"{ctx.region}, not where the stage file deploys",
            )
        )
    elif ctx.elsewhere:
        findings.append(
            warn(
                "region-mismatch",
                "region",
                f"your default region is {ctx.elsewhere}, the stage is in {stage_region}: doctor "
                f"uses {stage_region}, but aws/eb commands without --region go to {ctx.elsewhere}; "
                f"export AWS_REGION={stage_region}",
            )
        )
    else:
        findings.append(ok("region-mismatch", "region", f"stage region {stage_region}; default region {default}"))

    pinned = ctx.config.account
    if pinned and pinned != me.account:
        findings.append(
            fail(
                "region-mismatch",
                "account",
                f"credentials are for account {me.account}, the stage file pins {pinned}: switch "
                "profile (AWS_PROFILE=...) before deploying or diagnosing this stage",
            )
        )
    elif pinned:
        findings.append(ok("region-mismatch", "account", f"caller account matches {pinned}"))
    else:
        findings.append(
            ok(
                "region-mismatch",
                "account",
                f"the stage file pins no account: a deploy goes to the caller's {me.account}; set `account:` to pin it",
            )
        )
    return findings


def cdk_bootstrap(ctx: Context) -> list[Finding]:
    """CDK bootstrap present in the stage's region: its version parameter, else the CDKToolkit stack."""
    resource = f"cdk bootstrap ({ctx.region})"
    parameter = "missing"
    try:
        version = ctx.client("ssm").get_parameter(Name=BOOTSTRAP_PARAMETER)["Parameter"]["Value"]
        return [ok("region-mismatch", resource, f"bootstrap version {version}")]
    except Exception as error:
        if error_code(error) != "ParameterNotFound":
            parameter = f"unreadable ({explain(error)})"
    stack = describe_stack(ctx.client("cloudformation"), BOOTSTRAP_STACK)
    if stack is not None:
        return [
            warn(
                "region-mismatch",
                resource,
                f"stack {BOOTSTRAP_STACK} is {stack.status} but {BOOTSTRAP_PARAMETER} is {parameter}; "
                "re-run cdk bootstrap if deploys fail",
            )
        ]
    account = ctx.identity.account if ctx.identity else "<account>"
    return [
        fail(
            "region-mismatch",
            resource,
            f"no CDK bootstrap in {ctx.region}: run `npx cdk bootstrap aws://{account}/{ctx.region}`",
        )
    ]


def describe_stack(cloudformation: Any, name: str) -> StackInfo | None:
    """The stack named ``name``; None when it does not exist (other errors propagate)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except Exception as error:
        if error_code(error) == STACK_MISSING_CODE and "does not exist" in str(error):
            return None
        raise
    if not stacks:
        return None
    stack = stacks[0]
    outputs = {str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])}
    return StackInfo(name=name, status=str(stack["StackStatus"]), outputs=outputs)


def read_stacks(aws: ClientSource, region: str, names: Iterable[str]) -> dict[str, StackInfo]:
    """Every stack of the stage as found in ``region``; a missing one is also looked up in the caller's
    default region, where a deploy without an explicit region would have put it."""
    found: dict[str, StackInfo] = {}
    other = aws.default_region if aws.default_region and aws.default_region != region else None
    for name in names:
        try:
            info = describe_stack(aws.client("cloudformation", region), name)
        except Exception as error:
            found[name] = StackInfo(name=name, status=None, error=f"could not be read: {explain(error)}")
            continue
        if info is None and other:
            try:
                elsewhere = describe_stack(aws.client("cloudformation", other), name)
            except Exception:
                elsewhere = None
            info = StackInfo(name=name, status=None, found_in=other if elsewhere else None)
        found[name] = info or StackInfo(name=name, status=None)
    return found


def stacks_deployed(ctx: Context) -> list[Finding]:
    """region-mismatch: every stack of the stage exists, healthy, in the stage's region."""
    findings: list[Finding] = []
    for name, info in ctx.stacks.items():
        if info.error:
            findings.append(warn("region-mismatch", name, f"stack {info.error}"))
        elif info.status is None and info.found_in:
            findings.append(
                fail(
                    "region-mismatch",
                    name,
                    f"deployed to {info.found_in}, but the stage is in {ctx.region}: destroy it there "
                    f"and deploy with the stage's environment (`npx cdk deploy -c stage="
                    f"{ctx.config.stage} {name}`)",
                )
            )
        elif info.status is None:
            findings.append(
                fail(
                    "region-mismatch",
                    name,
                    f"not deployed in {ctx.region}: deploy first (`npx cdk deploy -c stage={ctx.config.stage} {name}`)",
                )
            )
        elif info.status in GOOD_STATUS:
            findings.append(ok("region-mismatch", name, f"{info.status} in {ctx.region}"))
        elif info.status.endswith("_IN_PROGRESS") or info.status == "UPDATE_ROLLBACK_COMPLETE":
            findings.append(
                warn(
                    "region-mismatch",
                    name,
                    f"{info.status}: a deploy is running or was rolled back; check the stack events",
                )
            )
        else:
            findings.append(
                fail(
                    "region-mismatch",
                    name,
                    f"{info.status}: read the failed events (`aws cloudformation describe-stack-events "
                    f"--stack-name {name} --region {ctx.region}`), fix, redeploy",
                )
            )
    return findings


def data_placement(ctx: Context) -> list[Finding]:
    """region-mismatch: the RDS instance and the replication group named by the data stack are in the stage's
    region (an app in one region cannot reach a database created in another)."""
    db_id = ctx.output("data", "DatabaseInstanceId")
    group_id = ctx.output("data", "CacheReplicationGroupId")
    return [
        _placement(ctx, f"RDS {db_id}", "rds", {"DBInstanceNotFound", "DBInstanceNotFoundFault"},
                   lambda rds: rds.describe_db_instances(DBInstanceIdentifier=db_id)),
        _placement(ctx, f"ElastiCache {group_id}", "elasticache", {"ReplicationGroupNotFoundFault"},
                   lambda cache: cache.describe_replication_groups(ReplicationGroupId=group_id)),
    ]  # fmt: skip


def _placement(
    ctx: Context, resource: str, service: str, missing: set[str], describe: Callable[[Any], object]
) -> Finding:
    if _exists(ctx.client(service), missing, describe):
        return ok("region-mismatch", resource, f"found in {ctx.region}")
    if ctx.elsewhere and _exists(ctx.client(service, ctx.elsewhere), missing, describe):
        return fail(
            "region-mismatch",
            resource,
            f"found in {ctx.elsewhere}, not in the stage's {ctx.region}: the app cannot reach it; "
            "recreate it through the stage's data stack",
        )
    return fail(
        "region-mismatch",
        resource,
        f"named by the data stack but not found in {ctx.region}: deleted outside CloudFormation? "
        "redeploy the data stack",
    )


def _exists(client: Any, missing: set[str], describe: Callable[[Any], object]) -> bool:
    try:
        describe(client)
    except Exception as error:
        if error_code(error) in missing:
            return False
        raise
    return True


def zones_offered(ctx: Context) -> list[Finding]:
    """The stage file's availability zones exist for this account in the stage region and are available (the
    config checks the letters offline; whether a zone is enabled for this account only the account knows)."""
    wanted = list(ctx.config.network.availability_zones)
    reply = ctx.client("ec2").describe_availability_zones(AllAvailabilityZones=True)
    states = {str(z["ZoneName"]): str(z.get("State", "")) for z in reply.get("AvailabilityZones", [])}
    bad = [f"{zone} ({states.get(zone, 'not offered')})" for zone in wanted if states.get(zone) != "available"]
    resource = "network.availability_zones"
    if bad:
        offered = ", ".join(sorted(z for z, state in states.items() if state == "available")) or "none"
        return [fail("region-mismatch", resource, f"{', '.join(bad)}; use zones this account has: {offered}")]
    return [ok("region-mismatch", resource, f"{', '.join(wanted)} available in {ctx.region}")]
