"""GithubDeployRoles: the GitHub OIDC provider of one account and the roles its workflow runs may assume.

One deploy role per stage of the account (``<app>-<stage>-ci-deploy``), trusted by exactly one repository and one
GitHub environment, allowed only to assume that stage's CDK bootstrap roles (deploy, file and image publishing,
lookup): CloudFormation does the work with the bootstrap roles, as for a ``cdk deploy`` from a laptop. One diff
role (``<app>-ci-diff``) for pull requests, allowed only to assume the lookup roles (read-only, no KMS decrypt).
No long-lived keys, no ``*FullAccess`` policy (iam-deployer-overprivileged, ci-trust-too-broad).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, CfnOutput, Duration, Stack, aws_iam as iam
from constructs import Construct

from config.schema import GITHUB_OIDC_HOST, AppConfig

AUDIENCE = "sts.amazonaws.com"
# The CDK bootstrap roles a deploy uses (cdk bootstrap's template: cdk-<qualifier>-<kind>-role-<account>-<region>);
# the stages synthesize with CDK's default qualifier.
BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")


def bootstrap_role_arn(config: AppConfig, kind: str, partition: str = "aws") -> str:
    """The ARN of a CDK bootstrap role of the stage's account and region (``kind``: one of BOOTSTRAP_ROLES)."""
    assert config.ci is not None and config.account is not None
    name = f"cdk-{BOOTSTRAP_QUALIFIER}-{kind}-role-{config.account}-{config.region}"
    return f"arn:{partition}:iam::{config.account}:role/{name}"


def environment_subject(config: AppConfig) -> str:
    """The token's ``sub`` of a job of the stage's GitHub environment (GitHub's default subject claim format)."""
    assert config.ci is not None
    return f"repo:{config.ci.repository}:environment:{config.ci_environment}"


def pull_request_subject(repository: str) -> str:
    return f"repo:{repository}:pull_request"


def github_principal(provider_arn: str, subjects: Sequence[str]) -> iam.WebIdentityPrincipal:
    """Trust for tokens of the given exact subjects (StringEquals, never StringLike) and the STS audience."""
    return iam.WebIdentityPrincipal(
        provider_arn,
        conditions={
            "StringEquals": {
                f"{GITHUB_OIDC_HOST}:aud": AUDIENCE,
                f"{GITHUB_OIDC_HOST}:sub": subjects[0] if len(subjects) == 1 else list(subjects),
            }
        },
    )


class GithubDeployRoles(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, configs: Sequence[AppConfig]) -> None:
        super().__init__(scope, construct_id)
        ci = [c.ci for c in configs if c.ci is not None]
        existing = sorted({c.oidc_provider_arn for c in ci if c.oidc_provider_arn})
        if existing:
            self.provider_arn = existing[0]
        else:
            provider = iam.OidcProviderNative(
                self, "Provider", url=f"https://{GITHUB_OIDC_HOST}", client_ids=[AUDIENCE]
            )
            self.provider_arn = provider.oidc_provider_arn
        stack = Stack.of(self)
        self.deploy_roles: dict[str, iam.Role] = {}
        for config in configs:
            role = iam.Role(
                self,
                f"Deploy{config.stage.capitalize()}",
                role_name=config.ci_deploy_role_name,
                description=f"GitHub Actions deploys {config.app}-{config.stage} from {environment_subject(config)}",
                assumed_by=github_principal(self.provider_arn, [environment_subject(config)]),
                max_session_duration=Duration.hours(2),
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="AssumeTheStageBootstrapRoles",
                    actions=["sts:AssumeRole", "sts:TagSession"],
                    resources=[bootstrap_role_arn(config, kind, Aws.PARTITION) for kind in BOOTSTRAP_ROLES],
                )
            )
            self.deploy_roles[config.stage] = role
            CfnOutput(stack, f"DeployRoleArn{config.stage.capitalize()}", value=role.role_arn)
        app = configs[0].app
        self.diff_role = iam.Role(
            self,
            "Diff",
            role_name=f"{app}-ci-diff",
            description=f"GitHub Actions pull requests read what a deploy of {app} would change (lookup roles only)",
            assumed_by=github_principal(self.provider_arn, sorted({pull_request_subject(c.repository) for c in ci})),
            max_session_duration=Duration.hours(2),
        )
        self.diff_role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeTheLookupRoles",
                actions=["sts:AssumeRole", "sts:TagSession"],
                resources=sorted({bootstrap_role_arn(c, "lookup", Aws.PARTITION) for c in configs}),
            )
        )
        CfnOutput(stack, "DiffRoleArn", value=self.diff_role.role_arn)
