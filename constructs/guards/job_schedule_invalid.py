"""job-schedule-invalid: every job runs on one target, in UTC, with a timeout, retries, a dead-letter queue and
failure alarms; on Kubernetes as a CronJob that never overlaps itself."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Resource, Tree, points_at, strings
from constructs.guards.k8s import k8s_objects

UTC = (None, "UTC", "Etc/UTC")


class JobScheduleInvalid:
    """Compliant: (config) each job's schedule parses and fires less often than its timeout; (templates) each
    EventBridge Scheduler schedule is in UTC with no flexible window, a retry policy and a dead-letter queue that
    has an alarm, and starts a state machine whose run has a timeout; each Kubernetes CronJob forbids concurrent
    runs and sets a deadline, a backoff limit and history limits; no job is scheduled on two targets."""

    id = "job-schedule-invalid"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        scheduled = Counter(t.service.name for t in tree.targets if t.service.kind == "job")
        for name, count in scheduled.items():
            if count > 1:
                yield Finding(
                    self.id,
                    f"services.{name}",
                    f"scheduled on {count} targets",
                    "a job runs on one target (its target:, default the first of targets:), not once per target",
                )
        alarms = tree.of_type("AWS::CloudWatch::Alarm")
        for schedule in tree.of_type("AWS::Scheduler::Schedule"):
            yield from self._schedule(tree, schedule, alarms)
        for obj in k8s_objects(tree):
            if obj.kind != "CronJob":
                continue
            spec = obj.body.get("spec") or {}
            job = (spec.get("jobTemplate") or {}).get("spec") or {}
            problems = [
                f"concurrencyPolicy={spec.get('concurrencyPolicy', 'Allow')}"
                if spec.get("concurrencyPolicy") != "Forbid"
                else "",
                "no activeDeadlineSeconds" if not job.get("activeDeadlineSeconds") else "",
                "no backoffLimit" if job.get("backoffLimit") is None else "",
                "no history limits"
                if spec.get("successfulJobsHistoryLimit") is None or spec.get("failedJobsHistoryLimit") is None
                else "",
                f"timeZone={spec.get('timeZone')}" if spec.get("timeZone") not in UTC else "",
            ]
            if any(problems):
                yield Finding(
                    self.id,
                    obj.where,
                    ", ".join(p for p in problems if p),
                    "concurrencyPolicy Forbid, activeDeadlineSeconds from timeout_minutes, backoffLimit from retries, "
                    "history limits, UTC",
                )

    def _schedule(self, tree: Tree, schedule: Resource, alarms: list[Resource]) -> Iterator[Finding]:
        target = schedule.props.get("target") or {}
        problems = []
        if schedule.props.get("scheduleExpressionTimezone") not in UTC:
            problems.append(f"timezone {schedule.props.get('scheduleExpressionTimezone')}")
        if (schedule.props.get("flexibleTimeWindow") or {}).get("mode") != "OFF":
            problems.append("a flexible time window")
        if not target.get("retryPolicy"):
            problems.append("no retry policy")
        queue_arn = (target.get("deadLetterConfig") or {}).get("arn")
        queue = _referenced(tree, schedule, queue_arn)
        if queue is None:
            problems.append("no dead-letter queue")
        elif not any(a.props.get("metricName") == "ApproximateNumberOfMessagesVisible" and points_at(a, queue)
                     for a in alarms):  # fmt: skip
            problems.append("no alarm on its dead-letter queue")
        machine = _referenced(tree, schedule, target.get("arn"))
        if machine is not None and machine.type == "AWS::StepFunctions::StateMachine":
            definition = "".join(strings(machine.props.get("definitionString")))
            if '"TimeoutSeconds"' not in definition and '"TimeoutSecondsPath"' not in definition:
                problems.append("its run has no timeout")
            watched = {a.props.get("metricName") for a in alarms if points_at(a, machine)}
            missing = sorted({"ExecutionsFailed", "ExecutionsTimedOut"} - watched)
            if missing:
                problems.append(f"no alarm on its {' / '.join(missing)}")
        if problems:
            yield Finding(
                self.id,
                schedule.path,
                ", ".join(problems),
                "build jobs with ScheduledJob (UTC, retries, dead-letter queue with alarm, timeout)",
            )


def _referenced(tree: Tree, resource: Resource, value: object) -> Resource | None:
    """The resource of ``resource``'s stack that a Ref / GetAtt ``value`` points at."""
    if not isinstance(value, dict):
        return None
    logical = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0]
    text = json.dumps(logical)
    return next(
        (r for r in tree.resources if r.stack is resource.stack and json.dumps(r.stack.get_logical_id(r.node)) == text),
        None,
    )


RULE = JobScheduleInvalid()
