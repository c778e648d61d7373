"""DataStack (stateful): PostgreSQL, Redis, the alarm topic and the app's SecureString parameters."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, aws_ec2 as ec2
from constructs import Construct

from config.schema import AppConfig
from constructs.alarm_topic import AlarmTopic
from constructs.app_secrets import AppSecrets
from constructs.cache import Cache
from constructs.database import Database
from constructs.database_tunnel import DatabaseTunnel
from constructs.nag import LOG_RETENTION_WRITES, acknowledge
from constructs.operator_access import OperatorAccess
from stacks.stage_stack import StageStack


class DataStack(StageStack):
    """Stateful resources of a stage. Targets wire themselves to ``database`` and ``cache`` from their own
    stacks, so enabling a target never changes this stack."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, vpc: ec2.IVpc, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, config=config, termination_protection=True, **kwargs)
        prefix = f"{config.app}-{config.stage}"
        prod = config.stage == "prod"
        self.alarm_topic = AlarmTopic(self, "Alarms", config=config.alarms, display_name=f"{prefix} alarms").topic
        self.database = Database(
            self,
            "Database",
            vpc=vpc,
            config=config.database,
            alarm_topic=self.alarm_topic,
            alarm_prefix=prefix,
            log_retention_days=config.log_retention_days,
            retain_data=prod,
        )
        self.cache = Cache(
            self,
            "Cache",
            vpc=vpc,
            config=config.cache,
            alarm_topic=self.alarm_topic,
            alarm_prefix=prefix,
            log_retention_days=config.log_retention_days,
            snapshot_retention_days=7 if prod else 0,
        )
        self.secrets = AppSecrets(self, "Settings", config=config, database=self.database, cache=self.cache)
        # Shell access (make shell): only with operators: in the stage file; targets grant it from their stacks.
        self.operators = OperatorAccess(self, "Operators", config=config) if config.operators else None
        # make db: a Session Manager port-forwarding tunnel to PostgreSQL through a short-lived task (operators: only).
        self.tunnel = (
            DatabaseTunnel(
                self,
                "Tunnel",
                config=config,
                vpc=vpc,
                database_security_group=self.database.security_group,
                operators=self.operators,
            )
            if self.operators is not None
            else None
        )

        for child in self.node.children:
            if child.node.id.startswith("LogRetention"):  # CDK's singleton that sets RDS log-group retention
                acknowledge(
                    child,
                    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                    "CDK's LogRetention function uses AWSLambdaBasicExecutionRole",
                )
                acknowledge(child, "IAM5[Resource::*]", LOG_RETENTION_WRITES)

        for key, value in {
            "DatabaseInstanceId": self.database.instance.instance_identifier,
            "DatabaseSecurityGroupId": self.database.security_group.security_group_id,
            "DatabaseSecretArn": self.database.secret_arn,
            "CacheReplicationGroupId": self.cache.replication_group_id,
            "CacheSecurityGroupId": self.cache.security_group.security_group_id,
            "CacheAuthSecretArn": self.cache.auth_secret.secret_arn,
            "AlarmTopicArn": self.alarm_topic.topic_arn,
        }.items():
            CfnOutput(self, key, value=value)
        if self.operators is not None:
            for key, value in {
                "OperatorRoleArn": self.operators.role.role_arn,
                "SessionDocumentName": self.operators.document.ref,
                "SessionLogGroupName": self.operators.log_group.log_group_name,
            }.items():
                CfnOutput(self, key, value=value)
        if self.tunnel is not None:  # make db (never a password: the app user's secret holds it)
            for key, value in {
                "TunnelClusterName": self.tunnel.cluster.cluster_name,
                "TunnelTaskDefinitionArn": self.tunnel.task_definition.task_definition_arn,
                "TunnelSubnetIds": Fn.join(",", self.tunnel.subnets.subnet_ids),
                "TunnelSecurityGroupId": self.tunnel.security_group.security_group_id,
                "DatabaseEndpoint": self.database.instance.db_instance_endpoint_address,
                "DatabaseName": config.database.database_name,
                "DatabaseAppUser": config.database.app_username,
                "DatabaseAppSecretArn": self.database.app_secret.secret_arn,
            }.items():
                CfnOutput(self, key, value=value)
