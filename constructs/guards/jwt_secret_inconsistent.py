"""jwt-secret-inconsistent: one secret per setting name, the same one for every target."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, secret_env


class JwtSecretInconsistent:
    """Compliant: wherever a setting is delivered as a secret (ECS secrets, EB environmentsecrets, ExternalSecret),
    it references that setting's own parameter ``/<app>/<stage>/<NAME>``, so every target reads one value."""

    id = "jwt-secret-inconsistent"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for resource, where, name, reference in secret_env(tree):
            expected = config.parameter_name(name)
            if reference != expected and not reference.endswith(f":parameter{expected}"):
                yield Finding(
                    self.id,
                    f"{resource.path} {where}",
                    f"{name} reads {reference or 'nothing'}",
                    f"every target must read {expected} (one secret per setting name)",
                )


RULE = JwtSecretInconsistent()
