"""IAM: principals, the policy statements attached to them, wildcard findings and read-access checks.

Policies reach a role through ``AWS::IAM::Policy`` / ``AWS::IAM::ManagedPolicy`` ``Roles``, the role's
inline ``Policies`` and ``ManagedPolicyArns`` (customer managed policies in the assembly are expanded,
AWS managed ones are listed by name). Allow statements with ``*`` or ``service:*`` actions, ``NotAction``
or ``Resource: "*"`` are flagged. :func:`readers` answers "which roles may read this parameter/secret".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from report.assembly import Stack, props
from report.intrinsics import as_list, fmt, texts
from report.resolve import Resolver, construct_path, resource_key

READ_ACTIONS = {
    "ssm": ("ssm:GetParameter", "ssm:GetParameters"),
    "secretsmanager": ("secretsmanager:GetSecretValue",),
}


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement as attached to a principal; ``wildcards`` lists what is too broad."""

    policy: str
    policy_stack: str
    index: int
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    wildcards: tuple[str, ...]


@dataclass(frozen=True)
class Principal:
    """An IAM role (``Stack/LogicalId``) with its trust, managed policies and statements."""

    principal: str
    stack: str
    role: str
    assumed_by: tuple[str, ...]
    managed_policies: tuple[str, ...]
    actions: tuple[str, ...]
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Attachment:
    """A policy document attached to a principal."""

    principal: str
    policy: str
    stack: Stack
    document: Mapping[str, Any]


def attachments(stacks: Sequence[Stack], resolver: Resolver) -> list[Attachment]:
    """Every policy document attached to a role: ``AWS::IAM::Policy``, managed policies, inline policies."""
    found: dict[tuple[str, str, str], Attachment] = {}

    def add(principal: str, policy: str, stack: Stack, document: Any) -> None:
        if isinstance(document, dict):
            found.setdefault((principal, stack.name, policy), Attachment(principal, policy, stack, document))

    for stack in stacks:
        for logical_id, properties in stack.of_type("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for role in as_list(properties.get("Roles")):
                policy_name = construct_path(stack, logical_id) or logical_id
                add(resolver.principal(role, stack), policy_name, stack, properties.get("PolicyDocument"))
        for logical_id, properties in stack.of_type("AWS::IAM::Role"):
            key = resource_key(stack, logical_id)
            for policy in as_list(properties.get("Policies")):
                owner = construct_path(stack, logical_id) or logical_id
                add(key, f"{owner}/{fmt(policy.get('PolicyName'))} (inline)", stack, policy.get("PolicyDocument"))
            for arn in as_list(properties.get("ManagedPolicyArns")):
                managed = resolver.target(arn, stack)
                if managed is not None and managed.type == "AWS::IAM::ManagedPolicy":
                    document = props(managed.definition).get("PolicyDocument")
                    add(
                        key,
                        construct_path(managed.stack, managed.logical_id) or managed.logical_id,
                        managed.stack,
                        document,
                    )
    return [found[key] for key in sorted(found)]


def policy_statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statements of a policy document (a single statement object counts as a list of one)."""
    return [item for item in as_list(document.get("Statement")) if isinstance(item, dict)]


_statements = policy_statements


def wildcards(statement: Mapping[str, Any], actions: Sequence[str], resources: Sequence[str]) -> tuple[str, ...]:
    if statement.get("Effect") != "Allow":
        return ()
    flags = [f"action {action}" for action in actions if action == "*" or action.endswith(":*")]
    if "NotAction" in statement:
        flags.append("NotAction")
    if "*" in resources:
        flags.append("resource *")
    return tuple(flags)


def _statement(attachment: Attachment, index: int, statement: Mapping[str, Any], resolver: Resolver) -> Statement:
    actions = texts(statement.get("Action", statement.get("NotAction")))
    resources = tuple(
        resolver.display(item, attachment.stack)
        for item in as_list(statement.get("Resource", statement.get("NotResource")))
    )
    return Statement(
        policy=attachment.policy,
        policy_stack=attachment.stack.name,
        index=index,
        effect=fmt(statement.get("Effect")),
        actions=actions,
        resources=resources,
        wildcards=wildcards(statement, actions, resources),
    )


def _trust(properties: Mapping[str, Any], stack: Stack, resolver: Resolver) -> tuple[str, ...]:
    principals: set[str] = set()
    for statement in _statements(properties.get("AssumeRolePolicyDocument") or {}):
        principal = statement.get("Principal")
        for value in principal.values() if isinstance(principal, dict) else [principal]:
            principals.update(resolver.display(item, stack) for item in as_list(value))
    return tuple(sorted(principals))


def extract_iam(stacks: Sequence[Stack], resolver: Resolver | None = None) -> list[Principal]:
    """Each role with its trust, managed policies (by name) and attached statements, wildcards flagged."""
    resolver = resolver or Resolver(stacks)
    roles: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {}
    for stack in stacks:
        for logical_id, properties in stack.of_type("AWS::IAM::Role"):
            managed = tuple(
                sorted(
                    resolver.display(arn, stack).rsplit("/", 1)[-1]
                    for arn in as_list(properties.get("ManagedPolicyArns"))
                    if (target := resolver.target(arn, stack)) is None or target.type != "AWS::IAM::ManagedPolicy"
                )
            )
            trust = _trust(properties, stack, resolver)
            roles[resource_key(stack, logical_id)] = (stack.name, resource_key(stack, logical_id), trust, managed)
    statements: dict[str, list[Statement]] = {}
    for attachment in attachments(stacks, resolver):
        roles.setdefault(attachment.principal, (attachment.stack.name, attachment.principal, (), ()))
        statements.setdefault(attachment.principal, []).extend(
            _statement(attachment, index, statement, resolver)
            for index, statement in enumerate(_statements(attachment.document))
        )
    principals = []
    for key, (stack_name, role, trust, managed) in sorted(roles.items()):
        attached = tuple(statements.get(key, []))
        actions = {action for statement in attached if statement.effect == "Allow" for action in statement.actions}
        principals.append(Principal(key, stack_name, role, trust, managed, tuple(sorted(actions)), attached))
    return principals


def glob(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """IAM-style wildcard match: ``*`` and ``?``; unresolved pseudo parameters match one ARN field."""
    parts = re.split(r"(\$\{AWS::[A-Za-z]+\}|\*|\?)", pattern)
    regex = "".join(
        ".*" if part == "*" else "." if part == "?" else "[^:]*" if part.startswith("${AWS::") else re.escape(part)
        for part in parts
    )
    return re.fullmatch(regex, text, re.IGNORECASE if ignore_case else 0) is not None


def _secret_base(target: str) -> str:
    """Strip the JSON-key / version suffix of a Secrets Manager reference (``${X}:password::``)."""
    if target.startswith("${") and "}" in target:
        return target[: target.index("}") + 1]
    if ":secretsmanager:" in target:
        return ":".join(target.split(":")[:7])
    return target


def resource_matches(pattern: str, target: str) -> bool:
    """Whether an IAM ``Resource`` pattern covers a parameter/secret reference (both as qualified strings)."""
    base = _secret_base(target)
    if glob(pattern, target) or glob(pattern, base):
        return True
    if target.startswith(("arn:", "${")):
        return False
    # A bare parameter or secret name: compare with the resource part of the ARN pattern; secret ARNs
    # carry a random 6-character suffix after the name.
    name = target.lstrip("/")
    for marker in (":parameter/", ":secret:"):
        if marker in pattern:
            tail = pattern.split(marker, 1)[1]
            if glob(tail, name) or (marker == ":secret:" and glob(tail, f"{name}-AbCdEf")):
                return True
    return False


def readers(targets: Sequence[str], store: str, grants: Sequence[Attachment], resolver: Resolver) -> tuple[str, ...]:
    """Principals with an Allow (and no Deny) to read a parameter/secret known by any of ``targets``.

    ``targets`` are qualified strings (see :meth:`Resolver.qualified`) or bare names; ``store`` is
    ``ssm`` or ``secretsmanager`` (anything else checks the read actions of both).
    """
    read_actions = READ_ACTIONS.get(store) or READ_ACTIONS["ssm"] + READ_ACTIONS["secretsmanager"]
    allowed: set[str] = set()
    denied: set[str] = set()
    for grant in grants:
        for statement in _statements(grant.document):
            actions = texts(statement.get("Action"))
            if not any(glob(action, wanted, ignore_case=True) for action in actions for wanted in read_actions):
                continue
            resources = [resolver.qualified(item, grant.stack) for item in as_list(statement.get("Resource"))]
            if any(resource_matches(resource, target) for resource in resources for target in targets):
                (denied if statement.get("Effect") == "Deny" else allowed).add(grant.principal)
    return tuple(sorted(allowed - denied))
