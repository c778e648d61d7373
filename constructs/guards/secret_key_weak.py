"""secret-key-weak: generated app secrets are at least 32 characters."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.secure_parameter import RESOURCE_TYPE

MIN_LENGTH = 32


class SecretKeyWeak:
    """Compliant: generated SecureString parameters and Secrets Manager secrets have >= 32 characters."""

    id = "secret-key-weak"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for resource in tree.of_type(RESOURCE_TYPE):
            if resource.props.get("Kind") == "generated" and int(resource.props.get("Length", 64)) < MIN_LENGTH:
                yield Finding(
                    self.id,
                    resource.path,
                    f"Length={resource.props['Length']}",
                    f"generate at least {MIN_LENGTH} characters (default 64)",
                )
        for resource in tree.of_type("AWS::SecretsManager::Secret"):
            length = resource.get("generateSecretString", "passwordLength")
            if isinstance(length, int) and length < MIN_LENGTH:
                yield Finding(
                    self.id, resource.path, f"passwordLength={length}", f"generate at least {MIN_LENGTH} characters"
                )


RULE = SecretKeyWeak()
