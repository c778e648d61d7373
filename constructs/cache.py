"""Redis on ElastiCache (L1-wrapped): TLS in transit, encrypted at rest, AUTH token from Secrets Manager."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    ArnFormat,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_elasticache as elasticache,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_secretsmanager as secretsmanager,
    aws_sns as sns,
)
from constructs import Construct

from config.schema import CacheConfig
from constructs.alarms import GT, add_alarm
from constructs.nag import SECRETS_AWS_KEY, acknowledge, skip_checks
from constructs.python_function import python_function
from constructs.retention import log_group

REDIS_PORT = 6379
ROTATION_DIR = Path(__file__).resolve().parents[1] / "functions" / "redis_rotation"
ROTATION_REASON = (
    "rotation function Secrets Manager invokes on the schedule (it retries a failed rotation itself); it calls "
    "only the ElastiCache and Secrets Manager APIs (no VPC) and its environment holds no secret"
)


@jsii.implements(ec2.IConnectable)
class Cache(Construct):
    """Redis replication group in isolated subnets; consumers call ``x.connections.allow_to_default_port(cache)``.

    Args:
        vpc: placed in the VPC's isolated subnets.
        config: node type, engine version, replicas (>= 1 turns on multi-AZ with automatic failover).
        alarm_topic: action of the engine CPU, memory and eviction alarms.
        alarm_prefix: ``<app>-<stage>``; alarm names are ``<prefix>-cache-<node>-<metric>``.
        log_retention_days: retention of the slow log.
        snapshot_retention_days: daily snapshots kept. Default: 0 (none).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        config: CacheConfig,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
        log_retention_days: int,
        snapshot_retention_days: int = 0,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=False, description="Redis: app targets only"
        )
        self._connections = ec2.Connections(
            security_groups=[self.security_group], default_port=ec2.Port.tcp(REDIS_PORT)
        )
        # ElastiCache AUTH allows only printable characters without most punctuation: letters and digits only.
        self.auth_secret = secretsmanager.Secret(
            self,
            "AuthToken",
            description="Redis AUTH token",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description="isolated subnets",
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        )
        slow_log = log_group(self, "SlowLog", days=log_retention_days)
        multi_az = config.replicas >= 1
        self.replication_group = elasticache.CfnReplicationGroup(
            self,
            "Resource",
            replication_group_description="app cache",
            engine="redis",
            engine_version=config.engine_version,
            cache_node_type=config.node_type,
            num_cache_clusters=1 + config.replicas,
            automatic_failover_enabled=multi_az,
            multi_az_enabled=multi_az,
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            # A dynamic reference: the template holds {{resolve:secretsmanager:...}}, never the token.
            auth_token=self.auth_secret.secret_value.unsafe_unwrap(),
            port=REDIS_PORT,
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[self.security_group.security_group_id],
            snapshot_retention_limit=snapshot_retention_days,
            auto_minor_version_upgrade=True,
            log_delivery_configurations=[
                elasticache.CfnReplicationGroup.LogDeliveryConfigurationRequestProperty(
                    destination_type="cloudwatch-logs",
                    log_format="json",
                    log_type="slow-log",
                    destination_details=elasticache.CfnReplicationGroup.DestinationDetailsProperty(
                        cloud_watch_logs_details=elasticache.CfnReplicationGroup.CloudWatchLogsDestinationDetailsProperty(
                            log_group=slow_log.log_group_name
                        )
                    ),
                )
            ],
        )
        # A final snapshot when the group is deleted or replaced in a stage that keeps snapshots; else deleted.
        self.replication_group.apply_removal_policy(
            RemovalPolicy.SNAPSHOT if snapshot_retention_days else RemovalPolicy.DESTROY
        )
        self.node_count = 1 + config.replicas
        self.alarms = self._add_alarms(alarm_topic, alarm_prefix)
        acknowledge(self.replication_group, "AEC5", "a non-default port is obscurity; access is SG-to-SG only")
        skip_checks(self.auth_secret, ["CKV_AWS_149"], SECRETS_AWS_KEY)
        self.rotation_days = config.rotation_days
        if config.rotation_days is None:
            acknowledge(self.auth_secret, "SMG4", "cache.rotation_days is null in this stage: rotate by hand only")
        else:
            self._add_rotation(config.rotation_days)
        if not multi_az:
            acknowledge(
                self.replication_group, "AEC4", "no replica is this stage's choice; prod requires replicas >= 1"
            )

    @property
    def connections(self) -> ec2.Connections:
        return self._connections

    def _add_rotation(self, days: int) -> None:
        """Rotate the AUTH token with ElastiCache's two-token scheme (functions/redis_rotation): while the new
        token is set, the one the app holds stays valid, so running processes keep working until they roll out
        with the rewritten REDIS_URL."""
        stack = Stack.of(self)
        function = python_function(
            self,
            "Rotation",
            code=lambda_.Code.from_asset(str(ROTATION_DIR)),
            reason=ROTATION_REASON,
            timeout=Duration.minutes(15),
            environment={"REPLICATION_GROUP_ID": self.replication_group.ref},
            description="rotates the Redis AUTH token (ROTATE keeps the current token valid); never logs values",
        )
        assert function.role is not None
        group_arn = stack.format_arn(
            service="elasticache",
            resource="replicationgroup",
            resource_name=self.replication_group.ref,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["elasticache:ModifyReplicationGroup", "elasticache:DescribeReplicationGroups"],
                resources=[group_arn],
            )
        )
        function.add_to_role_policy(iam.PolicyStatement(actions=["secretsmanager:GetRandomPassword"], resources=["*"]))
        acknowledge(
            function,
            "IAM5[Resource::*]",
            "secretsmanager:GetRandomPassword acts on no resource (IAM supports only '*' for it)",
        )
        self.auth_secret.add_rotation_schedule(
            "RotationSchedule",
            rotation_lambda=function,
            automatically_after=Duration.days(days),
            rotate_immediately_on_update=False,
        )
        self.rotation_function = function
        # Secrets Manager may invoke it for this account's secrets only (confused deputy, checkov CKV_AWS_364).
        for child in function.node.find_all():
            if isinstance(child, lambda_.CfnPermission):
                child.source_account = stack.account

    @property
    def replication_group_id(self) -> str:
        return self.replication_group.ref

    @property
    def endpoint_address(self) -> str:
        return self.replication_group.attr_primary_end_point_address

    @property
    def endpoint_port(self) -> str:
        return self.replication_group.attr_primary_end_point_port

    def metric(self, metric_name: str, *, node: int = 1, **options: Any) -> cw.Metric:
        """A per-node metric (ElastiCache publishes Redis metrics per member cluster ``<group>-00N``)."""
        return cw.Metric(
            namespace="AWS/ElastiCache",
            metric_name=metric_name,
            dimensions_map={"CacheClusterId": Fn.join("-", [self.replication_group_id, f"{node:03d}"])},
            period=options.pop("period", Duration.minutes(5)),
            statistic=options.pop("statistic", "Average"),
            **options,
        )

    def _add_alarms(self, topic: sns.ITopic, prefix: str) -> list[cw.Alarm]:
        alarms = []
        for node in range(1, self.node_count + 1):
            for construct_id, metric_name, statistic, threshold, description in (
                ("EngineCpu", "EngineCPUUtilization", "Average", 80, "Redis engine CPU above 80 %"),
                ("Memory", "DatabaseMemoryUsagePercentage", "Average", 80, "Redis memory above 80 %"),
                ("Evictions", "Evictions", "Sum", 100, "Redis evicting keys: memory too small for the working set"),
            ):
                alarms.append(
                    add_alarm(
                        self,
                        f"{construct_id}Node{node}Alarm",
                        name=f"{prefix}-cache-{node:03d}-{metric_name}",
                        metric=self.metric(metric_name, node=node, statistic=statistic),
                        threshold=threshold,
                        comparison=GT,
                        topic=topic,
                        description=f"{description} (node {node:03d})",
                    )
                )
        return alarms
