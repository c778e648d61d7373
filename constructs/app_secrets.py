"""The Parameter Store half of the settings map: one parameter per secret or ``{from: ...}`` setting, same
names for every target, rewritten when the credentials they come from rotate."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from aws_cdk import Stack, aws_iam as iam
from constructs import Construct

from config.kinds import store_of
from config.schema import AppConfig
from config.services import Service
from constructs.cache import Cache
from constructs.database import Database
from constructs.secure_parameter import SecureParameter, refresh_on_rotation


class AppSecrets(Construct):
    """Creates ``/<app>/<stage>/<NAME>`` for every setting ``config.parameter_settings`` names.

    Args:
        config: the stage; its ``settings`` map decides which parameters exist and how they are filled.
        database: source of the ``database_*`` kinds (the app user's secret, endpoint, port, database name).
        cache: source of the ``redis_*`` kinds (AUTH token secret, primary endpoint, port).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, database: Database, cache: Cache
    ) -> None:
        super().__init__(scope, construct_id)
        self.parameters: dict[str, SecureParameter] = {}
        self.kinds = config.parameter_settings
        db_fields = {
            "Scheme": config.database.url_scheme,
            "Host": database.instance.db_instance_endpoint_address,
            "Port": database.instance.db_instance_endpoint_port,
            "Database": config.database.database_name,
        }
        redis_fields = {"Host": cache.endpoint_address, "Port": cache.endpoint_port}
        for setting, kind in self.kinds.items():
            name = config.parameter_name(setting)
            if store_of(kind) == "database":
                parameter = SecureParameter(
                    self,
                    setting,
                    name=name,
                    kind=kind,
                    source_secret_arn=database.app_secret.secret_arn,
                    fields=db_fields if kind == "database_url" else _pick(db_fields, kind),
                )
                database.grant_read_credentials(parameter.handler)
                # The app user exists (and its secret names the instance) before anything is composed from it.
                parameter.resource.node.add_dependency(database.users.bootstrap)
            elif store_of(kind) == "cache":
                parameter = SecureParameter(
                    self,
                    setting,
                    name=name,
                    kind=kind,
                    source_secret_arn=cache.auth_secret.secret_arn,
                    fields=redis_fields,
                )
                cache.auth_secret.grant_read(parameter.handler)
            else:
                ref = config.secret_settings[setting]
                parameter = SecureParameter(self, setting, name=name, kind=kind, length=ref.length)
            self.parameters[setting] = parameter
        # A service with its own Redis database (redis_db) reads its redis_url settings from <NAME>_DB<n>.
        for key, (_setting, number) in config.redis_databases.items():
            parameter = SecureParameter(
                self,
                key,
                name=config.parameter_name(key),
                kind="redis_url",
                source_secret_arn=cache.auth_secret.secret_arn,
                fields={**redis_fields, "Database": str(number)},
            )
            cache.auth_secret.grant_read(parameter.handler)
            self.parameters[key] = parameter
            self.kinds = {**self.kinds, key: "redis_url"}
        self.config = config
        self.rotation_sources = {
            "database": database.app_secret.secret_arn if database.users.rotation_days else None,
            "cache": cache.auth_secret.secret_arn if cache.rotation_days else None,
        }
        for source, secret_arn in self.rotation_sources.items():
            followers = [p for s, p in self.parameters.items() if store_of(self.kinds[s]) == source]
            if secret_arn is not None:
                refresh_on_rotation(self, f"{source.capitalize()}Rotated", secret_arn=secret_arn, parameters=followers)

    def of(self, service: Service) -> dict[str, SecureParameter]:
        """``{setting: parameter}`` ``service`` reads (its own Redis database's for its redis_url settings)."""
        return {name: self.parameters[key] for name, key in zip(service.secrets, self.keys(service), strict=True)}

    def keys(self, service: Service) -> list[str]:
        """The parameters (by ``self.parameters`` key) ``service`` reads."""
        prefix = self.config.parameter_name("")
        return [self.config.parameter_of(service, name).removeprefix(prefix) for name in service.secrets]

    def revision(self, names: Iterable[str]) -> str:
        """A short fingerprint of how the parameters ``names`` are made (kind, source secret, endpoint, scheme ...:
        the deploy's properties, never a value). Consumers carry it (``SETTINGS_REVISION``, a pod annotation), so a
        deploy that changes how a value is made rolls them out through CloudFormation itself; a changed value
        (rotation, ``make secret``) rolls them out through ``SecretRollout``."""
        made = [self.parameters[name].properties for name in sorted(set(names))]
        if not made:
            return ""
        text = json.dumps(Stack.of(self).resolve(made), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def revision_environment(self, names: Iterable[str]) -> dict[str, str]:
        """``{"SETTINGS_REVISION": ...}`` for a process that reads ``names`` (nothing when it reads none)."""
        revision = self.revision(names)
        return {REVISION: revision} if revision else {}

    def grant_read(self, grantee: iam.IGrantable, names: Iterable[str]) -> None:
        """Let ``grantee`` read exactly the settings ``names`` (ssm:GetParameters + kms:Decrypt via the aws/ssm
        key): a service's principal reads the secrets that service names, nothing else."""
        for name in sorted(set(names)):
            self.parameters[name].grant_read(grantee)


REVISION = "SETTINGS_REVISION"
# The handler property each database part overrides from the endpoint (the rest come from the app user's secret).
_PART_FIELD = {"database_host": "Host", "database_port": "Port", "database_name": "Database"}


def _pick(fields: dict[str, str], kind: str) -> dict[str, str]:
    key = _PART_FIELD.get(kind)
    return {key: fields[key]} if key else {}
