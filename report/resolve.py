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
from report.intrinsics import as_list, fmt, getatt_name, intrinsic, sub_string

MAX_DEPTH = 8
CROSS_STACK = ("Fn::ImportValue", "Fn::GetStackOutput")
ATTRIBUTES = {"CidrBlock": "CIDR", "GroupId": "group", "Arn": "ARN"}
SECURITY_GROUP_OWNERS = {
    "AWS::RDS::DBInstance": ("VPCSecurityGroups",),
    "AWS::RDS::DBCluster": ("VpcSecurityGroupIds",),
    "AWS::ElastiCache::ReplicationGroup": ("SecurityGroupIds",),
    "AWS::EC2::VPCEndpoint": ("SecurityGroupIds",),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("SecurityGroups",),
}


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
        """``Stack/construct path`` (``Stack/LogicalId`` without path metadata): unique across the assembly."""
        return resource_key(self.stack, self.logical_id)


ENGINES = {"postgres": "PostgreSQL", "aurora-postgresql": "Aurora PostgreSQL", "mysql": "MySQL", "mariadb": "MariaDB"}
ENGINE_PORTS = {
    "postgres": 5432,
    "aurora-postgresql": 5432,
    "mysql": 3306,
    "mariadb": 3306,
    "redis": 6379,
    "valkey": 6379,
}


def construct_path(stack: Stack, logical_id: str) -> str:
    """The resource's CDK construct path inside its stack (``Service/Task/ExecutionRole``), "" without metadata."""
    resource = stack.resources.get(logical_id, {})
    metadata = resource.get("Metadata")
    path = metadata.get("aws:cdk:path") if isinstance(metadata, dict) else None
    if not isinstance(path, str) or not path:
        return ""
    parts = path.split("/")[1:]  # the first part is the stack
    while len(parts) > 1 and parts[-1] in ("Resource", "Default"):
        parts.pop()
    text = "/".join(part for part in parts if part != "Default") or path
    return re.sub(r"(?<=[A-Za-z])[0-9a-f]{32}\b", "", text)  # CDK singletons: LogRetention<hash> -> LogRetention


def resource_key(stack: Stack, logical_id: str) -> str:
    """``Stack/construct path``: readable, and stable when CDK changes a logical-ID hash."""
    path = construct_path(stack, logical_id)
    return f"{stack.name}/{path or logical_id}"


def label(stack: Stack, logical_id: str) -> str:
    """What a reviewer calls the resource: ``PostgreSQL (shop-dev-data)``, ``Redis (…)``, else its key."""
    resource = stack.resources.get(logical_id, {})
    kind, properties = resource.get("Type"), props(resource)
    if kind in ("AWS::RDS::DBInstance", "AWS::RDS::DBCluster"):
        engine = str(properties.get("Engine", "")).lower()
        return f"{ENGINES.get(engine, engine or 'database')} ({stack.name})"
    if kind in ("AWS::ElastiCache::ReplicationGroup", "AWS::ElastiCache::CacheCluster"):
        engine = str(properties.get("Engine", "redis")).lower()
        return f"{'Valkey' if engine == 'valkey' else 'Redis'} ({stack.name})"
    if kind == "AWS::ElasticLoadBalancingV2::LoadBalancer":
        return f"load balancer ({stack.name})"
    if kind == "AWS::EC2::VPC":
        return f"VPC ({stack.name})"
    if kind == "AWS::EC2::VPCEndpoint":
        return f"VPC endpoints ({stack.name})"
    return resource_key(stack, logical_id)


def known_port(stack: Stack, logical_id: str, attribute: str) -> int | None:
    """The port an ``Endpoint.Port`` attribute will have when the template fixes it or the engine implies it."""
    if not attribute.endswith("Port"):
        return None
    properties = props(stack.resources.get(logical_id, {}))
    port = properties.get("Port")
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    engine = str(
        properties.get(
            "Engine", "redis" if "ElastiCache" in str(stack.resources.get(logical_id, {}).get("Type")) else ""
        )
    ).lower()
    return ENGINE_PORTS.get(engine)


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
        self.outputs: dict[tuple[str, str], tuple[Stack, Any]] = {}
        for stack in self.stacks:
            outputs = stack.template.get("Outputs")
            for output_name, output in (outputs if isinstance(outputs, dict) else {}).items():
                if not isinstance(output, dict):
                    continue
                self.outputs[(stack.stack_name, str(output_name))] = (stack, output.get("Value"))
                export = output.get("Export")
                if isinstance(export, dict) and "Name" in export:
                    self.exports[self.qualified(export["Name"], stack)] = (stack, output.get("Value"))
        self.sg_labels = self._label_security_groups()

    def _label_security_groups(self) -> dict[str, str]:
        """A name per security group: what it protects (database, cache, load balancer, VPC endpoints), else its
        description. All interface endpoints of a stack share one name, so the diagram shows them as one node."""
        owners: dict[str, str] = {}
        for stack in self.stacks:
            for logical_id, resource in sorted(stack.resources.items()):
                keys = SECURITY_GROUP_OWNERS.get(str(resource.get("Type")), ())
                for key in keys:
                    for group in as_list(props(resource).get(key)):
                        target = self.target(group, stack)
                        if target is not None:
                            owners.setdefault(target.key, label(stack, logical_id))
        labels: dict[str, str] = {}
        for stack in self.stacks:
            for logical_id, properties in stack.of_type("AWS::EC2::SecurityGroup"):
                description = properties.get("GroupDescription")
                key = resource_key(stack, logical_id)
                readable = isinstance(description, str) and description and not description.startswith(f"{stack.name}/")
                # A description names the group in its own stack (stable when another stack comes or goes).
                labels[key] = owners.get(key) or (f"{description} ({stack.name})" if readable else key)
        counts = Counter(labels.values())
        shared = {label for label in labels.values() if label.startswith("VPC endpoints")}
        return {
            key: text if counts[text] == 1 or text in shared else f"{text.rsplit(' (', 1)[0]} ({key})"
            for key, text in labels.items()
        }

    def exported(self, name: Any, stack: Stack) -> tuple[Stack, Any] | None:
        """``(producing stack, value)`` for an ``Fn::ImportValue`` or ``Fn::GetStackOutput`` argument."""
        if isinstance(name, dict) and "OutputName" in name:  # Fn::GetStackOutput (weak cross-stack reference)
            return self.outputs.get((fmt(name.get("StackName")), fmt(name.get("OutputName"))))
        return self.exports.get(self.qualified(name, stack))

    def target(self, value: Any, stack: Stack, depth: int = 0) -> Resource | None:
        """The resource a ``Ref`` / ``Fn::GetAtt`` / resolvable cross-stack reference points at."""
        fn = intrinsic(value)
        if fn is None or depth > MAX_DEPTH:
            return None
        name, arg = fn
        if name == "Ref":
            logical_id = str(arg)
        elif name == "Fn::GetAtt":
            logical_id = getatt_name(arg).split(".", 1)[0]
        elif name in CROSS_STACK:
            found = self.exported(arg, stack)
            return self.target(found[1], found[0], depth + 1) if found else None
        else:
            return None
        return Resource(stack, logical_id) if logical_id in stack.resources else None

    def display(self, value: Any, stack: Stack, depth: int = 0) -> str:
        """Readable rendering of ``value``: references become the resource's name, known ports their number,
        cross-stack references what they point at and known pseudo parameters their value."""
        fn = intrinsic(value)
        if fn is None:
            if isinstance(value, dict):
                items = sorted(value.items())
                return "{" + ", ".join(f"{key}: {self.display(item, stack, depth)}" for key, item in items) + "}"
            if isinstance(value, list):
                return "[" + ", ".join(self.display(item, stack, depth) for item in value) + "]"
            return fmt(value)
        name, arg = fn
        if name in CROSS_STACK and depth <= MAX_DEPTH:
            found = self.exported(arg, stack)
            if found is not None:
                return self.display(found[1], found[0], depth + 1)
            return (
                f"output {fmt(arg.get('OutputName'))} of {fmt(arg.get('StackName'))}"
                if isinstance(arg, dict)
                else fmt(value)
            )
        if name == "Ref":
            ref = fmt(arg)
            if ref.startswith("AWS::"):
                return self.pseudo(ref, stack)
            parameter_name = props(stack.resources.get(ref, {})).get("Name")
            if stack.resources.get(ref, {}).get("Type") == "AWS::SSM::Parameter" and isinstance(parameter_name, str):
                return parameter_name
            return label(stack, ref) if ref in stack.resources else f"Ref:{ref}"
        if name == "Fn::GetAtt":
            logical_id, _, attribute = getatt_name(arg).partition(".")
            if logical_id not in stack.resources:
                return getatt_name(arg)
            port = known_port(stack, logical_id, attribute)
            if port is not None:
                return str(port)
            return f"{label(stack, logical_id)} {ATTRIBUTES.get(attribute, attribute)}"
        if name == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            return str(arg[0]).join(self._inline(part, stack, depth) for part in arg[1])
        if name == "Fn::Sub":

            def free(var: str) -> str:
                ref = {"Fn::GetAtt": var.split(".", 1)} if "." in var else {"Ref": var}
                return self._inline(ref, stack, depth)

            return sub_string(arg, lambda item: self._inline(item, stack, depth), free)
        args = arg if isinstance(arg, list) else [arg]
        return f"{name.removeprefix('Fn::')}({', '.join(self.display(item, stack, depth) for item in args)})"

    def readable_text(self, text: str, stack: Stack) -> str:
        """Free text (a rule description CDK wrote) with ``${LogicalId.Attr}`` / ``${LogicalId}`` made readable."""

        def replace(match: re.Match[str]) -> str:
            logical_id, _, attribute = match.group(1).partition(".")
            if logical_id not in stack.resources:
                return match.group(0)
            value = {"Fn::GetAtt": [logical_id, attribute]} if attribute else {"Ref": logical_id}
            return self.display(value, stack)

        return re.sub(r"\$\{([A-Za-z0-9]+(?:\.[A-Za-z.]+)?)\}", replace, text)

    def _inline(self, value: Any, stack: Stack, depth: int) -> str:
        """``value`` as part of a joined string: literals and pseudo parameters as they are, names in ``${…}``."""
        text = self.display(value, stack, depth)
        fn = intrinsic(value)
        if fn is None or (fn[0] == "Ref" and fmt(fn[1]).startswith("AWS::") and not text.startswith("${")):
            return text
        if fn[0] in ("Fn::Join", "Fn::Sub") or text.isdigit():
            return text
        found = self.exported(fn[1], stack) if fn[0] in CROSS_STACK else None
        if found is not None and intrinsic(found[1]) is None:
            return text
        return "${" + text + "}"

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
        if name in CROSS_STACK and depth <= MAX_DEPTH:
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
