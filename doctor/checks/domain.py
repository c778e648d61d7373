"""domain-misrouted: every name the stage answers resolves to its load balancer, and the certificate in use is
issued and not about to expire.

Names: with ``domain.hosted_zone_id`` each target answers its own name (``AppConfig.domain_name``: the first target
``domain.name``, the others ``<target>.<domain.name>``) and must resolve to *its* load balancer; with
``domain.certificate_arn`` (records managed elsewhere) ``domain.name`` must resolve to the load balancer of one of
the stage's targets. Load balancers: the target stacks' ``LoadBalancerDnsName`` (ECS, EKS) or ``EnvironmentUrl`` (EB)
outputs, compared by the addresses both resolve to now. Certificates: ``domain.certificate_arn``, or each target
stack's ``CertificateArn`` output (the one its listener uses).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from doctor.aws import error_code
from doctor.model import Context, Finding, NotChecked, fail, ok, warn

CHECK = "domain-misrouted"
EXPIRY_MARGIN = timedelta(days=30)
Resolver = Callable[[str], set[str]]


def getaddrinfo_resolver(name: str) -> set[str]:
    """The addresses ``name`` resolves to here (IPv4 and IPv6); empty when it does not resolve."""
    try:
        answers = socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return set()
    return {str(answer[4][0]) for answer in answers}


# Injectable for tests (``monkeypatch.setattr(domain, "resolver", fake)``), like ``secrets.clock``.
resolver: Resolver = getaddrinfo_resolver


def clock() -> datetime:
    return datetime.now(UTC)


def misrouted(ctx: Context, resolve: Resolver | None = None) -> list[Finding]:
    """domain-misrouted: names resolve to the stage's load balancers; certificates ISSUED, 30+ days left."""
    domain = ctx.config.domain
    if domain is None:
        return []
    lookup = resolve or resolver
    endpoints = {
        **ctx.target_outputs("LoadBalancerDnsName"),
        **{t: _host(url) for t, url in ctx.target_outputs("EnvironmentUrl").items()},
    }
    if not endpoints:
        raise NotChecked("no target stack with a LoadBalancerDnsName / EnvironmentUrl output is deployed")
    findings: list[Finding] = []
    if domain.managed:
        names = ctx.target_outputs("DomainName")
        for target, endpoint in endpoints.items():
            name = names.get(target) or ctx.config.domain_name(target) or domain.name
            findings.append(_routed(ctx, lookup, name, {target: endpoint}))
        certificates = ctx.target_outputs("CertificateArn")
        for target in endpoints:
            if target not in certificates:
                findings.append(
                    warn(
                        CHECK,
                        ctx.config.stack_name(target),
                        "no CertificateArn output: the stack predates domain.hosted_zone_id; deploy it",
                    )
                )
    else:
        findings.append(_routed(ctx, lookup, domain.name, endpoints))
        certificates = {"domain": domain.certificate_arn} if domain.certificate_arn else {}
    acm = ctx.client("acm")
    for arn in dict.fromkeys(certificates.values()):
        findings.append(_certificate(ctx, acm, arn))
    return findings


def _host(url: str) -> str:
    """``EnvironmentUrl`` is a host name; tolerate a scheme or path."""
    return url.split("://", 1)[-1].split("/", 1)[0]


def _routed(ctx: Context, lookup: Resolver, name: str, endpoints: dict[str, str]) -> Finding:
    """``name`` resolves to an address of one of ``endpoints`` ({target: load balancer host})."""
    domain = ctx.config.domain
    assert domain is not None
    addresses = lookup(name)
    wanted = ", ".join(f"{t} {host}" for t, host in endpoints.items())
    if not addresses:
        if domain.managed:
            fix = (
                f"the stack's record is in zone {domain.hosted_zone_name} ({domain.hosted_zone_id}); if the zone "
                "is not the one the registrar / parent zone delegates to, resolvers never see it: compare "
                f"`aws route53 get-hosted-zone --id {domain.hosted_zone_id}` NameServers with "
                f"`dig NS {domain.hosted_zone_name}`"
            )
        else:
            fix = f"create a record for it in your DNS (alias A or CNAME) to {wanted}"
        return fail(CHECK, name, f"does not resolve: {fix}")
    for target, host in endpoints.items():
        balancer = lookup(host)
        if addresses & balancer:
            return ok(CHECK, name, f"resolves to the {target} load balancer ({host})")
    if not any(lookup(host) for host in endpoints.values()):
        return warn(CHECK, name, f"the load balancer names do not resolve here ({wanted}); cannot compare")
    if domain.managed:
        fix = (
            f"the stack's record in zone {domain.hosted_zone_name} is not what resolvers see: check the "
            "delegation (NS) of the zone, and that no other zone or record answers this name"
        )
    else:
        fix = f"point its record (alias A or CNAME) at {wanted}"
    return fail(CHECK, name, f"resolves to {', '.join(sorted(addresses))}, not the stage's load balancer: {fix}")


def _certificate(ctx: Context, acm: Any, arn: str) -> Finding:
    """The certificate is ISSUED and its NotAfter is more than ``EXPIRY_MARGIN`` away."""
    try:
        certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except Exception as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return fail(
            CHECK,
            arn,
            f"no such certificate in {ctx.region}: request one there (ALBs use certificates of their region)",
        )
    status = certificate.get("Status", "?")
    if status == "PENDING_VALIDATION":
        records = [
            f"{o['ResourceRecord']['Name']} CNAME {o['ResourceRecord']['Value']}"
            for o in certificate.get("DomainValidationOptions", [])
            if o.get("ResourceRecord") and o.get("ValidationStatus") != "SUCCESS"
        ]
        return fail(
            CHECK,
            arn,
            "pending validation: ACM waits for its DNS validation record(s) to resolve publicly; create them "
            "(with hosted_zone_id the stack did, so the zone is not the delegated one), then wait",
            detail="\n".join(records),
        )
    if status != "ISSUED":
        return fail(
            CHECK,
            arn,
            f"status {status}: the listener cannot serve it; request a new certificate (DNS validation) and deploy",
        )
    not_after = certificate.get("NotAfter")
    if isinstance(not_after, datetime):
        left = not_after - clock()
        if left < EXPIRY_MARGIN:
            renewal = (certificate.get("RenewalSummary") or {}).get("RenewalStatus", "none")
            fix = (
                "import a renewed certificate under the same ARN (`aws acm import-certificate --certificate-arn`)"
                if certificate.get("Type") == "IMPORTED"
                else "ACM renews a DNS-validated certificate only while its validation CNAME still resolves and "
                "the certificate is in use: restore the validation record"
            )
            return warn(
                CHECK,
                arn,
                f"expires {not_after:%Y-%m-%d} ({max(left.days, 0)} days), renewal {renewal}: {fix}",
            )
        return ok(CHECK, arn, f"ISSUED, valid until {not_after:%Y-%m-%d}")
    return ok(CHECK, arn, "ISSUED")
