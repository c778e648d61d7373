"""EbStack: the app on Elastic Beanstalk (Docker on AL2023), wired to the data stack from this side."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, aws_ec2 as ec2
from constructs import Construct

from config.schema import AppConfig
from constructs.beanstalk_environment import BeanstalkEnvironment
from constructs.compute_target import ComputeTarget
from stacks.data import DataStack
from stacks.stage_stack import StageStack


class EbStack(StageStack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, vpc: ec2.IVpc, data: DataStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        self.beanstalk = BeanstalkEnvironment(
            self,
            "Beanstalk",
            vpc=vpc,
            config=config,
            secrets=data.secrets,
            alarm_topic=data.alarm_topic,
            alarm_prefix=f"{config.app}-{config.stage}",
        )
        security_group = self.beanstalk.security_group
        # Consumer-side wiring: the rules live in this stack; the data stack does not change (sg-compute-to-rds).
        security_group.connections.allow_to_default_port(data.database, "EB instances to PostgreSQL")
        security_group.connections.allow_to_default_port(data.cache, "EB instances to Redis")

        role = self.beanstalk.instance_role
        ComputeTarget(
            self,
            "Declaration",
            kind="eb",
            security_group=security_group,
            secret_reader=role,
            image_puller=role,
            max_units=config.eb.max_instances,
            # EB creates and names its log groups (/aws/elasticbeanstalk/<env>/...); logs-missing checks the
            # environment's StreamLogs / RetentionInDays options instead.
            log_groups=[],
            # The ALB talks to EB's nginx on port 80, not to the container port alb-to-target-sg checks; the
            # instance group admits the ALB group on 80 in BeanstalkEnvironment.
            load_balancer_group=None,
        )
        for key, value in {
            "ComputeSecurityGroupId": security_group.security_group_id,
            "LoadBalancerSecurityGroupId": self.beanstalk.load_balancer_group.security_group_id,
            "ConsumerRoleArn": role.role_arn,
            "EnvironmentName": self.beanstalk.environment_name,
            "EnvironmentUrl": self.beanstalk.environment.attr_endpoint_url,
            "ApplicationName": self.beanstalk.application.ref,
            "ApplicationVersion": self.beanstalk.version.ref,
            "SolutionStackName": config.eb.solution_stack,
        }.items():
            CfnOutput(self, key, value=value)
