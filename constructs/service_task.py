"""service_task: the Fargate task definition of one service: its image, command, settings, secrets and logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, aws_ec2 as ec2, aws_ecs as ecs, aws_logs as logs
from constructs import Construct

from config.schema import AppConfig
from config.services import Service
from constructs.app_permissions import grant_permissions
from constructs.app_secrets import AppSecrets
from constructs.compute_target import TargetKind, runtime_environment
from constructs.image_repository import image_repository
from constructs.nag import acknowledge
from constructs.operator_access import acknowledge_exec_logging
from constructs.retention import log_group

CONTAINER = "app"


def service_task(
    scope: Construct,
    construct_id: str,
    *,
    config: AppConfig,
    service: Service,
    secrets: AppSecrets,
    log_group: logs.ILogGroup,
    health_check: ecs.HealthCheck | None = None,
    target: TargetKind | None = None,
    load_balancer_host: str | None = None,
) -> ecs.FargateTaskDefinition:
    """A Fargate task definition ``construct_id`` in ``scope`` running ``service`` in one essential container
    ``app``: its image (ECR pull granted on exactly that repository to the execution role), command, plain
    settings + runtime values, its own secrets only (so the execution role reads exactly those), awslogs to
    ``log_group`` with the service name as stream prefix, and ``health_check`` (web only). ``target`` /
    ``load_balancer_host``: where it runs, for the URLs of the services it calls (``runtime_environment``)."""
    repository, reference = image_repository(scope, service.image, f"{construct_id}Repository")
    task = ecs.FargateTaskDefinition(scope, construct_id, cpu=service.ecs.cpu, memory_limit_mib=service.ecs.memory_mib)
    task.add_container(
        CONTAINER,
        image=ecs.ContainerImage.from_ecr_repository(repository, reference),
        essential=True,
        command=list(service.command) if service.command else None,
        port_mappings=[ecs.PortMapping(container_port=service.port)] if service.port else None,
        environment={
            **runtime_environment(config, service, target=target, load_balancer_host=load_balancer_host),
            **secrets.revision_environment(secrets.keys(service)),
        },
        secrets={name: ecs.Secret.from_ssm_parameter(p.parameter) for name, p in secrets.of(service).items()},
        logging=ecs.LogDrivers.aws_logs(stream_prefix=service.name, log_group=log_group),
        health_check=health_check,
        stop_timeout=Duration.seconds(30),
    )
    acknowledge(task, "ECS2", "only non-secret settings are in environment; secrets come from SSM")
    grant_permissions(task.task_role, service)  # its own AWS permissions (services.<name>.permissions)
    acknowledge(
        task.obtain_execution_role(),
        "IAM5[Resource::*]",
        "ecr:GetAuthorizationToken has no resource scope; pulls are scoped to the repository",
    )
    if config.exec_enabled:
        # enable_execute_command grants the task role ssmmessages:Create/OpenControlChannel and
        # Create/OpenDataChannel: the SSM agent's channels have no resource-level permissions.
        acknowledge(
            task.task_role,
            "IAM5[Resource::*]",
            "ECS Exec (ecs.exec_enabled or operators): ssmmessages channel actions support no resource scoping",
        )
    if config.operators is not None:
        acknowledge_exec_logging(task.task_role, config)
    return task


def task_log_group(scope: Construct, config: AppConfig) -> logs.LogGroup:
    """``Logs`` of ``scope``: a service's log group with the stage's retention."""
    return log_group(scope, "Logs", days=config.log_retention_days, removal_policy=RemovalPolicy.DESTROY)


def task_security_group(
    scope: Construct, vpc: ec2.IVpc, description: str, service: Service | None = None
) -> ec2.SecurityGroup:
    """``SecurityGroup`` of ``scope``: nothing in (the ALB is admitted by the web service's wiring), HTTPS out to
    AWS APIs (endpoints or NAT), plus the ``service``'s declared egress (``egress:``); DB and cache rules come
    from the stack's consumer-side wiring."""
    group = ec2.SecurityGroup(scope, "SecurityGroup", vpc=vpc, allow_all_outbound=False, description=description)
    group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs over HTTPS")
    if service is not None:
        add_declared_egress(group, service)
    return group


def add_declared_egress(group: ec2.SecurityGroup, service: Service) -> None:
    """The ``service``'s declared outbound rules (``egress:``, egress-blocked): one TCP port to one IPv4 CIDR each."""
    for port, cidr, description in service.egress:
        group.add_egress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), description)
