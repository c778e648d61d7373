"""resource-unused: every app resource the stage declares is used by a service (config refuses an unused one)."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.app_resources import AppResources
from constructs.guards.framework import Finding, Tree


def app_resources(tree: Tree) -> list[AppResources]:
    """Every ``AppResources`` construct of the app (the resources stack's)."""
    if not tree.stacks:
        return []
    return [c for c in tree.stacks[0].node.root.node.find_all() if isinstance(c, AppResources)]


class ResourceUnused:
    """Compliant: each resource an ``AppResources`` construct builds is in ``uses`` of a service that some target
    runs (a ``ComputeTarget``); a bucket or queue nobody is granted is cost and exposure without a reader."""

    id = "resource-unused"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        used = {name for target in tree.targets for name, _ in target.service.uses}
        for built in app_resources(tree):
            for name, kind in built.built.items():
                if name not in used:
                    yield Finding(
                        self.id,
                        f"{built.node.path} ({kind} {name})",
                        "no service on any target uses it",
                        f"add it to a service's uses: ({name}: <access>) or remove it from resources:",
                    )


RULE = ResourceUnused()
