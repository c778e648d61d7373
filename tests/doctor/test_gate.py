"""make deploy / make diff start with doctor.gate: the stage banner, then a refusal for another account."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from moto import mock_aws

from doctor.gate import OK, REFUSED, main
from tests.conftest import ROOT

PROD = yaml.safe_load((ROOT / "config" / "stages" / "prod.yaml").read_text())


def test_the_stage_account_passes_and_the_banner_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():  # moto's caller is account 123456789012, the one prod.yaml pins
        assert main(["--stage", "prod"]) == OK
    err = capsys.readouterr().err
    assert "==> stage prod of shop: account 123456789012, region eu-west-1" in err and "==> caller arn:aws:" in err


def test_credentials_of_another_account_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump({**PROD, "account": "111111111111"}))
    with mock_aws():
        assert main(["--config", str(path)]) == REFUSED
    err = capsys.readouterr().err
    assert "[region-mismatch] account: 123456789012 — the credentials are for account 123456789012" in err
    assert "pins 111111111111" in err


def test_dev_without_an_account_deploys_to_the_callers_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        assert main(["--stage", "dev"]) == OK
    assert "account 123456789012 (the caller's: the stage file names none)" in capsys.readouterr().err


def test_no_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    assert main(["--stage", "prod"]) == REFUSED
    err = capsys.readouterr().err
    assert "[local-credentials]" in err and "Traceback" not in err
