"""App resources declared in the stage file (``resources:``): buckets, queues, topics and SES sending identities.

A service names the resources it uses and how (``services.<name>.uses: {uploads: write, emails: consume}``); every
target then gives that service the resource's plain settings (``UPLOADS_BUCKET``, ``EMAILS_QUEUE_URL`` ...) and
grants its role exactly that access (``resource_permissions`` -> ``Service.permissions``). Physical names are
deterministic, so settings and grants are literal: no target stack refers to the resources stack.

| kind | physical name | settings | access |
|---|---|---|---|
| bucket | ``<app>-<stage>-<name>-<account>-<region>`` (at most 63) | ``<NAME>_BUCKET`` | read, write |
| queue | ``<app>-<stage>-<name>`` (+ ``-dlq``) | ``<NAME>_QUEUE_URL`` | send, consume |
| topic | ``<app>-<stage>-<name>`` | ``<NAME>_TOPIC_ARN`` | publish |
| email | the domain (an SES identity) | ``<NAME>_EMAIL_DOMAIN`` | send |
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from config.schema import AppConfig, ServiceSpec

Access = Literal["read", "write", "publish", "consume", "send"]
ResourceKind = Literal["bucket", "queue", "topic", "email"]
# The key under resources: -> the kind of what it declares, and the access levels that kind has.
SECTIONS: dict[str, ResourceKind] = {"buckets": "bucket", "queues": "queue", "topics": "topic", "email": "email"}
ACCESS: dict[ResourceKind, tuple[Access, ...]] = {
    "bucket": ("read", "write"),
    "queue": ("send", "consume"),
    "topic": ("publish",),
    "email": ("send",),
}
SETTING_SUFFIX: dict[ResourceKind, str] = {
    "bucket": "BUCKET",
    "queue": "QUEUE_URL",
    "topic": "TOPIC_ARN",
    "email": "EMAIL_DOMAIN",
}
# Least privilege, per access level (names as the IAM reference spells them; checked by config/permissions.py).
BUCKET_LIST = ("s3:ListBucket",)  # on the bucket ARN
BUCKET_READ = ("s3:GetObject",)  # on its objects
BUCKET_WRITE = ("s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject")  # on its objects
QUEUE_SEND = ("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage")
QUEUE_CONSUME = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
)
# Topics are encrypted with the AWS-managed key aws/sns, whose key policy lets any principal of the account use it
# through SNS: a publisher needs sns:Publish only (a customer-managed key would need kms:GenerateDataKey* and
# kms:Decrypt on a key ARN that is not known before deploy).
TOPIC_PUBLISH = ("sns:Publish",)
EMAIL_SEND = ("ses:SendEmail", "ses:SendRawEmail")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")
MAX_BUCKET_NAME = 63
MAX_QUEUE_NAME = 80
ACCOUNT_LENGTH = 12  # an account id always has 12 digits (known before resolve_account fills a placeholder)
RESERVED_PREFIXES = ("AWS_", "ECS_", "KUBERNETES_")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)


class BucketCors(_Model):
    """Browsers on ``origins`` may call the bucket directly (presigned uploads and downloads)."""

    origins: list[str] = Field(min_length=1, description="exact origins, e.g. https://shop.example.com (no '*')")
    methods: list[Literal["GET", "PUT", "POST", "HEAD", "DELETE"]] = Field(min_length=1)
    max_age_seconds: int = Field(default=3000, ge=0, le=86400)

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        problems = [
            f"@{index}@ [cors-wildcard] not one exact origin; write scheme://host[:port], e.g. https://shop.example.com"
            for index, origin in enumerate(value)
            if not ORIGIN.match(origin)
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return value


class BucketSpec(_Model):
    """A private, encrypted, TLS-only S3 bucket (versioned unless ``versioned: false``)."""

    versioned: bool = True
    expire_noncurrent_days: int = Field(default=30, ge=1, le=3650, description="old object versions kept this long")
    cors: BucketCors | None = None


class QueueSpec(_Model):
    """An encrypted, TLS-only SQS queue with a dead-letter queue and alarms on the oldest message and dead letters."""

    visibility_timeout_seconds: int = Field(default=30, ge=0, le=43200)
    max_receives: int = Field(default=5, ge=1, le=1000, description="receives before a message moves to the DLQ")
    retention_days: int = Field(default=4, ge=1, le=14)
    oldest_message_alarm_seconds: int = Field(default=600, ge=60, description="alarm when a message waits longer")


class QueueScaling(_Model):
    """A worker's task count follows the backlog of a queue it consumes (ECS and the EB stack's Fargate workers)."""

    queue: str = Field(description="a queue of resources.queues the worker consumes")
    messages_per_task: int = Field(default=100, ge=1, le=100_000, description="one more task per this many waiting")


class TopicSpec(_Model):
    """An SNS topic, encrypted (aws/sns) and TLS-only; subscriptions are the subscribers' business."""

    display_name: str | None = Field(default=None, max_length=100)


class EmailSpec(_Model):
    """An SES identity for sending from ``domain`` (DKIM records in the stage's hosted zone, else as outputs)."""

    domain: str

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not DOMAIN.match(value):
            raise ValueError("[config] not a domain name; write it lowercase, e.g. shop.example.com")
        return value


class ResourcesConfig(_Model):
    buckets: dict[str, BucketSpec] = Field(default_factory=dict)
    queues: dict[str, QueueSpec] = Field(default_factory=dict)
    topics: dict[str, TopicSpec] = Field(default_factory=dict)
    email: dict[str, EmailSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> ResourcesConfig:
        problems: list[str] = []
        seen: dict[str, str] = {}
        for section in SECTIONS:
            for name in getattr(self, section):
                if not NAME.match(name) or name.endswith("-"):
                    problems.append(
                        f"@{section}.{name}@ [config] a resource name is lowercase letters, digits and '-' (not at "
                        "the end), at most 30 characters"
                    )
                elif setting_name(name, "bucket").startswith(RESERVED_PREFIXES):
                    problems.append(
                        f"@{section}.{name}@ [reserved-setting-name] its setting would start with "
                        f"{setting_name(name, 'bucket').split('_')[0]}_, a prefix the platforms set; rename it"
                    )
                if name in seen:
                    problems.append(
                        f"@{section}.{name}@ [config] also declared under {seen[name]}; a service uses a resource by "
                        "its name, so names are unique across buckets, queues, topics and email"
                    )
                seen.setdefault(name, section)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def declared(self) -> dict[str, ResourceKind]:
        """Every declared resource: name -> kind, in the file's order (buckets, queues, topics, email)."""
        return {name: kind for section, kind in SECTIONS.items() for name in getattr(self, section)}

    def __bool__(self) -> bool:
        return bool(self.declared())


def setting_name(name: str, kind: ResourceKind) -> str:
    """``uploads`` (bucket) -> ``UPLOADS_BUCKET``; ``email-jobs`` (queue) -> ``EMAIL_JOBS_QUEUE_URL``."""
    return f"{name.upper().replace('-', '_')}_{SETTING_SUFFIX[kind]}"


def bucket_name(config: AppConfig, name: str, account: str | None = None) -> str:
    return f"{config.app}-{config.stage}-{name}-{account or config.account}-{config.region}"


def queue_name(config: AppConfig, name: str) -> str:
    return config.stack_name(name)  # <app>-<stage>-<name>, as topics


def dead_letter_queue_name(config: AppConfig, name: str) -> str:
    return f"{queue_name(config, name)}-dlq"


def topic_name(config: AppConfig, name: str) -> str:
    return config.stack_name(name)


def queue_arn(config: AppConfig, name: str) -> str:
    return f"arn:{config.partition}:sqs:{config.region}:{config.account}:{queue_name(config, name)}"


def queue_url(config: AppConfig, name: str) -> str:
    return f"https://sqs.{config.region}.amazonaws.com/{config.account}/{queue_name(config, name)}"


def topic_arn(config: AppConfig, name: str) -> str:
    return f"arn:{config.partition}:sns:{config.region}:{config.account}:{topic_name(config, name)}"


def email_identity_arn(config: AppConfig, domain: str) -> str:
    return f"arn:{config.partition}:ses:{config.region}:{config.account}:identity/{domain}"


def resource_setting(config: AppConfig, name: str) -> tuple[str, str]:
    """(setting name, plain value) a service using resource ``name`` receives."""
    kind = config.resources.declared()[name]
    value = {
        "bucket": lambda: bucket_name(config, name),
        "queue": lambda: queue_url(config, name),
        "topic": lambda: topic_arn(config, name),
        "email": lambda: config.resources.email[name].domain,
    }[kind]()
    return setting_name(name, kind), value


def resource_environment(config: AppConfig, uses: tuple[tuple[str, Access], ...]) -> dict[str, str]:
    """The plain settings of the resources a service uses (every target passes them next to its runtime values)."""
    declared = config.resources.declared()
    return dict(resource_setting(config, name) for name, _ in uses if name in declared)


def resource_permissions(
    config: AppConfig, uses: tuple[tuple[str, Access], ...]
) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """The (actions, resources) statements that give a service exactly the access it declares under ``uses``."""
    declared = config.resources.declared()
    out: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for name, access in uses:
        kind = declared.get(name)
        if kind == "bucket":
            arn = f"arn:{config.partition}:s3:::{bucket_name(config, name)}"
            if access == "read":
                out += [(BUCKET_LIST, (arn,)), (BUCKET_READ, (f"{arn}/*",))]
            elif access == "write":
                out.append((BUCKET_WRITE, (f"{arn}/*",)))
        elif kind == "queue" and access in ("send", "consume"):
            out.append((QUEUE_SEND if access == "send" else QUEUE_CONSUME, (queue_arn(config, name),)))
        elif kind == "topic" and access == "publish":
            out.append((TOPIC_PUBLISH, (topic_arn(config, name),)))
        elif kind == "email" and access == "send":
            out.append((EMAIL_SEND, (email_identity_arn(config, config.resources.email[name].domain),)))
    return tuple(out)


def resource_problems(config: AppConfig, specs: dict[str, ServiceSpec]) -> Iterator[tuple[str, str]]:
    """(path, ``[id] text``) for each resource declaration or use the stage cannot have."""
    declared = config.resources.declared()
    sections = {kind: section for section, kind in SECTIONS.items()}
    if declared and not config.services:
        yield (
            "resources",
            "[config] resources are used by name from services.<name>.uses; declare services: (e.g. web: {kind: web, "
            "uses: {<resource>: <access>}}) or remove resources:",
        )
        return
    used: set[str] = set()
    for service, spec in specs.items():
        for name, access in spec.uses.items():
            path = f"services.{service}.uses.{name}"
            kind = declared.get(name)
            if kind is None:
                known = ", ".join(declared) or "none"
                yield (
                    path,
                    f"[resource-undeclared] the stage declares no resource {name!r} (declared: {known}); declare it "
                    "under resources.buckets / queues / topics / email, or fix the name",
                )
                continue
            used.add(name)
            if access not in ACCESS[kind]:
                yield (
                    path,
                    f"[config] {access!r} is not an access of a {kind} (resources.{sections[kind]}.{name}); use "
                    f"{' or '.join(ACCESS[kind])}",
                )
    for service, spec in specs.items():
        scaling = spec.scale_on_queue
        if scaling is None:
            continue
        path = f"services.{service}.scale_on_queue.queue"
        if spec.kind != "worker":
            yield path, f"[config] only a worker scales on a queue; this is a {spec.kind}"
        elif spec.uses.get(scaling.queue) != "consume" or declared.get(scaling.queue) != "queue":
            yield (
                path,
                f"[config] {service} does not consume a queue {scaling.queue!r}; declare it under resources.queues "
                f"and add uses: {{{scaling.queue}: consume}}",
            )
    for name, kind in declared.items():
        path = f"resources.{sections[kind]}.{name}"
        if name not in used:
            yield (
                path,
                f"[resource-unused] no service uses it; add it to a service's uses: ({name}: "
                f"{ACCESS[kind][0]}) or remove it",
            )
        setting = setting_name(name, kind)
        if setting in config.settings:
            yield (
                f"settings.{setting}",
                f"[reserved-setting-name] the services using {path} receive {setting} from the deployment; "
                "remove the setting",
            )
        if kind == "bucket":
            length = len(bucket_name(config, name, account="0" * ACCOUNT_LENGTH))
            if length > MAX_BUCKET_NAME:
                yield (
                    path,
                    f"[config] its bucket name <app>-<stage>-{name}-<account>-<region> has {length} characters, S3 "
                    f"allows {MAX_BUCKET_NAME}; shorten the resource name by {length - MAX_BUCKET_NAME}",
                )
        if kind == "queue" and len(dead_letter_queue_name(config, name)) > MAX_QUEUE_NAME:
            yield path, f"[config] its dead-letter queue name exceeds {MAX_QUEUE_NAME} characters; shorten the name"
