"""EcsStack: the app on ECS Fargate behind its own ALB, wired to the data stack from this side."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, aws_ec2 as ec2
from constructs import Construct

from config.schema import AppConfig
from constructs.compute_target import ComputeTarget
from constructs.fargate_service import FargateService
from constructs.load_balancer import WebLoadBalancer
from stacks.data import DataStack
from stacks.stage_stack import StageStack


class EcsStack(StageStack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, vpc: ec2.IVpc, data: DataStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        prefix = f"{config.app}-{config.stage}"
        self.load_balancer = WebLoadBalancer.for_stage(
            self, config=config, vpc=vpc, alarm_topic=data.alarm_topic, target="ecs"
        )
        self.service = FargateService(
            self,
            "Service",
            vpc=vpc,
            config=config,
            secrets=data.secrets,
            load_balancer=self.load_balancer,
            alarm_topic=data.alarm_topic,
            alarm_prefix=prefix,
        )
        # Consumer-side wiring: the rules live in this stack; the data stack does not change (sg-compute-to-rds).
        self.service.connections.allow_to_default_port(data.database, "ECS service to PostgreSQL")
        self.service.connections.allow_to_default_port(data.cache, "ECS service to Redis")

        task = self.service.task_definition
        assert task.execution_role is not None  # FargateTaskDefinition always has one once secrets are added
        security_group = self.service.security_group
        ComputeTarget(
            self,
            "Declaration",
            kind="ecs",
            security_group=security_group,
            secret_reader=task.execution_role,
            image_puller=task.execution_role,
            max_units=config.ecs.max_tasks,
            log_groups=[self.service.log_group],
            load_balancer_group=self.load_balancer.security_group,
        )
        for key, value in {
            "ComputeSecurityGroupId": security_group.security_group_id,
            "LoadBalancerArn": self.load_balancer.load_balancer.load_balancer_arn,
            "LoadBalancerDnsName": self.load_balancer.load_balancer.load_balancer_dns_name,
            "TargetGroupArn": self.load_balancer.target_group.target_group_arn,
            "LogGroupName": self.service.log_group.log_group_name,
            "ConsumerRoleArn": task.execution_role.role_arn,
            "ClusterName": self.service.cluster.cluster_name,
            "ServiceName": self.service.service.service_name,
            "MigrationTaskDefinitionArn": self.service.migration_task.task_definition_arn,
        }.items():
            CfnOutput(self, key, value=value)
