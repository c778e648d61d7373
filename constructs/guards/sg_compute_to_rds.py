"""sg-compute-to-rds: the DB security group admits exactly the compute groups of the services that use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from config.schema import AppConfig
from config.services import Service
from constructs.guards.framework import Finding, Resource, Tree, compact, ingress_rules, port_range

POSTGRES_PORT = 5432


def check_admission(
    rule_id: str, what: str, port: int, tree: Tree, protected: dict[str, Resource], uses: Callable[[Service], bool]
) -> Iterator[Finding]:
    """``protected``: SG-id token -> the DB/cache resource using it. Sources must be exactly the groups of the
    services that ``uses`` (several services may share a group: EB instances, EKS pods), on ``port`` only (a port
    that is still a token, e.g. the DB endpoint port, is CDK's own wiring)."""
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


class SgComputeToRds:
    """Compliant: every ingress rule on a DB instance's security group comes from an enabled target's compute
    group, and every enabled target has one."""

    id = "sg-compute-to-rds"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        protected = {g: r for r in tree.of_type("AWS::RDS::DBInstance") for g in r.raw.get("vpcSecurityGroups") or []}
        yield from check_admission(self.id, "the database", POSTGRES_PORT, tree, protected, lambda s: s.uses_database)


RULE = SgComputeToRds()
