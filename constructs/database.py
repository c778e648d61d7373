"""PostgreSQL on RDS in isolated subnets: TLS forced, slow queries logged, backed up, alarmed."""

from __future__ import annotations

import json

import jsii
from aws_cdk import (
    Duration,
    RemovalPolicy,
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_iam as iam,
    aws_rds as rds,
    aws_secretsmanager as secretsmanager,
    aws_sns as sns,
)
from constructs import Construct

from config.schema import DatabaseConfig
from config.sizing import instance_memory_gib, max_connections
from constructs.alarms import GT, LT, add_alarm
from constructs.database_users import DatabaseUsers
from constructs.nag import SECRETS_AWS_KEY, acknowledge, skip_checks
from constructs.retention import retention


@jsii.implements(ec2.IConnectable)
class Database(Construct):
    """Encrypted PostgreSQL instance; consumers reach it with ``x.connections.allow_to_default_port(db)``.

    Its security group admits nothing until a target wires itself in from its own stack.

    Args:
        vpc: placed in the VPC's isolated subnets, never publicly accessible.
        config: engine version, class, storage, multi-AZ, backups, deletion protection, slow-query threshold.
        alarm_topic: action of the CPU, free storage, connections and freeable memory alarms.
        alarm_prefix: ``<app>-<stage>``; alarm names are ``<prefix>-database-<metric>``.
        log_retention_days: retention of the exported PostgreSQL logs.
        retain_data: True keeps a final snapshot on removal (prod); False deletes the instance with the stack.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        config: DatabaseConfig,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
        log_retention_days: int,
        retain_data: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        engine = rds.DatabaseInstanceEngine.postgres(
            version=rds.PostgresEngineVersion.of(config.engine_version, config.major_version)
        )
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=False, description="PostgreSQL: app targets only"
        )
        self.parameter_group = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="TLS only, slow statements logged",
            parameters={
                "rds.force_ssl": "1",  # asyncpg-ssl-param: explicit even where it is the engine default
                "log_min_duration_statement": str(config.slow_query_ms),  # slow-query-logging
            },
        )
        # Our own generated secret: 64 characters (RDS's default is 30), without characters that need quoting.
        self.credentials = secretsmanager.Secret(
            self,
            "Credentials",
            description="PostgreSQL master user",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"username": config.username}),
                generate_string_key="password",
                password_length=64,
                exclude_punctuation=True,
            ),
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Default",
            engine=engine,
            instance_type=ec2.InstanceType(config.instance_class),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.security_group],
            publicly_accessible=False,
            storage_encrypted=True,
            multi_az=config.multi_az,
            allocated_storage=config.allocated_storage_gib,
            max_allocated_storage=config.max_allocated_storage_gib,
            storage_type=rds.StorageType.GP3,
            backup_retention=Duration.days(config.backup_retention_days),
            deletion_protection=config.deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT if retain_data else RemovalPolicy.DESTROY,
            delete_automated_backups=not retain_data,
            credentials=rds.Credentials.from_secret(self.credentials),
            database_name=config.database_name,
            parameter_group=self.parameter_group,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            cloudwatch_logs_retention=retention(log_retention_days),
            auto_minor_version_upgrade=True,
            iam_authentication=True,
            enable_performance_insights=True,
            monitoring_interval=Duration.seconds(config.monitoring_interval_seconds)
            if config.monitoring_interval_seconds
            else None,
            copy_tags_to_snapshot=True,
        )
        # The app signs in as its own user (two alternating logins), never as the master user; both rotate.
        self.users = DatabaseUsers(
            self,
            "Users",
            instance=self.instance,
            master_secret=self.credentials,
            database_security_group=self.security_group,
            vpc=vpc,
            config=config,
        )
        self.alarms = self._add_alarms(alarm_topic, alarm_prefix)
        acknowledge(self.instance, "RDS11", "a non-default port is obscurity; access is SG-to-SG from app targets only")
        skip_checks(self.credentials, ["CKV_AWS_149"], SECRETS_AWS_KEY)
        if config.monitoring_interval_seconds:
            acknowledge(
                self.instance,
                "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole]",
                "RDS enhanced monitoring's own service role: writes OS metrics to the RDSOSMetrics log group only",
            )
        if not config.multi_az:
            acknowledge(
                self.instance,
                "RDS3",
                "single-AZ is this stage's choice; prod is refused without multi-AZ",
                checkov=["CKV_AWS_157"],
            )
        if not config.deletion_protection:
            acknowledge(self.instance, "RDS10", "this stage's data is disposable; prod is refused without protection")

    @property
    def connections(self) -> ec2.Connections:
        return self.instance.connections

    @property
    def secret_arn(self) -> str:
        """The master user's secret (admin and rotation only; no app process reads it)."""
        return self.credentials.secret_arn

    @property
    def app_secret(self) -> secretsmanager.ISecret:
        """The app user's secret: every composed database setting is built from its AWSCURRENT value."""
        return self.users.app_secret

    def grant_read_credentials(self, grantee: iam.IGrantable) -> iam.Grant:
        """Read the app user's secret (the settings handler composes DATABASE_URL and the parts from it)."""
        return self.users.app_secret.grant_read(grantee)

    @property
    def max_connections(self) -> int | None:
        return max_connections(self.config.instance_class)

    def metric(self, metric_name: str, *, statistic: str = "Average") -> cw.Metric:
        return self.instance.metric(metric_name, statistic=statistic, period=Duration.minutes(5))

    def _add_alarms(self, topic: sns.ITopic, prefix: str) -> list[cw.Alarm]:
        storage_bytes = self.config.allocated_storage_gib * 1024**3
        memory = instance_memory_gib(self.config.instance_class)
        connections = self.max_connections
        specs: list[tuple[str, str, float, cw.ComparisonOperator, str]] = [
            ("Cpu", "CPUUtilization", 80, GT, "database CPU above 80 % for 15 minutes"),
            ("FreeStorage", "FreeStorageSpace", storage_bytes * 0.1, LT, "less than 10 % of allocated storage free"),
        ]
        if connections is not None:
            specs.append(
                (
                    "Connections",
                    "DatabaseConnections",
                    int(connections * 0.8),
                    GT,
                    f"more than 80 % of max_connections ({connections})",
                )
            )
        if memory is not None:
            specs.append(
                (
                    "FreeableMemory",
                    "FreeableMemory",
                    memory * 1024**3 * 0.1,
                    LT,
                    "less than 10 % of instance memory freeable",
                )
            )
        return [
            add_alarm(
                self,
                f"{construct_id}Alarm",
                name=f"{prefix}-database-{metric_name}",
                metric=self.metric(metric_name, statistic="Minimum" if comparison == LT else "Average"),
                threshold=threshold,
                comparison=comparison,
                topic=topic,
                description=description,
            )
            for construct_id, metric_name, threshold, comparison, description in specs
        ]
