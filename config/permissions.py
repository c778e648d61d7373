"""The app's own AWS permissions (``permissions:`` of a service, or of the stage for its web service), checked
against the IAM service authorization data that policy_sentry ships (offline).

A permission is ``{actions: [service:Action, ...], resources: [ARN, ...]}``. Refused, each with its fix:
- an action that does not exist, or a wildcard over actions (``s3:*``, ``s3:Get*``);
- privilege escalation and secret reading: IAM writes, ``iam:PassRole``, ``sts:AssumeRole*``,
  ``secretsmanager:GetSecretValue``, ``ssm:GetParameter*`` (secrets reach the app as settings), ``kms:Decrypt`` on
  ``*``;
- ``"*"`` as a resource for an action that supports resource ARNs (the fix names the ARN format to use).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

ACTION = re.compile(r"^([a-z0-9-]+):([A-Za-z0-9]+)$")
# The app gets its secrets as settings ({secret: ...}); reading the stores directly bypasses that.
SECRET_READS = {
    "secretsmanager:getsecretvalue",
    "ssm:getparameter",
    "ssm:getparameters",
    "ssm:getparametersbypath",
    "ssm:getparameterhistory",
}
ESCALATION = {"iam:passrole", "sts:assumerole", "sts:assumerolewithwebidentity", "sts:assumerolewithsaml"}
IAM_WRITES = {"Write", "Permissions management", "Tagging"}


@cache
def action_rows(action: str) -> tuple[dict[str, Any], ...]:
    """policy_sentry's rows for one action (one per resource type; ``"*"`` where none applies); ``()`` if unknown."""
    from policy_sentry.querying.actions import get_action_data

    service, _, name = action.partition(":")
    data = get_action_data(service.lower(), name)
    return tuple(data.get(service.lower(), [])) if isinstance(data, dict) else ()


def canonical(action: str) -> str:
    """The action as the IAM reference spells it (``s3:GetObject``), else as written."""
    rows = action_rows(action)
    return str(rows[0]["action"]) if rows else action


def wildcard_only(action: str) -> bool:
    """Whether the action supports no resource-level permission (its only resource is ``*``)."""
    return all(str(row.get("resource_arn_format")) == "*" for row in action_rows(action))


def arn_formats(action: str) -> list[str]:
    """The resource ARN formats an action accepts (``arn:${Partition}:s3:::${BucketName}/${ObjectName}``)."""
    return sorted({str(row["resource_arn_format"]) for row in action_rows(action)} - {"*"})


def problems(actions: Sequence[str], resources: Sequence[str]) -> Iterator[str]:
    """``[id] …`` reasons why one permission is refused (nothing when it is fine)."""
    anywhere = "*" in resources
    for action in actions:
        match = ACTION.match(action)
        if match is None:
            yield (
                f"[iam-app-permissions] {action!r} is not one IAM action; write service:Action, e.g. "
                "'s3:GetObject' (no wildcards: name each action the app calls)"
            )
            continue
        rows = action_rows(action)
        if not rows:
            yield (
                f"[iam-app-permissions] {action!r} is not an action of the IAM reference; check its spelling "
                f"(service {match.group(1)!r})"
            )
            continue
        key = action.lower()
        level = str(rows[0].get("access_level"))
        if key in SECRET_READS:
            yield (
                f"[iam-app-permissions] {action}: reads secrets directly; declare the setting as "
                "{secret: ...} and the app receives it in its environment on every target"
            )
        elif key in ESCALATION or (match.group(1) == "iam" and level in IAM_WRITES):
            yield (
                f"[iam-app-permissions] {action}: lets the app change or take on IAM identities (privilege "
                "escalation); an app does not manage IAM — remove it"
            )
        elif key == "kms:decrypt" and anywhere:
            yield "[iam-app-permissions] kms:Decrypt on '*': name the key ARN(s) the app decrypts with"
        elif anywhere and not wildcard_only(action):
            formats = ", ".join(arn_formats(action)[:2])
            yield (
                f"[iam-app-permissions] {action} on '*': it supports resource ARNs; name them, e.g. {formats} "
                "('*' only for actions the IAM reference lists without a resource, such as cloudwatch:GetMetricData)"
            )
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            yield f"[iam-app-permissions] resource {resource!r}: write an ARN (arn:aws:...) or '*'"
