"""The compute side: the image, Elastic Beanstalk, load balancer targets and EKS on Fargate."""

from __future__ import annotations

import json
import re
from typing import Any

from config.schema import ECR_IMAGE
from doctor.aws import error_code
from doctor.model import Context, Finding, NotChecked, Verdict, fail, ok, warn

DOCKER_AL2023 = re.compile(r"^64bit Amazon Linux 2023 v4\.(\d+)\.(\d+) running Docker$")
# Reason codes of elbv2 DescribeTargetHealth, with what usually fixes them.
TARGET_REASONS = {
    "Elb.RegistrationInProgress": "registration in progress; wait a minute",
    "Elb.InitialHealthChecking": "first health checks running; wait (boot_seconds) and re-run",
    "Target.ResponseCodeMismatch": "the health path answered a code outside the matcher: /health must return 200 "
    "without touching the database (deep checks belong to /ready)",
    "Target.Timeout": "no answer in time: check the target SG admits the ALB SG on the container port, and that "
    "the app listens on 0.0.0.0 at that port",
    "Target.FailedHealthChecks": "the app does not answer health checks: read the target's logs (crash at boot, "
    "missing setting, DB unreachable)",
    "Target.NotRegistered": "not registered: the service has no running task/pod in this target group",
    "Target.NotInUse": "the target's zone is not enabled on the load balancer",
    "Target.DeregistrationInProgress": "being deregistered (deploy or scale-in in progress)",
    "Target.InvalidState": "the target is stopped or terminated",
    "Target.IpUnusable": "the IP address is in use by the load balancer or unusable",
    "Target.HealthCheckDisabled": "health checks are disabled on the target group",
    "Elb.InternalError": "load balancer internal error; retry, then contact support",
}


def image(ctx: Context) -> list[Finding]:
    """ecr-pull-permission: the configured tag or digest exists in the ECR repository; tags are immutable."""
    match = ECR_IMAGE.match(ctx.config.image)
    if not match:
        return [fail("ecr-pull-permission", ctx.config.image, "not an ECR image URI")]
    ecr = ctx.client("ecr", match["region"])
    registry, repo = match["account"], match["repo"]
    resource = ctx.config.image
    try:
        repository = ecr.describe_repositories(registryId=registry, repositoryNames=[repo])["repositories"][0]
    except Exception as error:
        if error_code(error) != "RepositoryNotFoundException":
            raise
        return [
            fail(
                "ecr-pull-permission",
                resource,
                f"repository {repo} does not exist in {registry}/{match['region']}: create it (immutable "
                "tags) and push the image",
            )
        ]
    wanted = {"imageDigest": match["digest"]} if match["digest"] else {"imageTag": match["tag"]}
    try:
        detail = ecr.describe_images(registryId=registry, repositoryName=repo, imageIds=[wanted])["imageDetails"][0]
    except Exception as error:
        if error_code(error) != "ImageNotFoundException":
            raise
        return [
            fail(
                "ecr-pull-permission",
                resource,
                f"{next(iter(wanted.values()))} is not in {repo}: push it (`docker push {resource}`) or fix "
                "`image:` in the stage file; tasks would fail with CannotPullContainerError",
            )
        ]
    findings = [
        ok(
            "ecr-pull-permission",
            resource,
            f"present, digest {str(detail.get('imageDigest', '?'))[:19]}…",
        )
    ]
    if repository.get("imageTagMutability", "MUTABLE").startswith("MUTABLE"):
        findings.append(
            warn(
                "ecr-pull-permission",
                f"ECR {repo}",
                "tags are mutable: a push can change what a deployed tag runs; set image_tag_mutability=IMMUTABLE",
            )
        )
    return findings


def solution_stack_offered(ctx: Context) -> list[Finding]:
    """eb-solution-stack-retired: the pinned solution stack is still offered for new environments."""
    if "eb" not in ctx.targets:
        return []
    deployed = ctx.stacks.get(ctx.config.stack_name("eb"))
    pinned = deployed.outputs.get("SolutionStackName") if deployed and deployed.status else None
    name = pinned or ctx.eb_solution_stack
    if not name:
        return [
            warn(
                "eb-solution-stack-retired",
                "eb.solution_stack",
                "the stage file names no EB solution stack (eb.solution_stack); cannot check",
            )
        ]
    offered = [str(s) for s in ctx.client("elasticbeanstalk").list_available_solution_stacks()["SolutionStacks"]]
    if name in offered:
        return [ok("eb-solution-stack-retired", name, f"offered in {ctx.region}")]
    newest = max((s for s in offered if DOCKER_AL2023.match(s)), default=None, key=_version)
    hint = f"; newest Docker AL2023 stack: '{newest}'" if newest else ""
    verdict, when = (
        (Verdict.WARN, "the running environment keeps it, but a rebuild or new environment fails")
        if pinned
        else (Verdict.FAIL, "creating the environment fails with 'No Solution Stack named ...'")
    )
    return [
        Finding(
            "eb-solution-stack-retired",
            name,
            verdict,
            f"no longer offered in {ctx.region}: {when}; update eb.solution_stack{hint}",
        )
    ]


def _version(name: str) -> tuple[int, int]:
    match = DOCKER_AL2023.match(name)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def _environment(ctx: Context, name: str) -> dict[str, Any] | None:
    reply = ctx.client("elasticbeanstalk").describe_environments(EnvironmentNames=[name], IncludeDeleted=False)
    live = [
        e
        for e in reply.get("Environments", [])
        if e.get("EnvironmentName") == name and e.get("Status") not in ("Terminated",)
    ]
    return live[0] if live else None


def environment_clash(ctx: Context) -> list[Finding]:
    """eb-env-exists (before deploy): no environment ``<app>-<stage>`` exists that CloudFormation does not own,
    and an owned one is Ready (updates of a non-Ready environment are refused)."""
    if "eb" not in ctx.targets:
        return []
    name, stack = ctx.prefix, ctx.config.stack_name("eb")
    environment = _environment(ctx, name)
    if environment is None:
        return [ok("eb-env-exists", f"EB {name}", "no environment of that name; the deploy creates it")]
    tags = ctx.client("elasticbeanstalk").list_tags_for_resource(ResourceArn=environment["EnvironmentArn"])
    owner = {t["Key"]: t["Value"] for t in tags.get("ResourceTags", [])}.get("aws:cloudformation:stack-name")
    if owner != stack:
        by = f"stack {owner}" if owner else "eb create or the console"
        return [
            fail(
                "eb-env-exists",
                f"EB {name}",
                f"exists and was created by {by}, not by {stack}: the deploy fails with 'Environment "
                f"{name} already exists'; terminate it or `cdk import` it into {stack}",
            )
        ]
    if environment.get("Status") != "Ready":
        return [
            fail(
                "eb-env-exists",
                f"EB {name}",
                f"is {environment.get('Status')}: updates are refused until Ready; wait "
                f"(`aws elasticbeanstalk wait environment-updated --environment-names {name}`)",
            )
        ]
    return [ok("eb-env-exists", f"EB {name}", f"owned by {stack} and Ready")]


def environment_health(ctx: Context) -> list[Finding]:
    """eb-env-exists (after deploy): each environment (one per web service: ``EnvironmentNames``) is Ready and
    Green."""
    if "eb" not in ctx.targets:
        return []
    several = ctx.stack("eb").outputs.get("EnvironmentNames")
    names = list(json.loads(several).values()) if several else [ctx.output("eb", "EnvironmentName")]
    return [finding for name in names for finding in _environment_health(ctx, name)]


def _environment_health(ctx: Context, name: str) -> list[Finding]:
    environment = _environment(ctx, name)
    resource = f"EB {name}"
    if environment is None:
        return [
            fail(
                "eb-env-exists",
                resource,
                f"not found in {ctx.region} although the eb stack names it; redeploy the eb stack",
            )
        ]
    status, health = environment.get("Status"), environment.get("Health")
    detail = environment.get("HealthStatus", "")
    if status != "Ready":
        return [warn("eb-env-exists", resource, f"status {status}: an update is running; re-run later")]
    if health == "Green":
        return [ok("eb-env-exists", resource, f"Ready, health Green ({detail})")]
    if health == "Yellow":
        return [
            warn(
                "eb-env-exists",
                resource,
                f"health Yellow ({detail}): `aws elasticbeanstalk describe-environment-health "
                f"--environment-name {name} --attribute-names All`",
            )
        ]
    if health == "Grey":
        return [
            warn(
                "eb-env-exists",
                resource,
                f"health Grey ({detail}): no data; enhanced health needs the service role",
            )
        ]
    return [
        fail(
            "eb-env-exists",
            resource,
            f"health {health} ({detail}): read `eb health`/the instance logs; a failing /health or a missing "
            "setting is the usual cause",
        )
    ]


def target_health(ctx: Context) -> list[Finding]:
    """alb-health-check-path: each target group checks the configured liveness path and all targets are healthy."""
    findings: list[Finding] = []
    elbv2 = ctx.client("elbv2")
    for purpose in ctx.targets:
        if purpose == "eb":  # EB manages its own load balancer: see environment_health
            continue
        try:
            # Several web services: {service: target group ARN}; one: the stack's TargetGroupArn.
            several = ctx.stack(purpose).outputs.get("TargetGroupArns")
            groups = json.loads(several) if several else {ctx.config.web.name: ctx.output(purpose, "TargetGroupArn")}
        except NotChecked as skipped:
            findings.append(warn("alb-health-check-path", f"{purpose} target group", f"not checked: {skipped}"))
            continue
        for name, arn in groups.items():
            findings += _group_health(ctx, elbv2, purpose, name, arn, several=len(groups) > 1)
    return findings


def _group_health(ctx: Context, elbv2: Any, purpose: str, name: str, arn: str, *, several: bool) -> list[Finding]:
    """One web service's target group: its health check follows the service's contract; its targets are healthy."""
    findings: list[Finding] = []
    group = elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
    resource = f"{purpose} TG {group.get('TargetGroupName', arn)}" + (f" ({name})" if several else "")
    path, matcher = group.get("HealthCheckPath"), group.get("Matcher", {}).get("HttpCode")
    web = next((s for s in ctx.config.webs if s.name == name), None)
    health = web.health if web is not None and web.health is not None else ctx.config.health
    if path != health.liveness_path or (matcher and matcher != health.matcher):
        findings.append(
            fail(
                "alb-health-check-path",
                resource,
                f"checks {path} expecting {matcher}, the health contract says "
                f"{health.liveness_path} expecting {health.matcher}: redeploy the {purpose} "
                "stack (it derives both from the service's health contract)",
            )
        )
    targets = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    if not targets:
        findings.append(
            fail(
                "alb-health-check-path",
                resource,
                "no registered targets: the service runs no task/pod; read its events",
            )
        )
        return findings
    bad = [t for t in targets if t["TargetHealth"]["State"] != "healthy"]
    for target in bad:
        state = target["TargetHealth"]
        reason = str(state.get("Reason", ""))
        verdict = Verdict.WARN if state["State"] in ("initial", "draining") else Verdict.FAIL
        where = f"{target['Target']['Id']}:{target['Target'].get('Port', '')}".rstrip(":")
        findings.append(
            Finding(
                "alb-health-check-path",
                f"{resource} {where}",
                verdict,
                f"{state['State']} {reason}: "
                f"{TARGET_REASONS.get(reason, state.get('Description', 'see the target group'))}",
            )
        )
    if not bad:
        findings.append(
            ok(
                "alb-health-check-path",
                resource,
                f"{len(targets)}/{len(targets)} targets healthy on {path}",
            )
        )
    return findings


def eks_cluster(ctx: Context) -> list[Finding]:
    """fargate-profile-namespace: the cluster is ACTIVE and every Fargate profile is ACTIVE."""
    if "eks" not in ctx.targets:
        return []
    name = ctx.output("eks", "ClusterName")
    eks = ctx.client("eks")
    status = eks.describe_cluster(name=name)["cluster"]["status"]
    findings = [
        Finding(
            "fargate-profile-namespace",
            f"EKS {name}",
            Verdict.PASS
            if status == "ACTIVE"
            else Verdict.WARN
            if status in ("CREATING", "UPDATING")
            else Verdict.FAIL,
            f"cluster {status}",
        )
    ]
    profiles: list[str] = []
    for page in eks.get_paginator("list_fargate_profiles").paginate(clusterName=name):
        profiles.extend(page.get("fargateProfileNames", []))
    if not profiles:
        findings.append(
            fail(
                "fargate-profile-namespace",
                f"EKS {name}",
                "no Fargate profile: pods stay Pending; add a profile per namespace",
            )
        )
    for profile in profiles:
        detail = eks.describe_fargate_profile(clusterName=name, fargateProfileName=profile)["fargateProfile"]
        namespaces = ", ".join(s.get("namespace", "?") for s in detail.get("selectors", []))
        ok = detail.get("status") == "ACTIVE"
        findings.append(
            Finding(
                "fargate-profile-namespace",
                f"EKS {name}/{profile}",
                Verdict.PASS if ok else Verdict.FAIL,
                f"{detail.get('status')}, namespaces {namespaces}",
            )
        )
    return findings
