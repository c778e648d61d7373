"""What every service on every target declares about itself, so the shared guards check them all the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from aws_cdk import aws_ec2 as ec2, aws_iam as iam, aws_logs as logs
from constructs import Construct, IConstruct

from config.calls import call_settings, url_setting
from config.resources import resource_environment
from config.schema import AppConfig
from config.services import Service

TargetKind = Literal["ecs", "eb", "eks"]


class ComputeTarget(Construct):
    """A declaration (no resources): the facts guards need about one service on one target.

    Args:
        kind: the target, ``ecs``, ``eb`` or ``eks``.
        service: the process it runs (``config.workloads``): its kind, settings, secrets, what it uses.
        security_group: the group its compute runs in; the database and cache admit exactly the groups of the
            services that use them.
        secret_reader: the principal that fetches its secrets (ECS execution role, EB instance role, IRSA role of
            External Secrets); it may read exactly the secrets of the services it serves.
        image_puller: the principal that pulls its image.
        max_units: the most tasks / instances / pods that can run at once, deploy surge included.
        log_groups: where its logs go; each must have a retention.
        compute: the resources that run it (task definition, EB environment, Kubernetes manifest): what
            missing-env-vars reads.
        load_balancer_group: the ALB security group in front of it (web only, when CloudFormation owns the ALB).
        gate: the migrate step only: the resource whose success the target's services wait for (the custom
            resource that runs the task, or the Kubernetes Job's completion).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kind: TargetKind,
        service: Service,
        security_group: ec2.ISecurityGroup,
        secret_reader: iam.IRole,
        image_puller: iam.IRole,
        max_units: int,
        log_groups: Sequence[logs.ILogGroup],
        compute: Sequence[IConstruct],
        load_balancer_group: ec2.ISecurityGroup | None = None,
        gate: IConstruct | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.kind = kind
        self.service = service
        self.security_group = security_group
        self.secret_reader = secret_reader
        self.image_puller = image_puller
        self.max_units = max_units
        self.log_groups = list(log_groups)
        self.compute = list(compute)
        self.load_balancer_group = load_balancer_group
        self.gate = gate

    @property
    def label(self) -> str:
        """``<target> <kind> <name>`` for messages, e.g. ``ecs worker celery`` (``ecs web`` when name = kind)."""
        service = self.service
        return f"{self.kind} {service.kind}" + ("" if service.name == service.kind else f" {service.name}")

    @property
    def connections(self) -> int:
        """The most PostgreSQL connections this service can hold on this target at once."""
        return self.max_units * self.service.connections_per_unit


# Names of the runtime values every target passes to the container next to the stage's plain settings.
PORT, WORKERS, KEEP_ALIVE = "PORT", "WEB_CONCURRENCY", "KEEP_ALIVE_SECONDS"


def runtime_environment(
    config: AppConfig,
    service: Service | None = None,
    *,
    target: TargetKind | None = None,
    load_balancer_host: str | None = None,
) -> dict[str, str]:
    """The plain environment a service's container receives: its plain settings plus how it runs.

    Every process gets the stage, region, its own name and the DB pool sizes; a web process also its port, its
    server processes and ``KEEP_ALIVE_SECONDS`` (from the same value the ALB idle timeout is checked against,
    alb-keepalive-502) and its health paths; a worker its concurrency; and the settings of the app resources it uses
    (``UPLOADS_BUCKET``, ``EMAILS_QUEUE_URL`` ...: config/resources.py). ``service`` defaults to the web service.
    On a ``target``, also the ``<NAME>_URL`` of each web service it calls as reached there (config/calls.py;
    ``load_balancer_host``: the eb stack's load balancer DNS name, used without a domain).
    """
    service = service or config.web
    plain = config.plain_settings
    environment = {name: plain[name] for name in service.settings if name in plain}
    environment.update(
        {
            "APP_STAGE": config.stage,
            "APP_SERVICE": service.name,
            "AWS_REGION": config.region,
            "DB_POOL_SIZE": str(service.server.db_pool_size),
            "DB_MAX_OVERFLOW": str(service.server.db_max_overflow),
        }
    )
    if service.is_web:
        assert service.health is not None and service.port is not None
        environment.update(
            {
                PORT: str(service.port),
                WORKERS: str(service.server.workers),
                KEEP_ALIVE: str(service.server.keep_alive_seconds),
                "HEALTH_PATH": service.health.liveness_path,
                "READY_PATH": service.health.readiness_path,
            }
        )
    else:
        environment["WORKER_CONCURRENCY"] = str(service.server.workers)
    environment.update(resource_environment(config, service.uses))
    if target is not None:
        environment.update(call_settings(config, service, target, load_balancer_host))
    return environment


def required_names(config: AppConfig, service: Service) -> set[str]:
    """Every name the service's container must receive: its settings and its runtime values (call URLs too)."""
    calls = {url_setting(name) for name in service.calls}
    return set(service.settings) | set(runtime_environment(config, service)) | calls
