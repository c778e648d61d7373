"""A worker on ECS Fargate: a long-running process (Celery, RQ, arq ...) with no inbound traffic at all."""

from __future__ import annotations

import jsii
from aws_cdk import (
    Duration,
    aws_applicationautoscaling as appscaling,
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_sns as sns,
)
from constructs import Construct

from config.resources import queue_name
from config.schema import AppConfig
from config.services import Service
from constructs.app_secrets import AppSecrets
from constructs.compute_target import TargetKind
from constructs.fargate_service import service_alarms
from constructs.service_task import service_task, task_log_group, task_security_group


def scale_on_backlog(scaling: ecs.ScalableTaskCount, queue: str, per_task: int, *, name: str) -> None:
    """Step scaling on the queue's visible messages (as ecs-patterns' QueueProcessingService does): one task more
    from ``per_task`` waiting, three more from five times that, one fewer when it is empty; CPU scaling stays.

    Its two alarms act on the scaling policy, not the stage topic: they are named ``scaling-<name>-queue-low|high``,
    outside the stage's ``<app>-<stage>-*`` alarm names that doctor and the deploy workflow's alarm watch read (a
    backlog is load, not a bad release)."""
    visible = cw.Metric(
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions_map={"QueueName": queue},
        statistic="Maximum",
        period=Duration.minutes(1),
    )
    scaling.scale_on_metric(
        "Queue",
        metric=visible,
        scaling_steps=[
            appscaling.ScalingInterval(upper=0, change=-1),
            appscaling.ScalingInterval(lower=per_task, change=+1),
            appscaling.ScalingInterval(lower=per_task * 5, change=+3),
        ],
        adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        cooldown=Duration.minutes(2),
    )
    policy = scaling.node.find_child("Target").node.find_child("Queue")
    for alarm, end in (("LowerAlarm", "low"), ("UpperAlarm", "high")):
        resource = policy.node.find_child(alarm).node.default_child
        assert isinstance(resource, cw.CfnAlarm)
        resource.treat_missing_data = "notBreaching"  # a quiet queue (no data) changes nothing
        resource.alarm_name = f"scaling-{name}-queue-{end}"


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
        target: TargetKind | None = None,
        load_balancer_host: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        sizing = service.ecs
        self.log_group = task_log_group(self, config)
        self.task_definition = service_task(
            self,
            "Task",
            config=config,
            service=service,
            secrets=secrets,
            log_group=self.log_group,
            target=target,
            load_balancer_host=load_balancer_host,
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
        if service.scale_on_queue is not None:
            queue, per_task = service.scale_on_queue
            scale_on_backlog(scaling, queue_name(config, queue), per_task, name=f"{alarm_prefix}-{service.name}")
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
