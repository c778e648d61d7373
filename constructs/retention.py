"""Map a day count from the stage file to CloudWatch Logs' retention enum."""

from __future__ import annotations

from aws_cdk import aws_logs as logs

from config.schema import LOG_RETENTION_DAYS

# RetentionDays lists the allowed day counts in ascending order, INFINITE last.
_BY_DAYS = dict(zip(LOG_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"], strict=True))


def retention(days: int) -> logs.RetentionDays:
    """The enum member for ``days`` (validated against the same list by the config schema)."""
    return _BY_DAYS[days]
