"""alb-to-target-sg: ALB egress to the target group on the container (and health) port, target ingress from the ALB."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import WORLD, Finding, Tree, group_admits


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
                # An unresolved port is a token: trust CDK's wiring.
                if not group_admits(egress, group=alb, destination=compute, port=port, unresolved=True):
                    yield Finding(
                        self.id,
                        target.node.path,
                        f"no ALB egress to the {target.label} group on {port}",
                        "register the service in the target group (or load_balancer.connections.allow_to)",
                    )
                if not group_admits(ingress, group=compute, source=alb, port=port, unresolved=True):
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
