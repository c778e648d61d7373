"""Checks before the first deploy, on moto: caller, account, bootstrap, image, Elastic Beanstalk."""

from __future__ import annotations

import json

import boto3
from doctor_world import ACCOUNT, MANIFEST, OTHER_REGION, REGION, Clients, StageFile, make_ctx, verdicts

from config import AppConfig, load_config
from doctor.checks import identity, targets

DOCKER_STACK = "64bit Amazon Linux 2023 v4.6.0 running Docker"  # in moto's static list of offered stacks
RETIRED_STACK = "64bit Amazon Linux 2023 v4.0.1 running Docker"


def _assumed_role_clients() -> Clients:
    iam = boto3.client("iam", region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps(trust))
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/deployer", RoleSessionName="dev"
    )["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        region_name=REGION,
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return Clients(session=session)


# -- local-credentials / region-mismatch (caller) -------------------------------------------------------------


def test_iam_user_is_shown_and_warned(clients: Clients, config: AppConfig) -> None:
    findings = identity.caller(make_ctx(clients, config))
    caller = findings[0]
    assert (caller.check_id, str(caller.verdict)) == ("local-credentials", "warn")
    assert caller.resource == f"arn:aws:sts::{ACCOUNT}:user/moto"
    assert f"account {ACCOUNT}" in caller.advice and "default region eu-west-1" in caller.advice
    assert "iam-deployer-overprivileged" in caller.advice
    assert verdicts(findings, "region-mismatch") == {"pass"}


def test_assumed_role_passes(clients: Clients, config: AppConfig) -> None:
    findings = identity.caller(make_ctx(_assumed_role_clients(), config))
    assert verdicts(findings, "local-credentials") == {"pass"}
    assert ":assumed-role/deployer/dev" in findings[0].resource


def test_default_region_other_than_the_stage_warns(clients: Clients, config: AppConfig) -> None:
    findings = identity.caller(make_ctx(Clients(default_region=OTHER_REGION), config))
    region = next(f for f in findings if f.resource == "region")
    assert str(region.verdict) == "warn"
    assert "default region is us-east-1" in region.advice and "export AWS_REGION=eu-west-1" in region.advice


def test_account_pinned_by_the_stage_must_be_the_callers(clients: Clients, stage_file: StageFile) -> None:
    other = load_config(path=stage_file(account="999999999999"))
    assert verdicts(identity.caller(make_ctx(clients, other)), "region-mismatch", "account") == {"fail"}
    same = load_config(path=stage_file(account=ACCOUNT))
    assert verdicts(identity.caller(make_ctx(clients, same)), "region-mismatch", "account") == {"pass"}


# -- CDK bootstrap ------------------------------------------------------------------------------------------


def test_bootstrap_missing_fails_with_the_command(clients: Clients, config: AppConfig) -> None:
    [finding] = identity.cdk_bootstrap(make_ctx(clients, config))
    assert str(finding.verdict) == "fail"
    assert f"cdk bootstrap aws://{ACCOUNT}/{REGION}" in finding.advice


def test_bootstrap_version_parameter_passes(clients: Clients, config: AppConfig) -> None:
    clients.client("ssm", REGION).put_parameter(Name=identity.BOOTSTRAP_PARAMETER, Value="30", Type="String")
    [finding] = identity.cdk_bootstrap(make_ctx(clients, config))
    assert (str(finding.verdict), finding.advice) == ("pass", "bootstrap version 30")


def test_bootstrap_in_another_region_does_not_count(clients: Clients, config: AppConfig) -> None:
    clients.client("ssm", OTHER_REGION).put_parameter(Name=identity.BOOTSTRAP_PARAMETER, Value="30", Type="String")
    assert str(identity.cdk_bootstrap(make_ctx(clients, config))[0].verdict) == "fail"


def test_toolkit_stack_without_parameter_warns(clients: Clients, config: AppConfig) -> None:
    clients.add_stack("CDKToolkit", {"BucketName": "cdk-assets"})
    [finding] = identity.cdk_bootstrap(make_ctx(clients, config))
    assert str(finding.verdict) == "warn" and "CDKToolkit is CREATE_COMPLETE" in finding.advice


# -- ecr-pull-permission --------------------------------------------------------------------------------------


def _repo(clients: Clients, *, mutability: str = "IMMUTABLE", tag: str | None = "1.0.0") -> str:
    ecr = clients.client("ecr", REGION)
    ecr.create_repository(repositoryName="shop-api", imageTagMutability=mutability)
    if tag:
        return str(
            ecr.put_image(repositoryName="shop-api", imageManifest=MANIFEST, imageTag=tag)["image"]["imageId"][
                "imageDigest"
            ]
        )
    return ""


def test_image_tag_present_passes(clients: Clients, config: AppConfig) -> None:
    _repo(clients)
    assert verdicts(targets.image(make_ctx(clients, config)), "ecr-pull-permission") == {"pass"}


def test_image_digest_present_passes(clients: Clients, stage_file: StageFile) -> None:
    digest = _repo(clients)
    pinned = load_config(path=stage_file(image=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shop-api@{digest}"))
    assert verdicts(targets.image(make_ctx(clients, pinned)), "ecr-pull-permission") == {"pass"}


def test_missing_tag_fails_with_push_advice(clients: Clients, config: AppConfig) -> None:
    _repo(clients, tag="0.9.0")
    [finding] = targets.image(make_ctx(clients, config))
    assert str(finding.verdict) == "fail"
    assert "1.0.0 is not in shop-api" in finding.advice and "docker push" in finding.advice


def test_missing_repository_fails(clients: Clients, config: AppConfig) -> None:
    [finding] = targets.image(make_ctx(clients, config))
    assert str(finding.verdict) == "fail" and "repository shop-api does not exist" in finding.advice


def test_mutable_tags_warn(clients: Clients, config: AppConfig) -> None:
    _repo(clients, mutability="MUTABLE")
    assert verdicts(targets.image(make_ctx(clients, config)), "ecr-pull-permission") == {"pass", "warn"}


# -- eb-solution-stack-retired / eb-env-exists ------------------------------------------------------------------
# The schema refuses target eb for now, so these build the context with targets=("eb",) directly.


def test_solution_stack_still_offered_passes(clients: Clients, config: AppConfig) -> None:
    ctx = make_ctx(clients, config, targets=("eb",), eb_solution_stack=DOCKER_STACK)
    assert verdicts(targets.solution_stack_offered(ctx), "eb-solution-stack-retired") == {"pass"}


def test_retired_solution_stack_fails_and_names_the_newest(clients: Clients, config: AppConfig) -> None:
    ctx = make_ctx(clients, config, targets=("eb",), eb_solution_stack=RETIRED_STACK)
    [finding] = targets.solution_stack_offered(ctx)
    assert str(finding.verdict) == "fail"
    assert "no longer offered" in finding.advice and DOCKER_STACK in finding.advice


def test_solution_stack_not_configured_warns(clients: Clients, config: AppConfig) -> None:
    [finding] = targets.solution_stack_offered(make_ctx(clients, config, targets=("eb",)))
    assert str(finding.verdict) == "warn" and "eb.solution_stack" in finding.advice


def test_eb_checks_do_not_apply_without_the_eb_target(clients: Clients, config: AppConfig) -> None:
    ctx = make_ctx(clients, config, eb_solution_stack=RETIRED_STACK)
    assert targets.solution_stack_offered(ctx) == [] and targets.environment_clash(ctx) == []


def _environment(clients: Clients, name: str = "shop-dev", owner: str | None = None) -> None:
    eb = clients.client("elasticbeanstalk", REGION)
    eb.create_application(ApplicationName="shop")
    tags = [{"Key": "aws:cloudformation:stack-name", "Value": owner}] if owner else []
    eb.create_environment(ApplicationName="shop", EnvironmentName=name, SolutionStackName=DOCKER_STACK, Tags=tags)


def test_free_environment_name_passes(clients: Clients, config: AppConfig) -> None:
    _environment(clients, name="someone-else")  # moto ignores the name filter: the check must not
    assert verdicts(targets.environment_clash(make_ctx(clients, config, targets=("eb",))), "eb-env-exists") == {"pass"}


def test_environment_made_by_eb_create_clashes(clients: Clients, config: AppConfig) -> None:
    _environment(clients)
    [finding] = targets.environment_clash(make_ctx(clients, config, targets=("eb",)))
    assert str(finding.verdict) == "fail"
    assert "already exists" in finding.advice and "cdk import" in finding.advice


def test_environment_owned_by_the_stack_and_ready_passes(clients: Clients, config: AppConfig) -> None:
    _environment(clients, owner="shop-dev-eb")
    [finding] = targets.environment_clash(make_ctx(clients, config, targets=("eb",)))
    assert (str(finding.verdict), finding.advice) == ("pass", "owned by shop-dev-eb and Ready")


# -- region-mismatch (zones) ----------------------------------------------------------------------------------


def test_stage_zones_offered_pass(clients: Clients, config: AppConfig) -> None:
    findings = identity.zones_offered(make_ctx(clients, config))
    assert verdicts(findings, "region-mismatch") == {"pass"}


def test_zone_the_account_does_not_have_fails(clients: Clients, stage_file: StageFile) -> None:
    # eu-west-1c passes the offline letter check; moto's account offers a, b and c, so drop c from its answer.
    config = load_config(path=stage_file(network={"availability_zones": ["eu-west-1a", "eu-west-1c"]}))
    ctx = make_ctx(clients, config)
    ec2 = ctx.client("ec2")
    offered = [z for z in ec2.describe_availability_zones()["AvailabilityZones"] if z["ZoneName"] != "eu-west-1c"]
    ctx.client("ec2").describe_availability_zones = lambda **_: {"AvailabilityZones": offered}  # type: ignore[method-assign]
    (finding,) = identity.zones_offered(ctx)
    assert str(finding.verdict) == "fail" and "eu-west-1c (not offered)" in finding.advice
