"""deep-health-check: load balancers, EB and liveness checks never use the deep readiness path."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, strings
from constructs.guards.k8s import containers, health_of, k8s_objects, web_service_of, workloads

EB_PROCESS = "aws:elasticbeanstalk:environment:process:default"


class DeepHealthCheck:
    """Compliant: no target group, EB process or container health check points at ``health.readiness_path``;
    one DB blip must not take every target out of service."""

    id = "deep-health-check"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        fix = f"point it at the shallow liveness path {config.health.liveness_path!r}; readiness is for k8s only"
        # Several web services: each one's deep path (never a path another one uses as its liveness path).
        contracts = [config.health, *(s.health for s in config.webs if s.health is not None)]
        deep = {c.readiness_path for c in contracts} - {c.liveness_path for c in contracts}
        for group in tree.of_type("AWS::ElasticLoadBalancingV2::TargetGroup"):
            path = group.props.get("healthCheckPath")
            if path in deep:
                yield Finding(self.id, group.path, f"healthCheckPath={path}", fix)
        for task in tree.of_type("AWS::ECS::TaskDefinition"):
            for container in task.get("containerDefinitions", default=[]) or []:
                texts = [text.rstrip("'\"") for text in strings(container.get("healthCheck"))]
                for path in sorted(p for p in deep if any(text.endswith(p) for text in texts)):
                    yield Finding(self.id, task.path, f"container health check on {path}", fix)
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment", "AWS::ElasticBeanstalk::ConfigurationTemplate"):
            # The deep path of the web service the environment runs (one environment per web service), and every
            # other service's.
            service = tree.eb_service_of(env)
            contract = service.health if service is not None and service.health is not None else config.health
            for option in env.get("optionSettings", default=[]) or []:
                path = option.get("value")
                if (
                    option.get("namespace") == EB_PROCESS
                    and option.get("optionName") == "HealthCheckPath"
                    and (path == contract.readiness_path or path in deep)
                ):
                    yield Finding(
                        self.id,
                        env.path,
                        f"HealthCheckPath={path}",
                        f"point it at the shallow liveness path {contract.liveness_path!r}; readiness is for k8s only",
                    )
        # A web service's pods: its own contract's deep path (and any other service's); other workloads: any.
        for obj, spec in workloads(k8s_objects(tree)):
            contract = health_of(config, obj)
            paths = deep | {contract.readiness_path} if web_service_of(config, obj) is not None else deep
            shallow = f"point it at the shallow liveness path {contract.liveness_path!r}; readiness is for k8s only"
            for container in containers(spec):
                for probe in ("livenessProbe", "startupProbe"):
                    path = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
                    if path in paths:
                        yield Finding(
                            self.id,
                            obj.where,
                            f"{container.get('name')} {probe} on {path}",
                            f"{shallow}; a failing dependency must not restart every pod",
                        )


RULE = DeepHealthCheck()
