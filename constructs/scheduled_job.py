"""A scheduled job on Fargate: EventBridge Scheduler starts a Step Functions run that runs the task to completion,
stops it at its timeout and retries a failed run; failures alarm and undeliverable starts land in a queue."""

from __future__ import annotations

import jsii
from aws_cdk import (
    Duration,
    RemovalPolicy,
    Stack,
    TimeZone,
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_scheduler as scheduler,
    aws_scheduler_targets as targets,
    aws_sns as sns,
    aws_stepfunctions as sfn,
    aws_stepfunctions_tasks as tasks,
)
from constructs import Construct

from config.schema import AppConfig
from config.services import Service
from constructs.alarms import GT, GTE, add_alarm
from constructs.app_secrets import AppSecrets
from constructs.compute_target import TargetKind
from constructs.failure_queue import failure_queue
from constructs.nag import acknowledge
from constructs.retention import log_group
from constructs.service_task import service_task, task_log_group, task_security_group


@jsii.implements(ec2.IConnectable)
class ScheduledJob(Construct):
    """One job of the stage (``kind: job``): schedule (UTC), timeout, retries, dead-letter queue, failure alarms.

    Args:
        cluster: the stack's ECS cluster; the task runs in its VPC's private subnets without a public IP.
        config / service / secrets: the stage, the job (command, schedule, ``timeout_minutes``, ``retries``,
            ``ecs`` size), the stage's SecureString parameters (only the job's own secrets are delivered).
        alarm_topic / alarm_prefix: alarms ``<prefix>-job-<name>-ExecutionsFailed`` / ``-ExecutionsTimedOut`` /
            ``-DeadLetters``.

    The state machine waits for the task (``RUN_JOB``): a non-zero exit is a failed run, retried ``retries``
    times; at ``timeout_minutes`` Step Functions stops the task. The job has no port and no inbound rule.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        config: AppConfig,
        service: Service,
        secrets: AppSecrets,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
        target: TargetKind | None = None,
        load_balancer_host: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        assert service.schedule is not None, "ScheduledJob runs a job"
        removal = RemovalPolicy.DESTROY
        self.log_group = task_log_group(self, config)
        self.task_definition = service_task(
            self,
            "Task",
            config=config,
            service=service,
            secrets=secrets,
            log_group=self.log_group,
            target=target,
            load_balancer_host=load_balancer_host,
        )
        self.security_group = task_security_group(
            self, cluster.vpc, f"job {service.name}: no inbound; AWS, DB, cache out", service
        )

        run = tasks.EcsRunTask(
            self,
            "Run",
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            cluster=cluster,
            task_definition=self.task_definition,
            launch_target=tasks.EcsFargateLaunchTarget(platform_version=ecs.FargatePlatformVersion.LATEST),
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.security_group],
            assign_public_ip=False,
            task_timeout=sfn.Timeout.duration(Duration.minutes(service.timeout_minutes)),
        )
        if service.retries:
            run.add_retry(
                errors=["States.TaskFailed"], max_attempts=service.retries, interval=Duration.minutes(1), backoff_rate=2
            )
        stack = Stack.of(self)
        execution_logs = log_group(
            self,
            "ExecutionLogs",
            # Step Functions log delivery: a /aws/vendedlogs/ name keeps the account's Logs resource policy small.
            name=f"/aws/vendedlogs/states/{stack.stack_name}-{service.name}",
            days=config.log_retention_days,
            removal_policy=removal,
        )
        runs = (service.retries + 1) * service.timeout_minutes + 5 * service.retries + 5
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(run),
            timeout=Duration.minutes(runs),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=execution_logs, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        acknowledge(
            self.state_machine,
            "IAM5[Resource::*]",
            "X-Ray, log delivery and ecs:StopTask/DescribeTasks of the run (its task id is only known when it "
            "starts) have no resource scope; ecs:RunTask is scoped to this task definition",
            checkov=["CKV_AWS_111"],
        )
        self.dead_letters = failure_queue(self, "DeadLetters", of="the job's schedule")
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            schedule=scheduler.ScheduleExpression.expression(service.schedule.eventbridge, TimeZone.ETC_UTC),
            description=f"{service.name}: {service.schedule.text} (UTC)",
            target=targets.StepFunctionsStartExecution(
                self.state_machine,
                dead_letter_queue=self.dead_letters,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            ),
        )
        prefix = f"{alarm_prefix}-job-{service.name}"
        self.alarms = [
            add_alarm(
                self,
                "FailedAlarm",
                name=f"{prefix}-ExecutionsFailed",
                metric=self.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                comparison=GTE,
                topic=alarm_topic,
                evaluation_periods=1,
                description=f"job {service.name} failed after {service.retries} retries",
            ),
            add_alarm(
                self,
                "TimedOutAlarm",
                name=f"{prefix}-ExecutionsTimedOut",
                metric=self.state_machine.metric_timed_out(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                comparison=GTE,
                topic=alarm_topic,
                evaluation_periods=1,
                description=f"job {service.name} ran past its time budget",
            ),
            add_alarm(
                self,
                "DeadLettersAlarm",
                name=f"{prefix}-DeadLetters",
                metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5), statistic="Maximum"
                ),
                threshold=0,
                comparison=GT,
                topic=alarm_topic,
                evaluation_periods=1,
                description=f"the scheduler could not start job {service.name}",
            ),
        ]

    @property
    def connections(self) -> ec2.Connections:
        return self.security_group.connections
