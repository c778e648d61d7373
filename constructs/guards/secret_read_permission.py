"""secret-read-permission: each consuming principal can read exactly its services' parameters (+ kms:Decrypt)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from config.schema import AppConfig
from constructs.compute_target import ComputeTarget
from constructs.guards.framework import Finding, Tree, actions_of, resources_of


class SecretReadPermission:
    """Compliant: every secret reader may ``ssm:GetParameters`` the parameter of each secret its services receive,
    no other secret parameter of the stage, and nothing by wildcard (``*``, ``parameter/<path>/*``). A reader
    shared by several services (the EB instance role, External Secrets' role) reads the union of theirs."""

    id = "secret-read-permission"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        readers: dict[str, list[ComputeTarget]] = defaultdict(list)
        for target in tree.targets:
            readers[target.secret_reader.node.path].append(target)
        for served in readers.values():
            first = served[0]
            # By parameter: a service with its own Redis database reads its redis_url settings from <NAME>_DB<n>.
            needed = {config.parameter_of(t.service, name) for t in served for name in t.service.secrets}
            statements = tree.statements_of(first.secret_reader)
            labels = ", ".join(sorted({t.label for t in served}))
            candidates = {config.parameter_name(n): n for n in [*config.secret_settings, *config.redis_databases]}
            for parameter, name in sorted(candidates.items()):
                readable = reads(statements, parameter)
                if parameter in needed and not readable:
                    yield Finding(
                        self.id,
                        first.node.path,
                        f"{labels} reader cannot read {name}",
                        f"grant ssm:GetParameters on {parameter} to the secret reader",
                    )
                elif parameter not in needed and readable:
                    yield Finding(
                        self.id,
                        first.node.path,
                        f"{labels} reader may read {name}, which none of its services receives",
                        "grant reads only for the secrets the service names (its settings list)",
                    )
            for statement in statements:
                if any(a.startswith("ssm:GetParameter") or a in ("ssm:*", "*") for a in actions_of(statement)):
                    broad = [r for r in resources_of(statement) if r.endswith("*")]
                    if broad:
                        yield Finding(
                            self.id,
                            first.node.path,
                            f"{labels} reader may read {broad[0]}",
                            "grant parameter reads by exact name (parameter.grant_read)",
                        )


def reads(statements: list[dict[str, Any]], parameter: str) -> bool:
    """Some statement allows ssm:GetParameters on exactly ``parameter`` (an ARN ending in it, not a longer name
    such as ``<NAME>_DB1`` that merely starts with it) or on everything."""
    for statement in statements:
        if any(a in ("ssm:GetParameters", "ssm:*", "*") for a in actions_of(statement)) and any(
            r == "*" or r.endswith(f"parameter{parameter}") for r in resources_of(statement)
        ):
            return True
    return False


RULE = SecretReadPermission()
