"""Secrets lifecycle: provided values, connection parts, rotation of the database and Redis credentials, the
settings that follow each rotation, and the roll-out of every service that reads a changed value (per target)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config import ConfigError
from tests.conftest import Synthesized, stage_config, synthesized
from tests.test_ecs import build
from tests.test_guards import assert_refused
from tests.test_services import build_example


def _of_type(s: Synthesized, stack: Any, cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in s.template(stack)["Resources"].items() if v["Type"] == cfn_type}


@pytest.fixture(scope="module")
def example() -> Synthesized:
    return synthesized("services")


# -- the stage file -----------------------------------------------------------------------------------------------


def test_provided_secrets_and_connection_parts_are_parameter_settings() -> None:
    config = stage_config("services")
    kinds = config.parameter_settings
    assert kinds["STRIPE_API_KEY"] == "provided" and kinds["DB_HOST"] == "database_host"
    assert kinds["DB_USER"] == "database_user" and kinds["DB_PASSWORD"] == "database_password"
    job = next(s for s in config.workloads if s.name == "nightly-report")
    # A job that reads only the parts is still admitted to PostgreSQL (and reads exactly those parameters).
    assert job.uses_database and not job.uses_cache
    assert set(job.secrets) == {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"}


def _load(settings: dict[str, Any], database: dict[str, Any] | None = None) -> list[str]:
    """The refusal lines of the dev stage file with ``settings`` / ``database`` keys added, read like a user's."""
    import tempfile

    import yaml

    from config import load_config

    base = yaml.safe_load(open("config/stages/dev.yaml"))  # noqa: SIM115 - a test reading a small file
    base["settings"] = {**base.get("settings", {}), **settings}
    base["database"] = {**base.get("database", {}), **(database or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(base, handle)
    with pytest.raises(ConfigError) as refused:
        load_config(path=handle.name)
    return refused.value.problems


@pytest.mark.parametrize(
    ("settings", "database", "expected"),
    [
        ({"X": {"from": "database_hots"}}, {}, "[config] settings.X.from: 'database_hots' — use one of"),
        ({"X": {"secret": "provided", "length": 40}}, {}, "a provided secret has no length"),
        ({"X": {"secret": "provded"}}, {}, "[config] settings.X.secret: <hidden: 7 chars> — use one of: generated"),
        ({"X": {"secret": "provded"}}, {}, "(did you mean provided?)"),
        ({"X": {"from": "database_hots"}}, {}, "(did you mean database_host?)"),
        ({"X": {"from": "database_host", "secret": "generated"}}, {}, "one key only"),
        ({}, {"app_username": "app"}, "must differ from the master user 'app'"),
        ({}, {"rotation_days": 0}, "[config] database.rotation_days: 0"),
    ],
)
def test_wrong_secret_declarations_are_refused_in_one_line(
    settings: dict[str, Any], database: dict[str, Any], expected: str
) -> None:
    problems = _load(settings, database)
    assert any(expected in line for line in problems), problems


def test_a_secret_looking_plain_value_suggests_provided_and_make_secret() -> None:
    (line,) = _load({"STRIPE_API_KEY": "sk_live_0123456789abcdef0123"})
    assert line.startswith("[plaintext-secrets] settings.STRIPE_API_KEY: <hidden: 28 chars, sha256 ")
    assert "{secret: provided}" in line and "make secret STAGE=<stage> NAME=STRIPE_API_KEY" in line
    assert "sk_live" not in line


# -- parameters: provided, parts, composed ------------------------------------------------------------------------


def test_provided_secret_is_checked_never_written_and_parts_are_string_kinds(example: Synthesized) -> None:
    params = {
        p["Properties"]["Name"]: p["Properties"]
        for p in _of_type(example, example.stacks.data, "Custom::SecureParameter").values()
    }
    stripe = params["/shop/staging/STRIPE_API_KEY"]
    assert stripe["Kind"] == "provided" and "SecretArn" not in stripe and "Length" not in stripe
    assert "make secret" in stripe["Description"]
    app_secret = json.dumps(params["/shop/staging/DB_PASSWORD"]["SecretArn"])
    assert "DatabaseUsersAppCredentials" in app_secret  # the app user's secret, never the master's
    for name in ("DATABASE_URL", "DB_USER", "DB_PASSWORD"):
        assert json.dumps(params[f"/shop/staging/{name}"]["SecretArn"]) == app_secret
    host = params["/shop/staging/DB_HOST"]
    assert host["Kind"] == "database_host" and "SecretArn" not in host  # the endpoint, not a credential
    assert "Endpoint.Address" in json.dumps(host["Host"])


def test_a_stage_with_a_provided_secret_synthesizes_and_each_service_reads_its_own(example: Synthesized) -> None:
    assert example.stacks.ecs is not None
    tasks = _of_type(example, example.stacks.ecs, "AWS::ECS::TaskDefinition")

    def secrets_of(prefix: str) -> set[str]:
        (task,) = [t for k, t in tasks.items() if k.startswith(prefix)]
        return {s["Name"] for c in task["Properties"]["ContainerDefinitions"] for s in c.get("Secrets", [])}

    assert {"STRIPE_API_KEY", "SMTP_PASSWORD", "DB_PASSWORD", "DB_USER", "DB_HOST"} <= secrets_of("ServiceTask")
    assert secrets_of("WorkloadsWorkerWorker") == {"DATABASE_URL", "CELERY_BROKER_URL", "SMTP_PASSWORD"}
    assert secrets_of("WorkloadsJobNightlyReport") == {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"}


def test_consumers_carry_the_settings_revision(example: Synthesized) -> None:
    """How each service's values are made is fingerprinted into the service (ECS/EB environment, pod template):
    a deploy that changes it (e.g. DATABASE_URL moving to the app user) rolls the service out by itself."""
    assert example.stacks.ecs is not None and example.stacks.eb is not None and example.stacks.eks is not None
    tasks = _of_type(example, example.stacks.ecs, "AWS::ECS::TaskDefinition")
    revisions = {
        k: e["Value"]
        for k, t in tasks.items()
        for c in t["Properties"]["ContainerDefinitions"]
        for e in c.get("Environment", [])
        if e["Name"] == "SETTINGS_REVISION"
    }
    web = next(v for k, v in revisions.items() if k.startswith("ServiceTask"))
    worker = next(v for k, v in revisions.items() if k.startswith("WorkloadsWorkerWorker"))
    assert len(web) == 12 and web != worker  # each reads different parameters
    eb = json.dumps(example.template(example.stacks.eb))
    assert f'"OptionName": "SETTINGS_REVISION", "Value": "{web}"' in eb
    # EKS: the pod template carries its plain settings and the same secret revision (pods read both at start).
    from constructs.compute_target import runtime_environment
    from k8s.props import pod_revision

    pod = pod_revision(runtime_environment(example.config, example.config.web), web)
    assert "settings-revision" in json.dumps(example.template(example.stacks.eks)) and pod in json.dumps(
        example.template(example.stacks.eks)
    )
    assert pod_revision({**runtime_environment(example.config, example.config.web), "LOG_LEVEL": "debug"}, web) != pod
    # A change in how one parameter is made changes the revision of exactly its readers.
    secrets = example.stacks.data.secrets
    before = secrets.revision(["DATABASE_URL"])
    secrets.parameters["DATABASE_URL"].properties["Scheme"] = "postgresql"
    try:
        assert secrets.revision(["DATABASE_URL"]) != before
        assert secrets.revision(["REDIS_URL"]) == secrets.revision(["REDIS_URL"])
    finally:
        secrets.parameters["DATABASE_URL"].properties["Scheme"] = "postgresql+asyncpg"


# -- rotation -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_database_and_redis_credentials_rotate_on_the_stage_schedule(stage: str) -> None:
    s = synthesized(stage)
    schedules = _of_type(s, s.stacks.data, "AWS::SecretsManager::RotationSchedule")
    by_secret = {json.dumps(v["Properties"]["SecretId"]): v["Properties"] for v in schedules.values()}
    app = next(p for k, p in by_secret.items() if "DatabaseUsersAppCredentials" in k)
    master = next(p for k, p in by_secret.items() if "DatabaseCredentials" in k and "Users" not in k)
    cache = next(p for k, p in by_secret.items() if "CacheAuthToken" in k)
    # Dual-user for the app (the login it holds stays valid until the next rotation); single-user for the master,
    # whom no app process holds; Redis with our two-token function.
    assert app["HostedRotationLambda"]["RotationType"] == "PostgreSQLMultiUser"
    assert "DatabaseCredentials" in json.dumps(app["HostedRotationLambda"]["MasterSecretArn"])
    assert master["HostedRotationLambda"]["RotationType"] == "PostgreSQLSingleUser"
    assert "CacheRotation" in json.dumps(cache["RotationLambdaARN"])
    for props in (app, master, cache):
        assert props["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
        assert props["RotateImmediatelyOnUpdate"] is False
    template = s.template(s.stacks.data)
    assert "AWS::SecretsManager-2024-09-16" in json.dumps(template.get("Transform"))
    (function,) = [
        f for k, f in _of_type(s, s.stacks.data, "AWS::Lambda::Function").items() if k.startswith("CacheRotation")
    ]
    assert "REPLICATION_GROUP_ID" in function["Properties"]["Environment"]["Variables"]


def test_the_app_users_exist_before_anything_is_composed_from_them(example: Synthesized) -> None:
    resources = example.template(example.stacks.data)["Resources"]
    (bootstrap_id,) = [k for k, v in resources.items() if v["Type"] == "Custom::DatabaseUser"]
    bootstrap = resources[bootstrap_id]["Properties"]
    assert "DatabaseUsersAppCredentials" in json.dumps(bootstrap["UserSecretArn"])
    assert bootstrap["Database"] == "app"
    for key, resource in resources.items():
        if resource["Type"] == "Custom::SecureParameter" and resource["Properties"]["Kind"].startswith("database_"):
            assert bootstrap_id in resource.get("DependsOn", []), key
        if resource["Type"] == "AWS::SecretsManager::RotationSchedule" and "Database" in key:
            assert bootstrap_id in resource.get("DependsOn", []), key


def test_settings_follow_each_rotation(example: Synthesized) -> None:
    """Secret Label Updated (AWSCURRENT moved: a rotation finished) re-runs the settings handler on exactly the
    parameters composed from that secret, with the properties the deploy used."""
    rules = _of_type(example, example.stacks.data, "AWS::Events::Rule")
    refresh = {
        json.dumps(r["Properties"]["EventPattern"]["resources"]): r["Properties"]
        for r in rules.values()
        if r["Properties"]["EventPattern"].get("detail-type") == ["Secret Label Updated"]
    }
    assert len(refresh) == 2
    for resources, props in refresh.items():
        assert props["EventPattern"]["detail"] == {"labelUpdated": ["AWSCURRENT"]}
        (target,) = props["Targets"]
        text = json.dumps(target["Input"])
        if "DatabaseUsersAppCredentials" in resources:
            for name in ("DATABASE_URL", "DB_USER", "DB_PASSWORD", "DB_HOST"):
                assert f"/shop/staging/{name}" in text
            assert "REDIS_URL" not in text and "STRIPE_API_KEY" not in text
        else:
            assert "CacheAuthToken" in resources
            assert "/shop/staging/REDIS_URL" in text and "/shop/staging/CELERY_BROKER_URL" in text
            assert "DATABASE_URL" not in text


# -- roll-out on change, per target ------------------------------------------------------------------------------


def _rollout(s: Synthesized, stack: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    (rule,) = [
        r["Properties"]
        for r in _of_type(s, stack, "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"].get("detail-type") == ["Parameter Store Change"]
    ]
    (function,) = [
        f["Properties"]
        for f in _of_type(s, stack, "AWS::Lambda::Function").values()
        if "ROLLOUT" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    return rule, function


def test_ecs_services_roll_out_when_a_parameter_they_read_changes(example: Synthesized) -> None:
    assert example.stacks.ecs is not None
    rule, function = _rollout(example, example.stacks.ecs)
    assert rule["EventPattern"]["detail"] == {
        "name": [{"prefix": "/shop/staging/"}],
        "operation": ["Create", "Update"],
    }
    rollout = json.dumps(function["Environment"]["Variables"]["ROLLOUT"])
    for name in ("STRIPE_API_KEY", "DATABASE_URL", "SMTP_PASSWORD"):
        assert f"/shop/staging/{name}" in rollout
    services = _of_type(example, example.stacks.ecs, "AWS::ECS::Service")
    assert len(services) == 2  # web and worker; the jobs and the migration step read theirs at each run
    for logical_id in services:
        assert logical_id in rollout
    policies = json.dumps(_of_type(example, example.stacks.ecs, "AWS::IAM::Policy"))
    assert "ecs:UpdateService" in policies


def test_elastic_beanstalk_redeploys_and_eks_reloads(example: Synthesized) -> None:
    assert example.stacks.eb is not None and example.stacks.eks is not None
    _, function = _rollout(example, example.stacks.eb)
    rollout = json.dumps(function["Environment"]["Variables"]["ROLLOUT"])
    assert '\\"eb\\"' in rollout and "BeanstalkEnvironment" in rollout
    roles = json.dumps(_of_type(example, example.stacks.eb, "AWS::IAM::Role"))
    assert "AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy" in roles
    eks = example.template(example.stacks.eks)["Resources"]
    (reloader,) = [v["Properties"] for v in eks.values() if v["Type"] == "Custom::AWSCDK-EKS-HelmChart"
                   and v["Properties"]["Chart"] == "reloader"]  # fmt: skip
    assert reloader["Namespace"] == "app" and reloader["Version"] == "2.2.12"
    assert '"watchGlobally":false' in json.dumps(reloader["Values"]).replace("\\", "")
    manifests = json.dumps([v for v in eks.values() if v["Type"] == "Custom::AWSCDK-EKS-KubernetesResource"])
    assert manifests.count("secret.reloader.stakater.com/reload") == 2  # web and worker Deployments


# -- the guard --------------------------------------------------------------------------------------------------


def test_a_service_missing_from_the_rollout_is_refused() -> None:
    app, stacks, _ = build()
    assert stacks.ecs is not None
    rollout = stacks.ecs.node.find_child("SecretRollout")
    rollout.readers["ecs"]["readers"].pop("/shop/dev/DATABASE_URL")  # type: ignore[attr-defined]
    assert_refused(app, "secret-rollout-stale", "ecs web reads /shop/dev/DATABASE_URL", "SecretRollout of shop-dev-ecs")


def test_an_eb_environment_missing_from_the_rollout_is_refused() -> None:
    app, stacks = build_example(["eb"])
    assert stacks.eb is not None
    rollout = stacks.eb.node.find_child("SecretRollout")
    rollout.readers["eb"]["readers"].clear()  # type: ignore[attr-defined]
    assert_refused(app, "secret-rollout-stale", "eb web reads /shop/staging/STRIPE_API_KEY")


def test_a_deployment_without_the_reload_annotation_or_reloader_is_refused(guarded_stack) -> None:  # type: ignore[no-untyped-def]
    import aws_cdk as cdk

    app, stack = guarded_stack()
    external = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "web-secrets", "namespace": "app"},
        "spec": {"target": {"name": "web-secrets"}, "data": [{"secretKey": "K", "remoteRef": {"key": "/shop/dev/K"}}]},
    }
    container = {"name": "app", "image": "x:1", "envFrom": [{"secretRef": {"name": "web-secrets"}}]}
    for index, notes in enumerate(({}, {"secret.reloader.stakater.com/reload": "web-secrets"})):
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"web{index}", "namespace": "app", "annotations": notes},
            "spec": {"template": {"spec": {"containers": [container]}}},
        }
        cdk.CfnResource(
            stack,
            f"Manifest{index}",
            type="Custom::AWSCDK-EKS-KubernetesResource",
            properties={"Manifest": json.dumps([external, deployment])},
        )
    line = assert_refused(app, "secret-rollout-stale", "Deployment/web0", "takes web-secrets from an ExternalSecret")
    assert "Deployment/web1" not in line
    assert_refused(app, "secret-rollout-stale", "Deployment/web1", "but no Reloader chart in Test")


# -- the review ---------------------------------------------------------------------------------------------------


def test_the_review_secrets_map_shows_kind_rotation_and_readers(example: Synthesized) -> None:
    from pathlib import Path

    from report.assembly import load_assembly
    from report.extract import build_report

    report = build_report(load_assembly(Path(example.assembly.directory)))
    rows = {(u.setting, u.kind, u.rotation) for u in report.secrets}
    assert ("STRIPE_API_KEY", "provided", "make secret") in rows
    assert ("DATABASE_URL", "composed (database_url)", "every 30 days") in rows
    assert ("DB_USER", "part (database_user)", "every 30 days") in rows
    assert ("SECRET_KEY", "generated", "never (generated once)") in rows
