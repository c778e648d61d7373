"""A worker on ECS Fargate: a long-running process (Celery, RQ, arq ...) with no inbound traffic at all."""

from __future__ import annotations

import jsii
from aws_cdk import (
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_sns as sns,
)
from constructs import Construct

from config.schema import AppConfig
from config.services import Service
from constructs.app_secrets import AppSecrets
from constructs.fargate_service import service_alarms
from constructs.service_task import service_task, task_log_group, task_security_group


@jsii.implements(ec2.IConnectable)
class FargateWorker(Construct):
    """A Fargate service without a load balancer, port or ingress rule (worker-inbound), scaled on CPU.

    Args:
        cluster: the stack's ECS cluster; tasks run in its VPC's private subnets without public IPs.
        config / service / secrets: the stage, the worker process (command, settings, ``ecs`` sizing), the stage's
            SecureString parameters (only the worker's own secrets are delivered).
        alarm_topic / alarm_prefix: running-task, CPU and memory alarms named ``<prefix>-ecs-<name>-<metric>``.

    Deploys like the web service: the circuit breaker rolls back a version whose tasks keep stopping, and 100 %
    stay running while new tasks start.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        config: AppConfig,
        service: Service,
        secrets: AppSecrets,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        sizing = service.ecs
        self.log_group = task_log_group(self, config)
        self.task_definition = service_task(
            self, "Task", config=config, service=service, secrets=secrets, log_group=self.log_group
        )
        # No ingress at all; HTTPS out to AWS APIs, DB/cache rules from the stack's wiring when it uses them.
        self.security_group = task_security_group(
            self, cluster.vpc, f"ECS worker {service.name}: no inbound; AWS, DB, cache out", service
        )
        self.service = ecs.FargateService(
            self,
            "Default",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=sizing.min_tasks,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
            security_groups=[self.security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=sizing.max_percent,
            enable_execute_command=config.exec_enabled,
        )
        scaling = self.service.auto_scale_task_count(min_capacity=sizing.min_tasks, max_capacity=sizing.max_tasks)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=sizing.cpu_target_percent)
        self.alarms: list[cw.Alarm] = service_alarms(
            self,
            self.service,
            topic=alarm_topic,
            prefix=f"{alarm_prefix}-ecs-{service.name}",
            min_tasks=sizing.min_tasks,
        )

    @property
    def connections(self) -> ec2.Connections:
        return self.service.connections
