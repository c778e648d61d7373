"""bucket-public: no bucket of the app can be public, and the app's own buckets refuse plain HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from config.schema import AppConfig
from constructs.app_resources import AppResources
from constructs.guards.framework import Finding, Resource, Tree, logical_ref

BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def is_anyone(principal: Any) -> bool:
    """``"*"`` or ``{"AWS": "*"}`` (or a list holding ``"*"``): every principal on the internet."""
    if principal == "*":
        return True
    if isinstance(principal, dict):
        values = principal.get("AWS")
        return values == "*" or (isinstance(values, list) and "*" in values)
    return False


def denies_plain_http(statement: dict[str, Any]) -> bool:
    condition = json.dumps(statement.get("Condition") or {})
    return statement.get("Effect") == "Deny" and "aws:SecureTransport" in condition and "false" in condition


def in_app_resources(resource: Resource) -> bool:
    return any(isinstance(scope, AppResources) for scope in resource.node.node.scopes)


class BucketPublic:
    """Compliant: every ``AWS::S3::Bucket`` of the app sets all four public-access blocks true; no bucket policy
    allows ``Principal: *`` (an Allow to everyone); and every bucket of the app resources stack has a policy that
    denies requests without TLS (``aws:SecureTransport`` false, ``enforce_ssl``)."""

    id = "bucket-public"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        policies: dict[str, list[dict[str, Any]]] = {}
        for policy in tree.of_type("AWS::S3::BucketPolicy"):
            statements = policy.get("policyDocument", "Statement", default=[]) or []
            key = f"{policy.stack.node.path}:{json.dumps(policy.props.get('bucket'), sort_keys=True)}"
            policies.setdefault(key, []).extend(statements)
            for statement in statements:
                if statement.get("Effect") == "Allow" and is_anyone(statement.get("Principal")):
                    yield Finding(
                        self.id,
                        policy.path,
                        f"allows {statement.get('Action')} to Principal * (anyone)",
                        "grant the services that need it through services.<name>.uses; never to '*'",
                    )
        for bucket in tree.of_type("AWS::S3::Bucket"):
            block = bucket.get("publicAccessBlockConfiguration") or {}
            open_ = [key for key in BLOCKS if block.get(key) is not True]
            if open_:
                yield Finding(
                    self.id,
                    bucket.path,
                    f"public access not blocked: {', '.join(open_)}",
                    "set block_public_access=s3.BlockPublicAccess.BLOCK_ALL",
                )
            if in_app_resources(bucket):
                key = f"{bucket.stack.node.path}:{json.dumps(logical_ref(bucket), sort_keys=True)}"
                if not any(denies_plain_http(s) and is_anyone(s.get("Principal")) for s in policies.get(key, [])):
                    yield Finding(
                        self.id,
                        bucket.path,
                        "no bucket policy denies requests without TLS",
                        "create it with enforce_ssl=True (Deny when aws:SecureTransport is false)",
                    )


RULE = BucketPublic()
