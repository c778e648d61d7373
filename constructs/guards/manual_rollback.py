"""manual-rollback: failed deploys roll back by themselves and keep capacity."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, eb_options
from constructs.guards.k8s import k8s_objects
from constructs.rollout_gate import DONE

EB_COMMAND = "aws:elasticbeanstalk:command"
EB_HEALTH_REPORTING = "aws:elasticbeanstalk:healthreporting:system"
# Policies that deploy in health-checked batches and stop at one that fails; EB's default AllAtOnce is neither.
EB_GATED_POLICIES = ("Rolling", "RollingWithAdditionalBatch", "Immutable", "TrafficSplitting")


class ManualRollback:
    """Compliant: every ECS service has the deployment circuit breaker with rollback and keeps 100 % healthy;
    every EB environment deploys in health-checked batches (DeploymentPolicy not AllAtOnce, IgnoreHealthCheck not
    true, HealthCheckSuccessThreshold Ok); every Kubernetes Deployment rolls with maxUnavailable 0, has a
    progressDeadlineSeconds, and its stack waits for its rollout (a rollout gate on it)."""

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
        yield from self._eb(tree)
        gated = {
            (gate.stack.stack_name, gate.props.get("ObjectNamespace"), gate.props.get("ObjectName"))
            for gate in tree.of_type("Custom::AWSCDK-EKS-KubernetesObjectValue")
            if gate.props.get("ObjectType") == "deployment" and DONE in str(gate.props.get("JsonPath"))
        }
        for obj in k8s_objects(tree):
            if obj.kind != "Deployment":
                continue
            spec = obj.body.get("spec") or {}
            strategy = spec.get("strategy") or {}
            unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable")
            if strategy.get("type", "RollingUpdate") != "RollingUpdate" or str(unavailable) not in ("0", "0%"):
                yield Finding(
                    self.id,
                    obj.where,
                    f"strategy {strategy or 'default (25% unavailable)'}",
                    "rolling update with maxUnavailable: 0 and maxSurge >= 1 keeps capacity",
                )
            if (obj.resource.stack.stack_name, obj.namespace, obj.name) not in gated:
                yield Finding(
                    self.id,
                    obj.where,
                    "no rollout gate: the stack update ends before the new pods are ready, and a release whose pods "
                    "never get ready stays unnoticed",
                    "wait for it with constructs/rollout_gate.py (rollout_gate after its manifest)",
                )
            if "progressDeadlineSeconds" not in spec:
                yield Finding(
                    self.id,
                    obj.where,
                    "progressDeadlineSeconds not set",
                    "set it from the health contract (health.deploy_deadline_seconds) so a rollout whose pods "
                    "never get ready fails",
                )

    def _eb(self, tree: Tree) -> Iterator[Finding]:
        # The environment's own option settings (as logs-missing reads them): what this project writes.
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment"):
            options = eb_options(env)
            policy = options.get((EB_COMMAND, "DeploymentPolicy"))
            if policy not in EB_GATED_POLICIES:
                yield Finding(
                    self.id,
                    env.path,
                    f"{EB_COMMAND}/DeploymentPolicy={policy or 'not set (AllAtOnce)'}",
                    "RollingWithAdditionalBatch or Immutable: health-checked batches that keep capacity",
                )
            ignore = options.get((EB_COMMAND, "IgnoreHealthCheck"))
            if str(ignore).lower() == "true":
                yield Finding(
                    self.id,
                    env.path,
                    f"{EB_COMMAND}/IgnoreHealthCheck={ignore}",
                    "false: a batch that fails its health checks must fail the deploy",
                )
            threshold = options.get((EB_HEALTH_REPORTING, "HealthCheckSuccessThreshold"))
            misplaced = options.get((EB_COMMAND, "HealthCheckSuccessThreshold"))
            for where, value in ((EB_HEALTH_REPORTING, threshold), (EB_COMMAND, misplaced)):
                if value is not None and value != "Ok":
                    yield Finding(
                        self.id,
                        env.path,
                        f"{where}/HealthCheckSuccessThreshold={value}",
                        "Ok: an instance that is only Warning or worse must not pass a deploy",
                    )


RULE = ManualRollback()
