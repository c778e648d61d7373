"""The migration step: the deployment runs the ``migrate`` command as a one-off Fargate task and waits for it,
before any service of the stack is updated; a failing migration fails the deployment (migrations-not-run)."""

from __future__ import annotations

from pathlib import Path

import jsii
from aws_cdk import (
    ArnFormat,
    CustomResource,
    Duration,
    RemovalPolicy,
    Stack,
    aws_ec2 as ec2,
    aws_ecs as ecs,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_logs as logs,
    aws_stepfunctions as sfn,
    custom_resources as cr,
)
from constructs import Construct, IConstruct

from config.schema import AppConfig
from config.services import Service
from constructs.app_secrets import AppSecrets
from constructs.nag import DEPLOY_HELPER, DEPLOY_HELPER_CHECKS, acknowledge, nag_resource, skip_checks
from constructs.retention import log_group
from constructs.service_task import CONTAINER, service_task, task_log_group, task_security_group

HANDLER_DIR = Path(__file__).resolve().parents[1] / "functions" / "run_task"
RESOURCE_TYPE = "Custom::RunTask"


@jsii.implements(ec2.IConnectable)
class MigrationStep(Construct):
    """Runs ``migrate.command`` once per deployment (whenever its task definition changes: new image, command or
    settings) and waits for exit code 0; anything else fails the stack update, CloudFormation rolls back and the
    old version keeps serving. During a rollback the step does not run (migrations are not reversed by running
    the old image); make migrations backward compatible (expand, then contract in a later release).

    Args:
        cluster: the stack's ECS cluster; the task runs in the private subnets without a public IP.
        config / service / secrets: the stage, the migrate step (command, settings, ``timeout_minutes``), the
            stage's SecureString parameters.

    Make everything the migration protects depend on ``resource`` (``protect``).
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
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = task_log_group(self, config)
        self.task_definition = service_task(
            self, "Task", config=config, service=service, secrets=secrets, log_group=self.log_group
        )
        self.security_group = task_security_group(
            self, cluster.vpc, "migration task: no inbound; AWS, DB, cache out", service
        )

        def step_log_group(construct_id: str, name: str | None = None) -> logs.LogGroup:
            return log_group(
                self, construct_id, days=config.log_retention_days, removal_policy=RemovalPolicy.DESTROY, name=name
            )

        def handler(name: str, entry: str) -> lambda_.Function:
            function = lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_14,
                handler=f"index.{entry}",
                code=lambda_.Code.from_asset(str(HANDLER_DIR)),
                timeout=Duration.seconds(60),
                description=f"{stack.stack_name}: runs the migration task and waits for its exit code",
                log_group=step_log_group(f"{name}Logs"),
            )
            acknowledge(
                function,
                "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "Lambda's basic execution policy: its own log stream only",
            )
            skip_checks(function, DEPLOY_HELPER_CHECKS, DEPLOY_HELPER)
            return function

        on_event, is_complete = handler("Start", "on_event"), handler("Wait", "is_complete")
        self.task_definition.grant_run(on_event)  # ecs:RunTask on this task definition + iam:PassRole of its roles
        tasks = stack.format_arn(
            service="ecs",
            resource="task",
            resource_name=f"{cluster.cluster_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        is_complete.add_to_role_policy(iam.PolicyStatement(actions=["ecs:DescribeTasks"], resources=[tasks]))
        on_event.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[stack.stack_id])
        )
        acknowledge(
            is_complete,
            f"IAM5[Resource::{nag_resource(stack, tasks)}]",
            "task ids are only known at run time; scoped to this cluster's tasks",
        )
        acknowledge(
            on_event,
            f"IAM5[Resource::{nag_resource(stack, self.task_definition.task_definition_arn.rsplit(':', 1)[0])}:*]",
            "ecs:RunTask on any revision of this task definition's family (CDK's grant_run)",
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event,
            is_complete_handler=is_complete,
            query_interval=Duration.seconds(15),
            total_timeout=Duration.minutes(service.timeout_minutes),
            log_group=step_log_group("ProviderLogs"),
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                # Step Functions log delivery: a /aws/vendedlogs/ name keeps the account's Logs resource policy small.
                destination=step_log_group("WaiterLogs", f"/aws/vendedlogs/states/{stack.stack_name}-migrate"),
                include_execution_data=False,
                level=sfn.LogLevel.ALL,
            ),
        )
        self.provider = provider
        self._acknowledge_framework(provider)
        private = cluster.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        self.resource = CustomResource(
            self,
            "Run",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={
                "Cluster": cluster.cluster_arn,
                "TaskDefinition": self.task_definition.task_definition_arn,
                "Subnets": private,
                "SecurityGroups": [self.security_group.security_group_id],
                "ContainerName": CONTAINER,
                "LogGroup": self.log_group.log_group_name,
                "LogStreamPrefix": service.name,
            },
        )

    def _acknowledge_framework(self, provider: cr.Provider) -> None:
        """cdk-nag findings on the functions, roles and state machine CDK's Provider framework builds."""
        stack = Stack.of(self)
        for function in self.node.find_all():
            if isinstance(function, lambda_.CfnFunction):
                acknowledge(
                    self,
                    f"IAM5[Resource::<{stack.get_logical_id(function)}.Arn>:*]",
                    "the provider framework invokes any version of the step's handler functions",
                )
        acknowledge(
            provider,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's provider framework functions: their own log streams only",
        )
        acknowledge(
            provider,
            "IAM5[Resource::*]",
            "the waiter state machine's log delivery and X-Ray actions have no resource scope",
            checkov=["CKV_AWS_111"],
        )
        for function in provider.node.find_all():
            if isinstance(function, lambda_.CfnFunction):
                skip_checks(function, DEPLOY_HELPER_CHECKS, DEPLOY_HELPER)
        acknowledge(provider, "SF2", "CDK's waiter state machine polls a Lambda every 15 s; traces add nothing")
        acknowledge(provider, "L1", "CDK pins the provider framework's Node.js runtime")

    def protect(self, *dependents: IConstruct) -> None:
        """``dependents`` (services, environments, schedules) are updated only after the migration succeeded."""
        for dependent in dependents:
            dependent.node.add_dependency(self.resource)

    @property
    def connections(self) -> ec2.Connections:
        return self.security_group.connections
