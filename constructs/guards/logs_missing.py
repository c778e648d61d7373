"""logs-missing: every target ships logs to a log group with retention."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree


class LogsMissing:
    """Compliant: every ECS container uses the awslogs driver with a log group; every log group a target declares
    has a retention."""

    id = "logs-missing"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for task in tree.of_type("AWS::ECS::TaskDefinition"):
            for container in task.get("containerDefinitions", default=[]) or []:
                log = container.get("logConfiguration") or {}
                if log.get("logDriver") != "awslogs" or "awslogs-group" not in (log.get("options") or {}):
                    yield Finding(
                        self.id,
                        task.path,
                        f"container {container.get('name')} logDriver={log.get('logDriver')}",
                        "logging=ecs.LogDrivers.aws_logs(stream_prefix=..., log_group=<group with retention>)",
                    )
        for target in tree.targets:
            if not target.log_groups:
                yield Finding(
                    self.id,
                    target.node.path,
                    f"{target.kind} declares no log group",
                    "send the target's logs to a log group with retention",
                )
            for group in target.log_groups:
                resource = tree.resource_for(group.node.default_child)
                if resource is not None and resource.props.get("retentionInDays") is None:
                    yield Finding(self.id, resource.path, "no retention", "set retention from log_retention_days")


RULE = LogsMissing()
