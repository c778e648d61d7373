"""OperatorAccess: the stage's operator role (``make shell``), its session log group and key, and the session
document Elastic Beanstalk instances use. Built only when the stage file sets ``operators:``.

The role lives in the data stack (one per stage, named ``<app>-<stage>-operator``); each target grants it what a
shell there needs **from its own stack** (``allow_ecs_exec``, ``allow_instances``, ``allow_eks``), so enabling a
target never changes the data stack.
"""

from __future__ import annotations

from aws_cdk import (
    ArnFormat,
    RemovalPolicy,
    Stack,
    aws_ecs as ecs,
    aws_eks_v2 as eks,
    aws_iam as iam,
    aws_kms as kms,
    aws_logs as logs,
    aws_ssm as ssm,
)
from constructs import Construct, IConstruct

from config.schema import AppConfig
from constructs.nag import acknowledge, nag_resource
from constructs.retention import retention

SESSION_IDLE_MINUTES = 20
SESSION_MAX_MINUTES = 60


def operator_role_name(config: AppConfig) -> str:
    return f"{config.app}-{config.stage}-operator"


def session_log_group_name(config: AppConfig) -> str:
    return f"/{config.app}/{config.stage}/sessions"


def session_log_group_arn(scope: IConstruct, config: AppConfig) -> str:
    """The session log group's ARN with the ``:*`` CloudWatch Logs appends (what exec's task-role grant names)."""
    name = session_log_group_name(config)
    arn = Stack.of(scope).format_arn(
        service="logs", resource="log-group", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
    )
    return f"{arn}:*"


def acknowledge_exec_logging(task_role: iam.IRole, config: AppConfig) -> None:
    """The cdk-nag acknowledgement of the grant ECS Exec gives a task role on the session log group's streams."""
    acknowledge(
        task_role,
        f"IAM5[Resource::{nag_resource(Stack.of(task_role), session_log_group_arn(task_role, config))}]",
        "ECS Exec writes one stream per session to the stage's session log group (operators:)",
    )


class OperatorAccess(Construct):
    """The operator role only ``config.operators.role_arns`` may assume, and where its sessions are recorded.

    Attributes:
        role: ``<app>-<stage>-operator``: reads the stage's stack outputs, starts Session Manager sessions with
            ``document`` only, ends and resumes its own sessions; targets add the rest.
        key: customer-managed KMS key (rotated) that encrypts the session log group and the session data.
        log_group: ``/<app>/<stage>/sessions``: every ECS Exec and Session Manager session's input and output.
        document: the ``SessionManagerRunShell`` document EB sessions must use (logs to ``log_group``).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig) -> None:
        super().__init__(scope, construct_id)
        assert config.operators is not None, "OperatorAccess is built only for a stage with operators"
        stack = Stack.of(self)
        prod = config.stage == "prod"
        self.log_group_name = group_name = session_log_group_name(config)
        group_arn = stack.format_arn(
            service="logs", resource="log-group", resource_name=group_name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        self.key = kms.Key(
            self,
            "SessionKey",
            description=f"{config.app}-{config.stage}: shell sessions (ECS Exec, Session Manager) and their logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
        )
        # CloudWatch Logs encrypts the session log group with this key (only for that group).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                principals=[iam.ServicePrincipal(f"logs.{config.region}.amazonaws.com")],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": group_arn}},
            )
        )
        self.log_group = logs.LogGroup(
            self,
            "SessionLogs",
            log_group_name=group_name,
            encryption_key=self.key,
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
        )
        self.log_group.node.add_dependency(self.key)
        self.document = ssm.CfnDocument(
            self,
            "SessionDocument",
            document_type="Session",
            document_format="JSON",
            content={
                "schemaVersion": "1.0",
                "description": f"{config.app}-{config.stage}: shell on an instance, logged and encrypted",
                "sessionType": "Standard_Stream",
                "inputs": {
                    "s3BucketName": "",
                    "s3KeyPrefix": "",
                    "s3EncryptionEnabled": True,
                    "cloudWatchLogGroupName": group_name,
                    "cloudWatchEncryptionEnabled": True,
                    "cloudWatchStreamingEnabled": True,
                    "kmsKeyId": self.key.key_id,
                    "runAsEnabled": False,
                    "runAsDefaultUser": "",
                    "idleSessionTimeout": str(SESSION_IDLE_MINUTES),
                    "maxSessionDuration": str(SESSION_MAX_MINUTES),
                    "shellProfile": {"linux": "", "windows": ""},
                },
            },
            update_method="NewVersion",
        )
        self.document.node.add_dependency(self.log_group)
        self.document_arn = stack.format_arn(service="ssm", resource="document", resource_name=self.document.ref)

        principals = [iam.ArnPrincipal(arn) for arn in config.operators.role_arns]
        self.role = iam.Role(
            self,
            "Role",
            role_name=operator_role_name(config),
            assumed_by=iam.CompositePrincipal(*principals) if len(principals) > 1 else principals[0],
            description=f"{config.app}-{config.stage}: make shell (operators: in the stage file)",
        )
        stacks = stack.format_arn(
            service="cloudformation", resource="stack", resource_name=f"{config.app}-{config.stage}-*/*"
        )
        sessions = stack.format_arn(service="ssm", resource="session", resource_name="${aws:userid}-*")
        sessions_nag = nag_resource(stack, sessions).replace("${", "<").replace("}", ">")  # how cdk-nag prints it
        for actions, resources in (
            (["cloudformation:DescribeStacks"], [stacks]),
            (["ssm:StartSession"], [self.document_arn]),
            (["ssm:TerminateSession", "ssm:ResumeSession"], [sessions]),
            # The client side of an encrypted session (ECS Exec and Session Manager): a data key per session.
            (["kms:GenerateDataKey"], [self.key.key_arn]),
        ):
            self.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))
        acknowledge(
            self.role,
            f"IAM5[Resource::{nag_resource(stack, stacks)}]",
            "the operator reads the outputs of the stage's own stacks (<app>-<stage>-*) to find its targets",
        )
        acknowledge(
            self.role,
            f"IAM5[Resource::{sessions_nag}]",
            "an operator ends and resumes only its own Session Manager sessions (named after ${aws:userid})",
        )

    def cluster_exec_configuration(self, scope: Construct) -> ecs.ExecuteCommandConfiguration:
        """The ECS cluster setting (for a cluster in ``scope``'s stack) that logs every exec session to the session
        log group, encrypted with the key. The group is named, not referenced: the task roles' grants name it."""
        group = logs.LogGroup.from_log_group_name(scope, "SessionLogs", self.log_group_name)
        # Imported by ARN: CDK would otherwise write statements into the data stack's key policy from each target
        # (the key policy already admits CloudWatch Logs for this group, IAM grants do the rest).
        key = kms.Key.from_key_arn(scope, "SessionKey", self.key.key_arn)
        return ecs.ExecuteCommandConfiguration(
            kms_key=key,
            logging=ecs.ExecuteCommandLogging.OVERRIDE,
            log_configuration=ecs.ExecuteCommandLogConfiguration(
                cloud_watch_log_group=group, cloud_watch_encryption_enabled=True
            ),
        )

    def allow_ecs_exec(self, scope: Construct, cluster: ecs.ICluster) -> iam.Policy:
        """``OperatorExec`` of ``scope``: the operator may list and describe the tasks of ``cluster`` and exec
        into them (a policy in ``scope``'s stack, attached to the role)."""
        stack = Stack.of(scope)
        tasks = stack.format_arn(service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*")
        policy = iam.Policy(
            scope,
            "OperatorExec",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(actions=["ecs:ExecuteCommand"], resources=[cluster.cluster_arn, tasks]),
                iam.PolicyStatement(actions=["ecs:DescribeTasks"], resources=[tasks]),
                iam.PolicyStatement(
                    actions=["ecs:ListTasks"],
                    resources=["*"],
                    conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
                ),
            ],
        )
        acknowledge(
            policy,
            f"IAM5[Resource::{nag_resource(stack, tasks)}]",
            "exec and describe on the tasks of this stage's cluster only; task IDs exist only at run time",
        )
        acknowledge(
            policy,
            "IAM5[Resource::*]",
            "ecs:ListTasks of services has no resource ARN; the condition ecs:cluster limits it to this cluster",
        )
        return policy

    def allow_instances(
        self, scope: Construct, *, config: AppConfig, environment_name: str, instance_role: iam.IRole
    ) -> None:
        """Session Manager to the instances of one Elastic Beanstalk environment (by EB's instance tag), with the
        session document only; ``instance_role`` gets Session Manager's managed policy and may write the
        session log group and decrypt session data."""
        stack = Stack.of(scope)
        instances = stack.format_arn(service="ec2", resource="instance", resource_name="*")
        policy = iam.Policy(
            scope,
            "OperatorSessions",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    actions=["ssm:StartSession"],
                    resources=[instances],
                    conditions={
                        "StringEquals": {"ssm:resourceTag/elasticbeanstalk:environment-name": environment_name},
                        "BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"},
                    },
                ),
                # Which instances run the environment (EB tags each with its environment name).
                iam.PolicyStatement(actions=["ec2:DescribeInstances"], resources=["*"]),
            ],
        )
        acknowledge(
            policy,
            f"IAM5[Resource::{nag_resource(stack, instances)}]",
            "instance IDs change with every deploy; sessions are limited to the environment's instances by EB's "
            "elasticbeanstalk:environment-name tag and to the stage's session document",
        )
        acknowledge(policy, "IAM5[Resource::*]", "ec2:DescribeInstances supports no resource-level permissions")
        managed = "AmazonSSMManagedInstanceCore"
        instance_role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(managed))
        acknowledge(
            instance_role,
            f"IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{managed}]",
            "Session Manager's agent on the instances (operators: in the stage file): no SSH, no bastion; AWS "
            "maintains the policy with the agent",
        )
        streams = session_log_group_arn(scope, config)
        instance_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"], resources=[streams]
            )
        )
        instance_role.add_to_principal_policy(iam.PolicyStatement(actions=["logs:DescribeLogGroups"], resources=["*"]))
        instance_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self.key.key_arn])
        )
        acknowledge(
            instance_role,
            f"IAM5[Resource::{nag_resource(stack, streams)}]",
            "the agent writes one stream per session to the stage's session log group",
        )

    def allow_eks(self, scope: Construct, cluster: eks.ICluster, *, namespace: str) -> eks.AccessEntry:
        """``OperatorAccessEntry`` of ``scope``: the operator role may edit (exec, logs, rollouts) the app
        namespace of ``cluster`` only, and describe the cluster for ``aws eks update-kubeconfig``."""
        iam.Policy(
            scope,
            "OperatorCluster",
            roles=[self.role],
            statements=[iam.PolicyStatement(actions=["eks:DescribeCluster"], resources=[cluster.cluster_arn])],
        )
        return eks.AccessEntry(
            scope,
            "OperatorAccessEntry",
            cluster=cluster,
            principal=self.role.role_arn,
            access_policies=[
                eks.AccessPolicy.from_access_policy_name(
                    "AmazonEKSEditPolicy", access_scope_type=eks.AccessScopeType.NAMESPACE, namespaces=[namespace]
                )
            ],
        )
