"""eb-wrong-vpc: an EB environment names its VPC, private instance subnets and public ELB subnets."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, compact, eb_options

VPC = "aws:ec2:vpc"


class EbWrongVpc:
    """Compliant: every EB environment sets ``aws:ec2:vpc`` ``VPCId``, ``Subnets`` (instances) and ``ELBSubnets``,
    and ``AssociatePublicIpAddress=false``; otherwise EB launches into the default VPC and cannot reach RDS."""

    id = "eb-wrong-vpc"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment"):
            options = eb_options(env)
            missing = [name for name in ("VPCId", "Subnets", "ELBSubnets") if not options.get((VPC, name))]
            if missing:
                yield Finding(
                    self.id,
                    env.path,
                    f"{VPC} {', '.join(missing)} not set",
                    "set VPCId=vpc.vpc_id, Subnets=private-with-egress ids, ELBSubnets=public ids "
                    "(BeanstalkEnvironment does)",
                )
            public_ip = options.get((VPC, "AssociatePublicIpAddress"))
            if str(public_ip).lower() != "false":
                yield Finding(
                    self.id,
                    env.path,
                    f"{VPC} AssociatePublicIpAddress={compact(public_ip)}",
                    "instances run in private subnets: set AssociatePublicIpAddress=false",
                )


RULE = EbWrongVpc()
