"""redis-auth-tls: Redis encrypts in transit and at rest and requires an AUTH token from Secrets Manager."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, strings


class RedisAuthTls:
    """Compliant: TransitEncryptionEnabled and AtRestEncryptionEnabled true, AuthToken a Secrets Manager
    dynamic reference (never a literal). REDIS_URL is always composed as ``rediss://`` by the deploy."""

    id = "redis-auth-tls"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for resource in tree.of_type("AWS::ElastiCache::ReplicationGroup"):
            for field in ("transitEncryptionEnabled", "atRestEncryptionEnabled"):
                if resource.props.get(field) is not True:
                    yield Finding(self.id, resource.path, f"{field}={resource.props.get(field)}", f"set {field}=True")
            token = resource.props.get("authToken")
            if not any("{{resolve:secretsmanager:" in text for text in strings(token)):
                shown = "not set" if token is None else "a literal value"
                yield Finding(
                    self.id,
                    resource.path,
                    f"authToken={shown}",
                    "use a generated Secrets Manager secret: auth_token=secret.secret_value.unsafe_unwrap()",
                )


RULE = RedisAuthTls()
