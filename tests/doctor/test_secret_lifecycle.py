"""A provided secret's life as doctor sees it: stored (provided-secret-missing), then rolled out to every service
that reads it (secret-rollout-stale). Metadata only: no value is ever read or printed.

SSM is moto. ECS is moto behind ``EcsWithStartTimes`` (moto has no task ``startedAt`` and ignores ``serviceName``
in ``list_tasks``); Elastic Beanstalk's ``describe_instances_health`` is not in moto, so Stubber answers for EB.
"Now" is ``secrets.clock``, set per test relative to the parameter's ``LastModifiedDate``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from doctor_world import (
    DEV_STAGE,
    REGION,
    SECRET_VALUE,
    EcsWithStartTimes,
    StageFile,
    World,
    ecs_service,
    make_ctx,
    rows,
    verdicts,
    with_ecs,
)

from config import AppConfig, load_config
from doctor.checks import POST_DEPLOY, PREFLIGHT, run_checks, secrets
from doctor.cli import main
from doctor.model import Verdict

NAME = "STRIPE_API_KEY"
PARAMETER = f"/shop/dev/{NAME}"
DEV_SETTINGS = yaml.safe_load(DEV_STAGE.read_text(encoding="utf-8"))["settings"]


@pytest.fixture
def provided(stage_file: StageFile) -> AppConfig:
    """dev with ``STRIPE_API_KEY: {secret: provided}``, a ``{from: database_host}`` part, and a worker."""
    return load_config(
        path=stage_file(
            settings={**DEV_SETTINGS, NAME: {"secret": "provided"}, "DB_HOST": {"from": "database_host"}},
            services={
                "web": {"kind": "web"},
                "worker": {"kind": "worker", "command": ["celery", "worker"], "settings": ["LOG_LEVEL", NAME]},
            },
        )
    )


def store(world: World, name: str = PARAMETER, kind: str = "SecureString") -> datetime:
    """Put (or overwrite) a parameter the way make secret does; returns its LastModifiedDate."""
    ssm = world.clients.client("ssm", REGION)
    ssm.put_parameter(Name=name, Value=SECRET_VALUE, Type=kind, Overwrite=True)
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    return secrets._utc(found[0]["LastModifiedDate"])


def now_is(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    monkeypatch.setattr(secrets, "clock", lambda: when)


def ecs(world: World) -> EcsWithStartTimes:
    client = world.clients.overrides[("ecs", REGION)]
    assert isinstance(client, EcsWithStartTimes)
    return client


def restart_web(world: World, at: datetime) -> None:
    """The web service's running tasks started ``at``."""
    for arn in ecs(world).started:
        ecs(world).started[arn] = at


# -- provided-secret-missing --------------------------------------------------------------------------------------


def test_missing_provided_secret_fails_with_the_make_secret_command(world: World, provided: AppConfig) -> None:
    [finding] = secrets.provided_secrets(make_ctx(world.clients, provided))
    assert (finding.check_id, finding.resource, finding.verdict) == (
        "provided-secret-missing",
        PARAMETER,
        Verdict.FAIL,
    )
    assert f"`make secret STAGE=dev NAME={NAME}`" in finding.advice
    assert finding.advice.startswith("missing in eu-west-1: the deploy fails")


def test_provided_secret_is_a_preflight_and_a_post_deploy_check(world: World, provided: AppConfig) -> None:
    for checks in (PREFLIGHT, POST_DEPLOY):
        assert "provided-secret-missing" in {c.check_id for c in checks}
        findings = run_checks(make_ctx(world.clients, provided), [c for c in checks if c.check_id.startswith("prov")])
        assert verdicts(findings, "provided-secret-missing", PARAMETER) == {"fail"}


def test_stored_provided_secret_passes(world: World, provided: AppConfig) -> None:
    store(world)
    [finding] = secrets.provided_secrets(make_ctx(world.clients, provided))
    assert finding.verdict is Verdict.PASS
    assert finding.advice.startswith("SecureString, key alias/aws/ssm, version 1, last changed 20")
    assert finding.advice.endswith("(value not read)") and SECRET_VALUE not in finding.advice


def test_provided_secret_stored_as_a_plain_string_fails(world: World, provided: AppConfig) -> None:
    store(world, kind="String")
    [finding] = secrets.provided_secrets(make_ctx(world.clients, provided))
    assert finding.verdict is Verdict.FAIL
    assert f"is a String (stored in plain text): delete it (`aws ssm delete-parameter --name {PARAMETER}" in (
        finding.advice
    )
    assert f"then `make secret STAGE=dev NAME={NAME}`" in finding.advice


def test_a_stage_without_provided_secrets_has_no_row(world: World, config: AppConfig) -> None:
    assert secrets.provided_secrets(make_ctx(world.clients, config)) == []


def test_securestring_check_leaves_provided_ones_to_their_own_check(world: World, provided: AppConfig) -> None:
    """ssm-securestring-missing covers what the deploy writes: secrets and {from: ...} parts, not provided ones."""
    findings = secrets.secure_strings(make_ctx(world.clients, provided))
    assert rows(findings, "ssm-securestring-missing", NAME) == []
    assert verdicts(findings, "ssm-securestring-missing", "/DB_HOST") == {"fail"}  # the deploy did not write it
    assert "missing in eu-west-1" in rows(findings, "ssm-securestring-missing", "/DB_HOST")[0].advice


def test_a_connection_part_is_a_string_by_design(world: World, provided: AppConfig) -> None:
    store(world, "/shop/dev/DB_HOST", kind="String")
    findings = secrets.secure_strings(make_ctx(world.clients, provided))
    [part] = rows(findings, "ssm-securestring-missing", "/DB_HOST")
    assert part.verdict is Verdict.PASS
    assert part.advice.startswith("String ({from: database_host}: a part of the connection, not a secret)")
    assert verdicts(findings, "ssm-securestring-missing", "/SECRET_KEY") == {"pass"}


# -- secret-rollout-stale: ECS --------------------------------------------------------------------------------------


def test_ecs_task_started_before_the_change_fails(
    world: World, config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = store(world, "/shop/dev/SECRET_KEY")
    restart_web(world, changed - timedelta(hours=2))
    now_is(monkeypatch, changed + timedelta(hours=1))
    with_ecs(world)
    [finding] = secrets.rollout_stale(make_ctx(world.clients, config, targets=("ecs",)))
    assert (finding.check_id, finding.resource, finding.verdict) == ("secret-rollout-stale", "ecs web", Verdict.FAIL)
    advice = finding.advice
    assert advice.startswith(f"ECS service {world.web_service} (cluster {world.cluster}): 1 of 1 running task(s)")
    assert f"started before /shop/dev/SECRET_KEY changed {secrets._when(changed)} (version 2)" in advice
    assert f"(oldest {secrets._when(changed - timedelta(hours=2))})" in advice
    assert "logs of the secret roll-out function of stack shop-dev-ecs (its failures: alarm " in advice
    assert (
        f"`aws ecs update-service --cluster {world.cluster} --service {world.web_service} --force-new-deployment "
        "--region eu-west-1`" in advice
    )
    assert SECRET_VALUE not in advice


def test_ecs_task_started_after_the_change_passes(
    world: World, config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = store(world, "/shop/dev/SECRET_KEY")
    restart_web(world, changed + timedelta(minutes=3))
    now_is(monkeypatch, changed + timedelta(hours=1))
    with_ecs(world)
    [finding] = secrets.rollout_stale(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.PASS
    assert f"all 1 running task(s) started after /shop/dev/SECRET_KEY changed {secrets._when(changed)}" in (
        finding.advice
    )


def test_within_the_grace_period_it_is_rolling_out(
    world: World, config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = store(world, "/shop/dev/SECRET_KEY")
    restart_web(world, changed - timedelta(hours=2))
    now_is(monkeypatch, changed + timedelta(minutes=5))
    with_ecs(world)
    [finding] = secrets.rollout_stale(make_ctx(world.clients, config, targets=("ecs",)))
    assert finding.verdict is Verdict.WARN
    assert finding.advice.startswith(f"rolling out: ECS service {world.web_service}")
    assert f"re-run `make doctor STAGE=dev` after {secrets._when(changed + timedelta(minutes=15))}" in finding.advice


def test_a_worker_is_found_by_its_app_service_and_judged_alone(
    world: World, provided: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker reads only STRIPE_API_KEY; web reads it too, plus the deploy's secrets."""
    store(world, "/shop/dev/DB_HOST", kind="String")
    ecs_service(world.clients, world.cluster, "shop-dev-worker-1A2B", "worker")
    changed = store(world)
    restart_web(world, changed + timedelta(minutes=2))  # the roll-out replaced web ...
    ecs(world).start_tasks(
        world.cluster, "shop-dev-worker-1A2B", at=changed - timedelta(days=1), count=2
    )  # ... not this
    now_is(monkeypatch, changed + timedelta(hours=1))
    with_ecs(world)
    findings = secrets.rollout_stale(make_ctx(world.clients, provided, targets=("ecs",)))
    assert [(f.resource, f.verdict) for f in findings] == [("ecs web", Verdict.PASS), ("ecs worker", Verdict.FAIL)]
    assert findings[1].advice.startswith(
        f"ECS service shop-dev-worker-1A2B (cluster {world.cluster}): 2 of 2 running task(s) started before "
        f"{PARAMETER} changed"
    )
    assert "--service shop-dev-worker-1A2B --force-new-deployment" in findings[1].advice


def test_a_service_whose_parameters_are_all_missing_is_not_judged(
    world: World, provided: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ecs_service(world.clients, world.cluster, "shop-dev-worker-1A2B", "worker")
    with_ecs(world)
    findings = secrets.rollout_stale(make_ctx(world.clients, provided, targets=("ecs",)))
    [worker] = rows(findings, "secret-rollout-stale", "ecs worker")
    assert worker.verdict is Verdict.WARN and "none of the parameters it reads exists" in worker.advice


# -- secret-rollout-stale: Elastic Beanstalk and EKS ---------------------------------------------------------------


def _eb(world: World, *, deployed: list[datetime | None], updated: datetime) -> Any:
    """Stubbed EB answers: the environment (running version v7, last updated ``updated``) and its instances."""
    world.clients.add_stack("shop-dev-eb", {"EnvironmentName": "shop-dev", "ApplicationVersion": "v7"})
    stub = world.clients.stub("elasticbeanstalk")
    stub.add_response(
        "describe_environments",
        {
            "Environments": [
                {"EnvironmentName": "shop-dev", "Status": "Ready", "VersionLabel": "v7", "DateUpdated": updated}
            ]
        },
        {"EnvironmentNames": ["shop-dev"], "IncludeDeleted": False},
    )
    stub.add_response(
        "describe_instances_health",
        {
            "InstanceHealthList": [
                {"InstanceId": f"i-0{n}", **({"Deployment": {"DeploymentTime": t, "VersionLabel": "v7"}} if t else {})}
                for n, t in enumerate(deployed)
            ]
        },
        {"EnvironmentName": "shop-dev", "AttributeNames": ["Deployment"]},
    )
    return stub


def test_eb_instance_deployed_before_the_change_fails(
    world: World, config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = store(world, "/shop/dev/JWT_SECRET_KEY")
    stub = _eb(world, deployed=[changed + timedelta(minutes=4), changed - timedelta(days=2)], updated=changed)
    now_is(monkeypatch, changed + timedelta(hours=1))
    [finding] = secrets.rollout_stale(make_ctx(world.clients, config, targets=("eb",)))
    assert (finding.resource, finding.verdict) == ("eb web", Verdict.FAIL)
    assert finding.advice.startswith(
        "EB environment shop-dev: 1 of 2 running instance(s) started before /shop/dev/JWT_SECRET_KEY changed"
    )
    assert "alarm shop-dev-eb-secret-rollout-failed" in finding.advice
    assert (
        "`aws elasticbeanstalk update-environment --environment-name shop-dev --version-label v7 --region eu-west-1`"
        in finding.advice
    )
    stub.assert_no_pending_responses()


def test_eb_without_instance_deployment_times_uses_the_environment_update(
    world: World, config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = store(world, "/shop/dev/JWT_SECRET_KEY")
    _eb(world, deployed=[None], updated=changed + timedelta(minutes=6))
    now_is(monkeypatch, changed + timedelta(hours=1))
    [finding] = secrets.rollout_stale(make_ctx(world.clients, config, targets=("eb",)))
    assert finding.verdict is Verdict.PASS
    assert f"(judged by the environment's last update {secrets._when(changed + timedelta(minutes=6))})" in (
        finding.advice
    )


def test_eks_is_not_checkable_and_says_how_to_check(world: World, config: AppConfig) -> None:
    [finding] = secrets.rollout_stale(make_ctx(world.clients, config, targets=("eks",)))
    assert (finding.check_id, finding.resource, finding.verdict) == ("secret-rollout-stale", "eks web", Verdict.WARN)
    assert finding.advice.startswith("not checkable through AWS APIs: External Secrets refreshes")
    assert "Reloader restarts the Deployments" in finding.advice
    assert (
        "`kubectl -n app get externalsecret`" in finding.advice and "`kubectl -n app get pods` (AGE)" in finding.advice
    )


def test_no_value_reaches_the_output(
    world: World, stage_file: StageFile, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole CLI, both modes, with a stale ECS service and a provided secret stored as a plain String."""
    changed = store(world, kind="String")
    restart_web(world, changed - timedelta(hours=2))
    now_is(monkeypatch, changed + timedelta(hours=1))
    with_ecs(world)
    path = stage_file(settings={**DEV_SETTINGS, NAME: {"secret": "provided"}}, targets=["ecs"])
    seen = ""
    for extra in ([], ["--preflight"]):
        assert main(["--config", str(path), "--json", *extra], aws=world.clients) == 1
        out, err = capsys.readouterr()
        seen += out + err
    assert f"make secret STAGE=dev NAME={NAME}" in seen
    assert f"started before {PARAMETER} changed" in seen  # the stale web service is reported ...
    assert SECRET_VALUE not in seen and SECRET_VALUE[:12] not in seen  # ... and no value
