"""secret-read-permission: iam.simulate_principal_policy is not implemented in moto, so the IAM client is a
botocore Stubber (which also checks each request against the service model); SSM metadata is moto."""

from __future__ import annotations

from doctor_world import (
    REGION,
    World,
    allow_parameters,
    deny_master_secrets,
    make_ctx,
    simulation,
    with_ecs,
)

from config import AppConfig
from doctor.checks import run_checks, secrets
from doctor.model import Check, Verdict

CHECK = Check("secret-read-permission", "consumer read permissions", secrets.read_permission)


def test_consumer_that_reads_every_parameter_passes(world: World, config: AppConfig) -> None:
    with_ecs(world)
    iam = world.clients.stub("iam")
    allow_parameters(iam, world.consumer_role)
    deny_master_secrets(iam, world)
    [finding] = secrets.read_permission(make_ctx(world.clients, config, targets=("ecs",)))
    assert (finding.resource, finding.verdict) == (world.consumer_role, Verdict.PASS)
    assert finding.advice == "ecs consumer may read all 4 parameter(s)"
    iam.assert_no_pending_responses()


def test_parameter_the_consumer_cannot_read_fails(world: World, config: AppConfig) -> None:
    with_ecs(world)
    iam = world.clients.stub("iam")
    allow_parameters(iam, world.consumer_role, JWT_SECRET_KEY="implicitDeny")
    deny_master_secrets(iam, world)
    [finding] = secrets.read_permission(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.FAIL
    assert "cannot ssm:GetParameters on /shop/dev/JWT_SECRET_KEY (implicitDeny)" in finding.advice


def test_consumer_that_may_read_the_master_secrets_warns(world: World, config: AppConfig) -> None:
    with_ecs(world)
    iam = world.clients.stub("iam")
    allow_parameters(iam, world.consumer_role)
    deny_master_secrets(iam, world, decision="allowed")
    findings = secrets.read_permission(make_ctx(world.clients, config, targets=("ecs",)))
    assert [f.verdict for f in findings] == [Verdict.WARN, Verdict.WARN]
    assert "secretsmanager:GetSecretValue on arn:aws:secretsmanager:" in findings[0].advice


def test_customer_key_is_simulated_for_kms_decrypt(world: World, config: AppConfig) -> None:
    key = world.clients.client("kms", REGION).create_key()["KeyMetadata"]["Arn"]
    world.clients.client("ssm", REGION).put_parameter(
        Name="/shop/dev/SECRET_KEY", Value="x" * 64, Type="SecureString", KeyId=key, Overwrite=True
    )
    with_ecs(world)
    iam = world.clients.stub("iam")
    allow_parameters(iam, world.consumer_role)
    iam.add_response(
        "simulate_principal_policy",
        simulation("kms:Decrypt", {key: "implicitDeny"}),
        {"PolicySourceArn": world.consumer_role, "ActionNames": ["kms:Decrypt"], "ResourceArns": [key]},
    )
    deny_master_secrets(iam, world)
    [finding] = secrets.read_permission(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.FAIL and f"cannot kms:Decrypt on {key}" in finding.advice


def test_access_denied_to_the_simulation_is_a_warn(world: World, config: AppConfig) -> None:
    with_ecs(world)
    iam = world.clients.stub("iam")
    iam.add_client_error(
        "simulate_principal_policy",
        service_error_code="AccessDenied",
        http_status_code=403,
        service_message="not authorized to perform: iam:SimulatePrincipalPolicy",
    )
    [finding] = run_checks(make_ctx(world.clients, config, targets=("ecs",)), [CHECK])
    assert finding.verdict is Verdict.WARN
    assert finding.advice.startswith("could not run: access denied for SimulatePrincipalPolicy")


def test_target_stack_without_consumer_output_is_not_checked(world: World, config: AppConfig) -> None:
    world.clients.add_stack("shop-dev-ecs", {"ComputeSecurityGroupId": world.compute_sg})
    [finding] = secrets.read_permission(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.WARN and "has no output ConsumerRoleArn" in finding.advice


def test_no_target_means_nothing_to_check(world: World, config: AppConfig) -> None:
    assert secrets.read_permission(make_ctx(world.clients, config)) == []
