"""queue-no-dlq: every queue of the app resources has a dead-letter queue (a poison message would loop forever)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.bucket_public import in_app_resources
from constructs.guards.framework import Finding, Tree


class QueueNoDlq:
    """Compliant: each ``AWS::SQS::Queue`` built by ``AppResources`` either has a ``RedrivePolicy`` with a
    ``deadLetterTargetArn`` and ``maxReceiveCount``, or is itself the dead-letter target of such a queue."""

    id = "queue-no-dlq"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        queues = [q for q in tree.of_type("AWS::SQS::Queue") if in_app_resources(q)]
        targets = {
            json.dumps(q.get("redrivePolicy", "deadLetterTargetArn"), sort_keys=True)
            for q in queues
            if q.get("redrivePolicy", "deadLetterTargetArn") is not None
        }
        for queue in queues:
            own = {"Fn::GetAtt": [queue.stack.get_logical_id(queue.node), "Arn"]}
            if json.dumps(own, sort_keys=True) in targets:
                continue  # a dead-letter queue
            redrive = queue.get("redrivePolicy") or {}
            if not redrive.get("deadLetterTargetArn") or not redrive.get("maxReceiveCount"):
                yield Finding(
                    self.id,
                    queue.path,
                    "no RedrivePolicy (dead-letter queue and maxReceiveCount)",
                    "give it dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=..., queue=<its DLQ>) "
                    "(resources.queues.<name>.max_receives)",
                )


RULE = QueueNoDlq()
