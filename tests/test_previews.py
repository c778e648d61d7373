"""Preview stages (``pr-<number>``): made from config/preview.yaml (a base stage file + overrides), sized down,
dev-like where stages differ, never in prod's account ("preview-in-prod-account"), synthesized and destroyed with
the stage commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

import config.previews
from config import AppConfig, ConfigError, load_config, resolve_account
from config.loader import read_stage_file
from tests.conftest import ROOT
from tests.test_ops_destroy import Clients, Recorder
from tools import destroy, synth_stages

PREVIEW_ACCOUNT = "111122223333"
PROD_ACCOUNT = "123456789012"


def raw(stage: str) -> dict[str, object]:
    return dict(read_stage_file(ROOT / "config" / "stages" / f"{stage}.yaml"))


def refused(stage: str | None = None, *, path: Path | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        load_config(stage, path=path)
    return error.value


def test_a_preview_is_its_base_stage_sized_down() -> None:
    preview, dev = load_config("pr-123"), load_config("dev")
    assert preview.stage == "pr-123" and preview.account == PREVIEW_ACCOUNT
    assert preview.stack_name("data") == "shop-pr-123-data"
    assert preview.parameter_name("SECRET_KEY") == "/shop/pr-123/SECRET_KEY"
    # From the base: what the app is and where it runs.
    assert (preview.app, preview.region, preview.targets, preview.image) == (
        dev.app,
        dev.region,
        dev.targets,
        dev.image,
    )
    assert preview.settings == dev.settings and preview.network.cidr == dev.network.cidr
    assert preview.domain is None  # HTTP, like dev
    # Sized down, thrown away with the stage.
    assert (preview.ecs.min_tasks, preview.ecs.max_tasks) == (1, 2)
    assert (preview.eks.min_replicas, preview.eb.max_instances) == (1, 1)
    assert preview.database.deletion_protection is False and preview.database.multi_az is False
    assert preview.database.instance_class == "t4g.micro" and preview.cache.replicas == 0
    assert preview.log_retention_days == 3 and preview.network.flow_logs_retention_days == 3
    assert preview.network.nat_gateways == 1
    # It names its account: no fallback to whatever credentials are active.
    assert resolve_account(preview, environ={"CDK_DEFAULT_ACCOUNT": PROD_ACCOUNT}) == (preview, None)


def test_a_preview_stage_file_of_its_own_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "pr-5.yaml").write_text(yaml.safe_dump({**raw("dev"), "stage": "pr-5", "account": PREVIEW_ACCOUNT}))
    monkeypatch.setattr("config.STAGES_DIR", stages)
    assert load_config("pr-5").log_retention_days == 30  # the file as written, not config/preview.yaml


def test_make_synth_of_a_preview_is_offline(tmp_path: Path) -> None:
    """What `make synth STAGE=pr-123` runs, plus the longest names: pr-999999 of a 21-character app on every target."""
    longest = {
        **config.previews.preview_data("pr-999999")[1],
        "app": "a" * 21,
        "targets": ["ecs", "eb", "eks"],
        "operators": {"role_arns": [f"arn:aws:iam::{PREVIEW_ACCOUNT}:role/Admin"]},
    }
    (tmp_path / "pr-999999.yaml").write_text(yaml.safe_dump(longest, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_DEFAULT"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    result = subprocess.run(
        [
            sys.executable,
            "tools/synth_stages.py",
            "--out",
            str(tmp_path / "out"),
            "pr-123",
            str(tmp_path / "pr-999999.yaml"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "notice: account" not in result.stderr
    out = tmp_path / "out" / "pr-123"
    assert sorted(p.name for p in out.glob("*.template.json")) == [
        "shop-pr-123-data.template.json",
        "shop-pr-123-ecs.template.json",
        "shop-pr-123-network.template.json",
    ]
    data = json.loads((out / "shop-pr-123-data.template.json").read_text())
    (db,) = (r for r in data["Resources"].values() if r["Type"] == "AWS::RDS::DBInstance")
    assert db["Properties"]["DeletionProtection"] is False and db["Properties"]["MultiAZ"] is False
    assert db["DeletionPolicy"] == "Delete"  # not prod: no snapshot is kept
    ecs = json.loads((out / "shop-pr-123-ecs.template.json").read_text())
    (target,) = (r for r in ecs["Resources"].values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["Properties"]["MinCapacity"] == 1
    # Physical names derived from <app>-<stage> stay inside their limits for the longest preview name.
    names: list[tuple[str, str]] = []
    for template in (tmp_path / "out" / "pr-999999").glob("*.template.json"):
        for resource in json.loads(template.read_text())["Resources"].values():
            props = resource.get("Properties", {})
            names += [(key, props[key]) for key in ("RoleName", "AlarmName") if isinstance(props.get(key), str)]
    assert ("RoleName", "a" * 21 + "-pr-999999-operator") in names
    assert all(len(name) <= (64 if key == "RoleName" else 255) for key, name in names), names


def test_prod_rules_apply_to_prod_alone() -> None:
    # pr-123 keeps dev's ALLOWED_ORIGINS "*", no deletion protection, no standby, no replica, no domain: loads.
    preview = load_config("pr-123")
    assert preview.settings["ALLOWED_ORIGINS"] == "*" and preview.domain is None
    # The same choices in prod are refused, by the rules that always held there.
    prod = {
        **raw("prod"),
        "settings": {**raw("dev")["settings"]},  # type: ignore[dict-item]
        "database": {**raw("prod")["database"], "deletion_protection": False, "multi_az": False},  # type: ignore[dict-item]
        "cache": {"node_type": "cache.t4g.micro", "replicas": 0},
    }
    prod.pop("domain")
    with pytest.raises(ValidationError) as error:
        AppConfig.model_validate(prod)
    text = str(error.value)
    for rule in ("rds-storage-backup", "redis-auth-tls", "cors-wildcard", "tls-certificate"):
        assert f"[{rule}]" in text, rule


def test_a_preview_in_the_prod_account_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pr-7.yaml"
    path.write_text(yaml.safe_dump({**raw("dev"), "stage": "pr-7", "account": PROD_ACCOUNT}))
    error = refused(path=path)
    assert len(error.problems) == 1
    line = error.problems[0]
    assert line.startswith("[preview-in-prod-account] account: '123456789012' — the account of prod (")
    assert "set account:" in line and "config/preview.yaml" in line


def test_a_preview_without_an_account_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pr-7.yaml"
    path.write_text(yaml.safe_dump({**raw("dev"), "stage": "pr-7"}))
    (line,) = refused(path=path).problems
    assert line.startswith("[preview-in-prod-account] account: not set — a preview (pr-7) deploys to one named")


def test_a_preview_in_the_prod_account_is_refused_through_the_preview_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    preview = tmp_path / "preview.yaml"
    preview.write_text(yaml.safe_dump({"base": "staging", "overrides": {"cache": {"replicas": 0}}}))
    monkeypatch.setattr(config.previews, "PREVIEW_FILE", preview)
    error = refused("pr-8")
    assert error.source == f"{preview} (base config/stages/staging.yaml) as stage pr-8"
    assert [line.split(" — ")[0] for line in error.problems] == ["[preview-in-prod-account] account: '123456789012'"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"base": "qa"}, "[config] base: 'qa' in "),
        ({"base": "pr-1"}, "[config] base: 'pr-1' in "),
        ({"base": "dev", "overrides": {"stage": "prod"}}, "[config] overrides.stage: in "),
        ({"base": "dev", "colour": "blue"}, "[config] colour: in "),
    ],
)
def test_a_bad_preview_file_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: dict[str, object], expected: str
) -> None:
    preview = tmp_path / "preview.yaml"
    preview.write_text(yaml.safe_dump(spec))
    monkeypatch.setattr(config.previews, "PREVIEW_FILE", preview)
    (line,) = refused("pr-9").problems
    assert line.startswith(expected + str(preview)), line


def test_a_bad_override_names_the_preview_and_its_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preview = tmp_path / "preview.yaml"
    preview.write_text(
        yaml.safe_dump({"base": "dev", "overrides": {"account": PREVIEW_ACCOUNT, "ecs": {"min_tasks": 0}}})
    )
    monkeypatch.setattr(config.previews, "PREVIEW_FILE", preview)
    error = refused("pr-9")
    assert error.source == f"{preview} (base config/stages/dev.yaml) as stage pr-9"
    assert error.problems == ["[config] ecs.min_tasks: 0 — use a value >= 1"]


@pytest.mark.parametrize("name", ["pr-abc", "PR-1", "pr-0", "pr-01", "pr-1234567", "preview"])
def test_a_bad_preview_name_is_one_config_line(name: str) -> None:
    (line,) = refused(name).problems
    assert line.startswith("[config] stage: "), line
    assert "pr-<number>" in line


def test_a_stage_file_with_a_bad_stage_name_is_one_config_line(tmp_path: Path) -> None:
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump({**raw("dev"), "stage": "pr-abc"}))
    (line,) = refused(path=path).problems
    assert line.startswith("[config] stage: 'pr-abc' — use one of dev, staging, prod or a preview name pr-<number>")


def test_make_synth_names_previews_and_all_means_the_stage_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    assert synth_stages.stages_of(ROOT) == ["dev", "prod", "staging"]  # STAGE=all: no preview
    assert synth_stages.main(["--out", "/nonexistent", "PR-1"]) == 2
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "[config] STAGE: PR-1 — no config/stages/<stage>.yaml; known: dev, prod, staging, or a preview pr-<number>"
    ]
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "synth", "STAGE=pr-123"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "tools/synth_stages.py --out cdk.out pr-123" in dry.stdout


@pytest.mark.usefixtures("offline_aws")
def test_make_destroy_accepts_a_preview(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", PREVIEW_ACCOUNT)  # the caller is in the preview's account
    aws = Clients()
    aws.deploy("shop-pr-123-network")
    aws.deploy("shop-pr-123-data", {"DatabaseInstanceId": "shop-pr-123-db"}, protected=True)
    aws.deploy("shop-pr-123-ecs", {"LogGroups": "{}"})
    run = Recorder(aws, data="shop-pr-123-data")
    code = destroy.main(["--stage", "pr-123"], aws=aws, stdin=io.StringIO("pr-123\n"), run=run)
    err = capsys.readouterr().err
    assert code == destroy.DESTROYED, err
    assert run.commands == [["npx", "--no-install", "cdk", "destroy", "--all", "--force", "-c", "stage=pr-123"]]
    assert run.protected_at_start is False
    assert "==> destroyed shop-pr-123" in err
