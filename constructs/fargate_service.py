"""The app on ECS Fargate: private tasks behind the shared ALB, settings + secrets from the stage, safe deploys."""

from __future__ import annotations

import jsii
from aws_cdk import (
    Duration,
    RemovalPolicy,
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_logs as logs,
    aws_sns as sns,
)
from constructs import Construct

from config.schema import AppConfig
from constructs.alarms import GT, LT, add_alarm
from constructs.app_secrets import AppSecrets
from constructs.compute_target import runtime_environment
from constructs.image_repository import image_repository
from constructs.load_balancer import WebLoadBalancer
from constructs.nag import acknowledge
from constructs.retention import retention

CONTAINER = "app"


def ecr_image(scope: Construct, uri: str) -> ecs.ContainerImage:
    """The configured ECR image; pulling it grants ECR read on that repository to the execution role only."""
    repository, reference = image_repository(scope, uri)
    return ecs.ContainerImage.from_ecr_repository(repository, reference)


@jsii.implements(ec2.IConnectable)
class FargateService(Construct):
    """Fargate service registered in the load balancer's target group.

    Args:
        vpc: tasks run in its private-with-egress subnets without public IPs.
        config: the stage: image, port, ``ecs`` sizing and scaling, ``server`` runtime, health contract,
            settings map, log retention.
        secrets: the stage's SecureString parameters; every secret setting is delivered from them.
        load_balancer: the ALB whose target group receives the tasks.
        alarm_topic / alarm_prefix: running-task, CPU and memory alarms.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        config: AppConfig,
        secrets: AppSecrets,
        load_balancer: WebLoadBalancer,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        sizing = config.ecs
        self.cluster = ecs.Cluster(self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENHANCED)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=retention(config.log_retention_days), removal_policy=RemovalPolicy.DESTROY
        )
        image = ecr_image(self, config.image)
        environment = runtime_environment(config)
        ecs_secrets = {name: ecs.Secret.from_ssm_parameter(p.parameter) for name, p in secrets.parameters.items()}

        self.task_definition = ecs.FargateTaskDefinition(
            self, "Task", cpu=sizing.cpu, memory_limit_mib=sizing.memory_mib
        )
        health = config.health
        probe = f"http://127.0.0.1:{config.health_port}{health.liveness_path}"
        self.task_definition.add_container(
            CONTAINER,
            image=image,
            essential=True,
            port_mappings=[ecs.PortMapping(container_port=config.container_port)],
            environment=environment,
            secrets=ecs_secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="app", log_group=self.log_group),
            readonly_root_filesystem=False,
            health_check=ecs.HealthCheck(
                # The image is a Python service: python is there even when curl is not.
                command=["CMD", "python", "-c", f"import urllib.request as u; u.urlopen({probe!r}, timeout=4)"],
                interval=Duration.seconds(max(health.interval_seconds, 5)),
                timeout=Duration.seconds(min(health.timeout_seconds, 60)),
                retries=health.unhealthy_threshold,
                start_period=Duration.seconds(min(max(health.boot_seconds, 0), 300)),
            ),
        )
        # Egress is explicit: HTTPS to AWS APIs (endpoints or NAT), and DB/cache rules added by the stack's wiring.
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="ECS tasks: ALB in; AWS, DB, cache out",
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs over HTTPS")
        self.service = ecs.FargateService(
            self,
            "Default",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=sizing.min_tasks,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
            security_groups=[self.security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=Duration.seconds(health.boot_seconds + health.interval_seconds),
            enable_execute_command=sizing.exec_enabled,
        )
        # Registers the tasks and opens ALB SG -> service SG on the container port (both sides, alb-to-target-sg).
        load_balancer.target_group.add_target(self.service)
        if config.health_port != config.container_port:
            load_balancer.connections.allow_to(self.service, ec2.Port.tcp(config.health_port), "ALB health checks")

        scaling = self.service.auto_scale_task_count(min_capacity=sizing.min_tasks, max_capacity=sizing.max_tasks)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=sizing.cpu_target_percent)
        scaling.scale_on_request_count(
            "Requests", requests_per_target=sizing.requests_per_target, target_group=load_balancer.target_group
        )

        self.migration_task = ecs.FargateTaskDefinition(
            self, "MigrationTask", cpu=sizing.cpu, memory_limit_mib=sizing.memory_mib
        )
        self.migration_task.add_container(
            CONTAINER,
            image=image,
            essential=True,
            command=list(sizing.migration_command),
            environment=environment,
            secrets=ecs_secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="migrate", log_group=self.log_group),
        )
        for task in (self.task_definition, self.migration_task):
            acknowledge(task, "ECS2", "only non-secret settings are in environment; secrets come from SSM")
            if task.execution_role is not None:
                acknowledge(
                    task.execution_role,
                    "IAM5[Resource::*]",
                    "ecr:GetAuthorizationToken has no resource scope; pulls are scoped to the repository",
                )
        if sizing.exec_enabled:
            # enable_execute_command grants the task role ssmmessages:Create/OpenControlChannel and
            # Create/OpenDataChannel: the SSM agent's channels have no resource-level permissions.
            acknowledge(
                self.task_definition.task_role,
                "IAM5[Resource::*]",
                "ECS Exec (ecs.exec_enabled): ssmmessages channel actions support no resource scoping",
            )
        self.alarms = self._add_alarms(alarm_topic, alarm_prefix, sizing.min_tasks)

    @property
    def connections(self) -> ec2.Connections:
        return self.service.connections

    def _add_alarms(self, topic: sns.ITopic, prefix: str, min_tasks: int) -> list[cw.Alarm]:
        dims = {"ClusterName": self.cluster.cluster_name, "ServiceName": self.service.service_name}
        running = cw.Metric(
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions_map=dims,
            statistic="Minimum",
            period=Duration.minutes(1),
        )
        return [
            add_alarm(
                self,
                "RunningTasksAlarm",
                name=f"{prefix}-ecs-RunningTaskCount",
                metric=running,
                threshold=min_tasks,
                comparison=LT,
                topic=topic,
                evaluation_periods=5,
                description=f"fewer than {min_tasks} tasks running",
                treat_missing_data=cw.TreatMissingData.BREACHING,
            ),
            add_alarm(
                self,
                "CpuAlarm",
                name=f"{prefix}-ecs-CPUUtilization",
                metric=self.service.metric_cpu_utilization(period=Duration.minutes(5)),
                threshold=85,
                comparison=GT,
                topic=topic,
                description="service CPU above 85 %",
            ),
            add_alarm(
                self,
                "MemoryAlarm",
                name=f"{prefix}-ecs-MemoryUtilization",
                metric=self.service.metric_memory_utilization(period=Duration.minutes(5)),
                threshold=85,
                comparison=GT,
                topic=topic,
                description="service memory above 85 % (OOM risk)",
            ),
        ]
