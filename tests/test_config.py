"""Stage files load; bad input gives one line per problem, `[<id>] <field.path>: <value> — <fix>`, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import PLACEHOLDER_ACCOUNT, ConfigError, load_config, resolve_account
from tests.conftest import ROOT, STAGES

DEV = yaml.safe_load((ROOT / "config" / "stages" / "dev.yaml").read_text())
PROD = yaml.safe_load((ROOT / "config" / "stages" / "prod.yaml").read_text())
STAGING = yaml.safe_load((ROOT / "config" / "stages" / "staging.yaml").read_text())


def problems(data: dict[str, Any] | str, tmp_path: Path) -> list[str]:
    path = tmp_path / "stage.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_config(path=path)
    return error.value.problems


def with_(base: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(base))
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return data


@pytest.mark.parametrize("stage", STAGES)
def test_stage_files_are_valid(stage: str) -> None:
    config = load_config(stage)
    assert config.stage == stage and config.region == "eu-west-1"


@pytest.mark.parametrize(
    ("base", "field", "value", "expected"),
    [
        (DEV, "colour", "blue", "[config] colour: 'blue' — unknown key"),
        (DEV, "network.nat_gateway", 1, "[config] network.nat_gateway: 1 — unknown key; remove it (known keys here:"),
        (DEV, "container_port", "eighty", "[config] container_port: 'eighty' —"),
        (DEV, "region", "eu-west-9", "[region-mismatch] region: 'eu-west-9' — 'eu-west-9' is not an AWS region"),
        (DEV, "image", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api:latest", "[ecr-pull-permission] image:"),
        (DEV, "image", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api", "[ecr-pull-permission] image:"),
        (DEV, "image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop-api:1.0.0", "[region-mismatch] image:"),
        (
            DEV,
            "network.availability_zones",
            ["eu-west-1a", "us-east-1b"],
            "[region-mismatch] network.availability_zones",
        ),
        (DEV, "health.readiness_path", "/health", "[deep-health-check] health:"),
        (DEV, "health.liveness_path", "health", "[alb-health-check-path] health.liveness_path: 'health'"),
        (DEV, "settings.SECRET_KEY", "hunter2", "[plaintext-secrets] settings.SECRET_KEY: <hidden: 7 chars"),
        (
            DEV,
            "settings.SECRET_KEY",
            {"secret": "generated", "length": 16},
            "[secret-key-weak] settings.SECRET_KEY.length: 16",
        ),
        (DEV, "settings.SENTRY_DSN_URL", "https://user:pw@sentry.io/1", "[plaintext-secrets]"),
        (DEV, "settings.DATABASE_URL", {"secret": "generated"}, "[database-url-format]"),
        (DEV, "settings.REDIS_URL", {"secret": "generated"}, "[redis-auth-tls]"),
        (DEV, "database.url_scheme", "postgres", "[database-url-format] database.url_scheme: 'postgres' — SQLAlchemy"),
        (DEV, "database.backup_retention_days", 3, "[rds-storage-backup] database.backup_retention_days: 3"),
        (DEV, "database.max_allocated_storage_gib", 20, "[rds-storage-backup] database:"),
        (DEV, "database.instance_class", "db.t4g.micro", "[config] database.instance_class: 'db.t4g.micro'"),
        (DEV, "network.nat_gateways", 0, None),  # endpoints still on: allowed
        (with_(DEV, "network.interface_endpoints", False), "network.nat_gateways", 0, "[private-egress-for-pulls]"),
        (DEV, "alarms", {}, "[alarm-5xx-misconfigured] alarms: {} — choose exactly one"),
        (
            DEV,
            "alarms",
            {"emails": ["a@example.com"], "none_reason": "nobody cares at all"},
            "[alarm-5xx-misconfigured]",
        ),
        (DEV, "alarms.topic_arn", None, None),
        (
            with_(DEV, "alarms", {}),
            "alarms.topic_arn",
            "arn:aws:sns:us-east-1:123456789012:t",
            "[region-mismatch] alarms.topic_arn",
        ),
        (DEV, "targets", ["ecs", "ecs"], "[config] targets:"),
        (
            PROD,
            "database.deletion_protection",
            False,
            "[rds-storage-backup] database.deletion_protection: False — prod requires true",
        ),
        (PROD, "database.multi_az", False, "[rds-storage-backup] database.multi_az: False"),
        (PROD, "settings.ALLOWED_ORIGINS", "*", "[cors-wildcard] settings.ALLOWED_ORIGINS: '*'"),
        (PROD, "domain", None, "[tls-certificate] domain: None — prod refuses plain HTTP"),
        (STAGING, "domain", None, "[tls-certificate] domain: None — staging refuses plain HTTP"),
        (
            PROD,
            "domain.certificate_arn",
            "arn:aws:acm:us-east-1:123456789012:certificate/x",
            "[region-mismatch] domain.certificate_arn",
        ),
    ],
)
def test_bad_input_is_refused_with_id_path_value_and_fix(base, field, value, expected, tmp_path: Path) -> None:
    data = with_(base, field, value)
    if expected is None:
        path = tmp_path / "ok.yaml"
        path.write_text(yaml.safe_dump(data))
        load_config(path=path)
        return
    lines = problems(data, tmp_path)
    assert any(line.startswith(expected) for line in lines), lines
    assert all(" — " in line and line.startswith("[") for line in lines)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    (line,) = problems("app: shop\nregion: [eu-west-1\n", tmp_path)
    assert line.startswith("[config-input-unsafe] ") and "line 3" in line and "invalid YAML" in line


def test_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as error:
        load_config("qa")
    assert "use one of: dev, prod, staging" in error.value.problems[0]


def test_account_falls_back_to_environment_then_placeholder() -> None:
    config = load_config("dev")
    assert resolve_account(config, {"CDK_DEFAULT_ACCOUNT": "123456789012"})[0].account == "123456789012"
    fallback, notice = resolve_account(config, {})
    assert fallback.account == PLACEHOLDER_ACCOUNT and notice and "placeholder" in notice


def _run_app(context: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": "/tmp/cdk-test-out"}
    return subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_app_prints_every_config_problem_without_traceback(tmp_path: Path) -> None:
    bad = with_(with_(PROD, "database.backup_retention_days", 3), "colour", "blue")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = _run_app({"config": str(path)})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "  [config] colour: 'blue' — unknown key" in result.stderr
    assert "  [rds-storage-backup] database.backup_retention_days: 3 — backups kept 3 days" in result.stderr


def test_secret_kind_words_match_the_schema() -> None:
    """The refusal printer shows `secret: provided` as a kind, not hidden: its word list is the schema's."""
    from typing import get_args

    from config.kinds import FROM_KINDS, SECRET_KINDS
    from config.schema import FromKind, SecretKind

    assert get_args(SecretKind) == SECRET_KINDS
    assert get_args(FromKind) == FROM_KINDS


def test_the_settings_handler_composes_every_kind_the_schema_declares() -> None:
    """The Lambda handler is standalone (its own table of kinds): it must compose exactly the schema's kinds."""
    import importlib.util
    from pathlib import Path

    from config.kinds import FROM_KINDS, SECRET_KINDS

    path = Path(__file__).parents[1] / "functions" / "secure_parameter" / "index.py"
    spec = importlib.util.spec_from_file_location("secure_parameter_kinds", path)
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    assert set(handler.COMPOSED) == set(SECRET_KINDS + FROM_KINDS) - {"generated", "provided"}


def test_deploy_deadline_follows_the_health_contract_and_never_undercuts_the_platform_defaults() -> None:
    from config.schema import HealthContract

    assert HealthContract().deploy_deadline_seconds == 600  # 2 x (120 + 60 + 2 x 15) = 420: the 600 s floor
    slow = HealthContract(boot_seconds=600, interval_seconds=30, timeout_seconds=5, healthy_threshold=5)
    assert slow.deploy_deadline_seconds == 2 * (120 + 600 + 5 * 30)
