"""The services of a stage that run as Fargate tasks next to a target's web tier: workers, jobs and the migration
step. The ECS stack runs them next to its web service; the Elastic Beanstalk stack runs them next to its
environment (see the README for why EB's own options do not hold up for them)."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2, aws_ecs as ecs, aws_iam as iam, aws_logs as logs, aws_sns as sns
from constructs import Construct, IConstruct

from config.schema import AppConfig
from config.services import Service
from constructs.app_secrets import AppSecrets
from constructs.cache import Cache
from constructs.compute_target import ComputeTarget, TargetKind
from constructs.database import Database
from constructs.fargate_worker import FargateWorker
from constructs.migration_step import MigrationStep
from constructs.scheduled_job import ScheduledJob


def wire_to_data(
    connections: ec2.IConnectable, service: Service, *, database: Database, cache: Cache, where: str
) -> None:
    """Consumer-side wiring (sg-compute-to-rds, redis-sg): the rules live in the consumer's stack, and only a
    service that receives the database / cache URL is admitted to it."""
    if service.uses_database:
        connections.connections.allow_to_default_port(database, f"{where} {service.name} to PostgreSQL")
    if service.uses_cache:
        connections.connections.allow_to_default_port(cache, f"{where} {service.name} to Redis")


def declare(
    scope: Construct,
    *,
    kind: TargetKind,
    service: Service,
    group: ec2.ISecurityGroup,
    task: ecs.TaskDefinition,
    log_group: logs.ILogGroup,
    max_units: int,
    gate: IConstruct | None = None,
) -> ComputeTarget:
    """The ComputeTarget of a Fargate-run service: its execution role reads its secrets and pulls its image."""
    role: iam.IRole = task.obtain_execution_role()
    return ComputeTarget(
        scope,
        f"Declaration{service.name.title().replace('-', '')}",
        kind=kind,
        service=service,
        security_group=group,
        secret_reader=role,
        image_puller=role,
        max_units=max_units,
        log_groups=[log_group],
        compute=[task],
        gate=gate,
    )


class FargateWorkloads(Construct):
    """Workers, the jobs that run on target ``kind`` and the migration step of the stage.

    Args:
        kind: the target whose stack this is (``ecs`` or ``eb``).
        cluster: the stack's ECS cluster.
        config / secrets: the stage and its SecureString parameters.
        database / cache: the data stack's stores, wired from this side for the services that use them.
        alarm_topic / alarm_prefix: every alarm's action and name prefix.
        load_balancer_host: eb: the DNS name of the load balancer its web services answer on (the URLs of the
            services a worker or job calls, config/calls.py).

    Attributes:
        migration: the migration step, or None without ``migrate``; ``protect`` makes resources wait for it.
        targets: the ComputeTarget of every service built here.
        services: the workers' ECS services by service name (what a changed setting rolls out).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        kind: TargetKind,
        cluster: ecs.ICluster,
        config: AppConfig,
        secrets: AppSecrets,
        database: Database,
        cache: Cache,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
        load_balancer_host: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.targets: list[ComputeTarget] = []
        self.services: dict[str, ecs.FargateService] = {}  # the long-running ones (workers), by service name
        self.migration: MigrationStep | None = None
        self._protected: list[IConstruct] = []
        for service in config.workloads:
            part: FargateWorker | ScheduledJob | MigrationStep
            if service.kind == "worker":
                part = FargateWorker(
                    self, _id(service), cluster=cluster, config=config, service=service, secrets=secrets,
                    alarm_topic=alarm_topic, alarm_prefix=alarm_prefix, target=kind,
                    load_balancer_host=load_balancer_host,
                )  # fmt: skip
                units = service.ecs.surge_tasks
                self._protected.append(part.service)
                self.services[service.name] = part.service
            elif service.kind == "job" and service.runs_on(kind):
                part = ScheduledJob(
                    self, _id(service), cluster=cluster, config=config, service=service, secrets=secrets,
                    alarm_topic=alarm_topic, alarm_prefix=alarm_prefix, target=kind,
                    load_balancer_host=load_balancer_host,
                )  # fmt: skip
                units = 1
                self._protected.append(part.schedule)
            elif service.kind == "migrate":
                part = MigrationStep(
                    self, _id(service), cluster=cluster, config=config, service=service, secrets=secrets
                )
                self.migration = part
                units = 1
            else:
                continue
            wire_to_data(part, service, database=database, cache=cache, where=kind)
            self.targets.append(
                declare(
                    self,
                    kind=kind,
                    service=service,
                    group=part.security_group,
                    task=part.task_definition,
                    log_group=part.log_group,
                    max_units=units,
                    gate=part.resource if isinstance(part, MigrationStep) else None,
                )
            )
        self.protect(*self._protected)

    def protect(self, *dependents: IConstruct) -> None:
        """Make ``dependents`` wait for the migration step (no-op without ``migrate``)."""
        if self.migration is not None:
            self.migration.protect(*dependents)


def _id(service: Service) -> str:
    return {"worker": "Worker", "job": "Job", "migrate": "Migrate"}[service.kind] + service.name.title().replace(
        "-", ""
    )
