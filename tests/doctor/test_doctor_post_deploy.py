"""Checks after a deploy, on moto: a healthy stage passes, each broken variant fails its own check.

Target stacks (ecs, eb, eks) are refused by the schema for now, so tests that need them enable them in the
context (``targets=(...)``) and add the stack with ``with_ecs``/``add_stack``.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from doctor_world import (
    OTHER_REGION,
    REGION,
    Clients,
    World,
    admit,
    allow_parameters,
    deny_master_secrets,
    make_ctx,
    put_alarm,
    rows,
    verdicts,
    with_ecs,
)

from config import AppConfig, load_config
from doctor.checks import POST_DEPLOY, identity, network, observability, run_checks, secrets, targets
from doctor.model import Check, Verdict


def test_healthy_stage_passes_every_check(world: World, config: AppConfig) -> None:
    """The whole post-deploy run with an ecs target; iam.simulate_principal_policy (not in moto) via Stubber."""
    with_ecs(world)
    iam = world.clients.stub("iam")
    allow_parameters(iam, world.consumer_role)
    deny_master_secrets(iam, world)
    findings = run_checks(make_ctx(world.clients, config, targets=("ecs",)), POST_DEPLOY)
    problems = [(f.check_id, f.resource) for f in findings if f.verdict is not Verdict.PASS]
    assert problems == [("local-credentials", "arn:aws:sts::123456789012:user/moto")]  # moto's caller is a user
    assert {f.check_id for f in findings} == {
        "local-credentials",
        "region-mismatch",
        "sg-compute-to-rds",
        "redis-sg",
        "rds-public-access",
        "ssm-securestring-missing",
        "secret-read-permission",
        "ecr-pull-permission",
        "alb-health-check-path",
        "secret-rollout-stale",
        "app-startup-crash",
        "alarm-5xx-misconfigured",
        "logs-missing",
    }
    assert f"admits exactly {world.compute_sg} (ecs) on 5432" in rows(findings, "sg-compute-to-rds")[0].advice
    assert verdicts(findings, "logs-missing", world.target_log) == {"pass"}
    iam.assert_no_pending_responses()


def test_stage_without_targets_only_warns_about_unexplained_sg_rules(world: World, config: AppConfig) -> None:
    findings = run_checks(make_ctx(world.clients, config), POST_DEPLOY)
    assert not [f for f in findings if f.verdict is Verdict.FAIL]
    warned = {(f.check_id, str(f.verdict)) for f in findings if f.verdict is Verdict.WARN}
    assert warned == {("local-credentials", "warn"), ("sg-compute-to-rds", "warn"), ("redis-sg", "warn")}


# -- region-mismatch -------------------------------------------------------------------------------------------


def test_missing_stack_fails_with_deploy_first_and_dependants_are_not_checked(
    clients: Clients, config: AppConfig
) -> None:
    clients.add_stack("shop-dev-network", {"VpcId": "vpc-1"})
    findings = run_checks(make_ctx(clients, config), POST_DEPLOY)
    [missing] = rows(findings, "region-mismatch", "shop-dev-data")
    assert missing.verdict is Verdict.FAIL
    assert "deploy first" in missing.advice and "cdk deploy -c stage=dev shop-dev-data" in missing.advice
    for check_id in ("sg-compute-to-rds", "redis-sg", "rds-public-access"):
        [skipped] = rows(findings, check_id)
        assert skipped.verdict is Verdict.WARN
        assert skipped.advice == "not checked: stack shop-dev-data not deployed in eu-west-1"


def test_stack_deployed_to_the_callers_default_region_is_named(world: World, config: AppConfig) -> None:
    data = world.clients.stacks[REGION].pop("shop-dev-data")
    world.clients.stacks.setdefault(OTHER_REGION, {})["shop-dev-data"] = data
    clients = Clients(default_region=OTHER_REGION)
    clients.stacks = world.clients.stacks
    [finding] = rows(identity.stacks_deployed(make_ctx(clients, config)), "region-mismatch", "shop-dev-data")
    assert finding.verdict is Verdict.FAIL
    assert "deployed to us-east-1, but the stage is in eu-west-1" in finding.advice


def test_failed_stack_fails(world: World, config: AppConfig) -> None:
    world.clients.add_stack("shop-dev-data", world.data_outputs, status="UPDATE_ROLLBACK_FAILED")
    [finding] = rows(identity.stacks_deployed(make_ctx(world.clients, config)), "region-mismatch", "shop-dev-data")
    assert finding.verdict is Verdict.FAIL and "describe-stack-events" in finding.advice


def test_database_in_another_region_fails(world: World, config: AppConfig) -> None:
    world.clients.client("rds", REGION).delete_db_instance(DBInstanceIdentifier=world.db_id, SkipFinalSnapshot=True)
    world.clients.client("rds", OTHER_REGION).create_db_instance(
        DBInstanceIdentifier=world.db_id,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="x" * 20,
        AllocatedStorage=20,
    )
    clients = Clients(default_region=OTHER_REGION)
    clients.stacks = world.clients.stacks
    findings = identity.data_placement(make_ctx(clients, config))
    assert verdicts(findings, "region-mismatch", "RDS") == {"fail"}
    assert "found in us-east-1, not in the stage's eu-west-1" in rows(findings, "region-mismatch", "RDS")[0].advice
    assert verdicts(findings, "region-mismatch", "ElastiCache") == {"pass"}


def test_replication_group_gone_fails(world: World, config: AppConfig) -> None:
    world.clients.add_stack("shop-dev-data", {**world.data_outputs, "CacheReplicationGroupId": "shop-dev-gone"})
    findings = identity.data_placement(make_ctx(world.clients, config))
    assert verdicts(findings, "region-mismatch", "ElastiCache") == {"fail"}


# -- sg-compute-to-rds / redis-sg -------------------------------------------------------------------------------


def test_missing_compute_rule_on_the_database_fails(world: World, config: AppConfig) -> None:
    ec2 = world.clients.client("ec2", REGION)
    other = ec2.create_security_group(GroupName="other", Description="other", VpcId=world.vpc)["GroupId"]
    with_ecs(world, ComputeSecurityGroupId=other)  # the target's SG is not the one the DB admits
    findings = network.database_ingress(make_ctx(world.clients, config, targets=("ecs",)))
    advice = sorted(f.advice for f in findings if f.verdict is Verdict.FAIL)
    assert len(advice) == 2
    assert advice[0].startswith(f"no ingress from the ecs compute SG {other} on 5432")
    assert f"admits {world.compute_sg} on 5432, which is no enabled target's compute SG" in advice[1]


def test_a_worker_group_the_stack_lists_is_not_a_foreign_rule(world: World, config: AppConfig) -> None:
    ec2 = world.clients.client("ec2", REGION)
    worker = ec2.create_security_group(GroupName="worker", Description="worker", VpcId=world.vpc)["GroupId"]
    admit(world, world.db_sg, 5432, source_group=worker)
    with_ecs(world, ComputeSecurityGroupIds=f"{world.compute_sg},{worker}")
    findings = network.database_ingress(make_ctx(world.clients, config, targets=("ecs",)))
    assert verdicts(findings, "sg-compute-to-rds") == {"pass"}
    with_ecs(world)  # the same rule without the stack listing the worker's group: a foreign rule
    findings = network.database_ingress(make_ctx(world.clients, config, targets=("ecs",)))
    assert any(f"admits {worker} on 5432, which is no enabled target's compute SG" in f.advice for f in findings)


def test_cidr_rule_on_5432_fails(world: World, config: AppConfig) -> None:
    admit(world, world.db_sg, 5432, cidr="0.0.0.0/0")
    with_ecs(world)
    findings = network.database_ingress(make_ctx(world.clients, config, targets=("ecs",)))
    [finding] = findings
    assert finding.verdict is Verdict.FAIL and "admits 0.0.0.0/0 on 5432" in finding.advice


def test_cidr_rule_on_another_port_is_not_this_checks_business(world: World, config: AppConfig) -> None:
    admit(world, world.db_sg, 443, cidr="10.0.0.0/8")
    with_ecs(world)
    assert verdicts(
        network.database_ingress(make_ctx(world.clients, config, targets=("ecs",))), "sg-compute-to-rds"
    ) == {"pass"}


def test_cache_without_the_compute_rule_fails(world: World, config: AppConfig) -> None:
    ec2 = world.clients.client("ec2", REGION)
    ec2.revoke_security_group_ingress(
        GroupId=world.cache_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "UserIdGroupPairs": [{"GroupId": world.compute_sg}]}
        ],
    )
    with_ecs(world)
    [finding] = network.cache_ingress(make_ctx(world.clients, config, targets=("ecs",)))
    assert (finding.check_id, finding.verdict) == ("redis-sg", Verdict.FAIL)
    assert f"no ingress from the ecs compute SG {world.compute_sg} on 6379" in finding.advice


def test_without_targets_an_unknown_source_sg_only_warns(world: World, config: AppConfig) -> None:
    [finding] = network.database_ingress(make_ctx(world.clients, config))
    assert finding.verdict is Verdict.WARN and "no target stack is deployed" in finding.advice


def test_security_group_gone_fails(world: World, config: AppConfig) -> None:
    world.clients.add_stack("shop-dev-data", {**world.data_outputs, "DatabaseSecurityGroupId": "sg-0123456789abcdef0"})
    [finding] = network.database_ingress(make_ctx(world.clients, config))
    assert finding.verdict is Verdict.FAIL and "not found in eu-west-1" in finding.advice


# -- rds-public-access ------------------------------------------------------------------------------------------


def test_public_database_fails(world: World, config: AppConfig) -> None:
    world.clients.client("rds", REGION).modify_db_instance(DBInstanceIdentifier=world.db_id, PubliclyAccessible=True)
    [finding] = network.database_public(make_ctx(world.clients, config))
    assert (finding.check_id, finding.verdict) == ("rds-public-access", Verdict.FAIL)
    assert "Session Manager" in finding.advice


# -- ssm-securestring-missing -----------------------------------------------------------------------------------


def test_deleted_securestring_fails(world: World, config: AppConfig) -> None:
    world.clients.client("ssm", REGION).delete_parameter(Name="/shop/dev/JWT_SECRET_KEY")
    findings = secrets.secure_strings(make_ctx(world.clients, config))
    assert verdicts(findings, "ssm-securestring-missing", "/shop/dev/JWT_SECRET_KEY") == {"fail"}
    assert verdicts(findings, "ssm-securestring-missing", "/shop/dev/SECRET_KEY") == {"pass"}
    assert "missing in eu-west-1" in rows(findings, "ssm-securestring-missing", "JWT_SECRET_KEY")[0].advice


def test_plain_string_instead_of_securestring_fails(world: World, config: AppConfig) -> None:
    ssm = world.clients.client("ssm", REGION)
    ssm.put_parameter(Name="/shop/dev/SECRET_KEY", Value="plain", Type="String", Overwrite=True)
    [finding] = rows(secrets.secure_strings(make_ctx(world.clients, config)), "ssm-securestring-missing", "/SECRET_KEY")
    assert finding.verdict is Verdict.FAIL and "is a String" in finding.advice


def test_securestring_report_shows_the_key_not_the_value(world: World, config: AppConfig) -> None:
    [finding] = rows(secrets.secure_strings(make_ctx(world.clients, config)), "ssm-securestring-missing", "/REDIS_URL")
    assert finding.advice == "SecureString, key alias/aws/ssm, version 1 (value not read)"


# -- ecr-pull-permission after deploy ------------------------------------------------------------------------------


def test_image_tag_deleted_after_deploy_fails(world: World, config: AppConfig) -> None:
    world.clients.client("ecr", REGION).batch_delete_image(repositoryName="shop-api", imageIds=[{"imageTag": "1.0.0"}])
    assert verdicts(targets.image(make_ctx(world.clients, config)), "ecr-pull-permission") == {"fail"}


# -- alb-health-check-path (target health) --------------------------------------------------------------------------


def test_unhealthy_target_fails_with_its_reason(world: World, config: AppConfig) -> None:
    ec2 = world.clients.client("ec2", REGION)
    elbv2 = world.clients.client("elbv2", REGION)
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [world.vpc]}])["Subnets"][0]["SubnetId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]
    group = elbv2.create_target_group(
        Name="shop-dev-instances",
        Protocol="HTTP",
        Port=8000,
        VpcId=world.vpc,
        TargetType="instance",
        HealthCheckPath="/health",
    )["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": instance["InstanceId"]}])
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])  # moto reports a stopped target as unused/InvalidState
    with_ecs(world, TargetGroupArn=group["TargetGroupArn"])
    [finding] = targets.target_health(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.FAIL
    assert instance["InstanceId"] in finding.resource
    assert finding.advice.startswith("unused Target.InvalidState: the target is stopped or terminated")


def test_health_check_path_other_than_the_contract_fails(world: World, config: AppConfig) -> None:
    elbv2 = world.clients.client("elbv2", REGION)
    elbv2.modify_target_group(TargetGroupArn=world.target_group_arn, HealthCheckPath="/ready")
    with_ecs(world)
    findings = targets.target_health(make_ctx(world.clients, config, targets=("ecs",)))
    assert [f.verdict for f in findings] == [Verdict.FAIL, Verdict.PASS]  # the path is wrong, targets still healthy
    assert "checks /ready expecting 200, the health contract says /health" in findings[0].advice


def test_each_web_service_target_group_is_checked_against_its_own_contract(world: World, tmp_path: Path) -> None:
    """Several web services: TargetGroupArns names each group; the api group checks the stage's path, not its own."""
    raw = yaml.safe_load((Path(__file__).parents[2] / "config" / "examples" / "multi-web.yaml").read_text())
    path = tmp_path / "multi-web.yaml"
    path.write_text(yaml.safe_dump({**raw, "targets": ["ecs"]}, sort_keys=False))
    multi = load_config(path=path)
    elbv2 = world.clients.client("elbv2", REGION)
    api = elbv2.create_target_group(
        Name="api", Protocol="HTTP", Port=8080, VpcId=world.vpc, TargetType="ip", HealthCheckPath="/health"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=api, Targets=[{"Id": "10.0.1.11", "Port": 8080}])
    world.clients.add_stack(
        "shop-staging-ecs",
        {"TargetGroupArns": json.dumps({"storefront": world.target_group_arn, "api": api})},
    )
    findings = targets.target_health(make_ctx(world.clients, multi, targets=("ecs",)))
    failed = [f for f in findings if f.verdict is Verdict.FAIL]
    assert len(failed) == 1 and failed[0].resource.endswith("(api)")
    assert "the health contract says /api/health" in failed[0].advice
    assert any(f.verdict is Verdict.PASS and f.resource.endswith("(storefront)") for f in findings)


def test_target_group_without_targets_fails(world: World, config: AppConfig) -> None:
    elbv2 = world.clients.client("elbv2", REGION)
    elbv2.deregister_targets(TargetGroupArn=world.target_group_arn, Targets=[{"Id": "10.0.1.10", "Port": 8000}])
    with_ecs(world)
    [finding] = targets.target_health(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.FAIL and "no registered targets" in finding.advice


def test_target_stack_without_a_target_group_output_is_skipped(world: World, config: AppConfig) -> None:
    world.clients.add_stack("shop-dev-ecs", {"ComputeSecurityGroupId": world.compute_sg})
    [finding] = targets.target_health(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.WARN and "has no output TargetGroupArn" in finding.advice


# -- eb-env-exists (after deploy) / eb-solution-stack-retired ----------------------------------------------------


def test_eb_environment_without_health_data_warns(world: World, config: AppConfig) -> None:
    eb = world.clients.client("elasticbeanstalk", REGION)
    eb.create_application(ApplicationName="shop")
    eb.create_environment(
        ApplicationName="shop",
        EnvironmentName="shop-dev",
        SolutionStackName="64bit Amazon Linux 2023 v4.6.0 running Docker",
    )
    world.clients.add_stack(
        "shop-dev-eb",
        {
            "EnvironmentName": "shop-dev",
            "ApplicationName": "shop",
            "SolutionStackName": "64bit Amazon Linux 2023 v4.0.1 running Docker",
        },
    )
    ctx = make_ctx(world.clients, config, targets=("eb",))
    [health] = targets.environment_health(ctx)
    assert health.verdict is Verdict.WARN and "health Grey" in health.advice  # moto's environments report Grey
    [stack] = targets.solution_stack_offered(ctx)
    assert stack.verdict is Verdict.WARN and "the running environment keeps it" in stack.advice


def test_eb_environment_named_by_the_stack_but_gone_fails(world: World, config: AppConfig) -> None:
    world.clients.add_stack("shop-dev-eb", {"EnvironmentName": "shop-dev"})
    [finding] = targets.environment_health(make_ctx(world.clients, config, targets=("eb",)))
    assert finding.verdict is Verdict.FAIL


def test_every_eb_environment_of_several_web_services_is_checked(world: World, config: AppConfig) -> None:
    """One EB environment per web service (EnvironmentNames): a missing one fails, the others are judged."""
    eb = world.clients.client("elasticbeanstalk", REGION)
    eb.create_application(ApplicationName="shop")
    eb.create_environment(
        ApplicationName="shop",
        EnvironmentName="shop-dev",
        SolutionStackName="64bit Amazon Linux 2023 v4.6.0 running Docker",
    )
    names = {"storefront": "shop-dev", "api": "shop-dev-api"}
    world.clients.add_stack("shop-dev-eb", {"EnvironmentName": "shop-dev", "EnvironmentNames": json.dumps(names)})
    findings = targets.environment_health(make_ctx(world.clients, config, targets=("eb",)))
    assert [(f.resource, f.verdict) for f in findings] == [
        ("EB shop-dev", Verdict.WARN),  # moto's environments report Grey
        ("EB shop-dev-api", Verdict.FAIL),  # named by the stack, not found
    ]


# -- EKS: fargate-profile-namespace / eks-fargate-pod-sg --------------------------------------------------------


def _cluster(world: World) -> str:
    eks = world.clients.client("eks", REGION)
    subnets = [
        s["SubnetId"]
        for s in world.clients.client("ec2", REGION).describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [world.vpc]}]
        )["Subnets"]
    ]
    role = "arn:aws:iam::123456789012:role/eks"
    eks.create_cluster(name="shop-dev", roleArn=role, resourcesVpcConfig={"subnetIds": subnets})
    eks.create_fargate_profile(
        fargateProfileName="app", clusterName="shop-dev", podExecutionRoleArn=role, selectors=[{"namespace": "shop"}]
    )
    return role


def test_active_cluster_and_profiles_pass(world: World, config: AppConfig) -> None:
    _cluster(world)
    world.clients.add_stack("shop-dev-eks", {"ClusterName": "shop-dev", "ComputeSecurityGroupId": world.compute_sg})
    ctx = make_ctx(world.clients, config, targets=("eks",))
    findings = targets.eks_cluster(ctx)
    assert [(f.resource, f.verdict) for f in findings] == [
        ("EKS shop-dev", Verdict.PASS),
        ("EKS shop-dev/app", Verdict.PASS),
    ]
    assert "namespaces shop" in findings[1].advice
    # moto reports no cluster SG, so the pod-SG check can only say what the stack wires.
    assert verdicts(network.eks_pod_security_group(ctx), "eks-fargate-pod-sg") == {"pass"}


def test_cluster_without_fargate_profile_fails(world: World, config: AppConfig) -> None:
    _cluster(world)
    world.clients.client("eks", REGION).delete_fargate_profile(clusterName="shop-dev", fargateProfileName="app")
    world.clients.add_stack("shop-dev-eks", {"ClusterName": "shop-dev", "ComputeSecurityGroupId": world.compute_sg})
    findings = targets.eks_cluster(make_ctx(world.clients, config, targets=("eks",)))
    assert [f.verdict for f in findings] == [Verdict.PASS, Verdict.FAIL]


def test_pods_use_the_cluster_sg_not_the_wired_one(world: World, config: AppConfig) -> None:
    """moto's describe_cluster has no clusterSecurityGroupId: Stubber answers for EKS here."""
    world.clients.add_stack("shop-dev-eks", {"ClusterName": "shop-dev", "ComputeSecurityGroupId": world.compute_sg})
    stub = world.clients.stub("eks")
    stub.add_response(
        "describe_cluster",
        {
            "cluster": {
                "name": "shop-dev",
                "status": "ACTIVE",
                "resourcesVpcConfig": {"clusterSecurityGroupId": "sg-0cluster00000000"},
            }
        },
        {"name": "shop-dev"},
    )
    [finding] = network.eks_pod_security_group(make_ctx(world.clients, config, targets=("eks",)))
    assert finding.verdict is Verdict.FAIL and "cluster SG sg-0cluster00000000" in finding.advice
    stub.assert_no_pending_responses()


# -- alarm-5xx-misconfigured --------------------------------------------------------------------------------------


def test_no_alarms_fails(world: World, config: AppConfig) -> None:
    cloudwatch = world.clients.client("cloudwatch", REGION)
    names = [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]]
    cloudwatch.delete_alarms(AlarmNames=names)
    [finding] = observability.alarms(make_ctx(world.clients, config))
    assert finding.verdict is Verdict.FAIL and "no alarm named shop-dev-*" in finding.advice


def test_alarm_without_action_or_dimensions_fails(world: World, config: AppConfig) -> None:
    put_alarm(world, "shop-dev-ecs-5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", [], actions=False)
    findings = observability.alarms(make_ctx(world.clients, config))
    assert [(f.resource, f.verdict) for f in findings] == [("shop-dev-ecs-5xx", Verdict.FAIL)] * 2
    assert "no alarm action" in findings[0].advice and "has no dimensions" in findings[1].advice


def test_alarm_stuck_without_data_warns(world: World, config: AppConfig) -> None:
    cloudwatch = world.clients.client("cloudwatch", REGION)
    cloudwatch.set_alarm_state(
        AlarmName="shop-dev-database-CPUUtilization", StateValue="INSUFFICIENT_DATA", StateReason="no datapoints"
    )
    [finding] = observability.alarms(make_ctx(world.clients, config))
    assert (finding.resource, finding.verdict) == ("shop-dev-database-CPUUtilization", Verdict.WARN)


# -- logs-missing ---------------------------------------------------------------------------------------------------


def test_missing_log_group_fails_and_no_retention_warns(world: World, config: AppConfig) -> None:
    logs = world.clients.client("logs", REGION)
    logs.delete_log_group(logGroupName=world.cache_log)
    logs.delete_retention_policy(logGroupName=f"/aws/rds/instance/{world.db_id}/postgresql")
    findings = observability.log_groups(make_ctx(world.clients, config))
    assert verdicts(findings, "logs-missing", world.cache_log) == {"fail"}
    assert verdicts(findings, "logs-missing", "/aws/rds/") == {"warn"}
    assert "never expires" in rows(findings, "logs-missing", "/aws/rds/")[0].advice


# -- errors become one warn row -------------------------------------------------------------------------------------


def test_access_denied_is_a_warn_with_the_reason(world: World, config: AppConfig) -> None:
    """AccessDenied injected with Stubber (moto does not enforce IAM by default)."""
    stub = world.clients.stub("rds")
    stub.add_client_error(
        "describe_db_instances",
        service_error_code="AccessDenied",
        http_status_code=403,
        service_message="User is not authorized to perform: rds:DescribeDBInstances",
    )
    [finding] = run_checks(
        make_ctx(world.clients, config), [Check("rds-public-access", "database", network.database_public)]
    )
    assert finding.verdict is Verdict.WARN
    assert finding.advice.startswith("could not run: access denied for DescribeDBInstances")


def test_throttling_left_after_retries_is_a_warn(world: World, config: AppConfig) -> None:
    """Throttling injected with Stubber (it answers before botocore's retry loop, so no real backoff here)."""
    stub = world.clients.stub("ec2")
    stub.add_client_error(
        "describe_security_group_rules", service_error_code="RequestLimitExceeded", http_status_code=503
    )
    [finding] = run_checks(make_ctx(world.clients, config), [Check("redis-sg", "cache SG", network.cache_ingress)])
    assert finding.verdict is Verdict.WARN and "throttled by AWS" in finding.advice


def test_target_load_balancer_without_a_5xx_alarm_fails(world: World, config: AppConfig) -> None:
    world.clients.client("cloudwatch", REGION).delete_alarms(AlarmNames=["shop-dev-ecs-alb-HTTPCode_Target_5XX_Count"])
    with_ecs(world)
    [finding] = observability.alarms(make_ctx(world.clients, config, targets=("ecs",)))
    assert (finding.resource, finding.verdict) == ("ecs load balancer", Verdict.FAIL)
    assert "no HTTPCode_Target_5XX_Count/HTTPCode_ELB_5XX_Count alarm with dimension LoadBalancer=app/shop-dev/" in (
        finding.advice
    )
