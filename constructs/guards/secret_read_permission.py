"""secret-read-permission: each consuming principal can read exactly its parameters (+ kms:Decrypt)."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, actions_of, allows, resources_of


class SecretReadPermission:
    """Compliant: every target's secret reader may ``ssm:GetParameters`` each secret setting's parameter, and
    no statement lets it read parameters by wildcard (``*``, ``parameter/<path>/*``)."""

    id = "secret-read-permission"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for target in tree.targets:
            statements = tree.statements_of(target.secret_reader)
            for name in config.secret_settings:
                fragment = f"parameter{config.parameter_name(name)}"
                if not allows(statements, "ssm:GetParameters", fragment):
                    yield Finding(
                        self.id,
                        target.node.path,
                        f"{target.kind} reader cannot read {name}",
                        f"grant ssm:GetParameters on {config.parameter_name(name)} to the secret reader",
                    )
            for statement in statements:
                if any(a.startswith("ssm:GetParameter") or a in ("ssm:*", "*") for a in actions_of(statement)):
                    broad = [r for r in resources_of(statement) if r.endswith("*")]
                    if broad:
                        yield Finding(
                            self.id,
                            target.node.path,
                            f"{target.kind} reader may read {broad[0]}",
                            "grant parameter reads by exact name (parameter.grant_read)",
                        )


RULE = SecretReadPermission()
