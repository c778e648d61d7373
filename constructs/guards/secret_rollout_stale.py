"""secret-rollout-stale: every long-running process that reads a Parameter Store value is rolled out when it changes.

ECS tasks and Elastic Beanstalk instances read their values once, at start; a Kubernetes pod's environment does not
follow its Secret. So a web or worker service that reads ``/<app>/<stage>/<NAME>`` must be listed, for that name,
by a ``SecretRollout`` of its own stack (ECS: its service; EB: its environment), and a Deployment that takes
values from an ExternalSecret's Secret must carry Reloader's annotation for it, with Reloader installed in the
stack's cluster. Jobs and the migration step read their values at each run and need neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aws_cdk import Stack, aws_ecs as ecs, aws_elasticbeanstalk as elasticbeanstalk

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import external_secret_keys, helm_releases, manifest_objects, pod_spec
from constructs.secret_rollout import SecretRollout
from k8s.app_chart import RELOAD_ANNOTATION


class SecretRolloutStale:
    """Compliant: each web/worker reader of a parameter is a reader in its stack's ``SecretRollout``; each
    Deployment fed by an ExternalSecret names that Secret in ``secret.reloader.stakater.com/reload`` and its
    stack installs the Reloader chart."""

    id = "secret-rollout-stale"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        yield from self._cloudformation(tree, config)
        yield from self._kubernetes(tree)

    def _cloudformation(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        rollouts = [c for stack in tree.stacks for c in stack.node.find_all() if isinstance(c, SecretRollout)]
        for target in tree.targets:
            service = target.service
            if target.kind == "eks" or service.kind not in ("web", "worker") or not service.secrets:
                continue
            stack = Stack.of(target)
            if target.kind == "eb" and service.is_web:
                section = "eb"
                ids = [c.ref for c in target.compute if isinstance(c, elasticbeanstalk.CfnEnvironment)]
            else:
                section = "ecs"
                ids = [
                    s.service_name
                    for s in stack.node.find_all()
                    if isinstance(s, ecs.BaseService) and s.task_definition in target.compute
                ]
            listed: dict[str, list[Any]] = {}
            for rollout in (r for r in rollouts if Stack.of(r) is stack):
                readers = stack.resolve(rollout.readers.get(section, {}).get("readers", {}))
                for name, who in (readers or {}).items():
                    listed.setdefault(name, []).extend(who)
            for setting in service.secrets:
                name = config.parameter_of(service, setting)
                if not ids or not any(stack.resolve(i) in listed.get(name, []) for i in ids):
                    yield Finding(
                        self.id,
                        target.node.path,
                        f"{target.label} reads {name}",
                        f"nothing rolls it out when the value changes (it would keep the old one): list it in the "
                        f"SecretRollout of {stack.stack_name} (constructs/secret_rollout.py)",
                    )

    def _kubernetes(self, tree: Tree) -> Iterator[Finding]:
        reloaders = {
            release.resource.stack.stack_name for release in helm_releases(tree) if release.chart == "reloader"
        }
        for resource in tree.of_type("Custom::AWSCDK-EKS-KubernetesResource"):
            objects = manifest_objects(resource)
            produced = external_secret_keys(objects)
            for obj in objects:
                spec = pod_spec(obj)
                if obj.kind != "Deployment" or spec is None:
                    continue
                needed = sorted(
                    _secrets_used(spec) & {name for namespace, name in produced if namespace == obj.namespace}
                )
                annotated = str(((obj.body.get("metadata") or {}).get("annotations") or {}).get(RELOAD_ANNOTATION, ""))
                missing = [name for name in needed if name not in annotated.split(",")]
                if missing:
                    yield Finding(
                        self.id,
                        obj.where,
                        f"takes {', '.join(missing)} from an ExternalSecret without {RELOAD_ANNOTATION}",
                        "its pods would keep the old values after a change; annotate the Deployment "
                        "(k8s.app_chart.rollout_annotations)",
                    )
                elif needed and resource.stack.stack_name not in reloaders:
                    yield Finding(
                        self.id,
                        obj.where,
                        f"{RELOAD_ANNOTATION}={annotated} but no Reloader chart in {resource.stack.stack_name}",
                        "install Reloader in the cluster (EksFargateCluster adds it) or nothing acts on the annotation",
                    )


def _secrets_used(spec: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                names.add(str(source["secretRef"].get("name")))
        for item in container.get("env") or []:
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                names.add(str(ref.get("name")))
    return names


RULE = SecretRolloutStale()
