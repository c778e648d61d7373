"""config-input-unsafe and friends: every input a user can produce by accident is one readable line, fast, without
a traceback or a secret; values that used to crash synth inside jsii are refused at load with their fix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import ConfigError, load_config
from config.loader import MAX_BYTES
from tests.conftest import ROOT

DEV_TEXT = (ROOT / "config" / "stages" / "dev.yaml").read_text()
DEV = yaml.safe_load(DEV_TEXT)
PROD = yaml.safe_load((ROOT / "config" / "stages" / "prod.yaml").read_text())
LINE = re.compile(r"^\[[a-z0-9-]+\] \S.*: .+ — .+$")


def refusal(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_config(path=path)
    lines = error.value.problems
    for line in lines:
        assert LINE.match(line), line
        assert "Traceback" not in line and "\n" not in line and len(line) < 400, line
    return lines


def write(tmp_path: Path, content: bytes | str) -> Path:
    path = tmp_path / "stage.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def changed(base: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(base))
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return data


# -- the file itself ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (DEV_TEXT.encode("utf-16"), "UTF-16 text — save the file as UTF-8"),
        (DEV_TEXT.replace("debug", "débug").encode("latin-1"), "line 22: byte 0xe9 is not UTF-8"),
        (DEV_TEXT.replace("container_port: 8000", "container_port: " + "9" * 5000), "a number with 5000 digits"),
        ("settings: " + "[" * 3000 + "]" * 3000 + "\n", "nested more than"),
        ('a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\nd: [*c,*c]\n', "YAML alias *a"),
        ("base: &base {app: shop}\nother:\n  <<: *base\n", "YAML alias *base"),
        (DEV_TEXT + "\x00", "a NUL character"),
        ("app: shop\nregion: [eu-west-1\n", "invalid YAML"),
    ],
    ids=["utf16", "latin1", "huge-number", "deep-nesting", "alias-bomb", "merge-key", "nul", "bad-yaml"],
)
def test_unreadable_files_are_one_line(tmp_path: Path, content: bytes | str, expected: str) -> None:
    (line,) = refusal(write(tmp_path, content))
    assert line.startswith("[config-input-unsafe] ") and expected in line, line


def test_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    (line,) = refusal(write(tmp_path, DEV_TEXT + "LOG_LEVEL_X: " + "x" * (MAX_BYTES + 10) + "\n"))
    assert line.startswith("[config-input-unsafe] ") and "more than 256 KiB" in line


def test_a_huge_value_is_shortened_in_the_message(tmp_path: Path) -> None:
    data = changed(DEV, "image", "x" * 200_000)
    (line,) = refusal(write(tmp_path, yaml.safe_dump(data, width=10**7)))
    assert line.startswith("[ecr-pull-permission] image: 'xxx") and "(200002 chars)" in line


def test_duplicate_keys_name_both_lines(tmp_path: Path) -> None:
    pasted = DEV_TEXT + "\ndatabase:\n  instance_class: t4g.small\n"
    (line,) = refusal(write(tmp_path, pasted))
    first = DEV_TEXT.splitlines().index("database:") + 1
    assert line.startswith("[config-input-unsafe] ") and f"'database' again (first on line {first})" in line
    assert f"line {len(DEV_TEXT.splitlines()) + 2}:" in line


# -- values: each used to crash synth inside jsii, or to synthesize something wrong ---------------------------


@pytest.mark.parametrize(
    ("dotted", "value", "expected"),
    [
        ("network.cidr", "", "[config] network.cidr: '' — not an IPv4 network"),
        ("network.cidr", "fd00::/48", "[config] network.cidr: 'fd00::/48' — the VPC is IPv4"),
        ("network.cidr", "10.0.0.0/28", "[config] network.cidr: '10.0.0.0/28' — 2 zones x (public /24 + app /20"),
        ("network.cidr", "10.0.0.0/33", "[config] network.cidr: '10.0.0.0/33' — not an IPv4 network"),
        ("network.cidr", "10.0.0.0/8", "[config] network.cidr: '10.0.0.0/8' — AWS VPCs are /16 at most"),
        ("network.cidr", "8.8.0.0/16", "[config] network.cidr: '8.8.0.0/16' — not a private range"),
        ("network.cidr", "10.0.0.0/19", "need at least a /18; use e.g. 10.0.0.0/18"),
        ("network.availability_zones", ["eu-west-1a", "eu-west-1y"], "availability_zones.1: 'eu-west-1y' — "),
        ("network.availability_zones", ["eu-west-1a", "eu-west-1a"], "a zone is listed twice"),
        ("network.availability_zones", ["eu-west-1a", "us-east-1b"], "[region-mismatch] network.availability_zones.1"),
        ("load_balancer.allowed_cidrs", ["999.999.999.999/99"], "[config] load_balancer.allowed_cidrs.0: '999."),
        ("load_balancer.allowed_cidrs", ["10.1.2.3/16"], "host bits are set; write the network: 10.1.0.0/16"),
        ("alarms", {"emails": ["a@example.com", "A@example.com"]}, "[config] alarms.emails: "),
        ("settings.PORT", "9000", "[reserved-setting-name] settings.PORT: '9000' — PORT is set by the deployment"),
        ("settings.AWS_REGION", "us-east-1", "[reserved-setting-name] settings.AWS_REGION:"),
        ("settings.AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", "[reserved-setting-name] settings.AWS_ACCESS_KEY_ID:"),
        ("log_retention_days", True, "[config] log_retention_days: True — write a whole number"),
        ("settings.FEATURE_X", True, "[config] settings.FEATURE_X: True — YAML reads yes/no/on/off"),
        ("container_port", "8000", "[config] container_port: '8000' — write a whole number without quotes"),
        ("database.engine_version", 17.6, "quote the value to keep it as text: '17.6'"),
        ("database.publicly_accessible", True, "[rds-public-access] database.publicly_accessible: True — the database"),
        ("alarms", None, "[alarm-5xx-misconfigured] alarms: not set — alarms are a required decision"),
    ],
)
def test_values_are_refused_with_id_path_value_and_fix(tmp_path: Path, dotted: str, value: Any, expected: str) -> None:
    lines = refusal(write(tmp_path, yaml.safe_dump(changed(DEV, dotted, value))))
    assert any(expected in line for line in lines), lines


def test_prod_and_staging_must_name_their_account(tmp_path: Path) -> None:
    lines = refusal(write(tmp_path, yaml.safe_dump(changed(PROD, "account", None))))
    expected = "[region-mismatch] account: not set — prod deploys to one named account"
    assert any(line.startswith(expected) for line in lines), lines


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRIPE_API_KEY", "sk_live_51HxRealLookingKey0123456789"),
        ("SMTP_PASS", "correct horse battery staple"),
        ("WEBHOOK", "https://hooks:s3cr3t-v4lue@example.com/x"),
        ("SOMETHING", "sk_live_51HxRealLookingKey0123456789"),
    ],
)
def test_a_refusal_never_prints_the_secret_it_refuses(tmp_path: Path, name: str, value: str) -> None:
    lines = refusal(write(tmp_path, yaml.safe_dump(changed(DEV, f"settings.{name}", value))))
    text = "\n".join(lines)
    assert f"[plaintext-secrets] settings.{name}: <hidden: {len(value)} chars" in text, text
    assert value not in text and value[:8] not in text.replace(f"settings.{name}", "")


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("database.engine_version", "sk_live_PropertyTestValue0123456789"),  # found by the property test
        ("database.instance_class", "x" * 100_000),
        ("cache.node_type", "postgres://admin:hunter2@db.example.com/app"),
    ],
)
def test_a_validator_quoting_the_value_never_prints_a_secret_or_a_huge_value(
    tmp_path: Path, dotted: str, value: str
) -> None:
    (line,) = refusal(write(tmp_path, yaml.safe_dump(changed(DEV, dotted, value), width=10**7)))
    assert value not in line and len(line) < 400, line
    if not value.startswith("x"):  # the secret-looking ones: not even a prefix
        assert value[:12] not in line, line


@pytest.mark.parametrize("name", ["A\nB", "x" * 5000, "lower"])
def test_a_malformed_setting_name_is_one_short_line(tmp_path: Path, name: str) -> None:
    (line,) = refusal(write(tmp_path, yaml.safe_dump(changed(DEV, "settings", {name: "v"}))))
    assert line.startswith("[config] settings.") and "UPPER_SNAKE_CASE" in line and len(line) < 300, line


def test_a_secret_next_to_another_mistake_is_not_printed_either(tmp_path: Path) -> None:
    data = changed(changed(DEV, "settings.STRIPE_API_KEY", "sk_live_abcdefghijklmnop"), "settings.lower", "x")
    text = "\n".join(refusal(write(tmp_path, yaml.safe_dump(data))))
    assert "sk_live_abcdefghijklmnop" not in text and "[config] settings.lower" in text


# -- the CLI: -c stage=, no traceback -------------------------------------------------------------------------


def _app(context: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": "/tmp/cdk-input-test-out"}
    return subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("context", "expected"), [({"stage": ""}, "[config] stage: '' — pass -c stage="), ({"stage": "qa"}, "no file")]
)
def test_empty_or_unknown_stage_is_refused(context: dict[str, str], expected: str) -> None:
    result = _app(context)
    assert result.returncode == 1 and expected in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_build_error_becomes_one_line_with_an_id() -> None:
    from stacks.synth import build_failure

    cross = RuntimeError(
        "Resolution error: CannotUseCrossEnvironment: Stack shop-dev-data\n    at Stack.resolve (/tmp/jsii/x.js:1:1)"
    )
    line = build_failure(cross)
    assert (
        line.startswith("[region-mismatch] RuntimeError: Resolution error: CannotUseCrossEnvironment")
        and "\n" not in line
    )
    other = build_failure(ValueError("something nobody expected"))
    assert LINE.match(other) and other.startswith("[config] ValueError: something nobody expected — ")


def test_a_short_secret_shows_its_length_only() -> None:
    """A hash of a short value could be reversed with a dictionary of common passwords."""
    from config.redact import hidden

    assert hidden("12345678") == "<hidden: 8 chars>"
    assert hidden("x" * 40).startswith("<hidden: 40 chars, sha256 ")
