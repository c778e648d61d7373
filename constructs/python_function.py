"""python_function: a Lambda function of this project (Python, ``index.handler`` of a directory under functions/),
with its own log group, and the scanner decisions every such helper shares stated once by its caller."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, aws_lambda as lambda_, aws_logs as logs
from constructs import Construct

from constructs.nag import DEPLOY_HELPER_CHECKS, acknowledge, skip_checks
from constructs.retention import log_group

BASIC_EXECUTION = "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    code: lambda_.Code,
    description: str,
    reason: str,
    timeout: Duration,
    logs_: logs.ILogGroup | None = None,
    **options: Any,
) -> lambda_.Function:
    """``construct_id`` in ``scope``: Python 3.14, 256 MB, logs to ``logs_`` (default: ``<id>Logs``, 30 days).

    Args:
        reason: why checkov's DLQ / concurrency / VPC / environment-encryption checks do not apply, written on the
            function where the scanner reads it.
        options: any other ``lambda_.Function`` property (``role``, ``environment``, ``vpc`` ...). Without a
            ``role``, CDK's default role (basic execution policy: log writing only) is acknowledged here.
    """
    function = lambda_.Function(
        scope,
        construct_id,
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=code,
        timeout=timeout,
        memory_size=256,
        log_group=logs_ or log_group(scope, f"{construct_id}Logs", days=30),
        description=description,
        **options,
    )
    skip_checks(function, DEPLOY_HELPER_CHECKS, reason)
    if "role" not in options:
        acknowledge(function, BASIC_EXECUTION, "CDK's default function role: log writing only")
    return function
