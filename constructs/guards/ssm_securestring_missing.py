"""ssm-securestring-missing: every SecureString parameter the app references is created by the deploy."""

from __future__ import annotations

import re
from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, strings
from constructs.secure_parameter import RESOURCE_TYPE

PARAMETER_ARN = re.compile(r":parameter(/[A-Za-z0-9_.\-/]+)")
SECURE_REFERENCE = re.compile(r"\{\{resolve:ssm-secure:(/?[A-Za-z0-9_.\-/]+)")


class SsmSecurestringMissing:
    """Compliant: each parameter named in an ARN or ``{{resolve:ssm-secure:...}}`` under the stage's path
    ``/<app>/<stage>/`` (and every ssm-secure reference) is created by a ``Custom::SecureParameter``."""

    id = "ssm-securestring-missing"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        created = {r.props.get("Name") for r in tree.of_type(RESOURCE_TYPE)}
        stage_prefix = config.parameter_name("")
        for resource in tree.resources:
            referenced: set[str] = set()
            for text in strings(resource.props):
                referenced.update(m for m in PARAMETER_ARN.findall(text) if m.startswith(stage_prefix))
                referenced.update("/" + m.lstrip("/") for m in SECURE_REFERENCE.findall(text))
            for name in sorted(referenced - created):
                if name.endswith("/*") or name == stage_prefix:
                    continue
                yield Finding(
                    self.id,
                    resource.path,
                    name,
                    f"declare it in the stage's settings as {{secret: generated}} so the deploy creates "
                    f"it, or reference an existing setting ({', '.join(sorted(map(str, created)))})",
                )


RULE = SsmSecurestringMissing()
