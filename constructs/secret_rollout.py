"""Roll services out when a parameter they read changes: rotation, ``make secret``, or the deploy itself.

ECS tasks and Elastic Beanstalk instances read their Parameter Store values once, at start; a changed value
reaches them only when they are replaced. Parameter Store publishes ``Parameter Store Change`` to EventBridge
natively; this rule sends the stage's changes to one function per stack (functions/secret_rollout), which
starts an ECS deployment of every service that reads the parameter, or redeploys the running version of the
Elastic Beanstalk environment: the same health-gated roll-out as a new image (circuit breaker / deployment
policy). EKS needs none of this: External Secrets refreshes the Kubernetes Secret and Reloader rolls the
Deployments that use it (``EksFargateCluster``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import (
    Duration,
    Stack,
    aws_events as events,
    aws_events_targets as targets,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_lambda_destinations as destinations,
    aws_sns as sns,
)
from constructs import Construct

from config.schema import AppConfig
from constructs.alarms import GT, add_alarm
from constructs.beanstalk_environment import BeanstalkEnvironment
from constructs.failure_queue import failure_queue
from constructs.nag import acknowledge, nag_resource, skip_checks
from constructs.python_function import python_function

HANDLER_DIR = Path(__file__).resolve().parents[1] / "functions" / "secret_rollout"
REASON = (
    "EventBridge invokes it for a changed parameter of this stage, a few times per change (no reserved "
    "concurrency: a second run finds the deployment already started); it calls only AWS APIs (no VPC) and its "
    "environment holds names, never values"
)
EB_REDEPLOY = (
    "Elastic Beanstalk redeploys with its caller's permissions: CloudFormation, Auto Scaling, EC2 and ELB on the "
    "environment's own awseb-* resources (names EB generates), launch templates and read-only Describe calls "
    "that support no resource scope (the set AWS's managed-updates role policy uses, narrowed to this environment)"
)


def readers_of(config: AppConfig, target: str) -> dict[str, list[str]]:
    """``{parameter name: [service name, ...]}``: the long-running services on ``target`` (web, workers) and
    the parameters they read. Jobs and the migration step read theirs at each run."""
    readers: dict[str, list[str]] = {}
    for service in config.workloads:
        if service.kind in ("web", "worker") and service.runs_on(target):
            for setting in service.secrets:
                readers.setdefault(config.parameter_of(service, setting), []).append(service.name)
    return readers


class SecretRollout(Construct):
    """The rule and the function of one compute stack.

    Args:
        config: the stage (parameter prefix ``/<app>/<stage>/``).
        ecs_cluster / ecs_services: the cluster's name and ``{service name: (service ARN, ECS service name)}``
            of the long-running services it runs (tokens).
        eb_environments: the web services on Elastic Beanstalk, one environment each (each redeployed when a
            parameter its service reads changes, with the permissions that takes).
        alarm_topic / alarm_prefix: a roll-out that failed after its retries lands in a queue that alarms.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        ecs_cluster: str | None = None,
        ecs_services: Mapping[str, tuple[str, str]] | None = None,
        eb_environments: Sequence[BeanstalkEnvironment] = (),
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        rollout: dict[str, dict[str, Any]] = {}
        statements: list[iam.PolicyStatement] = []
        if ecs_cluster is not None and ecs_services:
            kind = "eb" if eb_environments else "ecs"
            readers = {
                name: [ecs_services[s][1] for s in services if s in ecs_services]
                for name, services in readers_of(config, kind).items()
            }
            rollout["ecs"] = {"cluster": ecs_cluster, "readers": {k: v for k, v in readers.items() if v}}
            statements.append(
                iam.PolicyStatement(
                    actions=["ecs:DescribeServices", "ecs:UpdateService"],
                    resources=sorted({arn for arn, _ in ecs_services.values()}),
                )
            )
        if eb_environments:
            eb_readers: dict[str, list[str]] = {}
            for environment in eb_environments:  # each environment reads exactly its service's secrets
                for setting in environment.service.secrets:
                    eb_readers.setdefault(config.parameter_of(environment.service, setting), []).append(
                        environment.environment_name
                    )
            rollout["eb"] = {
                "readers": eb_readers,
                # Deferred while a stack of the stage deploys: CloudFormation may be updating the environment.
                "stacks": [config.stack_name("data"), stack.stack_name],
            }
            statements += _eb_statements(stack, eb_environments)
        self.readers = rollout
        # What failed after Lambda's two retries (an environment busy for long, a missing permission): alarmed, next
        # to doctor's secret-rollout-stale.
        self.failed = failure_queue(self, "Failed", of="the roll-out function")
        function = python_function(
            self,
            "Function",
            code=lambda_.Code.from_asset(str(HANDLER_DIR)),
            reason=REASON,
            timeout=Duration.minutes(1),
            environment={"ROLLOUT": stack.to_json_string(rollout)},
            description=f"{config.app}-{config.stage}: rolls out the services that read a changed parameter",
            on_failure=destinations.SqsDestination(self.failed),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        for statement in statements:
            function.add_to_role_policy(statement)
        for resource in sorted({r for st in statements for r in st.resources if "*" in r}):
            acknowledge(function, f"IAM5[Resource::{nag_resource(stack, resource)}]", EB_REDEPLOY)
        if eb_environments:
            skip_checks(function, ["CKV_AWS_111"], EB_REDEPLOY)
        add_alarm(
            self,
            "FailedAlarm",
            name=f"{alarm_prefix}-secret-rollout-failed",
            metric=self.failed.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            threshold=0,
            comparison=GT,
            topic=alarm_topic,
            description="a changed setting could not be rolled out: services may run the old value (make doctor)",
            evaluation_periods=1,
        )
        self.function = function
        self.rule = events.Rule(
            self,
            "Rule",
            description=f"a parameter under /{config.app}/{config.stage}/ changed: roll out its readers",
            event_pattern=events.EventPattern(
                source=["aws.ssm"],
                detail_type=["Parameter Store Change"],
                detail={
                    "name": [{"prefix": f"/{config.app}/{config.stage}/"}],
                    "operation": ["Create", "Update"],
                },
            ),
        )
        self.rule.add_target(targets.LambdaFunction(function, retry_attempts=4, max_event_age=Duration.hours(6)))


def _eb_statements(stack: Stack, environments: Sequence[BeanstalkEnvironment]) -> list[iam.PolicyStatement]:
    """Describe and redeploy the environments (of one application): EB's own actions on them, and what a redeploy
    does underneath."""
    arn = stack.format_arn
    eb = environments[0]
    application = eb.application.ref
    env_arns = [
        arn(service="elasticbeanstalk", resource="environment", resource_name=f"{application}/{e.environment_name}")
        for e in environments
    ]
    app_arn = arn(service="elasticbeanstalk", resource="application", resource_name=application)
    stages = [stack.stack_name, stack.stack_name.rsplit("-", 1)[0] + "-data"]
    stack_status = [arn(service="cloudformation", resource="stack", resource_name=f"{name}/*") for name in stages]
    bundles = [f"arn:{stack.partition}:s3:::{e.bundle.s3_bucket_name}/{e.bundle.s3_object_key}" for e in environments]
    eb_bucket = f"elasticbeanstalk-{stack.region}-{stack.account}"
    return [
        iam.PolicyStatement(
            actions=["elasticbeanstalk:DescribeEnvironments", "elasticbeanstalk:UpdateEnvironment"],
            resources=[*env_arns, app_arn],
        ),
        iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=stack_status),
        iam.PolicyStatement(
            actions=[
                "cloudformation:GetTemplate",
                "cloudformation:UpdateStack",
                "cloudformation:CancelUpdateStack",
                "cloudformation:DescribeStackEvents",
                "cloudformation:DescribeStackResource",
                "cloudformation:DescribeStackResources",
            ],
            resources=[arn(service="cloudformation", resource="stack", resource_name="awseb-e-*/*")],
        ),
        iam.PolicyStatement(
            actions=[
                "autoscaling:SuspendProcesses",
                "autoscaling:ResumeProcesses",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:SetDesiredCapacity",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:DeleteAutoScalingGroup",
                "autoscaling:AttachInstances",
                "autoscaling:DetachInstances",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:PutNotificationConfiguration",
                "autoscaling:PutScalingPolicy",
                "autoscaling:DeletePolicy",
                "autoscaling:PutScheduledUpdateGroupAction",
                "autoscaling:DeleteScheduledAction",
            ],
            resources=[
                f"arn:{stack.partition}:autoscaling:{stack.region}:{stack.account}:autoScalingGroup:*"
                ":autoScalingGroupName/awseb-e-*"
            ],
        ),
        iam.PolicyStatement(
            actions=["ec2:RunInstances"],
            resources=["*"],
            conditions={
                "ArnLike": {"ec2:LaunchTemplate": arn(service="ec2", resource="launch-template", resource_name="*")}
            },
        ),
        iam.PolicyStatement(
            actions=[
                "ec2:CreateLaunchTemplate",
                "ec2:CreateLaunchTemplateVersion",
                "ec2:DeleteLaunchTemplate",
                "ec2:DeleteLaunchTemplateVersions",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            actions=["ec2:CreateTags"],
            resources=["*"],
            conditions={"StringEquals": {"ec2:CreateAction": ["RunInstances", "CreateLaunchTemplate"]}},
        ),
        iam.PolicyStatement(
            actions=["ec2:TerminateInstances"],
            resources=[arn(service="ec2", resource="instance", resource_name="*")],
            conditions={
                "StringLike": {
                    "ec2:ResourceTag/aws:cloudformation:stack-id": arn(
                        service="cloudformation", resource="stack", resource_name="awseb-e-*"
                    )
                }
            },
        ),
        iam.PolicyStatement(
            actions=["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
            resources=[arn(service="elasticloadbalancing", resource="targetgroup", resource_name="awseb-*")],
        ),
        iam.PolicyStatement(
            actions=[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeScheduledActions",
                "autoscaling:DescribeNotificationConfigurations",
                "ec2:DescribeInstances",
                "ec2:DescribeImages",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeVpcs",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAvailabilityZones",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeLoadBalancers",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[e.instance_role.role_arn for e in environments],
            conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[*bundles, f"arn:{stack.partition}:s3:::{eb_bucket}/*"],
        ),
        iam.PolicyStatement(
            actions=["s3:ListBucket", "s3:GetBucketLocation"], resources=[f"arn:{stack.partition}:s3:::{eb_bucket}"]
        ),
    ]
