"""resource-undeclared: a service uses only resources the stage declares (config refuses other names); at synth,
every resource a service on a target uses is built by the stage's resources stack."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.resource_unused import app_resources


class ResourceUndeclared:
    """Compliant: for every ``ComputeTarget``, each name in its service's ``uses`` is a resource of
    ``config.resources`` of the kind its access needs, and an ``AppResources`` construct of the app builds it (its
    settings and grants name a resource that exists)."""

    id = "resource-undeclared"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        built = {name: kind for resources in app_resources(tree) for name, kind in resources.built.items()}
        declared = config.resources.declared()
        for target in tree.targets:
            for name, access in target.service.uses:
                if name not in declared:
                    value = f"{target.label} uses {name!r} ({access}), which resources: does not declare"
                elif name not in built:
                    value = f"{target.label} uses {name!r} ({access}), which no resources stack of this app builds"
                else:
                    continue
                yield Finding(
                    self.id,
                    target.node.path,
                    value,
                    "declare it under resources: (buckets, queues, topics, email) so the resources stack builds it",
                )


RULE = ResourceUndeclared()
