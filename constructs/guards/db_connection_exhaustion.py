"""db-connection-exhaustion: the most connections all targets can open fit in 80 % of max_connections."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from config.sizing import max_connections
from constructs.guards.framework import Finding, Tree

BUDGET = 0.8


class DbConnectionExhaustion:
    """Compliant: sum over enabled targets of max units x workers x (pool + overflow) <= 80 % of the instance
    class's default max_connections (RDS: LEAST(DBInstanceClassMemory / 9531392, 5000))."""

    id = "db-connection-exhaustion"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        limit = max_connections(config.database.instance_class)
        if limit is None or not tree.targets:
            return
        per_unit = config.server.connections_per_unit
        demand = {t.kind: t.max_units * per_unit for t in tree.targets}
        total, allowed = sum(demand.values()), int(limit * BUDGET)
        if total > allowed:
            parts = " + ".join(f"{kind} {n}" for kind, n in sorted(demand.items()))
            yield Finding(
                self.id,
                "database",
                f"up to {total} connections ({parts}; {per_unit} per unit = workers x "
                f"(pool + overflow)) > {allowed} (80 % of {limit} on {config.database.instance_class})",
                "lower max tasks/instances/replicas, workers or pool sizes, or use a larger instance class",
            )


RULE = DbConnectionExhaustion()
