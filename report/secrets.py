"""Secrets map: setting -> parameter/secret -> consumer and the IAM principals that can read it, with what kind
of value it is (generated / provided / composed / part) and how often the credential behind it rotates.

Sources: ECS container ``Secrets`` (consumer: the task execution role), Elastic Beanstalk
``environmentsecrets`` options (consumer: the instance profile role) and Kubernetes ``ExternalSecret``
objects (consumer: the secret store; readers are matched on the remote key as a name).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from config.kinds import parameter_family
from report.assembly import K8sObject, Stack, eb_options, k8s_name
from report.iam import Attachment, attachments, readers
from report.intrinsics import as_list, fmt, intrinsic
from report.resolve import Resolver, construct_path, resource_key

STORE_TYPES = {"AWS::SecretsManager::Secret": "secretsmanager", "AWS::SSM::Parameter": "ssm"}
SECURE_PARAMETER = "SecureParameter"  # custom resources writing SecureString parameters
EB_SECRETS = "aws:elasticbeanstalk:application:environmentsecrets"
EB_INSTANCE_PROFILE = ("aws:autoscaling:launchconfiguration", "IamInstanceProfile")


@dataclass(frozen=True)
class SecretUse:
    """A setting injected from a parameter or secret, who consumes it and who can read it.

    ``consumer_can_read`` is None when the consumer is unknown or not an IAM role in the assembly. ``kind``:
    generated / provided / composed / part (``?`` when no parameter of the assembly writes it); ``rotation``:
    how the value changes (``every 30 days``, ``make secret``, ``never``).
    """

    target: str
    stack: str
    source: str
    setting: str
    reference: str
    store: str
    consumer: str
    readers: tuple[str, ...]
    consumer_can_read: bool | None
    kind: str = "?"
    rotation: str = ""


def _families(stacks: Sequence[Stack], resolver: Resolver) -> dict[str, tuple[str, str]]:
    """``{parameter name: (kind family, rotation)}`` from the ``Custom::SecureParameter`` resources and the
    rotation schedules of the secrets they are composed from."""
    schedules: dict[str, str] = {}
    for stack in stacks:
        for _, properties in stack.of_type("AWS::SecretsManager::RotationSchedule"):
            rules = properties.get("RotationRules") or {}
            every = rules.get("ScheduleExpression") or (
                f"rate({rules['AutomaticallyAfterDays']} days)" if "AutomaticallyAfterDays" in rules else ""
            )
            schedules[resolver.qualified(properties.get("SecretId"), stack)] = _every(str(every))
    found: dict[str, tuple[str, str]] = {}
    for stack in stacks:
        for _, properties in stack.of_type(f"Custom::{SECURE_PARAMETER}"):
            kind, name = str(properties.get("Kind")), fmt(properties.get("Name"))
            if kind in ("generated", "provided"):
                found[name] = (kind, "make secret" if kind == "provided" else "never (generated once)")
                continue
            family = parameter_family(kind)
            source = properties.get("SecretArn")
            rotation = (
                schedules.get(resolver.qualified(source, stack), "not rotated") if source else "with the endpoint"
            )
            found[name] = (f"{family} ({kind})", rotation)
    return found


def _every(expression: str) -> str:
    """``rate(30 days)`` -> ``every 30 days``; anything else as written."""
    inner = expression.removeprefix("rate(").removesuffix(")")
    return f"every {inner}" if inner != expression else expression or "rotated"


def _store_of(resource_type: str) -> str:
    if resource_type.startswith("Custom::") and SECURE_PARAMETER in resource_type:
        return "ssm"
    return STORE_TYPES.get(resource_type, "?")


def _store(value: Any, stack: Stack, resolver: Resolver) -> str:
    """``ssm`` / ``secretsmanager`` / ``?`` for a CloudFormation parameter or secret reference."""
    qualified = resolver.qualified(value, stack)
    for store in ("secretsmanager", "ssm"):
        if f":{store}:" in qualified:
            return store
    fn = intrinsic(value)
    parts = as_list(fn[1][1]) if fn and fn[0] == "Fn::Join" and len(as_list(fn[1])) == 2 else [value]
    for part in parts:
        resource = resolver.target(part, stack)
        if resource is not None:
            return _store_of(resource.type)
    # ECS accepts a bare parameter name for SSM; Secrets Manager always needs an ARN.
    return "?" if qualified.startswith(("arn:", "${")) else "ssm"


def _cfn_settings(stack: Stack, resolver: Resolver) -> Iterator[tuple[str, str, Any, Any, str]]:
    """``(target, source, setting, value, consumer)`` for ECS task definitions and Beanstalk environments."""
    for logical_id, properties in stack.of_type("AWS::ECS::TaskDefinition"):
        family = construct_path(stack, logical_id) or resolver.name(properties, "Family", logical_id, stack)
        role = properties.get("ExecutionRoleArn")
        consumer = resolver.principal(role, stack) if role is not None else ""
        for container in as_list(properties.get("ContainerDefinitions")):
            for secret in as_list(container.get("Secrets")):
                target = f"{family}/{fmt(container.get('Name'))}"
                yield target, "ECS", secret.get("Name"), secret.get("ValueFrom"), consumer
    for logical_id, properties in stack.of_type("AWS::ElasticBeanstalk::Environment"):
        name = resolver.name(properties, "EnvironmentName", construct_path(stack, logical_id) or logical_id, stack)
        options = eb_options(properties)
        profile = options.get(EB_INSTANCE_PROFILE)
        consumer = resolver.principal(profile, stack) if profile is not None else ""
        for (namespace, option), value in sorted(options.items()):
            if namespace == EB_SECRETS:
                yield name, "Elastic Beanstalk", option, value, consumer


def _external_secrets(obj: K8sObject, grants: Sequence[Attachment], resolver: Resolver) -> Iterator[SecretUse]:
    """One row per ``spec.data`` entry (and ``dataFrom.extract``) of an ExternalSecret.

    A remote key that names a secret or parameter of the assembly (its ``Name`` property) is matched
    against IAM grants by that resource too, and takes its store type.
    """
    spec = obj.get("spec") or {}
    store_ref = spec.get("secretStoreRef") or {}
    consumer = f"{store_ref.get('kind', 'SecretStore')}/{store_ref.get('name')}" if store_ref else ""
    entries = [(item.get("secretKey"), item.get("remoteRef") or {}) for item in as_list(spec.get("data"))]
    entries += [("(all keys)", item["extract"]) for item in as_list(spec.get("dataFrom")) if item.get("extract")]
    for setting, remote in entries:
        key = fmt(remote.get("key"))
        reference = f"{key}#{fmt(remote['property'])}" if remote.get("property") else key
        resource = resolver.named(key, lambda resource_type: _store_of(resource_type) != "?")
        targets = [key]
        store = "?"
        if resource is not None:
            targets.append(resolver.qualified({"Ref": resource.logical_id}, resource.stack))
            store = _store_of(resource.type)
        who = readers(targets, store, grants, resolver)
        yield SecretUse(k8s_name(obj), "k8s", "ExternalSecret", fmt(setting), reference, store, consumer, who, None)


def extract_secrets(
    stacks: Sequence[Stack], k8s: Sequence[K8sObject] = (), resolver: Resolver | None = None
) -> list[SecretUse]:
    """Setting -> parameter/secret -> consumer and IAM readers, for ECS, Elastic Beanstalk and ExternalSecrets."""
    resolver = resolver or Resolver(stacks)
    grants = attachments(stacks, resolver)
    roles = {resource_key(stack, logical_id) for stack in stacks for logical_id, _ in stack.of_type("AWS::IAM::Role")}
    families = _families(stacks, resolver)

    def family(reference: str) -> tuple[str, str]:
        return next((v for name, v in families.items() if reference.endswith(name)), ("?", ""))

    uses: list[SecretUse] = []
    for stack in stacks:
        for target, source, setting, value, consumer in _cfn_settings(stack, resolver):
            store = _store(value, stack, resolver)
            who = readers([resolver.qualified(value, stack)], store, grants, resolver)
            reference = resolver.display(value, stack)
            can_read = True if consumer in who else (False if consumer in roles else None)
            uses.append(
                SecretUse(
                    target,
                    stack.name,
                    source,
                    fmt(setting),
                    reference,
                    store,
                    consumer,
                    who,
                    can_read,
                    *family(reference),
                )
            )
    for obj in k8s:
        if obj.get("kind") == "ExternalSecret":
            uses.extend(replace(use, kind=k, rotation=r) for use in _external_secrets(obj, grants, resolver)
                        for k, r in [family(use.reference)])  # fmt: skip
    return sorted(uses, key=lambda use: (use.stack, use.target, use.setting, use.reference))
