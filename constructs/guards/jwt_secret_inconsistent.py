"""jwt-secret-inconsistent: one secret per setting name, the same one for every target."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, secret_env


class JwtSecretInconsistent:
    """Compliant: wherever a setting is delivered as a secret (ECS secrets, EB environmentsecrets, ExternalSecret),
    it references that setting's own parameter ``/<app>/<stage>/<NAME>`` (or, for a ``redis_url`` setting of a
    service with its own Redis database, ``<NAME>_DB<n>``), so every target reads one value."""

    id = "jwt-secret-inconsistent"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        # A redis_url setting of a service with its own Redis database reads <NAME>_DB<n> (services.<name>.redis_db).
        variants: dict[str, set[str]] = {}
        for key, (setting, _) in config.redis_databases.items():
            variants.setdefault(setting, set()).add(config.parameter_name(key))
        for resource, where, name, reference in secret_env(tree):
            expected = config.parameter_name(name)
            allowed = {expected, *variants.get(name, set())}
            if not any(reference == a or reference.endswith(f":parameter{a}") for a in allowed):
                yield Finding(
                    self.id,
                    f"{resource.path} {where}",
                    f"{name} reads {reference or 'nothing'}",
                    f"every target must read {expected} (one secret per setting name)",
                )


RULE = JwtSecretInconsistent()
