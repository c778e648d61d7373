"""manual-rollback: failed deploys roll back by themselves and keep capacity."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import k8s_objects


class ManualRollback:
    """Compliant: every ECS service has the deployment circuit breaker with rollback and keeps 100 % healthy;
    every Kubernetes Deployment rolls with maxUnavailable 0."""

    id = "manual-rollback"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for service in tree.of_type("AWS::ECS::Service"):
            deployment = service.props.get("deploymentConfiguration") or {}
            breaker = deployment.get("deploymentCircuitBreaker") or {}
            if breaker.get("enable") is not True or breaker.get("rollback") is not True:
                yield Finding(
                    self.id,
                    service.path,
                    f"circuit breaker {breaker or 'off'}",
                    "circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True)",
                )
            minimum = deployment.get("minimumHealthyPercent")
            if not isinstance(minimum, int) or minimum < 100:
                yield Finding(
                    self.id,
                    service.path,
                    f"minimumHealthyPercent={minimum}",
                    "min_healthy_percent=100 so a deploy never drops capacity",
                )
        for obj in k8s_objects(tree):
            if obj.kind != "Deployment":
                continue
            strategy = (obj.body.get("spec") or {}).get("strategy") or {}
            unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable")
            if strategy.get("type", "RollingUpdate") != "RollingUpdate" or str(unavailable) not in ("0", "0%"):
                yield Finding(
                    self.id,
                    obj.where,
                    f"strategy {strategy or 'default (25% unavailable)'}",
                    "rolling update with maxUnavailable: 0 and maxSurge >= 1 keeps capacity",
                )


RULE = ManualRollback()
