"""iam-deployer-overprivileged: no broad managed policy, no ``Action: *``; CI roles only assume bootstrap roles."""

from __future__ import annotations

import re
from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.ci_trust_too_broad import github_statements
from constructs.guards.framework import Finding, Tree, actions_of, compact, resources_of, strings

BROAD_POLICY = re.compile(r"policy/(AdministratorAccess\b|PowerUserAccess\b|IAMFullAccess\b|\S*FullAccess\b)")
CI_ACTIONS = {"sts:AssumeRole", "sts:TagSession"}
# cdk-<qualifier>-<kind>-role-<account>-<region>: the roles of ``cdk bootstrap`` (constructs/github_deploy_roles.py).
BOOTSTRAP_ROLE = re.compile(
    r":role/cdk-[a-z0-9]+-(deploy|file-publishing|image-publishing|lookup)-role-\d{12}-[a-z]{2}(-[a-z]+)+-\d$"
)


class IamDeployerOverprivileged:
    """Compliant: no role, user or group has AdministratorAccess, PowerUserAccess or a ``*FullAccess`` managed
    policy, no policy allows ``Action: *``, and a role GitHub may assume has no managed policy and is only allowed
    sts:AssumeRole / sts:TagSession on CDK bootstrap roles (CloudFormation deploys with those)."""

    id = "iam-deployer-overprivileged"
    CI_FIX = (
        "a CI role may only sts:AssumeRole the CDK bootstrap roles; CloudFormation deploys with those "
        "(make ci-bootstrap)"
    )

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        roles = tree.of_type("AWS::IAM::Role")
        github = {r.stack.get_logical_id(r.node) for r in roles if any(True for _ in github_statements(tree, r))}
        for principal in tree.of_type("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            for arn in principal.props.get("managedPolicyArns") or []:
                text = "".join(strings(arn))
                match = BROAD_POLICY.search(text)
                if match:
                    yield Finding(
                        self.id,
                        principal.path,
                        f"managed policy {match[1]}",
                        "grant exactly the actions and resources needed; deploys go through the CDK bootstrap "
                        "roles (make ci-bootstrap for CI)",
                    )
                elif principal.type == "AWS::IAM::Role" and principal.stack.get_logical_id(principal.node) in github:
                    value = f"a GitHub-trusted role has {text or compact(arn)}"
                    yield Finding(self.id, principal.path, value, self.CI_FIX)
        policies = [(r, r.props.get("policies") or []) for r in roles] + [
            (p, [{"policyDocument": p.props.get("policyDocument")}])
            for p in tree.of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        ]
        for owner, documents in policies:
            attached = {ref.get("Ref") for ref in owner.props.get("roles") or [] if isinstance(ref, dict)}
            for_ci = owner.type == "AWS::IAM::Role" and owner.stack.get_logical_id(owner.node) in github
            for_ci = for_ci or bool(attached & github)
            for document in documents:
                for statement in (document.get("policyDocument") or {}).get("Statement", []):
                    if statement.get("Effect") != "Allow":
                        continue
                    actions = actions_of(statement)
                    if "*" in actions:
                        yield Finding(
                            self.id, owner.path, "Action: *", "list the actions the principal needs, never '*'"
                        )
                    elif for_ci and set(actions) - CI_ACTIONS:
                        extra = sorted(set(actions) - CI_ACTIONS)
                        yield Finding(
                            self.id, owner.path, f"a GitHub-trusted role allows {compact(extra)}", self.CI_FIX
                        )
                    elif for_ci:
                        others = [r for r in resources_of(statement) if not BOOTSTRAP_ROLE.search(r)]
                        if others:
                            value = f"a GitHub-trusted role may assume {compact(others)}"
                            yield Finding(self.id, owner.path, value, self.CI_FIX)


RULE = IamDeployerOverprivileged()
