"""ECS Fargate target: what it provisions (session synth), and every guard it owns refusing its bad case."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import (
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_elasticloadbalancingv2 as elbv2,
    aws_iam as iam,
)

from config import AppConfig
from constructs.compute_target import ComputeTarget
from constructs.guards import register_guards
from stacks import Stacks, build_stacks
from tests.conftest import Synthesized, new_app, stage_config
from tests.test_guards import assert_refused


def _resources(s: Synthesized, cfn_type: str) -> dict[str, Any]:
    assert s.stacks.ecs is not None
    return {k: v for k, v in s.template(s.stacks.ecs)["Resources"].items() if v["Type"] == cfn_type}


def build(stage: str = "dev", *, nag: bool = False, **updates: Any) -> tuple[cdk.App, Stacks, AppConfig]:
    """The whole stage with guards, not yet synthesized, so a test can break one thing. cdk-nag is off by default:
    these tests break a resource on purpose and assert the guard's line; nag's own findings on the broken
    resource would only add noise. Tests of accepted configurations pass ``nag=True``."""
    config = stage_config(stage, **updates)
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config, nag=nag)
    assert stacks.ecs is not None
    return app, stacks, config


def extra_task(stacks: Stacks, **container: Any) -> ecs.FargateTaskDefinition:
    assert stacks.ecs is not None
    task = ecs.FargateTaskDefinition(stacks.ecs, "Extra", cpu=256, memory_limit_mib=512)
    options: dict[str, Any] = {
        "image": ecs.ContainerImage.from_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api:1.0.0"),
        "logging": ecs.LogDrivers.aws_logs(stream_prefix="x"),
    }
    options.update(container)
    task.add_container("extra", **options)
    return task


def undeclared_target(stacks: Stacks, role: iam.IRole | None = None) -> ComputeTarget:
    """A compute target nobody wired: no DB/cache/ALB rules, no grants."""
    assert stacks.ecs is not None
    vpc = stacks.network.vpc
    group = ec2.SecurityGroup(stacks.ecs, "RogueSg", vpc=vpc)
    role = role or iam.Role(stacks.ecs, "RogueRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    return ComputeTarget(
        stacks.ecs, "Rogue", kind="ecs", service=stage_config("dev").web, security_group=group, secret_reader=role,
        image_puller=role, max_units=1, log_groups=[stacks.ecs.service.log_group], compute=[],
        load_balancer_group=stacks.ecs.load_balancer.security_group,
    )  # fmt: skip


# -- what the stack provisions ------------------------------------------------------------------------------------


def test_service_is_private_safe_to_deploy_and_scaled(dev: Synthesized) -> None:
    (service,) = _resources(dev, "AWS::ECS::Service").values()
    props = service["Properties"]
    assert props["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert props["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100
    assert props["HealthCheckGracePeriodSeconds"] == 75  # boot 60 + one interval
    assert props["EnableExecuteCommand"] is False
    policies = [p["Properties"] for p in _resources(dev, "AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    metrics = {
        json.dumps(p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]) for p in policies
    }
    assert any("ECSServiceAverageCPUUtilization" in m for m in metrics)
    assert any("ALBRequestCountPerTarget" in m for m in metrics)


def test_container_gets_plain_settings_and_secrets_from_parameter_store(dev: Synthesized) -> None:
    tasks = [t["Properties"] for t in _resources(dev, "AWS::ECS::TaskDefinition").values()]
    assert len(tasks) == 2  # web service + the migration step
    for task in tasks:
        (container,) = task["ContainerDefinitions"]
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        web = "Command" not in container
        assert env["LOG_LEVEL"] == "debug" and env["APP_SERVICE"] == ("web" if web else "migrate")
        assert (env.get("KEEP_ALIVE_SECONDS"), env.get("PORT")) == (("75", "8000") if web else (None, None))
        secrets = {s["Name"]: json.dumps(s["ValueFrom"]) for s in container["Secrets"]}
        assert set(secrets) == {"SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
        assert all(f"parameter/shop/dev/{name}" in ref for name, ref in secrets.items())
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"
        assert container["Image"]["Fn::Join"][1][-1].endswith("/shop-api:1.0.0")
    migration = next(t for t in tasks if "Command" in t["ContainerDefinitions"][0])
    assert migration["ContainerDefinitions"][0]["Command"] == ["alembic", "upgrade", "head"]


def test_target_group_follows_the_liveness_contract(dev: Synthesized) -> None:
    (group,) = _resources(dev, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    props = group["Properties"]
    assert props["TargetType"] == "ip" and props["HealthCheckPath"] == "/health"
    assert props["Matcher"] == {"HttpCode": "200"} and props["HealthCheckIntervalSeconds"] == 15
    assert props["HealthyThresholdCount"] == 2 and props["UnhealthyThresholdCount"] == 3


def test_alb_idle_timeout_below_keepalive_and_access_logs_on(dev: Synthesized) -> None:
    (alb,) = _resources(dev, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["idle_timeout.timeout_seconds"] == "60" and attributes["access_logs.s3.enabled"] == "true"


def test_prod_serves_https_and_redirects_http(prod: Synthesized) -> None:
    listeners = [r["Properties"] for r in _resources(prod, "AWS::ElasticLoadBalancingV2::Listener").values()]
    https = next(p for p in listeners if p["Port"] == 443)
    assert https["Protocol"] == "HTTPS" and https["Certificates"][0]["CertificateArn"].startswith(
        "arn:aws:acm:eu-west-1"
    )
    http = next(p for p in listeners if p["Port"] == 80)
    assert http["DefaultActions"][0]["Type"] == "redirect"


def test_db_and_cache_rules_live_in_the_ecs_stack(dev: Synthesized) -> None:
    ingress = _resources(dev, "AWS::EC2::SecurityGroupIngress")
    targets = {json.dumps(r["Properties"]["GroupId"]) for r in ingress.values()}
    assert any("DatabaseSecurityGroup" in t for t in targets) and any("CacheSecurityGroup" in t for t in targets)
    data = dev.template(dev.stacks.data)["Resources"]
    sources = [r["Properties"]["SourceSecurityGroupId"] for r in data.values() if r["Type"].endswith("Ingress")]
    assert ["DatabaseUsersSecurityGroup" in json.dumps(s) for s in sources] == [True]  # rotation and bootstrap


def test_alarms_cover_alb_and_service(dev: Synthesized) -> None:
    names = {a["Properties"]["MetricName"] for a in _resources(dev, "AWS::CloudWatch::Alarm").values()}
    assert {"HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count", "UnHealthyHostCount", "TargetResponseTime",
            "RunningTaskCount", "CPUUtilization", "MemoryUtilization"} <= names  # fmt: skip


def test_execution_role_reads_exactly_the_stage_parameters(dev: Synthesized) -> None:
    policies = _resources(dev, "AWS::IAM::Policy")
    reads = [
        s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "ssm:GetParameters" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]  # fmt: skip
    assert reads
    for statement in reads:
        assert "/*" not in json.dumps(statement["Resource"]) and statement["Resource"] != "*"


# -- guards -------------------------------------------------------------------------------------------------------


def test_fails_on_compute_target_not_wired_to_db_cache_or_alb() -> None:
    app, stacks, _ = build()
    undeclared_target(stacks)
    assert_refused(app, "sg-compute-to-rds", "ecs web compute group not admitted to the database")


def test_fails_on_cache_not_admitting_a_target() -> None:
    app, stacks, _ = build()
    undeclared_target(stacks)
    assert_refused(app, "redis-sg", "not admitted to the cache")


def test_fails_on_alb_not_reaching_a_target() -> None:
    app, stacks, _ = build()
    undeclared_target(stacks)
    assert_refused(app, "alb-to-target-sg", "no ALB egress to the ecs web group on 8000")


def test_fails_on_cidr_rule_into_the_database() -> None:
    app, stacks, _ = build()
    stacks.data.database.connections.allow_default_port_from(ec2.Peer.ipv4("10.0.0.0/8"), "office")
    assert_refused(app, "sg-compute-to-rds", "ingress from CIDR 10.0.0.0/8")


def test_fails_on_target_group_off_contract() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    stacks.ecs.load_balancer.target_group.configure_health_check(path="/", healthy_http_codes="200-399")
    assert_refused(app, "alb-health-check-path", "healthCheckPath=/", "matcher=200-399")


def test_fails_on_load_balancer_checking_readiness() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    stacks.ecs.load_balancer.target_group.configure_health_check(path="/ready")
    assert_refused(app, "deep-health-check", "healthCheckPath=/ready")


def test_fails_on_idle_timeout_above_keepalive() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    stacks.ecs.load_balancer.load_balancer.set_attribute("idle_timeout.timeout_seconds", "120")
    assert_refused(app, "alb-keepalive-502", "idle timeout 120s >= app keep-alive 75s")


def test_fails_on_task_missing_settings() -> None:
    app, stacks, _ = build()
    extra_task(stacks, environment={"LOG_LEVEL": "info"})
    assert_refused(app, "missing-env-vars", "SECRET_KEY", "KEEP_ALIVE_SECONDS")


def test_fails_on_invalid_fargate_size() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    task = ecs.FargateTaskDefinition(stacks.ecs, "Huge", cpu=256, memory_limit_mib=4096)
    task.add_container(
        "x", image=ecs.ContainerImage.from_registry("x:1"), logging=ecs.LogDrivers.aws_logs(stream_prefix="x")
    )
    assert_refused(app, "fargate-memory-oom", "cpu=256 memory=4096")


def test_fails_on_latest_image_and_puller_without_rights() -> None:
    app, stacks, _ = build()
    extra_task(stacks, image=ecs.ContainerImage.from_registry("nginx:latest"))
    undeclared_target(stacks)
    assert_refused(app, "ecr-pull-permission", "image nginx:latest", "ecs web image puller lacks ecr:BatchGetImage")


def test_fails_on_container_without_logs() -> None:
    app, stacks, _ = build()
    extra_task(stacks, logging=None)
    assert_refused(app, "logs-missing", "container extra logDriver=None")


def test_fails_on_load_balancer_without_access_logs() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    elbv2.ApplicationLoadBalancer(stacks.ecs, "Quiet", vpc=stacks.network.vpc)
    assert_refused(app, "alb-access-logs", "access logs off")


def test_fails_on_deploys_without_rollback() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    service = stacks.ecs.service.service.node.default_child
    assert isinstance(service, ecs.CfnService)
    service.deployment_configuration = ecs.CfnService.DeploymentConfigurationProperty(
        minimum_healthy_percent=50,
        deployment_circuit_breaker=ecs.CfnService.DeploymentCircuitBreakerProperty(enable=False, rollback=False),
    )
    assert_refused(app, "manual-rollback", "minimumHealthyPercent=50", "circuit breaker")


def test_exec_follows_the_stage_file() -> None:
    app, stacks, _ = build(nag=True, ecs={**stage_config("dev").ecs.model_dump(), "exec_enabled": True})
    assert stacks.ecs is not None
    assert stacks.ecs.service.service.node.default_child.enable_execute_command is True  # type: ignore[union-attr]
    assembly = app.synth()  # on, with its permissions, every guard and cdk-nag: accepted
    template = assembly.get_stack_by_name(stacks.ecs.stack_name).template
    task_role = stacks.ecs.resolve(stacks.ecs.service.task_definition.task_role.role_name)
    actions = {
        action
        for policy in template["Resources"].values()
        if policy["Type"] == "AWS::IAM::Policy" and task_role in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert actions == {
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    }
    app, stacks, _ = build(ecs={**stage_config("dev").ecs.model_dump(), "exec_enabled": True})
    assert stacks.ecs is not None
    stacks.ecs.service.service.node.default_child.enable_execute_command = False  # type: ignore[union-attr]
    assert_refused(app, "no-exec-on-fargate", "EnableExecuteCommand=False")


def test_fails_on_plain_http_listener_next_to_a_domain() -> None:
    certificate = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-4000-8000-000000000000"
    domain = {"name": "api.shop.example.com", "certificate_arn": certificate}
    app, stacks, _ = build(domain=domain)
    assert stacks.ecs is not None
    lb = stacks.ecs.load_balancer
    lb.load_balancer.add_listener("Plain", port=8080, protocol=elbv2.ApplicationProtocol.HTTP, open=False,
                                  default_target_groups=[lb.target_group])  # fmt: skip
    assert_refused(app, "tls-certificate", "HTTP listener with actions ['forward']")


def test_fails_on_reader_without_grants_or_with_wildcard() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    role = iam.Role(stacks.ecs, "Broad", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["ssm:GetParameters"], resources=["*"]))
    undeclared_target(stacks, role)
    assert_refused(app, "secret-read-permission", "ecs web reader may read *")


def test_fails_on_setting_reading_another_settings_secret() -> None:
    app, stacks, _ = build()
    wrong = stacks.data.secrets.parameters["SECRET_KEY"].parameter
    extra_task(stacks, secrets={"JWT_SECRET_KEY": ecs.Secret.from_ssm_parameter(wrong)})
    assert_refused(app, "jwt-secret-inconsistent", "JWT_SECRET_KEY reads")


def test_fails_when_tasks_can_exhaust_database_connections() -> None:
    app, _, _ = build(ecs={**stage_config("dev").ecs.model_dump(), "max_tasks": 50})
    # 50 tasks, 100 during a deploy (max_percent 200), 2 processes x (2 + 2); the migration task 1 x (2 + 2).
    assert_refused(app, "db-connection-exhaustion", "up to 804 connections", "ecs web 100x8", "ecs migrate 1x4")


@pytest.mark.parametrize(("cpu", "memory"), [(256, 4096), (384, 1024), (1024, 1024)])
def test_config_refuses_invalid_fargate_pairs(cpu: int, memory: int) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"\[fargate-memory-oom\]"):
        stage_config("dev", ecs={"cpu": cpu, "memory_mib": memory})


def test_endpoints_without_nat_are_enough_for_private_pulls() -> None:
    network = {**stage_config("dev").network.model_dump(), "nat_gateways": 0, "interface_endpoints": True}
    app, _, _ = build(network=network)
    app.synth()  # every guard passes: ECR, Logs, SSM, Secrets Manager, STS and the S3 gateway are reachable


def test_fails_on_compute_group_admitted_on_every_port() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    stacks.ecs.service.connections.allow_to(stacks.data.cache, ec2.Port.all_tcp(), "too wide")
    assert_refused(app, "redis-sg", "ports 0-65535 open to ecs")


def test_fails_on_load_balancer_without_5xx_alarms() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    for alarm_id in ("Elb5xxAlarm", "Target5xxAlarm"):
        stacks.ecs.load_balancer.node.try_remove_child(alarm_id)
    assert_refused(app, "alarm-5xx-misconfigured", "no alarm on HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count")


def test_fails_on_aws_keys_or_a_name_delivered_twice() -> None:
    app, stacks, _ = build()
    wrong = stacks.data.secrets.parameters["SECRET_KEY"].parameter
    extra_task(
        stacks,
        environment={"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "SECRET_KEY": "x"},
        secrets={"SECRET_KEY": ecs.Secret.from_ssm_parameter(wrong)},
    )
    assert_refused(
        app, "reserved-setting-name", "AWS_ACCESS_KEY_ID=<plain value>", "SECRET_KEY delivered 2 times (plain + secret)"
    )


def test_a_release_that_raises_the_5xx_or_latency_alarm_rolls_itself_back(dev: Synthesized) -> None:
    """Health checks alone let a release through that doubles the 5xx rate: the web service's deployment is gated
    by the target group's 5xx and p99-latency alarms (ECS deployment alarms, rollback on alarm)."""
    (service,) = _resources(dev, "AWS::ECS::Service").values()
    gate = service["Properties"]["DeploymentConfiguration"]["Alarms"]
    assert gate["Enable"] is True and gate["Rollback"] is True
    alarms = _resources(dev, "AWS::CloudWatch::Alarm")
    gated = {alarms[ref["Ref"]]["Properties"]["MetricName"] for ref in gate["AlarmNames"]}
    assert gated == {"HTTPCode_Target_5XX_Count", "TargetResponseTime"}
