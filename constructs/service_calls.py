"""Service-to-service calls on ECS and Elastic Beanstalk: Cloud Map names and the callers' network rules.

What a caller receives (``<NAME>_URL``) is config/calls.py, delivered with its runtime values. Here: the ECS target's
private DNS namespace, the registration of each called web service in it, and the security-group rules, made from the
caller's side like the DB / cache wiring (``wire_to_data``): the caller's group may reach the callee's group on the
callee's port and the callee's group admits it (service-call-blocked). EKS needs nothing: every Fargate pod runs in
the cluster security group, which admits itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, aws_ec2 as ec2, aws_ecs as ecs, aws_servicediscovery as servicediscovery
from constructs import Construct

from config.calls import called_ports, namespace_name
from config.schema import AppConfig
from constructs.compute_target import ComputeTarget

HTTP = 80


def called_services(config: AppConfig) -> set[str]:
    """The web services some service of the stage calls."""
    return {name for service in config.workloads for name in service.calls}


def register_called(
    scope: Construct, config: AppConfig, vpc: ec2.IVpc, services: Mapping[str, ecs.FargateService]
) -> servicediscovery.PrivateDnsNamespace | None:
    """``CallNamespace`` of ``scope`` (``<app>-<stage>.local``, private to the VPC) with each called web service of
    ``services`` registered as ``<name>`` (A records of its tasks); None when no service calls another."""
    called = called_services(config)
    if not called:
        return None
    namespace = servicediscovery.PrivateDnsNamespace(
        scope, "CallNamespace", name=namespace_name(config), vpc=vpc, description="service-to-service calls"
    )
    for name in sorted(called):
        services[name].enable_cloud_map(
            cloud_map_namespace=namespace,
            name=name,
            dns_record_type=servicediscovery.DnsRecordType.A,
            dns_ttl=Duration.seconds(10),
        )
    return namespace


def allow_calls(targets: Sequence[ComputeTarget], config: AppConfig) -> None:
    """The callers' rules among ``targets`` (the ComputeTargets of one stack).

    ECS: caller group -> callee group on the callee's port, both sides (egress on the caller, ingress on the callee).
    EB: a call leaves through the NAT gateways for the internet-facing ALB: HTTPS (443) is open on every compute
    group; without a domain the URL is HTTP and the caller's group also gets port 80 out."""
    webs = {t.service.name: t for t in targets if t.service.is_web}
    for caller in targets:
        service = caller.service
        for name, port in called_ports(config, service).items():
            if caller.kind == "ecs":
                callee = webs[name]
                caller.security_group.connections.allow_to(
                    callee.security_group, ec2.Port.tcp(port), f"ECS {service.name} calls {name}"
                )
            elif caller.kind == "eb" and config.domain is None:
                caller.security_group.add_egress_rule(
                    ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTP), "calls to the stage's load balancer over HTTP"
                )
