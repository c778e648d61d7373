"""alb-to-target-sg: ALB egress to the target group on the container (and health) port, target ingress from the ALB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config.schema import AppConfig
from constructs.guards.framework import WORLD, Finding, Tree, port_range


def _covers(rule: dict[str, Any], port: int) -> bool:
    ports = port_range(rule)
    return ports is None or ports[0] <= port <= ports[1]  # an unresolved port is a token: trust CDK's wiring


class AlbToTargetSg:
    """Compliant: for each target behind a CloudFormation ALB: an egress rule ALB SG -> target SG and an ingress
    rule target SG <- ALB SG on the container port and the health-check port; no allow-all egress on the ALB."""

    id = "alb-to-target-sg"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        egress = tree.of_type("AWS::EC2::SecurityGroupEgress")
        ingress = tree.of_type("AWS::EC2::SecurityGroupIngress")
        for target in tree.targets:
            if target.load_balancer_group is None:
                continue
            alb, compute = target.load_balancer_group.security_group_id, target.security_group.security_group_id
            service = target.service
            assert service.port is not None and service.health is not None  # only web targets have an ALB group
            for port in sorted({service.port, service.health.port or service.port}):
                if not any(
                    r.raw.get("groupId") == alb
                    and r.raw.get("destinationSecurityGroupId") == compute
                    and _covers(r.props, port)
                    for r in egress
                ):
                    yield Finding(
                        self.id,
                        target.node.path,
                        f"no ALB egress to the {target.label} group on {port}",
                        "register the service in the target group (or load_balancer.connections.allow_to)",
                    )
                if not any(
                    r.raw.get("groupId") == compute
                    and r.raw.get("sourceSecurityGroupId") == alb
                    and _covers(r.props, port)
                    for r in ingress
                ):
                    yield Finding(
                        self.id,
                        target.node.path,
                        f"{target.label} group does not admit the ALB on {port}",
                        "add the ingress from the ALB security group",
                    )
            for resource in tree.of_type("AWS::EC2::SecurityGroup"):
                if resource.node.attr_group_id == alb:  # type: ignore[attr-defined]
                    for rule in resource.props.get("securityGroupEgress") or []:
                        if WORLD.match(str(rule.get("cidrIp", ""))):
                            yield Finding(
                                self.id,
                                resource.path,
                                "ALB egress to 0.0.0.0/0",
                                "create the ALB security group with allow_all_outbound=False",
                            )


RULE = AlbToTargetSg()
