"""alb-health-check-path: every target group checks what the health contract says; grace covers boot time."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree


class AlbHealthCheckPath:
    """Compliant: each ALB target group's path, port, matcher, interval, timeout and thresholds equal the health
    contract's; each ECS service behind a load balancer waits at least ``boot_seconds`` before checks count."""

    id = "alb-health-check-path"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        health = config.health
        expected = {
            "healthCheckPath": health.liveness_path,
            "healthCheckPort": str(config.health_port),
            "healthCheckIntervalSeconds": health.interval_seconds,
            "healthCheckTimeoutSeconds": health.timeout_seconds,
            "healthyThresholdCount": health.healthy_threshold,
            "unhealthyThresholdCount": health.unhealthy_threshold,
        }
        for group in tree.of_type("AWS::ElasticLoadBalancingV2::TargetGroup"):
            for field, want in expected.items():
                got = group.props.get(field)
                if got != want and not (
                    field == "healthCheckPort" and got == "traffic-port" and config.health_port == config.container_port
                ):
                    yield Finding(self.id, group.path, f"{field}={got}", f"use the health contract's value {want!r}")
            matcher = group.get("matcher", "httpCode")
            if matcher != health.matcher:
                yield Finding(
                    self.id, group.path, f"matcher={matcher}", f"use the health contract's {health.matcher!r}"
                )
        for service in tree.of_type("AWS::ECS::Service"):
            grace = service.props.get("healthCheckGracePeriodSeconds")
            if service.props.get("loadBalancers") and (not isinstance(grace, int) or grace < health.boot_seconds):
                yield Finding(
                    self.id,
                    service.path,
                    f"healthCheckGracePeriodSeconds={grace}",
                    f"set it to at least health.boot_seconds={health.boot_seconds}",
                )


RULE = AlbHealthCheckPath()
