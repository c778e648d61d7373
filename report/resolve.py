"""Cross-stack resolution of references: ``Ref``, ``Fn::GetAtt`` and ``Fn::ImportValue``.

A :class:`Resolver` indexes every stack's resources and exported outputs so that extraction code can
turn a template value into the resource it points at, a readable name, or a stack-qualified string
that can be compared across templates (used to match IAM ``Resource`` patterns against secrets).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from report.assembly import Stack, props
from report.intrinsics import fmt, getatt_name, intrinsic, sub_string

MAX_DEPTH = 8


@dataclass(frozen=True)
class Resource:
    """A resource located in a stack."""

    stack: Stack
    logical_id: str

    @property
    def definition(self) -> Mapping[str, Any]:
        """The raw resource definition from the template."""
        return self.stack.resources[self.logical_id]

    @property
    def type(self) -> str:
        """The CloudFormation resource type."""
        return str(self.definition.get("Type", ""))

    @property
    def key(self) -> str:
        """``Stack/LogicalId``: unique across the assembly."""
        return f"{self.stack.name}/{self.logical_id}"


def partition(region: str) -> str:
    """The AWS partition a region belongs to."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


class Resolver:
    """Resolves template values against all stacks of one cloud assembly."""

    def __init__(self, stacks: Sequence[Stack]) -> None:
        self.stacks = sorted(stacks, key=lambda stack: stack.name)
        self.exports: dict[str, tuple[Stack, Any]] = {}
        for stack in self.stacks:
            outputs = stack.template.get("Outputs")
            for output in (outputs if isinstance(outputs, dict) else {}).values():
                export = output.get("Export") if isinstance(output, dict) else None
                if isinstance(export, dict) and "Name" in export:
                    self.exports[self.qualified(export["Name"], stack)] = (stack, output.get("Value"))
        self.sg_labels = self._label_security_groups()

    def _label_security_groups(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for stack in self.stacks:
            for logical_id, properties in stack.of_type("AWS::EC2::SecurityGroup"):
                description = properties.get("GroupDescription")
                key = f"{stack.name}/{logical_id}"
                labels[key] = description if isinstance(description, str) and description else key
        counts = Counter(labels.values())
        return {key: label if counts[label] == 1 else f"{label} ({key})" for key, label in labels.items()}

    def exported(self, name: Any, stack: Stack) -> tuple[Stack, Any] | None:
        """``(exporting stack, exported value)`` for an ``Fn::ImportValue`` argument, if exported here."""
        return self.exports.get(self.qualified(name, stack))

    def target(self, value: Any, stack: Stack, depth: int = 0) -> Resource | None:
        """The resource a ``Ref`` / ``Fn::GetAtt`` / resolvable ``Fn::ImportValue`` points at."""
        fn = intrinsic(value)
        if fn is None or depth > MAX_DEPTH:
            return None
        name, arg = fn
        if name == "Ref":
            logical_id = str(arg)
        elif name == "Fn::GetAtt":
            logical_id = getatt_name(arg).split(".", 1)[0]
        elif name == "Fn::ImportValue":
            found = self.exported(arg, stack)
            return self.target(found[1], found[0], depth + 1) if found else None
        else:
            return None
        return Resource(stack, logical_id) if logical_id in stack.resources else None

    def inline_imports(self, value: Any, stack: Stack, depth: int = 0, owner: str = "") -> Any:
        """``value`` with every resolvable ``Fn::ImportValue`` replaced by the exported value.

        References inside an exported value are prefixed with the exporting stack (``Ref: Stack/X``).
        """
        fn = intrinsic(value)
        if fn is not None:
            name, arg = fn
            if name == "Fn::ImportValue" and depth <= MAX_DEPTH:
                found = self.exported(arg, stack)
                if found is not None:
                    return self.inline_imports(found[1], found[0], depth + 1, found[0].name)
            if owner and name == "Ref" and not fmt(arg).startswith("AWS::"):
                return {"Ref": f"{owner}/{fmt(arg)}"}
            if owner and name == "Fn::GetAtt":
                return {"Fn::GetAtt": f"{owner}/{getatt_name(arg)}"}
        if isinstance(value, dict):
            return {key: self.inline_imports(item, stack, depth, owner) for key, item in value.items()}
        if isinstance(value, list):
            return [self.inline_imports(item, stack, depth, owner) for item in value]
        return value

    def display(self, value: Any, stack: Stack) -> str:
        """Readable rendering of ``value`` with cross-stack imports resolved to what they export."""
        return fmt(self.inline_imports(value, stack))

    def name(self, properties: Mapping[str, Any], key: str, default: str, stack: Stack) -> str:
        """The rendered ``properties[key]`` (e.g. ``Family``, ``AlarmName``), or ``default`` when unset."""
        return self.display(properties[key], stack) if key in properties else default

    def named(self, name: str, accept: Callable[[str], bool]) -> Resource | None:
        """The resource with an accepted type whose literal ``Name`` property is ``name`` (leading ``/`` ignored)."""
        for stack in self.stacks:
            for logical_id, resource in sorted(stack.resources.items()):
                found = str(props(resource).get("Name", "")).lstrip("/") == name.lstrip("/")
                if found and accept(str(resource.get("Type"))):
                    return Resource(stack, logical_id)
        return None

    def pseudo(self, name: str, stack: Stack) -> str:
        """The concrete value of a pseudo parameter when known for ``stack``, else ``${AWS::Name}``."""
        known = {
            "AWS::Partition": partition(stack.region),
            "AWS::URLSuffix": "amazonaws.com.cn" if stack.region.startswith("cn-") else "amazonaws.com",
            "AWS::Region": "" if stack.region.startswith("unknown-") else stack.region,
            "AWS::AccountId": "" if stack.account.startswith("unknown-") else stack.account,
            "AWS::StackName": stack.stack_name,
        }
        return known.get(name) or "${" + name + "}"

    def qualified(self, value: Any, stack: Stack, depth: int = 0) -> str:
        """A flattened string of ``value`` in which references are qualified by their stack.

        ``{"Ref": "X"}`` in stack ``S`` becomes ``${S:X}``, imports are followed to the exporting
        stack and known pseudo parameters are substituted, so equal strings mean equal values.
        """
        fn = intrinsic(value)
        if fn is None:
            return fmt(value)
        name, arg = fn
        if name == "Ref":
            ref = fmt(arg)
            if ref.startswith("AWS::"):
                return self.pseudo(ref, stack)
            resource = stack.resources.get(ref, {})
            parameter_name = props(resource).get("Name")
            if resource.get("Type") == "AWS::SSM::Parameter" and isinstance(parameter_name, str):
                return parameter_name  # the Ref of a parameter is its name
            return "${" + f"{stack.name}:{ref}" + "}"
        if name == "Fn::GetAtt":
            return "${" + f"{stack.name}:{getatt_name(arg)}" + "}"
        if name == "Fn::ImportValue" and depth <= MAX_DEPTH:
            found = self.exported(arg, stack)
            return self.qualified(found[1], found[0], depth + 1) if found else "${Import:" + fmt(arg) + "}"
        if name == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            return str(arg[0]).join(self.qualified(part, stack, depth) for part in arg[1])
        if name == "Fn::Sub":

            def free(var: str) -> str:
                ref = {"Fn::GetAtt": var.split(".", 1)} if "." in var else {"Ref": var}
                return self.qualified(ref, stack, depth)

            return sub_string(arg, lambda item: self.qualified(item, stack, depth), free)
        return "${" + fmt(value) + "}"

    def security_group(self, value: Any, stack: Stack) -> str:
        """Readable name of a security group reference: its description, ``Stack/LogicalId`` or import name."""
        resource = self.target(value, stack)
        if resource is not None and resource.type == "AWS::EC2::SecurityGroup":
            return self.sg_labels[resource.key]
        fn = intrinsic(value)
        if fn is not None and fn[0] == "Fn::ImportValue":
            return fmt(fn[1])
        return self.display(value, stack)

    def principal(self, value: Any, stack: Stack) -> str:
        """``Stack/LogicalId`` of the IAM role a value (name, ARN, instance profile) refers to."""
        resource = self.target(value, stack)
        if resource is not None:
            roles = props(resource.definition).get("Roles")
            if resource.type == "AWS::IAM::InstanceProfile" and isinstance(roles, list) and roles:
                return self.principal(roles[0], resource.stack)
            return resource.key
        text = self.display(value, stack)
        name = re.sub(r"^arn:.*:(role|instance-profile)/(.+/)?", "", text)
        for other in self.stacks:
            for logical_id, properties in other.of_type("AWS::IAM::Role", "AWS::IAM::InstanceProfile"):
                if name in (properties.get("RoleName"), properties.get("InstanceProfileName")):
                    return self.principal({"Ref": logical_id}, other)
        return text
