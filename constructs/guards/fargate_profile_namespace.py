"""fargate-profile-namespace: every namespace that runs pods is selected by a Fargate profile."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import helm_releases, k8s_objects, workloads


class FargateProfileNamespace:
    """Compliant: in each stack with a Fargate cluster, the namespace of every workload in the applied manifests and
    of every Helm release is selected (without label conditions) by an ``AWS::EKS::FargateProfile``; otherwise its
    pods stay Pending. Namespaces without pods (``aws-observability``) need no profile."""

    id = "fargate-profile-namespace"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        selected: dict[int, set[str]] = {}
        for profile in tree.of_type("AWS::EKS::FargateProfile"):
            names = selected.setdefault(id(profile.stack), set())
            for selector in profile.props.get("selectors") or []:
                if not selector.get("labels"):
                    names.add(str(selector.get("namespace")))
        fix = "cluster.add_fargate_profile(..., selectors=[eks.Selector(namespace=...)], vpc=vpc, subnet_selection=...)"
        for obj, _ in workloads(k8s_objects(tree)):
            if id(obj.resource.stack) in selected and obj.namespace not in selected[id(obj.resource.stack)]:
                yield Finding(self.id, obj.where, f"namespace {obj.namespace!r} has no Fargate profile", fix)
        for release in helm_releases(tree):
            if id(release.resource.stack) in selected and release.namespace not in selected[id(release.resource.stack)]:
                yield Finding(
                    self.id,
                    release.resource.path,
                    f"Helm release {release.chart} in namespace {release.namespace!r} has no Fargate profile",
                    fix,
                )


RULE = FargateProfileNamespace()
