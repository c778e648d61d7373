"""Mistakes an outside attack suite still synthesized (issue 13, item 3): each is now refused by the rule that owns
its catalogue id. Every test builds the bad case with the guards on; cdk-nag is off (``build`` / ``guarded_stack``)
because these cases break a resource on purpose and nag's own findings on it would only add noise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import (
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_elasticbeanstalk as elasticbeanstalk,
    aws_rds as rds,
)

from config import ConfigError, load_config
from constructs.beanstalk_environment import PROCESS, Option
from constructs.guards import register_guards
from constructs.secure_parameter import SecureParameter
from stacks import build_stacks
from stacks.synth import synthesize
from tests.conftest import ROOT, new_app, stage_config
from tests.test_ecs import build, extra_task
from tests.test_guards import _db, _lambda, assert_refused, refusals

DEV = yaml.safe_load((ROOT / "config" / "stages" / "dev.yaml").read_text())


def config_refusal(tmp_path: Path, settings: dict[str, Any]) -> list[str]:
    """The lines ``load_config`` refuses the dev stage file with, ``settings`` added."""
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump({**DEV, "settings": {**DEV["settings"], **settings}}))
    with pytest.raises(ConfigError) as error:
        load_config(path=path)
    return error.value.problems


# -- 1. database and cache outside the isolated subnets (rds-public-access) ------------------------------------


def test_database_and_cache_in_non_isolated_subnets_are_refused() -> None:
    app, stacks, _ = build()
    vpc = stacks.network.vpc
    # Still PubliclyAccessible false, but reachable from (and to) the internet through NAT / the internet gateway.
    db_subnets = stacks.data.database.instance.node.find_child("SubnetGroup").node.default_child
    assert isinstance(db_subnets, rds.CfnDBSubnetGroup)
    db_subnets.subnet_ids = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
    cache_subnets = stacks.data.cache.node.find_child("Subnets")
    cache_subnets.subnet_ids = vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC).subnet_ids  # type: ignore[attr-defined]
    lines = refusals(app)
    hits = [line.removeprefix("[rds-public-access] ") for line in lines if line.startswith("[rds-public-access] ")]
    db = next(line for line in hits if line.startswith("shop-dev-data/Database/Default/SubnetGroup/Default: "))
    assert "subnets outside the isolated tier: shop-dev-network/Network/Default/appSubnet1 (NAT)" in db, db
    assert "PRIVATE_ISOLATED" in db.split(" — ")[1], db
    cache = next(line for line in hits if line.startswith("shop-dev-data/Cache/Subnets: "))
    assert "publicSubnet1 (internet gateway)" in cache, cache


def test_database_without_a_subnet_group_of_the_app_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _db(stack)  # no DBSubnetGroupName: RDS places it in the default VPC, whose subnets are public
    assert_refused(app, "rds-public-access", "Test/RawDb: dbSubnetGroupName not set (the default VPC's public subnets)")


# -- 2. secret-looking names the pattern missed (plaintext-secrets) --------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SMTP_PASS", "hunter2hunter2"),
        ("DB_PWD", "x" * 24),
        ("MYSQL_ROOTPWD", "hunter2hunter2"),
        ("GPG_PASSPHRASE", "correct horse battery staple"),
        ("SENDGRID_APIKEY", "SG.abcdefghijklmnop"),
        ("GCP_CREDENTIALS", '{"type": "service_account"}'),
        ("SSH_PRIVATE_KEY", "AAAAB3NzaC1yc2EAAAADAQABAAABAQ"),
    ],
)
def test_secret_looking_setting_is_refused_without_printing_it(tmp_path: Path, name: str, value: str) -> None:
    lines = config_refusal(tmp_path, {name: value})
    text = "\n".join(lines)
    assert f"[plaintext-secrets] settings.{name}: <hidden: {len(value)} chars" in text, text
    assert value not in text


def test_names_that_only_contain_pass_stay_plain_settings() -> None:
    settings = {**DEV["settings"], "CACHE_BYPASS": "true", "COMPASS_URL": "https://compass.example.com"}
    assert stage_config("dev", settings=settings).plain_settings["CACHE_BYPASS"] == "true"


def test_secret_looking_plain_variable_is_refused_in_any_case(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _lambda(stack, {"smtp_pass": "hunter2hunter2", "DB_PWD": "hunter2hunter2", "GPG_PASSPHRASE": "hunter2hunter2"})
    lines = [line for line in refusals(app) if line.startswith("[plaintext-secrets] ")]
    for name in ("smtp_pass", "DB_PWD", "GPG_PASSPHRASE"):
        assert any(f"{name}=<plain value> — " in line for line in lines), lines
    assert not any("hunter2" in line for line in lines), lines


# -- 3. Elastic Beanstalk health check off the health contract (alb-health-check-path) -------------------------


def test_eb_health_check_path_drifting_from_the_contract_is_refused() -> None:
    app = new_app()
    config = stage_config("staging")
    stacks = build_stacks(app, config)
    register_guards(app, config, nag=False)
    assert stacks.eb is not None
    beanstalk = stacks.eb.beanstalk
    beanstalk.options[:] = [
        Option(o.namespace, o.name, "/healthz") if (o.namespace, o.name) == (PROCESS, "HealthCheckPath") else o
        for o in beanstalk.options
    ]
    beanstalk.environment.option_settings = [o.to_cfn() for o in beanstalk.options]
    line = assert_refused(app, "alb-health-check-path", f"{PROCESS}/HealthCheckPath=/healthz")
    assert line == (
        f"[alb-health-check-path] shop-staging-eb/Beanstalk/Environment: {PROCESS}/HealthCheckPath=/healthz"
        " — use the health contract's value '/health'"
    )


def test_load_balanced_eb_environment_without_a_health_check_path_is_refused(
    guarded_stack: Callable[..., Any],
) -> None:
    app, stack = guarded_stack()
    application = elasticbeanstalk.CfnApplication(stack, "App")
    elasticbeanstalk.CfnEnvironment(
        stack,
        "RawEnv",
        application_name=application.ref,
        solution_stack_name="64bit Amazon Linux 2023 v4.7.5 running Docker",
        option_settings=[
            elasticbeanstalk.CfnEnvironment.OptionSettingProperty(
                namespace="aws:elasticbeanstalk:environment", option_name="EnvironmentType", value="LoadBalanced"
            )
        ],
    )
    assert_refused(app, "alb-health-check-path", f"Test/RawEnv: {PROCESS}/HealthCheckPath=None")


# -- 4. DATABASE_URL with a hand-typed host (database-url-format) ----------------------------------------------


def test_database_url_parameter_with_a_hand_typed_host_is_refused() -> None:
    app, stacks, config = build()
    database = stacks.data.database
    stacks.data.secrets.parameters["DATABASE_URL"].resource.node.default_child.add_property_override(  # type: ignore[union-attr]
        "Host", "db.example.internal"
    )
    SecureParameter(
        stacks.data,
        "ReadOnlyUrl",
        name=config.parameter_name("DATABASE_URL_RO"),
        kind="database_url",
        source_secret_arn=database.secret_arn,
        fields={"Scheme": "postgresql+asyncpg", "Host": "db.example.internal", "Port": "5432", "Database": "app"},
    )
    lines = [line for line in refusals(app) if line.startswith("[database-url-format] ")]
    expected = "Host=db.example.internal, not the stage database's endpoint — compose it from the database"
    assert any(
        line.startswith("[database-url-format] shop-dev-data/Settings/DATABASE_URL/Resource/Default: ")
        and expected in line
        for line in lines
    ), lines
    assert any(line.startswith("[database-url-format] shop-dev-data/ReadOnlyUrl/") and "Port=5432" in line
               for line in lines), lines  # fmt: skip
    # Composed from the master user's secret (database.secret_arn): the app never signs in as the master user.
    assert any(line.startswith("[database-url-format] shop-dev-data/ReadOnlyUrl/") and "never the master user's"
               in line for line in lines), lines  # fmt: skip
    assert not any("Settings/DATABASE_URL" in line and "master" in line for line in lines), lines


def test_database_url_in_plain_environment_or_setting_is_refused(tmp_path: Path) -> None:
    url = "postgresql://app@db.example.internal:5432/app"
    app, stacks, _ = build()
    extra_task(stacks, environment={"DATABASE_URL": url})
    line = assert_refused(app, "database-url-format", "shop-dev-ecs/Extra/Resource: a hand-built postgres URL")
    assert url not in line
    # In the stage file a plain DATABASE_URL is refused by the same id (config/schema.py), its value hidden.
    text = "\n".join(config_refusal(tmp_path, {"DATABASE_URL": url}))
    assert "[database-url-format] settings.DATABASE_URL: <hidden: " in text and url not in text, text


# -- 5. ECS exec switched on by a raw override (no-exec-on-fargate) --------------------------------------------


@pytest.mark.parametrize(
    "switch_on",
    [
        lambda cfn: cfn.add_property_override("EnableExecuteCommand", True),
        lambda cfn: cfn.add_override("Properties.EnableExecuteCommand", "true"),
    ],
    ids=["add_property_override", "add_override"],
)
def test_exec_switched_on_by_a_raw_override_without_permissions_is_refused(
    switch_on: Callable[[ecs.CfnService], None],
) -> None:
    app, stacks, config = build()
    assert stacks.ecs is not None and config.ecs.exec_enabled is False
    service = stacks.ecs.service.service.node.default_child
    assert isinstance(service, ecs.CfnService)
    switch_on(service)
    assert_refused(
        app,
        "no-exec-on-fargate",
        "shop-dev-ecs/Service/Default/Service: EnableExecuteCommand=True, task role cannot open an exec channel "
        "(no ssmmessages:CreateControlChannel, ssmmessages:CreateDataChannel",
        "EnableExecuteCommand=True — follow the stage file: ecs.exec_enabled is false",
    )


# -- 6. compute group without egress to the database / cache (sg-compute-to-rds, redis-sg) ---------------------


def test_compute_group_without_egress_to_database_and_cache_is_refused() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    group = stacks.ecs.service.security_group
    removed = [
        child.node.id
        for child in group.node.children
        if isinstance(child, ec2.CfnSecurityGroupEgress)
        and child.description in ("ECS web to PostgreSQL", "ECS web to Redis")
    ]
    assert len(removed) == 2 and all(group.node.try_remove_child(child) for child in removed)
    lines = refusals(app)
    # Only the egress went: the database and the cache still admit the group.
    assert not any("not admitted" in line for line in lines), lines
    for rule, what, port in (("sg-compute-to-rds", "the database", 5432), ("redis-sg", "the cache", 6379)):
        expected = f"[{rule}] shop-dev-ecs/Declaration: ecs web compute group has no egress to {what} on {port} — "
        assert any(line.startswith(expected) for line in lines), lines


def test_egress_to_a_cidr_on_the_port_still_reaches_the_database() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    group = stacks.ecs.service.security_group
    for child in list(group.node.children):
        if isinstance(child, ec2.CfnSecurityGroupEgress) and child.description == "ECS web to PostgreSQL":
            group.node.try_remove_child(child.node.id)
    group.add_egress_rule(ec2.Peer.ipv4(stacks.network.vpc.vpc_cidr_block), ec2.Port.tcp(5432), "VPC on 5432")
    synthesize(app)  # the VPC CIDR on 5432 holds the database: accepted


def test_nested_raw_overrides_and_deletions_are_seen_by_every_rule() -> None:
    """The guard framework applies raw overrides the way CDK renders them, so no escape hatch slips past a rule."""
    app, stacks, _ = build()
    assert stacks.ecs is not None
    service = stacks.ecs.service.service.node.default_child
    assert isinstance(service, ecs.CfnService)
    service.add_property_override("DeploymentConfiguration.DeploymentCircuitBreaker.Rollback", False)
    service.add_property_override("DeploymentConfiguration.MinimumHealthyPercent", 50)
    service.add_property_deletion_override("HealthCheckGracePeriodSeconds")
    assert_refused(app, "manual-rollback", "'rollback': False", "minimumHealthyPercent=50")
    assert_refused(app, "alb-health-check-path", "healthCheckGracePeriodSeconds=None")
