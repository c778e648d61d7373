"""alarm-5xx-misconfigured: every alarm has dimensions, an action and treat-missing-data; required sets exist."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, points_at

# Resource type -> (namespace, metrics that must be alarmed). Targets add their own entries (ALB, ECS ...).
# Resource type -> the (namespace, metric) pairs that must each have an alarm pointing at the resource.
REQUIRED_ALARMS: dict[str, frozenset[tuple[str, str]]] = {
    "AWS::RDS::DBInstance": frozenset(
        ("AWS/RDS", m) for m in ("CPUUtilization", "FreeStorageSpace", "DatabaseConnections", "FreeableMemory")
    ),
    "AWS::ElastiCache::ReplicationGroup": frozenset(
        ("AWS/ElastiCache", m) for m in ("EngineCPUUtilization", "DatabaseMemoryUsagePercentage", "Evictions")
    ),
    "AWS::ElasticBeanstalk::Environment": frozenset(
        ("AWS/ElasticBeanstalk", m) for m in ("EnvironmentHealth", "ApplicationRequests5xx")
    ),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": frozenset({("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count")}),
    "AWS::ElasticLoadBalancingV2::TargetGroup": frozenset(
        ("AWS/ApplicationELB", m) for m in ("HTTPCode_Target_5XX_Count", "UnHealthyHostCount")
    ),
    # Every ECS service, web or worker: tasks running, CPU, memory.
    "AWS::ECS::Service": frozenset(
        {
            ("ECS/ContainerInsights", "RunningTaskCount"),
            ("AWS/ECS", "CPUUtilization"),
            ("AWS/ECS", "MemoryUtilization"),
        }
    ),
}


class Alarm5xxMisconfigured:
    """Compliant: every CloudWatch alarm has dimensions, at least one alarm action and an explicit
    TreatMissingData; every resource type in REQUIRED_ALARMS has an alarm on each required metric."""

    id = "alarm-5xx-misconfigured"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        alarms = tree.of_type("AWS::CloudWatch::Alarm")
        for alarm in alarms:
            props = alarm.props
            if not props.get("dimensions") and not props.get("metrics"):
                yield Finding(
                    self.id,
                    alarm.path,
                    f"{props.get('metricName')} without dimensions",
                    "alarm on a metric of a specific resource (metric_* helpers set dimensions)",
                )
            if not props.get("alarmActions"):
                yield Finding(self.id, alarm.path, "no alarm action", "add_alarm_action(SnsAction(stage topic))")
            if not props.get("treatMissingData"):
                yield Finding(
                    self.id,
                    alarm.path,
                    "TreatMissingData not set",
                    "set treat_missing_data explicitly (notBreaching for traffic metrics)",
                )
        for resource_type, required in REQUIRED_ALARMS.items():
            for resource in tree.of_type(resource_type):
                present = {
                    (a.props.get("namespace"), a.props.get("metricName")) for a in alarms if points_at(a, resource)
                }
                missing = sorted(metric for namespace, metric in required - present)
                if missing:
                    yield Finding(
                        self.id,
                        resource.path,
                        f"no alarm on {', '.join(missing)}",
                        "create the alarms with constructs.alarms.add_alarm (the construct's metric_*)",
                    )


RULE = Alarm5xxMisconfigured()
