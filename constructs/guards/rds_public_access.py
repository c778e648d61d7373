"""rds-public-access: databases and caches are never publicly accessible and admit no world CIDR."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from aws_cdk import aws_ec2 as ec2

from config.schema import AppConfig
from constructs.guards.framework import WORLD, Finding, Tree, ingress_rules


def protected_groups(tree: Tree) -> set[str]:
    """Security-group id tokens of every DB instance and cache replication group."""
    groups: set[str] = set()
    for resource in tree.of_type("AWS::RDS::DBInstance"):
        groups.update(resource.raw.get("vpcSecurityGroups") or [])
    for resource in tree.of_type("AWS::ElastiCache::ReplicationGroup", "AWS::ElastiCache::CacheCluster"):
        groups.update(resource.raw.get("securityGroupIds") or resource.raw.get("vpcSecurityGroupIds") or [])
    return {g for g in groups if isinstance(g, str)}


def group_id_of(resource_node: object, raw: Mapping[str, object]) -> object:
    """The group an ingress rule belongs to: ``groupId`` of a standalone rule, the SG itself for inline ones."""
    if isinstance(resource_node, ec2.CfnSecurityGroup):
        return resource_node.attr_group_id
    return raw.get("groupId")


class RdsPublicAccess:
    """Compliant: every DB instance sets PubliclyAccessible false; no DB or cache SG admits 0.0.0.0/0 or ::/0."""

    id = "rds-public-access"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for resource in tree.of_type("AWS::RDS::DBInstance"):
            value = resource.props.get("publiclyAccessible")
            if value is not False:
                yield Finding(
                    self.id,
                    resource.path,
                    f"PubliclyAccessible={value}",
                    "set publicly_accessible=False and place it in isolated subnets; operators use "
                    "Session Manager port forwarding",
                )
        protected = protected_groups(tree)
        for resource, rule in ingress_rules(tree):
            raw_rule = resource.raw if "groupId" in resource.raw else {}
            group = group_id_of(resource.node, raw_rule)
            cidr = rule.get("cidrIp") or rule.get("cidrIpv6")
            if group in protected and isinstance(cidr, str) and WORLD.match(cidr):
                yield Finding(
                    self.id,
                    resource.path,
                    f"ingress from {cidr} to a database/cache security group",
                    "remove the CIDR rule; admit the compute security group from its own stack",
                )


RULE = RdsPublicAccess()
