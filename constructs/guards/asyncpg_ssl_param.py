"""asyncpg-ssl-param: every PostgreSQL instance uses a parameter group that forces TLS (rds.force_ssl=1)."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree


class AsyncpgSslParam:
    """Compliant: each postgres DB instance names a DB parameter group of this app with rds.force_ssl = 1.

    The URL's TLS parameter (``ssl=require`` for asyncpg, ``sslmode=require`` otherwise) is added by the
    SecureParameter handler from the scheme that database-url-format checks.
    """

    id = "asyncpg-ssl-param"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        groups = {r.node.ref: r for r in tree.of_type("AWS::RDS::DBParameterGroup")}
        for resource in tree.of_type("AWS::RDS::DBInstance"):
            if "postgres" not in str(resource.props.get("engine", "")):
                continue
            group = groups.get(resource.raw.get("dbParameterGroupName"))  # type: ignore[arg-type]
            force_ssl = group.get("parameters", "rds.force_ssl") if group else None
            if str(force_ssl) != "1":
                yield Finding(
                    self.id,
                    resource.path,
                    f"rds.force_ssl={force_ssl or 'not set (no parameter group)'}",
                    "give the instance a parameter group with rds.force_ssl = '1'",
                )


RULE = AsyncpgSslParam()
