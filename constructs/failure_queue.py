"""failure_queue: where an asynchronous step's failed events wait (14 days, encrypted, TLS only) to be alarmed on."""

from __future__ import annotations

from aws_cdk import Duration, aws_sqs as sqs
from constructs import Construct

from constructs.nag import acknowledge, skip_checks


def failure_queue(scope: Construct, construct_id: str, *, of: str) -> sqs.Queue:
    """``construct_id`` in ``scope``: the dead-letter / on-failure queue ``of`` (e.g. "the job's schedule")."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    acknowledge(queue, "SQS3", f"this queue is itself the failure destination of {of}")
    skip_checks(
        queue,
        ["CKV_AWS_27"],
        "encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); the scheduler cannot deliver to a queue "
        "under the AWS-managed aws/sqs KMS key, and checkov recognises only a KMS key",
    )
    return queue
