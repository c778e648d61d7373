"""Routes of a stage's web services on the shared load balancer: which requests reach which service.

A web service's ``route`` is ALB listener-rule conditions: path patterns and host headers (``*`` any characters,
``?`` one; hosts case-insensitive), tried in priority order (lower first); the service without a route is the
stage's default, reached by a catch-all rule after every other. ``shadowing`` finds rules that can never match
because an earlier rule takes every request they would (route-overlap); the synth guard of the same id runs it
over the listener rules of the templates, the stage file's validation over ``services``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# ALB listener rules: priority 1..50000, at most five condition values per rule (paths + hosts).
MAX_PRIORITY = 50_000
MAX_CONDITION_VALUES = 5
# The catch-all rule of the default service comes after every declared route.
DEFAULT_PRIORITY = MAX_PRIORITY
PRIORITY_STEP = 10
PATH_PATTERN = re.compile(r"^/[A-Za-z0-9_\-.$/~\"'@:+*?&=%]{0,127}$")
HOST_PATTERN = re.compile(r"^[a-z0-9*?]([a-z0-9*?.-]{0,126}[a-z0-9*?])?$")


@dataclass(frozen=True)
class Route:
    """Conditions of one listener rule: a request matches when it matches one path (if any) and one host (if any)."""

    paths: tuple[str, ...]
    hosts: tuple[str, ...]
    priority: int

    def describe(self) -> str:
        parts = [*(f"path {p}" for p in self.paths), *(f"host {h}" for h in self.hosts)]
        return " or ".join(parts) or "every request"


def _pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` as a regex that matches a *pattern* ``other`` only when every string ``other`` matches also
    matches ``pattern``: ``*`` takes anything (wildcards too), ``?`` one character that is not ``*``."""
    parts = [".*" if c == "*" else "[^*]" if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def covers(pattern: str, other: str) -> bool:
    """True when every request value ``other`` (a pattern) can match is matched by ``pattern`` too."""
    return _pattern(pattern.lower()).fullmatch(other.lower()) is not None


def _covers_all(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    """``first`` (no values: anything) matches everything ``second`` (no values: anything) matches."""
    if not first:
        return True
    return bool(second) and all(any(covers(a, b) for a in first) for b in second)


def takes_all_of(earlier: Route, later: Route) -> bool:
    """Every request ``later`` matches is matched by ``earlier`` (so, tried first, it leaves ``later`` nothing)."""
    return _covers_all(earlier.paths, later.paths) and _covers_all(earlier.hosts, later.hosts)


def shadowing(routes: Sequence[tuple[str, Route]]) -> Iterator[str]:
    """One line per problem among named routes: equal priorities, and a route never reached because an earlier
    one (by priority) takes every request it matches."""
    by_priority: dict[int, str] = {}
    for name, route in routes:
        if route.priority in by_priority:
            yield (
                f"{name}: priority {route.priority} is also {by_priority[route.priority]}'s; an ALB tries each "
                "priority once, give every route its own"
            )
        by_priority.setdefault(route.priority, name)
    ordered = sorted(routes, key=lambda item: item[1].priority)
    for index, (name, route) in enumerate(ordered):
        for earlier_name, earlier in ordered[:index]:
            if earlier.priority != route.priority and takes_all_of(earlier, route):
                yield (
                    f"{name}: {route.describe()} is never reached: {earlier_name} (priority {earlier.priority}) "
                    f"takes every request it matches ({earlier.describe()}); give {name} a lower priority number "
                    f"than {earlier.priority} or narrow {earlier_name}'s route"
                )
                break
