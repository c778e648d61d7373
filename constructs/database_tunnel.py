"""DatabaseTunnel: what ``make db`` starts for a psql session to the stage's PostgreSQL, without a bastion host,
port 22 or a public database. Built in the data stack only when the stage file sets ``operators:``.

A dedicated small ECS cluster ``Tunnel`` (so it works whatever targets the stage enables) and a Fargate task
definition ``<app>-<stage>-db-tunnel`` that only sleeps: the operator runs one task, opens a Session Manager
port-forwarding session (``AWS-StartPortForwardingSessionToRemoteHost``) through its agent to the database on
5432, and stops the task when the session ends. The task holds no secret and no setting beyond ``APP_STAGE``; its
security group sends only to the database (5432) and to AWS APIs (443), and the database admits it on 5432.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack, aws_ec2 as ec2, aws_ecs as ecs, aws_iam as iam
from constructs import Construct

from config.schema import AppConfig
from constructs.image_repository import image_repository
from constructs.nag import acknowledge, nag_resource
from constructs.operator_access import OperatorAccess, acknowledge_exec_logging, session_log_group_arn
from constructs.retention import log_group

CONTAINER = "tunnel"
POSTGRES_PORT = 5432
PORT_FORWARD_DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"
TUNNEL_COMMAND = ["sleep", "3600"]  # the task ends by itself after an hour if make db could not stop it
LOG_RETENTION_DAYS = 7


class DatabaseTunnel(Construct):
    """The tunnel cluster, task definition and security group, and the operator's permission to use them.

    Attributes:
        cluster: the ``Tunnel`` ECS cluster (exec sessions logged like the other clusters).
        task_definition: ``<app>-<stage>-db-tunnel``: the stage's image running ``sleep 3600``, 256 CPU / 512 MiB.
        security_group: egress to the database on 5432 and HTTPS to AWS APIs only; admitted by the database.
        subnets: the app subnets (private, with a route to AWS APIs) the task runs in.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        database_security_group: ec2.ISecurityGroup,
        operators: OperatorAccess,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
            execute_command_configuration=operators.cluster_exec_configuration(self),
        )
        self.subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="make db tunnel task: PostgreSQL and AWS APIs only",
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs over HTTPS (Session Manager, ECR, logs)"
        )
        self.security_group.connections.allow_to(
            ec2.Connections(security_groups=[database_security_group]),
            ec2.Port.tcp(POSTGRES_PORT),
            "make db: port forwarding to PostgreSQL",
        )

        repository, reference = image_repository(self, config.image)
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=f"{config.app}-{config.stage}-db-tunnel",
            cpu=256,
            memory_limit_mib=512,
        )
        self.log_group = log_group(self, "Logs", days=LOG_RETENTION_DAYS, removal_policy=RemovalPolicy.DESTROY)
        self.task_definition.add_container(
            CONTAINER,
            image=ecs.ContainerImage.from_ecr_repository(repository, reference),
            essential=True,
            command=list(TUNNEL_COMMAND),
            environment={"APP_STAGE": config.stage},
            logging=ecs.LogDrivers.aws_logs(stream_prefix="db-tunnel", log_group=self.log_group),
        )
        execution_role = self.task_definition.obtain_execution_role()
        task_role = self.task_definition.task_role
        # ECS Exec without a service: the agent's channels, the session log group and the session key.
        task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                resources=["*"],
            )
        )
        streams = session_log_group_arn(self, config)
        task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"], resources=[streams]
            )
        )
        task_role.add_to_principal_policy(iam.PolicyStatement(actions=["logs:DescribeLogGroups"], resources=["*"]))
        task_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt"], resources=[operators.key.key_arn])
        )
        acknowledge(
            task_role,
            "IAM5[Resource::*]",
            "ECS Exec (operators): ssmmessages channel actions and logs:DescribeLogGroups support no resource scoping",
        )
        acknowledge_exec_logging(task_role, config)
        acknowledge(self.task_definition, "ECS2", "only APP_STAGE is in the environment; the tunnel holds no secret")
        acknowledge(
            execution_role,
            "IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource scope; pulls are scoped to the repository",
        )

        # The operator: run this task definition in this cluster, stop and describe its tasks, forward a port.
        tasks = stack.format_arn(service="ecs", resource="task", resource_name=f"{self.cluster.cluster_name}/*")
        document = stack.format_arn(service="ssm", account="", resource="document", resource_name=PORT_FORWARD_DOCUMENT)
        self.operator_policy = iam.Policy(
            self,
            "OperatorTunnel",
            roles=[operators.role],
            statements=[
                iam.PolicyStatement(
                    actions=["ecs:RunTask"],
                    resources=[self.task_definition.task_definition_arn],
                    conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
                ),
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[task_role.role_arn, execution_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                ),
                iam.PolicyStatement(actions=["ecs:StopTask", "ecs:DescribeTasks"], resources=[tasks]),
                iam.PolicyStatement(
                    actions=["ssm:StartSession"],
                    resources=[tasks, document],
                    conditions={"BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}},
                ),
            ],
        )
        acknowledge(
            self.operator_policy,
            f"IAM5[Resource::{nag_resource(stack, tasks)}]",
            "stop, describe and forward a port through the tasks of the stage's tunnel cluster only; task IDs exist "
            "only at run time",
        )
