"""Log groups of this project: a day count from the stage file as CloudWatch Logs' retention enum, and one way
to create a group (with the stage's retention and the encryption decision written where checkov reads it)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, aws_logs as logs
from constructs import Construct

from config.schema import LOG_RETENTION_DAYS
from constructs.nag import LOGS_AWS_KEY, skip_checks

# RetentionDays lists the allowed day counts in ascending order, INFINITE last.
_BY_DAYS = dict(zip(LOG_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"], strict=True))


def retention(days: int) -> logs.RetentionDays:
    """The enum member for ``days`` (validated against the same list by the config schema)."""
    return _BY_DAYS[days]


def log_group(
    scope: Construct,
    construct_id: str,
    *,
    days: int,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    name: str | None = None,
) -> logs.LogGroup:
    """A log group keeping ``days`` of logs, encrypted with CloudWatch Logs' own key (the reason is in its metadata)."""
    group = logs.LogGroup(
        scope, construct_id, log_group_name=name, retention=retention(days), removal_policy=removal_policy
    )
    skip_checks(group, ["CKV_AWS_158"], LOGS_AWS_KEY)
    return group
