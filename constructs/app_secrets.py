"""The secret half of the settings map: one SecureString parameter per secret setting, same names for every target."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import aws_iam as iam
from constructs import Construct

from config.schema import AppConfig
from constructs.cache import Cache
from constructs.database import Database
from constructs.secure_parameter import SecureParameter


class AppSecrets(Construct):
    """Creates ``/<app>/<stage>/<NAME>`` for every ``{secret: ...}`` setting of the stage.

    Args:
        config: the stage; its ``settings`` map decides which parameters exist and how they are filled.
        database: source of ``database_url`` settings (master secret, endpoint, port, database name).
        cache: source of ``redis_url`` settings (AUTH token secret, primary endpoint, port).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, database: Database, cache: Cache
    ) -> None:
        super().__init__(scope, construct_id)
        self.parameters: dict[str, SecureParameter] = {}
        for setting, ref in config.secret_settings.items():
            name = config.parameter_name(setting)
            if ref.secret == "generated":
                parameter = SecureParameter(self, setting, name=name, kind="generated", length=ref.length)
            elif ref.secret == "database_url":
                parameter = SecureParameter(
                    self,
                    setting,
                    name=name,
                    kind="database_url",
                    source_secret_arn=database.secret_arn,
                    url_fields={
                        "Scheme": config.database.url_scheme,
                        "Host": database.instance.db_instance_endpoint_address,
                        "Port": database.instance.db_instance_endpoint_port,
                        "Database": config.database.database_name,
                    },
                )
                database.grant_read_credentials(parameter.handler)
            else:
                parameter = SecureParameter(
                    self,
                    setting,
                    name=name,
                    kind="redis_url",
                    source_secret_arn=cache.auth_secret.secret_arn,
                    url_fields={"Host": cache.endpoint_address, "Port": cache.endpoint_port},
                )
                cache.auth_secret.grant_read(parameter.handler)
            self.parameters[setting] = parameter

    def grant_read(self, grantee: iam.IGrantable, names: Iterable[str]) -> None:
        """Let ``grantee`` read exactly the secret settings ``names`` (ssm:GetParameters + kms:Decrypt via the
        aws/ssm key): a service's principal reads the secrets that service names, nothing else."""
        for name in sorted(set(names)):
            self.parameters[name].grant_read(grantee)
