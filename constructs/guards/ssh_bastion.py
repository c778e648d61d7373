"""ssh-bastion: no port 22 ingress anywhere; operators use Session Manager."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, ingress_rules, port_range


class SshBastion:
    """Compliant: no ingress rule opens TCP 22, and no all-traffic rule admits a CIDR."""

    id = "ssh-bastion"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for resource, rule in ingress_rules(tree):
            ports = port_range(rule)
            all_traffic = str(rule.get("ipProtocol")) in ("-1", "all")
            cidr = rule.get("cidrIp") or rule.get("cidrIpv6")
            opens_22 = ports is not None and ports[0] <= 22 <= ports[1]
            if (opens_22 and not all_traffic) or (all_traffic and cidr):
                source = cidr or rule.get("sourceSecurityGroupId") or "a security group"
                yield Finding(
                    self.id,
                    resource.path,
                    f"ingress to port 22 from {source}",
                    "remove the rule; reach instances and tasks with SSM Session Manager / ECS Exec",
                )


RULE = SshBastion()
