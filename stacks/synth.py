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


# Errors CDK raises while building or resolving stacks that a stage file (or a hand edit) can cause -> (id, fix).
_KNOWN_FAILURES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (
        re.compile(r"CannotUseCrossEnvironment|[Cc]ross.?(stack|environment) reference|different (region|environment)"),
        "region-mismatch",
        "every stack of a stage is in the stage's account and region; build it with the stage's env",
    ),
    (
        re.compile(r"availability ?zones?", re.IGNORECASE),
        "config",
        "check network.availability_zones: distinct zones of the stage region",
    ),
    (
        re.compile(r"cidr|netmask|subnet", re.IGNORECASE),
        "config",
        "check network.cidr: a private IPv4 /16 (or a range that holds every subnet tier)",
    ),
)


def build_failure(error: BaseException) -> str:
    """One ``[id] <where>: <what> — <fix>`` line for an exception raised while building or synthesizing."""
    text = " ".join(str(error).split()) or type(error).__name__
    first = text.split(" at ", 1)[0][:200]
    for pattern, rule, fix in _KNOWN_FAILURES:
        if pattern.search(text):
            return f"[{rule}] {type(error).__name__}: {first} — {fix}"
    return (
        f"[config] {type(error).__name__}: {first} — a value of the stage file could not be built; "
        "fix the setting the message names (run with CDK_DEBUG=1 for the full trace)"
    )
