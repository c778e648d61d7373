"""build_stacks(app, config): every stack of one stage, with typed handles for wiring and tests."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from config.schema import AppConfig
from stacks.data import DataStack
from stacks.eb import EbStack
from stacks.ecs import EcsStack
from stacks.eks import EksStack
from stacks.network import NetworkStack


@dataclass(frozen=True)
class Stacks:
    network: NetworkStack
    data: DataStack
    ecs: EcsStack | None = None
    eb: EbStack | None = None
    eks: EksStack | None = None

    def all(self) -> list[cdk.Stack]:
        return [s for s in (self.network, self.data, self.ecs, self.eb, self.eks) if s is not None]


def build_stacks(app: cdk.App, config: AppConfig) -> Stacks:
    """One environment (account + region from the stage file) for every stack of the stage."""
    env = cdk.Environment(account=config.account, region=config.region)
    network = NetworkStack(
        app,
        config.stack_name("network"),
        config=config,
        env=env,
        description=f"{config.app} {config.stage}: VPC, endpoints, flow logs",
    )
    data = DataStack(
        app,
        config.stack_name("data"),
        config=config,
        vpc=network.vpc,
        env=env,
        description=f"{config.app} {config.stage}: PostgreSQL, Redis, secrets, alarms (stateful)",
    )
    ecs = None
    if "ecs" in config.targets:
        ecs = EcsStack(
            app,
            config.stack_name("ecs"),
            config=config,
            vpc=network.vpc,
            data=data,
            env=env,
            description=f"{config.app} {config.stage}: ECS Fargate service behind an ALB",
        )
    eb = None
    if "eb" in config.targets:
        eb = EbStack(
            app,
            config.stack_name("eb"),
            config=config,
            vpc=network.vpc,
            data=data,
            env=env,
            description=f"{config.app} {config.stage}: Elastic Beanstalk (Docker on AL2023) behind an ALB",
        )
    eks = None
    if "eks" in config.targets:
        eks = EksStack(
            app,
            config.stack_name("eks"),
            config=config,
            vpc=network.vpc,
            data=data,
            env=env,
            description=f"{config.app} {config.stage}: EKS Fargate cluster behind an ALB",
        )
    stacks = Stacks(network=network, data=data, ecs=ecs, eb=eb, eks=eks)
    for stack in stacks.all():
        cdk.Tags.of(stack).add("app", config.app)
        cdk.Tags.of(stack).add("stage", config.stage)
    return stacks
