"""Stateful resources and their retention policies: what holds data, and what a delete or replacement keeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from report.assembly import Stack
from report.intrinsics import fmt
from report.resolve import construct_path

STATEFUL_TYPES = (
    "AWS::RDS::DBInstance",
    "AWS::RDS::DBCluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::SecretsManager::Secret",
    "AWS::SSM::Parameter",
    "AWS::S3::Bucket",
    "AWS::Logs::LogGroup",
    "AWS::KMS::Key",
)


@dataclass(frozen=True)
class StatefulResource:
    """A resource holding data and its retention policies."""

    stack: str
    logical_id: str
    type: str
    deletion_policy: str
    update_replace_policy: str
    name: str = ""


def is_stateful(resource_type: str) -> bool:
    """Whether deleting or replacing a resource of this type loses data."""
    custom_secure = resource_type.startswith("Custom::") and "SecureParameter" in resource_type
    return resource_type in STATEFUL_TYPES or custom_secure


def _stateful(stacks: Sequence[Stack]) -> dict[tuple[str, str], StatefulResource]:
    return {
        (stack.name, logical_id): StatefulResource(
            stack=stack.name,
            logical_id=logical_id,
            type=str(resource.get("Type")),
            deletion_policy=fmt(resource.get("DeletionPolicy", "")),
            update_replace_policy=fmt(resource.get("UpdateReplacePolicy", "")),
            name=construct_path(stack, logical_id),
        )
        for stack in stacks
        for logical_id, resource in stack.resources.items()
        if is_stateful(str(resource.get("Type")))
    }


def extract_stateful(stacks: Sequence[Stack]) -> list[StatefulResource]:
    """Stateful resources with their retention policies (what a change would do to them: :mod:`report.changes`)."""
    current = _stateful(stacks)
    return [current[key] for key in sorted(current)]
