"""k8s-secret-configmap-missing: every Secret/ConfigMap key a pod references is produced by the same chart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config.schema import AppConfig
from constructs.guards.framework import Finding, Resource, Tree
from constructs.guards.k8s import K8sObject, containers, external_secret_keys, manifest_objects, workloads


def _references(spec: dict[str, Any]) -> Iterator[tuple[str, str, str | None, Any]]:
    """(kind 'ConfigMap'|'Secret', name, key or None for a whole map, optional flag) of every reference."""
    for container in containers(spec):
        for source in container.get("envFrom") or []:
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if field in source:
                    yield kind, source[field].get("name"), None, source[field].get("optional")
        for item in container.get("env") or []:
            value_from = item.get("valueFrom") or {}
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if field in value_from:
                    ref = value_from[field]
                    yield kind, ref.get("name"), ref.get("key"), ref.get("optional")
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"].get("name"), None, volume["configMap"].get("optional")
        if "secret" in volume:
            yield "Secret", volume["secret"].get("secretName"), None, volume["secret"].get("optional")


class K8sSecretConfigmapMissing:
    """Compliant: each ``configMapRef``/``configMapKeyRef``/``secretRef``/``secretKeyRef``/volume of a workload names
    a ConfigMap or an ExternalSecret target of the same manifest (chart) and namespace that has the key; none is
    ``optional: true`` (a missing value must stop the rollout, not start the app without it)."""

    id = "k8s-secret-configmap-missing"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        checked: set[str] = set()
        for resource in tree.of_type("Custom::AWSCDK-EKS-KubernetesResource"):
            if resource.path not in checked:
                checked.add(resource.path)
                yield from self._check_chart(resource)

    def _check_chart(self, resource: Resource) -> Iterator[Finding]:
        objects: list[K8sObject] = manifest_objects(resource)
        produced: dict[tuple[str, str, str], set[str]] = {}
        for obj in objects:
            if obj.kind == "ConfigMap":
                produced[("ConfigMap", obj.namespace, obj.name)] = set((obj.body.get("data") or {}).keys())
        for (namespace, name), remote in external_secret_keys(objects).items():
            produced[("Secret", namespace, name)] = set(remote)
        for obj, spec in workloads(objects):
            for kind, name, key, optional in _references(spec):
                keys = produced.get((kind, obj.namespace, name))
                source = "a ConfigMap" if kind == "ConfigMap" else "an ExternalSecret target"
                if keys is None:
                    yield Finding(
                        self.id,
                        obj.where,
                        f"{kind} {name!r} is not produced by this chart in {obj.namespace!r}",
                        f"add {source} named {name!r} to the same chart",
                    )
                elif key is not None and key not in keys:
                    yield Finding(
                        self.id,
                        obj.where,
                        f"{kind} {name!r} has no key {key!r}",
                        f"add {key!r} to {source} {name!r} (one entry per setting)",
                    )
                if optional:
                    yield Finding(
                        self.id,
                        obj.where,
                        f"{kind} {name!r} is optional",
                        "set optional: false so a missing value fails the rollout",
                    )


RULE = K8sSecretConfigmapMissing()
