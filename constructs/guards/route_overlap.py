"""route-overlap: no listener rule is shadowed by an earlier one or shares its priority (config/routes.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from config.routes import Route, shadowing
from config.schema import AppConfig
from constructs.guards.framework import Finding, Resource, Tree, prop

CONDITION_FIELDS = {"path-pattern": "pathPatternConfig", "host-header": "hostHeaderConfig"}


def route_of(rule: Resource) -> Route | None:
    """The rule's path and host conditions as a Route; None when it also matches on something else (headers, query,
    source IP, method): narrower in ways a path/host comparison cannot judge."""
    values: dict[str, list[str]] = {"path-pattern": [], "host-header": []}
    for condition in rule.props.get("conditions") or []:
        field = prop(condition, "field")
        if field not in CONDITION_FIELDS:
            return None
        config: dict[str, Any] = prop(condition, CONDITION_FIELDS[field]) or {}
        values[field] += [str(v) for v in (prop(config, "values") or prop(condition, "values") or [])]
    priority = rule.props.get("priority")
    if not isinstance(priority, int):
        return None
    return Route(tuple(values["path-pattern"]), tuple(values["host-header"]), priority)


def listener_key(stack_name: str, reference: Any) -> str:
    """A listener as rules name it: its stack (logical ids repeat across the targets' stacks) and its reference."""
    return f"{stack_name} {json.dumps(reference, sort_keys=True)}"


def rules_by_listener(tree: Tree) -> dict[str, list[tuple[Resource, Route | None]]]:
    """The listener rules of the app, per listener (``listener_key``)."""
    grouped: dict[str, list[tuple[Resource, Route | None]]] = defaultdict(list)
    for rule in tree.of_type("AWS::ElasticLoadBalancingV2::ListenerRule"):
        grouped[listener_key(rule.stack.stack_name, rule.props.get("listenerArn"))].append((rule, route_of(rule)))
    return grouped


class RouteOverlap:
    """Compliant: on every listener, each rule has its own priority and no rule takes every request a later one
    would match (same paths and hosts, or broader ones at a lower priority number): each web service's route is
    reachable. The stage file's ``services.<name>.route`` is checked the same way before synth."""

    id = "route-overlap"
    FIX = "give each route its own priority, the narrower route the lower number (services.<name>.route.priority)"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for rules in rules_by_listener(tree).values():
            named = [(rule.path, route) for rule, route in rules if route is not None]
            for line in shadowing(named):
                path, _, problem = line.partition(": ")
                yield Finding(self.id, path, problem.split("; give")[0], self.FIX)


RULE = RouteOverlap()
