"""ci-trust-too-broad: a role trusted by GitHub's OIDC provider names exactly one repository and subject."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from config.schema import GITHUB_OIDC_HOST, AppConfig
from constructs.guards.framework import Finding, Resource, Tree, compact, strings

SUB, AUD = f"{GITHUB_OIDC_HOST}:sub", f"{GITHUB_OIDC_HOST}:aud"


def github_statements(tree: Tree, role: Resource) -> Iterator[dict[str, Any]]:
    """The role's trust statements whose federated principal is GitHub's OIDC provider (by ARN, or a provider
    resource of the app whose URL is GitHub's)."""
    providers = [
        r.stack.get_logical_id(r.node)
        for r in tree.of_type("AWS::IAM::OIDCProvider")
        if GITHUB_OIDC_HOST in "".join(strings(r.props.get("url")))
    ]
    for statement in role.get("assumeRolePolicyDocument", "Statement", default=[]) or []:
        federated = json.dumps((statement.get("Principal") or {}).get("Federated"))
        if GITHUB_OIDC_HOST in federated or any(f'"{logical_id}"' in federated for logical_id in providers):
            yield statement


class CiTrustTooBroad:
    """Compliant: every GitHub-trusted role's trust has StringEquals on ``:aud`` = sts.amazonaws.com and on
    ``:sub`` with exact subjects (no StringLike, no wildcard), so one repository's one environment can assume it."""

    id = "ci-trust-too-broad"
    FIX = (
        'trust StringEquals {"token.actions.githubusercontent.com:sub": "repo:<owner>/<name>:environment:<env>", '
        '"...:aud": "sts.amazonaws.com"} (ci: in the stage file builds exactly that)'
    )

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for role in tree.of_type("AWS::IAM::Role"):
            for statement in github_statements(tree, role):
                if statement.get("Effect") != "Allow":
                    continue
                conditions = statement.get("Condition") or {}
                equals = conditions.get("StringEquals") or {}
                subjects = equals.get(SUB)
                subjects = [subjects] if isinstance(subjects, str) else subjects
                loose = {op: c for op, c in conditions.items() if op != "StringEquals" and SUB in (c or {})}
                if loose:
                    yield Finding(self.id, role.path, f"{SUB} under {', '.join(loose)}", self.FIX)
                elif not subjects:
                    yield Finding(self.id, role.path, f"no {SUB} condition (any repository may assume it)", self.FIX)
                elif any(not isinstance(s, str) or "*" in s or "?" in s for s in subjects):
                    yield Finding(self.id, role.path, f"{SUB} = {compact(subjects)}", self.FIX)
                if equals.get(AUD) != "sts.amazonaws.com":
                    yield Finding(self.id, role.path, f"{AUD} = {compact(equals.get(AUD))}", self.FIX)


RULE = CiTrustTooBroad()
