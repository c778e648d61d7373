"""One way to build alarms: one naming strategy, one topic action, treat-missing-data always explicit."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cw, aws_cloudwatch_actions as cw_actions, aws_sns as sns
from constructs import Construct

GT = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
GTE = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
LT = cw.ComparisonOperator.LESS_THAN_THRESHOLD


def add_alarm(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    metric: cw.IMetric,
    threshold: float,
    comparison: cw.ComparisonOperator,
    topic: sns.ITopic,
    description: str,
    evaluation_periods: int = 3,
    datapoints_to_alarm: int | None = None,
    treat_missing_data: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
) -> cw.Alarm:
    """Create ``name`` (``<app>-<stage>-<component>-<metric>``) with ``topic`` as alarm and OK action.

    Args:
        name: full alarm name; callers build it as ``f"{prefix}-{component}-{metric}"``.
        treat_missing_data: default NOT_BREACHING, so a quiet period never alarms; pass BREACHING for
            metrics whose absence means the thing is gone (e.g. running task count).
    """
    alarm = cw.Alarm(
        scope,
        construct_id,
        alarm_name=name,
        alarm_description=description,
        metric=metric,
        threshold=threshold,
        comparison_operator=comparison,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=datapoints_to_alarm,
        treat_missing_data=treat_missing_data,
    )
    action = cw_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    alarm.add_ok_action(action)
    return alarm
