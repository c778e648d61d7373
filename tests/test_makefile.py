"""The Makefile: ``make help`` lists every target with its description, ``make`` alone still synthesizes, and
``make setup`` stops with one line when the Python is too old. Runs make itself (fast: nothing is installed; the
Python check runs against small fake interpreters, with a venv path that does not exist and is never created)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
# A rule of a target a person runs: a plain name, then ':' that is not ':=' (file targets contain / or $).
RULE = re.compile(r"^(?P<target>[a-zA-Z][a-zA-Z0-9_-]*)\s*:(?!=)(?P<rest>.*)$", re.MULTILINE)
TARGETS = [m["target"] for m in RULE.finditer(MAKEFILE)]
NO_VENV = ".venv-test-makefile-never-created"


def make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "PYTHON", "VENV")}
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def fake_python(tmp_path: Path, version: str) -> Path:
    """An executable that answers ``--version`` like CPython does, and nothing else."""
    path = tmp_path / f"python{version}"
    path.write_text(f'#!/bin/sh\necho "Python {version}"\n', encoding="utf-8")
    path.chmod(0o755)
    return path


def test_every_target_has_a_description() -> None:
    assert {"setup", "synth", "test", "logs", "destroy", "help", "python-check", "clean"} <= set(TARGETS)
    missing = [m["target"] for m in RULE.finditer(MAKEFILE) if "## " not in m["rest"]]
    assert missing == [], f"targets without a '## description' on their rule line: {missing}"


def test_help_lists_every_target_with_its_description() -> None:
    result = make("help")
    assert result.returncode == 0, result.stderr
    listed = {}
    for line in result.stdout.splitlines()[1:]:
        name, _, description = line.strip().partition(" ")
        listed[name] = description.strip()
    assert sorted(listed) == sorted(TARGETS)
    for match in RULE.finditer(MAKEFILE):
        assert listed[match["target"]] == match["rest"].split("## ", 1)[1].strip()
    assert "make alone runs synth" in result.stdout.splitlines()[0]


def test_make_alone_still_synthesizes() -> None:
    assert re.search(r"^\.DEFAULT_GOAL := synth$", MAKEFILE, re.MULTILINE)
    result = make("-n")  # prints what it would run, runs nothing
    assert result.returncode == 0, result.stderr
    assert "tools/synth_stages.py --out cdk.out dev" in result.stdout


def test_setup_stops_with_one_line_when_python_is_too_old(tmp_path: Path) -> None:
    old = fake_python(tmp_path, "3.10.12")
    result = make("setup", f"PYTHON={old}", f"VENV={NO_VENV}")
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == (
        f"==> {old} is 3.10.12; this project needs Python >= 3.11: install it and run make setup PYTHON=python3.11"
    )
    assert not (ROOT / NO_VENV).exists()


@pytest.mark.parametrize("version", ["3.11.0", "3.12.4", "3.14.0"])
def test_a_recent_enough_python_passes(tmp_path: Path, version: str) -> None:
    result = make("python-check", f"PYTHON={fake_python(tmp_path, version)}", f"VENV={NO_VENV}")
    assert result.returncode == 0, result.stderr
    assert not (ROOT / NO_VENV).exists()


@pytest.mark.parametrize("version", ["3.9.18", "2.7.18"])
def test_older_pythons_are_refused(tmp_path: Path, version: str) -> None:
    result = make("python-check", f"PYTHON={fake_python(tmp_path, version)}", f"VENV={NO_VENV}")
    assert result.returncode != 0 and f"is {version}; this project needs Python >= 3.11" in result.stderr


def test_a_missing_python_is_one_line(tmp_path: Path) -> None:
    result = make("python-check", f"PYTHON={tmp_path / 'no-such-python'}", f"VENV={NO_VENV}")
    assert result.returncode != 0
    assert (
        "no-such-python is not a Python interpreter (not found?); this project needs Python >= 3.11"
        in (result.stderr.splitlines()[0])
    )


def test_an_existing_venv_made_with_an_old_python_is_named(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake_python(tmp_path, "3.10.4").rename(venv / "bin" / "python")
    result = make("python-check", f"VENV={venv}", f"BIN={venv}/bin")
    assert result.returncode != 0
    assert result.stderr.splitlines()[0] == (
        f"==> {venv} has Python 3.10.4; this project needs Python >= 3.11: rm -rf {venv}, then make setup "
        "PYTHON=python3.11"
    )
