"""sg-compute-to-rds: the DB security group admits exactly the compute groups of the services that use it, and each
of those groups may send to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aws_cdk import aws_ec2 as ec2

from config.schema import AppConfig
from config.services import Service
from constructs.guards.framework import Finding, Resource, Tree, compact, ingress_rules, port_range

POSTGRES_PORT = 5432


def check_admission(
    rule_id: str,
    what: str,
    port: int,
    tree: Tree,
    protected: dict[str, Resource],
    uses: Callable[[Service], bool],
    maintainers: frozenset[str] = frozenset(),
) -> Iterator[Finding]:
    """``protected``: SG-id token -> the DB/cache resource using it. Sources must be exactly the groups of the
    services that ``uses`` (several services may share a group: EB instances, EKS pods), on ``port`` only (a port
    that is still a token, e.g. the DB endpoint port, is CDK's own wiring). Each such group that the app defines
    must also have an egress rule to the protected group (or to a CIDR) on ``port``: a security group without
    ``allow_all_outbound`` sends nowhere else, so an admitted group without egress still cannot connect.
    ``maintainers``: SG-id tokens of the store's own maintenance path (the database's user bootstrap and
    credential rotation functions, ``make db``'s tunnel task), admitted on ``port`` as well."""
    expected = {t.security_group.security_group_id: t for t in tree.targets if uses(t.service)}
    # A group shared with a service that uses it (EB instances, EKS pods) is expected, whoever else runs in it.
    others = {
        t.security_group.security_group_id: t
        for t in tree.targets
        if not uses(t.service) and t.security_group.security_group_id not in expected
    }
    admitted: dict[str, set[str]] = {group: set() for group in protected}
    for resource, rule in ingress_rules(tree):
        standalone = resource.type == "AWS::EC2::SecurityGroupIngress"
        group = resource.raw.get("groupId") if standalone else resource.node.attr_group_id  # type: ignore[attr-defined]
        if group not in protected:
            continue
        cidr = rule.get("cidrIp") or rule.get("cidrIpv6")
        if standalone:
            source = resource.raw.get("sourceSecurityGroupId")
        else:  # inline rules are rendered lazily: compare their resolved source with each target's group
            known = [*expected, *others]
            source = next((t for t in known if resource.stack.resolve(t) == rule.get("sourceSecurityGroupId")), None)
        ports = port_range(rule)
        if source is None:  # an inline rule from a maintenance group
            resolved = rule.get("sourceSecurityGroupId")
            source = next((m for m in maintainers if resource.stack.resolve(m) == resolved), None)
        if source in maintainers:
            if ports is not None and ports != (port, port):
                yield Finding(
                    rule_id, resource.path, f"ports {ports[0]}-{ports[1]} open to its maintenance group",
                    f"admit its rotation functions and make db's tunnel on {port} only",
                )  # fmt: skip
            continue
        if cidr:
            yield Finding(
                rule_id,
                resource.path,
                f"ingress from CIDR {cidr}",
                f"remove it; {what} admits only the compute security groups of enabled targets",
            )
        elif source in others:
            yield Finding(
                rule_id,
                resource.path,
                f"ingress from {others[source].label}",
                f"{others[source].label} does not use {what} (none of its settings is its URL); remove the rule",
            )
        elif source not in expected:
            yield Finding(
                rule_id,
                resource.path,
                f"ingress from {compact(rule.get('sourceSecurityGroupId'))}",
                f"only the compute groups of services that use {what} may reach it; remove this rule",
            )
        elif ports is not None and ports != (port, port):
            yield Finding(
                rule_id,
                resource.path,
                f"ports {ports[0]}-{ports[1]} open to {expected[source].label}",
                f"admit the compute group on {port} only (connections.allow_to_default_port)",
            )
        else:
            admitted[group].add(source)
    for group in protected:
        for token, target in expected.items():
            if token not in admitted[group]:
                yield Finding(
                    rule_id,
                    target.node.path,
                    f"{target.label} compute group not admitted to {what}",
                    f"in the {target.kind} stack: connections.allow_to_default_port(<{what}>)",
                )
            compute = defined_group(tree, token)
            if compute is not None and not any(
                reaches(r, rule, group, port) for r, rule in egress_rules(tree, compute)
            ):
                yield Finding(
                    rule_id,
                    target.node.path,
                    f"{target.label} compute group has no egress to {what} on {port}",
                    f"in the {target.kind} stack: connections.allow_to_default_port(<{what}>) adds the egress rule "
                    "next to the ingress; do not remove it",
                )


def defined_group(tree: Tree, token: str) -> Resource | None:
    """The security group of the app whose id is ``token``; None for a group it imports (EKS's cluster group)."""
    return next(
        (
            r
            for r in tree.of_type("AWS::EC2::SecurityGroup")
            if isinstance(r.node, ec2.CfnSecurityGroup) and r.node.attr_group_id == token
        ),
        None,
    )


def egress_rules(tree: Tree, group: Resource) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """Egress rules of the security group ``group``: standalone ``SecurityGroupEgress`` resources and inline ones."""
    assert isinstance(group.node, ec2.CfnSecurityGroup)
    for resource in tree.of_type("AWS::EC2::SecurityGroupEgress"):
        if resource.raw.get("groupId") == group.node.attr_group_id:
            yield resource, resource.props
    for rule in group.get("securityGroupEgress", default=[]) or []:
        yield group, rule


def reaches(resource: Resource, rule: dict[str, Any], destination: str, port: int) -> bool:
    """True when the egress ``rule`` lets traffic to the security group ``destination`` (an SG-id token) on
    ``port``: a rule to that group or to a CIDR, on a range holding ``port`` (a token port is CDK's own wiring)."""
    ports = port_range(rule)
    if ports is None:
        on_port = str(rule.get("ipProtocol")) in ("tcp", "6") and not isinstance(rule.get("fromPort"), int)
    else:
        on_port = ports[0] <= port <= ports[1]
    if rule.get("cidrIp") or rule.get("cidrIpv6"):
        return on_port
    target = rule.get("destinationSecurityGroupId")
    return on_port and target is not None and target == resource.stack.resolve(destination)


class SgComputeToRds:
    """Compliant: every ingress rule on a DB instance's security group comes from an enabled target's compute
    group, and every enabled target has one, plus the egress rule from its own group (when the app defines it)."""

    id = "sg-compute-to-rds"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        protected = {g: r for r in tree.of_type("AWS::RDS::DBInstance") for g in r.raw.get("vpcSecurityGroups") or []}
        maintainers = frozenset(
            [
                *(u.security_group.security_group_id for u in tree.database_users),
                *(t.security_group.security_group_id for t in tree.database_tunnels),
            ]
        )
        yield from check_admission(
            self.id, "the database", POSTGRES_PORT, tree, protected, lambda s: s.uses_database, maintainers
        )


RULE = SgComputeToRds()
