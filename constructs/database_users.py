"""The database users of a stage: the app's own user next to the master user, and the rotation of both.

Why two users that alternate: the app must never hold a password the server no longer accepts. AWS's hosted
*multi-user* rotation keeps two logins, ``<app_username>`` and ``<app_username>_clone``, and at each rotation
changes the password of the one **not** in use, then points the secret (AWSCURRENT) at it. The login the app
holds keeps working until the next rotation, one full ``rotation_days`` later, while the composed settings are
rewritten from the new AWSCURRENT (``refresh_on_rotation``) and the services roll out with them (minutes). A
single-user rotation would change the password in place and reject every running process until it restarted.

The master user (admin, this bootstrap, the app user's rotation) rotates with the hosted single-user scheme:
no app process holds it.

``Custom::DatabaseUser`` creates both app logins before the first rotation: the clone is a member of the user
and its sessions ``SET ROLE`` to it, so tables created by either login are owned by ``<app_username>``.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    CustomResource,
    DockerImage,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
    aws_ec2 as ec2,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_rds as rds,
    aws_secretsmanager as secretsmanager,
)
from constructs import Construct

from config.schema import DatabaseConfig
from constructs.nag import SECRETS_AWS_KEY, acknowledge, skip_checks
from constructs.python_function import python_function
from constructs.retention import log_group

HANDLER_DIR = Path(__file__).resolve().parents[1] / "functions" / "database_users"
# pg8000 and what it imports, pinned in requirements.txt: pure Python, copied next to the handler at synth.
DRIVER_PACKAGES = ("pg8000", "scramp", "asn1crypto", "dateutil", "six")
# The hosted rotation functions and the bootstrap build connection strings from these: no quoting needed.
EXCLUDE_CHARACTERS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\=,^"
BOOTSTRAP_REASON = (
    "deploy-time helper: CloudFormation invokes it synchronously (a failure fails the deployment), a few times "
    "per deploy (no reserved concurrency); in the VPC to reach the database; its environment holds no secret"
)


class DatabaseUsers(Construct):
    """The app user's secret (JSON: username, password, host, port, dbname, masterarn), its bootstrap and the
    rotation schedules of the app and master secrets.

    Args:
        instance / master_secret / database_security_group: the stage database and its master credentials.
        vpc: the bootstrap and the rotation functions run in its app subnets (they reach Secrets Manager and S3
            through the endpoints or the NAT gateways, and the database SG-to-SG).
        config: ``app_username`` and ``rotation_days`` (``None``: no rotation; the users still exist).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        instance: rds.DatabaseInstance,
        master_secret: secretsmanager.Secret,
        database_security_group: ec2.ISecurityGroup,
        vpc: ec2.IVpc,
        config: DatabaseConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        # The app subnets: they reach Secrets Manager and S3 through the endpoints or NAT (the stage guarantees one,
        # private-egress-for-pulls); the isolated data subnets have no route out at all.
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # Like the master secret: 64 characters (rds.DatabaseSecret has no length), ``masterarn`` for the rotation.
        self.app_secret = secretsmanager.Secret(
            self,
            "AppCredentials",
            description="PostgreSQL app user (alternates with <user>_clone on rotation)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=Stack.of(self).to_json_string(
                    # No dbname: changing the template regenerates the password, which must only change by
                    # rotation (the attachment adds host, port and engine; roles are cluster-wide).
                    {"username": config.app_username, "masterarn": master_secret.secret_arn}
                ),
                generate_string_key="password",
                password_length=64,
                exclude_characters=EXCLUDE_CHARACTERS,
            ),
        )
        self.app_secret_attached = self.app_secret.attach(instance)  # the instance attaches the master secret itself

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="database user bootstrap and credential rotation: PostgreSQL and Secrets Manager only",
        )
        # Secrets Manager (its interface endpoint or through NAT) and the bootstrap's answer to CloudFormation, a PUT
        # to a pre-signed S3 URL: S3's addresses are a managed prefix list whose id synth cannot know offline.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS: Secrets Manager, and the CloudFormation response (S3)"
        )
        self.security_group.connections.allow_to(
            ec2.Connections(security_groups=[database_security_group]),
            ec2.Port.tcp(5432),
            "bootstrap and rotation sign in to PostgreSQL",
        )

        handler_logs = log_group(self, "BootstrapLogs", days=30)
        role = iam.Role(
            self,
            "BootstrapRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="creates the app's database users",
        )
        handler_logs.grant_write(role)
        role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
        )
        acknowledge(
            role,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",
            "AWS's policy for the network interfaces a function in a VPC needs (ec2 network interface actions)",
        )
        master_secret.grant_read(role)
        self.app_secret.grant_read(role)
        function = python_function(
            self,
            "Bootstrap",
            code=lambda_.Code.from_asset(
                str(HANDLER_DIR),
                exclude=["__pycache__", "*.pyc"],
                asset_hash_type=AssetHashType.OUTPUT,  # a new driver version is a new asset
                bundling=BundlingOptions(image=DockerImage.from_registry("unused:local-bundling"), local=WithDriver()),  # type: ignore[arg-type]
            ),
            timeout=Duration.minutes(2),
            reason=BOOTSTRAP_REASON,
            role=role,
            logs_=handler_logs,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            description="Custom::DatabaseUser: creates the app's two database logins; never returns values",
        )
        self.bootstrap = CustomResource(
            self,
            "Resource",
            service_token=function.function_arn,
            resource_type="Custom::DatabaseUser",
            properties={
                "MasterSecretArn": master_secret.secret_arn,
                "UserSecretArn": self.app_secret.secret_arn,
                "Host": instance.db_instance_endpoint_address,
                "Port": instance.db_instance_endpoint_port,
                "Database": config.database_name,
            },
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bootstrap.node.add_dependency(instance, self.app_secret_attached, role)

        self.rotation_days = config.rotation_days
        if config.rotation_days is None:
            reason = "database.rotation_days is null in this stage: the credentials rotate by hand only"
            acknowledge(self.app_secret, "SMG4", reason)
            acknowledge(master_secret, "SMG4", reason)
        else:
            every = Duration.days(config.rotation_days)
            for secret, hosted, construct in (
                (
                    self.app_secret,
                    secretsmanager.HostedRotation.postgre_sql_multi_user(
                        master_secret=master_secret,
                        vpc=vpc,
                        vpc_subnets=subnets,
                        security_groups=[self.security_group],
                        exclude_characters=EXCLUDE_CHARACTERS,
                    ),
                    "AppRotation",
                ),
                (
                    master_secret,
                    secretsmanager.HostedRotation.postgre_sql_single_user(
                        vpc=vpc,
                        vpc_subnets=subnets,
                        security_groups=[self.security_group],
                        exclude_characters=EXCLUDE_CHARACTERS,
                    ),
                    "MasterRotation",
                ),
            ):
                schedule = secretsmanager.RotationSchedule(
                    self,
                    construct,
                    secret=secret,
                    hosted_rotation=hosted,
                    automatically_after=every,
                    # The first rotation waits for the schedule: the deploy that creates the users already
                    # composed every setting from the current value.
                    rotate_immediately_on_update=False,
                )
                schedule.node.add_dependency(self.bootstrap)
                if instance.secret is not None:  # the master's host and port, which the rotation reads
                    schedule.node.add_dependency(instance.secret)
        skip_checks(self.app_secret, ["CKV_AWS_149"], SECRETS_AWS_KEY)


@jsii.implements(ILocalBundling)
class WithDriver:
    """Local bundling (no Docker, offline): the handler plus the pinned PostgreSQL driver from this environment.
    (jsii calls ``try_bundle(output_dir, options)`` positionally, not with the keywords its stub declares.)"""

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        out = Path(output_dir)
        shutil.copy2(HANDLER_DIR / "index.py", out / "index.py")
        for package in DRIVER_PACKAGES:
            spec = importlib.util.find_spec(package)
            if spec is None or spec.origin is None:
                raise RuntimeError(f"[config] {package} is not installed (the user bootstrap's driver); run make setup")
            source = Path(spec.origin)
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            if source.name == "__init__.py":
                shutil.copytree(source.parent, out / package, ignore=ignore)
            else:
                shutil.copy2(source, out / source.name)
        return True
