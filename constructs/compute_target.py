"""What every compute target declares about itself, so the shared guards check ECS, EB and EKS the same way."""

from __future__ import annotations

from typing import Literal

from aws_cdk import aws_ec2 as ec2, aws_iam as iam, aws_logs as logs
from constructs import Construct

from config.schema import AppConfig

TargetKind = Literal["ecs", "eb", "eks"]


class ComputeTarget(Construct):
    """A declaration (no resources): the facts guards need about one target.

    Args:
        kind: ``ecs``, ``eb`` or ``eks``.
        security_group: the group the target's compute runs in; DB and cache must admit exactly these.
        secret_reader: the principal that fetches secrets at start (ECS execution role, EB instance role,
            IRSA role of External Secrets).
        image_puller: the principal that pulls the image (ECS execution role, EB instance role, Fargate pod
            execution role).
        max_units: the most tasks / instances / replicas that can run at once (for the connection budget).
        log_groups: where the target's logs go; each must have a retention.
        load_balancer_group: the ALB security group in front of the target, when CloudFormation owns one.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kind: TargetKind,
        security_group: ec2.ISecurityGroup,
        secret_reader: iam.IRole,
        image_puller: iam.IRole,
        max_units: int,
        log_groups: list[logs.ILogGroup],
        load_balancer_group: ec2.ISecurityGroup | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.kind = kind
        self.security_group = security_group
        self.secret_reader = secret_reader
        self.image_puller = image_puller
        self.max_units = max_units
        self.log_groups = log_groups
        self.load_balancer_group = load_balancer_group


# Names of the runtime values every target passes to the container next to the stage's plain settings.
PORT, WORKERS, KEEP_ALIVE = "PORT", "WEB_CONCURRENCY", "KEEP_ALIVE_SECONDS"


def runtime_environment(config: AppConfig) -> dict[str, str]:
    """The plain environment every target delivers: the stage's plain settings plus how the server runs.

    ``KEEP_ALIVE_SECONDS`` comes from the same value the ALB idle timeout is checked against (alb-keepalive-502).
    """
    return {
        **config.plain_settings,
        PORT: str(config.container_port),
        WORKERS: str(config.server.workers),
        KEEP_ALIVE: str(config.server.keep_alive_seconds),
        "DB_POOL_SIZE": str(config.server.db_pool_size),
        "DB_MAX_OVERFLOW": str(config.server.db_max_overflow),
        "HEALTH_PATH": config.health.liveness_path,
        "READY_PATH": config.health.readiness_path,
        "APP_STAGE": config.stage,
        "AWS_REGION": config.region,
    }
