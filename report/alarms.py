"""CloudWatch alarms with their condition and actions; alarms without actions or dimensions are flagged.

Metric-math alarms (``Metrics``) are summarised from their ``MetricStat`` entries and expressions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from report.assembly import Stack
from report.intrinsics import as_list, fmt, number
from report.resolve import Resolver, construct_path

COMPARISONS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside band",
    "LessThanLowerThreshold": "< band",
    "GreaterThanUpperThreshold": "> band",
}


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm; ``flags`` lists review findings (no actions, actions disabled, no dimensions)."""

    stack: str
    name: str
    namespace: str
    metric: str
    dimensions: tuple[str, ...]
    statistic: str
    threshold: str
    comparison: str
    period: str
    evaluation_periods: str
    treat_missing_data: str
    actions: tuple[str, ...]
    flags: tuple[str, ...]
    service: str = ""  # the service whose target group, ECS service or EB environment the alarm watches


def _flags(properties: Mapping[str, Any], actions: Sequence[str], dimensions: Sequence[str]) -> tuple[str, ...]:
    flags = []
    if not actions:
        flags.append("no actions")
    elif properties.get("ActionsEnabled") in (False, "false"):
        flags.append("actions disabled")
    if not dimensions:
        flags.append("no dimensions")
    return tuple(flags)


def _service(
    properties: Mapping[str, Any],
    metrics: Sequence[Mapping[str, Any]],
    stack: Stack,
    resolver: Resolver,
    services: Mapping[tuple[str, str], str],
) -> str:
    """The service an alarm watches: the one owning a resource its dimensions point at (a target group, an ECS
    service, an EB environment), else the one its name carries (``<app>-<stage>-<target>-<service>-<metric>``)."""
    owners = set()
    for metric in metrics:
        for dimension in as_list(metric.get("Dimensions")):
            found = resolver.target(dimension.get("Value"), stack) if isinstance(dimension, dict) else None
            if found is not None and (found.stack.name, found.logical_id) in services:
                owners.add(services[(found.stack.name, found.logical_id)])
    if len(owners) == 1:
        return owners.pop()
    name = fmt(properties.get("AlarmName"))
    named = {service for (stack_name, _), service in services.items() if stack_name == stack.name}
    by_name = {service for service in named if f"-{service}-" in name}
    return by_name.pop() if len(by_name) == 1 else ""


def _alarm(
    logical_id: str,
    properties: Mapping[str, Any],
    stack: Stack,
    resolver: Resolver,
    services: Mapping[tuple[str, str], str],
) -> Alarm:
    queries = [item for item in as_list(properties.get("Metrics")) if isinstance(item, dict)]
    stats = [item["MetricStat"] for item in queries if isinstance(item.get("MetricStat"), dict)]
    metrics = [properties, *(stat.get("Metric") or {} for stat in stats)]  # plain alarm fields, then math inputs
    first_stat = stats[0] if stats else {}
    dimensions = sorted({fmt(dim.get("Name")) for metric in metrics for dim in as_list(metric.get("Dimensions"))})
    names = sorted({fmt(metric["MetricName"]) for metric in metrics if metric.get("MetricName")})
    expressions = [fmt(item["Expression"]) for item in queries if item.get("Expression")]
    actions = tuple(resolver.display(action, stack) for action in as_list(properties.get("AlarmActions")))
    statistic = properties.get("Statistic", properties.get("ExtendedStatistic", first_stat.get("Stat")))
    return Alarm(
        stack=stack.name,
        name=resolver.name(properties, "AlarmName", construct_path(stack, logical_id) or logical_id, stack),
        namespace=", ".join(sorted({fmt(metric["Namespace"]) for metric in metrics if metric.get("Namespace")})),
        metric=", ".join([*names, *expressions]),
        dimensions=tuple(dimensions),
        statistic=fmt(statistic),
        threshold=fmt(properties.get("Threshold", properties.get("ThresholdMetricId"))),
        comparison=fmt(properties.get("ComparisonOperator")),
        period=number(properties.get("Period", first_stat.get("Period")), "s"),
        evaluation_periods=fmt(properties.get("EvaluationPeriods")),
        treat_missing_data=fmt(properties.get("TreatMissingData", "missing")),
        actions=actions,
        flags=_flags(properties, actions, dimensions),
        service=_service(properties, metrics, stack, resolver, services),
    )


def extract_alarms(
    stacks: Sequence[Stack],
    resolver: Resolver | None = None,
    services: Mapping[tuple[str, str], str] | None = None,
) -> list[Alarm]:
    """CloudWatch alarms with their condition and actions; alarms without actions/dimensions are flagged.
    ``services`` (``(stack, logical id) -> service``, see :func:`report.routing.resource_services`) names the
    service an alarm watches."""
    resolver = resolver or Resolver(stacks)
    alarms = [
        _alarm(logical_id, properties, stack, resolver, services or {})
        for stack in stacks
        for logical_id, properties in stack.of_type("AWS::CloudWatch::Alarm")
    ]
    return sorted(alarms, key=lambda alarm: (alarm.stack, alarm.name))
