"""Synth is offline for any account: no context lookup, no credentials, from a shell without the venv."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, synthesized


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_a_real_account_needs_no_lookup(stage: str) -> None:
    s = synthesized(stage)
    assert s.config.account == "123456789012"
    manifest = json.loads((Path(s.assembly.directory) / "manifest.json").read_text())
    assert "missing" not in manifest, manifest.get("missing")
    assert not (ROOT / "cdk.context.json").exists(), "a lookup wrote cdk.context.json: synth would need an account"


def test_readme_synth_works_from_a_plain_shell_without_credentials(tmp_path: Path) -> None:
    """`npx cdk synth -c stage=prod` with the system Node first on PATH, no venv activated, no AWS config."""
    npx = shutil.which("npx", path="/usr/local/bin:/usr/bin:/bin")
    if npx is None:
        pytest.skip("no system npx on this machine")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "CDK_DISABLE_VERSION_CHECK": "true"}
    out = tmp_path / "cdk.out"
    result = subprocess.run(
        [npx, "--no-install", "cdk", "synth", "--quiet", "--no-notices", "-c", "stage=prod", "-o", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "credentials" not in result.stderr.lower(), result.stderr[-2000:]
    assert (out / "shop-prod-data.template.json").exists()
