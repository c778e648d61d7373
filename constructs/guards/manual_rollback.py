"""manual-rollback: failed deploys roll back by themselves and keep capacity."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree


class ManualRollback:
    """Compliant: every ECS service has the deployment circuit breaker with rollback and keeps 100 % healthy."""

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


RULE = ManualRollback()
