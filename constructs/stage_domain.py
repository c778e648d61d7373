"""The stage's domain on one target: the certificate its HTTPS listener uses and, with a hosted zone, the DNS record.

With ``domain.certificate_arn`` the certificate is imported (no resource) and the DNS records are managed elsewhere.
With ``domain.hosted_zone_id`` + ``hosted_zone_name`` each target stack creates, in that zone (imported offline, no
lookup), an ACM certificate validated by DNS for exactly the name it answers (``AppConfig.domain_name``: the first
enabled target ``domain.name``, every other ``<target>.<domain.name>``) and the record: an alias A record to its ALB
(ECS, EKS) or a CNAME to the Elastic Beanstalk environment's endpoint. The first target also answers the host names
of the web services' routes inside the zone (``AppConfig.route_hosts``): they are names of its certificate, and each
gets its own alias record to the same load balancer.
"""

from __future__ import annotations

from aws_cdk import (
    aws_certificatemanager as acm,
    aws_elasticloadbalancingv2 as elbv2,
    aws_route53 as route53,
    aws_route53_targets as route53_targets,
)
from constructs import Construct

from config.schema import AppConfig
from config.services import pascal


class StageDomain(Construct):
    """``certificate`` for the HTTPS listener of ``target``; ``zone`` is None unless the stage names a hosted zone.

    Args:
        config: the stage; ``config.domain`` must be set.
        target: ``ecs``, ``eb`` or ``eks``: decides the name answered (``config.domain_name(target)``).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, target: str) -> None:
        super().__init__(scope, construct_id)
        domain = config.domain
        name = config.domain_name(target)
        assert domain is not None and name is not None, "StageDomain needs domain in the stage file"
        self.name = name
        self.hosts = config.route_hosts(target)
        self.zone: route53.IHostedZone | None = None
        self.record: route53.RecordSet | None = None
        self.host_records: list[route53.RecordSet] = []
        if domain.certificate_arn is not None:
            self.certificate: acm.ICertificate = acm.Certificate.from_certificate_arn(
                self, "Certificate", domain.certificate_arn
            )
            return
        assert domain.hosted_zone_id is not None and domain.hosted_zone_name is not None
        self.zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=domain.hosted_zone_id, zone_name=domain.hosted_zone_name
        )
        self.certificate = acm.Certificate(
            self,
            "Certificate",
            domain_name=name,
            subject_alternative_names=list(self.hosts) or None,
            validation=acm.CertificateValidation.from_dns(self.zone),
        )

    def alias_to(self, load_balancer: elbv2.ILoadBalancerV2) -> None:
        """With a hosted zone: ``name`` as an alias A record to ``load_balancer``."""
        if self.zone is not None:
            self.record = route53.ARecord(
                self,
                "Record",
                zone=self.zone,
                record_name=f"{self.name}.",
                target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(load_balancer)),
            )
            self.host_records = [
                route53.ARecord(
                    self,
                    f"Host{pascal(host.replace('.', '-'))}",
                    zone=self.zone,
                    record_name=f"{host}.",
                    target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(load_balancer)),
                )
                for host in self.hosts
            ]

    def cname_to(self, endpoint: str) -> None:
        """With a hosted zone: ``name`` as a CNAME to ``endpoint`` (an Elastic Beanstalk environment's URL)."""
        if self.zone is not None:
            self.record = route53.CnameRecord(
                self, "Record", zone=self.zone, record_name=f"{self.name}.", domain_name=endpoint
            )
