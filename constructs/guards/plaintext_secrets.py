"""plaintext-secrets: no secret-looking name or value in plain environments, nor anywhere in a template."""

from __future__ import annotations

import re
from collections.abc import Iterator

from config.redact import CREDENTIAL_URL, SECRET_NAME
from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, plain_env, strings

SECRET_VALUE = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s{}]+@", re.IGNORECASE), "a URL with a password"),
)
K8S_SECRET = re.compile(r'"kind"\s*:\s*"Secret"')


class PlaintextSecrets:
    """Compliant: plain environment variables never have a secret-looking name (in any case: ``smtp_pass`` too); no
    template string contains a private key, an access key id, a URL with credentials, or a Kubernetes Secret
    manifest."""

    id = "plaintext-secrets"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for env in plain_env(tree):
            if isinstance(env.name, str) and (
                SECRET_NAME.search(env.name.upper()) or (isinstance(env.value, str) and CREDENTIAL_URL.match(env.value))
            ):
                yield Finding(
                    self.id,
                    f"{env.resource.path} {env.where}",
                    f"{env.name}=<plain value>",
                    "deliver it as a secret (ECS secrets, EB environmentsecrets, ExternalSecret) from "
                    "the stage's SecureString parameter",
                )
        for resource in tree.resources:
            for text in strings(resource.props):
                hit = next((label for pattern, label in SECRET_VALUE if pattern.search(text)), None)
                if hit is None and K8S_SECRET.search(text):
                    hit = "a Kubernetes Secret manifest (its data would be stored in the template)"
                if hit:
                    yield Finding(
                        self.id,
                        resource.path,
                        hit,
                        "move the value to Secrets Manager / Parameter Store and reference it",
                    )
                    break


RULE = PlaintextSecrets()
