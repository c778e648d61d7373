"""cors-wildcard: prod never allows any origin."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, plain_env


class CorsWildcard:
    """Compliant: in prod, no plain setting whose name mentions ORIGIN or CORS contains ``*``."""

    id = "cors-wildcard"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        if config.stage != "prod":
            return
        for env in plain_env(tree):
            name = str(env.name)
            if ("ORIGIN" in name or "CORS" in name) and isinstance(env.value, str) and "*" in env.value:
                yield Finding(
                    self.id,
                    f"{env.resource.path} {env.where}",
                    f"{name}={env.value!r}",
                    "list the allowed origins explicitly, e.g. https://shop.example.com",
                )


RULE = CorsWildcard()
