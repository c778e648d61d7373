"""Rendering of a :class:`~report.extract.Report` as Markdown (``REVIEW.md``) and JSON (``review.json``).

Both renderings are deterministic: the report is already sorted, JSON keys are sorted and asset
hashes are scrubbed from the final text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace

from report.alarms import COMPARISONS
from report.extract import Alarm, AppResource, Edge, Report, summarize
from report.intrinsics import scrub
from report.routing import DEFAULT, Route, has_rules

NONE = "—"


def code(text: str) -> str:
    """``text`` as an inline code span that is safe inside a Markdown table cell."""
    if not text:
        return NONE
    text = text.replace("|", "\\|").replace("\n", " ")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def codes(items: Iterable[str]) -> str:
    """Several values as comma-separated code spans."""
    return ", ".join(code(item) for item in items) or NONE


def plain(text: str) -> str:
    """Free text made safe for a Markdown table cell."""
    if not text:
        return NONE
    escaped = re.sub(r"([\\`*_\[\]|])", r"\\\1", text)
    return escaped.replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def flags(items: Iterable[str]) -> str:
    """Review findings in bold ("" when there are none)."""
    return ", ".join(f"**{plain(item)}**" for item in items)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured Markdown table (or a placeholder line when there are no rows)."""
    body = [f"| {' | '.join(row)} |" for row in rows]
    if not body:
        return ["_None found._"]
    return [f"| {' | '.join(headers)} |", f"|{'|'.join('---' for _ in headers)}|", *body]


def service_nodes(routes: Sequence[Route]) -> dict[str, str]:
    """Security group name -> web service node, for groups that belong to exactly one routed service."""
    owners: dict[str, set[str]] = {}
    for route in routes:
        if route.service and route.group:
            owners.setdefault(route.group, set()).add(_service_node(route))
    return {group: next(iter(nodes)) for group, nodes in owners.items() if len(nodes) == 1}


def _service_node(route: Route) -> str:
    return f"web service {route.service} ({route.stack})"


def route_label(route: Route) -> str:
    """What a diagram edge from the load balancer to a service says: ``prio 10 · /api/*``."""
    return f"prio {route.priority} · {route.match}" if route.rule else route.match


def resource_node(resource: AppResource) -> str:
    """The diagram node of an app resource: ``bucket shop-staging-uploads-…``."""
    return f"{resource.kind} {resource.name}"


def grant_links(resources: Sequence[AppResource]) -> list[tuple[str, str, str]]:
    """``(service node, resource node, access)`` for every grant: what the diagram draws as dotted arrows."""
    return sorted(
        {
            (grant.node, resource_node(resource), ", ".join(grant.access))
            for resource in resources
            for grant in resource.grants
            if grant.node
        }
    )


def call_edges(edges: Sequence[Edge], routes: Sequence[Route]) -> set[tuple[str, str]]:
    """``(source, destination)`` of the edges that are calls: from one service's security group into a web
    service's (the group a load balancer forwards into), not from the load balancer itself nor from an address."""
    web = {route.group for route in routes if route.service and route.group}
    balancers = {route.load_balancer for route in routes}
    return {
        (edge.source, edge.destination)
        for edge in edges
        if edge.destination in web
        and edge.source not in balancers
        and edge.source != edge.destination
        and not edge.internet
        and not _is_address(edge.source)
    }


def mermaid(
    edges: Sequence[Edge],
    routes: Sequence[Route] = (),
    grants: Sequence[tuple[str, str, str]] = (),
    calls: Iterable[tuple[str, str]] = (),
) -> list[str]:
    """A Mermaid ``flowchart LR`` of the reachability edges; internet-facing sources are highlighted.

    With ``routes`` (a stage with several web services behind one load balancer) every web service is a node of
    its own: a security group that belongs to one service is drawn as that service, and thick arrows from the load
    balancer to each service carry the route (priority and hosts/paths) that sends requests there. ``grants``
    (:func:`grant_links`) add a dotted arrow from each service to each app resource it may use, labelled with the
    access; the edges in ``calls`` (:func:`call_edges`) are labelled as calls.
    """
    alias = service_nodes(routes)
    calls = {(alias.get(source, source), alias.get(destination, destination)) for source, destination in calls}
    grants = [(alias.get(source, source), destination, label) for source, destination, label in grants]
    edges = [
        replace(
            edge, source=alias.get(edge.source, edge.source), destination=alias.get(edge.destination, edge.destination)
        )
        for edge in edges
    ]
    # What the stage routes: its rules and a listener default that forwards (not EB's rule for each environment's
    # own CNAME, which every environment on a shared load balancer has).
    routed = [route for route in routes if route.service and (route.rule or route.priority == DEFAULT)]
    ids: dict[str, str] = {}
    names = {edge.source for edge in edges} | {edge.destination for edge in edges}
    names |= {route.load_balancer for route in routed} | {_service_node(route) for route in routed}
    names |= {source for source, _, _ in grants}
    stores = {destination for _, destination, _ in grants}
    for name in sorted(names):
        base = "n_" + (re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "node")
        node_id, suffix = base, 2
        while node_id in ids.values():
            node_id, suffix = f"{base}_{suffix}", suffix + 1
        ids[name] = node_id
    lines = ["```mermaid", "flowchart LR"]
    for name in sorted(stores):
        base = "r_" + (re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "node")
        node_id, suffix = base, 2
        while node_id in ids.values():
            node_id, suffix = f"{base}_{suffix}", suffix + 1
        ids[name] = node_id
    lines += [
        f'  {node_id}[("{_label(name)}")]' if name in stores else f'  {node_id}["{_label(name)}"]'
        for name, node_id in ids.items()
    ]
    links = sorted(
        {
            (
                ids[edge.source],
                ("calls · " if (edge.source, edge.destination) in calls else "") + _link_label(edge),
                ids[edge.destination],
            )
            for edge in edges
        }
    )
    lines += [f'  {source} -->|"{label}"| {destination}' for source, label, destination in links]
    traffic = dict.fromkeys((ids[r.load_balancer], _label(route_label(r)), ids[_service_node(r)]) for r in routed)
    lines += [f'  {source} ==>|"{label}"| {destination}' for source, label, destination in traffic]
    uses = sorted({(ids[source], _label(label), ids[destination]) for source, destination, label in grants})
    lines += [f'  {source} -.->|"{label}"| {destination}' for source, label, destination in uses]
    internet = sorted({ids[edge.source] for edge in edges if edge.internet})
    if internet:
        lines += ["  classDef internet fill:#fdd,stroke:#c00", f"  class {','.join(internet)} internet"]
    return [*lines, "```"]


def _is_address(name: str) -> bool:
    """A CIDR or prefix list peer (not a security group)."""
    return name.endswith(" CIDR") or bool(re.fullmatch(r"[0-9a-fA-F:.]+/\d+|pl-[0-9a-f]+", name))


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def _link_label(edge: Edge) -> str:
    return _label(edge.protocol if edge.ports == "all" and edge.protocol == "all" else f"{edge.protocol} {edge.ports}")


def _summary(report: Report) -> list[str]:
    counts = summarize(report)
    lines = [
        f"- **{counts['stacks']}** stacks, **{counts['resources']}** resources",
        f"- **{counts['reachability_edges']}** reachability edges, "
        f"**{counts['internet_facing_ingress']}** internet-facing ingress rules",
        f"- **{counts['secret_settings']}** secret settings, "
        f"**{counts['secret_settings_consumer_cannot_read']}** whose consumer has no IAM read grant",
        f"- **{counts['health_checks']}** health checks",
        f"- **{counts['alarms']}** alarms, **{counts['alarms_without_actions']}** without actions, "
        f"**{counts['alarms_without_dimensions']}** without dimensions",
        f"- **{counts['iam_principals']}** IAM principals, **{counts['wildcard_iam_statements']}** wildcard statements",
        f"- **{counts['stateful_resources']}** stateful resources",
    ]
    if "app_resources" in counts:
        lines.append(
            f"- **{counts['app_resources']}** buckets, queues, topics and e-mail identities, "
            f"**{counts['resource_grants']}** grants to services"
        )
    return lines


def _stacks(report: Report) -> list[str]:
    lines = table(
        ["Stack", "CloudFormation name", "Account", "Region", "Resources"],
        ([plain(s.name), code(s.stack_name), code(s.account), code(s.region), str(s.resources)] for s in report.stacks),
    )
    per_type = [[plain(s.name), code(kind), str(count)] for s in report.stacks for kind, count in s.types.items()]
    return [
        *lines,
        "",
        *details(f"Resources per type ({len(per_type)} rows)", table(["Stack", "Type", "Count"], per_type)),
    ]


def details(summary: str, body: Sequence[str]) -> list[str]:
    """A collapsed ``<details>`` block (GitHub renders the Markdown inside it)."""
    return ["<details>", f"<summary>{plain(summary)}</summary>", "", *body, "", "</details>"]


def _reachability(report: Report) -> list[str]:
    merged: dict[tuple[str, str, str, str, bool], tuple[set[str], set[str], set[str]]] = {}
    for e in report.reachability:
        directions, stacks, descriptions = merged.setdefault(
            (e.source, e.destination, e.protocol, e.ports, e.internet), (set(), set(), set())
        )
        directions.add(e.direction)
        stacks.add(e.stack)
        if e.description:
            descriptions.add(e.description)
    rows = (
        [
            code(source),
            code(destination),
            code(protocol),
            code(ports),
            " + ".join(sorted(directions)),
            plain(", ".join(sorted(stacks))),
            plain("; ".join(sorted(descriptions))),
            flags(["internet-facing"] if internet else []),
        ]
        for (source, destination, protocol, ports, internet), (directions, stacks, descriptions) in sorted(
            merged.items(), key=lambda item: (not item[0][4], item[0])
        )
    )
    headers = ["Source", "Destination", "Protocol", "Ports", "Rules", "Rule owner stack", "Description", "Flags"]
    lines = table(headers, rows)
    routes = report.routes if has_rules(report.routes) else []
    calls, grants = call_edges(report.reachability, report.routes), grant_links(report.resources)
    diagram = mermaid(report.reachability, routes, grants, calls)
    return [*lines, "", *diagram] if report.reachability or grants else lines


def _routing(report: Report) -> list[str]:
    """Per load balancer listener, in evaluation order: which requests go to which service, with its health check."""
    lines = [
        "Per listener in the order the load balancer evaluates it: the lowest priority first, the listener's "
        "default action for what no rule takes.",
    ]
    listeners: dict[tuple[str, str, str], list[Route]] = {}
    for route in report.routes:
        listeners.setdefault((route.stack, route.load_balancer, route.listener), []).append(route)
    for (stack, balancer, listener), routes in listeners.items():
        rows = (
            [
                code(r.priority),
                code(r.match) if r.rule else plain(r.match),
                f"**{plain(r.service)}**" if r.service else plain(r.action),
                code(r.target_group),
                code(r.health_path),
                code(r.health_port),
            ]
            for r in routes
        )
        headers = ["Priority", "Requests", "Go to", "Target group", "Health check path", "Health check port"]
        where = f"{balancer} · {listener}" + ("" if f"({stack})" in balancer else f" ({stack})")
        lines += ["", f"### {plain(where)}", "", *table(headers, rows)]
    return lines


def _services(report: Report) -> list[str]:
    rows = (
        [
            plain(s.stack),
            code(s.name),
            s.kind,
            s.runs_as,
            code(s.command),
            code(s.schedule) if s.schedule else "",
            ", ".join(s.reaches) or "-",
            codes(s.secrets),
        ]
        for s in report.services
    )
    return table(["Stack", "Service", "Kind", "Runs as", "Command", "Schedule", "Reaches", "Secrets"], rows)


def _resources(report: Report) -> list[str]:
    """The stage's own buckets, queues, topics and e-mail identities, then who may do what on each."""
    rows = (
        [
            code(r.short),
            r.kind,
            code(r.name),
            plain(r.encryption),
            plain(r.protection),
            plain(r.retention),
            plain(r.stack),
        ]
        for r in report.resources
    )
    headers = ["Resource", "Kind", "Name", "Encryption", "Versioning / dead-letter queue", "Stack deleted", "Stack"]
    grants = [
        [
            code(r.short),
            code(g.service),
            plain(g.stack),
            ", ".join(f"**{plain(level)}**" for level in g.access),
            codes(g.actions),
            plain(", ".join(g.targets)),
            code(g.role),
            flags(g.wildcards),
        ]
        for r in report.resources
        for g in r.grants
    ]
    grant_headers = ["Resource", "Service", "Target", "Access", "Actions", "On", "Role", "Wildcards"]
    unused = [code(r.short) for r in report.resources if not r.grants and "dead-letter queue of" not in r.protection]
    lines = [*table(headers, rows), "", "### Who may do what", "", *table(grant_headers, grants)]
    if unused:
        lines += ["", f"No service's role is granted access to: {', '.join(unused)}."]
    return lines


def _secrets(report: Report) -> list[str]:
    can_read = {True: "yes", False: "**no**", None: "?"}
    rows = (
        [
            code(u.target),
            plain(u.stack),
            u.source,
            code(u.setting),
            code(u.reference),
            u.kind,
            u.rotation,
            u.store,
            code(u.consumer),
            codes(u.readers),
            can_read[u.consumer_can_read],
        ]
        for u in report.secrets
    )
    headers = ["Target", "Stack", "Via", "Setting", "Parameter / secret", "Kind", "Changes", "Store", "Consumer"]
    headers += ["Readable by (IAM)"]
    return table([*headers, "Consumer can read"], rows)


def _health_checks(report: Report) -> list[str]:
    rows = (
        [
            code(h.target),
            plain(h.stack),
            h.kind,
            code(h.check),
            code(h.port),
            code(h.protocol),
            code(h.matcher),
            code(h.interval),
            code(h.timeout),
            f"{h.healthy or NONE} / {h.unhealthy or NONE}",
            code(h.grace),
        ]
        for h in report.health_checks
    )
    headers = ["Target", "Stack", "Kind", "Check", "Port", "Protocol", "Matcher", "Interval", "Timeout"]
    return table([*headers, "Healthy / unhealthy", "Grace"], rows)


def _alarm_table(alarms: Iterable[Alarm]) -> list[str]:
    rows = (
        [
            code(a.name),
            plain(a.stack),
            code(f"{a.namespace} {a.metric}".strip()),
            codes(a.dimensions),
            code(_condition(a)),
            code(a.treat_missing_data),
            codes(a.actions),
            flags(a.flags),
        ]
        for a in alarms
    )
    return table(["Alarm", "Stack", "Metric", "Dimensions", "Condition", "Missing data", "Actions", "Flags"], rows)


def _alarms(report: Report) -> list[str]:
    """One table; with several web services behind one load balancer, one table per service, then the rest."""
    if not has_rules(report.routes):
        return _alarm_table(report.alarms)
    lines: list[str] = []
    by_service: dict[tuple[str, str], list[Alarm]] = {}
    for alarm in report.alarms:
        if alarm.service:
            by_service.setdefault((alarm.stack, alarm.service), []).append(alarm)
    for stack, service in sorted(by_service):
        lines += [f"### Service {code(service)} ({plain(stack)})", "", *_alarm_table(by_service[(stack, service)]), ""]
    rest = [alarm for alarm in report.alarms if not alarm.service]
    return [*lines, "### Other alarms", "", *_alarm_table(rest)] if lines else _alarm_table(rest)


def _condition(alarm: Alarm) -> str:
    comparison = COMPARISONS.get(alarm.comparison, alarm.comparison)
    return f"{alarm.statistic} {comparison} {alarm.threshold} for {alarm.evaluation_periods} x {alarm.period}"


def _iam(report: Report) -> list[str]:
    rows = (
        [
            code(p.role),
            plain(p.stack),
            codes(p.assumed_by),
            codes(p.managed_policies),
            codes(p.actions),
            flags(sorted({flag for s in p.statements for flag in s.wildcards})),
        ]
        for p in report.iam
    )
    lines = table(["Principal", "Stack", "Assumed by", "Managed policies", "Allowed actions", "Wildcards"], rows)
    wildcard_rows = [
        [code(p.role), plain(p.stack), code(s.policy), codes(s.actions), codes(s.resources), flags(s.wildcards)]
        for p in report.iam
        for s in p.statements
        if s.wildcards
    ]
    headers = ["Principal", "Stack", "Policy", "Actions", "Resources", "Why"]
    return [*lines, "", "### Wildcard statements", "", *table(headers, wildcard_rows)]


def _stateful(report: Report) -> list[str]:
    headers = ["Stack", "Resource", "Type", "DeletionPolicy", "UpdateReplacePolicy"]
    rows = (
        [
            plain(r.stack),
            code(r.name or r.logical_id),
            code(r.type),
            code(r.deletion_policy),
            code(r.update_replace_policy),
        ]
        for r in report.stateful
    )
    return table(headers, rows)


def _nist(findings: Sequence[dict[str, object]]) -> list[str]:
    rows = (
        [
            code(str(item["rule"])),
            plain(str(item["description"])),
            str(len(item["resources"])) if isinstance(item["resources"], list) else "",
            plain(str(item["reason"])) if item["reason"] else "**open**",
        ]
        for item in findings
    )
    intro = "cdk-nag's NIST 800-53 R5 pack, run by `make scan` as a report (not a gate):"
    return [intro, "", *table(["Rule", "Finding", "Resources", "Accepted because"], rows)]


def render_markdown(report: Report, nist: Sequence[dict[str, object]] | None = None) -> str:
    """The full ``REVIEW.md`` text (with the NIST 800-53 R5 report when ``make scan`` wrote one)."""
    sections = [
        ("Stacks", _stacks),
        ("Services", _services),
        *([("Resources", _resources)] if report.resources else []),
        *([("Routing", _routing)] if has_rules(report.routes) else []),
        ("Reachability", _reachability),
        ("Secrets", _secrets),
        ("Health checks", _health_checks),
        ("Alarms", _alarms),
        ("IAM", _iam),
        ("Stateful resources", _stateful),
    ]
    lines = [
        "# Infrastructure review",
        "",
        "Generated by `python -m report` from the synthesized templates; do not edit by hand.",
        "",
        "## Summary",
        "",
        *_summary(report),
    ]
    for title, render in sections:
        lines += ["", f"## {title}", "", *render(report)]
    if nist is not None:
        lines += ["", "## NIST 800-53 R5", "", *_nist(nist)]
    return scrub("\n".join(lines) + "\n")


def render_json(report: Report) -> str:
    """The full ``review.json`` text: summary plus every section as lists of objects."""
    payload = {
        "summary": summarize(report),
        "stacks": [asdict(item) for item in report.stacks],
        "reachability": [asdict(item) for item in report.reachability],
        "secrets": [asdict(item) for item in report.secrets],
        "health_checks": [asdict(item) for item in report.health_checks],
        "alarms": [asdict(item) for item in report.alarms],
        "iam": [asdict(item) for item in report.iam],
        "stateful": [asdict(item) for item in report.stateful],
        "services": [asdict(item) for item in report.services],
        "routes": [{**asdict(item), "match": item.match, "rule": item.rule} for item in report.routes],
    }
    if report.resources:  # a stage without resources: the same document as before
        payload["resources"] = [asdict(item) for item in report.resources]
    return scrub(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
