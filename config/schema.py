"""Typed, validated stage configuration: one schema for every stage file.

Every model forbids unknown keys. Cross-field rules raise ``ValueError`` whose text starts with the
catalogue id in brackets (``[rds-storage-backup] ...``); ``config.load_config`` turns them into one line
per problem: ``[<id>] <field.path>: <value> — <fix>``.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config.calls import call_problems
from config.permissions import problems as permission_problems
from config.previews import stage_name
from config.redact import CREDENTIAL_URL, SECRET_NAME, SECRET_VALUE
from config.resources import Access, QueueScaling, ResourcesConfig, resource_problems
from config.routes import HOST_PATTERN, MAX_CONDITION_VALUES, MAX_PRIORITY, PATH_PATTERN, shadowing
from config.services import MIGRATE, Service, named_lines, resolve_services, schedule_or_error, web_routes
from config.sizing import instance_memory_gib
from config.zones import zone_letters

# dev, staging, prod, or a preview pr-<number> (config/previews.py): previews behave like dev wherever stages differ.
Stage = Annotated[str, AfterValidator(stage_name)]
Target = Literal["ecs", "eb", "eks"]
UrlScheme = Literal["postgresql+asyncpg", "postgresql+psycopg", "postgresql"]

# Placeholder used for offline synth when neither the stage file nor CDK_DEFAULT_ACCOUNT names an account.
PLACEHOLDER_ACCOUNT = "000000000000"
# Names the deployment itself gives every container (runtime_environment); a setting may not override them.
RUNTIME_NAMES = (
    "PORT",
    "WEB_CONCURRENCY",
    "KEEP_ALIVE_SECONDS",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "HEALTH_PATH",
    "READY_PATH",
    "APP_STAGE",
    "APP_SERVICE",
    "WORKER_CONCURRENCY",
    "AWS_REGION",
    "SETTINGS_REVISION",
)
# Prefixes the platforms inject (AWS SDK configuration, ECS agent metadata): never settings.
RESERVED_PREFIXES = ("AWS_", "ECS_", "KUBERNETES_")
# Subnet tiers of the stage VPC, in the order CDK allocates them, and their prefix lengths.
SUBNET_TIERS: tuple[tuple[str, int], ...] = (("public", 24), ("app", 20), ("data", 24))
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/(?P<repo>[a-z0-9._/-]+)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
ARN_REGION = re.compile(r"^arn:aws[a-z-]*:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d{12}|):")


@cache
def known_regions() -> frozenset[str]:
    """Regions botocore knows about (read from its bundled endpoint data, no network)."""
    import boto3

    session = boto3.session.Session()
    return frozenset(
        region
        for partition in ("aws", "aws-cn", "aws-us-gov")
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


class _Model(BaseModel):
    # strict: YAML's `on`, `1.0` or `true` never turn into a string, a number or a boolean by surprise.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)


def smallest_vpc_prefix(zones: int) -> int:
    """The longest VPC prefix that holds every tier in every zone, allocated as CDK does (in tier order, each
    subnet aligned to its own size)."""
    for prefix in range(28, 15, -1):
        end, size = 0, 2 ** (32 - prefix)
        for _, mask in SUBNET_TIERS:
            block = 2 ** (32 - mask)
            for _ in range(zones):
                end = -(-end // block) * block + block
        if end <= size:
            return prefix
    return 16


class NetworkConfig(_Model):
    cidr: str = "10.0.0.0/16"
    availability_zones: list[str] = Field(min_length=2, max_length=3)
    nat_gateways: int = Field(default=1, ge=0, le=3)
    interface_endpoints: bool = True
    flow_logs_retention_days: int = 90

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            raise ValueError("[config] not an IPv4 network; write it like 10.0.0.0/16") from None
        if network.version != 4:
            raise ValueError("[config] the VPC is IPv4; write an IPv4 network like 10.0.0.0/16")
        if not any(network.subnet_of(r) for r in PRIVATE_RANGES):  # type: ignore[arg-type]
            raise ValueError("[config] not a private range; use 10.x.0.0/16, 172.16-31.0.0/16 or 192.168.0.0/16")
        if network.prefixlen < 16:
            raise ValueError(f"[config] AWS VPCs are /16 at most; use {network.network_address}/16")
        return value

    @field_validator("availability_zones")
    @classmethod
    def _distinct_zones(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(
                "[config] a zone is listed twice: every subnet tier would sit in one zone; list distinct zones"
            )
        return value

    @field_validator("flow_logs_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"[config] {value} is not a CloudWatch Logs retention; use one of {LOG_RETENTION_DAYS}")
        return value

    @model_validator(mode="after")
    def _egress(self) -> NetworkConfig:
        if self.nat_gateways == 0 and not self.interface_endpoints:
            raise ValueError(
                "[private-egress-for-pulls] nat_gateways=0 with interface_endpoints=false leaves private subnets "
                "unable to pull images or read secrets; set nat_gateways >= 1 or interface_endpoints: true"
            )
        if self.nat_gateways > len(self.availability_zones):
            raise ValueError(f"[config] nat_gateways={self.nat_gateways} exceeds the number of availability zones")
        needed = smallest_vpc_prefix(len(self.availability_zones))
        network = ipaddress.ip_network(self.cidr)
        if network.prefixlen > needed:
            wider = network.supernet(new_prefix=needed)
            tiers = " + ".join(f"{name} /{mask}" for name, mask in SUBNET_TIERS)
            raise ValueError(
                f"@cidr@ [config] {len(self.availability_zones)} zones x ({tiers}) need at least a /{needed}; "
                f"use e.g. {wider}"
            )
        return self


class HealthContract(_Model):
    """What every target checks: load balancers and EB use liveness, only k8s readiness uses readiness."""

    liveness_path: str = "/health"
    readiness_path: str = "/ready"
    port: int | None = Field(default=None, ge=1, le=65535, description="defaults to container_port")
    matcher: str = "200"
    interval_seconds: int = Field(default=15, ge=5, le=300)
    timeout_seconds: int = Field(default=5, ge=2, le=120)
    healthy_threshold: int = Field(default=2, ge=2, le=10)
    unhealthy_threshold: int = Field(default=3, ge=2, le=10)
    boot_seconds: int = Field(default=60, ge=0, le=3600, description="worst-case time from start to /health 200")

    @field_validator("liveness_path", "readiness_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or " " in value:
            raise ValueError(f"[alb-health-check-path] {value!r} is not a URL path; use e.g. '/health'")
        return value

    @field_validator("matcher")
    @classmethod
    def _matcher(cls, value: str) -> str:
        if not re.fullmatch(r"\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*", value):
            raise ValueError(f"[alb-health-check-path] matcher {value!r} is not an HTTP code list; use e.g. '200'")
        return value

    @model_validator(mode="after")
    def _shallow_vs_deep(self) -> HealthContract:
        if self.liveness_path == self.readiness_path:
            raise ValueError(
                f"[deep-health-check] liveness_path and readiness_path are both {self.liveness_path!r}; load "
                "balancers must use a shallow liveness path (e.g. /health) and only readiness the deep one (/ready)"
            )
        if self.timeout_seconds >= self.interval_seconds:
            raise ValueError(
                f"[alb-health-check-path] timeout_seconds={self.timeout_seconds} must be below "
                f"interval_seconds={self.interval_seconds}"
            )
        return self

    @property
    def deploy_deadline_seconds(self) -> int:
        """How long one step of a deploy (a new Fargate pod, an EB batch) may go without passing this contract
        before the deploy counts as failed (manual-rollback): EKS ``spec.progressDeadlineSeconds`` and EB's
        ``aws:elasticbeanstalk:command`` ``Timeout`` both read it.

        One new replica needs placement (Fargate pod scheduling with the image pull, or an EC2 launch: up to
        ~2 min) + ``boot_seconds`` + ``healthy_threshold`` checks ``interval_seconds`` apart. The deadline is twice
        that (pulls and placement vary; a false deadline rolls back a good release) and never below 600 s, the
        default of both progressDeadlineSeconds and EB's Timeout, so it is never less patient than the platforms.
        """
        placement_seconds = 120
        ready = placement_seconds + self.boot_seconds + self.healthy_threshold * self.interval_seconds
        return max(600, 2 * ready)


SecretKind = Literal["generated", "provided", "database_url", "redis_url", "database_password", "redis_token"]
FromKind = Literal["database_host", "database_port", "database_name", "database_user", "redis_host", "redis_port"]


class SecretRef(_Model):
    """A setting whose value lives in Parameter Store as a SecureString: ``generated`` by the deploy (random,
    never overwritten), ``provided`` by the team (``make secret``; the deploy fails while it is missing), or
    composed by the deploy from the database / Redis credentials (``database_url``, ``redis_url``,
    ``database_password``, ``redis_token``), rewritten whenever those credentials rotate."""

    secret: SecretKind
    length: int = Field(default=64, description="only for generated secrets")

    @field_validator("length")
    @classmethod
    def _length(cls, value: int) -> int:
        if value < 32:
            raise ValueError(f"[secret-key-weak] length {value} is below 32 characters; use length: 64 (the default)")
        if value > 1024:
            raise ValueError(f"[config] length {value} is above 1024; use length: 64 (the default)")
        return value

    @model_validator(mode="after")
    def _length_only_generated(self) -> SecretRef:
        if self.length != 64 and self.secret != "generated":
            raise ValueError(f"[config] length is for generated secrets; a {self.secret} secret has no length")
        return self


class FromRef(_Model):
    """A plain setting filled by the deployment with a part of the stage's database or Redis connection, for
    apps that read ``DB_HOST``, ``DB_PORT`` ... separately. Delivered through Parameter Store (as a String
    parameter) like the secrets, because ``database_user`` alternates between two users when the credentials
    rotate and every part follows a replaced or restored database."""

    model_config = ConfigDict(populate_by_name=True)

    from_: FromKind = Field(alias="from")


SettingValue = Annotated[
    Annotated[str, Tag("plain")] | Annotated[SecretRef, Tag("secret")] | Annotated[FromRef, Tag("from")],
    Discriminator(
        lambda value: (
            "secret"
            if isinstance(value, SecretRef) or (isinstance(value, dict) and not {"from", "from_"} & set(value))
            else "from"
            if isinstance(value, dict | FromRef)
            else "plain"
        )
    ),
]


def parameter_kind(value: SecretRef | FromRef) -> str:
    """The kind of Parameter Store value a setting is (``config.kinds``): one name read by the deploy's handler,
    the guards and the review."""
    return value.secret if isinstance(value, SecretRef) else value.from_


class DatabaseConfig(_Model):
    engine_version: str = "17.6"
    instance_class: str = "t4g.micro"
    database_name: str = "app"
    username: str = Field(default="app", description="the master user: admin, bootstrap and rotation only")
    app_username: str = Field(
        default="app_user",
        pattern=r"^[a-z_][a-z0-9_]{0,56}$",
        description="the user the app connects as; rotation alternates it with <app_username>_clone",
    )
    rotation_days: int | None = Field(
        default=30, ge=1, le=365, description="rotate the master and app credentials this often; null: never"
    )
    url_scheme: UrlScheme = "postgresql+asyncpg"
    allocated_storage_gib: int = Field(default=20, ge=20, le=65536)
    max_allocated_storage_gib: int = Field(default=100, ge=20, le=65536)
    multi_az: bool = False
    backup_retention_days: int = Field(default=7, le=35)
    deletion_protection: bool = False
    slow_query_ms: int = Field(default=1000, ge=0, le=60000, description="log_min_duration_statement")
    monitoring_interval_seconds: Literal[0, 1, 5, 10, 15, 30, 60] = Field(
        default=60, description="RDS enhanced monitoring (OS metrics) interval; 0 turns it off"
    )

    @field_validator("engine_version")
    @classmethod
    def _engine(cls, value: str) -> str:
        match = re.fullmatch(r"(\d+)(\.\d+)?", value)
        if not match or int(match.group(1)) < 15:
            raise ValueError(f"[config] PostgreSQL {value!r} is not supported; use a current major such as '17.6'")
        return value

    @field_validator("instance_class")
    @classmethod
    def _class(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9]+", value):
            raise ValueError(f"[config] {value!r} is not an instance class; write it without 'db.', e.g. 't4g.micro'")
        if instance_memory_gib(value) is None:
            raise ValueError(f"[config] {value!r}: unknown size; use a t, m, r, x or z class such as 't4g.micro'")
        return value

    @field_validator("backup_retention_days")
    @classmethod
    def _backups(cls, value: int) -> int:
        if value < 7:
            raise ValueError(f"[rds-storage-backup] backups kept {value} days; keep at least 7")
        return value

    @model_validator(mode="after")
    def _autoscaling(self) -> DatabaseConfig:
        if self.app_username in (self.username, f"{self.username}_clone") or self.app_username.endswith("_clone"):
            raise ValueError(
                f"@app_username@ [config] {self.app_username!r} must differ from the master user {self.username!r} "
                "and not end in _clone (rotation names the second user <app_username>_clone)"
            )
        if self.max_allocated_storage_gib <= self.allocated_storage_gib:
            raise ValueError(
                f"[rds-storage-backup] max_allocated_storage_gib={self.max_allocated_storage_gib} must exceed "
                f"allocated_storage_gib={self.allocated_storage_gib} so storage can autoscale"
            )
        return self

    @property
    def major_version(self) -> str:
        return self.engine_version.split(".")[0]


class CacheConfig(_Model):
    node_type: str = "cache.t4g.micro"
    engine_version: str = "7.1"
    replicas: int = Field(default=0, ge=0, le=5, description="read replicas next to the primary")
    rotation_days: int | None = Field(
        default=30, ge=1, le=365, description="rotate the AUTH token this often (two-token scheme); null: never"
    )

    @field_validator("node_type")
    @classmethod
    def _node(cls, value: str) -> str:
        if not re.fullmatch(r"cache\.[a-z0-9]+\.[a-z0-9]+", value):
            raise ValueError(f"[config] {value!r} is not a node type; use e.g. 'cache.t4g.micro'")
        return value


class AlarmsConfig(_Model):
    """Alarms are a required decision: e-mail addresses, an existing topic, or an explicit 'none' reason."""

    emails: list[str] = Field(default_factory=list)
    topic_arn: str | None = None
    none_reason: str | None = None

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}", email):
                raise ValueError(f"[config] {email[:60]!r} is not an e-mail address; write it like oncall@example.com")
        lowered = [email.lower() for email in value]
        if len(set(lowered)) != len(lowered):
            raise ValueError("[config] an address is listed twice; list each once (one subscription each)")
        return value

    @model_validator(mode="after")
    def _one_decision(self) -> AlarmsConfig:
        chosen = [bool(self.emails), self.topic_arn is not None, self.none_reason is not None]
        if sum(chosen) != 1:
            raise ValueError(
                "[alarm-5xx-misconfigured] choose exactly one of emails: [...], topic_arn: <SNS ARN> or "
                "none_reason: <why nobody is notified>"
            )
        if self.none_reason is not None and len(self.none_reason) < 10:
            raise ValueError("[alarm-5xx-misconfigured] none_reason must say why nobody is notified (10+ chars)")
        return self


DNS_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}")
HOSTED_ZONE_ID = re.compile(r"Z[A-Z0-9]{1,32}")


class DomainConfig(_Model):
    """The stage's name and its certificate: an ACM ``certificate_arn`` (DNS records managed elsewhere), or a Route 53
    zone (``hosted_zone_id`` + ``hosted_zone_name``) in which each target stack creates its own DNS-validated
    certificate and its record (README "Domain")."""

    name: str
    certificate_arn: str | None = None
    hosted_zone_id: str | None = None
    hosted_zone_name: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not DNS_NAME.fullmatch(value):
            raise ValueError(f"[config] {value!r} is not a DNS name")
        return value

    @field_validator("hosted_zone_name")
    @classmethod
    def _zone_name(cls, value: str | None) -> str | None:
        if value is not None and not DNS_NAME.fullmatch(value.removesuffix(".")):
            raise ValueError(f"[config] {value!r} is not a DNS name; write the zone like example.com")
        return value.removesuffix(".") if value is not None else None

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone_id(cls, value: str | None) -> str | None:
        if value is not None and not HOSTED_ZONE_ID.fullmatch(value):
            raise ValueError(
                f"[config] {value!r} is not a Route 53 hosted zone id; copy the Id (Z followed by capitals and digits, "
                "without /hostedzone/) from `aws route53 list-hosted-zones-by-name`"
            )
        return value

    @model_validator(mode="after")
    def _one_certificate(self) -> DomainConfig:
        if (self.certificate_arn is None) == (self.hosted_zone_id is None):
            raise ValueError(
                "[tls-certificate] set exactly one of certificate_arn (an ACM certificate you issued; DNS records "
                "managed elsewhere) or hosted_zone_id + hosted_zone_name (each target creates its certificate "
                "and record in that Route 53 zone)"
            )
        if (self.hosted_zone_id is None) != (self.hosted_zone_name is None):
            raise ValueError(
                "[config] hosted_zone_id and hosted_zone_name go together: the zone's id and its name, e.g. example.com"
            )
        zone = self.hosted_zone_name
        if zone is not None and self.name == zone:
            raise ValueError(
                f"[config] {self.name!r} is the apex of the zone; name a subdomain such as api.{zone} (the Elastic "
                "Beanstalk record is a CNAME, which DNS forbids at the apex)"
            )
        if zone is not None and not self.name.endswith("." + zone):
            raise ValueError(
                f"[config] {self.name!r} is not inside hosted_zone_name {zone!r}; name a subdomain of the zone "
                "(e.g. api." + zone + ") or use the zone that holds the name"
            )
        return self

    @property
    def managed(self) -> bool:
        """True when the stacks create the certificates and records in the hosted zone."""
        return self.hosted_zone_id is not None

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = ARN_REGION.match(value)
        if not match or match["service"] != "acm" or ":certificate/" not in value:
            raise ValueError(f"[tls-certificate] {value!r} is not an ACM certificate ARN")
        return value


# Valid Fargate task sizes: cpu units -> allowed memory MiB (fargate-memory-oom).
FARGATE_SIZES: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


class ServerConfig(_Model):
    """How the app server runs inside each container/instance; read by every target and by the guards."""

    workers: int = Field(default=2, ge=1, le=32, description="worker processes per container")
    keep_alive_seconds: int = Field(default=75, ge=5, le=4000, description="app server keep-alive (e.g. uvicorn)")
    # Defaults fit the default database (t4g.micro: 89 of 112 connections) with 4 tasks, their deploy surge (8)
    # and the migration task: 8 x 2 x (2 + 2) + 4 = 68 (db-connection-exhaustion).
    db_pool_size: int = Field(default=2, ge=1, le=100, description="SQLAlchemy pool_size per process")
    db_max_overflow: int = Field(default=2, ge=0, le=100, description="SQLAlchemy max_overflow per process")

    @property
    def connections_per_unit(self) -> int:
        return self.workers * (self.db_pool_size + self.db_max_overflow)


WAF_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesLinuxRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesAnonymousIpList",
    "AWSManagedRulesBotControlRuleSet",
)


class WafConfig(_Model):
    """AWS WAF in front of the stage's ALB: AWS managed rule groups, in the order listed (each blocks what it
    matches; everything else is allowed)."""

    managed_rules: list[Literal[WAF_RULE_GROUPS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"],
        min_length=1,
    )


class LoadBalancerConfig(_Model):
    allowed_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    idle_timeout_seconds: int = Field(default=60, ge=1, le=4000)
    waf: WafConfig | None = Field(default=None, description="AWS WAF with AWS managed rule groups on the ALB")

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        problems = []
        for index, cidr in enumerate(value):
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append(f"@{index}@ [config] not an IPv4 CIDR; write it like 203.0.113.0/24")
                continue
            if network.version != 4:
                problems.append(f"@{index}@ [config] IPv6 is not served by this ALB; list IPv4 CIDRs")
            elif str(network) != cidr:
                problems.append(f"@{index}@ [config] host bits are set; write the network: {network}")
        if len(set(value)) != len(value):
            problems.append("@@ [config] a CIDR is listed twice; list each once")
        if problems:
            raise ValueError("\n".join(problems))
        return value


class EcsSizing(_Model):
    """How many Fargate tasks of one service run, and how big they are."""

    cpu: int = 512
    memory_mib: int = 1024
    min_tasks: int = Field(default=2, ge=1, le=100)
    max_tasks: int = Field(default=4, ge=1, le=200)
    cpu_target_percent: int = Field(default=60, ge=10, le=90)
    requests_per_target: int = Field(default=500, ge=1, description="per minute, for request-count scaling (web)")
    max_percent: int = Field(
        default=200, ge=110, le=200, description="deploy surge: running tasks during a deploy, % of the desired count"
    )

    @property
    def surge_tasks(self) -> int:
        """The most tasks that can run at once: max_tasks during a deploy at ``max_percent``."""
        return -(-self.max_tasks * self.max_percent // 100)

    @model_validator(mode="after")
    def _size(self) -> EcsSizing:
        allowed = FARGATE_SIZES.get(self.cpu)
        if allowed is None:
            raise ValueError(
                f"[fargate-memory-oom] cpu={self.cpu} is not a Fargate size; use one of {list(FARGATE_SIZES)}"
            )
        if self.memory_mib not in allowed:
            raise ValueError(
                f"[fargate-memory-oom] memory_mib={self.memory_mib} is not valid with cpu={self.cpu}; use "
                f"{allowed.start}..{allowed.stop - 1} in steps of {allowed.step}"
            )
        if self.max_tasks < self.min_tasks:
            raise ValueError(f"[config] max_tasks={self.max_tasks} is below min_tasks={self.min_tasks}")
        return self


class EcsConfig(EcsSizing):
    """The ECS target: the web service's sizing (services may override it) and ECS Exec."""

    exec_enabled: bool = False


# Docker on Amazon Linux 2023: the only platform family this project deploys to Elastic Beanstalk.
EB_SOLUTION_STACK = re.compile(r"^64bit Amazon Linux 2023 v4\.\d+\.\d+ running Docker$")


class EbConfig(_Model):
    """Elastic Beanstalk target (Docker on AL2023 behind an ALB).

    ``solution_stack`` is pinned here; EB retires superseded versions for new environments, so refresh it when
    ``doctor`` says it is no longer offered (managed platform updates keep running environments current).
    """

    solution_stack: str = "64bit Amazon Linux 2023 v4.7.5 running Docker"
    instance_type: str = "t3.small"
    min_instances: int = Field(default=1, ge=1, le=100)
    max_instances: int = Field(default=3, ge=1, le=200)
    deployment_policy: Literal["RollingWithAdditionalBatch", "Immutable"] = "RollingWithAdditionalBatch"

    @property
    def surge_instances(self) -> int:
        """The most instances during a deploy: one extra batch of one, or a whole second group when immutable."""
        return self.max_instances * 2 if self.deployment_policy == "Immutable" else self.max_instances + 1

    @field_validator("solution_stack")
    @classmethod
    def _stack(cls, value: str) -> str:
        if not EB_SOLUTION_STACK.match(value):
            raise ValueError(
                f"[eb-solution-stack-retired] {value!r} is not a Docker AL2023 solution stack; use a name matching "
                f"{EB_SOLUTION_STACK.pattern} (aws elasticbeanstalk list-available-solution-stacks)"
            )
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9]+", value):
            raise ValueError(f"[config] {value!r} is not an EC2 instance type such as 't3.small'")
        return value

    @model_validator(mode="after")
    def _capacity(self) -> EbConfig:
        if self.max_instances < self.min_instances:
            raise ValueError(f"[config] max_instances={self.max_instances} is below min_instances={self.min_instances}")
        return self


# Kubernetes resource quantities as written in manifests (fargate-memory-oom compares them as strings).
K8S_CPU = re.compile(r"^\d+m$|^\d+(\.\d+)?$")
K8S_MEMORY = re.compile(r"^\d+(Mi|Gi)$")


class EksSizing(_Model):
    """How many pods of one service run, and how big they are (requests == limits on Fargate)."""

    min_replicas: int = Field(default=2, ge=1, le=100)
    max_replicas: int = Field(default=4, ge=1, le=200)
    cpu: str = Field(default="500m", description="k8s quantity; requests == limits on Fargate")
    memory: str = Field(default="1Gi", description="k8s quantity (Mi or Gi); requests == limits on Fargate")
    cpu_target_percent: int = Field(default=60, ge=10, le=90)

    @property
    def surge_replicas(self) -> int:
        """The most pods that can run at once: max_replicas plus the rollout's maxSurge of 1."""
        return self.max_replicas + 1

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str) -> str:
        if not K8S_CPU.match(value):
            raise ValueError(f"[fargate-memory-oom] cpu {value!r} is not a k8s quantity; use e.g. '500m' or '1'")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not K8S_MEMORY.match(value):
            raise ValueError(f"[fargate-memory-oom] memory {value!r} is not a k8s quantity; use e.g. '1Gi' or '512Mi'")
        return value

    @model_validator(mode="after")
    def _replicas(self) -> EksSizing:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"[config] max_replicas={self.max_replicas} is below min_replicas={self.min_replicas}")
        return self


class EksConfig(EksSizing):
    """The EKS Fargate target: one cluster per stage, the app in its own namespace with an IRSA service account;
    the sizing fields are the web service's (services may override them)."""

    kubernetes_version: Literal["1.33"] = "1.33"
    namespace: str = Field(default="app", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    service_account: str = Field(default="app", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    endpoint_access: Literal["private", "public_and_private"] = "private"
    identity: Literal["irsa", "pod_identity"] = "irsa"

    @field_validator("identity")
    @classmethod
    def _identity(cls, value: str) -> str:
        if value == "pod_identity":
            raise ValueError(
                "[pod-identity-on-fargate] EKS Pod Identity does not work for Fargate pods (its agent is a "
                "DaemonSet); use irsa"
            )
        return value


OPERATOR_ROLE_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::(?P<account>\d{12}):role/(?P<name>[\w+=,.@/-]{1,512})$")


class OperatorsConfig(_Model):
    """Who may open a shell in the stage (``make shell``): IAM roles of the stage's account that may assume the
    stage's operator role ``<app>-<stage>-operator``. Setting it turns ECS Exec on (sessions logged, encrypted)."""

    role_arns: list[str] = Field(min_length=1, max_length=20, description="arn:aws:iam::<account>:role/<name>")

    @field_validator("role_arns")
    @classmethod
    def _arns(cls, value: list[str]) -> list[str]:
        problems = []
        for index, arn in enumerate(value):
            if "*" in arn or "?" in arn:
                problems.append(
                    f"@{index}@ [config] a wildcard would let every matching role in; list each role ARN exactly"
                )
            elif not OPERATOR_ROLE_ARN.match(arn):
                problems.append(
                    f"@{index}@ [config] not an IAM role ARN; write it like "
                    "arn:aws:iam::123456789012:role/platform-sre (a role, not a user, the account root or an "
                    "assumed-role session)"
                )
        if len(set(value)) != len(value):
            problems.append("@@ [config] a role is listed twice; list each once")
        if problems:
            raise ValueError("\n".join(problems))
        return value


GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_PROVIDER_ARN = re.compile(
    rf"^arn:aws(-cn|-us-gov)?:iam::(?P<account>\d{{12}}):oidc-provider/{re.escape(GITHUB_OIDC_HOST)}$"
)


class CiConfig(_Model):
    """Deploys from GitHub Actions (``make ci-bootstrap``, .github/workflows/deploy.yml): the one repository and
    GitHub environment whose workflow jobs may assume this stage's deploy role ``<app>-<stage>-ci-deploy``."""

    repository: str = Field(description="owner/name of the GitHub repository that deploys this stage")
    environment: str | None = Field(
        default=None,
        description="the GitHub environment of the deploy job (default: the stage name); give it required "
        "reviewers and restrict it to the default branch in the repository's settings",
    )
    oidc_provider_arn: str | None = Field(
        default=None,
        description="the account's existing GitHub OIDC provider; omitted: the <app>-ci stack creates it",
    )

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if any(char in value for char in "*?"):
            raise ValueError(
                "[ci-trust-too-broad] a wildcard would let every matching repository deploy; name exactly one, "
                "e.g. acme/shop"
            )
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}", value):
            raise ValueError("[config] not a GitHub repository; write owner/name, e.g. acme/shop")
        return value

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str | None) -> str | None:
        if value is not None and any(char in value for char in "*?"):
            raise ValueError(
                "[ci-trust-too-broad] a wildcard would let every matching environment deploy; name exactly one"
            )
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,255}", value):
            raise ValueError("[config] a GitHub environment name is letters, digits, '.', '_' and '-'")
        return value

    @field_validator("oidc_provider_arn")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value is not None and not GITHUB_OIDC_PROVIDER_ARN.match(value):
            raise ValueError(
                f"[config] not the GitHub OIDC provider's ARN; write arn:aws:iam::<account>:oidc-provider/"
                f"{GITHUB_OIDC_HOST} (aws iam list-open-id-connect-providers), or omit it to create one"
            )
        return value


class Permission(_Model):
    """One statement of the app's own AWS permissions, granted to that service's role on every target."""

    actions: list[str] = Field(min_length=1, description="service:Action names, e.g. sqs:SendMessage")
    resources: list[str] = Field(min_length=1, description="ARNs; '*' only for actions that support no resource")

    @model_validator(mode="after")
    def _checked(self) -> Permission:
        found = list(permission_problems(self.actions, self.resources))
        if found:
            raise ValueError("; ".join(found))
        return self


EGRESS_REFUSED = {
    22: "[ssh-bastion] port 22 is for SSH; operators use Session Manager, not SSH out of a service",
    5432: "[sg-compute-to-rds] the database is wired by the deployment (services that receive its URL); remove it",
    6379: "[redis-sg] the cache is wired by the deployment (services that receive its URL); remove it",
    443: "[egress-blocked] HTTPS (443) is already open to everywhere; remove the entry",
}


class EgressRule(_Model):
    """One outbound TCP port a service needs beyond HTTPS (SMTP, a webhook): to ``cidrs`` or to the internet."""

    port: int = Field(ge=1, le=65535, description="TCP port, e.g. 587 for SMTP submission")
    cidrs: list[str] | None = Field(default=None, min_length=1, description="IPv4 networks, e.g. 203.0.113.0/24")
    to: Literal["internet"] | None = Field(default=None, description="'internet': 0.0.0.0/0 on this port")
    description: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z0-9 ._:/()#,@+=&;{}!$*-]*$")

    @model_validator(mode="after")
    def _checked(self) -> EgressRule:
        problems = []
        if self.port in EGRESS_REFUSED:
            problems.append(f"@port@ {EGRESS_REFUSED[self.port]}")
        if (self.cidrs is None) == (self.to is None):
            problems.append("@@ [egress-blocked] write exactly one of cidrs: [<IPv4 network>, ...] or to: internet")
        for index, cidr in enumerate(self.cidrs or []):
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append(f"@cidrs.{index}@ [egress-blocked] not an IPv4 CIDR; write it like 203.0.113.0/24")
                continue
            if network.version != 4:
                problems.append(f"@cidrs.{index}@ [egress-blocked] IPv6 egress is not supported; list IPv4 networks")
            elif network.prefixlen == 0:
                problems.append(f"@cidrs.{index}@ [egress-blocked] 0.0.0.0/0 is the internet; write to: internet")
            elif str(network) != cidr:
                problems.append(f"@cidrs.{index}@ [egress-blocked] host bits are set; write the network: {network}")
        if self.cidrs is not None and len(set(self.cidrs)) != len(self.cidrs):
            problems.append("@cidrs@ [egress-blocked] a CIDR is listed twice; list each once")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def destinations(self) -> tuple[str, ...]:
        return tuple(self.cidrs) if self.cidrs is not None else ("0.0.0.0/0",)


def check_egress(value: list[EgressRule] | None) -> list[EgressRule] | None:
    """No (port, destination) twice across the entries of one list."""
    seen: set[tuple[int, str]] = set()
    for index, rule in enumerate(value or []):
        for destination in rule.destinations:
            if (rule.port, destination) in seen:
                raise ValueError(
                    f"@{index}@ [egress-blocked] port {rule.port} to {destination} is declared twice; list it once"
                )
            seen.add((rule.port, destination))
    return value


class RouteSpec(_Model):
    """Which requests reach a web service on the stage's shared load balancer (ALB listener-rule conditions)."""

    paths: list[str] = Field(default_factory=list, description="path patterns, e.g. /api/* (* any, ? one char)")
    hosts: list[str] = Field(default_factory=list, description="host names, e.g. admin.shop.example.com")
    priority: int | None = Field(
        default=None, ge=1, le=MAX_PRIORITY - 1, description="lower first; default: 10, 20 ... in file order"
    )

    @field_validator("paths", "hosts")
    @classmethod
    def _patterns(cls, value: list[str], info: ValidationInfo) -> list[str]:
        pattern, fix = {
            "paths": (
                PATH_PATTERN,
                "not an ALB path pattern; write a path from /, e.g. /api/* (at most 128 characters)",
            ),
            "hosts": (
                HOST_PATTERN,
                "not a host name pattern; write e.g. admin.shop.example.com (lowercase; * ? match)",
            ),
        }[str(info.field_name)]
        problems = [f"@{index}@ [config] {fix}" for index, item in enumerate(value) if not pattern.match(item)]
        if problems:
            raise ValueError("\n".join(problems))
        return value

    @model_validator(mode="after")
    def _conditions(self) -> RouteSpec:
        count = len(self.paths) + len(self.hosts)
        if count == 0:
            raise ValueError(
                "[config] a route needs paths or hosts; the one web service without a route is the stage's default"
            )
        if count > MAX_CONDITION_VALUES:
            raise ValueError(
                f"[config] {count} paths and hosts; an ALB rule takes at most {MAX_CONDITION_VALUES}: use wildcards "
                "(/api/*) or split the service"
            )
        return self


class ServiceSpec(_Model):
    """One entry of ``services:``: what differs for this process. Everything else comes from the stage's common
    keys (image, ``server``, ``ecs``/``eks`` sizing, health contract, settings)."""

    kind: Literal["web", "worker", "job"]
    command: list[str] | None = Field(default=None, description="argv; default: the image's command (web only)")
    image: str | None = Field(default=None, description="default: the stage's image")
    settings: list[str] | None = Field(default=None, description="the settings it receives; default: all")
    server: ServerConfig | None = Field(default=None, description="processes and DB pool; default: the stage's")
    ecs: EcsSizing | None = Field(default=None, description="Fargate size and count; default: the stage's ecs")
    eks: EksSizing | None = Field(default=None, description="pod size and count; default: the stage's eks")
    schedule: str | None = Field(default=None, description="job: 5-field cron, @daily..., or rate(...), UTC")
    timeout_minutes: int = Field(default=30, ge=1, le=1440, description="job: stopped after this long")
    retries: int = Field(default=1, ge=0, le=5, description="job: runs again this often after a failure")
    target: Target | None = Field(default=None, description="job: the one target it runs on; default: the first")
    permissions: list[Permission] | None = Field(
        default=None, description="its own AWS permissions; default: the stage's permissions for web, none otherwise"
    )
    egress: list[EgressRule] | None = Field(
        default=None, description="its outbound ports beyond HTTPS (ECS, EB); default: the stage's egress"
    )
    route: RouteSpec | None = Field(
        default=None, description="web: the requests it serves; omitted on the stage's default web service"
    )
    port: int | None = Field(default=None, ge=1024, le=65535, description="web: its port; default: container_port")
    health: HealthContract | None = Field(default=None, description="web: its health contract; default: the stage's")
    uses: dict[str, Access] = Field(
        default_factory=dict, description="resources: it uses and how, e.g. {uploads: write, emails: consume}"
    )
    scale_on_queue: QueueScaling | None = Field(
        default=None, description="worker: one more task per messages_per_task waiting in a queue it consumes"
    )
    redis_db: int | None = Field(
        default=None, ge=1, le=15, description="its own Redis database: its redis_url settings end in /<redis_db>"
    )
    calls: list[str] = Field(
        default_factory=list, description="web services of the stage it calls; each gives it <NAME>_URL"
    )

    @field_validator("egress")
    @classmethod
    def _egress(cls, value: list[EgressRule] | None) -> list[EgressRule] | None:
        return check_egress(value)

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        return check_command(value)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else check_image(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            schedule_or_error(value)
        return value

    @model_validator(mode="after")
    def _kind(self) -> ServiceSpec:
        problems = []
        if self.kind in ("worker", "job") and self.command is None:
            problems.append(
                f"@command@ [config] a {self.kind} needs its own command (the image's default runs the web server), "
                "e.g. [celery, -A, app, worker]"
            )
        if self.kind == "job" and self.schedule is None:
            problems.append("@schedule@ [job-schedule-invalid] a job runs on a schedule; write e.g. '0 3 * * *'")
        if self.kind != "job" and self.schedule is not None:
            problems.append(f"@schedule@ [job-schedule-invalid] only a job has a schedule; this is a {self.kind}")
        if self.kind != "job" and self.target is not None:
            problems.append(f"@target@ [config] only a job runs on one target; a {self.kind} runs on every target")
        for key in ("route", "port", "health"):
            if self.kind != "web" and getattr(self, key) is not None:
                problems.append(f"@{key}@ [config] only a web service has a {key}; this is a {self.kind}")
        if self.kind == "job" and self.schedule is not None:
            interval = schedule_or_error(self.schedule).min_interval_minutes
            if self.timeout_minutes >= interval:
                problems.append(
                    f"@timeout_minutes@ [job-schedule-invalid] runs every {interval} min but may take "
                    f"{self.timeout_minutes}: a run could still be going when the next starts; lower timeout_minutes "
                    "or run less often"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self


class MigrateConfig(_Model):
    """The migration step: run once per deployment, on every enabled target, before the new version serves."""

    command: list[str] = Field(description="argv, e.g. [alembic, upgrade, head]")
    image: str | None = Field(default=None, description="default: the stage's image")
    settings: list[str] | None = Field(default=None, description="the settings it receives; default: all")
    timeout_minutes: int = Field(default=15, ge=1, le=120, description="the deployment fails after this long")

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        checked = check_command(value)
        assert checked is not None
        return checked

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        return None if value is None else check_image(value)


def check_command(value: list[str] | None) -> list[str] | None:
    if value is not None and (not value or any(not part.strip() for part in value)):
        raise ValueError("[config] write the command as a list of arguments, e.g. [celery, -A, app, worker]")
    if value is not None and sum(len(part) for part in value) > 4096:
        raise ValueError("[config] a command longer than 4096 characters; move the logic into a script in the image")
    return value


def check_image(value: str) -> str:
    """An ECR image URI with an immutable tag or digest (ecr-pull-permission); region is checked with the stage."""
    match = ECR_IMAGE.match(value)
    if not match:
        raise ValueError(
            "[ecr-pull-permission] not an ECR image URI; use "
            "<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<immutable tag> or @sha256:<digest>"
        )
    if not match["tag"] and not match["digest"]:
        raise ValueError("[ecr-pull-permission] image has no tag; pin an immutable tag (e.g. :1.4.2) or digest")
    if match["tag"] == "latest":
        raise ValueError("[ecr-pull-permission] tag 'latest' is mutable; pin an immutable tag or @sha256 digest")
    return value


class AppConfig(_Model):
    app: str = Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")
    stage: Stage
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str
    targets: list[Target] = Field(default_factory=list)
    image: str
    container_port: int = Field(default=8000, ge=1024, le=65535)
    log_retention_days: int = 30
    health: HealthContract = Field(default_factory=HealthContract)
    settings: dict[str, SettingValue] = Field(default_factory=dict)
    network: NetworkConfig
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    alarms: AlarmsConfig
    domain: DomainConfig | None = None
    server: ServerConfig = Field(default_factory=ServerConfig)
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    ecs: EcsConfig = Field(default_factory=EcsConfig)
    eks: EksConfig = Field(default_factory=EksConfig)
    eb: EbConfig = Field(default_factory=EbConfig)
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    permissions: list[Permission] = Field(
        default_factory=list, description="the web service's own AWS permissions, on every target"
    )
    egress: list[EgressRule] = Field(
        default_factory=list, description="outbound ports beyond HTTPS of every service (ECS tasks, EB instances)"
    )
    migrate: MigrateConfig | None = None
    operators: OperatorsConfig | None = Field(
        default=None, description="roles that may open a shell in the stage (make shell); turns ECS Exec on"
    )
    ci: CiConfig | None = Field(
        default=None, description="deploy from GitHub Actions with short-lived credentials (make ci-bootstrap)"
    )
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig, description="the app's buckets, queues, topics, SES identities (services.uses)"
    )

    @model_validator(mode="before")
    @classmethod
    def _service_defaults(cls, data: Any) -> Any:
        """A service's ``ecs``/``eks``/``server`` override the stage's: keys it does not set come from there."""
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
            return data
        sections: dict[str, type[BaseModel]] = {"ecs": EcsSizing, "eks": EksSizing, "server": ServerConfig}
        services = {}
        for name, spec in data["services"].items():
            if isinstance(spec, dict):
                spec = dict(spec)
                for key, model in sections.items():
                    own, common = spec.get(key), data.get(key)
                    if isinstance(own, dict) and isinstance(common, dict):
                        inherited = {k: v for k, v in common.items() if k in model.model_fields}
                        spec[key] = {**inherited, **own}
            services[name] = spec
        return {**data, "services": services}

    @field_validator("egress")
    @classmethod
    def _egress(cls, value: list[EgressRule]) -> list[EgressRule]:
        return check_egress(value) or []

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in known_regions():
            raise ValueError(f"[region-mismatch] {value!r} is not an AWS region; use e.g. 'eu-west-1'")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return NetworkConfig._retention(value)

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[Target]) -> list[Target]:
        if len(set(value)) != len(value):
            raise ValueError(f"[config] {value} lists a target twice")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return check_image(value)

    @field_validator("services")
    @classmethod
    def _services(cls, value: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
        problems = [
            f"@{name}@ [config] a service name is lowercase letters, digits and '-', at most 20 characters, "
            f"and not {MIGRATE!r}"
            for name in value
            if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", name) or name == MIGRATE
        ]
        webs = [name for name, spec in value.items() if spec.kind == "web"]
        defaults = [name for name in webs if value[name].route is None]
        if value and not webs:
            problems.append("@@ [config] a stage runs at least one web service (kind: web); none found")
        elif webs and not defaults:
            problems.append(
                f"@@ [route-default-missing] every web service ({', '.join(webs)}) has a route: requests that match "
                "none would get a 404; leave route out on the one service that answers everything else"
            )
        elif len(defaults) > 1:
            problems.append(
                f"@@ [route-overlap] {', '.join(defaults)} have no route, so each would take every request; give "
                "each but one a route (paths or hosts)"
            )
        routes = web_routes(value)
        problems += [f"@{name}.route@ [route-overlap] {line}" for name, line in named_lines(shadowing(routes))]
        owners: dict[int, str] = {}
        for name, spec in value.items():
            if spec.redis_db is None:
                continue
            if spec.redis_db in owners:
                problems.append(
                    f"@{name}.redis_db@ [config] database {spec.redis_db} is also {owners[spec.redis_db]}'s; services "
                    "that must not share keys need their own number (omit redis_db to share database 0)"
                )
            owners.setdefault(spec.redis_db, name)
        if problems:
            raise ValueError("\n".join(problems))
        return value

    @field_validator("settings")
    @classmethod
    def _settings(cls, value: dict[str, str | SecretRef | FromRef]) -> dict[str, str | SecretRef | FromRef]:
        problems = [
            f"@{name if re.fullmatch(r'[A-Za-z0-9_]{1,128}', name) else '<name>'}@ {text}"
            for name, setting in value.items()
            if (text := _setting_problem(name, setting))
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> AppConfig:
        problems: list[tuple[str, str]] = []
        images = [("image", self.image)]
        images += [(f"services.{n}.image", s.image) for n, s in self.services.items() if s.image]
        images += [("migrate.image", self.migrate.image)] if self.migrate and self.migrate.image else []
        for path, uri in images:
            image = ECR_IMAGE.match(uri)
            if image and image["region"] != self.region:
                problems.append(
                    (
                        path,
                        f"[region-mismatch] image is in {image['region']}, stage is in {self.region}; "
                        "replicate the repository to the stage region",
                    )
                )
        web_name, web_spec = next((n, s) for n, s in self.service_specs.items() if s.kind == "web")
        if "eb" in self.targets and web_spec.command is not None:
            problems.append(
                (
                    f"services.{web_name}.command",
                    "[config] Elastic Beanstalk runs the web image's own command (Dockerrun v1 has no argv); bake "
                    "the command into the image (CMD) or remove eb from targets",
                )
            )
        for name, spec in self.services.items():
            if spec.target is not None and spec.target not in self.targets:
                problems.append(
                    (
                        f"services.{name}.target",
                        f"[job-schedule-invalid] the stage does not enable {spec.target}; use one of {self.targets}",
                    )
                )
        subsets = [(f"services.{n}.settings", s.settings) for n, s in self.services.items()]
        subsets += [("migrate.settings", self.migrate.settings)] if self.migrate else []
        for path, names in subsets:
            for index, name in enumerate(names or []):
                if name not in self.settings:
                    problems.append(
                        (
                            f"{path}.{index}",
                            "[service-setting-undefined] not a setting of this stage; define it under settings: "
                            "or remove it from the list",
                        )
                    )
        letters = zone_letters(self.region)
        for index, zone in enumerate(self.network.availability_zones):
            if not re.fullmatch(re.escape(self.region) + r"[a-z]", zone):
                problems.append(
                    (
                        f"network.availability_zones.{index}",
                        f"[region-mismatch] not a zone of {self.region}; use one of "
                        f"{', '.join(self.region + c for c in letters)}",
                    )
                )
            elif zone[-1] not in letters:
                problems.append(
                    (
                        f"network.availability_zones.{index}",
                        f"[config] {self.region} has no such zone; use one of "
                        f"{', '.join(self.region + c for c in letters)}",
                    )
                )
        if self.stage in ("staging", "prod") and self.account is None:
            problems.append(
                (
                    "account",
                    f'[region-mismatch] {self.stage} deploys to one named account; set account: "<12-digit id>" '
                    "in the stage file (make deploy refuses other credentials)",
                )
            )
        for path, arn in (
            ("alarms.topic_arn", self.alarms.topic_arn),
            ("domain.certificate_arn", self.domain.certificate_arn if self.domain else None),
        ):
            match = ARN_REGION.match(arn) if arn else None
            if arn and (not match or match["region"] != self.region):
                found = match["region"] if match else "an unparsable ARN"
                problems.append(
                    (
                        path,
                        f"[region-mismatch] {arn} is in {found}, stage is in {self.region}; "
                        "use a resource in the stage region",
                    )
                )
        for index, arn in enumerate(self.operators.role_arns if self.operators else []):
            match = OPERATOR_ROLE_ARN.match(arn)
            if match and self.account is None:
                problems.append(
                    (
                        f"operators.role_arns.{index}",
                        "[config] operators need the stage's account to check the roles against; set account: "
                        '"<12-digit id>" in the stage file',
                    )
                )
            elif match and match["account"] != self.account:
                problems.append(
                    (
                        f"operators.role_arns.{index}",
                        f"[config] a role of account {match['account']}, the stage is in {self.account}; list roles "
                        "of the stage's account (cross-account operators assume a role there first)",
                    )
                )
        if self.ci is not None and self.account is None:
            problems.append(
                (
                    "ci",
                    '[config] a deploy from CI needs the stage\'s account for its role; set account: "<12-digit id>" '
                    "in the stage file",
                )
            )
        provider = GITHUB_OIDC_PROVIDER_ARN.match(self.ci.oidc_provider_arn or "") if self.ci else None
        if provider and self.account and provider["account"] != self.account:
            problems.append(
                (
                    "ci.oidc_provider_arn",
                    f"[config] a provider of account {provider['account']}, the stage is in {self.account}; use the "
                    "provider of the stage's account, or omit it to create one",
                )
            )
        if self.load_balancer.waf is not None and "eb" in self.targets:
            problems.append(
                (
                    "load_balancer.waf",
                    "[config] Elastic Beanstalk creates its own load balancer, which this template cannot associate "
                    "a web ACL with; remove eb from targets or load_balancer.waf",
                )
            )
        if self.stage in ("staging", "prod") and self.domain is None:
            problems.append(
                (
                    "domain",
                    f"[tls-certificate] {self.stage} refuses plain HTTP; set domain.name and domain.certificate_arn "
                    "or domain.hosted_zone_id + hosted_zone_name (only dev may serve HTTP without a certificate)",
                )
            )
        if self.load_balancer.idle_timeout_seconds >= self.server.keep_alive_seconds:
            problems.append(
                (
                    "load_balancer.idle_timeout_seconds",
                    f"[alb-keepalive-502] must be below server.keep_alive_seconds={self.server.keep_alive_seconds} "
                    "or the ALB reuses connections the app already closed (sporadic 502)",
                )
            )
        if self.stage == "prod":
            if not self.database.deletion_protection:
                problems.append(("database.deletion_protection", "[rds-storage-backup] prod requires true"))
            if not self.database.multi_az:
                problems.append(
                    ("database.multi_az", "[rds-storage-backup] prod requires true (a standby in a second AZ)")
                )
            if self.cache.replicas < 1:
                problems.append(
                    ("cache.replicas", "[redis-auth-tls] prod requires >= 1 for a multi-AZ replication group")
                )
            for name, setting in self.settings.items():
                if isinstance(setting, str) and ("ORIGIN" in name or "CORS" in name) and "*" in setting:
                    problems.append(
                        (
                            f"settings.{name}",
                            f"[cors-wildcard] {setting!r} allows any origin in prod; "
                            "list the allowed origins explicitly",
                        )
                    )
        problems += resource_problems(self, self.service_specs)
        problems += call_problems(self)
        for name, spec in self.services.items():
            names = spec.settings if spec.settings is not None else list(self.settings)
            if spec.redis_db and not any(self.parameter_settings.get(n) == "redis_url" for n in names):
                problems.append(
                    (
                        f"services.{name}.redis_db",
                        "[config] it receives no {secret: redis_url} setting for the database to apply to; add one "
                        "to its settings, or remove redis_db",
                    )
                )
        if problems:
            raise ValueError("\n".join(f"@{path}@ {message}" for path, message in problems))
        return self

    # -- derived values, one place for every target -------------------------------------------------
    @property
    def service_specs(self) -> dict[str, ServiceSpec]:
        """``services:``, or one ``web`` service from the common keys when the stage file has none."""
        return dict(self.services) or {"web": ServiceSpec(kind="web")}

    @property
    def workloads(self) -> tuple[Service, ...]:
        """Every process of the stage resolved (web first, then workers, jobs, and the migrate step last)."""
        return resolve_services(self)

    @property
    def web(self) -> Service:
        """The stage's default web service: the one without a route (the only one in most stages)."""
        return next(s for s in self.workloads if s.is_web and s.route is None)

    @property
    def webs(self) -> tuple[Service, ...]:
        """Every web service: the default first, then the routed ones by priority."""
        webs = [s for s in self.workloads if s.is_web]
        return tuple(sorted(webs, key=lambda s: (s.route is not None, s.route.priority if s.route else 0)))

    @property
    def exec_enabled(self) -> bool:
        """ECS Exec on the stage's web and worker services: ``ecs.exec_enabled``, or implied by ``operators``
        (``make shell`` needs it; sessions are then logged to the stage's encrypted session log group)."""
        return self.ecs.exec_enabled or self.operators is not None

    def domain_name(self, target: str) -> str | None:
        """The name ``target`` answers with a hosted-zone domain: the first enabled target ``domain.name``, every
        other ``<target>.<domain.name>``; with ``certificate_arn`` (records managed elsewhere) ``domain.name``."""
        if self.domain is None:
            return None
        if not self.domain.managed or not self.targets or target == self.targets[0]:
            return self.domain.name
        return f"{target}.{self.domain.name}"

    def route_hosts(self, target: str) -> tuple[str, ...]:
        """The host names of the web services' routes that ``target`` answers in the stage's hosted zone (its
        certificate and records cover them): the first target's, exact names inside the zone; none otherwise."""
        domain = self.domain
        if domain is None or not domain.managed or not self.targets or target != self.targets[0]:
            return ()
        zone = f".{domain.hosted_zone_name}".lower().rstrip(".")
        hosts = (h for web in self.webs if web.route is not None for h in web.route.hosts)
        return tuple(sorted({h for h in hosts if h.endswith(zone) and not any(c in h for c in "*?")}))

    @property
    def health_port(self) -> int:
        return self.health.port or self.container_port

    def parameter_name(self, setting: str) -> str:
        """SSM name of a secret setting: one schema, ``/<app>/<stage>/<NAME>``, read by every target."""
        return f"/{self.app}/{self.stage}/{setting}"

    def parameter_of(self, service: Service, setting: str) -> str:
        """The parameter ``service`` reads ``setting`` from: ``/<app>/<stage>/<NAME>``, or for a ``redis_url``
        setting of a service with its own Redis database (``redis_db``) ``/<app>/<stage>/<NAME>_DB<n>``."""
        if service.redis_db and self.parameter_settings.get(setting) == "redis_url":
            return self.parameter_name(f"{setting}_DB{service.redis_db}")
        return self.parameter_name(setting)

    @property
    def redis_databases(self) -> dict[str, tuple[str, int]]:
        """``{parameter key: (redis_url setting, database)}`` of the extra parameters ``redis_db`` needs."""
        return {
            f"{setting}_DB{service.redis_db}": (setting, service.redis_db)
            for service in self.workloads
            if service.redis_db
            for setting in service.secrets
            if self.parameter_settings.get(setting) == "redis_url"
        }

    @property
    def plain_settings(self) -> dict[str, str]:
        return {name: value for name, value in self.settings.items() if isinstance(value, str)}

    @property
    def secret_settings(self) -> dict[str, SecretRef]:
        return {name: value for name, value in self.settings.items() if isinstance(value, SecretRef)}

    @property
    def parameter_settings(self) -> dict[str, str]:
        """``{setting: kind}`` of every setting delivered from Parameter Store ``/<app>/<stage>/<NAME>``: the
        secrets and the ``{from: ...}`` parts of the connection (see ``parameter_kind``)."""
        return {
            name: parameter_kind(value)
            for name, value in self.settings.items()
            if isinstance(value, SecretRef | FromRef)
        }

    def stack_name(self, purpose: str) -> str:
        return f"{self.app}-{self.stage}-{purpose}"

    @property
    def partition(self) -> str:
        """The ARN partition of the stage's region (aws, aws-cn, aws-us-gov), for ARNs written as literals."""
        region = self.region
        return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"

    @property
    def ci_environment(self) -> str:
        """The GitHub environment whose jobs may deploy this stage (``ci.environment``, default the stage name)."""
        return (self.ci.environment if self.ci else None) or self.stage

    @property
    def ci_deploy_role_name(self) -> str:
        return self.stack_name("ci-deploy")


def _setting_problem(name: str, setting: str | SecretRef | FromRef) -> str | None:
    """The refusal for one settings entry (``[id] text``), or None. Never quotes the value."""
    if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,127}", name):
        return "[config] a setting name is UPPER_SNAKE_CASE (A-Z, 0-9, _), at most 128 characters"
    if name in RUNTIME_NAMES or name.startswith(RESERVED_PREFIXES):
        return (
            f"[reserved-setting-name] {name} is set by the deployment itself (the port, server and pool sizes, "
            f"stage and region, {', '.join(p + '*' for p in RESERVED_PREFIXES)}); remove it or rename it"
        )
    # The URLs the deploy composes from the real endpoints: a hand-typed one (host, user, password) is refused first.
    if name == "DATABASE_URL" and not (isinstance(setting, SecretRef) and setting.secret == "database_url"):
        return (
            "[database-url-format] DATABASE_URL must be {secret: database_url}, composed by the deploy from the "
            "stage database's endpoint (a hand-typed host is not that database)"
        )
    if name == "REDIS_URL" and not (isinstance(setting, SecretRef) and setting.secret == "redis_url"):
        return "[redis-auth-tls] REDIS_URL must be {secret: redis_url}, composed by the deploy"
    if isinstance(setting, str) and (
        SECRET_NAME.search(name) or CREDENTIAL_URL.match(setting) or SECRET_VALUE.search(setting)
    ):
        kind = _secret_kind_for(name)
        fix = f"write {name}: {{secret: {kind}}} so it lives in Parameter Store as a SecureString"
        if kind == "provided":
            fix += (
                f" and store the value with make secret STAGE=<stage> NAME={name} (a key the app itself issues, "
                "such as a session signing key, may be {secret: generated})"
            )
        return f"[plaintext-secrets] a plain value that looks secret; {fix}"
    if isinstance(setting, str) and len(setting) > 4096:
        return "[config] a plain setting longer than 4096 characters; keep settings short (ECS/EB limits)"
    return None


def _secret_kind_for(name: str) -> str:
    """The secret kind a refusal suggests for a plain setting named ``name``."""
    if name in ("DATABASE_URL", "REDIS_URL"):
        return name.lower()
    if re.fullmatch(r"(DB|DATABASE|PG|POSTGRES(QL)?)_?PASS(WORD)?", name):
        return "database_password"
    if re.fullmatch(r"REDIS_(PASS(WORD)?|TOKEN|AUTH(_TOKEN)?)", name):
        return "redis_token"
    return "provided"
