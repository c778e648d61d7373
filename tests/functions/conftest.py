"""Shared by the Lambda handler tests: load a handler module from functions/<name>/index.py inside a moto account."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType

import pytest
from moto import mock_aws

REGION = "eu-west-1"
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@pytest.fixture
def handler_module(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], AbstractContextManager[ModuleType]]:
    """``with handler_module("run_task") as mod:``: fake credentials, moto, and the handler freshly imported."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)

    @contextmanager
    def load(name: str) -> Iterator[ModuleType]:
        with mock_aws():
            spec = importlib.util.spec_from_file_location(f"{name}_index", FUNCTIONS / name / "index.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            yield module

    return load
