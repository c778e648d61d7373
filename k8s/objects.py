"""One helper shared by the charts: a plain ``ApiObject`` with its body (spec, data ...) as JSON patches."""

from __future__ import annotations

from typing import Any

import cdk8s
from constructs import Construct


def api_object(
    scope: Construct,
    construct_id: str,
    *,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **body: Any,
) -> cdk8s.ApiObject:
    """An object named ``name`` (cdk8s would otherwise hash the construct path into the name).

    ``body`` holds the top-level fields after ``metadata`` (``spec``, ``data`` ...); jsii's ``ApiObjectProps``
    only has api_version/kind/metadata, so they are added as JSON patches, which ``to_json()`` applies.
    """
    obj = cdk8s.ApiObject(
        scope,
        construct_id,
        api_version=api_version,
        kind=kind,
        metadata=cdk8s.ApiObjectMetadata(name=name, namespace=namespace, labels=labels, annotations=annotations),
    )
    for key, value in body.items():
        obj.add_json_patch(cdk8s.JsonPatch.add(f"/{key}", value))
    return obj
