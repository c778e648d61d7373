"""The web service on ECS Fargate: private tasks behind the stage ALB, settings + secrets from the stage."""

from __future__ import annotations

import jsii
from aws_cdk import (
    Duration,
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_sns as sns,
)
from constructs import Construct

from config.schema import AppConfig
from config.services import Service
from constructs.alarms import GT, LT, add_alarm
from constructs.app_secrets import AppSecrets
from constructs.load_balancer import WebLoadBalancer
from constructs.service_task import service_task, task_log_group, task_security_group

# The alarms on a web service's target group (constructs/load_balancer.py) that gate a deployment of it.
DEPLOYMENT_GATES = ("Target5xxAlarm", "LatencyP99Alarm")


@jsii.implements(ec2.IConnectable)
class FargateService(Construct):
    """The web service on Fargate, registered in the load balancer's target group.

    Args:
        cluster: the stack's ECS cluster.
        config: the stage (log retention, ECS Exec: ``config.exec_enabled``).
        service: the web process: image, command, settings, secrets, health contract, ``ecs`` sizing and scaling.
        secrets: the stage's SecureString parameters; the service's secrets are delivered from them.
        load_balancer: the ALB whose target group receives the tasks.
        alarm_topic / alarm_prefix: running-task, CPU and memory alarms (``<alarm_prefix>-ecs[-<service>]-...``).
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
        load_balancer: WebLoadBalancer,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        sizing = service.ecs
        health = service.health
        assert health is not None and service.port is not None, "FargateService runs the web service"
        health_port = health.port or service.port
        self.cluster = cluster
        self.log_group = task_log_group(self, config)
        probe = f"http://127.0.0.1:{health_port}{health.liveness_path}"
        self.task_definition = service_task(
            self,
            "Task",
            config=config,
            service=service,
            secrets=secrets,
            log_group=self.log_group,
            target="ecs",
            health_check=ecs.HealthCheck(
                # The image is a Python service: python is there even when curl is not.
                command=["CMD", "python", "-c", f"import urllib.request as u; u.urlopen({probe!r}, timeout=4)"],
                interval=Duration.seconds(max(health.interval_seconds, 5)),
                timeout=Duration.seconds(min(health.timeout_seconds, 60)),
                retries=health.unhealthy_threshold,
                start_period=Duration.seconds(min(max(health.boot_seconds, 0), 300)),
            ),
        )
        self.security_group = task_security_group(self, cluster.vpc, "ECS tasks: ALB in; AWS, DB, cache out", service)
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
            health_check_grace_period=Duration.seconds(health.boot_seconds + health.interval_seconds),
            enable_execute_command=config.exec_enabled,
        )
        # A release that passes its health checks but raises the app's 5xx or p99 latency alarm during the deployment
        # rolls itself back (ECS deployment alarms), not only one that fails health checks (the circuit breaker).
        targets = load_balancer.targets[service.name]
        gates = [a for a in targets.alarms if a.node.id.startswith(DEPLOYMENT_GATES)]
        self.service.enable_deployment_alarms(
            [a.alarm_name for a in gates], behavior=ecs.AlarmBehavior.ROLLBACK_ON_ALARM
        )
        # Registers the tasks and opens ALB SG -> service SG on the container port (both sides, alb-to-target-sg).
        targets.target_group.add_target(self.service)
        if health_port != service.port:
            load_balancer.connections.allow_to(self.service, ec2.Port.tcp(health_port), "ALB health checks")

        scaling = self.service.auto_scale_task_count(min_capacity=sizing.min_tasks, max_capacity=sizing.max_tasks)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=sizing.cpu_target_percent)
        scaling.scale_on_request_count(
            "Requests", requests_per_target=sizing.requests_per_target, target_group=targets.target_group
        )
        self.alarms = service_alarms(
            self,
            self.service,
            topic=alarm_topic,
            prefix=f"{alarm_prefix}-ecs" + ("" if service.route is None else f"-{service.name}"),
            min_tasks=sizing.min_tasks,
        )

    @property
    def connections(self) -> ec2.Connections:
        return self.service.connections


def service_alarms(
    scope: Construct, service: ecs.FargateService, *, topic: sns.ITopic, prefix: str, min_tasks: int
) -> list[cw.Alarm]:
    """Running-task (missing data breaches: no tasks report nothing), CPU and memory alarms of one ECS service,
    named ``<prefix>-<metric>``."""
    dims = {"ClusterName": service.cluster.cluster_name, "ServiceName": service.service_name}
    running = cw.Metric(
        namespace="ECS/ContainerInsights",
        metric_name="RunningTaskCount",
        dimensions_map=dims,
        statistic="Minimum",
        period=Duration.minutes(1),
    )
    return [
        add_alarm(
            scope,
            "RunningTasksAlarm",
            name=f"{prefix}-RunningTaskCount",
            metric=running,
            threshold=min_tasks,
            comparison=LT,
            topic=topic,
            evaluation_periods=5,
            description=f"fewer than {min_tasks} tasks running",
            treat_missing_data=cw.TreatMissingData.BREACHING,
        ),
        add_alarm(
            scope,
            "CpuAlarm",
            name=f"{prefix}-CPUUtilization",
            metric=service.metric_cpu_utilization(period=Duration.minutes(5)),
            threshold=85,
            comparison=GT,
            topic=topic,
            description="service CPU above 85 %",
        ),
        add_alarm(
            scope,
            "MemoryAlarm",
            name=f"{prefix}-MemoryUtilization",
            metric=service.metric_memory_utilization(period=Duration.minutes(5)),
            threshold=85,
            comparison=GT,
            topic=topic,
            description="service memory above 85 % (OOM risk)",
        ),
    ]
