"""The stage's workers, jobs and migration step on one target, wired to the data stack: one call for ECS and EB."""

from __future__ import annotations

from aws_cdk import aws_ecs as ecs
from constructs import Construct

from config.schema import AppConfig
from constructs.compute_target import TargetKind
from constructs.fargate_workloads import FargateWorkloads
from stacks.data import DataStack


def stage_workloads(
    scope: Construct,
    *,
    kind: TargetKind,
    cluster: ecs.ICluster,
    config: AppConfig,
    data: DataStack,
    alarm_prefix: str,
    load_balancer_host: str | None = None,
) -> FargateWorkloads:
    """``Workloads`` of ``scope``: the stage's Fargate processes for target ``kind`` with the data stack's secrets,
    database, cache and alarm topic; ``load_balancer_host``: eb, see FargateWorkloads."""
    return FargateWorkloads(
        scope,
        "Workloads",
        kind=kind,
        cluster=cluster,
        config=config,
        secrets=data.secrets,
        database=data.database,
        cache=data.cache,
        alarm_topic=data.alarm_topic,
        alarm_prefix=alarm_prefix,
        load_balancer_host=load_balancer_host,
    )
