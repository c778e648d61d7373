"""tls-certificate: with a domain, HTTPS with its ACM certificate and HTTP redirected; staging and prod never serve
plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree


class TlsCertificate:
    """Compliant: when ``domain`` is set, each ALB has an HTTPS listener with a certificate and every HTTP
    listener only redirects to HTTPS; in staging and prod no listener forwards plain HTTP."""

    id = "tls-certificate"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        listeners = tree.of_type("AWS::ElasticLoadBalancingV2::Listener")
        for alb in tree.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer"):
            own = [listener for listener in listeners if listener.stack is alb.stack]
            https = [x for x in own if x.props.get("protocol") == "HTTPS" and x.props.get("certificates")]
            if config.domain is not None and not https:
                yield Finding(
                    self.id,
                    alb.path,
                    "no HTTPS listener with a certificate",
                    f"serve {config.domain.name} on 443 with domain.certificate_arn",
                )
            for listener in own:
                if listener.props.get("protocol") != "HTTP":
                    continue
                actions = [a.get("type") for a in listener.props.get("defaultActions") or []]
                if actions != ["redirect"] and (config.domain is not None or config.stage in ("staging", "prod")):
                    yield Finding(
                        self.id,
                        listener.path,
                        f"HTTP listener with actions {actions}",
                        "redirect HTTP to HTTPS (staging and prod refuse plain HTTP)",
                    )


RULE = TlsCertificate()
