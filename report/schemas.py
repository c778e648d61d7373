"""Create-only properties from the CloudFormation resource schemas that cfn-lint ships (offline, no account).

A change to a create-only property makes CloudFormation replace the resource: create the new one, move
references over, then delete the old one. The registry schema lists them as JSON pointers
(``/properties/DBName``, ``/properties/Tier/Name``); they are returned here as tuples of keys.
"""

from __future__ import annotations

from functools import cache
from typing import Any

SCHEMA_REGION = "us-east-1"  # every type this project emits exists there; create-only sets do not vary by region


def _schema(resource_type: str) -> dict[str, Any] | None:
    """The registry schema cfn-lint ships for ``resource_type`` (None when it has none)."""
    from cfnlint.schema import ResourceNotFoundError  # type: ignore[import-untyped]
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER  # type: ignore[import-untyped]

    try:
        schema: dict[str, Any] = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, resource_type).schema
    except ResourceNotFoundError:
        return None
    return schema


@cache
def create_only(resource_type: str) -> tuple[tuple[str, ...], ...]:
    """The create-only property paths of ``resource_type``; ``()`` for custom resources and unknown types."""
    if not resource_type.startswith("AWS::"):
        return ()  # custom resources are updated by their handler, never replaced by CloudFormation for a property
    paths = (_schema(resource_type) or {}).get("createOnlyProperties") or []
    return tuple(
        tuple(part for part in str(path).removeprefix("/properties/").split("/") if part)
        for path in paths
        if str(path).startswith("/properties/")
    )
