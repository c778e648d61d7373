"""Synthesize an app and turn validation failures into plain lines (no jsii traceback)."""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import cx_api

_PATH_PREFIX = re.compile(r"^\s*\[[^\]]*\]\s")


class SynthRefused(Exception):
    """Synthesis refused by a guard, construct validation or cdk-nag; ``lines`` holds one problem each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def synthesize(app: cdk.App) -> cx_api.CloudAssembly:
    try:
        return app.synth()
    except RuntimeError as error:
        raise SynthRefused(problem_lines(str(error))) from None


def problem_lines(message: str) -> list[str]:
    """Split CDK's ``ValidationFailedWithErrors`` text into one line per error, guard ids first."""
    body = message.split("with the following errors:", 1)[-1]
    lines = [_PATH_PREFIX.sub("", line).strip() for line in body.splitlines()]
    return [line for line in lines if line] or [message.strip()]
