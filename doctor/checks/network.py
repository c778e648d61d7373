"""Security groups of the data stores and the database's public face."""

from __future__ import annotations

from typing import Any

from doctor.aws import error_code
from doctor.model import Context, Finding, fail, ok, warn

DB_PORT = 5432
REDIS_PORT = 6379


def database_ingress(ctx: Context) -> list[Finding]:
    """sg-compute-to-rds: the DB security group admits exactly the targets' compute SGs on 5432, no CIDR."""
    return _ingress(ctx, "sg-compute-to-rds", ctx.output("data", "DatabaseSecurityGroupId"), DB_PORT, "database")


def cache_ingress(ctx: Context) -> list[Finding]:
    """redis-sg: the cache security group admits exactly the targets' compute SGs on 6379, no CIDR."""
    return _ingress(ctx, "redis-sg", ctx.output("data", "CacheSecurityGroupId"), REDIS_PORT, "cache")


def _ingress(ctx: Context, check_id: str, group_id: str, port: int, what: str) -> list[Finding]:
    # The web service's group must be admitted; any service group of a target stack may be (workers, jobs and the
    # migration step that use the store: ComputeSecurityGroupIds lists every service's group).
    compute = {sg: purpose for purpose, sg in ctx.target_outputs("ComputeSecurityGroupId").items()}
    services = {
        sg: purpose
        for purpose, ids in ctx.target_outputs("ComputeSecurityGroupIds").items()
        for sg in ids.split(",")
        if sg
    }
    resource = f"{what} SG {group_id}"
    try:
        rules = _rules(ctx.client("ec2"), group_id)
    except Exception as error:
        if error_code(error) in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidGroupId.Malformed"):
            return [
                fail(
                    check_id,
                    resource,
                    f"named by the data stack but not found in {ctx.region}; redeploy the data stack",
                )
            ]
        raise
    findings: list[Finding] = []
    admitted: dict[str, str] = {}  # source SG -> rule id
    for rule in rules:
        if rule.get("IsEgress") or not _covers(rule, port):
            continue
        source = rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId")
        if source:
            findings.append(
                fail(
                    check_id,
                    resource,
                    f"rule {rule.get('SecurityGroupRuleId', '?')} admits {source} on {port}: remove "
                    f"it and admit the compute SG instead (operators use Session Manager port "
                    "forwarding, never an address range)",
                )
            )
        referenced = rule.get("ReferencedGroupInfo", {}).get("GroupId")
        if referenced:
            admitted[str(referenced)] = str(rule.get("SecurityGroupRuleId", "?"))
    for sg, purpose in sorted(compute.items()):
        if sg not in admitted:
            findings.append(
                fail(
                    check_id,
                    resource,
                    f"no ingress from the {purpose} compute SG {sg} on {port}: connections time "
                    f"out; redeploy the {purpose} stack (it adds the rule from the consumer side)",
                )
            )
    for sg, rule_id in sorted(admitted.items()):
        if sg in compute or sg in services:
            continue
        if compute:
            findings.append(
                fail(
                    check_id,
                    resource,
                    f"rule {rule_id} admits {sg} on {port}, which is no enabled target's compute SG: remove the rule",
                )
            )
        else:
            findings.append(
                warn(
                    check_id,
                    resource,
                    f"rule {rule_id} admits {sg} on {port}, but no target stack is deployed to tell "
                    "whether it is a compute SG",
                )
            )
    if not findings:
        sources = ", ".join(f"{sg} ({purpose})" for sg, purpose in sorted(compute.items()))
        findings.append(
            ok(
                check_id,
                resource,
                f"admits exactly {sources} on {port}"
                if sources
                else f"no ingress on {port} and no target deployed yet",
            )
        )
    return findings


def _rules(ec2: Any, group_id: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    paginator = ec2.get_paginator("describe_security_group_rules")
    for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": [group_id]}]):
        rules.extend(page.get("SecurityGroupRules", []))
    if not rules:
        # An unknown group yields no rules rather than an error here: ask for the group itself.
        ec2.describe_security_groups(GroupIds=[group_id])
    return rules


def _covers(rule: dict[str, Any], port: int) -> bool:
    if str(rule.get("IpProtocol")) == "-1":
        return True
    if str(rule.get("IpProtocol")) not in ("tcp", "6"):
        return False
    return int(rule.get("FromPort", -1)) <= port <= int(rule.get("ToPort", -1))


def database_public(ctx: Context) -> list[Finding]:
    """rds-public-access: the instance is not publicly accessible."""
    db_id = ctx.output("data", "DatabaseInstanceId")
    instances = ctx.client("rds").describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"]
    if not instances:
        return [fail("rds-public-access", f"RDS {db_id}", f"not found in {ctx.region}")]
    if instances[0].get("PubliclyAccessible"):
        return [
            fail(
                "rds-public-access",
                f"RDS {db_id}",
                "PubliclyAccessible is true: the endpoint resolves to a public address; set "
                "publicly_accessible=False in isolated subnets (redeploy the data stack) and reach it "
                "through Session Manager port forwarding",
            )
        ]
    return [ok("rds-public-access", f"RDS {db_id}", "not publicly accessible")]


def eks_pod_security_group(ctx: Context) -> list[Finding]:
    """eks-fargate-pod-sg: Fargate pods use the cluster SG, so that SG is the compute SG the data stores admit."""
    if "eks" not in ctx.targets:
        return []
    name = ctx.output("eks", "ClusterName")
    cluster_sg = (
        ctx.client("eks")
        .describe_cluster(name=name)["cluster"]
        .get("resourcesVpcConfig", {})
        .get("clusterSecurityGroupId")
    )
    wired = ctx.output("eks", "ComputeSecurityGroupId")
    if cluster_sg and cluster_sg != wired:
        return [
            fail(
                "eks-fargate-pod-sg",
                f"EKS {name}",
                f"pods on Fargate use the cluster SG {cluster_sg}, but the stack admits {wired} to the data "
                "stores: wire cluster.cluster_security_group",
            )
        ]
    return [
        ok(
            "eks-fargate-pod-sg",
            f"EKS {name}",
            f"compute SG {wired} is the cluster SG"
            if cluster_sg
            else f"cluster reports no cluster SG; the stack wires {wired}",
        )
    ]
