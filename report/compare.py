"""What a change does, in a reviewer's terms: two reports (base and head) and the resource diff in, findings out.

Order of the sections is the order of :data:`SECTIONS`: replacements and deletions first, then reachability
(internet-facing first), IAM, secrets, alarms, health checks, and image/sizing/scaling/deploy-policy changes.
Every other property change is kept for a collapsed table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from report.alarms import Alarm
from report.assembly import Stack
from report.changes import ResourceChange, diff_resources
from report.extract import Report
from report.health import HealthCheck
from report.intrinsics import as_list, fmt
from report.resources import AppResource
from report.routing import Route

SECTIONS = {
    "reachability": "Reachability",
    "routing": "Routing",
    "resources": "Resources and who may use them",
    "iam": "IAM permissions",
    "secrets": "Secrets and who can read them",
    "alarms": "Alarms",
    "health": "Health checks",
    "runtime": "Image, sizing, scaling and deploy policy",
}

# (resource type, property path pattern, what it is) for the "image, sizing, scaling, deploy policy" section.
RUNTIME: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (kind, re.compile(pattern), what)
    for kind, pattern, what in (
        # How the service's secret settings are made changed (kind, source secret, scheme): it rolls out.
        ("AWS::ECS::TaskDefinition", r"SETTINGS_REVISION", "settings revision"),
        ("AWS::ElasticBeanstalk::Environment", r"SETTINGS_REVISION", "settings revision"),
        ("Custom::AWSCDK-EKS-KubernetesResource", r"settings-revision", "settings revision"),
        ("AWS::ECS::TaskDefinition", r"ContainerDefinitions\[[^]]+\]\.Image$", "image"),
        ("AWS::ECS::TaskDefinition", r"^(Cpu|Memory)$", "sizing"),
        ("AWS::ECS::TaskDefinition", r"ContainerDefinitions\[[^]]+\]\.(Command|EntryPoint)", "command"),
        ("AWS::ECS::TaskDefinition", r"ContainerDefinitions\[[^]]+\]\.Environment", "setting"),
        ("AWS::ECS::Service", r"^DesiredCount$", "scaling"),
        ("AWS::ECS::Service", r"^(DeploymentConfiguration|HealthCheckGracePeriodSeconds)", "deploy policy"),
        ("AWS::ApplicationAutoScaling::ScalableTarget", r"^(MinCapacity|MaxCapacity)$", "scaling"),
        ("AWS::ApplicationAutoScaling::ScalingPolicy", r".", "scaling"),
        (
            "AWS::RDS::DBInstance",
            r"^(DBInstanceClass|AllocatedStorage|MaxAllocatedStorage|StorageType|Iops)$",
            "sizing",
        ),
        ("AWS::RDS::DBInstance", r"^(MultiAZ|BackupRetentionPeriod|DeletionProtection|EngineVersion)$", "database"),
        ("AWS::ElastiCache::ReplicationGroup", r"^(CacheNodeType|NumCacheClusters|ReplicasPerNodeGroup)$", "sizing"),
        ("AWS::ElastiCache::ReplicationGroup", r"^(EngineVersion|SnapshotRetentionLimit|MultiAZEnabled)$", "cache"),
        ("AWS::ElasticBeanstalk::Environment", r"InstanceType|asg:(MinSize|MaxSize)", "sizing"),
        ("AWS::ElasticBeanstalk::Environment", r"command:(DeploymentPolicy|BatchSize)|RollingUpdate", "deploy policy"),
        ("AWS::ElasticBeanstalk::Environment", r"application:environment:", "setting"),
        ("AWS::ElasticBeanstalk::ApplicationVersion", r"^SourceBundle", "image (application bundle)"),
        ("AWS::Scheduler::Schedule", r"^ScheduleExpression", "schedule"),
        ("Custom::AWSCDK-EKS-KubernetesResource", r"containers\[[^]]+\]\.image$", "image"),
        ("Custom::AWSCDK-EKS-KubernetesResource", r"\.(replicas|minReplicas|maxReplicas)$", "scaling"),
        ("Custom::AWSCDK-EKS-KubernetesResource", r"containers\[[^]]+\]\.resources\.", "sizing"),
        ("Custom::AWSCDK-EKS-KubernetesResource", r"\.(strategy|progressDeadlineSeconds)", "deploy policy"),
        ("Custom::AWSCDK-EKS-KubernetesResource", r"\.schedule$", "schedule"),
    )
)
LOOSER = {">=": 1, ">": 1, "<": -1, "<=": -1}  # direction in which a higher threshold fires later
SECURE_PARAMETER = "Custom::SecureParameter"


@dataclass(frozen=True)
class Finding:
    """One semantic change: ``change`` is added/removed/changed/loosened…, ``flags`` what makes it risky."""

    section: str
    change: str
    subject: str
    detail: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PropertyRow:
    """One changed property of one resource, with what kind of setting it is."""

    what: str
    resource: str
    stack: str
    path: str
    before: str
    after: str


@dataclass(frozen=True)
class Review:
    """Everything the "what changes" page shows for one stage."""

    resources: list[ResourceChange]
    findings: list[Finding]
    runtime: list[PropertyRow]
    other: list[PropertyRow] = field(default_factory=list)

    @property
    def loud(self) -> list[ResourceChange]:
        """Replacements, deletions and weakened retention (not routine revisions)."""
        return [change for change in self.resources if change.loud]

    def counts(self) -> dict[str, int]:
        """Headline numbers."""
        by = {action: [c for c in self.resources if c.action == action] for action in ("replace", "remove", "add")}
        return {
            "replaced": len(by["replace"]),
            "replaced_holding_data": sum(c.stateful for c in by["replace"]),
            "may_be_replaced": sum(c.certainty == "may" for c in by["replace"]),
            "removed": len(by["remove"]),
            "removed_holding_data": sum(c.stateful for c in by["remove"]),
            "retention_weakened": sum(c.action == "retention" for c in self.resources),
            "added": len(by["add"]),
            "updated": sum(c.action in ("update", "revision") for c in self.resources),
            **{
                section: sum(f.section == section for f in self.findings)
                for section in SECTIONS
                if section != "runtime"
            },
            "runtime": len(self.runtime),
        }


def _reachability(base: Report, head: Report) -> list[Finding]:
    def edges(report: Report) -> dict[tuple[str, str, str, str], bool]:
        return {(e.source, e.destination, e.protocol, e.ports): e.internet for e in report.reachability}

    old, new = edges(base), edges(head)
    found = []
    for key in sorted(old.keys() ^ new.keys(), key=lambda k: (not (new.get(k) or old.get(k)), k not in new, k)):
        source, destination, protocol, ports = key
        internet = bool(new.get(key) or old.get(key))
        what = f"{protocol} {ports}" if ports != "all" else "all traffic"
        found.append(
            Finding(
                "reachability",
                "added" if key in new else "removed",
                f"{source} → {destination}",
                what,
                ("internet-facing",) if internet else (),
            )
        )
    return found


def _fallthrough(routes: Iterable[Route]) -> str:
    """Where requests no rule of a listener takes any more end up: its catch-all rule, else its default action."""
    ordered = list(routes)
    catch_all = next((r for r in ordered if r.rule and r.paths == ("/*",) and not r.hosts and not r.conditions), None)
    if catch_all is not None:
        return f"the catch-all /* → {catch_all.destination}"
    default = next((r for r in ordered if not r.rule and r.priority == "default"), None)
    return f"the listener's default ({default.destination})" if default is not None else "the remaining rules"


def _routing(base: Report, head: Report) -> list[Finding]:
    """Routing changes in plain words: a route that comes or goes, now sends its requests elsewhere, or moves in
    priority; a rule whose hosts/paths change but still goes to the same service is one "route changed" line."""

    def by_match(report: Report) -> dict[tuple[str, str, str, str], Route]:
        return {(r.stack, r.load_balancer, r.listener, r.match): r for r in report.routes}

    def where(route: Route) -> str:
        return f"{route.listener} of {route.load_balancer}"

    old, new = by_match(base), by_match(head)
    removed = {key: old[key] for key in sorted(old.keys() - new.keys())}
    added = {key: new[key] for key in sorted(new.keys() - old.keys())}
    found = []
    for key, after in list(added.items()):  # the same service on the same listener, other hosts/paths
        if not after.rule:
            continue
        same = [k for k, r in removed.items() if k[:3] == key[:3] and r.rule and r.destination == after.destination]
        twins = [k for k, r in added.items() if k[:3] == key[:3] and r.rule and r.destination == after.destination]
        if len(same) == 1 and len(twins) == 1:
            before = removed.pop(same[0])
            del added[key]
            priority = f", priority {before.priority} → {after.priority}" if before.priority != after.priority else ""
            detail = f"now goes to {after.destination}, which took {before.match} before{priority} · {where(after)}"
            found.append(Finding("routing", "route changed", after.match, detail))
    for key in sorted(old.keys() & new.keys()):
        before, after = old[key], new[key]
        if before.destination != after.destination:
            subject = after.match if after.rule else f"{after.match} on {where(after)}"
            detail = f"now goes to {after.destination} (was {before.destination}) · {where(after)}"
            if not after.rule:
                detail = f"now gets {after.destination} (was {before.destination})"
            found.append(Finding("routing", "rerouted", subject, detail, ("requests move",)))
        elif before.priority != after.priority:
            detail = f"{before.priority} → {after.priority}, still to {after.destination} · {where(after)}"
            found.append(Finding("routing", "priority changed", after.match, detail))
    for after in added.values():
        priority = f" (priority {after.priority})" if after.rule else ""
        detail = f"now goes to {after.destination}{priority} · {where(after)}"
        found.append(Finding("routing", "new route", after.match, detail))
    for key, before in removed.items():
        if before.rule:
            rest = [r for k, r in new.items() if k[:3] == key[:3]]
            detail = (
                f"no longer routed (went to {before.destination}, priority {before.priority}); "
                f"those requests now reach {_fallthrough(rest)} · {where(before)}"
            )
        else:
            detail = f"no longer routed (went to {before.destination}) · {where(before)}"
        found.append(Finding("routing", "route removed", before.match, detail, ("requests move",)))
    return sorted(found, key=lambda f: (not f.flags, f.change, f.subject))


def _iam(base: Report, head: Report) -> list[Finding]:
    """Per principal: the actions it gains or loses (one line each way), wildcards flagged; a role that comes or
    goes as a whole is one line with its counts."""

    def grants(report: Report) -> dict[str, set[tuple[str, str, bool]]]:
        found: dict[str, set[tuple[str, str, bool]]] = {}
        for principal in report.iam:
            entries = found.setdefault(principal.role, set())
            for statement in principal.statements:
                if statement.effect != "Allow":
                    continue
                for action in statement.actions:
                    for resource in statement.resources or ("*",):
                        wide = resource == "*" or action == "*" or action.endswith(":*")
                        entries.add((action, resource, wide and bool(statement.wildcards)))
        return found

    old, new = grants(base), grants(head)
    found = []
    for role in sorted(old.keys() | new.keys()):
        before, after = old.get(role, set()), new.get(role, set())
        if role not in old or role not in new:
            items = after or before
            wild = sorted({action for action, _, wide in items if wide})
            what = f"{len({a for a, _, _ in items})} actions" + (f", wildcard on {', '.join(wild[:4])}" if wild else "")
            flags = ("wildcard",) if wild and role in new else ()
            found.append(Finding("iam", "new principal" if role in new else "principal removed", role, what, flags))
            continue
        for sign, items in (("added", after - before), ("removed", before - after)):
            if not items:
                continue
            by_action: dict[str, list[str]] = {}
            for action, resource, _ in sorted(items):
                by_action.setdefault(action, []).append(resource)
            parts = [
                f"{action} on {', '.join(resources[:2])}" + (f" (+{len(resources) - 2})" if len(resources) > 2 else "")
                for action, resources in by_action.items()
            ]
            detail = "; ".join(parts[:6]) + (f"; +{len(parts) - 6} more" if len(parts) > 6 else "")
            widened = sign == "added" and any(wide for _, _, wide in items)
            found.append(Finding("iam", sign, role, detail, ("wildcard",) if widened else ()))
    return sorted(found, key=lambda f: (not f.flags, f.change not in ("added", "new principal"), f.subject, f.detail))


VERBS = {
    "read": "read",
    "write": "write to",
    "send": "send to",
    "consume": "consume from",
    "publish": "publish to",
    "send e-mail": "send e-mail from",
    "other": "do more on",
}


def _may(levels: Iterable[str], short: str) -> str:
    """``write to uploads``, ``read and write to uploads``."""
    verbs = [VERBS.get(level, level) for level in levels]
    return f"{' and '.join(verbs)} {short}"


def _resources(base: Report, head: Report, resources: Sequence[ResourceChange]) -> list[Finding]:
    """App resources in plain words: a new or widened grant (``worker may now write to uploads``), a grant taken
    away, a resource removed or no longer retained (loud: it holds data), one that would be replaced, and a
    weaker encryption, versioning or dead-letter queue."""

    def by_name(report: Report) -> dict[tuple[str, str], AppResource]:
        return {(r.kind, r.name): r for r in report.resources}

    def grants(report: Report) -> dict[tuple[str, str, str], set[str]]:
        found: dict[tuple[str, str, str], set[str]] = {}
        for r in report.resources:
            for g in r.grants:
                found.setdefault((r.short, g.service, g.stack), set()).update(g.access)
        return found

    old, new = by_name(base), by_name(head)
    found: list[Finding] = []
    replaced = {(c.stack, c.logical_id): c for c in resources if c.action == "replace"}
    for key in sorted(old.keys() - new.keys()):
        before = old[key]
        fate = "it is kept (retained)" if before.retained else "what it holds is deleted"
        found.append(Finding("resources", "removed", before.title, f"{before.name}: {fate}", ("stateful data",)))
    for key in sorted(new.keys() - old.keys()):
        after = new[key]
        found.append(Finding("resources", "added", after.title, f"{after.name}, {after.retention}"))
    for key in sorted(old.keys() & new.keys()):
        before, after = old[key], new[key]
        change = replaced.get((after.stack, after.logical_id))
        if change is not None:
            detail = f"{change.certainty} be replaced ({change.cause}): the new one starts empty; {change.data}"
            found.append(Finding("resources", "replaced", after.title, detail, ("stateful data",)))
        if before.retained != after.retained:
            flags = ("stateful data",) if before.retained else ()
            found.append(
                Finding("resources", "retention", after.title, f"{before.retention} → {after.retention}", flags)
            )
        for field_name in ("encryption", "protection"):
            was, now = getattr(before, field_name), getattr(after, field_name)
            if was != now:
                weaker = now in ("none", "not versioned") or now.startswith(("not versioned", "no dead-letter"))
                detail = f"{was or 'none'} → {now or 'none'}"
                found.append(Finding("resources", "changed", after.title, detail, ("weaker",) if weaker else ()))
    was, now = grants(base), grants(head)
    moves: dict[tuple[str, str, str, tuple[str, ...]], list[str]] = {}  # one line for every target alike
    order = [*VERBS]
    for short, service, stack in sorted(was.keys() | now.keys()):
        had, has = was.get((short, service, stack), set()), now.get((short, service, stack), set())
        gained = tuple(sorted(has - had, key=order.index))
        lost = tuple(sorted(had - has, key=order.index))
        if gained:
            moves.setdefault(("gained", short, service, gained), []).append(stack)
        if lost:
            moves.setdefault(("lost", short, service, lost), []).append(stack)
    for (sign, short, service, levels), stacks in sorted(moves.items()):
        where = f" (on {', '.join(stacks)})"
        if sign == "gained":
            found.append(
                Finding(
                    "resources",
                    "may now",
                    f"{service} → {short}",
                    f"{service} may now {_may(levels, short)}{where}",
                    ("more access",),
                )
            )
        else:
            found.append(
                Finding(
                    "resources",
                    "may no longer",
                    f"{service} → {short}",
                    f"{service} may no longer {_may(levels, short)}{where}",
                )
            )
    return sorted(found, key=lambda f: (not f.flags, f.change, f.subject))


def _secrets(base: Report, head: Report) -> list[Finding]:
    def uses(report: Report) -> dict[tuple[str, str], str]:
        return {(u.target, u.setting): u.reference for u in report.secrets}

    def readable(report: Report) -> set[tuple[str, str]]:
        return {(u.reference, reader) for u in report.secrets for reader in u.readers}

    def lifecycle(report: Report) -> dict[str, tuple[str, str]]:
        return {u.reference: (u.kind, u.rotation) for u in report.secrets}

    found = []
    old, new = uses(base), uses(head)
    kinds = lifecycle(head)
    for key in sorted(old.keys() | new.keys()):
        target, setting = key
        if key not in old:
            kind, rotation = kinds.get(new[key], ("?", ""))
            detail = f"from {new[key]} ({kind}{', ' + rotation if rotation else ''})"
            found.append(Finding("secrets", "added", f"{setting} in {target}", detail))
        elif key not in new:
            found.append(Finding("secrets", "removed", f"{setting} in {target}", f"was {old[key]}"))
        elif old[key] != new[key]:
            found.append(Finding("secrets", "changed", f"{setting} in {target}", f"{old[key]} → {new[key]}"))
    was = lifecycle(base)
    for reference, (kind, rotation) in sorted(kinds.items()):
        if reference in was and was[reference] != (kind, rotation):
            old_kind, old_rotation = was[reference]
            found.append(Finding("secrets", "changed", reference, f"{old_kind}, {old_rotation} → {kind}, {rotation}"))
    before, after = readable(base), readable(head)
    for sign, items in (("can now read", after - before), ("can no longer read", before - after)):
        for reference, reader in sorted(items):
            flags = ("new reader",) if sign == "can now read" else ()
            found.append(Finding("secrets", sign, reader, reference, flags))
    return found


def _number(text: str) -> float | None:
    try:
        return float(text.rstrip("s"))
    except ValueError:
        return None


def _loosened(old: Alarm, new: Alarm) -> list[str]:
    why = []
    direction = LOOSER.get(_symbol(new.comparison), 0)
    before, after = _number(old.threshold), _number(new.threshold)
    if before is not None and after is not None and direction and (after - before) * direction > 0:
        why.append(f"threshold {old.threshold} → {new.threshold}")
    for name, old_value, new_value in (
        ("evaluation periods", old.evaluation_periods, new.evaluation_periods),
        ("period", old.period, new.period),
    ):
        a, b = _number(old_value), _number(new_value)
        if a is not None and b is not None and b > a:
            why.append(f"{name} {old_value} → {new_value}")
    if old.actions and not new.actions:
        why.append("no actions any more")
    if old.treat_missing_data != new.treat_missing_data and new.treat_missing_data == "notBreaching":
        why.append(f"missing data {old.treat_missing_data} → notBreaching")
    return why


def _symbol(comparison: str) -> str:
    from report.alarms import COMPARISONS

    return COMPARISONS.get(comparison, comparison)


def _alarms(base: Report, head: Report) -> list[Finding]:
    old = {(a.stack, a.name): a for a in base.alarms}
    new = {(a.stack, a.name): a for a in head.alarms}
    found = []
    for key in sorted(old.keys() | new.keys()):
        if key not in new:
            found.append(
                Finding("alarms", "removed", key[1], f"{old[key].namespace} {old[key].metric}", ("alarm removed",))
            )
        elif key not in old:
            found.append(Finding("alarms", "added", key[1], f"{new[key].namespace} {new[key].metric}"))
        elif why := _loosened(old[key], new[key]):
            found.append(Finding("alarms", "loosened", key[1], "; ".join(why), ("fires later",)))
        elif old[key] != new[key]:
            found.append(Finding("alarms", "changed", key[1], _fields(old[key], new[key])))
    return sorted(found, key=lambda f: (not f.flags, f.subject))


def _fields(old: object, new: object) -> str:
    names = [name for name in getattr(old, "__dataclass_fields__", {}) if name not in ("stack", "target", "name")]
    return "; ".join(
        f"{name.replace('_', ' ')} {_text(getattr(old, name))} → {_text(getattr(new, name))}"
        for name in names
        if getattr(old, name) != getattr(new, name)
    )


def _text(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) or "none"
    return str(value) or "none"


def _health(base: Report, head: Report) -> list[Finding]:
    def checks(report: Report) -> dict[tuple[str, str, str], HealthCheck]:
        return {(h.stack, h.target, h.kind): h for h in report.health_checks}

    old, new = checks(base), checks(head)
    found = []
    for key in sorted(old.keys() | new.keys()):
        subject = f"{key[1]} ({key[2]})"
        if key not in new:
            found.append(Finding("health", "removed", subject, old[key].check or "-", ("health check removed",)))
        elif key not in old:
            found.append(Finding("health", "added", subject, new[key].check or "-"))
        elif old[key] != new[key]:
            found.append(Finding("health", "changed", subject, _fields(old[key], new[key])))
    return found


def _subscriptions(stacks: Sequence[Stack]) -> set[tuple[str, str]]:
    """``(protocol, endpoint)`` of every alarm-topic subscription (standalone or inline on the topic)."""
    found = set()
    for stack in stacks:
        for _, properties in stack.of_type("AWS::SNS::Subscription"):
            found.add((fmt(properties.get("Protocol")), fmt(properties.get("Endpoint"))))
        for _, properties in stack.of_type("AWS::SNS::Topic"):
            for item in as_list(properties.get("Subscription")):
                if isinstance(item, dict):
                    found.add((fmt(item.get("Protocol")), fmt(item.get("Endpoint"))))
    return found


def _notifications(base: Sequence[Stack], head: Sequence[Stack]) -> list[Finding]:
    """Who is told when an alarm fires: subscriptions added or removed; none left is flagged."""
    old, new = _subscriptions(base), _subscriptions(head)
    flags = ("nobody is notified",) if old and not new else ()
    found = [
        Finding("alarms", "notifies no more", f"{p} {e}", "alarm notifications", flags) for p, e in sorted(old - new)
    ]
    found += [Finding("alarms", "now notifies", f"{p} {e}", "alarm notifications") for p, e in sorted(new - old)]
    return found


def _rows(resources: Iterable[ResourceChange]) -> tuple[list[PropertyRow], list[PropertyRow], list[Finding]]:
    runtime: list[PropertyRow] = []
    other: list[PropertyRow] = []
    recipes: list[Finding] = []
    for change in resources:
        for prop in change.properties:
            if change.type == SECURE_PARAMETER:  # how a secret's value is built (never the value itself)
                recipes.append(
                    Finding("secrets", "built differently", change.name, f"{prop.path}: {prop.before} → {prop.after}")
                )
                continue
            if prop.before == prop.after:  # the same text on both sides: an asset (bundle) whose content changed
                prop = replace(prop, before="previous content", after="new content")
            what = next(
                (what for kind, pattern, what in RUNTIME if kind == change.type and pattern.search(prop.path)), None
            )
            row = PropertyRow(what or change.type, change.name, change.stack, prop.path, prop.before, prop.after)
            if what:
                runtime.append(row)
            elif not (change.action == "replace" and prop.create_only):  # already the "why" of the replacement
                other.append(row)
    return runtime, other, recipes


def review(base: Report, head: Report, base_stacks: Sequence[Stack], head_stacks: Sequence[Stack]) -> Review:
    """Compare two stages: the resource diff with replacements, then every semantic section."""
    resources = diff_resources(base_stacks, head_stacks)
    runtime, other, recipes = _rows(resources)
    # A stack that leaves the app keeps running: what it allows is not "removed" (it is reported once, loudly).
    left = {change.stack for change in resources if change.action == "orphan"}
    base = _without(base, left)
    findings = [*_reachability(base, head), *_routing(base, head), *_resources(base, head, resources)]
    findings += [*_iam(base, head), *_secrets(base, head)]
    findings += recipes
    findings += [*_alarms(base, head), *_notifications(base_stacks, head_stacks), *_health(base, head)]
    return Review(resources, findings, runtime, other)


def _without(report: Report, stacks: set[str]) -> Report:
    """``report`` without what the stacks in ``stacks`` hold."""
    if not stacks:
        return report
    return replace(
        report,
        reachability=[e for e in report.reachability if e.stack not in stacks],
        secrets=[
            replace(u, readers=tuple(r for r in u.readers if r.split("/", 1)[0] not in stacks))
            for u in report.secrets
            if u.stack not in stacks
        ],
        health_checks=[h for h in report.health_checks if h.stack not in stacks],
        alarms=[a for a in report.alarms if a.stack not in stacks],
        routes=[r for r in report.routes if r.stack not in stacks],
        iam=[p for p in report.iam if p.stack not in stacks],
        resources=[
            replace(r, grants=tuple(g for g in r.grants if g.stack not in stacks))
            for r in report.resources
            if r.stack not in stacks
        ],
    )
