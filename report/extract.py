"""Extraction entry point: turn one cloud assembly (plus Kubernetes objects) into a :class:`Report`.

Every section has its own module of pure functions (templates in, frozen dataclasses out):
:mod:`report.network`, :mod:`report.secrets`, :mod:`report.health`, :mod:`report.alarms`,
:mod:`report.iam`, :mod:`report.stateful` and :mod:`report.resources`. This module adds the per-stack summary, runs
them all and computes the headline counts. Nothing here touches the file system.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from report.alarms import Alarm, extract_alarms
from report.assembly import K8sObject, Stack
from report.health import HealthCheck, extract_health_checks
from report.iam import Principal, Statement, extract_iam
from report.network import Edge, extract_reachability
from report.resolve import Resolver
from report.resources import AppResource, Grant, extract_resources
from report.routing import Route, extract_routes, resource_services
from report.secrets import SecretUse, extract_secrets
from report.services import ServiceRow, extract_services
from report.stateful import StatefulResource, extract_stateful

__all__ = [
    "Alarm",
    "AppResource",
    "Edge",
    "Grant",
    "HealthCheck",
    "Principal",
    "Report",
    "Route",
    "SecretUse",
    "StackSummary",
    "StatefulResource",
    "Statement",
    "build_report",
    "extract_alarms",
    "extract_health_checks",
    "extract_iam",
    "extract_reachability",
    "extract_resources",
    "extract_routes",
    "extract_secrets",
    "extract_stacks",
    "extract_stateful",
    "summarize",
]


@dataclass(frozen=True)
class StackSummary:
    """A stack with its environment and resource counts."""

    name: str
    stack_name: str
    account: str
    region: str
    resources: int
    types: dict[str, int]


@dataclass(frozen=True)
class Report:
    """Everything that goes into ``REVIEW.md`` / ``review.json``."""

    stacks: list[StackSummary]
    reachability: list[Edge]
    secrets: list[SecretUse]
    health_checks: list[HealthCheck]
    alarms: list[Alarm]
    iam: list[Principal]
    stateful: list[StatefulResource]
    services: list[ServiceRow] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    resources: list[AppResource] = field(default_factory=list)


def extract_stacks(stacks: Sequence[Stack]) -> list[StackSummary]:
    """Resource counts (total and per type) and environment of each stack."""
    summaries = []
    for stack in sorted(stacks, key=lambda item: item.name):
        types = Counter(str(resource.get("Type")) for resource in stack.resources.values())
        total = len(stack.resources)
        summaries.append(
            StackSummary(stack.name, stack.stack_name, stack.account, stack.region, total, dict(sorted(types.items())))
        )
    return summaries


def build_report(stacks: Sequence[Stack], k8s: Sequence[K8sObject] = ()) -> Report:
    """Run every extraction over one cloud assembly (plus optional Kubernetes objects)."""
    resolver = Resolver(stacks)
    return Report(
        stacks=extract_stacks(stacks),
        reachability=extract_reachability(stacks, resolver),
        secrets=extract_secrets(stacks, k8s, resolver),
        health_checks=extract_health_checks(stacks, k8s, resolver),
        alarms=extract_alarms(stacks, resolver, resource_services(stacks, resolver)),
        iam=extract_iam(stacks, resolver),
        stateful=extract_stateful(stacks),
        services=extract_services(stacks, k8s),
        routes=extract_routes(stacks, resolver),
        resources=extract_resources(stacks, resolver),
    )


def summarize(report: Report) -> dict[str, int]:
    """Headline counts for the top of the report."""
    wildcard_statements = {
        (statement.policy_stack, statement.policy, statement.index)
        for principal in report.iam
        for statement in principal.statements
        if statement.wildcards
    }
    counts = {
        "stacks": len(report.stacks),
        "resources": sum(stack.resources for stack in report.stacks),
        "reachability_edges": len(report.reachability),
        "internet_facing_ingress": sum(edge.internet for edge in report.reachability),
        "secret_settings": len(report.secrets),
        "secret_settings_consumer_cannot_read": sum(use.consumer_can_read is False for use in report.secrets),
        "health_checks": len(report.health_checks),
        "alarms": len(report.alarms),
        "alarms_without_actions": sum("no actions" in alarm.flags for alarm in report.alarms),
        "alarms_without_dimensions": sum("no dimensions" in alarm.flags for alarm in report.alarms),
        "iam_principals": len(report.iam),
        "wildcard_iam_statements": len(wildcard_statements),
        "stateful_resources": len(report.stateful),
    }
    if report.resources:  # a stage without resources: the counts (and the page) as before
        counts["app_resources"] = len(report.resources)
        counts["resource_grants"] = sum(len(resource.grants) for resource in report.resources)
    return counts
