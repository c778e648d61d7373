"""secret-read-permission: each consuming principal can read exactly its services' parameters (+ kms:Decrypt)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from config.schema import AppConfig
from constructs.compute_target import ComputeTarget
from constructs.guards.framework import Finding, Tree, actions_of, allows, resources_of


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
            needed = {name for target in served for name in target.service.secrets}
            statements = tree.statements_of(first.secret_reader)
            labels = ", ".join(sorted({t.label for t in served}))
            for name in sorted(config.secret_settings):
                fragment = f"parameter{config.parameter_name(name)}"
                readable = allows(statements, "ssm:GetParameters", fragment)
                if name in needed and not readable:
                    yield Finding(
                        self.id,
                        first.node.path,
                        f"{labels} reader cannot read {name}",
                        f"grant ssm:GetParameters on {config.parameter_name(name)} to the secret reader",
                    )
                elif name not in needed and readable:
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


RULE = SecretReadPermission()
