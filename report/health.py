"""Health checks per target: ELBv2 target groups, Elastic Beanstalk processes, ECS containers, k8s probes.

Kubernetes workloads (Deployment, StatefulSet, DaemonSet) contribute one row per startup/liveness/
readiness probe of each container, or a "no probes" row when a container has none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from report.assembly import K8sObject, Stack, eb_options, k8s_name
from report.intrinsics import as_list, fmt, number
from report.resolve import Resolver, construct_path

EB_PROCESS = "aws:elasticbeanstalk:environment:process:"
K8S_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
Properties = Mapping[str, Any]


@dataclass(frozen=True)
class HealthCheck:
    """A health check or probe of one target; values are rendered strings ("" when unset)."""

    target: str
    stack: str
    kind: str
    check: str
    port: str = ""
    protocol: str = ""
    matcher: str = ""
    interval: str = ""
    timeout: str = ""
    healthy: str = ""
    unhealthy: str = ""
    grace: str = ""


def _target_group(logical_id: str, properties: Properties, stack: Stack, resolver: Resolver) -> HealthCheck:
    matcher = properties.get("Matcher") or {}
    protocol = properties.get("HealthCheckProtocol", properties.get("Protocol"))
    enabled = properties.get("HealthCheckEnabled", True) not in (False, "false")
    return HealthCheck(
        target=resolver.name(properties, "Name", construct_path(stack, logical_id) or logical_id, stack),
        stack=stack.name,
        kind="ELBv2 target group" if enabled else "ELBv2 target group (disabled)",
        check=fmt(properties.get("HealthCheckPath", "")),
        port=fmt(properties.get("HealthCheckPort", "traffic-port")),
        protocol=fmt(protocol),
        matcher=fmt(matcher.get("HttpCode", matcher.get("GrpcCode", ""))),
        interval=number(properties.get("HealthCheckIntervalSeconds"), "s"),
        timeout=number(properties.get("HealthCheckTimeoutSeconds"), "s"),
        healthy=number(properties.get("HealthyThresholdCount")),
        unhealthy=number(properties.get("UnhealthyThresholdCount")),
    )


def _beanstalk(logical_id: str, properties: Properties, stack: Stack, resolver: Resolver) -> Iterator[HealthCheck]:
    name = resolver.name(properties, "EnvironmentName", construct_path(stack, logical_id) or logical_id, stack)
    options = eb_options(properties)
    for process in sorted({ns.removeprefix(EB_PROCESS) for ns, _ in options if ns.startswith(EB_PROCESS)}):

        def get(option: str, unit: str = "", process: str = process) -> str:
            return number(options.get((EB_PROCESS + process, option)), unit)

        yield HealthCheck(
            target=name,
            stack=stack.name,
            kind=f"EB process {process}",
            check=get("HealthCheckPath"),
            port=get("Port"),
            protocol=get("Protocol"),
            matcher=get("MatcherHTTPCode"),
            interval=get("HealthCheckInterval", "s"),
            timeout=get("HealthCheckTimeout", "s"),
            healthy=get("HealthyThresholdCount"),
            unhealthy=get("UnhealthyThresholdCount"),
        )
    url = options.get(("aws:elasticbeanstalk:application", "Application Healthcheck URL"))
    if url is not None:
        yield HealthCheck(target=name, stack=stack.name, kind="EB application", check=fmt(url))


def _command(command: Any) -> str:
    return " ".join(fmt(part) for part in as_list(command))


def _ecs(logical_id: str, properties: Properties, stack: Stack, resolver: Resolver) -> Iterator[HealthCheck]:
    family = construct_path(stack, logical_id) or resolver.name(properties, "Family", logical_id, stack)
    for container in as_list(properties.get("ContainerDefinitions")):
        check = container.get("HealthCheck")
        if isinstance(check, dict):
            yield HealthCheck(
                target=f"{family}/{fmt(container.get('Name'))}",
                stack=stack.name,
                kind="ECS container",
                check=_command(check.get("Command")),
                interval=number(check.get("Interval"), "s"),
                timeout=number(check.get("Timeout"), "s"),
                unhealthy=number(check.get("Retries")),
                grace=number(check.get("StartPeriod"), "s"),
            )


def _probe(target: str, kind: str, probe: Properties) -> HealthCheck:
    if "httpGet" in probe:
        http = probe["httpGet"]
        check, port, protocol = fmt(http.get("path", "/")), fmt(http.get("port")), fmt(http.get("scheme", "HTTP"))
    elif "tcpSocket" in probe:
        check, port, protocol = "tcp connect", fmt(probe["tcpSocket"].get("port")), "TCP"
    elif "grpc" in probe:
        check, port, protocol = fmt(probe["grpc"].get("service", "")), fmt(probe["grpc"].get("port")), "gRPC"
    else:
        check, port, protocol = _command((probe.get("exec") or {}).get("command")), "", "exec"
    return HealthCheck(
        target=target,
        stack="k8s",
        kind=kind,
        check=check,
        port=port,
        protocol=protocol,
        interval=number(probe.get("periodSeconds"), "s"),
        timeout=number(probe.get("timeoutSeconds"), "s"),
        healthy=number(probe.get("successThreshold")),
        unhealthy=number(probe.get("failureThreshold")),
        grace=number(probe.get("initialDelaySeconds"), "s"),
    )


def _k8s_checks(obj: K8sObject) -> Iterator[HealthCheck]:
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in as_list(pod.get("containers")):
        target = f"{obj.get('kind')} {k8s_name(obj)}/{container.get('name')}"
        probes = [
            (kind, container[f"{kind}Probe"])
            for kind in ("startup", "liveness", "readiness")
            if isinstance(container.get(f"{kind}Probe"), dict)
        ]
        if not probes:
            yield HealthCheck(target=target, stack="k8s", kind="k8s (no probes)", check="")
        for kind, probe in probes:
            yield _probe(target, f"k8s {kind}", probe)


def extract_health_checks(
    stacks: Sequence[Stack], k8s: Sequence[K8sObject] = (), resolver: Resolver | None = None
) -> list[HealthCheck]:
    """Target group, Elastic Beanstalk process, ECS container and Kubernetes probe health checks."""
    resolver = resolver or Resolver(stacks)
    checks: list[HealthCheck] = []
    for stack in stacks:
        for logical_id, properties in stack.of_type("AWS::ElasticLoadBalancingV2::TargetGroup"):
            checks.append(_target_group(logical_id, properties, stack, resolver))
        for logical_id, properties in stack.of_type("AWS::ElasticBeanstalk::Environment"):
            checks.extend(_beanstalk(logical_id, properties, stack, resolver))
        for logical_id, properties in stack.of_type("AWS::ECS::TaskDefinition"):
            checks.extend(_ecs(logical_id, properties, stack, resolver))
    for obj in k8s:
        if obj.get("kind") in K8S_WORKLOADS:
            checks.extend(_k8s_checks(obj))
    return sorted(checks, key=lambda check: (check.stack, check.target, check.kind))
