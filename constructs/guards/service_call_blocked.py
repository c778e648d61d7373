"""service-call-blocked: on ECS, a web service that another service calls admits the caller's group on its port."""

from __future__ import annotations

from collections.abc import Iterator

from aws_cdk import Stack

from config.calls import called_ports
from config.schema import AppConfig
from constructs.compute_target import ComputeTarget
from constructs.guards.framework import Finding, Tree, group_admits


class ServiceCallBlocked:
    """Compliant: for each ECS service that declares ``calls: [x]``, in its stack: an ingress rule on x's security
    group from the caller's group covering x's port, and the caller's egress rule to x's group on that port (the
    caller's group allows no other outbound traffic). Elastic Beanstalk callers go through the load balancer (HTTPS
    out, checked by egress-blocked) and EKS pods share the cluster group, so neither has a rule to check here."""

    id = "service-call-blocked"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        ingress = tree.of_type("AWS::EC2::SecurityGroupIngress")
        egress = tree.of_type("AWS::EC2::SecurityGroupEgress")
        for caller in tree.targets:
            if caller.kind != "ecs":
                continue
            for name, port in called_ports(config, caller.service).items():
                callees = [t for t in _webs(tree, caller) if t.service.name == name]
                if not callees:
                    yield Finding(
                        self.id,
                        caller.node.path,
                        f"{caller.label} calls {name}, which does not run in its stack",
                        f"declare {name} (kind: web) in services: on this target",
                    )
                for callee in callees:
                    source, group = caller.security_group.security_group_id, callee.security_group.security_group_id
                    if not group_admits(ingress, group=group, source=source, port=port):
                        yield Finding(
                            self.id,
                            callee.node.path,
                            f"the {callee.label} group does not admit {caller.label} on {port}, which calls it",
                            "wire calls from the caller's side: constructs/service_calls.py allow_calls (the caller's "
                            "connections.allow_to the callee's group on its port)",
                        )
                    if not group_admits(egress, group=source, destination=group, port=port):
                        yield Finding(
                            self.id,
                            caller.node.path,
                            f"{caller.label} has no egress to the {callee.label} group on {port}, which it calls",
                            "wire calls from the caller's side: constructs/service_calls.py allow_calls",
                        )


def _webs(tree: Tree, caller: ComputeTarget) -> list[ComputeTarget]:
    """The web services declared on the caller's target, in its stack."""
    stack = Stack.of(caller)
    return [t for t in tree.targets if t.kind == caller.kind and t.service.is_web and Stack.of(t) is stack]


RULE = ServiceCallBlocked()
