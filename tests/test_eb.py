"""Elastic Beanstalk target: the staging synth (guards + cdk-nag, shared with the other tests) and its refusals.

Full synths: the session's staging synth for the positive assertions, plus one deliberately broken EB app
(guards only, no cdk-nag) whose refusals several negative tests read. Other negatives use small raw stacks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2, aws_elasticbeanstalk as elasticbeanstalk, aws_iam as iam

from config import ConfigError, load_config
from constructs.beanstalk_environment import ALLOWED_OPTIONS, COMMAND, HEALTH_REPORTING, PLAIN_ENV, PROCESS, Option
from constructs.compute_target import ComputeTarget, runtime_environment
from constructs.guards import RULES, register_guards
from stacks import build_stacks
from stacks.synth import SynthRefused, synthesize
from tests.conftest import ROOT, Synthesized, new_app, stage_config, synthesized
from tests.test_guards import _db, assert_refused, refusals

# The dev stage's web service, for declarations built by hand.
WEB = stage_config("dev").web

OWNED_IDS = {
    "eb-healthcheckurl-invalid",
    "eb-wrong-vpc",
    "eb-instance-profile-service-role",
    "eb-solution-stack-retired",
}
ENV_TYPE = "AWS::ElasticBeanstalk::Environment"
DOCKER = "64bit Amazon Linux 2023 v4.7.5 running Docker"


@pytest.fixture(scope="module")
def staging() -> Synthesized:
    s = synthesized("staging")
    assert s.stacks.eb is not None, "staging enables the eb target"
    return s


@pytest.fixture(scope="module")
def template(staging: Synthesized) -> dict[str, Any]:
    assert staging.stacks.eb is not None
    return staging.template(staging.stacks.eb)


def _only(template: dict[str, Any], cfn_type: str) -> dict[str, Any]:
    found = [r for r in template["Resources"].values() if r["Type"] == cfn_type]
    assert len(found) == 1, f"{len(found)} x {cfn_type}"
    return found[0]


def _logical_id(template: dict[str, Any], cfn_type: str) -> str:
    return next(k for k, r in template["Resources"].items() if r["Type"] == cfn_type)


def _options(template: dict[str, Any]) -> dict[tuple[str, str], Any]:
    settings = _only(template, ENV_TYPE)["Properties"]["OptionSettings"]
    return {(o["Namespace"], o["OptionName"]): o["Value"] for o in settings}


# -- the staging environment ------------------------------------------------------------------------------------


def test_every_owned_id_has_a_rule() -> None:
    assert {rule.id for rule in RULES} >= OWNED_IDS


def test_environment_runs_the_configured_docker_al2023_stack_without_a_fixed_name(
    staging: Synthesized, template: dict[str, Any]
) -> None:
    props = _only(template, ENV_TYPE)["Properties"]
    assert props["SolutionStackName"] == staging.config.eb.solution_stack == DOCKER
    assert "EnvironmentName" not in props  # CloudFormation names it (eb-env-exists)
    assert props["VersionLabel"] == {"Ref": _logical_id(template, "AWS::ElasticBeanstalk::ApplicationVersion")}


def test_every_option_is_on_the_allow_list(template: dict[str, Any]) -> None:
    for namespace, name in _options(template):
        allowed = ALLOWED_OPTIONS[namespace]
        assert allowed is None or name in allowed, f"{namespace}/{name}"


def test_instances_are_private_in_the_stage_vpc_and_the_alb_is_public(template: dict[str, Any]) -> None:
    options = _options(template)
    text = json.dumps(options[("aws:ec2:vpc", "VPCId")])
    assert "shop-staging-network" in text
    assert "appSubnet" in json.dumps(options[("aws:ec2:vpc", "Subnets")])  # private-with-egress ("app") tier
    assert "publicSubnet" in json.dumps(options[("aws:ec2:vpc", "ELBSubnets")])
    assert options[("aws:ec2:vpc", "AssociatePublicIpAddress")] == "false"
    assert options[("aws:elasticbeanstalk:environment", "LoadBalancerType")] == "application"


def test_health_check_is_the_shallow_liveness_path_with_enhanced_health(
    staging: Synthesized, template: dict[str, Any]
) -> None:
    options, health = _options(template), staging.config.health
    assert options[(PROCESS, "HealthCheckPath")] == health.liveness_path == "/health"
    assert options[(PROCESS, "MatcherHTTPCode")] == health.matcher
    assert options[(PROCESS, "HealthCheckInterval")] == str(health.interval_seconds)
    assert options[(PROCESS, "Port")] == "80"  # EB's nginx proxy, which forwards to the container port
    assert options[("aws:elasticbeanstalk:healthreporting:system", "SystemType")] == "enhanced"
    document = json.loads(options[("aws:elasticbeanstalk:healthreporting:system", "ConfigDocument")])
    assert set(document["CloudWatchMetrics"]["Environment"]) == {"EnvironmentHealth", "ApplicationRequests5xx"}


def test_settings_plain_and_secret_go_to_their_namespaces(staging: Synthesized, template: dict[str, Any]) -> None:
    options, config = _options(template), staging.config
    plain = {name: value for (ns, name), value in options.items() if ns == PLAIN_ENV}
    secret = {
        name: value
        for (ns, name), value in options.items()
        if ns == "aws:elasticbeanstalk:application:environmentsecrets"
    }
    revision = staging.stacks.data.secrets.revision(config.web.secrets)
    assert plain == {**runtime_environment(config), "SETTINGS_REVISION": revision}
    assert not set(plain) & set(config.secret_settings)
    assert set(secret) == set(config.secret_settings) == {"SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
    for name, arn in secret.items():
        assert arn == f"arn:aws:ssm:eu-west-1:{config.account}:parameter{config.parameter_name(name)}"


def test_instance_profile_and_service_role_are_created_here(template: dict[str, Any]) -> None:
    options = _options(template)
    profile = _logical_id(template, "AWS::IAM::InstanceProfile")
    assert options[("aws:autoscaling:launchconfiguration", "IamInstanceProfile")] == {"Ref": profile}
    role_id = options[("aws:elasticbeanstalk:environment", "ServiceRole")]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]
    principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
    assert principal == "elasticbeanstalk.amazonaws.com"
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert "AWSElasticBeanstalkEnhancedHealth" in managed
    assert "AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy" in managed


def test_instance_role_reads_exactly_the_stage_parameters_and_pulls_one_repository(
    template: dict[str, Any],
) -> None:
    (policy,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and "InstanceRole" in json.dumps(r["Properties"]["Roles"])
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    ssm = next(s for s in statements if "ssm:GetParameters" in s["Action"])
    assert sorted(r.rsplit("/", 1)[-1] for r in ssm["Resource"]) == sorted(
        ["DATABASE_URL", "JWT_SECRET_KEY", "REDIS_URL", "SECRET_KEY"]
    )
    pull = next(s for s in statements if "ecr:BatchGetImage" in s["Action"])
    assert pull["Resource"] == "arn:aws:ecr:eu-west-1:123456789012:repository/shop-api"
    assert "FullAccess" not in json.dumps(template)


def test_deploys_keep_capacity_and_the_platform_is_updated(template: dict[str, Any]) -> None:
    options = _options(template)
    assert options[("aws:elasticbeanstalk:command", "DeploymentPolicy")] == "RollingWithAdditionalBatch"
    assert options[("aws:elasticbeanstalk:managedactions", "ManagedActionsEnabled")] == "true"
    assert options[("aws:elasticbeanstalk:managedactions:platformupdate", "UpdateLevel")] == "minor"
    assert options[("aws:autoscaling:asg", "MaxSize")] == "3"


def test_deploys_are_gated_on_ok_health_within_the_contract_deadline(
    staging: Synthesized, template: dict[str, Any]
) -> None:
    options = _options(template)
    assert options[(COMMAND, "IgnoreHealthCheck")] == "false"
    assert options[(HEALTH_REPORTING, "HealthCheckSuccessThreshold")] == "Ok"
    assert options[(COMMAND, "Timeout")] == str(staging.config.health.deploy_deadline_seconds) == "600"
    document = json.loads(options[(HEALTH_REPORTING, "ConfigDocument")])
    assert "Rules" not in document  # no rule customisation: 4xx and 5xx both count toward health


def test_logs_are_streamed_with_the_stage_retention(staging: Synthesized, template: dict[str, Any]) -> None:
    options = _options(template)
    for namespace in ("aws:elasticbeanstalk:cloudwatch:logs", "aws:elasticbeanstalk:cloudwatch:logs:health"):
        assert options[(namespace, "RetentionInDays")] == str(staging.config.log_retention_days)
    assert options[("aws:elasticbeanstalk:cloudwatch:logs", "StreamLogs")] == "true"


def test_security_groups_alb_to_proxy_port_and_instances_to_data(template: dict[str, Any]) -> None:
    options = _options(template)
    instance_sg = options[("aws:autoscaling:launchconfiguration", "SecurityGroups")]["Fn::GetAtt"][0]
    alb_sg = options[("aws:elbv2:loadbalancer", "SecurityGroups")]["Fn::GetAtt"][0]
    assert (
        options[("aws:elbv2:loadbalancer", "ManagedSecurityGroup")]
        == options[("aws:elbv2:loadbalancer", "SecurityGroups")]
    )
    ingress = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    from_alb = [i for i in ingress if i.get("SourceSecurityGroupId") == {"Fn::GetAtt": [alb_sg, "GroupId"]}]
    assert [(i["FromPort"], i["GroupId"]) for i in from_alb] == [(80, {"Fn::GetAtt": [instance_sg, "GroupId"]})]
    # DB and cache admit the instance group; the rules live in this stack (consumer-side wiring).
    to_data = [i for i in ingress if i.get("SourceSecurityGroupId") == {"Fn::GetAtt": [instance_sg, "GroupId"]}]
    assert len(to_data) == 2
    assert all("shop-staging-data" in json.dumps(i["GroupId"]) for i in to_data)
    instance = template["Resources"][instance_sg]["Properties"]
    assert [(e["CidrIp"], e["FromPort"]) for e in instance["SecurityGroupEgress"]] == [("0.0.0.0/0", 443)]


def test_source_bundle_is_a_dockerrun_asset_of_the_configured_image(staging: Synthesized) -> None:
    assert staging.stacks.eb is not None
    bundle = Path(staging.stacks.eb.beanstalk.bundle.asset_path)
    if not bundle.is_absolute():
        bundle = Path(staging.assembly.directory) / bundle
    document = json.loads((bundle / "Dockerrun.aws.json").read_text())
    assert document == {
        "AWSEBDockerrunVersion": "1",
        "Image": {"Name": staging.config.image, "Update": "true"},
        "Ports": [{"ContainerPort": staging.config.container_port}],
    }


def test_environment_health_and_5xx_alarms_point_at_the_environment(template: dict[str, Any]) -> None:
    env = _logical_id(template, ENV_TYPE)
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert set(alarms) >= {"shop-staging-eb-EnvironmentHealth", "shop-staging-eb-ApplicationRequests5xx"}
    alarms = {name: alarm for name, alarm in alarms.items() if not name.endswith("-secret-rollout-failed")}
    health = alarms["shop-staging-eb-EnvironmentHealth"]
    assert (health["Threshold"], health["ComparisonOperator"]) == (20, "GreaterThanOrEqualToThreshold")
    for alarm in alarms.values():
        assert alarm["Namespace"] == "AWS/ElasticBeanstalk"
        assert alarm["Dimensions"] == [{"Name": "EnvironmentName", "Value": {"Ref": env}}]
        assert alarm["AlarmActions"]


def test_outputs(template: dict[str, Any]) -> None:
    assert {
        "ComputeSecurityGroupId",
        "ConsumerRoleArn",
        "EnvironmentName",
        "ApplicationName",
        "SolutionStackName",
    } <= set(template["Outputs"])


# -- refusals: config ---------------------------------------------------------------------------------------------


def test_config_refuses_a_retired_or_foreign_solution_stack(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load((ROOT / "config" / "stages" / "staging.yaml").read_text())
    data["eb"] = {"solution_stack": "64bit Amazon Linux 2 v3.6.0 running Docker"}
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_config(path=path)
    line = error.value.problems[0]
    assert line.startswith("[eb-solution-stack-retired] eb.solution_stack: "), line
    assert "running Docker$" in line


# -- refusals: one broken EB app (guards only), read by several tests ------------------------------------------


@pytest.fixture(scope="module")
def broken_eb() -> list[str]:
    """Staging with EB, plus mistakes callers make: HealthCheckURL, a dropped setting, a secret in the plain
    namespace, the deep readiness path, a broad parameter read, and more instances than the DB can serve."""
    app = new_app()
    # EB: 20 instances + 1 deploy batch, ECS: 4 tasks x 200 %, both 2 x (2 + 2); one migration task each: 240 > 180.
    config = stage_config("staging", eb={"max_instances": 20})
    stacks = build_stacks(app, config)
    register_guards(app, config, nag=False)
    assert stacks.eb is not None
    beanstalk = stacks.eb.beanstalk
    kept = [o for o in beanstalk.options if not (o.namespace == PLAIN_ENV and o.name == "LOG_LEVEL")]
    beanstalk.options[:] = [Option(o.namespace, o.name, "/ready") if o.name == "HealthCheckPath" else o for o in kept]
    beanstalk.add_option(Option(PLAIN_ENV, "STRIPE_SECRET", "sk_live_x"))
    beanstalk.add_option(Option("aws:elasticbeanstalk:application", "Application Healthcheck URL", "/health"))
    beanstalk.add_option(Option(PROCESS, "HealthCheckURL", "/health"))
    beanstalk.instance_role.add_to_policy(
        iam.PolicyStatement(actions=["ssm:GetParameter"], resources=["arn:aws:ssm:eu-west-1:123456789012:parameter/*"])
    )
    with pytest.raises(SynthRefused) as refused:
        synthesize(app)
    return refused.value.lines


def _lines(lines: list[str], rule: str, *fragments: str) -> str:
    hits = [line for line in lines if line.startswith(f"[{rule}] ")]
    assert hits, f"expected a [{rule}] refusal in {lines}"
    for fragment in fragments:
        assert any(fragment in line for line in hits), f"{fragment!r} not in {hits}"
    assert " — " in hits[0]
    return hits[0]


def test_caller_adding_healthcheckurl_is_refused_with_the_alternative(broken_eb: list[str]) -> None:
    line = _lines(broken_eb, "eb-healthcheckurl-invalid", f"{PROCESS}/HealthCheckURL")
    assert line.endswith(f"use {PROCESS}/HealthCheckPath"), line
    _lines(broken_eb, "eb-healthcheckurl-invalid", "aws:elasticbeanstalk:application/Application Healthcheck URL")


def test_eb_environment_missing_a_setting_is_refused(broken_eb: list[str]) -> None:
    _lines(broken_eb, "missing-env-vars", "shop-staging-eb/Beanstalk/Environment", "eb does not receive LOG_LEVEL")


def test_eb_secret_in_plain_namespace_is_refused(broken_eb: list[str]) -> None:
    _lines(broken_eb, "plaintext-secrets", PLAIN_ENV, "STRIPE_SECRET=<plain value>")


def test_eb_health_check_on_readiness_path_is_refused(broken_eb: list[str]) -> None:
    _lines(broken_eb, "deep-health-check", "shop-staging-eb/Beanstalk/Environment", "HealthCheckPath=/ready")


def test_eb_instance_role_reading_every_parameter_is_refused(broken_eb: list[str]) -> None:
    _lines(broken_eb, "secret-read-permission", "eb web reader may read arn:aws:ssm:eu-west-1:123456789012:parameter/*")


def test_eb_instances_exceeding_the_connection_budget_are_refused(broken_eb: list[str]) -> None:
    _lines(broken_eb, "db-connection-exhaustion", "up to 240", "eb web 21x8", "ecs web 8x8", "eb migrate 1x4")


# -- refusals: raw resources in a small stack -----------------------------------------------------------------


def _raw_env(stack: cdk.Stack, options: list[tuple[str, str, str]], **props: Any) -> elasticbeanstalk.CfnEnvironment:
    application = elasticbeanstalk.CfnApplication(stack, "App")
    return elasticbeanstalk.CfnEnvironment(
        stack,
        "RawEnv",
        application_name=application.ref,
        solution_stack_name=props.pop("solution_stack_name", DOCKER),
        option_settings=[
            elasticbeanstalk.CfnEnvironment.OptionSettingProperty(namespace=ns, option_name=name, value=value)
            for ns, name, value in options
        ],
        **props,
    )


def test_raw_environment_with_an_unknown_option_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _raw_env(stack, [("aws:elb:healthcheck", "Target", "HTTP:80/health")])
    line = assert_refused(app, "eb-healthcheckurl-invalid", "Test/RawEnv", "aws:elb:healthcheck/Target")
    assert line.endswith(f"use {PROCESS}/HealthCheckPath"), line


def test_environment_in_the_default_vpc_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _raw_env(stack, [("aws:ec2:vpc", "AssociatePublicIpAddress", "true")])
    assert_refused(
        app, "eb-wrong-vpc", "Test/RawEnv", "VPCId, Subnets, ELBSubnets not set", "AssociatePublicIpAddress=true"
    )


def test_environment_without_own_instance_profile_and_service_role_is_refused(
    guarded_stack: Callable[..., Any],
) -> None:
    app, stack = guarded_stack()
    _raw_env(
        stack,
        [
            ("aws:autoscaling:launchconfiguration", "IamInstanceProfile", "aws-elasticbeanstalk-ec2-role"),
            ("aws:elasticbeanstalk:healthreporting:system", "SystemType", "basic"),
        ],
    )
    assert_refused(
        app,
        "eb-instance-profile-service-role",
        "IamInstanceProfile=aws-elasticbeanstalk-ec2-role",
        "ServiceRole=null",
        "SystemType=basic",
    )


def test_environment_on_a_retired_solution_stack_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _raw_env(stack, [], solution_stack_name="64bit Amazon Linux 2 v3.6.0 running Docker")
    assert_refused(app, "eb-solution-stack-retired", "SolutionStackName=64bit Amazon Linux 2 v3.6.0 running Docker")


def test_all_at_once_deployment_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _raw_env(stack, [(COMMAND, "DeploymentPolicy", "AllAtOnce")])
    assert_refused(app, "manual-rollback", "Test/RawEnv", f"{COMMAND}/DeploymentPolicy=AllAtOnce")


def test_environment_without_a_deployment_policy_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _raw_env(stack, [])  # EB's default is AllAtOnce: every instance at once, no batch to stop at
    assert_refused(app, "manual-rollback", "Test/RawEnv", "DeploymentPolicy=not set (AllAtOnce)")


def test_deployment_ignoring_health_checks_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _raw_env(stack, [(COMMAND, "DeploymentPolicy", "Immutable"), (COMMAND, "IgnoreHealthCheck", "true")])
    assert_refused(app, "manual-rollback", "Test/RawEnv", f"{COMMAND}/IgnoreHealthCheck=true")


def test_health_threshold_below_ok_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _raw_env(
        stack,
        [(COMMAND, "DeploymentPolicy", "Immutable"), (HEALTH_REPORTING, "HealthCheckSuccessThreshold", "Warning")],
    )
    assert_refused(app, "manual-rollback", "Test/RawEnv", f"{HEALTH_REPORTING}/HealthCheckSuccessThreshold=Warning")


def test_raw_environment_without_log_streaming_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    _raw_env(stack, [])
    assert_refused(app, "logs-missing", "StreamLogs=None", "RetentionInDays not set")


def test_eb_target_without_db_wiring_is_refused(guarded_stack: Callable[..., Any]) -> None:
    app, stack = guarded_stack()
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"], nat_gateways=1)
    db_sg = ec2.SecurityGroup(stack, "DbSg", vpc=vpc, allow_all_outbound=False)
    _db(stack, vpc_security_groups=[db_sg.security_group_id])
    role = iam.Role(stack, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    ComputeTarget(
        stack,
        "Declaration",
        kind="eb",
        service=WEB,
        compute=[],
        security_group=ec2.SecurityGroup(stack, "InstanceSg", vpc=vpc),
        secret_reader=role,
        image_puller=role,
        max_units=1,
        log_groups=[],
    )
    lines = refusals(app)
    _lines(lines, "sg-compute-to-rds", "Test/Declaration", "eb web compute group not admitted to the database")
    _lines(lines, "secret-read-permission", "eb web reader cannot read SECRET_KEY")


# -- several web services: one environment each on one stack-owned (shared) ALB ---------------------------------

MULTI_WEB = ROOT / "config" / "examples" / "multi-web.yaml"
SHARED = "aws:elbv2:loadbalancer"
EB_HOST = "eb.staging.shop.example.com"  # domain_name("eb"): eb is the second target


def _multi_web_config(**updates: Any) -> Any:
    """The multi-web example on [ecs, eb] (the EKS engineer's target left out), offline account."""
    from config.schema import AppConfig

    loaded = load_config(path=MULTI_WEB)
    return AppConfig.model_validate({**loaded.model_dump(), "targets": ["ecs", "eb"], **updates})


@pytest.fixture(scope="module")
def multi_web() -> Synthesized:
    """One full synth (guards + cdk-nag) of the multi-web example on [ecs, eb]: it must pass."""
    app = new_app()
    config = _multi_web_config()
    stacks = build_stacks(app, config)
    register_guards(app, config)
    return Synthesized(config, stacks, app.synth())


@pytest.fixture(scope="module")
def multi_template(multi_web: Synthesized) -> dict[str, Any]:
    assert multi_web.stacks.eb is not None
    return multi_web.template(multi_web.stacks.eb)


def _env_options(template: dict[str, Any], logical_id: str) -> dict[tuple[str, str], Any]:
    settings = template["Resources"][logical_id]["Properties"]["OptionSettings"]
    return {(o["Namespace"], o["OptionName"]): o["Value"] for o in settings}


def _environments(s: Synthesized) -> dict[str, str]:
    """{web service: logical id of its EB environment}."""
    assert s.stacks.eb is not None
    stack = s.stacks.eb
    return {name: stack.get_logical_id(env.environment) for name, env in stack.environments.items()}


def test_multi_web_runs_one_environment_per_web_service_in_one_application(
    multi_web: Synthesized, multi_template: dict[str, Any]
) -> None:
    envs = _environments(multi_web)
    assert list(envs) == ["storefront", "admin", "api"]  # the default first, then by priority
    resources = multi_template["Resources"]
    assert sorted(k for k, r in resources.items() if r["Type"] == ENV_TYPE) == sorted(envs.values())
    assert len([r for r in resources.values() if r["Type"] == "AWS::ElasticBeanstalk::Application"]) == 1
    applications = {json.dumps(resources[e]["Properties"]["ApplicationName"]) for e in envs.values()}
    assert len(applications) == 1
    # Each its own version (own Dockerrun bundle), instance role and instance group.
    versions = {json.dumps(resources[e]["Properties"]["VersionLabel"]) for e in envs.values()}
    assert len(versions) == 3
    groups = {_env_options(multi_template, e)[(LAUNCH_NS, "SecurityGroups")]["Fn::GetAtt"][0] for e in envs.values()}
    assert len(groups) == 3


LAUNCH_NS = "aws:autoscaling:launchconfiguration"


def test_multi_web_environments_share_the_stack_alb_with_a_404_default(multi_template: dict[str, Any]) -> None:
    resources = multi_template["Resources"]
    albs = [k for k, r in resources.items() if r["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"]
    assert len(albs) == 1
    alb = resources[albs[0]]["Properties"]
    assert alb["Scheme"] == "internet-facing"
    attributes = {a["Key"]: a["Value"] for a in alb["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    listeners = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"]
    https = next(lst for lst in listeners if lst["Port"] == 443)
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["DefaultActions"][0]["Type"] == "fixed-response"
    assert https["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    assert next(lst for lst in listeners if lst["Port"] == 80)["DefaultActions"][0]["Type"] == "redirect"
    # EB creates each environment's process (target group) and rules: none in the template.
    assert not [r for r in resources.values() if r["Type"].endswith(("TargetGroup", "ListenerRule"))]
    alb_group = alb["SecurityGroups"][0]["Fn::GetAtt"][0]
    for logical_id, resource in resources.items():
        if resource["Type"] != ENV_TYPE:
            continue
        options = _env_options(multi_template, logical_id)
        assert options[("aws:elasticbeanstalk:environment", "LoadBalancerIsShared")] == "true"
        assert options[(SHARED, "SharedLoadBalancer")] == {"Ref": albs[0]}
        assert options[(SHARED, "SecurityGroups")] == {"Fn::GetAtt": [alb_group, "GroupId"]}
        assert options[(SHARED, "ManagedSecurityGroup")] == {"Fn::GetAtt": [alb_group, "GroupId"]}
        assert (SHARED, "IdleTimeout") not in options  # the stack's ALB carries it
        # Its instance group admits the shared ALB group on EB's nginx port only.
        instance_group = options[(LAUNCH_NS, "SecurityGroups")]["Fn::GetAtt"][0]
        ingress = [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::EC2::SecurityGroupIngress"
            and r["Properties"]["GroupId"] == {"Fn::GetAtt": [instance_group, "GroupId"]}
        ]
        assert [(i["SourceSecurityGroupId"], i["FromPort"], i["ToPort"]) for i in ingress] == [
            ({"Fn::GetAtt": [alb_group, "GroupId"]}, 80, 80)
        ]


def test_multi_web_environments_carry_their_route_as_listener_rule_options(
    multi_web: Synthesized, multi_template: dict[str, Any]
) -> None:
    envs = _environments(multi_web)

    def rule(service: str) -> dict[str, Any]:
        options = _env_options(multi_template, envs[service])
        assert options[("aws:elbv2:listener:443", "Rules")] == f"default,{service}"
        namespace = f"aws:elbv2:listenerrule:{service}"
        return {name: value for (ns, name), value in options.items() if ns == namespace}

    assert rule("api") == {"PathPatterns": "/api/*", "HostHeaders": EB_HOST, "Priority": "10", "Process": "default"}
    assert rule("admin") == {
        "HostHeaders": "admin.staging.shop.example.com",
        "Priority": "5",
        "Process": "default",
    }
    # The catch-all: EB's own default rule only matches the environment's CNAME, so the default service answers
    # the stage host at priority 1000, after every route; its environment is created after theirs.
    assert rule("storefront") == {"HostHeaders": EB_HOST, "Priority": "1000", "Process": "default"}
    depends = multi_template["Resources"][envs["storefront"]]["DependsOn"]
    assert {envs["api"], envs["admin"]} <= set(depends)


def test_multi_web_environments_check_their_own_health_contract(
    multi_web: Synthesized, multi_template: dict[str, Any]
) -> None:
    envs = _environments(multi_web)
    for service, path in (("storefront", "/health"), ("admin", "/health"), ("api", "/api/health")):
        options = _env_options(multi_template, envs[service])
        assert options[(PROCESS, "HealthCheckPath")] == path
        assert options[(PROCESS, "Port")] == "80"  # EB's nginx; it proxies to the container port of the bundle
        assert options[(PLAIN_ENV, "APP_SERVICE")] == service
    assert multi_web.stacks.eb is not None
    api = multi_web.stacks.eb.environments["api"]
    bundle = Path(api.bundle.asset_path)
    if not bundle.is_absolute():
        bundle = Path(multi_web.assembly.directory) / bundle
    document = json.loads((bundle / "Dockerrun.aws.json").read_text())
    assert document["Ports"] == [{"ContainerPort": 8080}]
    assert document["Image"]["Name"].endswith("/shop-api:1.4.2")
    assert not (bundle / ".ebextensions").exists()  # the stack's ALB redirects HTTP; no EB listener to override
    assert _env_options(multi_template, envs["api"])[(PLAIN_ENV, "PORT")] == "8080"


def test_multi_web_environments_read_only_their_settings_and_roll_out_on_change(
    multi_web: Synthesized, multi_template: dict[str, Any]
) -> None:
    envs = _environments(multi_web)
    admin = _env_options(multi_template, envs["admin"])
    assert sorted(n for (ns, n) in admin if ns == "aws:elasticbeanstalk:application:environmentsecrets") == [
        "DATABASE_URL",
        "SECRET_KEY",
    ]
    assert multi_web.stacks.eb is not None
    stack = multi_web.stacks.eb
    rollout = next(c for c in stack.node.find_all() if type(c).__name__ == "SecretRollout")
    readers = stack.resolve(rollout.readers["eb"]["readers"])  # type: ignore[attr-defined]
    assert readers["/shop/staging/REDIS_URL"] == [{"Ref": envs["storefront"]}]
    assert readers["/shop/staging/REDIS_URL_DB1"] == [{"Ref": envs["api"]}]  # its own Redis database (redis_db: 1)
    assert readers["/shop/staging/SECRET_KEY"] == [{"Ref": e} for e in envs.values()]
    alarms = {
        r["Properties"]["AlarmName"]
        for r in multi_template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {
        "shop-staging-eb-EnvironmentHealth",
        "shop-staging-eb-ApplicationRequests5xx",
        "shop-staging-eb-api-EnvironmentHealth",
        "shop-staging-eb-api-ApplicationRequests5xx",
        "shop-staging-eb-admin-EnvironmentHealth",
        "shop-staging-eb-alb-HTTPCode_ELB_5XX_Count",
    } <= alarms


def test_single_web_stage_keeps_a_dedicated_eb_managed_alb(template: dict[str, Any]) -> None:
    options = _options(template)
    assert ("aws:elasticbeanstalk:environment", "LoadBalancerIsShared") not in options
    assert (SHARED, "SharedLoadBalancer") not in options
    assert (SHARED, "IdleTimeout") in options
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::ElasticLoadBalancingV2")]


def _broken_multi_web(change: Callable[[Any], None], **updates: Any) -> list[str]:
    app = new_app()
    config = _multi_web_config(**updates)
    stacks = build_stacks(app, config)
    # A focused refusal test: the bad case breaks resources on purpose; cdk-nag's findings on
    # them would only add noise (the full stage runs with cdk-nag in the module fixtures).
    register_guards(app, config, nag=False)
    assert stacks.eb is not None
    change(stacks.eb.environments)
    return refusals(app)


def _set_option(env: Any, namespace: str, name: str, value: str) -> None:
    env.options[:] = [o for o in env.options if (o.namespace, o.name) != (namespace, name)]
    env.add_option(Option(namespace, name, value))


def test_routed_environment_checking_the_stage_contract_instead_of_its_own_is_refused() -> None:
    # The api's contract says /api/health; /health is the stage's (and storefront's) liveness path.
    lines = _broken_multi_web(lambda envs: _set_option(envs["api"], PROCESS, "HealthCheckPath", "/health"))
    _lines(lines, "alb-health-check-path", "shop-staging-eb/BeanstalkApi/Environment", "HealthCheckPath=/health")
    assert not [line for line in lines if "BeanstalkAdmin" in line or "Beanstalk/Environment" in line]


def test_routed_environment_on_its_own_readiness_path_is_refused() -> None:
    lines = _broken_multi_web(lambda envs: _set_option(envs["api"], PROCESS, "HealthCheckPath", "/api/ready"))
    _lines(lines, "deep-health-check", "shop-staging-eb/BeanstalkApi/Environment", "HealthCheckPath=/api/ready")


def test_listener_rule_options_are_checked_per_rule_name_and_eb_route_limits_refused() -> None:
    def change(envs: Any) -> None:
        envs["admin"].add_option(Option("aws:elbv2:listenerrule:admin", "Paths", "/admin/*"))
        envs["admin"].add_option(Option("aws:elbv2:listenerrule:bad:name", "Priority", "3"))

    services = _multi_web_config().model_dump()["services"]
    services["api"]["route"]["priority"] = 1200
    lines = _broken_multi_web(change, services=services)
    _lines(lines, "eb-healthcheckurl-invalid", "aws:elbv2:listenerrule:admin/Paths")
    _lines(lines, "eb-healthcheckurl-invalid", "aws:elbv2:listenerrule:bad:name/Priority")
    _lines(lines, "config", "services.api.route: priority 1200", "1 to 999")
