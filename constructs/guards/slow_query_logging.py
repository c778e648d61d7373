"""slow-query-logging: slow statements are logged by the parameter group and exported to CloudWatch."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree


class SlowQueryLogging:
    """Compliant: each postgres instance exports the ``postgresql`` log and its parameter group sets
    ``log_min_duration_statement`` >= 0 (not SQL, not disabled)."""

    id = "slow-query-logging"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        groups = {r.node.ref: r for r in tree.of_type("AWS::RDS::DBParameterGroup")}
        for resource in tree.of_type("AWS::RDS::DBInstance"):
            if "postgres" not in str(resource.props.get("engine", "")):
                continue
            exports = resource.props.get("enableCloudwatchLogsExports") or []
            if "postgresql" not in exports:
                yield Finding(
                    self.id,
                    resource.path,
                    f"EnableCloudwatchLogsExports={exports}",
                    "add 'postgresql' to cloudwatch_logs_exports",
                )
            group = groups.get(resource.raw.get("dbParameterGroupName"))  # type: ignore[arg-type]
            threshold = group.get("parameters", "log_min_duration_statement") if group else None
            if threshold is None or int(threshold) < 0:
                yield Finding(
                    self.id,
                    resource.path,
                    f"log_min_duration_statement={threshold}",
                    "set database.slow_query_ms (parameter log_min_duration_statement) to >= 0",
                )


RULE = SlowQueryLogging()
