"""What checks take and return: the context of one run, and one finding per verdict."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from config.schema import AppConfig

TARGET_PURPOSES = ("ecs", "eb", "eks")


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One row of the report: ``check_id`` is a catalogue id, ``advice`` says what was seen and what to do (one
    line); ``detail`` is optional evidence under it, one item a line (e.g. masked log lines), in JSON only when set."""

    check_id: str
    resource: str
    verdict: Verdict
    advice: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        found = {
            "check_id": self.check_id,
            "resource": self.resource,
            "verdict": str(self.verdict),
            "advice": self.advice,
        }
        return {**found, "detail": self.detail} if self.detail else found


def ok(check_id: str, resource: str, advice: str, detail: str = "") -> Finding:
    return Finding(check_id, resource, Verdict.PASS, advice, detail)


def warn(check_id: str, resource: str, advice: str, detail: str = "") -> Finding:
    return Finding(check_id, resource, Verdict.WARN, advice, detail)


def fail(check_id: str, resource: str, advice: str, detail: str = "") -> Finding:
    return Finding(check_id, resource, Verdict.FAIL, advice, detail)


class NotChecked(Exception):
    """A check cannot run (its stack or output is missing); the runner turns it into a ``warn``."""


class ClientSource(Protocol):
    """Where checks get boto3 clients; ``default_region`` is the caller's own (profile / env) region."""

    @property
    def default_region(self) -> str | None: ...

    def client(self, service: str, region: str) -> Any: ...


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    user_id: str

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1] if self.arn.count(":") >= 5 else "aws"

    @property
    def kind(self) -> str:
        """``assumed-role``, ``user``, ``root`` or ``other``, read from the ARN."""
        resource = self.arn.split(":", 5)[-1]
        if resource == "root":
            return "root"
        if resource.startswith("assumed-role/"):
            return "assumed-role"
        if resource.startswith("user/"):
            return "user"
        return "other"


@dataclass(frozen=True)
class StackInfo:
    """A stack of the stage as found in the stage's region; ``status`` None means it is not there."""

    name: str
    status: str | None
    outputs: Mapping[str, str] = field(default_factory=dict)
    found_in: str | None = None  # another region where a stack of that name exists
    error: str | None = None  # why the stack could not be read (e.g. access denied)


@dataclass(frozen=True)
class Context:
    """Everything a check needs. Build it directly in tests; the CLI builds it from the stage file."""

    config: AppConfig
    aws: ClientSource
    region: str
    identity: Identity | None = None
    stacks: Mapping[str, StackInfo] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    eb_solution_stack: str | None = None

    def client(self, service: str, region: str | None = None) -> Any:
        return self.aws.client(service, region or self.region)

    @property
    def prefix(self) -> str:
        return f"{self.config.app}-{self.config.stage}"

    @property
    def elsewhere(self) -> str | None:
        """The caller's default region when it differs from the stage's: where misplaced things usually are."""
        region = self.aws.default_region
        return region if region and region != self.region else None

    def stack(self, purpose: str) -> StackInfo:
        """The deployed stack ``<app>-<stage>-<purpose>``; raises ``NotChecked`` when it is not there."""
        name = self.config.stack_name(purpose)
        info = self.stacks.get(name)
        if info is None or info.status is None:
            reason = info.error if info and info.error else f"not deployed in {self.region}"
            raise NotChecked(f"stack {name} {reason}")
        return info

    def output(self, purpose: str, key: str) -> str:
        info = self.stack(purpose)
        value = info.outputs.get(key)
        if not value:
            raise NotChecked(f"stack {info.name} has no output {key}; update the stack")
        return value

    def target_outputs(self, key: str) -> dict[str, str]:
        """``{purpose: value}`` of output ``key`` for every enabled target whose stack is deployed and has it."""
        found: dict[str, str] = {}
        for purpose in self.targets:
            info = self.stacks.get(self.config.stack_name(purpose))
            if info is not None and info.status is not None and info.outputs.get(key):
                found[purpose] = info.outputs[key]
        return found


@dataclass(frozen=True)
class Check:
    """One diagnosis: ``title`` is shown while it runs and names the resource if it cannot run."""

    check_id: str
    title: str
    run: Callable[[Context], list[Finding]]
