"""Routing: which requests reach which web service, per load balancer listener.

A stage with several web services puts them behind one ALB per target: each gets a target group and a listener
rule (host headers, path patterns, priority), the default service a catch-all ``/*`` rule, and the listener's own
default action answers 404. This module reads that generically from the templates:

* ``AWS::ElasticLoadBalancingV2::Listener`` default actions and ``ListenerRule`` resources (ECS, EKS);
* the service behind a target group: the ``AWS::ECS::Service`` that registers into it (its task's
  ``APP_SERVICE``), or the Kubernetes ``TargetGroupBinding`` applied by the stack (its ``APP_SERVICE`` setting,
  else the Kubernetes Service it binds); else the target group's construct path;
* Elastic Beanstalk environments on a shared ALB: ``aws:elbv2:listener:<port>`` ``Rules`` and the
  ``aws:elbv2:listenerrule:<name>`` options (PathPatterns, HostHeaders, Priority, Process), with the process's
  health check.

:func:`resource_services` names the web service behind target groups, ECS services and EB environments, so that
alarms can be listed under their service; :func:`role_services` names the service that runs as an IAM role (ECS
task role, Elastic Beanstalk instance role, EKS IRSA role), so that grants can be listed under their service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from report.assembly import Stack, eb_options, props
from report.intrinsics import as_list, flatten, fmt, intrinsic
from report.resolve import Resolver, construct_path

ELBV2 = "AWS::ElasticLoadBalancingV2::"
EB_RULE = "aws:elbv2:listenerrule:"
EB_LISTENER = "aws:elbv2:listener:"
EB_PROCESS = "aws:elasticbeanstalk:environment:process:"
EB_SETTINGS = "aws:elasticbeanstalk:application:environment"
EKS_MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"
DEFAULT = "default"  # the priority of a listener's default action
EB_DEFAULT = "EB default"  # Elastic Beanstalk's own rule of an environment on a shared ALB


@dataclass(frozen=True)
class Route:
    """One listener rule or listener default action and where it sends the request.

    ``priority`` is the rule's priority, ``default`` for the listener's default action (what no rule takes) or
    ``EB default`` for the rule Elastic Beanstalk keeps for an environment on a shared ALB (its CNAME).
    ``service`` is the web service the request reaches ("" for a fixed response or redirect), ``group`` the
    security group of that service's tasks when it has one of its own (for the reachability diagram).
    """

    stack: str
    load_balancer: str
    listener: str
    priority: str
    hosts: tuple[str, ...]
    paths: tuple[str, ...]
    conditions: tuple[str, ...]
    action: str
    service: str
    target_group: str
    health_path: str
    health_port: str
    group: str = ""

    @property
    def rule(self) -> bool:
        """A listener rule the stage declares (not the listener's default action nor EB's own rule)."""
        return self.priority not in (DEFAULT, EB_DEFAULT)

    @property
    def match(self) -> str:
        """The requests this rule takes, as a reviewer reads them: ``/api/*``, ``admin.example.com``,
        ``shop.example.com/api/*``; ``everything else`` for a listener's default action."""
        if self.priority == DEFAULT:
            return "everything else"
        if self.priority == EB_DEFAULT:
            return f"{self.service or 'the environment'}'s own CNAME"
        if self.hosts and self.paths:
            parts = [f"{host}{path}" for host in self.hosts for path in self.paths]
        else:
            parts = [*self.hosts, *self.paths]
        text = ", ".join(parts) or "any request"
        return f"{text} if {' and '.join(self.conditions)}" if self.conditions else text

    @property
    def destination(self) -> str:
        """The service the request reaches, else what the listener answers (``404``, ``redirect to …``)."""
        return self.service or self.action


@dataclass(frozen=True)
class _Owner:
    service: str
    group: str


def has_rules(routes: Sequence[Route]) -> bool:
    """Whether a stage routes by rules (several web services), as opposed to one listener forwarding to one."""
    return any(route.rule for route in routes)


def _priority_key(route: Route) -> tuple[int, int, str]:
    if route.priority.isdigit():
        return (0, int(route.priority), route.match)
    return (1 if route.priority == EB_DEFAULT else 2, 0, route.match)


def _manifest_objects(value: Any) -> list[Mapping[str, Any]]:
    """The Kubernetes objects of a manifest property (a JSON string, tokens flattened to ``${…}``)."""
    fn = intrinsic(value)
    text = flatten(value) if fn is not None and fn[0] == "Fn::Join" else value
    if not isinstance(text, str):
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return []
    return [item for item in as_list(parsed) if isinstance(item, dict)]


def _app_service(service: Mapping[str, Any], stack: Stack, resolver: Resolver) -> str:
    """The ``APP_SERVICE`` setting of an ECS service's task definition ("" when it has none)."""
    task = resolver.target(service.get("TaskDefinition"), stack)
    containers = as_list(props(task.definition).get("ContainerDefinitions")) if task is not None else []
    for container in containers:
        for item in as_list(container.get("Environment") if isinstance(container, dict) else None):
            if isinstance(item, dict) and item.get("Name") == "APP_SERVICE":
                return fmt(item.get("Value"))
    return ""


def _target_groups(stack: Stack, resolver: Resolver) -> dict[str, _Owner]:
    """Target group logical ID -> the web service that registers into it (ECS service or TargetGroupBinding)."""
    owners: dict[str, _Owner] = {}
    for logical_id, properties in stack.of_type("AWS::ECS::Service"):
        name = _app_service(properties, stack, resolver) or construct_path(stack, logical_id) or logical_id
        network = (properties.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
        groups = as_list(network.get("SecurityGroups"))
        group = resolver.security_group(groups[0], stack) if len(groups) == 1 else ""
        for balancer in as_list(properties.get("LoadBalancers")):
            found = resolver.target(balancer.get("TargetGroupArn"), stack) if isinstance(balancer, dict) else None
            if found is not None and found.stack is stack:
                owners.setdefault(found.logical_id, _Owner(name, group))
    for _, properties in stack.of_type(EKS_MANIFEST):
        objects = _manifest_objects(properties.get("Manifest"))
        settings = {
            fmt((obj.get("data") or {}).get("APP_SERVICE"))
            for obj in objects
            if obj.get("kind") == "ConfigMap" and (obj.get("data") or {}).get("APP_SERVICE")
        }
        for obj in objects:
            if obj.get("kind") != "TargetGroupBinding":
                continue
            spec = obj.get("spec") or {}
            matched = re.fullmatch(r"\$\{([A-Za-z0-9]+)\}", str(spec.get("targetGroupARN", "")))
            if matched is None or matched.group(1) not in stack.resources:
                continue
            bound = fmt((spec.get("serviceRef") or {}).get("name")) or fmt((obj.get("metadata") or {}).get("name"))
            name = next(iter(settings)) if len(settings) == 1 else bound
            owners.setdefault(matched.group(1), _Owner(name, ""))
    return owners


def _eb_service(logical_id: str, properties: Mapping[str, Any], stack: Stack) -> str:
    options = eb_options(properties)
    return fmt(options.get((EB_SETTINGS, "APP_SERVICE"))) or construct_path(stack, logical_id) or logical_id


def resource_services(stacks: Sequence[Stack], resolver: Resolver | None = None) -> dict[tuple[str, str], str]:
    """``(stack, logical id) -> web service`` for target groups, ECS services and Elastic Beanstalk environments
    (what an alarm's dimensions point at)."""
    resolver = resolver or Resolver(stacks)
    found: dict[tuple[str, str], str] = {}
    for stack in stacks:
        for logical_id, owner in _target_groups(stack, resolver).items():
            found[(stack.name, logical_id)] = owner.service
        for logical_id, properties in stack.of_type("AWS::ECS::Service"):
            name = _app_service(properties, stack, resolver)
            if name:
                found[(stack.name, logical_id)] = name
        for logical_id, properties in stack.of_type("AWS::ElasticBeanstalk::Environment"):
            found[(stack.name, logical_id)] = _eb_service(logical_id, properties, stack)
    return found


@dataclass(frozen=True, order=True)
class RoleUser:
    """A service that runs as a role: its name, the stack (target) it runs in and its node in the reachability
    diagram (the security group it has to itself, else ``service <name> (<stack>)``)."""

    service: str
    stack: str
    node: str


def _environment_service(container: Any) -> str:
    for item in as_list(container.get("Environment") if isinstance(container, dict) else None):
        if isinstance(item, dict) and item.get("Name") == "APP_SERVICE":
            return fmt(item.get("Value"))
    return ""


def _own_group(groups: Any, stack: Stack, resolver: Resolver) -> str:
    """The label of the one security group a service runs in ("" for none or several)."""
    items = as_list(groups)
    if len(items) != 1 or intrinsic(items[0]) is None:
        return ""
    return resolver.security_group(items[0], stack)


def role_services(stacks: Sequence[Stack], resolver: Resolver | None = None) -> dict[str, tuple[RoleUser, ...]]:
    """``role key (Stack/construct path) -> the services that run as it``: an ECS task definition's task role (its
    ``APP_SERVICE``), an Elastic Beanstalk environment's instance profile role, and the IAM role a Kubernetes
    ServiceAccount is annotated with (``eks.amazonaws.com/role-arn``, the ``APP_SERVICE`` of its manifest)."""
    resolver = resolver or Resolver(stacks)
    found: dict[str, set[RoleUser]] = {}

    def add(role: Any, stack: Stack, service: str, group: str) -> None:
        target = resolver.target(role, stack)
        if target is None or target.type != "AWS::IAM::Role" or not service:
            return
        node = group or f"service {service} ({stack.name})"
        found.setdefault(target.key, set()).add(RoleUser(service, stack.name, node))

    for stack in stacks:
        groups: dict[str, Any] = {}
        for _, properties in stack.of_type("AWS::ECS::Service"):
            task = resolver.target(properties.get("TaskDefinition"), stack)
            network = (properties.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
            if task is not None:
                groups[task.logical_id] = network.get("SecurityGroups")
        for logical_id, properties in stack.of_type("AWS::ECS::TaskDefinition"):
            containers = as_list(properties.get("ContainerDefinitions"))
            service = next((name for c in containers if (name := _environment_service(c))), "")
            group = _own_group(groups.get(logical_id), stack, resolver)
            add(properties.get("TaskRoleArn"), stack, service or construct_path(stack, logical_id), group)
        for logical_id, properties in stack.of_type("AWS::ElasticBeanstalk::Environment"):
            options = eb_options(properties)
            profile = resolver.target(options.get(("aws:autoscaling:launchconfiguration", "IamInstanceProfile")), stack)
            if profile is None or profile.type != "AWS::IAM::InstanceProfile":
                continue
            group = _own_group(options.get(("aws:autoscaling:launchconfiguration", "SecurityGroups")), stack, resolver)
            for role in as_list(props(profile.definition).get("Roles"))[:1]:
                add(role, profile.stack, _eb_service(logical_id, properties, stack), group)
        for _, properties in stack.of_type(EKS_MANIFEST):
            objects = _manifest_objects(properties.get("Manifest"))
            services = {
                fmt((obj.get("data") or {}).get("APP_SERVICE"))
                for obj in objects
                if obj.get("kind") == "ConfigMap" and (obj.get("data") or {}).get("APP_SERVICE")
            }
            for obj in objects:
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                arn = str(annotations.get("eks.amazonaws.com/role-arn", ""))
                matched = re.fullmatch(r"\$\{([A-Za-z0-9]+)(\.Arn)?\}", arn)
                if obj.get("kind") != "ServiceAccount" or matched is None:
                    continue
                name = next(iter(services)) if len(services) == 1 else fmt((obj.get("metadata") or {}).get("name"))
                add({"Ref": matched.group(1)}, stack, name, "")
    return {key: tuple(sorted(users)) for key, users in sorted(found.items())}


def _action(action: Mapping[str, Any], stack: Stack, resolver: Resolver) -> tuple[str, list[Any]]:
    """``(what the action does, target group references)``."""
    kind = fmt(action.get("Type"))
    if kind == "forward":
        groups = [action["TargetGroupArn"]] if action.get("TargetGroupArn") is not None else []
        config = action.get("ForwardConfig") or {}
        groups += [item.get("TargetGroupArn") for item in as_list(config.get("TargetGroups")) if isinstance(item, dict)]
        return "forward", groups
    if kind == "fixed-response":
        config = action.get("FixedResponseConfig") or {}
        return f"fixed response {fmt(config.get('StatusCode'))}".strip(), []
    if kind == "redirect":
        config = action.get("RedirectConfig") or {}
        where = f"{fmt(config.get('Protocol', '#{protocol}'))}:{fmt(config.get('Port', '#{port}'))}"
        return f"redirect to {where}", []
    return kind, []


def _conditions(conditions: Any) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``(hosts, paths, other conditions)`` of a listener rule."""
    hosts: list[str] = []
    paths: list[str] = []
    other: list[str] = []
    for condition in as_list(conditions):
        if not isinstance(condition, dict):
            continue
        field = fmt(condition.get("Field"))
        if field == "host-header":
            hosts += [fmt(v) for v in as_list((condition.get("HostHeaderConfig") or {}).get("Values"))]
            hosts += [fmt(v) for v in as_list(condition.get("Values"))]
        elif field == "path-pattern":
            paths += [fmt(v) for v in as_list((condition.get("PathPatternConfig") or {}).get("Values"))]
            paths += [fmt(v) for v in as_list(condition.get("Values"))]
        else:
            config = {key: value for key, value in condition.items() if key != "Field"}
            other.append(f"{field} {fmt(config)}")
    return tuple(hosts), tuple(paths), tuple(other)


def _listener_name(properties: Mapping[str, Any]) -> str:
    return f"{fmt(properties.get('Protocol'))} {fmt(properties.get('Port'))}".strip()


def _forwarded(
    base: dict[str, Any], groups: list[Any], stack: Stack, resolver: Resolver, owners: Mapping[str, _Owner]
) -> Route:
    """A route that forwards to ``groups`` (target group references): the service(s) and health checks."""
    services, names, paths, ports, owned = [], [], [], [], []
    for reference in groups:
        found = resolver.target(reference, stack)
        if found is None or found.stack is not stack:
            names.append(resolver.display(reference, stack))
            continue
        group = props(found.definition)
        owner = owners.get(found.logical_id)
        names.append(construct_path(stack, found.logical_id) or found.logical_id)
        services.append(owner.service if owner else "")
        owned.append(owner.group if owner else "")
        paths.append(fmt(group.get("HealthCheckPath", "")))
        port = group.get("HealthCheckPort", "traffic-port")
        ports.append(fmt(group.get("Port")) if fmt(port) == "traffic-port" and "Port" in group else fmt(port))
    return Route(
        **base,
        service=", ".join(service for service in services if service),
        target_group=", ".join(names),
        health_path=", ".join(path for path in paths if path),
        health_port=", ".join(port for port in ports if port),
        group=owned[0] if len(owned) == 1 else "",
    )


def _elbv2(stack: Stack, resolver: Resolver) -> Iterator[Route]:
    owners = _target_groups(stack, resolver)
    listeners = {logical_id: properties for logical_id, properties in stack.of_type(ELBV2 + "Listener")}

    def route(listener: Mapping[str, Any], priority: str, action_list: Any, conditions: Any = None) -> Route:
        actions = [a for a in as_list(action_list) if isinstance(a, dict)]
        actions.sort(key=lambda a: int(a["Order"]) if str(a.get("Order", "")).isdigit() else 0)
        action, groups = _action(actions[-1], stack, resolver) if actions else ("(no action)", [])
        hosts, paths, other = _conditions(conditions)
        base: dict[str, Any] = {
            "stack": stack.name,
            "load_balancer": resolver.display(listener.get("LoadBalancerArn"), stack),
            "listener": _listener_name(listener),
            "priority": priority,
            "hosts": hosts,
            "paths": paths,
            "conditions": other,
            "action": action,
        }
        if groups:
            return _forwarded(base, groups, stack, resolver, owners)
        return Route(**base, service="", target_group="", health_path="", health_port="")

    for _, properties in listeners.items():
        yield route(properties, DEFAULT, properties.get("DefaultActions"))
    for _, properties in stack.of_type(ELBV2 + "ListenerRule"):
        found = resolver.target(properties.get("ListenerArn"), stack)
        listener = props(found.definition) if found is not None else {}
        if found is None:
            listener = {"LoadBalancerArn": properties.get("ListenerArn")}
        yield route(listener, fmt(properties.get("Priority")), properties.get("Actions"), properties.get("Conditions"))


def _split(value: Any) -> tuple[str, ...]:
    return tuple(part.strip() for part in fmt(value).split(",") if part.strip())


def _beanstalk(stack: Stack, resolver: Resolver) -> Iterator[Route]:
    """Rules of Elastic Beanstalk environments on a shared ALB (``aws:elbv2:listenerrule:<name>`` options)."""
    listeners = stack.of_type(ELBV2 + "Listener")
    for logical_id, properties in stack.of_type("AWS::ElasticBeanstalk::Environment"):
        options = eb_options(properties)
        shared = options.get(("aws:elbv2:loadbalancer", "SharedLoadBalancer"))
        if shared is None:
            continue  # the environment's own load balancer: EB creates it and its one default rule
        service = _eb_service(logical_id, properties, stack)
        balancer = resolver.display(shared, stack)
        groups = options.get(("aws:autoscaling:launchconfiguration", "SecurityGroups"))
        group = resolver.security_group(groups, stack) if intrinsic(groups) is not None else ""
        for (namespace, option), rules in sorted(options.items()):
            if not namespace.startswith(EB_LISTENER) or option != "Rules":
                continue
            port = namespace.removeprefix(EB_LISTENER)
            protocol = next(
                (
                    fmt(listener.get("Protocol"))
                    for _, listener in listeners
                    if fmt(listener.get("Port")) == port
                    and resolver.display(listener.get("LoadBalancerArn"), stack) == balancer
                ),
                fmt(options.get((namespace, "Protocol"))) or "port",
            )
            for name in _split(rules):
                rule = EB_RULE + name
                process = fmt(options.get((rule, "Process"))) or "default"
                yield Route(
                    stack=stack.name,
                    load_balancer=balancer,
                    listener=f"{protocol} {port}",
                    priority=EB_DEFAULT if name == "default" else fmt(options.get((rule, "Priority"))),
                    hosts=_split(options.get((rule, "HostHeaders"))),
                    paths=_split(options.get((rule, "PathPatterns"))),
                    conditions=(),
                    action="forward",
                    service=service,
                    target_group=f"EB process {process}",
                    health_path=fmt(options.get((EB_PROCESS + process, "HealthCheckPath"))),
                    health_port=fmt(options.get((EB_PROCESS + process, "Port"))),
                    group=group,
                )


def extract_routes(stacks: Sequence[Stack], resolver: Resolver | None = None) -> list[Route]:
    """Every listener's default action and rules (ELBv2 resources and EB shared-ALB options), in the order the
    load balancer evaluates them: by priority, the default action last."""
    resolver = resolver or Resolver(stacks)
    routes = {route for stack in stacks for route in (*_elbv2(stack, resolver), *_beanstalk(stack, resolver))}
    return sorted(routes, key=lambda r: (r.stack, r.load_balancer, r.listener, _priority_key(r), r.service))
