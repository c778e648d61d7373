"""private-egress-for-pulls: private subnets reach ECR, Logs, SSM, Secrets Manager, STS and S3."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, strings

REQUIRED_SERVICES = ("ecr.api", "ecr.dkr", "logs", "ssm", "secretsmanager", "sts", "s3")


class PrivateEgressForPulls:
    """Compliant: every VPC has a NAT gateway, or endpoints for every service a task needs before it starts."""

    id = "private-egress-for-pulls"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for vpc in tree.of_type("AWS::EC2::VPC"):
            in_stack = [r for r in tree.resources if r.stack is vpc.stack]
            nat = [r for r in in_stack if r.type == "AWS::EC2::NatGateway"]
            # ServiceName is "com.amazonaws.<region>.ecr.api", or a Join around Ref AWS::Region (the S3 gateway).
            endpoints = {
                "".join(strings(r.props.get("serviceName"))).split("com.amazonaws.", 1)[-1].split(".", 1)[-1]
                for r in in_stack
                if r.type == "AWS::EC2::VPCEndpoint"
            }
            missing = [service for service in REQUIRED_SERVICES if service not in endpoints]
            if not nat and missing:
                yield Finding(
                    self.id,
                    vpc.path,
                    f"no NAT gateway and no endpoint for {', '.join(missing)}",
                    "set network.nat_gateways >= 1 or network.interface_endpoints: true",
                )


RULE = PrivateEgressForPulls()
