"""Helpers of the doctor tests: the client source, the healthy moto world, and ways to break it.

moto's CloudFormation cannot be imported here (it needs ``openapi_spec_validator``, which the venv lacks), so
stacks and their outputs live in ``FakeCloudFormation``: ``describe_stacks`` over a dict, raising the same
``ValidationError`` AWS raises for an unknown stack. Every other service is moto. APIs moto lacks
(iam.simulate_principal_policy) and error injection (AccessDenied, throttling) use botocore's Stubber.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from config import AppConfig
from doctor.checks.identity import read_stacks, whoami
from doctor.model import TARGET_PURPOSES, Context, Finding

REGION = "eu-west-1"
OTHER_REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account, also the registry in dev.yaml's image URI
SECRET_VALUE = "doctor-must-never-print-this-Zq7x"
TOPIC_NAME = "shop-dev-alarms"
DEV_STAGE = Path(__file__).resolve().parents[2] / "config" / "stages" / "dev.yaml"
StageFile = Callable[..., Path]  # the stage_file fixture: stage_file(**top_level_changes) -> path
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {},
        "layers": [],
    }
)


class FakeCloudFormation:
    """``describe_stacks`` over ``{name: stack}`` of one region, shaped like the real answer."""

    def __init__(self, stacks: dict[str, dict[str, Any]]) -> None:
        self.stacks = stacks

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # boto3 spells the argument StackName
        if StackName not in self.stacks:
            error = {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}}
            raise ClientError(error, "DescribeStacks")
        return {"Stacks": [self.stacks[StackName]]}


_SESSIONS: dict[str | None, Any] = {}
_CLIENTS: dict[tuple[str | None, str, str], Any] = {}


def shared_session(default_region: str | None) -> Any:
    """One boto3 session per default region for the whole run: botocore then parses each service model once."""
    if default_region not in _SESSIONS:
        _SESSIONS[default_region] = boto3.session.Session(region_name=default_region)
    return _SESSIONS[default_region]


def shared_client(default_region: str | None, service: str, region: str) -> Any:
    """One client per (session, service, region) for the whole run: building one costs tens of ms, and moto
    intercepts every client while a mock is active, whenever it was built. Each mock starts empty."""
    key = (default_region, service, region)
    if key not in _CLIENTS:
        _CLIENTS[key] = shared_session(default_region).client(service, region_name=region)
    return _CLIENTS[key]


class Clients:
    """``doctor.model.ClientSource`` for tests: moto clients, fake stacks, and stubbed clients on demand."""

    def __init__(self, default_region: str | None = REGION, session: Any = None) -> None:
        self.session = session  # only for callers with other credentials (an assumed role)
        self._default_region = session.region_name if session is not None else default_region
        self.stacks: dict[str, dict[str, dict[str, Any]]] = {}
        self.overrides: dict[tuple[str, str], Any] = {}  # stubbed clients

    @property
    def default_region(self) -> str | None:
        return self._default_region

    def client(self, service: str, region: str) -> Any:
        if (service, region) in self.overrides:
            return self.overrides[(service, region)]
        if service == "cloudformation":
            return FakeCloudFormation(self.stacks.setdefault(region, {}))
        if self.session is not None:
            return self.session.client(service, region_name=region)
        return shared_client(self._default_region, service, region)

    def add_stack(
        self, name: str, outputs: dict[str, str], *, region: str = REGION, status: str = "CREATE_COMPLETE"
    ) -> None:
        self.stacks.setdefault(region, {})[name] = {
            "StackName": name,
            "StackStatus": status,
            "CreationTime": "2026-01-01T00:00:00Z",
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
        }

    def stub(self, service: str, region: str = REGION) -> Stubber:
        """A Stubber-backed client that replaces ``service`` in ``region``; the caller queues its answers."""
        client = shared_session(None).client(service, region_name=region)  # a new client: stubs stay local
        stubber = Stubber(client)
        stubber.activate()
        self.overrides[(service, region)] = client
        return stubber


class EcsWithStartTimes:
    """moto's ECS client plus what moto lacks: a task's ``startedAt`` (set by ``start_tasks``), and ``list_tasks``
    filtered by ``serviceName`` (moto ignores it; a service's tasks carry the group ``service:<name>``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.started: dict[str, datetime] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def list_tasks(self, **request: Any) -> dict[str, Any]:
        service = request.pop("serviceName", None)
        reply: dict[str, Any] = self.client.list_tasks(**request)
        if service and reply["taskArns"]:
            tasks = self.client.describe_tasks(cluster=request.get("cluster"), tasks=reply["taskArns"])["tasks"]
            reply["taskArns"] = [t["taskArn"] for t in tasks if t.get("group") == f"service:{service}"]
        return reply

    def describe_tasks(self, **request: Any) -> dict[str, Any]:
        reply: dict[str, Any] = self.client.describe_tasks(**request)
        for task in reply["tasks"]:
            if task["taskArn"] in self.started:
                task["startedAt"] = self.started[task["taskArn"]]
        return reply

    def start_tasks(self, cluster: str, service: str, *, at: datetime | None = None, count: int = 1) -> list[str]:
        """Run ``count`` tasks of ``service`` that started ``at`` (default: now)."""
        definition = self.client.describe_services(cluster=cluster, services=[service])["services"][0]
        tasks = self.client.run_task(
            cluster=cluster,
            taskDefinition=definition["taskDefinition"],
            count=count,
            launchType="FARGATE",
            group=f"service:{service}",
        )["tasks"]
        for task in tasks:
            self.started[task["taskArn"]] = at or datetime.now(UTC)
        return [t["taskArn"] for t in tasks]


def ecs_service(clients: Clients, cluster: str, name: str, app_service: str) -> str:
    """Create the ECS service ``name`` in ``cluster`` whose task definition says ``APP_SERVICE=app_service``
    (bridge networking: moto's awsvpc tasks cannot be run), no task running yet; returns its name."""
    ecs = clients.client("ecs", REGION)
    definition = ecs.register_task_definition(
        family=name,
        containerDefinitions=[
            {
                "name": "app",
                "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shop-api:1.0.0",
                "cpu": 256,
                "memory": 512,
                "environment": [{"name": "APP_SERVICE", "value": app_service}, {"name": "APP_STAGE", "value": "dev"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=cluster, serviceName=name, taskDefinition=definition, desiredCount=1, launchType="FARGATE"
    )
    return name


@dataclass
class World:
    """Ids of the healthy stage built in moto."""

    clients: Clients
    vpc: str
    db_sg: str
    cache_sg: str
    compute_sg: str
    db_id: str = "shop-dev-db"
    cache_id: str = "shop-dev-cache"
    cache_log: str = "shop-dev-cache-slow-log"
    target_log: str = "/ecs/shop-dev"
    topic_arn: str = ""
    target_group_arn: str = ""
    load_balancer_arn: str = ""
    consumer_role: str = f"arn:aws:iam::{ACCOUNT}:role/shop-dev-ecs-execution"
    data_outputs: dict[str, str] = field(default_factory=dict)
    ecs_outputs: dict[str, str] = field(default_factory=dict)
    cluster: str = "shop-dev-cluster"
    web_service: str = "shop-dev-web"


def build_world(clients: Clients) -> World:
    """The healthy stage: SG-to-SG rules only, private DB, SecureStrings, tagged immutable image, healthy
    targets, log groups with retention, alarms with actions, and the network + data stacks' outputs."""
    ec2 = clients.client("ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    groups = {
        n: ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"]
        for n in ("db", "cache", "compute")
    }
    w = World(clients=clients, vpc=vpc, db_sg=groups["db"], cache_sg=groups["cache"], compute_sg=groups["compute"])
    admit(w, w.db_sg, 5432, source_group=w.compute_sg)
    admit(w, w.cache_sg, 6379, source_group=w.compute_sg)

    clients.client("rds", REGION).create_db_instance(
        DBInstanceIdentifier=w.db_id,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword=SECRET_VALUE,
        AllocatedStorage=20,
        VpcSecurityGroupIds=[w.db_sg],
        PubliclyAccessible=False,
    )
    clients.client("elasticache", REGION).create_replication_group(
        ReplicationGroupId=w.cache_id,
        ReplicationGroupDescription="app cache",
        CacheNodeType="cache.t4g.micro",
        Engine="redis",
        NumCacheClusters=1,
        SecurityGroupIds=[w.cache_sg],
        TransitEncryptionEnabled=True,
        AuthToken=SECRET_VALUE,
        LogDeliveryConfigurations=[
            {
                "LogType": "slow-log",
                "DestinationType": "cloudwatch-logs",
                "LogFormat": "json",
                "DestinationDetails": {"CloudWatchLogsDetails": {"LogGroup": w.cache_log}},
            }
        ],
    )

    ssm = clients.client("ssm", REGION)
    for setting in ("SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        ssm.put_parameter(Name=f"/shop/dev/{setting}", Value=SECRET_VALUE, Type="SecureString")

    ecr = clients.client("ecr", REGION)
    ecr.create_repository(repositoryName="shop-api", imageTagMutability="IMMUTABLE")
    ecr.put_image(repositoryName="shop-api", imageManifest=MANIFEST, imageTag="1.0.0")

    logs = clients.client("logs", REGION)
    for name in (f"/aws/rds/instance/{w.db_id}/postgresql", w.cache_log, w.target_log):
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=30)

    w.topic_arn = clients.client("sns", REGION).create_topic(Name=TOPIC_NAME)["TopicArn"]
    put_alarm(
        w,
        "shop-dev-database-CPUUtilization",
        "AWS/RDS",
        "CPUUtilization",
        [{"Name": "DBInstanceIdentifier", "Value": w.db_id}],
    )
    put_alarm(
        w,
        "shop-dev-cache-001-EngineCPUUtilization",
        "AWS/ElastiCache",
        "EngineCPUUtilization",
        [{"Name": "CacheClusterId", "Value": f"{w.cache_id}-001"}],
    )

    elbv2 = clients.client("elbv2", REGION)
    w.load_balancer_arn = elbv2.create_load_balancer(Name="shop-dev", Subnets=subnets, SecurityGroups=[w.compute_sg])[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    w.target_group_arn = elbv2.create_target_group(
        Name="shop-dev-ecs",
        Protocol="HTTP",
        Port=8000,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/health",
        Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=w.target_group_arn, Targets=[{"Id": "10.0.1.10", "Port": 8000}])
    put_alarm(
        w,
        "shop-dev-ecs-alb-HTTPCode_Target_5XX_Count",
        "AWS/ApplicationELB",
        "HTTPCode_Target_5XX_Count",
        [{"Name": "LoadBalancer", "Value": w.load_balancer_arn.split(":loadbalancer/")[1]}],
    )

    w.data_outputs = {
        "DatabaseInstanceId": w.db_id,
        "DatabaseSecurityGroupId": w.db_sg,
        "DatabaseSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:shop-dev-db-AbCdEf",
        "CacheReplicationGroupId": w.cache_id,
        "CacheSecurityGroupId": w.cache_sg,
        "CacheAuthSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:shop-dev-redis-AbCdEf",
        "AlarmTopicArn": w.topic_arn,
    }
    # The ECS web service, its task started after the parameters were written (moto has no startedAt: see
    # EcsWithStartTimes, which answers for ECS from here on).
    ecs = EcsWithStartTimes(clients.client("ecs", REGION))
    clients.overrides[("ecs", REGION)] = ecs
    ecs.create_cluster(clusterName=w.cluster)
    ecs_service(clients, w.cluster, w.web_service, "web")
    ecs.start_tasks(w.cluster, w.web_service)

    w.ecs_outputs = {
        "ComputeSecurityGroupId": w.compute_sg,
        "TargetGroupArn": w.target_group_arn,
        "LoadBalancerArn": w.load_balancer_arn,
        "LogGroupName": w.target_log,
        "ConsumerRoleArn": w.consumer_role,
        "ClusterName": w.cluster,
        "ServiceName": w.web_service,
    }
    clients.add_stack("shop-dev-network", {"VpcId": vpc})
    clients.add_stack("shop-dev-data", w.data_outputs)
    return w


def admit(w: World, group: str, port: int, *, source_group: str | None = None, cidr: str | None = None) -> None:
    source: dict[str, Any] = (
        {"UserIdGroupPairs": [{"GroupId": source_group}]} if source_group else {"IpRanges": [{"CidrIp": cidr}]}
    )
    w.clients.client("ec2", REGION).authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **source}]
    )


def put_alarm(
    w: World, name: str, namespace: str, metric: str, dimensions: list[dict[str, str]], *, actions: bool = True
) -> None:
    w.clients.client("cloudwatch", REGION).put_metric_alarm(
        AlarmName=name,
        Namespace=namespace,
        MetricName=metric,
        Dimensions=dimensions,
        Statistic="Average",
        Period=300,
        EvaluationPeriods=3,
        Threshold=80,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[w.topic_arn] if actions else [],
        OKActions=[w.topic_arn] if actions else [],
    )


def with_ecs(w: World, **outputs: str) -> None:
    """Deploy the (future) ecs target stack: the healthy outputs, with ``outputs`` replacing some."""
    w.clients.add_stack("shop-dev-ecs", {**w.ecs_outputs, **outputs})


def make_ctx(
    clients: Clients, config: AppConfig, *, targets: tuple[str, ...] = (), region: str = REGION, **changes: Any
) -> Context:
    """The context the CLI would build, with ``targets`` enabled (the schema refuses them for now)."""
    names = [config.stack_name(p) for p in ("network", "data", *[t for t in TARGET_PURPOSES if t in targets])]
    ctx = Context(
        config=config,
        aws=clients,
        region=region,
        identity=whoami(clients, region),
        targets=targets,
        stacks=read_stacks(clients, region, names),
    )
    return replace(ctx, **changes)


def rows(findings: list[Finding], check_id: str, resource: str = "") -> list[Finding]:
    """The findings of ``check_id`` whose resource contains ``resource``."""
    return [f for f in findings if f.check_id == check_id and resource in f.resource]


def verdicts(findings: list[Finding], check_id: str, resource: str = "") -> set[str]:
    return {str(f.verdict) for f in rows(findings, check_id, resource)}


def parameter_arns(*settings: str) -> list[str]:
    names = settings or ("DATABASE_URL", "JWT_SECRET_KEY", "REDIS_URL", "SECRET_KEY")
    return [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shop/dev/{name}" for name in names]


def simulation(action: str, decisions: dict[str, str]) -> dict[str, Any]:
    """A simulate_principal_policy answer: ``decisions`` maps resource ARN to allowed / implicitDeny / ..."""
    return {
        "EvaluationResults": [
            {"EvalActionName": action, "EvalResourceName": arn, "EvalDecision": decision}
            for arn, decision in decisions.items()
        ],
        "IsTruncated": False,
    }


def allow_parameters(iam: Stubber, role: str, **decisions: str) -> None:
    """Queue the ssm:GetParameters simulation: every parameter allowed unless ``decisions`` (setting name ->
    decision) says otherwise; the request must name the role and all four parameter ARNs."""
    arns = parameter_arns()
    answer = {arn: decisions.get(arn.rsplit("/", 1)[1], "allowed") for arn in arns}
    iam.add_response(
        "simulate_principal_policy",
        simulation("ssm:GetParameters", answer),
        {"PolicySourceArn": role, "ActionNames": ["ssm:GetParameters"], "ResourceArns": arns},
    )


def deny_master_secrets(iam: Stubber, w: World, decision: str = "implicitDeny") -> None:
    """Queue the secretsmanager:GetSecretValue simulation on the DB and Redis master secrets."""
    arns = [w.data_outputs["DatabaseSecretArn"], w.data_outputs["CacheAuthSecretArn"]]
    iam.add_response(
        "simulate_principal_policy",
        simulation("secretsmanager:GetSecretValue", dict.fromkeys(arns, decision)),
        {"PolicySourceArn": w.consumer_role, "ActionNames": ["secretsmanager:GetSecretValue"], "ResourceArns": arns},
    )
