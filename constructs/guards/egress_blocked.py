"""egress-blocked: every compute group of a service has exactly its declared egress (``egress:``) beyond HTTPS and the
DB/cache wiring: a declared port is open, and nothing else is (no hand-added open egress)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config.calls import called_ports
from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, compact, port_range
from constructs.guards.sg_compute_to_rds import POSTGRES_PORT, defined_group, egress_rules

REDIS_PORT = 6379
HTTPS = 443
HTTP = 80
WORLD = "0.0.0.0/0"


def _describe(rule: dict[str, Any]) -> str:
    ports = port_range(rule)
    shown = "all ports" if ports == (0, 65535) else f"ports {ports[0]}-{ports[1]}" if ports else "ports ?"
    if ports and ports[0] == ports[1]:
        shown = f"port {ports[0]}"
    peer = rule.get("cidrIp") or rule.get("cidrIpv6") or compact(rule.get("destinationSecurityGroupId"))
    return f"{rule.get('ipProtocol')} {shown} to {peer}"


class EgressBlocked:
    """Compliant: for every ECS / EB compute group the app defines, its egress rules are HTTPS (443) to a CIDR, TCP
    to a security group on the DB / cache port (the wiring sg-compute-to-rds and redis-sg check) or on the port of a
    web service it calls (service-call-blocked; plus port 80 out on EB without a domain), and exactly one
    TCP rule per declared ``(port, CIDR)`` of the service(s) in it.

    EKS services are exempt: Fargate pods run in the EKS-managed cluster security group, whose egress is open to
    everything and which this app does not own (``defined_group`` is None for it), so it can neither narrow it nor
    add rules to it per service; README "Egress" says so."""

    id = "egress-blocked"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        declared: dict[str, set[tuple[int, str]]] = {}
        called: dict[str, set[int]] = {}  # ports of the web services it calls (service-call-blocked checks whom)
        labels: dict[str, list[str]] = {}
        for target in tree.targets:
            if target.kind == "eks":
                continue  # the EKS-managed cluster group: open egress, not ours to narrow (see the docstring)
            token = target.security_group.security_group_id
            declared.setdefault(token, set()).update((port, cidr) for port, cidr, _ in target.service.egress)
            call_ports = set(called_ports(config, target.service).values())
            called.setdefault(token, set()).update(call_ports)
            if call_ports and target.kind == "eb" and config.domain is None:
                declared[token].add((HTTP, WORLD))  # calls through the load balancer over HTTP (config/calls.py)
            labels.setdefault(token, []).append(target.label)
        for token, expected in declared.items():
            group = defined_group(tree, token)
            if group is None:
                continue
            label = ", ".join(labels[token])
            found: set[tuple[int, str]] = set()
            for resource, rule in egress_rules(tree, group):
                ports = port_range(rule)
                protocol = str(rule.get("ipProtocol"))
                cidr = rule.get("cidrIp")
                tcp = protocol in ("tcp", "6")
                wiring = ports is None or ports in ((POSTGRES_PORT, POSTGRES_PORT), (REDIS_PORT, REDIS_PORT))
                if tcp and rule.get("destinationSecurityGroupId") is not None and wiring:
                    continue  # the DB / cache wiring (a token port is the DB endpoint's)
                to_group = tcp and rule.get("destinationSecurityGroupId") is not None
                if to_group and ports is not None and ports[0] == ports[1] and ports[0] in called[token]:
                    continue  # a service call (services.<name>.calls) to a web service's group on its port
                if tcp and cidr is not None and not isinstance(cidr, str):
                    if wiring:
                        continue  # the VPC's own CIDR (a token) on the DB / cache port: inside the VPC only
                    cidr = compact(cidr)  # a token CIDR on another port is never a declared one
                if tcp and cidr and ports == (HTTPS, HTTPS):
                    continue
                if tcp and cidr and ports is not None and ports[0] == ports[1] and (ports[0], cidr) in expected:
                    found.add((ports[0], cidr))
                    continue
                yield Finding(
                    self.id,
                    resource.path,
                    f"undeclared egress {_describe(rule)} on the compute group of {label}",
                    "remove it (no allow_all_outbound, no all-ports rule); declare the port in the stage file's "
                    "egress: (or services.<name>.egress) instead",
                )
            for port, cidr in sorted(expected - found):
                yield Finding(
                    self.id,
                    group.path,
                    f"declared egress tcp {port} to {cidr} missing from the compute group of {label}",
                    "build the group with task_security_group(..., service) / add_declared_egress; do not remove "
                    "the rule",
                )


RULE = EgressBlocked()
