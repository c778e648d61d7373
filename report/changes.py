"""Resource-level diff of two assemblies with CloudFormation's replacement rules applied offline.

Resources are matched by stack and logical ID, the way CloudFormation matches them. For a resource in
both, every changed property is found (lists of named items, e.g. containers, options and tags, are
matched by name, not position) and checked against the registry schema's create-only properties
(:mod:`report.schemas`): a create-only change **would** replace the resource; when either side is a
token that cannot be compared offline, it **may**. Replacements cascade: a resource whose create-only
property refers to a replaced resource is replaced too. A changed logical ID is a replacement, a
removed resource is deleted, and a weaker ``DeletionPolicy``/``UpdateReplacePolicy`` is reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from report.assembly import Stack, props
from report.intrinsics import flatten, intrinsic
from report.resolve import MAX_DEPTH, Resolver, construct_path, label
from report.schemas import create_only
from report.stateful import is_stateful

# Replaced on every change by design: a new revision is registered and the old one stays until cleaned up.
REVISIONED = {
    "AWS::ECS::TaskDefinition": "new task definition revision",
    "AWS::ElasticBeanstalk::ApplicationVersion": "new application version",
    "AWS::Lambda::Version": "new function version",
}
DATA_TYPES = ("AWS::EC2::VPC", "AWS::EC2::Subnet")  # not data themselves, but everything inside is rebuilt
KEEPS = {"Retain": 3, "RetainExceptOnCreate": 3, "Snapshot": 2}
# Properties CloudFormation can update in place but that bind the resource to one VPC: new subnets in another VPC
# mean a new group, and then a new database or cache (whose subnet group name is create-only).
VPC_BOUND = {"AWS::RDS::DBSubnetGroup": ("SubnetIds",), "AWS::ElastiCache::SubnetGroup": ("SubnetIds",)}
NAME_KEYS = ("Name", "Key", "OptionName", "ParameterKey", "ContainerName", "name")
WOULD, MAY = "would", "may"
MAX_TEXT = 120


@dataclass(frozen=True)
class PropertyChange:
    """One changed property value (``path`` like ``ContainerDefinitions[app].Image``)."""

    path: str
    before: str
    after: str
    create_only: bool
    comparable: bool


@dataclass(frozen=True)
class ResourceChange:
    """What CloudFormation would do to one resource, and why."""

    stack: str
    logical_id: str
    name: str
    type: str
    action: str  # replace | remove | orphan | add | update | revision | retention
    certainty: str = ""  # would | may (for replace)
    stateful: bool = False
    cause: str = ""
    data: str = ""  # what happens to the data of a stateful resource that is replaced or removed
    properties: tuple[PropertyChange, ...] = field(default=())

    @property
    def loud(self) -> bool:
        """Replacements, deletions, weakened retention and stacks left behind: what a reviewer must read first."""
        return self.action in ("replace", "remove", "retention", "orphan")


HOLDS_MESSAGES = ("AWS::SQS::Queue",)  # not in the inventory's stateful list, but its messages go with it


def holds_data(resource_type: str) -> bool:
    """Whether replacing or deleting this type loses data (a queue's messages included)."""
    return is_stateful(resource_type) or resource_type in HOLDS_MESSAGES


def has_fate(resource_type: str) -> bool:
    """Whether the page says what happens to what it holds: data, or everything placed in a network."""
    return holds_data(resource_type) or resource_type in DATA_TYPES


def short(text: str) -> str:
    """A value shortened for one table cell."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """A list of named objects as ``{name: item}`` (None when the items are not uniquely named)."""
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    objects = [f"{item.get('kind')}/{(item.get('metadata') or {}).get('name')}" for item in items if "kind" in item]
    if len(objects) == len(items) and len(set(objects)) == len(objects):  # Kubernetes objects: kind/name
        return dict(zip(objects, items, strict=True))
    for key in NAME_KEYS:
        names = [item.get(key) for item in items]
        if not all(isinstance(name, str) for name in names):
            continue
        if key == "OptionName":  # Elastic Beanstalk options: unique per namespace
            names = [f"{item.get('Namespace', '')}:{item[key]}" for item in items]
        if len(set(names)) == len(names):
            return dict(zip(names, items, strict=True))
    return None


def leaves(before: Any, after: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """Every differing leaf of two property values; intrinsics are leaves, named list items matched by name."""
    if before == after:
        return
    before, after = _parsed(before), _parsed(after)  # JSON documents in a string (Kubernetes manifests)
    if intrinsic(before) is None and intrinsic(after) is None:
        if isinstance(before, dict) and isinstance(after, dict):
            for key in sorted(before.keys() | after.keys()):
                yield from leaves(before.get(key), after.get(key), (*path, str(key)))
            return
        if isinstance(before, list) and isinstance(after, list):
            keyed_before, keyed_after = _keyed(before), _keyed(after)
            if keyed_before is not None and keyed_after is not None:
                for key in sorted(keyed_before.keys() | keyed_after.keys()):
                    yield from leaves(keyed_before.get(key), keyed_after.get(key), (*path, f"[{key}]"))
                return
            if len(before) == len(after):
                for index, (old, new) in enumerate(zip(before, after, strict=True)):
                    yield from leaves(old, new, (*path, f"[{index}]"))
                return
    yield path, before, after


def _parsed(value: Any) -> Any:
    """A string (or a joined string with tokens, shown as ``${…}``) holding a JSON array or object, parsed;
    anything else as it is."""
    fn = intrinsic(value)
    text = flatten(value) if fn is not None and fn[0] == "Fn::Join" else value
    if isinstance(text, str) and text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def _is_create_only(path: tuple[str, ...], resource_type: str) -> bool:
    keys = tuple(part for part in path if not part.startswith("["))
    for pattern in create_only(resource_type):
        if len(keys) >= len(pattern) and all(want in ("*", got) for want, got in zip(pattern, keys, strict=False)):
            return True
    return False


def _has_token(value: Any) -> bool:
    if intrinsic(value) is not None:
        return True
    if isinstance(value, dict):
        return any(_has_token(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_token(item) for item in value)
    return False


def _path_text(path: tuple[str, ...]) -> str:
    text = ""
    for part in path:
        text += part if part.startswith("[") else (f".{part}" if text else part)
    return text or "(whole resource)"


def property_changes(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    resource_type: str,
    base: tuple[Resolver, Stack],
    head: tuple[Resolver, Stack],
) -> list[PropertyChange]:
    """The changed properties of one resource, rendered with each side's names."""
    changes = []
    for path, before, after in leaves(props(old), props(new)):
        before_text = base[0].display(before, base[1]) if before is not None else "(unset)"
        after_text = head[0].display(after, head[1]) if after is not None else "(unset)"
        comparable = not (_has_token(before) or _has_token(after))
        if not comparable:
            qualified = (base[0].qualified(before, base[1]), head[0].qualified(after, head[1]))
            comparable = "${" not in qualified[0] + qualified[1] and before is not None and after is not None
            if (qualified[0] == qualified[1] and "${" not in qualified[0]) or before_text == after_text:
                continue  # the same value written differently
        changes.append(
            PropertyChange(
                _path_text(path),
                short(before_text),
                short(after_text),
                _is_create_only(path, resource_type),
                comparable,
            )
        )
    return changes


def references(value: Any, stack: Stack, resolver: Resolver, depth: int = 0) -> Iterator[tuple[str, str, str]]:
    """``(stack, logical id, attribute)`` of every resource a value refers to, across stacks."""
    fn = intrinsic(value)
    if fn is not None and depth <= MAX_DEPTH:
        name, arg = fn
        if name == "Ref" and isinstance(arg, str) and arg in stack.resources:
            yield stack.name, arg, ""
            return
        if name == "Fn::GetAtt":
            logical_id, _, attribute = (".".join(arg) if isinstance(arg, list) else str(arg)).partition(".")
            if logical_id in stack.resources:
                yield stack.name, logical_id, attribute
            return
        if name in ("Fn::ImportValue", "Fn::GetStackOutput"):
            found = resolver.exported(arg, stack)
            if found is not None:
                yield from references(found[1], found[0], resolver, depth + 1)
            return
        if name == "Fn::Sub":
            template = arg[0] if isinstance(arg, list) and arg else arg
            for var in re.findall(r"\$\{([^}!]+)\}", str(template)):
                logical_id, _, attribute = var.partition(".")
                if logical_id in stack.resources:
                    yield stack.name, logical_id, attribute
    if isinstance(value, dict):
        for item in value.values():
            yield from references(item, stack, resolver, depth)
    elif isinstance(value, list):
        for item in value:
            yield from references(item, stack, resolver, depth)


def replaced_referent(
    value: Any, stack: Stack, resolver: Resolver, replaced: set[tuple[str, str]], *, ports: bool = True
) -> tuple[str, tuple[str, str]] | None:
    """``(name, (stack, logical id))`` of the first replaced resource ``value`` refers to. A replaced resource's
    ``…Port`` attribute keeps its value, so it does not count when ``ports`` is False."""
    for stack_name, logical_id, attribute in references(value, stack, resolver):
        if (stack_name, logical_id) in replaced and (ports or not attribute.endswith("Port")):
            owner = next(s for s in resolver.stacks if s.name == stack_name)
            return label(owner, logical_id), (stack_name, logical_id)
    return None


def _strength(resource: Mapping[str, Any], key: str) -> tuple[int, str]:
    """How much of the data a policy keeps, and its name; CloudFormation's defaults when it is not set."""
    default = "Delete"
    rds = resource.get("Type") == "AWS::RDS::DBCluster" or (
        resource.get("Type") == "AWS::RDS::DBInstance" and "DBClusterIdentifier" not in props(resource)
    )
    if key == "DeletionPolicy" and rds:
        default = "Snapshot"  # the documented default for RDS clusters and stand-alone instances
    policy = str(resource.get(key, default))
    return KEEPS.get(policy, 0), policy


def _data_fate(resource: Mapping[str, Any], key: str, event: str) -> str:
    _, policy = _strength(resource, key)
    if str(resource.get("Type")) in DATA_TYPES:
        return "everything placed in it (tasks, instances, database, cache, endpoints) is rebuilt"
    if key == "UpdateReplacePolicy" and props(resource).get("DeletionProtection") in (True, "true"):
        return (
            "deletion protection keeps the old instance (CloudFormation cannot delete it when it cleans up); "
            "the app moves to the new, empty one"
        )
    if policy in ("Retain", "RetainExceptOnCreate"):
        return f"the old resource is kept ({key} {policy}); the {event} one starts empty"
    if policy == "Snapshot":
        return f"a final snapshot is taken ({key} Snapshot); the {event} one starts empty"
    return f"its data is deleted ({key} {policy})"


def diff_resources(base: Sequence[Stack], head: Sequence[Stack]) -> list[ResourceChange]:
    """Every resource change between two assemblies, replacements predicted, sorted loudest first."""
    base_resolver, head_resolver = Resolver(base), Resolver(head)
    base_stacks = {stack.name: stack for stack in base}
    head_stacks = {stack.name: stack for stack in head}
    changes: dict[tuple[str, str], ResourceChange] = {}
    replaced: set[tuple[str, str]] = set()
    pending: list[tuple[Stack, str, Mapping[str, Any], Mapping[str, Any]]] = []

    renamed = _renamed(base, head)
    arrived = {(stack_name, new_id) for (stack_name, _), new_id in renamed.items()}
    skip = ("AWS::CDK::Metadata",)
    for stack_name in sorted(base_stacks.keys() | head_stacks.keys()):
        old_stack, new_stack = base_stacks.get(stack_name), head_stacks.get(stack_name)
        if new_stack is None or old_stack is None:
            changes[(stack_name, "")] = _whole_stack(old_stack, new_stack)
            continue
        old_resources = old_stack.resources if old_stack else {}
        new_resources = new_stack.resources if new_stack else {}
        for logical_id in sorted(old_resources.keys() | new_resources.keys()):
            old, new = old_resources.get(logical_id), new_resources.get(logical_id)
            key = (stack_name, logical_id)
            if (old or new or {}).get("Type") in skip:
                continue
            if new is None and old is not None and old_stack is not None:
                resource_type = str(old.get("Type"))
                moved = renamed.get(key)
                cause = f"logical ID changed to {moved}: CloudFormation creates a new one" if moved else "removed"
                changes[key] = ResourceChange(
                    stack_name,
                    logical_id,
                    label(old_stack, logical_id),
                    resource_type,
                    "replace" if moved else "remove",
                    WOULD if moved else "",
                    holds_data(resource_type),
                    cause,
                    _data_fate(old, "DeletionPolicy", "new") if has_fate(resource_type) else "",
                )
                replaced.add(key)
            elif old is None and new is not None and new_stack is not None:
                if (stack_name, logical_id) in arrived:
                    continue
                resource_type = str(new.get("Type"))
                changes[key] = ResourceChange(
                    stack_name,
                    logical_id,
                    label(new_stack, logical_id),
                    resource_type,
                    "add",
                    stateful=holds_data(resource_type),
                )
            elif old is not None and new is not None and old_stack is not None and new_stack is not None:
                pending.append((new_stack, logical_id, old, new))
                _update(changes, replaced, old_stack, new_stack, logical_id, old, new, base_resolver, head_resolver)

    _cascade(changes, replaced, pending, head_resolver)
    _follow(changes, replaced, pending, head_resolver)
    _same_port(changes, base_stacks, head_stacks)
    order = {"replace": 0, "remove": 1, "orphan": 2, "retention": 3, "update": 4, "revision": 5, "add": 6}
    return sorted(
        changes.values(),
        key=lambda c: (
            order[c.action],
            "refers to" in c.cause,  # the cause before what follows from it
            not c.stateful,
            c.type != "AWS::EC2::VPC",
            c.certainty != WOULD,
            c.stack,
            c.name,
        ),
    )


def _whole_stack(old: Stack | None, new: Stack | None) -> ResourceChange:
    """A stack that leaves the app (``cdk deploy`` does not delete it) or joins it."""
    stack = new or old
    assert stack is not None
    count = len(stack.resources)
    if new is None:
        return ResourceChange(
            stack.name,
            "",
            f"stack {stack.name} ({count} resources)",
            "AWS::CloudFormation::Stack",
            "orphan",
            cause=(
                "no longer in the app: cdk deploy leaves it running as it is (still reachable, still allowed in); "
                f"delete it with npx cdk destroy {stack.stack_name} once nothing uses it"
            ),
            stateful=any(holds_data(str(resource.get("Type"))) for resource in stack.resources.values()),
        )
    return ResourceChange(
        stack.name, "", f"new stack {stack.name} ({count} resources)", "AWS::CloudFormation::Stack", "add"
    )


def _renamed(base: Sequence[Stack], head: Sequence[Stack]) -> dict[tuple[str, str], str]:
    """Removed resources that reappear under a new logical ID with the same type and construct path."""
    head_by_path = {
        (stack.name, construct_path(stack, logical_id), str(resource.get("Type"))): logical_id
        for stack in head
        for logical_id, resource in stack.resources.items()
        if construct_path(stack, logical_id)
    }
    heads = {stack.name: stack for stack in head}
    moved = {}
    for stack in base:
        for logical_id, resource in stack.resources.items():
            if stack.name in heads and logical_id in heads[stack.name].resources:
                continue
            path = construct_path(stack, logical_id)
            new_id = head_by_path.get((stack.name, path, str(resource.get("Type")))) if path else None
            if new_id is not None and new_id not in stack.resources:
                moved[(stack.name, logical_id)] = new_id
    return moved


def _update(
    changes: dict[tuple[str, str], ResourceChange],
    replaced: set[tuple[str, str]],
    old_stack: Stack,
    new_stack: Stack,
    logical_id: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    base_resolver: Resolver,
    head_resolver: Resolver,
) -> None:
    key = (new_stack.name, logical_id)
    name = label(new_stack, logical_id)
    old_type, new_type = str(old.get("Type")), str(new.get("Type"))
    stateful = holds_data(new_type) or holds_data(old_type)
    fate = _data_fate(new, "UpdateReplacePolicy", "new") if has_fate(new_type) else ""

    def record(action: str, certainty: str, cause: str, data: str = "", found: tuple[PropertyChange, ...] = ()) -> None:
        changes[key] = ResourceChange(
            new_stack.name, logical_id, name, new_type, action, certainty, stateful, cause, data, found
        )
        if action in ("replace", "revision"):
            replaced.add(key)

    if old_type != new_type:
        record("replace", WOULD, f"type changed from {old_type}", fate)
        return
    properties = tuple(property_changes(old, new, new_type, (base_resolver, old_stack), (head_resolver, new_stack)))
    weakened = [
        f"{policy} {_strength(old, policy)[1]} → {_strength(new, policy)[1]}"
        for policy in ("DeletionPolicy", "UpdateReplacePolicy")
        if _strength(new, policy)[0] < _strength(old, policy)[0]
    ]
    creating = [change for change in properties if change.create_only]
    if creating and new_type in REVISIONED:
        record("revision", WOULD, REVISIONED[new_type], found=properties)
    elif creating:
        certainty = WOULD if any(change.comparable for change in creating) else MAY
        cause = ", ".join(f"{change.path} (create-only)" for change in creating[:3])
        record("replace", certainty, cause, fate, properties)
    elif weakened:
        record("retention", "", "; ".join(weakened), found=properties)
    elif properties:
        record("update", "", "", found=properties)


def _cascade(
    changes: dict[tuple[str, str], ResourceChange],
    replaced: set[tuple[str, str]],
    pending: list[tuple[Stack, str, Mapping[str, Any], Mapping[str, Any]]],
    resolver: Resolver,
) -> None:
    """Replace resources whose create-only properties refer to a replaced resource, until nothing changes."""
    grew = True
    while grew:
        grew = False
        for stack, logical_id, _old, new in pending:
            key = (stack.name, logical_id)
            resource_type = str(new.get("Type"))
            bound = {pattern[0] for pattern in create_only(resource_type)} | set(VPC_BOUND.get(resource_type, ()))
            if key in replaced or not bound:
                continue
            for path, value in props(new).items():
                if path not in bound:
                    continue
                culprit = replaced_referent(value, stack, resolver, replaced, ports=False)
                if culprit is None:
                    continue
                stateful = holds_data(resource_type)
                previous = changes.get(key)
                changes[key] = ResourceChange(
                    stack.name,
                    logical_id,
                    label(stack, logical_id),
                    resource_type,
                    "revision" if resource_type in REVISIONED else "replace",
                    WOULD,
                    stateful,
                    f"{path} refers to {culprit[0]}, which is replaced"
                    + (
                        " (a subnet group cannot move to another VPC)"
                        if path in VPC_BOUND.get(resource_type, ())
                        else ""
                    ),
                    _data_fate(new, "UpdateReplacePolicy", "new") if has_fate(resource_type) else "",
                    previous.properties if previous else (),
                )
                replaced.add(key)
                grew = True
                break


def _follow(
    changes: dict[tuple[str, str], ResourceChange],
    replaced: set[tuple[str, str]],
    pending: list[tuple[Stack, str, Mapping[str, Any], Mapping[str, Any]]],
    resolver: Resolver,
) -> None:
    """Resources that are updated only because something they refer to is replaced (a new ID or address)."""
    for stack, logical_id, _old, new in pending:
        key = (stack.name, logical_id)
        if key in changes:
            continue
        culprit = replaced_referent(props(new), stack, resolver, replaced)
        if culprit is not None:
            how = "gets a new revision" if changes[culprit[1]].action == "revision" else "is replaced"
            changes[key] = ResourceChange(
                stack.name,
                logical_id,
                label(stack, logical_id),
                str(new.get("Type")),
                "update",
                cause=f"refers to {culprit[0]}, which {how}",
            )


def _same_port(
    changes: dict[tuple[str, str], ResourceChange], base: Mapping[str, Stack], head: Mapping[str, Stack]
) -> None:
    """A listener removed while a new one on the same load balancer and port is added: CloudFormation creates the
    new one first, so the deploy fails (DuplicateListener)."""

    def port(stacks: Mapping[str, Stack], key: tuple[str, str]) -> tuple[str, str] | None:
        resource = stacks[key[0]].resources.get(key[1], {}) if key[0] in stacks else {}
        if resource.get("Type") != "AWS::ElasticLoadBalancingV2::Listener":
            return None
        properties = props(resource)
        return json.dumps(properties.get("LoadBalancerArn"), sort_keys=True), str(properties.get("Port"))

    added = {port(head, key): key for key, change in changes.items() if change.action == "add"}
    for key, change in list(changes.items()):
        if change.action == "remove" and (where := port(base, key)) is not None and where in added:
            new_id = added[where][1]
            changes[key] = replace(
                change,
                cause=(
                    f"replaced by {new_id} on the same port {where[1]}: CloudFormation creates the new listener first, "
                    "so the deploy fails (DuplicateListener); keep the listener's construct ID, or deploy the removal "
                    "first"
                ),
            )
