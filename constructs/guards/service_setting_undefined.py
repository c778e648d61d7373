"""service-setting-undefined: a service receives exactly the settings it names (config refuses undefined names)."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.missing_env_vars import declared_names, delivered


class ServiceSettingUndefined:
    """Compliant: the compute resources of a service that names its settings (``services.<name>.settings``)
    receive no other setting of the stage: a worker that does not list ``DATABASE_URL`` does not get it (nor,
    through secret-read-permission, may it read it). Resources shared by several services (an EB environment)
    may receive the union of theirs."""

    id = "service-setting-undefined"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        allowed, owners = declared_names(tree, config)
        for resource in tree.resources:
            if resource.path not in allowed:
                continue
            extra = sorted((delivered(resource) & set(config.settings)) - allowed[resource.path])
            if extra:
                yield Finding(
                    self.id,
                    resource.path,
                    f"{', '.join(sorted(owners[resource.path]))} receives {', '.join(extra)} it does not name",
                    "deliver exactly the service's settings list (add the names to it if the service needs them)",
                )


RULE = ServiceSettingUndefined()
