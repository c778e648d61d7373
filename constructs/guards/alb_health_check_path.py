"""alb-health-check-path: every target group checks what the health contract says; grace covers boot time."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, eb_options

EB_PROCESS = "aws:elasticbeanstalk:environment:process:default"


class AlbHealthCheckPath:
    """Compliant: each ALB target group's path, port, matcher, interval, timeout and thresholds equal the health
    contract's (its web service's own, ``services.<name>.health`` / ``port``), and so do the options of each Elastic
    Beanstalk environment's default process (its web service's contract too: one environment per web service; its
    ``HealthCheckPath`` is required unless the environment is single-instance); each ECS service behind a load
    balancer waits at least ``boot_seconds`` before checks count."""

    id = "alb-health-check-path"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        health = config.health
        for group in tree.of_type("AWS::ElasticLoadBalancingV2::TargetGroup"):
            # A web service's own contract (services.<name>.health, port); the stage's for any other group.
            service = tree.web_service_of(group)
            contract = service.health if service is not None and service.health is not None else health
            port = service.port if service is not None and service.port else config.container_port
            health_port = contract.port or port
            expected = {
                "healthCheckPath": contract.liveness_path,
                "healthCheckPort": str(health_port),
                "healthCheckIntervalSeconds": contract.interval_seconds,
                "healthCheckTimeoutSeconds": contract.timeout_seconds,
                "healthyThresholdCount": contract.healthy_threshold,
                "unhealthyThresholdCount": contract.unhealthy_threshold,
            }
            for field, want in expected.items():
                got = group.props.get(field)
                if got != want and not (field == "healthCheckPort" and got == "traffic-port" and health_port == port):
                    yield Finding(self.id, group.path, f"{field}={got}", f"use the health contract's value {want!r}")
            if group.props.get("healthCheckEnabled") is False:  # a listener rule to it would route blind
                yield Finding(self.id, group.path, "healthCheckEnabled=false", "check the contract's liveness path")
            matcher = group.get("matcher", "httpCode")
            if matcher != contract.matcher:
                yield Finding(
                    self.id, group.path, f"matcher={matcher}", f"use the health contract's {contract.matcher!r}"
                )
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment", "AWS::ElasticBeanstalk::ConfigurationTemplate"):
            # The contract of the web service the environment runs (one environment per web service); the stage's
            # for an environment or template no BeanstalkEnvironment built.
            owner = tree.eb_service_of(env)
            contract = owner.health if owner is not None and owner.health is not None else health
            eb_expected = {
                "HealthCheckPath": contract.liveness_path,
                "MatcherHTTPCode": contract.matcher,
                "HealthCheckInterval": str(contract.interval_seconds),
                "HealthCheckTimeout": str(contract.timeout_seconds),
                "HealthyThresholdCount": str(contract.healthy_threshold),
                "UnhealthyThresholdCount": str(contract.unhealthy_threshold),
            }
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
        for ecs_service in tree.of_type("AWS::ECS::Service"):
            grace = ecs_service.props.get("healthCheckGracePeriodSeconds")
            web = tree.web_service_behind(ecs_service)
            boot = (web.health if web is not None and web.health is not None else health).boot_seconds
            if ecs_service.props.get("loadBalancers") and (not isinstance(grace, int) or grace < boot):
                yield Finding(
                    self.id,
                    ecs_service.path,
                    f"healthCheckGracePeriodSeconds={grace}",
                    f"set it to at least health.boot_seconds={boot}",
                )


RULE = AlbHealthCheckPath()
