"""cfn-lint over every synthesized template of every stage: 0 errors, 0 warnings (ignores in .cfnlintrc.yaml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, STAGES, synthesized


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_is_clean(stage: str) -> None:
    s = synthesized(stage)
    files = [s.assembly.get_stack_by_name(stack.stack_name).template_full_path for stack in s.stacks.all()]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--config-file", str(ROOT / ".cfnlintrc.yaml"), *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
