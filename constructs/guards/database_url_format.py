"""database-url-format: DATABASE_URL is composed by the deploy with a supported scheme, never by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_args

from aws_cdk import aws_rds as rds

from config.schema import AppConfig, UrlScheme
from constructs.guards.framework import Finding, Resource, Tree, compact, strings
from constructs.secure_parameter import RESOURCE_TYPE

HAND_MADE_URL = re.compile(r"\bpostgres(?:ql)?(?:\+\w+)?://")
SCHEMES = get_args(UrlScheme)
# Kinds that carry the database sign-in (user or password): composed from the app user's rotating secret only.
CREDENTIAL_KINDS = ("database_url", "database_password", "database_user")


def endpoints(tree: Tree, consumer: Resource) -> tuple[list[Any], list[Any]]:
    """Hosts and ports of the app's databases as ``consumer``'s stack renders them (GetAtt in the same stack, an
    import across stacks)."""
    databases = [db.node for db in tree.of_type("AWS::RDS::DBInstance", "AWS::RDS::DBCluster")]
    nodes = [node for node in databases if isinstance(node, rds.CfnDBInstance | rds.CfnDBCluster)]
    resolve = consumer.stack.resolve
    return [resolve(n.attr_endpoint_address) for n in nodes], [resolve(n.attr_endpoint_port) for n in nodes]


class DatabaseUrlFormat:
    """Compliant: no template string holds a postgres URL; database_url parameters use a supported scheme and the
    host and port of the stage's database endpoint (no hand-typed host); the sign-in parts come from the app
    user's secret, not the master user's."""

    id = "database-url-format"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for resource in tree.of_type(RESOURCE_TYPE):
            kind = str(resource.props.get("Kind"))
            if kind in CREDENTIAL_KINDS:
                app_secrets = [resource.stack.resolve(u.app_secret.secret_arn) for u in tree.database_users]
                if resource.props.get("SecretArn") not in app_secrets:
                    yield Finding(
                        self.id,
                        resource.path,
                        f"{kind} from SecretArn={compact(resource.props.get('SecretArn'))}",
                        "compose it from the app user's secret (Database.app_secret), never the master user's: the "
                        "app signs in as its own rotating user",
                    )
            if kind != "database_url":
                continue
            scheme = resource.props.get("Scheme")
            if scheme not in SCHEMES:
                yield Finding(self.id, resource.path, f"Scheme={scheme}", f"use one of {', '.join(SCHEMES)}")
            hosts, ports = endpoints(tree, resource)
            for field, real in (("Host", hosts), ("Port", ports)):
                if resource.props.get(field) not in real:
                    yield Finding(
                        self.id,
                        resource.path,
                        f"{field}={compact(resource.props.get(field))}, not the stage database's endpoint",
                        "compose it from the database (Host=db_instance_endpoint_address, "
                        "Port=db_instance_endpoint_port), as DATABASE_URL: {secret: database_url} does",
                    )
        for resource in tree.resources:
            for text in strings(resource.props):
                if HAND_MADE_URL.search(text):
                    yield Finding(
                        self.id,
                        resource.path,
                        "a hand-built postgres URL in the template",
                        "use DATABASE_URL: {secret: database_url}; the deploy composes and stores it",
                    )
                    break


RULE = DatabaseUrlFormat()
