"""NetworkStack: the stage's VPC."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, aws_ec2 as ec2
from constructs import Construct

from config.schema import AppConfig
from constructs.network import Network
from stacks.stage_stack import StageStack


class NetworkStack(StageStack):
    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        self.network = Network(self, "Network", config=config.network)
        self.vpc = self.network.vpc
        CfnOutput(self, "VpcId", value=self.vpc.vpc_id)
        app_subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        CfnOutput(self, "AppSubnetIds", value=",".join(app_subnets), description="where tasks and one-off tasks run")
