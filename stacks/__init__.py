"""build_stacks(app, config): every stack of one stage, with typed handles for wiring and tests."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from config.schema import AppConfig
from constructs.nag import CdkHelperFindings
from stacks.data import DataStack
from stacks.eb import EbStack
from stacks.ecs import EcsStack
from stacks.eks import EksStack
from stacks.network import NetworkStack
from stacks.resources import ResourcesStack

# Target name in the stage file -> its stack and the stack description; each reads config, VPC and data stack.
TARGET_STACKS: dict[str, tuple[type[EcsStack] | type[EbStack] | type[EksStack], str]] = {
    "ecs": (EcsStack, "ECS Fargate service behind an ALB"),
    "eb": (EbStack, "Elastic Beanstalk (Docker on AL2023) behind an ALB"),
    "eks": (EksStack, "EKS Fargate cluster behind an ALB"),
}


@dataclass(frozen=True)
class Stacks:
    network: NetworkStack
    data: DataStack
    resources: ResourcesStack | None = None
    ecs: EcsStack | None = None
    eb: EbStack | None = None
    eks: EksStack | None = None

    def all(self) -> list[cdk.Stack]:
        return [s for s in (self.network, self.data, self.resources, self.ecs, self.eb, self.eks) if s is not None]


def build_stacks(app: cdk.App, config: AppConfig) -> Stacks:
    """One environment (account + region from the stage file) for every stack of the stage."""
    cdk.Aspects.of(app).add(CdkHelperFindings())
    network = NetworkStack(
        app,
        config.stack_name("network"),
        config=config,
        description=f"{config.app} {config.stage}: VPC, endpoints, flow logs",
    )
    data = DataStack(
        app,
        config.stack_name("data"),
        config=config,
        vpc=network.vpc,
        description=f"{config.app} {config.stage}: PostgreSQL, Redis, secrets, alarms (stateful)",
    )
    # The app's own buckets, queues, topics and SES identities: only when the stage declares some; every target
    # stack deploys after it (its services' settings and grants name them).
    resources = (
        ResourcesStack(
            app,
            config.stack_name("resources"),
            config=config,
            alarm_topic=data.alarm_topic,
            description=f"{config.app} {config.stage}: the app's buckets, queues, topics and email identities",
        )
        if config.resources
        else None
    )
    targets = {
        name: stack_class(
            app,
            config.stack_name(name),
            config=config,
            vpc=network.vpc,
            data=data,
            description=f"{config.app} {config.stage}: {what}",
        )
        for name, (stack_class, what) in TARGET_STACKS.items()
        if name in config.targets
    }
    for target in targets.values():
        if resources is not None:
            target.add_stack_dependency(resources, "its services use the app resources by name")
    stacks = Stacks(network=network, data=data, resources=resources, **targets)  # type: ignore[arg-type]
    for stack in stacks.all():
        cdk.Tags.of(stack).add("app", config.app)
        cdk.Tags.of(stack).add("stage", config.stage)
    return stacks
