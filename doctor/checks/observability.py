"""Alarms that can fire and notify, and log groups that exist and expire."""

from __future__ import annotations

from typing import Any

from doctor.model import Context, Finding, fail, ok, warn

FIVE_XX_METRICS = ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count")


def alarms(ctx: Context) -> list[Finding]:
    """alarm-5xx-misconfigured: the stage has alarms (``<app>-<stage>-*``), each with an action and, for AWS
    metrics, dimensions; none stuck in INSUFFICIENT_DATA; each target's load balancer has a 5xx alarm."""
    prefix = f"{ctx.prefix}-"
    found: list[dict[str, Any]] = []
    for page in ctx.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix):
        found.extend(page.get("MetricAlarms", []))
        found.extend(page.get("CompositeAlarms", []))
    if not found:
        return [
            fail(
                "alarm-5xx-misconfigured",
                f"alarms {prefix}*",
                f"no alarm named {prefix}* in {ctx.region}: deploy the data and target stacks, which "
                "create them; nobody learns about an outage otherwise",
            )
        ]
    data = ctx.stacks.get(ctx.config.stack_name("data"))
    topic = data.outputs.get("AlarmTopicArn") if data is not None else None
    findings: list[Finding] = []
    for alarm in found:
        name = str(alarm["AlarmName"])
        actions = list(alarm.get("AlarmActions", []))
        if not actions:
            findings.append(
                fail(
                    "alarm-5xx-misconfigured",
                    name,
                    "no alarm action: it changes state silently; add the stage topic "
                    f"{topic or '(AlarmTopicArn)'} as action",
                )
            )
        elif topic and topic not in actions:
            findings.append(
                warn(
                    "alarm-5xx-misconfigured",
                    name,
                    f"notifies {', '.join(actions)}, not the stage topic {topic}",
                )
            )
        if (
            str(alarm.get("Namespace", "")).startswith("AWS/")
            and alarm.get("MetricName")
            and not alarm.get("Dimensions")
        ):
            findings.append(
                fail(
                    "alarm-5xx-misconfigured",
                    name,
                    f"{alarm['Namespace']} {alarm['MetricName']} has no dimensions: it watches a "
                    "series that never reports; add e.g. LoadBalancer / DBInstanceIdentifier",
                )
            )
        state = alarm.get("StateValue")
        if state == "INSUFFICIENT_DATA":
            findings.append(
                warn(
                    "alarm-5xx-misconfigured",
                    name,
                    "INSUFFICIENT_DATA: no datapoints (normal right after a deploy); otherwise check "
                    "dimensions and treat_missing_data=notBreaching",
                )
            )
        elif state == "ALARM":
            findings.append(
                warn(
                    "alarm-5xx-misconfigured",
                    name,
                    f"in ALARM now: {str(alarm.get('StateReason', ''))[:160]}",
                )
            )
    findings.extend(_five_xx_alarms(ctx, found))
    if not findings:
        return [
            ok(
                "alarm-5xx-misconfigured",
                f"alarms {prefix}*",
                f"{len(found)} alarm(s), all with actions and dimensions, none without data",
            )
        ]
    return findings


def _five_xx_alarms(ctx: Context, found: list[dict[str, Any]]) -> list[Finding]:
    """Each target's load balancer has a 5xx alarm on its own ``LoadBalancer`` dimension."""
    findings: list[Finding] = []
    for purpose, arn in sorted(ctx.target_outputs("LoadBalancerArn").items()):
        dimension = arn.split(":loadbalancer/", 1)[-1]  # app/<name>/<id>
        watched = [
            a
            for a in found
            if a.get("MetricName") in FIVE_XX_METRICS
            and {"Name": "LoadBalancer", "Value": dimension} in a.get("Dimensions", [])
        ]
        if not watched:
            findings.append(
                fail(
                    "alarm-5xx-misconfigured",
                    f"{purpose} load balancer",
                    f"no {'/'.join(FIVE_XX_METRICS)} alarm with dimension LoadBalancer={dimension}: 5xx errors "
                    f"go unnoticed; redeploy the {purpose} stack",
                )
            )
    return findings


def log_groups(ctx: Context) -> list[Finding]:
    """logs-missing: the database's exported log, the cache's slow log and each target's log group exist, with
    the configured retention."""
    expected = {f"/aws/rds/instance/{ctx.output('data', 'DatabaseInstanceId')}/postgresql": "database log"}
    group_id = ctx.output("data", "CacheReplicationGroupId")
    groups = ctx.client("elasticache").describe_replication_groups(ReplicationGroupId=group_id)
    for delivery in groups["ReplicationGroups"][0].get("LogDeliveryConfigurations", []):
        name = delivery.get("DestinationDetails", {}).get("CloudWatchLogsDetails", {}).get("LogGroup")
        if name:
            expected[str(name)] = f"cache {delivery.get('LogType', 'log')}"
    for purpose, name in ctx.target_outputs("LogGroupName").items():
        expected[name] = f"{purpose} log"
    logs = ctx.client("logs")
    findings: list[Finding] = []
    want = ctx.config.log_retention_days
    for name, owner in sorted(expected.items()):
        matches = [
            g
            for g in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
            if g.get("logGroupName") == name
        ]
        if not matches:
            findings.append(
                fail(
                    "logs-missing",
                    name,
                    f"{owner} group missing in {ctx.region}: logs are lost; redeploy the stack "
                    "that owns it (it creates the group with retention)",
                )
            )
            continue
        days = matches[0].get("retentionInDays")
        if days is None:
            findings.append(
                warn(
                    "logs-missing",
                    name,
                    f"never expires: set retention to {want} days (log_retention_days)",
                )
            )
        elif days != want:
            findings.append(
                warn(
                    "logs-missing",
                    name,
                    f"retention {days} days, the stage says {want}; redeploy to align",
                )
            )
        else:
            findings.append(ok("logs-missing", name, f"{owner} kept {days} days"))
    return findings
