"""domain-misrouted: with a hosted-zone domain, every target stack answers its name (a record in the zone) and serves
it with its own certificate for exactly that name on its HTTPS listener."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config.schema import AppConfig
from constructs.guards.framework import Finding, Resource, Tree, compact, eb_options

CERTIFICATE = "AWS::CertificateManager::Certificate"
RECORD = "AWS::Route53::RecordSet"
LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
EB_ENVIRONMENT = "AWS::ElasticBeanstalk::Environment"


class DomainMisrouted:
    """Compliant: for ``domain.hosted_zone_id``, each enabled target's stack holds a DNS-validated ACM certificate
    for ``AppConfig.domain_name(target)``, a record of that name in the zone, and an HTTPS listener (ALB listener
    or EB ``aws:elbv2:listener:443`` ``SSLCertificateArns``) that uses that certificate (``StageDomain`` does)."""

    id = "domain-misrouted"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        domain = config.domain
        if domain is None or not domain.managed:
            return
        for target in config.targets:
            name = config.domain_name(target)
            stack_name = config.stack_name(target)
            own = [r for r in tree.resources if r.stack.stack_name == stack_name]
            if not own or name is None:
                continue  # the target's stack is not part of this app
            certificates = [r for r in own if r.type == CERTIFICATE and r.props.get("domainName") == name]
            if not certificates:
                yield Finding(
                    self.id,
                    stack_name,
                    f"no ACM certificate for {name}",
                    f"create it validated by DNS in zone {domain.hosted_zone_id} (StageDomain)",
                )
            records = [
                r
                for r in own
                if r.type == RECORD
                and r.props.get("name") == f"{name}."
                and r.props.get("hostedZoneId") == domain.hosted_zone_id
            ]
            if not records:
                yield Finding(
                    self.id,
                    stack_name,
                    f"no record {name} in zone {domain.hosted_zone_id}",
                    "add it (alias A to the ALB, CNAME to the EB endpoint) with StageDomain",
                )
            refs = [_ref(r) for r in certificates]
            used = list(_listener_certificates(own))
            if certificates and not any(value in refs for _, value in used):
                where = ", ".join(f"{path}: {compact(value)}" for path, value in used) or "no HTTPS listener"
                yield Finding(
                    self.id,
                    stack_name,
                    f"the HTTPS listener does not use the certificate of {name} ({where})",
                    "pass StageDomain.certificate to the load balancer / EB environment",
                )


def _ref(resource: Resource) -> Any:
    return resource.stack.resolve(resource.node.ref)


def _listener_certificates(resources: list[Resource]) -> Iterator[tuple[str, Any]]:
    """(path, certificate ARN value) of every HTTPS listener of the stack."""
    for resource in resources:
        if resource.type == LISTENER and resource.props.get("protocol") == "HTTPS":
            for certificate in resource.props.get("certificates") or []:
                yield resource.path, certificate.get("certificateArn")
        elif resource.type == EB_ENVIRONMENT:
            value = eb_options(resource).get(("aws:elbv2:listener:443", "SSLCertificateArns"))
            if value is not None:
                yield resource.path, value


RULE = DomainMisrouted()
