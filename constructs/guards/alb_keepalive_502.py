"""alb-keepalive-502: ALB idle timeout below the app's keep-alive, both from one value passed to the container."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.compute_target import KEEP_ALIVE
from constructs.guards.framework import Finding, Tree, plain_env

DEFAULT_IDLE_SECONDS = 60


class AlbKeepalive502:
    """Compliant: each ALB's ``idle_timeout.timeout_seconds`` is below ``KEEP_ALIVE_SECONDS`` of every target in
    its stack, and every such target receives ``KEEP_ALIVE_SECONDS``."""

    id = "alb-keepalive-502"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for alb in tree.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer"):
            attributes = {a.get("key"): a.get("value") for a in alb.props.get("loadBalancerAttributes") or []}
            idle = int(attributes.get("idle_timeout.timeout_seconds", DEFAULT_IDLE_SECONDS))
            # The task definitions of services behind the ALB (workers, jobs and migrations are not).
            behind = {r.path for t in tree.targets if t.load_balancer_group for r in tree.computes_of(t)}
            computes = [r for r in tree.in_stack_of(alb.node, "AWS::ECS::TaskDefinition") if r.path in behind]
            keep_alive = {e.resource.path: e.value for e in plain_env(tree) if e.name == KEEP_ALIVE}
            for compute in computes:
                value = keep_alive.get(compute.path)
                if value is None:
                    yield Finding(
                        self.id,
                        compute.path,
                        f"{KEEP_ALIVE} not delivered",
                        "pass runtime_environment(config) so the app uses server.keep_alive_seconds",
                    )
                elif idle >= int(value):
                    yield Finding(
                        self.id,
                        alb.path,
                        f"idle timeout {idle}s >= app keep-alive {value}s",
                        "keep load_balancer.idle_timeout_seconds below server.keep_alive_seconds",
                    )


RULE = AlbKeepalive502()
