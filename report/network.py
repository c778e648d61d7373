"""Reachability: who can reach what, from security group rules (standalone and inline).

Ingress rules yield ``peer -> group`` edges (CIDR, prefix list or security group peers); egress rules
yield ``group -> peer`` edges for security group and prefix-list peers, and for CIDR peers on one TCP port other
than 443: a service's declared egress (``egress:``), per service group (HTTPS out and "allow all outbound" are
not a reachability concern). ``0.0.0.0/0`` / ``::/0`` ingress is flagged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from report.assembly import Stack
from report.intrinsics import as_list, fmt
from report.resolve import Resolver

INTERNET = ("0.0.0.0/0", "::/0")
PROTOCOLS = {"-1": "all", "1": "icmp", "6": "tcp", "17": "udp", "58": "icmpv6"}


@dataclass(frozen=True, order=True)
class Edge:
    """One allowed network path: ``source`` may reach ``destination`` on ``protocol``/``ports``."""

    source: str
    destination: str
    protocol: str
    ports: str
    direction: str
    stack: str
    rule: str
    description: str
    internet: bool


def _rules(stack: Stack) -> Iterator[tuple[str, Any, Mapping[str, Any], str]]:
    """``(direction, group reference, rule, rule id)`` for standalone and inline security group rules."""
    for logical_id, properties in stack.of_type("AWS::EC2::SecurityGroupIngress"):
        yield "ingress", properties.get("GroupId", properties.get("GroupName")), properties, logical_id
    for logical_id, properties in stack.of_type("AWS::EC2::SecurityGroupEgress"):
        yield "egress", properties.get("GroupId"), properties, logical_id
    for logical_id, properties in stack.of_type("AWS::EC2::SecurityGroup"):
        for direction, key in (("ingress", "SecurityGroupIngress"), ("egress", "SecurityGroupEgress")):
            for rule in as_list(properties.get(key)):
                if isinstance(rule, dict):
                    yield direction, {"Ref": logical_id}, rule, f"{logical_id} (inline)"


def _ports(rule: Mapping[str, Any], protocol: str, resolver: Resolver, stack: Stack) -> str:
    low, high = rule.get("FromPort"), rule.get("ToPort")
    if protocol == "all" or (low is None and high is None) or low == -1:
        return "all"
    if high is None or low == high:
        return resolver.display(low, stack)
    if low is None:
        return resolver.display(high, stack)
    if protocol.startswith("icmp"):
        return f"type {fmt(low)} code {'all' if high == -1 else fmt(high)}"
    return f"{resolver.display(low, stack)}-{resolver.display(high, stack)}"


def _declared_port(rule: Mapping[str, Any]) -> bool:
    """A CIDR egress rule on one TCP port other than HTTPS: what a stage's ``egress:`` adds to a service's group."""
    low, high = rule.get("FromPort"), rule.get("ToPort")
    tcp = fmt(rule.get("IpProtocol", "-1")).lower() in ("tcp", "6")
    return tcp and isinstance(low, int) and low == high and low != 443


def _edge(
    direction: str, group: Any, rule: Mapping[str, Any], stack: Stack, rule_id: str, resolver: Resolver
) -> Edge | None:
    peers: tuple[str, ...]
    if direction == "ingress":
        peers = ("CidrIp", "CidrIpv6", "SourceSecurityGroupId", "SourceSecurityGroupName", "SourcePrefixListId")
    else:  # CIDR egress on one TCP port is a declared egress (egress:); HTTPS and "allow all outbound" are not shown
        peers = ("DestinationSecurityGroupId", "DestinationPrefixListId", "CidrIp")
    peer_key = next((key for key in peers if key in rule), None)
    if peer_key is None:
        return None
    if direction == "egress" and peer_key == "CidrIp" and not _declared_port(rule):
        return None
    if "SecurityGroup" in peer_key:
        peer = resolver.security_group(rule[peer_key], stack)
    else:
        peer = resolver.display(rule[peer_key], stack)
    owner = resolver.security_group(group, stack)
    raw_protocol = fmt(rule.get("IpProtocol", "-1")).lower()
    protocol = PROTOCOLS.get(raw_protocol, raw_protocol)
    source, destination = (peer, owner) if direction == "ingress" else (owner, peer)
    return Edge(
        source=source,
        destination=destination,
        protocol=protocol,
        ports=_ports(rule, protocol, resolver, stack),
        direction=direction,
        stack=stack.name,
        rule=rule_id,
        description=resolver.readable_text(fmt(rule.get("Description")), stack),
        internet=direction == "ingress" and peer in INTERNET,
    )


def _eks_endpoints(stack: Stack) -> Iterator[Edge]:
    """A public EKS API endpoint is an ingress too: from its allowed CIDRs (default: anywhere) on 443."""
    for logical_id, properties in stack.of_type("AWS::EKS::Cluster"):
        config = properties.get("ResourcesVpcConfig") or {}
        if config.get("EndpointPublicAccess") not in (True, "true"):
            continue
        for cidr in as_list(config.get("PublicAccessCidrs")) or ["0.0.0.0/0"]:
            yield Edge(
                fmt(cidr),
                f"EKS API endpoint ({stack.name})",
                "tcp",
                "443",
                "ingress",
                stack.name,
                logical_id,
                "public Kubernetes API endpoint (kubectl, the API server)",
                fmt(cidr) in INTERNET,
            )


def extract_reachability(stacks: Sequence[Stack], resolver: Resolver | None = None) -> list[Edge]:
    """Security-group-to-security-group edges, every CIDR / prefix-list ingress and public EKS API endpoints."""
    resolver = resolver or Resolver(stacks)
    edges = {
        edge
        for stack in stacks
        for direction, group, rule, rule_id in _rules(stack)
        if (edge := _edge(direction, group, rule, stack, rule_id, resolver)) is not None
    }
    edges.update(edge for stack in stacks for edge in _eks_endpoints(stack))
    return sorted(edges)
