"""Stateful resources, their retention policies and logical-id changes compared to a base assembly.

CloudFormation identifies resources by logical id: a stateful resource whose logical id disappears
(e.g. after a construct was moved or renamed) is deleted or replaced, losing its data unless retained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from report.assembly import Stack
from report.intrinsics import fmt

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
ADDED = "added"
UNCHANGED = "unchanged"
REMOVED = "would be replaced/removed"


@dataclass(frozen=True)
class StatefulResource:
    """A resource holding data, its retention policies and (with a base) its logical-id change."""

    stack: str
    logical_id: str
    type: str
    deletion_policy: str
    update_replace_policy: str
    change: str = ""

    @property
    def at_risk(self) -> bool:
        """Whether the base comparison says this resource would be replaced or removed."""
        return self.change not in ("", ADDED, UNCHANGED)


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
        )
        for stack in stacks
        for logical_id, resource in stack.resources.items()
        if is_stateful(str(resource.get("Type")))
    }


def extract_stateful(stacks: Sequence[Stack], base: Sequence[Stack] | None = None) -> list[StatefulResource]:
    """Stateful resources with retention policies; with ``base``, which logical ids were added or removed.

    Resources are matched by stack display name and logical id.
    """
    current = _stateful(stacks)
    if base is None:
        return [current[key] for key in sorted(current)]
    previous = _stateful(base)
    result = []
    for key in sorted(current.keys() | previous.keys()):
        if key not in previous:
            result.append(replace(current[key], change=ADDED))
        elif key not in current:
            result.append(replace(previous[key], change=REMOVED))
        elif current[key].type != previous[key].type:
            result.append(replace(current[key], change=f"type changed from {previous[key].type}: {REMOVED}"))
        else:
            result.append(replace(current[key], change=UNCHANGED))
    return result
