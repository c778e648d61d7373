"""App resources: the stage's own buckets, queues, topics and SES e-mail identities, and who may do what on them.

The resources are those of a stack that publishes the ``ResourceSettings`` output (``<app>-<stage>-resources``,
stacks/resources.py): ``AWS::S3::Bucket``, ``AWS::SQS::Queue`` (dead-letter queues included),
``AWS::SNS::Topic`` and ``AWS::SES::EmailIdentity``, each with its encryption, versioning or dead-letter queue and
what a stack deletion does to it. Per resource, the grants: every Allow statement of a role's policies (the
attachments of :mod:`report.iam`) whose ``Resource`` covers the resource's ARN (``arn:aws:s3:::<bucket>`` and its
objects ``…/*``, the queue/topic/identity ARN, or a reference to the resource), on an action of the resource's
service, summed up as access levels (read/write, send/consume, publish, send e-mail) per service that runs as
the role (:func:`report.routing.role_services`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from report.assembly import Stack, props
from report.iam import attachments, glob, policy_statements, wildcards
from report.intrinsics import as_list, fmt, texts
from report.resolve import Resolver, construct_path
from report.routing import RoleUser, role_services

SETTINGS_OUTPUT = "ResourceSettings"
KINDS = {
    "AWS::S3::Bucket": "bucket",
    "AWS::SQS::Queue": "queue",
    "AWS::SNS::Topic": "topic",
    "AWS::SES::EmailIdentity": "email identity",
}
SERVICE_PREFIX = {"bucket": "s3", "queue": "sqs", "topic": "sns", "email identity": "ses"}
# Access levels per kind, in the order a reviewer reads them, with the actions that make each one.
LEVELS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "bucket": (
        ("read", ("s3:GetObject", "s3:ListBucket")),
        ("write", ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")),
    ),
    "queue": (
        ("send", ("sqs:SendMessage",)),
        ("consume", ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")),
    ),
    "topic": (("publish", ("sns:Publish",)),),
    "email identity": (("send e-mail", ("ses:SendEmail", "ses:SendRawEmail")),),
}
# Read by the service but not an access level of their own (a sender also looks the queue up).
HARMLESS = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl")
RETAINED = ("Retain", "RetainExceptOnCreate", "Snapshot")


@dataclass(frozen=True)
class Grant:
    """What one service (on one target stack) may do on one resource: access levels, the actions, and which parts
    (``bucket``, ``objects``, the queue …) the statements name; ``wildcards`` as :mod:`report.iam` flags them."""

    service: str
    stack: str
    role: str
    access: tuple[str, ...]
    actions: tuple[str, ...]
    targets: tuple[str, ...]
    wildcards: tuple[str, ...]
    node: str = ""


@dataclass(frozen=True)
class AppResource:
    """A bucket, queue, topic or e-mail identity of the stage with its protection and its grants.

    ``short`` is the name the stage file gives it (``uploads``, ``emails``; the domain of an e-mail identity),
    ``protection`` the versioning of a bucket or the dead-letter queue of a queue, ``retention`` what deleting
    the stack (or replacing the resource) does to it."""

    stack: str
    logical_id: str
    path: str
    kind: str
    name: str
    short: str
    encryption: str
    protection: str
    retention: str
    retained: bool
    grants: tuple[Grant, ...]

    @property
    def title(self) -> str:
        """``bucket uploads``, ``queue emails``: how a reviewer names it."""
        return f"{self.kind} {self.short}"


def resource_stacks(stacks: Sequence[Stack]) -> list[Stack]:
    """The stacks that hold the stage's own resources (they publish ``ResourceSettings``)."""
    found = []
    for stack in stacks:
        outputs = stack.template.get("Outputs")
        if isinstance(outputs, dict) and SETTINGS_OUTPUT in outputs:
            found.append(stack)
    return found


def _name(kind: str, properties: Mapping[str, Any], stack: Stack, logical_id: str, resolver: Resolver) -> str:
    key = {"bucket": "BucketName", "queue": "QueueName", "topic": "TopicName", "email identity": "EmailIdentity"}
    value = properties.get(key[kind])
    return resolver.display(value, stack) if value is not None else construct_path(stack, logical_id) or logical_id


def _short(name: str, stack: Stack) -> str:
    """``shop-staging-uploads-123456789012-eu-west-1`` -> ``uploads`` (the stage's prefix and the account/region
    suffix of a bucket dropped); ``Resources/AccessLogs`` (no name of its own) -> ``AccessLogs``."""
    if "/" in name:
        return name.rsplit("/", 1)[-1]
    prefix = stack.stack_name.removesuffix("resources") if stack.stack_name.endswith("-resources") else ""
    text = name.removesuffix(f"-{stack.account}-{stack.region}")
    return text.removeprefix(prefix) if prefix and text.startswith(prefix) and text != prefix else text


def _arns(kind: str, name: str, logical_id: str, stack: Stack, resolver: Resolver) -> tuple[str, ...]:
    """The qualified strings a statement may use for the resource: its ARN spelled out, and its references."""
    partition, region, account = (
        resolver.pseudo(key, stack) for key in ("AWS::Partition", "AWS::Region", "AWS::AccountId")
    )
    service = SERVICE_PREFIX[kind]
    own = {
        "bucket": f"arn:{partition}:s3:::{name}",
        "queue": f"arn:{partition}:sqs:{region}:{account}:{name}",
        "topic": f"arn:{partition}:sns:{region}:{account}:{name}",
        "email identity": f"arn:{partition}:{service}:{region}:{account}:identity/{name}",
    }[kind]
    references = ["${" + f"{stack.name}:{logical_id}.Arn" + "}"]
    if kind == "topic":
        references += ["${" + f"{stack.name}:{logical_id}" + "}", "${" + f"{stack.name}:{logical_id}.TopicArn" + "}"]
    return (own, *references)


def _covers(pattern: str, arn: str) -> bool:
    """Whether a ``Resource`` pattern names ``arn``; unresolved pseudo parameters on either side match a field."""
    return glob(pattern, arn) or ("${AWS::" in arn and glob(arn, pattern))


def _targets(kind: str, pattern: str, arns: Sequence[str]) -> list[str]:
    """Which parts of the resource a pattern names: ``bucket`` and/or ``objects``; the resource itself otherwise."""
    if kind != "bucket":
        return [kind] if any(_covers(pattern, arn) for arn in arns) else []
    found = []
    if any(_covers(pattern, arn) for arn in arns):
        found.append("bucket")
    if any(_covers(pattern, f"{arn}/any/object") or _covers(pattern, f"{arn}/*") for arn in arns):
        found.append("objects")
    return found


def _levels(kind: str, actions: Sequence[str]) -> tuple[str, ...]:
    """The access levels ``actions`` give (``full`` for ``*`` / ``s3:*``), then ``other`` for any other action of
    the resource's service."""
    levels = [
        level
        for level, wanted in LEVELS[kind]
        if any(glob(action, want, ignore_case=True) for action in actions for want in wanted)
    ]
    known = {want.lower() for _, wanted in LEVELS[kind] for want in wanted} | {h.lower() for h in HARMLESS}
    if any(action.lower() not in known and "*" not in action for action in actions):
        levels.append("other")
    return tuple(levels)


def _relevant(action: str, kind: str) -> bool:
    return action == "*" or action.lower().startswith(f"{SERVICE_PREFIX[kind]}:")


def _grants(
    kind: str,
    arns: Sequence[str],
    stacks: Sequence[Stack],
    resolver: Resolver,
    users: Mapping[str, tuple[RoleUser, ...]],
) -> tuple[Grant, ...]:
    by_role: dict[str, tuple[set[str], set[str], set[str]]] = {}
    for attachment in attachments(stacks, resolver):
        for statement in policy_statements(attachment.document):
            if statement.get("Effect") != "Allow" or "Action" not in statement:
                continue
            actions = [action for action in texts(statement.get("Action")) if _relevant(action, kind)]
            patterns = [resolver.qualified(item, attachment.stack) for item in as_list(statement.get("Resource"))]
            named = {part for pattern in patterns for part in _targets(kind, pattern, arns)}
            if not actions or not named:
                continue
            found = by_role.setdefault(attachment.principal, (set(), set(), set()))
            found[0].update(actions)
            found[1].update(named)
            shown = [resolver.display(item, attachment.stack) for item in as_list(statement.get("Resource"))]
            found[2].update(wildcards(statement, actions, shown))
    grants = []
    for role, (allowed, parts, flags) in sorted(by_role.items()):
        access = _levels(kind, sorted(allowed))
        if not access:
            continue  # looks the queue up only
        owners = users.get(role) or (RoleUser(role, role.split("/", 1)[0], role),)
        grants += [
            Grant(
                owner.service,
                owner.stack,
                role,
                access,
                tuple(sorted(allowed)),
                tuple(sorted(parts)),
                tuple(sorted(flags)),
                owner.node,
            )
            for owner in owners
        ]
    return tuple(sorted(grants, key=lambda g: (g.service, g.stack, g.role)))


def _encryption(kind: str, properties: Mapping[str, Any], stack: Stack, resolver: Resolver) -> str:
    if kind == "bucket":
        rules = as_list((properties.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration"))
        algorithms = [
            fmt((rule.get("ServerSideEncryptionByDefault") or {}).get("SSEAlgorithm"))
            for rule in rules
            if isinstance(rule, dict)
        ]
        if not algorithms:
            return "SSE-S3 (S3 default)"
        return ", ".join("SSE-S3" if algorithm == "AES256" else f"SSE-KMS ({algorithm})" for algorithm in algorithms)
    if kind in ("queue", "topic") and properties.get("KmsMasterKeyId") is not None:
        return f"SSE-KMS ({resolver.display(properties['KmsMasterKeyId'], stack)})"
    if kind == "queue":
        return "none" if properties.get("SqsManagedSseEnabled") in (False, "false") else "SSE-SQS"
    if kind == "topic":
        return "none"
    return ""


def _protection(
    kind: str, properties: Mapping[str, Any], stack: Stack, resolver: Resolver, dead_letters_of: str = ""
) -> str:
    if kind == "bucket":
        status = fmt((properties.get("VersioningConfiguration") or {}).get("Status"))
        return "versioned" if status == "Enabled" else f"not versioned{f' ({status})' if status else ''}"
    if kind == "queue":
        kept = str(properties.get("MessageRetentionPeriod", ""))
        days = f"messages kept {int(kept) // 86400} days" if kept.isdigit() and int(kept) >= 86400 else ""
        redrive = properties.get("RedrivePolicy")
        if isinstance(redrive, dict) and redrive.get("deadLetterTargetArn") is not None:
            target = resolver.target(redrive["deadLetterTargetArn"], stack)
            queue = (
                _name("queue", props(target.definition), target.stack, target.logical_id, resolver)
                if target is not None
                else resolver.display(redrive["deadLetterTargetArn"], stack)
            )
            after = fmt(redrive.get("maxReceiveCount"))
            return ", ".join(filter(None, [f"dead-letter queue {queue} after {after} receives", days]))
        if dead_letters_of:
            return ", ".join(filter(None, [f"dead-letter queue of {dead_letters_of}", days]))
        return ", ".join(filter(None, ["no dead-letter queue", days]))
    return ""


def _auto_deleted(stack: Stack, logical_id: str) -> bool:
    """A ``Custom::S3AutoDeleteObjects`` empties the bucket when it is deleted."""
    return any(
        str(resource.get("Type")) == "Custom::S3AutoDeleteObjects"
        and props(resource).get("BucketName") == {"Ref": logical_id}
        for resource in stack.resources.values()
    )


def _retention(kind: str, resource: Mapping[str, Any], stack: Stack, logical_id: str) -> tuple[str, bool]:
    policy = fmt(resource.get("DeletionPolicy", "Delete"))
    if policy in RETAINED:
        return f"retained (DeletionPolicy {policy})", True
    if kind == "bucket" and _auto_deleted(stack, logical_id):
        return f"deleted with the stack, emptied first (auto-delete objects; DeletionPolicy {policy})", False
    what = {"bucket": ", its objects with it", "queue": ", its messages with it"}.get(kind, "")
    return f"deleted with the stack{what} (DeletionPolicy {policy})", False


def extract_resources(stacks: Sequence[Stack], resolver: Resolver | None = None) -> list[AppResource]:
    """Every bucket, queue, topic and e-mail identity of the stage's resources stack, with who may do what."""
    resolver = resolver or Resolver(stacks)
    users = role_services(stacks, resolver)
    found = []
    for stack in resource_stacks(stacks):
        dead_letters: dict[str, str] = {}  # dead-letter queue logical ID -> the queue whose failures it keeps
        for logical_id, properties in stack.of_type("AWS::SQS::Queue"):
            redrive = properties.get("RedrivePolicy")
            target = resolver.target(redrive.get("deadLetterTargetArn"), stack) if isinstance(redrive, dict) else None
            if target is not None and target.stack is stack:
                dead_letters[target.logical_id] = _name("queue", properties, stack, logical_id, resolver)
        for logical_id, resource in sorted(stack.resources.items()):
            kind = KINDS.get(str(resource.get("Type")))
            if kind is None:
                continue
            properties = props(resource)
            name = _name(kind, properties, stack, logical_id, resolver)
            arns = _arns(kind, name, logical_id, stack, resolver)
            retention, retained = _retention(kind, resource, stack, logical_id)
            found.append(
                AppResource(
                    stack=stack.name,
                    logical_id=logical_id,
                    path=construct_path(stack, logical_id) or logical_id,
                    kind=kind,
                    name=name,
                    short=_short(name, stack),
                    encryption=_encryption(kind, properties, stack, resolver),
                    protection=_protection(kind, properties, stack, resolver, dead_letters.get(logical_id, "")),
                    retention=retention,
                    retained=retained,
                    grants=_grants(kind, arns, stacks, resolver, users),
                )
            )
    order = list(LEVELS)
    return sorted(found, key=lambda r: (r.stack, order.index(r.kind), r.name))
