"""logs-missing: every target ships logs to a log group with retention."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, eb_options
from constructs.guards.k8s import observability_findings

EB_LOGS = "aws:elasticbeanstalk:cloudwatch:logs"


class LogsMissing:
    """Compliant: every ECS container uses the awslogs driver with a log group; every log group a target declares
    has a retention; every EB environment streams its logs (``StreamLogs=true``) with ``RetentionInDays``."""

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
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment"):
            options = eb_options(env)
            if str(options.get((EB_LOGS, "StreamLogs"))).lower() != "true":
                yield Finding(
                    self.id,
                    env.path,
                    f"{EB_LOGS} StreamLogs={options.get((EB_LOGS, 'StreamLogs'))}",
                    "stream instance logs to CloudWatch Logs (StreamLogs=true)",
                )
            if options.get((EB_LOGS, "RetentionInDays")) is None:
                yield Finding(self.id, env.path, f"{EB_LOGS} RetentionInDays not set", "set it from log_retention_days")
        for target in tree.targets:
            if not target.log_groups and target.kind != "eb":  # EB creates its log groups (checked above)
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
        yield from observability_findings(self.id, tree)  # EKS Fargate: aws-observability + aws-logging


RULE = LogsMissing()
