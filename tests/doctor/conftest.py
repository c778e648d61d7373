"""Fixtures of the doctor tests: fake credentials, a stage file, and a moto account with a healthy stage.

How AWS is faked, and why CloudFormation is not moto here: see ``doctor_world``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from doctor_world import DEV_STAGE, REGION, Clients, StageFile, World, build_world
from moto import mock_aws

from config import AppConfig, load_config


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Never reach a real account: fake keys, no profile, no instance metadata."""
    for key in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def stage_file(tmp_path: Path) -> StageFile:
    """``stage_file(**changes)`` writes dev.yaml with top-level keys replaced and returns its path. Targets
    default to none: the moto world deploys only network + data unless a test adds a target stack."""

    def write(**changes: Any) -> Path:
        data = yaml.safe_load(DEV_STAGE.read_text(encoding="utf-8"))
        data.update({"targets": [], **changes})
        path = tmp_path / "stage.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


@pytest.fixture
def config(stage_file: StageFile) -> AppConfig:
    return load_config(path=stage_file())


@pytest.fixture
def clients() -> Iterator[Clients]:
    with mock_aws():
        yield Clients()


@pytest.fixture
def world(clients: Clients) -> World:
    return build_world(clients)
