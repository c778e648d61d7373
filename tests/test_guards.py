"""Every guard refuses its bad case with ``[<id>]``; the real stages pass all of them (see the stage fixtures)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import (
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_elasticache as elasticache,
    aws_lambda as lambda_,
    aws_rds as rds,
    aws_secretsmanager as secretsmanager,
)

from constructs.guards import RULES
from constructs.secure_parameter import SecureParameter
from stacks.synth import SynthRefused, synthesize
from tests.conftest import Synthesized

CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "MISCONFIGURATIONS.md"
# Synth-layer ids enforced by config validation alone, with the reason no guard over the templates can hold them.
CONFIG_ONLY = {
    "config-input-unsafe": "a property of the stage file itself, refused by config/loader.py before any construct",
    "preview-in-prod-account": "compares a preview with another stage file (prod's account): config/previews.py, "
    "checked by config.load_config before any construct",
}


def catalogue_ids(layer: str) -> set[str]:
    """Ids of the catalogue rows (above "Planned rows") whose layer column names ``layer``."""
    built = CATALOGUE.read_text().split("## Planned rows")[0]
    rows = (line.split("|") for line in built.splitlines() if re.match(r"^\| [a-z0-9-]+ \|", line))
    return {cells[1].strip() for cells in rows if layer in cells[-2]}


SYNTH_IDS = catalogue_ids("synth")


def refusals(app: cdk.App) -> list[str]:
    with pytest.raises(SynthRefused) as refused:
        synthesize(app)
    return refused.value.lines


def assert_refused(app: cdk.App, rule: str, *fragments: str) -> str:
    lines = [line for line in refusals(app) if line.startswith(f"[{rule}] ")]
    assert lines, f"expected a [{rule}] refusal"
    for fragment in fragments:
        assert any(fragment in line for line in lines), f"{fragment!r} not in {lines}"
    # The contract: "[id] <path>: <value> — <fix>".
    assert re.match(rf"^\[{rule}\] \S.*: .+ — .+", lines[0]), lines[0]
    return lines[0]


def _db(stack: cdk.Stack, **overrides: object) -> rds.CfnDBInstance:
    props: dict[str, object] = {
        "db_instance_class": "db.t4g.micro",
        "engine": "postgres",
        "allocated_storage": "20",
        "publicly_accessible": False,
        "storage_encrypted": True,
        "max_allocated_storage": 100,
        "backup_retention_period": 7,
    }
    props.update(overrides)
    return rds.CfnDBInstance(stack, "RawDb", **props)  # type: ignore[arg-type]


def _lambda(stack: cdk.Stack, environment: dict[str, str]) -> lambda_.Function:
    return lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
        environment=environment,
    )


def test_every_synth_id_has_exactly_one_rule_and_a_refusal_test() -> None:
    assert len(SYNTH_IDS) > 40, f"the catalogue table was not read: {sorted(SYNTH_IDS)}"
    assert sorted(rule.id for rule in RULES) == sorted(SYNTH_IDS - set(CONFIG_ONLY))
    tests = "".join(path.read_text() for path in Path(__file__).parent.rglob("test_*.py"))
    untested = [i for i in SYNTH_IDS if f'"{i}"' not in tests and f"[{i}]" not in tests]
    assert not untested, f"no test asserts a refusal for {untested}"


def test_real_stages_pass_every_guard_and_nag(dev: Synthesized, prod: Synthesized) -> None:
    # The session fixtures synthesized with guards + cdk-nag; getting here means zero refusals.
    assert {s.stack_name for s in dev.stacks.all()} == {"shop-dev-network", "shop-dev-data", "shop-dev-ecs"}
    assert prod.assembly.get_stack_by_name("shop-prod-data").template


def test_fails_on_raw_public_db_instance(guarded_stack) -> None:
    app, stack = guarded_stack()
    _db(stack, publicly_accessible=True)
    assert_refused(app, "rds-public-access", "Test/RawDb", "PubliclyAccessible=True")


def test_fails_on_world_ingress_to_db_security_group(guarded_stack) -> None:
    app, stack = guarded_stack()
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"], nat_gateways=1)
    sg = ec2.SecurityGroup(stack, "DbSg", vpc=vpc)
    sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(5432))
    _db(stack, vpc_security_groups=[sg.security_group_id])
    assert_refused(app, "rds-public-access", "0.0.0.0/0")


def test_fails_on_stack_in_another_region(guarded_stack) -> None:
    app, _ = guarded_stack()
    cdk.Stack(app, "Elsewhere", env=cdk.Environment(account="000000000000", region="us-east-1"))
    assert_refused(app, "region-mismatch", "Elsewhere", "region=us-east-1")


def test_fails_on_environment_agnostic_stack(guarded_stack) -> None:
    app, _ = guarded_stack()
    cdk.Stack(app, "Anywhere")
    assert_refused(app, "region-mismatch", "environment-agnostic")


def test_fails_on_arn_from_another_region(guarded_stack) -> None:
    app, stack = guarded_stack()
    _lambda(stack, {"TOPIC": "arn:aws:sns:us-east-1:000000000000:alerts"})
    assert_refused(app, "region-mismatch", "arn:aws:sns:us-east-1:")


def test_fails_on_private_subnets_without_egress(guarded_stack) -> None:
    app, stack = guarded_stack()
    ec2.Vpc(
        stack,
        "Vpc",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="p", subnet_type=ec2.SubnetType.PUBLIC),
            ec2.SubnetConfiguration(name="i", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ],
    )
    assert_refused(app, "private-egress-for-pulls", "ecr.api", "ecr.dkr", "sts")


def test_fails_on_ssh_ingress(guarded_stack) -> None:
    app, stack = guarded_stack()
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"])
    ec2.SecurityGroup(stack, "Bastion", vpc=vpc).add_ingress_rule(ec2.Peer.ipv4("203.0.113.0/24"), ec2.Port.tcp(22))
    assert_refused(app, "ssh-bastion", "port 22 from 203.0.113.0/24")


def test_fails_on_short_generated_secret(guarded_stack) -> None:
    app, stack = guarded_stack()
    SecureParameter(stack, "Weak", name="/shop/dev/SECRET_KEY", kind="generated", length=16)
    assert_refused(app, "secret-key-weak", "Length=16")


def test_fails_on_short_secrets_manager_password(guarded_stack) -> None:
    app, stack = guarded_stack()
    secretsmanager.Secret(
        stack, "Short", generate_secret_string=secretsmanager.SecretStringGenerator(password_length=12)
    )
    assert_refused(app, "secret-key-weak", "passwordLength=12")


def test_fails_on_hand_built_database_url(guarded_stack) -> None:
    app, stack = guarded_stack()
    _lambda(stack, {"DB": "postgres://app@db.internal:5432/app"})
    assert_refused(app, "database-url-format", "hand-built postgres URL")


def test_fails_on_unsupported_url_scheme(guarded_stack) -> None:
    app, stack = guarded_stack()
    secret = secretsmanager.Secret(stack, "Db")
    SecureParameter(
        stack,
        "Url",
        name="/shop/dev/DATABASE_URL",
        kind="database_url",
        source_secret_arn=secret.secret_arn,
        fields={"Scheme": "postgres"},
    )
    assert_refused(app, "database-url-format", "Scheme=postgres")


def test_fails_on_postgres_without_force_ssl(guarded_stack) -> None:
    app, stack = guarded_stack()
    group = rds.CfnDBParameterGroup(
        stack, "Params", family="postgres17", description="x", parameters={"log_min_duration_statement": "1000"}
    )
    _db(stack, db_parameter_group_name=group.ref, enable_cloudwatch_logs_exports=["postgresql"])
    assert_refused(app, "asyncpg-ssl-param", "rds.force_ssl=")


def test_fails_on_redis_without_tls_and_auth(guarded_stack) -> None:
    app, stack = guarded_stack()
    elasticache.CfnReplicationGroup(
        stack,
        "Redis",
        replication_group_description="x",
        engine="redis",
        cache_node_type="cache.t4g.micro",
        num_cache_clusters=1,
        transit_encryption_enabled=False,
        at_rest_encryption_enabled=True,
    )
    assert_refused(app, "redis-auth-tls", "transitEncryptionEnabled=False", "authToken=not set")


def test_fails_without_backups_and_autoscaling(guarded_stack) -> None:
    app, stack = guarded_stack()
    _db(stack, backup_retention_period=1, max_allocated_storage=None)
    assert_refused(app, "rds-storage-backup", "BackupRetentionPeriod=1", "MaxAllocatedStorage=None")


def test_prod_fails_without_deletion_protection(guarded_stack) -> None:
    app, stack = guarded_stack("prod")
    _db(stack, deletion_protection=False)
    assert_refused(app, "rds-storage-backup", "DeletionProtection=False", "DeletionPolicy=")


def test_fails_without_slow_query_logging(guarded_stack) -> None:
    app, stack = guarded_stack()
    group = rds.CfnDBParameterGroup(
        stack, "Params", family="postgres17", description="x", parameters={"rds.force_ssl": "1"}
    )
    _db(stack, db_parameter_group_name=group.ref)
    assert_refused(app, "slow-query-logging", "EnableCloudwatchLogsExports=[]", "log_min_duration_statement=None")


def test_fails_on_alarm_without_dimensions_or_action(guarded_stack) -> None:
    app, stack = guarded_stack()
    metric = cw.Metric(namespace="AWS/ApplicationELB", metric_name="HTTPCode_Target_5XX_Count")
    metric.create_alarm(stack, "Bare", threshold=1, evaluation_periods=1)  # the guide's put-metric-alarm
    assert_refused(app, "alarm-5xx-misconfigured", "without dimensions", "no alarm action")


def test_fails_on_database_without_required_alarms(guarded_stack) -> None:
    app, stack = guarded_stack()
    _db(stack)
    assert_refused(app, "alarm-5xx-misconfigured", "no alarm on CPUUtilization")


def test_fails_on_secret_in_plain_environment(guarded_stack) -> None:
    app, stack = guarded_stack()
    _lambda(stack, {"JWT_SECRET_KEY": "not-so-secret"})
    assert_refused(app, "plaintext-secrets", "JWT_SECRET_KEY=<plain value>")


def test_fails_on_private_key_anywhere_in_a_template(guarded_stack) -> None:
    app, stack = guarded_stack()
    cdk.CfnResource(
        stack,
        "Doc",
        type="AWS::SSM::Document",
        properties={"Content": {"k": "-----BEGIN RSA PRIVATE KEY-----\nMII..."}},
    )
    assert_refused(app, "plaintext-secrets", "a private key")


def test_prod_fails_on_cors_wildcard(guarded_stack) -> None:
    app, stack = guarded_stack("prod")
    _lambda(stack, {"ALLOWED_ORIGINS": "*"})
    assert_refused(app, "cors-wildcard", "ALLOWED_ORIGINS='*'")


def test_dev_allows_cors_wildcard(guarded_stack) -> None:
    app, stack = guarded_stack("dev")
    _lambda(stack, {"ALLOWED_ORIGINS": "*"})
    synthesize(app)


def test_fails_on_reference_to_parameter_nobody_creates(guarded_stack) -> None:
    app, stack = guarded_stack()
    SecureParameter(stack, "Key", name="/shop/dev/SECRET_KEY", kind="generated")
    _lambda(stack, {"SETTINGS_ARN": f"arn:aws:ssm:eu-west-1:{stack.account}:parameter/shop/dev/STRIPE_SECRET"})
    assert_refused(app, "ssm-securestring-missing", "/shop/dev/STRIPE_SECRET")


def _manifest(stack: cdk.Stack, deployment_spec: dict[str, object]) -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "app"},
        "spec": deployment_spec,
    }
    cdk.CfnResource(
        stack, "Manifest", type="Custom::AWSCDK-EKS-KubernetesResource", properties={"Manifest": json.dumps([body])}
    )


def _pod(liveness_path: str) -> dict[str, object]:
    probe = {"httpGet": {"path": liveness_path, "port": 8000}}
    return {"template": {"spec": {"containers": [{"name": "app", "image": "x:1", "livenessProbe": probe}]}}}


def test_fails_on_k8s_liveness_on_the_readiness_path(guarded_stack) -> None:
    app, stack = guarded_stack()
    _manifest(stack, {**_pod("/ready"), "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}})
    assert_refused(app, "deep-health-check", "Deployment/web", "livenessProbe on /ready")


def test_fails_on_k8s_rollout_that_drops_capacity(guarded_stack) -> None:
    app, stack = guarded_stack()
    _manifest(stack, {**_pod("/health"), "strategy": {"type": "Recreate"}})
    assert_refused(app, "manual-rollback", "Deployment/web", "Recreate")


def test_fails_on_k8s_deployment_without_a_progress_deadline(guarded_stack) -> None:
    app, stack = guarded_stack()
    _manifest(stack, {**_pod("/health"), "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}})
    assert_refused(app, "manual-rollback", "Deployment/web", "progressDeadlineSeconds not set")


def test_icmp_is_not_an_ssh_opening(guarded_stack) -> None:
    app, stack = guarded_stack()
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"])
    ec2.SecurityGroup(stack, "Ping", vpc=vpc).add_ingress_rule(ec2.Peer.ipv4("10.0.0.0/16"), ec2.Port.all_icmp())
    synthesize(app)  # nothing to refuse: an ICMP rule opens no port
