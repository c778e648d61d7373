"""deep-health-check: load balancers, EB and liveness checks never use the deep readiness path."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, strings
from constructs.guards.k8s import containers, k8s_objects, workloads

EB_PROCESS = "aws:elasticbeanstalk:environment:process:default"


class DeepHealthCheck:
    """Compliant: no target group, EB process or container health check points at ``health.readiness_path``;
    one DB blip must not take every target out of service."""

    id = "deep-health-check"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        ready = config.health.readiness_path
        fix = f"point it at the shallow liveness path {config.health.liveness_path!r}; readiness is for k8s only"
        for group in tree.of_type("AWS::ElasticLoadBalancingV2::TargetGroup"):
            if group.props.get("healthCheckPath") == ready:
                yield Finding(self.id, group.path, f"healthCheckPath={ready}", fix)
        for task in tree.of_type("AWS::ECS::TaskDefinition"):
            for container in task.get("containerDefinitions", default=[]) or []:
                if any(text.rstrip("'\"").endswith(ready) for text in strings(container.get("healthCheck"))):
                    yield Finding(self.id, task.path, f"container health check on {ready}", fix)
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment", "AWS::ElasticBeanstalk::ConfigurationTemplate"):
            for option in env.get("optionSettings", default=[]) or []:
                if (
                    option.get("namespace") == EB_PROCESS
                    and option.get("optionName") == "HealthCheckPath"
                    and option.get("value") == ready
                ):
                    yield Finding(self.id, env.path, f"HealthCheckPath={ready}", fix)
        for obj, spec in workloads(k8s_objects(tree)):
            for container in containers(spec):
                for probe in ("livenessProbe", "startupProbe"):
                    if ((container.get(probe) or {}).get("httpGet") or {}).get("path") == ready:
                        yield Finding(
                            self.id,
                            obj.where,
                            f"{container.get('name')} {probe} on {ready}",
                            f"{fix}; a failing dependency must not restart every pod",
                        )


RULE = DeepHealthCheck()
