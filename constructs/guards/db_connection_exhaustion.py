"""db-connection-exhaustion: the most connections every service on every target can open fit in 80 % of
max_connections, deploy surge and the migration step included."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from config.sizing import max_connections
from constructs.guards.framework import Finding, Tree

BUDGET = 0.8


class DbConnectionExhaustion:
    """Compliant: sum over every declared service of max units (deploy surge included: ECS ``max_percent``, EB's
    extra batch or immutable group, k8s ``maxSurge``; the migration task counts as one) x its processes x (pool +
    overflow) <= 80 % of the instance class's default max_connections (RDS: LEAST(DBInstanceClassMemory /
    9531392, 5000)). Services that do not receive ``DATABASE_URL`` open none."""

    id = "db-connection-exhaustion"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        limit = max_connections(config.database.instance_class)
        if limit is None or not tree.targets:
            return
        demand = [(t.label, t.max_units, t.service.connections_per_unit) for t in tree.targets if t.connections]
        total, allowed = sum(units * each for _, units, each in demand), int(limit * BUDGET)
        if total > allowed:
            parts = ", ".join(f"{label} {units}x{each}" for label, units, each in sorted(demand))
            yield Finding(
                self.id,
                "database",
                f"up to {total} connections ({parts}; units incl. deploy surge x processes x (pool + overflow)) "
                f"> {allowed} (80 % of {limit} on {config.database.instance_class})",
                "lower max tasks/instances/replicas, ecs.max_percent, processes or pool sizes, or use a larger "
                "instance class",
            )


RULE = DbConnectionExhaustion()
