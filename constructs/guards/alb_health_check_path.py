"""alb-health-check-path: every target group checks what the health contract says; grace covers boot time."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, eb_options

EB_PROCESS = "aws:elasticbeanstalk:environment:process:default"


class AlbHealthCheckPath:
    """Compliant: each ALB target group's path, port, matcher, interval, timeout and thresholds equal the health
    contract's, and so do the options of each Elastic Beanstalk environment's default process (whose load balancer
    EB creates itself: its ``HealthCheckPath`` is required unless the environment is single-instance); each ECS
    service behind a load balancer waits at least ``boot_seconds`` before checks count."""

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
        eb_expected = {
            "HealthCheckPath": health.liveness_path,
            "MatcherHTTPCode": health.matcher,
            "HealthCheckInterval": str(health.interval_seconds),
            "HealthCheckTimeout": str(health.timeout_seconds),
            "HealthyThresholdCount": str(health.healthy_threshold),
            "UnhealthyThresholdCount": str(health.unhealthy_threshold),
        }
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment", "AWS::ElasticBeanstalk::ConfigurationTemplate"):
            options = eb_options(env)
            # Without the option EB checks "/": required where this resource alone decides (no template behind it).
            required = (
                env.type == "AWS::ElasticBeanstalk::Environment"
                and not env.props.get("templateName")
                and options.get(("aws:elasticbeanstalk:environment", "EnvironmentType")) != "SingleInstance"
            )
            for name, want in eb_expected.items():
                got = options.get((EB_PROCESS, name))
                if (got is not None or (required and name == "HealthCheckPath")) and str(got) != want:
                    yield Finding(
                        self.id, env.path, f"{EB_PROCESS}/{name}={got}", f"use the health contract's value {want!r}"
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
