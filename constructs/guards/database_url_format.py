"""database-url-format: DATABASE_URL is composed by the deploy with a supported scheme, never by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import get_args

from config.schema import AppConfig, UrlScheme
from constructs.guards.framework import Finding, Tree, strings
from constructs.secure_parameter import RESOURCE_TYPE

HAND_MADE_URL = re.compile(r"\bpostgres(?:ql)?(?:\+\w+)?://")
SCHEMES = get_args(UrlScheme)


class DatabaseUrlFormat:
    """Compliant: no template string holds a postgres URL; database_url parameters use a supported scheme."""

    id = "database-url-format"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for resource in tree.of_type(RESOURCE_TYPE):
            scheme = resource.props.get("Scheme")
            if resource.props.get("Kind") == "database_url" and scheme not in SCHEMES:
                yield Finding(self.id, resource.path, f"Scheme={scheme}", f"use one of {', '.join(SCHEMES)}")
        for resource in tree.resources:
            for text in strings(resource.props):
                if HAND_MADE_URL.search(text):
                    yield Finding(
                        self.id,
                        resource.path,
                        "a hand-built postgres URL in the template",
                        "use DATABASE_URL: {secret: database_url}; the deploy composes and stores it",
                    )
                    break


RULE = DatabaseUrlFormat()
