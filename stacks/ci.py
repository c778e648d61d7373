"""CiStack ``<app>-ci``: deployed once per account (``make ci-bootstrap STAGE=...``), for every stage there, in the
region of the first of them by name (IAM is global: one stack per account, whichever stage bootstraps it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk

from config.schema import AppConfig
from constructs.github_deploy_roles import GithubDeployRoles


class CiStack(cdk.Stack):
    def __init__(self, scope: cdk.App, construct_id: str, *, configs: Sequence[AppConfig], **kwargs: Any) -> None:
        first = configs[0]
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=first.account, region=first.region),
            description=f"{first.app}: GitHub OIDC deploy roles for {', '.join(c.stage for c in configs)}",
            **kwargs,
        )
        self.roles = GithubDeployRoles(self, "Github", configs=configs)
        cdk.Tags.of(self).add("app", first.app)
