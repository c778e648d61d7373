"""Acknowledge a scanner finding on one construct, always with the reason written next to it.

cdk-nag findings are acknowledged through CDK's validation API; checkov findings are skipped in the template
itself (``Metadata.checkov.skip`` of each resource, with the reason as its comment), so a reviewer running
checkov on the synthesized templates reads why. Where both scanners speak of the same decision, one call with
``checkov=`` writes the same reason to both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import Acknowledgment, CfnResource, IAspect, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str, *, checkov: Sequence[str] = ()) -> None:
    """Acknowledge AwsSolutions ``rule`` (e.g. ``"RDS11"``) on ``construct`` and its children only; with
    ``checkov``, skip those checkov checks on the same resources for the same reason."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason))
    if checkov:
        skip_checks(construct, checkov, reason)


def skip_checks(construct: IConstruct, checks: Sequence[str], reason: str) -> None:
    """Skip checkov ``checks`` (``CKV_AWS_158`` …) on every CloudFormation resource of ``construct``."""
    resources = [construct] if isinstance(construct, CfnResource) else []
    resources += [child for child in construct.node.find_all() if isinstance(child, CfnResource)]
    for resource in dict.fromkeys(resources):
        existing = resource.get_metadata("checkov") or {}
        skips = [entry for entry in existing.get("skip", []) if entry.get("id") not in checks]
        skips += [{"id": check, "comment": reason} for check in checks]
        resource.add_metadata("checkov", {"skip": sorted(skips, key=lambda entry: str(entry["id"]))})


def nag_resource(stack: Stack, value: str) -> str:
    """``value`` (an ARN that may hold tokens) as cdk-nag prints it in a granular finding id: intrinsics become
    ``<AWS::Partition>`` / ``<Logical.Attr>``, whatever context flags turned into literals."""
    return _render(stack.resolve(value))


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return str(value)


# Decisions a scanner flags, each stated once and written to every resource it covers (cdk-nag and checkov).
DEPLOY_HELPER = (
    "deploy-time helper CloudFormation invokes synchronously: a failure fails the deployment (no DLQ), it runs a few "
    "times per deploy (no reserved concurrency), calls only AWS APIs (no VPC) and its environment holds no secret"
)
DEPLOY_HELPER_CHECKS = ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173")
LOGS_AWS_KEY = (
    "CloudWatch Logs encrypts at rest with an AWS-owned key; who reads the logs is decided by IAM, "
    "a customer-managed key would add key policy and cost without a second boundary"
)
SECRETS_AWS_KEY = (
    "encrypted with the AWS-managed key aws/secretsmanager; readers are bounded by IAM grants on this secret, "
    "a customer-managed key would add key policy and cost without a second boundary"
)
NO_DOMAIN = (
    "this stage sets no domain, so there is no certificate: the load balancer serves plain HTTP on 80; "
    "set domain (with its ACM certificate) to serve HTTPS with a redirect from 80"
)

# CDK's own singletons, created inside aws-cdk-lib (no construct of ours owns them): RDS log retention, the
# S3 auto-delete / default-SG / CfnUtils custom-resource providers.
CDK_HELPER_PATH = re.compile(r"/(LogRetention[0-9a-f]{32}|[A-Za-z0-9:]*CustomResourceProvider)/")
LOG_RETENTION_WRITES = (
    "CDK's LogRetention helper sets the retention of log groups RDS creates at run time, "
    "so their names are not known to scope logs:PutRetentionPolicy"
)


@jsii.implements(IAspect)
class CdkHelperFindings:
    """Writes the checkov skips of CDK's own deploy-time helpers (registered once per app by ``build_stacks``)."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or not CDK_HELPER_PATH.search(f"{node.node.path}/"):
            return
        if node.cfn_resource_type == "AWS::Lambda::Function":
            skip_checks(node, DEPLOY_HELPER_CHECKS, DEPLOY_HELPER)
        elif node.cfn_resource_type == "AWS::IAM::Policy" and "LogRetention" in node.node.path:
            skip_checks(node, ["CKV_AWS_111"], LOG_RETENTION_WRITES)
