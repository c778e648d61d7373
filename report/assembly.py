"""Loading of a CDK cloud assembly (``cdk.out``) and of rendered Kubernetes manifests.

The cloud assembly ``manifest.json`` lists artifacts; ``aws:cloudformation:stack`` artifacts point at
their template, and ``cdk:cloud-assembly`` artifacts point at nested assemblies (one per CDK Stage),
which are followed recursively.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from report.intrinsics import as_list

Template = Mapping[str, Any]
K8sObject = Mapping[str, Any]


class AssemblyError(Exception):
    """The cloud assembly is missing or cannot be read."""


@dataclass(frozen=True)
class Stack:
    """One synthesized stack: display name (``Stage/Stack``), template and target environment."""

    name: str
    template: Template = field(repr=False, compare=False)
    account: str = "unknown-account"
    region: str = "unknown-region"
    stack_name: str = ""

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        """The template's ``Resources`` section (empty when absent)."""
        resources = self.template.get("Resources")
        return resources if isinstance(resources, dict) else {}

    def of_type(self, *types: str) -> list[tuple[str, Mapping[str, Any]]]:
        """``(logical id, properties)`` of every resource of one of ``types``, sorted by logical id."""
        return [
            (logical_id, props(resource))
            for logical_id, resource in sorted(self.resources.items())
            if resource.get("Type") in types
        ]


def props(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """A resource's ``Properties`` (empty when absent)."""
    properties = resource.get("Properties")
    return properties if isinstance(properties, dict) else {}


def eb_options(properties: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """Elastic Beanstalk ``OptionSettings`` as ``{(namespace, option): value}``."""
    return {
        (str(option.get("Namespace")), str(option.get("OptionName"))): option.get("Value")
        for option in as_list(properties.get("OptionSettings"))
        if isinstance(option, dict)
    }


def k8s_name(obj: K8sObject) -> str:
    """``namespace/name`` of a Kubernetes object (just ``name`` without a namespace)."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))


def parse_environment(environment: str) -> tuple[str, str]:
    """Split ``aws://ACCOUNT/REGION`` into ``(account, region)``."""
    rest = environment.removeprefix("aws://")
    account, _, region = rest.partition("/")
    return account or "unknown-account", region or "unknown-region"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AssemblyError(f"cannot read {path}: {error}") from error


def load_assembly(root: Path) -> list[Stack]:
    """Load every stack of the cloud assembly at ``root`` (including nested stage assemblies), sorted by name."""
    if not (root / "manifest.json").is_file():
        raise AssemblyError(f"no cloud assembly at {root} — run 'make synth' first")
    stacks: list[Stack] = []
    _walk(root, stacks, {root.resolve()})
    return sorted(stacks, key=lambda stack: stack.name)


def _walk(directory: Path, stacks: list[Stack], seen: set[Path]) -> None:
    manifest = _read_json(directory / "manifest.json")
    artifacts = manifest.get("artifacts", {}) if isinstance(manifest, dict) else {}
    for artifact_id, artifact in sorted(artifacts.items()):
        properties = artifact.get("properties", {})
        if artifact.get("type") == "aws:cloudformation:stack":
            account, region = parse_environment(str(artifact.get("environment", "")))
            stacks.append(
                Stack(
                    name=str(artifact.get("displayName") or artifact_id),
                    template=_read_json(directory / properties.get("templateFile", f"{artifact_id}.template.json")),
                    account=account,
                    region=region,
                    stack_name=str(properties.get("stackName") or artifact_id),
                )
            )
        elif artifact.get("type") == "cdk:cloud-assembly" and "directoryName" in properties:
            nested = (directory / properties["directoryName"]).resolve()
            if nested not in seen and (nested / "manifest.json").is_file():
                seen.add(nested)
                _walk(nested, stacks, seen)


def load_k8s(directory: Path) -> list[dict[str, Any]]:
    """Load all objects from ``*.yaml`` / ``*.yml`` files (multi-document; ``List`` kinds are expanded)."""
    objects: list[dict[str, Any]] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as error:
            raise AssemblyError(f"cannot read {path}: {error}") from error
        for document in documents:
            is_list = isinstance(document, dict) and document.get("kind") == "List"
            items = (document.get("items") or []) if is_list else [document]
            objects.extend(item for item in items if isinstance(item, dict) and "kind" in item)
    return objects
