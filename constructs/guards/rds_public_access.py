"""rds-public-access: databases and caches sit in isolated subnets, are never publicly accessible and admit no
world CIDR."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from aws_cdk import aws_ec2 as ec2

from config.schema import AppConfig
from constructs.guards.framework import WORLD, Finding, Resource, Tree, compact, ingress_rules, logical_ref

SUBNET_GROUPS = ("AWS::RDS::DBSubnetGroup", "AWS::ElastiCache::SubnetGroup")
# Resource type -> its subnet group property; without one RDS and ElastiCache use the default VPC (public subnets).
PLACED = {
    "AWS::RDS::DBInstance": "dbSubnetGroupName",
    "AWS::ElastiCache::ReplicationGroup": "cacheSubnetGroupName",
    "AWS::ElastiCache::CacheCluster": "cacheSubnetGroupName",
}


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


def internet_routes(tree: Tree) -> dict[str, str]:
    """Subnet ``Ref`` token -> how the subnet reaches the internet ("internet gateway", "NAT" ...), for every subnet
    of the app whose route table has a default route. A subnet that is missing here is isolated."""
    routes: dict[tuple[str, str], str] = {}
    for route in tree.of_type("AWS::EC2::Route"):
        if WORLD.match(str(route.props.get("destinationCidrBlock") or route.props.get("destinationIpv6CidrBlock"))):
            target = next((k for k in route.props if k.endswith("Id") and k != "routeTableId"), "default routeId")
            via = {"gatewayId": "internet gateway", "natGatewayId": "NAT"}.get(target, target.removesuffix("Id"))
            routes[(route.stack.node.path, json.dumps(route.props.get("routeTableId")))] = via
    tables = {
        (a.stack.node.path, json.dumps(a.props.get("subnetId"))): (
            a.stack.node.path,
            json.dumps(a.props.get("routeTableId")),
        )
        for a in tree.of_type("AWS::EC2::SubnetRouteTableAssociation")
    }
    found: dict[str, str] = {}
    for subnet in tree.of_type("AWS::EC2::Subnet"):
        table = tables.get((subnet.stack.node.path, json.dumps(logical_ref(subnet))))
        if table in routes:
            found[subnet.node.ref] = routes[table]
    return found


def placement(tree: Tree) -> Iterator[tuple[Resource, str, str]]:
    """(resource, value, fix) for each DB/cache subnet group holding a subnet that is not isolated (or not one of
    the app's), and each DB instance/cache without a subnet group of the app."""
    routed = internet_routes(tree)
    subnets = tree.of_type("AWS::EC2::Subnet")
    groups = tree.of_type(*SUBNET_GROUPS)
    fix = "place it in the VPC's isolated subnets (vpc_subnets=SubnetSelection(subnet_type=PRIVATE_ISOLATED))"
    for group in groups:
        # Each subnet as the group's stack renders it (a Ref here, an import from the network stack).
        known = {json.dumps(group.stack.resolve(s.node.ref)): s for s in subnets}
        ids = group.props.get("subnetIds") or []
        exposed = []
        for item in ids if isinstance(ids, list) else [ids]:
            subnet = known.get(json.dumps(item))
            if subnet is None:
                exposed.append(f"{compact(item)} (not a subnet of this app)")
            elif subnet.node.ref in routed:
                exposed.append(f"{subnet.path.removesuffix('/Subnet')} ({routed[subnet.node.ref]})")
        if exposed or not ids:
            yield group, f"subnets outside the isolated tier: {', '.join(exposed) or 'none'}", fix
    for resource in tree.of_type(*PLACED):
        if resource.type == "AWS::RDS::DBInstance" and resource.props.get("dbClusterIdentifier"):
            continue  # a cluster member is placed by its cluster's subnet group
        name = resource.props.get(PLACED[resource.type])
        if name is None:
            yield resource, f"{PLACED[resource.type]} not set (the default VPC's public subnets)", fix
        elif not any(resource.stack.resolve(g.node.ref) == name for g in groups):
            yield resource, f"{PLACED[resource.type]}={compact(name)}, not a subnet group of this app", fix


class RdsPublicAccess:
    """Compliant: every DB instance sets PubliclyAccessible false; every DB/cache subnet group holds isolated
    subnets of the app's VPC only (no default route to an internet gateway or NAT), and every DB instance and cache
    uses one; no DB or cache SG admits 0.0.0.0/0 or ::/0."""

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
        for resource, value, fix in placement(tree):
            yield Finding(self.id, resource.path, value, fix)
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
