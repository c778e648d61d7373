"""Services: web + worker + jobs + migrate on ECS, Elastic Beanstalk and EKS from config/examples/services.yaml
(one session synth with every guard and cdk-nag), and each services guard refusing its bad case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_ec2 as ec2

from config import ConfigError, load_config
from constructs.fargate_worker import FargateWorker
from constructs.fargate_workloads import declare
from constructs.guards import register_guards
from constructs.guards.k8s import flatten
from stacks import Stacks, build_stacks
from tests.conftest import EXAMPLES, Synthesized, new_app, stage_config, synthesized
from tests.test_guards import assert_refused

EXAMPLE = yaml.safe_load(EXAMPLES["services"].read_text())
EXAMPLE_CONFIG = stage_config("services")


@pytest.fixture(scope="module")
def services() -> Synthesized:
    return synthesized("services")


def resources(s: Synthesized, stack: cdk.Stack | None, cfn_type: str) -> dict[str, Any]:
    assert stack is not None
    return {k: v for k, v in s.template(stack)["Resources"].items() if v["Type"] == cfn_type}


def env_of(task: dict[str, Any]) -> dict[str, str]:
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def secrets_of(task: dict[str, Any]) -> set[str]:
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {s["Name"] for s in container.get("Secrets", [])}


# -- ECS ----------------------------------------------------------------------------------------------------------


def test_ecs_runs_web_and_worker_services_and_only_web_has_a_load_balancer(services: Synthesized) -> None:
    ecs_services = resources(services, services.stacks.ecs, "AWS::ECS::Service")
    assert len(ecs_services) == 2
    with_lb = [k for k, v in ecs_services.items() if v["Properties"].get("LoadBalancers")]
    assert len(with_lb) == 1 and with_lb[0].startswith("Service")
    for service in ecs_services.values():
        deployment = service["Properties"]["DeploymentConfiguration"]
        assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def test_worker_has_its_command_its_settings_and_no_port(services: Synthesized) -> None:
    tasks = resources(services, services.stacks.ecs, "AWS::ECS::TaskDefinition")
    worker = next(t for k, t in tasks.items() if k.startswith("WorkloadsWorkerWorker"))
    (container,) = worker["Properties"]["ContainerDefinitions"]
    assert container["Command"][:4] == ["celery", "-A", "shop.tasks", "worker"]
    assert "PortMappings" not in container
    env = env_of(worker)
    assert env["APP_SERVICE"] == "worker" and env["WORKER_CONCURRENCY"] == "2" and "PORT" not in env
    assert "ALLOWED_ORIGINS" not in env  # not in its settings list
    assert secrets_of(worker) == {"DATABASE_URL", "CELERY_BROKER_URL", "SMTP_PASSWORD"}


def test_each_execution_role_reads_exactly_its_services_secrets(services: Synthesized) -> None:
    template = services.template(services.stacks.ecs)  # type: ignore[arg-type]
    reads: dict[str, set[str]] = {}
    for policy in template["Resources"].values():
        if policy["Type"] != "AWS::IAM::Policy":
            continue
        attached = (policy["Properties"].get("Roles") or [{}])[0]
        if not isinstance(attached, dict) or "Ref" not in attached:
            continue  # a policy on a role of another stack (the operator role, with operators:)
        role = attached["Ref"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "ssm:GetParameters" in statement["Action"]:
                names = {json.dumps(r).rsplit("/", 1)[-1].strip('"]}') for r in statement["Resource"]}
                reads.setdefault(role, set()).update(names)
    worker = next(names for role, names in reads.items() if role.startswith("WorkloadsWorkerWorker"))
    web = next(names for role, names in reads.items() if role.startswith("ServiceTask"))
    assert worker == {"DATABASE_URL", "CELERY_BROKER_URL", "SMTP_PASSWORD"}
    parts = {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"}
    assert web == {"SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"} | parts | {
        "STRIPE_API_KEY",
        "SMTP_PASSWORD",
    }


def test_worker_security_group_has_no_ingress_and_reaches_only_what_it_uses(services: Synthesized) -> None:
    template = services.template(services.stacks.ecs)  # type: ignore[arg-type]
    groups = resources(services, services.stacks.ecs, "AWS::EC2::SecurityGroup")
    worker = next(k for k in groups if k.startswith("WorkloadsWorkerWorkerSecurityGroup"))
    job = next(k for k in groups if k.startswith("WorkloadsJobNightlyReportSecurityGroup"))
    assert "SecurityGroupIngress" not in groups[worker]["Properties"]
    ingress = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert not [r for r in ingress if r["GroupId"] == {"Fn::GetAtt": [worker, "GroupId"]}]
    sources = [json.dumps(r.get("SourceSecurityGroupId")) for r in ingress]
    ports = {r["FromPort"] if isinstance(r["FromPort"], int) else "db" for r in ingress if worker in json.dumps(r)}
    assert any(worker in s for s in sources) and ports == {"db", 6379}  # PostgreSQL + Redis
    job_ports = {r["FromPort"] if isinstance(r["FromPort"], int) else "db" for r in ingress if job in json.dumps(r)}
    assert job_ports == {"db"}  # the nightly report names DATABASE_URL only: never admitted to Redis


def test_job_is_a_utc_schedule_with_dead_letters_retries_timeout_and_alarms(services: Synthesized) -> None:
    (schedule,) = resources(services, services.stacks.ecs, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "cron(0 3 * * ? *)" and props["ScheduleExpressionTimezone"] == "Etc/UTC"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"} and "DeadLetterConfig" in props["Target"]
    machines = resources(services, services.stacks.ecs, "AWS::StepFunctions::StateMachine").values()
    definitions = [json.dumps(m["Properties"]["DefinitionString"]) for m in machines]
    (definition,) = [d for d in definitions if "runTask.sync" in d]  # the other one is the migration's waiter
    assert '\\"TimeoutSeconds\\":1800' in definition
    assert '\\"MaxAttempts\\":2' in definition and "States.TaskFailed" in definition
    alarms = resources(services, services.stacks.ecs, "AWS::CloudWatch::Alarm").values()
    names = {a["Properties"]["AlarmName"] for a in alarms}
    metrics = ("ExecutionsFailed", "ExecutionsTimedOut", "DeadLetters")
    assert {f"shop-staging-job-nightly-report-{m}" for m in metrics} <= names
    # a job runs on one target: the nightly report on ecs (the first), purge-sessions on eks
    assert not resources(services, services.stacks.eb, "AWS::Scheduler::Schedule")


def test_migration_runs_before_the_ecs_services(services: Synthesized) -> None:
    (run,) = resources(services, services.stacks.ecs, "Custom::RunTask").items()
    logical_id, resource = run
    assert set(resource["Properties"]) >= {"Cluster", "TaskDefinition", "Subnets", "SecurityGroups", "ContainerName"}
    for service in resources(services, services.stacks.ecs, "AWS::ECS::Service").values():
        assert logical_id in service["DependsOn"]
    tasks = resources(services, services.stacks.ecs, "AWS::ECS::TaskDefinition")
    migrate = next(t for k, t in tasks.items() if k.startswith("WorkloadsMigrateMigrate"))
    assert migrate["Properties"]["ContainerDefinitions"][0]["Command"] == ["alembic", "upgrade", "head"]


# -- Elastic Beanstalk ----------------------------------------------------------------------------------------------


def test_eb_runs_the_worker_and_the_migration_on_fargate_next_to_the_environment(services: Synthesized) -> None:
    (run_id,) = resources(services, services.stacks.eb, "Custom::RunTask")
    (environment,) = resources(services, services.stacks.eb, "AWS::ElasticBeanstalk::Environment").values()
    assert run_id in environment["DependsOn"]
    (worker,) = resources(services, services.stacks.eb, "AWS::ECS::Service").values()
    assert not worker["Properties"].get("LoadBalancers") and run_id in worker["DependsOn"]


# -- EKS ------------------------------------------------------------------------------------------------------------


def manifests(s: Synthesized) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for logical_id, resource in resources(s, s.stacks.eks, "Custom::AWSCDK-EKS-KubernetesResource").items():
        text, _ = flatten(resource["Properties"]["Manifest"])  # tokens (role ARNs ...) become placeholders
        out[logical_id] = json.loads(text)
    return out


def test_eks_runs_two_deployments_a_cronjob_and_a_migration_job_it_waits_for(services: Synthesized) -> None:
    found = manifests(services)
    kinds = [o["kind"] for objects in found.values() for o in objects]
    assert kinds.count("Deployment") == 2 and kinds.count("CronJob") == 1 and kinds.count("Job") == 1
    (cron,) = [o for objects in found.values() for o in objects if o["kind"] == "CronJob"]
    assert cron["spec"]["schedule"] == "*/30 * * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    template = services.template(services.stacks.eks)  # type: ignore[arg-type]
    waits = resources(services, services.stacks.eks, "Custom::AWSCDK-EKS-KubernetesObjectValue")
    (wait_id,) = [w for w in waits if template["Resources"][w]["Properties"]["ObjectType"] == "job"]
    for logical_id, objects in found.items():
        if any(o["kind"] in ("Deployment", "CronJob") for o in objects):
            assert wait_id in template["Resources"][logical_id]["DependsOn"], logical_id
    worker = next(o for objects in found.values() for o in objects if o["metadata"]["name"] == "shop-worker")
    web_service = next(o for objects in found.values() for o in objects if o["kind"] == "Service")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert not all(labels.get(k) == v for k, v in web_service["spec"]["selector"].items())


def test_connection_budget_counts_every_service_with_surge(services: Synthesized) -> None:
    from constructs.compute_target import ComputeTarget

    targets = [c for c in services.stacks.ecs.node.root.node.find_all() if isinstance(c, ComputeTarget)]  # type: ignore[union-attr]
    labels = {t.label: t.max_units for t in targets}
    assert labels["ecs web"] == 6 and labels["ecs worker"] == 4 and labels["eb web"] == 3 and labels["eks web"] == 4
    assert {labels["ecs migrate"], labels["eb migrate"], labels["eks migrate"]} == {1}


# -- refusals -------------------------------------------------------------------------------------------------------


def build_example(targets: list[str] | None = None, **updates: Any) -> tuple[cdk.App, Stacks]:
    """The example with guards, not yet synthesized, so a test can break one thing (cdk-nag off: these tests
    break resources on purpose and assert the guard's line; nag's findings on them would only add noise)."""
    targets = targets or ["ecs"]
    jobs_here = {n: s.model_dump() for n, s in EXAMPLE_CONFIG.services.items() if s.target in (None, *targets)}
    config = stage_config("services", targets=targets, services=jobs_here, **updates)
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config, nag=False)
    return app, stacks


def test_worker_with_an_inbound_rule_or_a_load_balancer_is_refused() -> None:
    app, stacks = build_example()
    assert stacks.ecs is not None
    worker = next(c for c in stacks.ecs.node.find_all() if isinstance(c, FargateWorker))
    worker.security_group.add_ingress_rule(ec2.Peer.ipv4("10.1.0.0/16"), ec2.Port.tcp(8080), "debug port")
    service = worker.service.node.default_child
    assert isinstance(service, cdk.aws_ecs.CfnService)
    target_group = stacks.ecs.load_balancer.target_group.target_group_arn
    service.load_balancers = [cdk.aws_ecs.CfnService.LoadBalancerProperty(target_group_arn=target_group)]
    line = assert_refused(app, "worker-inbound", "ecs worker admits", "ecs worker is registered with a load balancer")
    assert "Workloads/WorkerWorker" in line


def test_a_service_selecting_worker_pods_is_refused() -> None:
    app, stacks = build_example(targets=["eks"])
    assert stacks.eks is not None
    stacks.eks.eks.cluster.add_manifest(
        "Debug",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "debug", "namespace": "app"},
            "spec": {"selector": {"app.kubernetes.io/name": "shop-worker"}, "ports": [{"port": 80}]},
        },
    )
    assert_refused(app, "worker-inbound", "selects the pods of Deployment/shop-worker")


def test_unprotected_service_and_missing_migration_step_are_refused() -> None:
    app, stacks = build_example()
    assert stacks.ecs is not None
    config = EXAMPLE_CONFIG
    worker = next(s for s in config.workloads if s.kind == "worker")
    rogue = FargateWorker(
        stacks.ecs, "Rogue", cluster=stacks.ecs.cluster, config=config, service=worker,
        secrets=stacks.data.secrets, alarm_topic=stacks.data.alarm_topic, alarm_prefix="x",
    )  # fmt: skip
    rogue.connections.allow_to_default_port(stacks.data.database)
    rogue.connections.allow_to_default_port(stacks.data.cache)
    declare(stacks.ecs, kind="ecs", service=worker, group=rogue.security_group, task=rogue.task_definition,
            log_group=rogue.log_group, max_units=1)  # fmt: skip
    assert_refused(app, "migrations-not-run", "shop-staging-ecs/Rogue/Default/Service", "before the migration ran")


def test_a_target_without_its_migration_step_is_refused(guarded_stack) -> None:  # type: ignore[no-untyped-def]
    app, stack = guarded_stack("dev")
    config = stage_config("dev")
    role = cdk.aws_iam.Role(stack, "Role", assumed_by=cdk.aws_iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"], nat_gateways=1)
    from constructs.compute_target import ComputeTarget

    group = ec2.SecurityGroup(stack, "Sg", vpc=vpc)
    ComputeTarget(stack, "Declaration", kind="ecs", service=config.web, security_group=group, secret_reader=role,
                  image_puller=role, max_units=1, log_groups=[], compute=[])  # fmt: skip
    assert_refused(app, "migrations-not-run", "Test: ecs runs no migration step")


def test_a_setting_delivered_beyond_the_services_list_is_refused() -> None:
    app, stacks = build_example()
    assert stacks.ecs is not None
    worker = next(c for c in stacks.ecs.node.find_all() if isinstance(c, FargateWorker))
    container = worker.task_definition.default_container
    assert container is not None
    container.add_environment("ALLOWED_ORIGINS", "https://x.example.com")
    assert_refused(app, "service-setting-undefined", "ecs worker receives ALLOWED_ORIGINS it does not name")


def test_a_job_without_dead_letters_or_twice_scheduled_is_refused() -> None:
    app, stacks = build_example()
    assert stacks.ecs is not None
    schedule = next(c for c in stacks.ecs.node.find_all() if isinstance(c, cdk.aws_scheduler.CfnSchedule))
    target = schedule.target
    schedule.target = cdk.aws_scheduler.CfnSchedule.TargetProperty(
        arn=target.arn,  # type: ignore[union-attr]
        role_arn=target.role_arn,  # type: ignore[union-attr]
        retry_policy=target.retry_policy,  # type: ignore[union-attr]
    )
    config = EXAMPLE_CONFIG
    job = next(s for s in config.workloads if s.kind == "job" and s.target == "ecs")
    worker = next(c for c in stacks.ecs.node.find_all() if isinstance(c, FargateWorker))
    declare(
        stacks.ecs,
        kind="ecs",
        service=job,
        group=worker.security_group,
        task=worker.task_definition,
        log_group=worker.log_group,
        max_units=1,
    )  # fmt: skip  (the same job declared a second time)
    assert_refused(app, "job-schedule-invalid", "no dead-letter queue", "scheduled on 2 targets")


# -- config-level refusals ------------------------------------------------------------------------------------------


def _refused(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as error:
        load_config(path=path)
    return error.value.problems


@pytest.mark.parametrize(
    ("service", "changes", "expected"),
    [
        ("nightly-report", {"schedule": "61 * * * *"}, "[job-schedule-invalid] services.nightly-report.schedule:"),
        ("nightly-report", {"schedule": "*/15 * * * *", "timeout_minutes": 30}, "runs every 15 min but may take 30"),
        ("nightly-report", {"schedule": "0 3 1 * 1"}, "not both"),
        ("nightly-report", {"schedule": None}, "[job-schedule-invalid] services.nightly-report.schedule: not set"),
        ("nightly-report", {"target": "ecs", "schedule": "rate(7 minutes)"}, "no cron equivalent"),
        ("purge-sessions", {"target": "lambda"}, "[config] services.purge-sessions.target: 'lambda'"),
        ("worker", {"schedule": "@daily"}, "only a job has a schedule"),
        ("worker", {"command": None}, "a worker needs its own command"),
        ("worker", {"settings": ["LOG_LEVEL", "SENTRY_DSN"]}, "[service-setting-undefined] services.worker.settings.1"),
        (
            "worker",
            {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/w:1"},
            "[region-mismatch] services.worker.image",
        ),
        ("web", {"kind": "worker", "command": ["x"]}, "at least one web service (kind: web); none found"),
    ],
)
def test_services_config_is_refused_with_id_path_and_fix(
    tmp_path: Path, service: str, changes: dict[str, Any], expected: str
) -> None:
    data = json.loads(json.dumps(EXAMPLE))
    for key, value in changes.items():
        if value is None:
            data["services"][service].pop(key, None)
        else:
            data["services"][service][key] = value
    lines = _refused(tmp_path, data)
    assert any(expected in line for line in lines), lines


def test_a_job_target_the_stage_does_not_enable_is_refused(tmp_path: Path) -> None:
    data = {**EXAMPLE, "targets": ["ecs"]}
    lines = _refused(tmp_path, data)
    assert any(line.startswith("[job-schedule-invalid] services.purge-sessions.target: 'eks'") for line in lines)


def test_moved_migration_command_key_points_to_migrate(tmp_path: Path) -> None:
    data = json.loads(json.dumps(EXAMPLE))
    data["ecs"]["migration_command"] = ["alembic", "upgrade", "head"]
    (line,) = _refused(tmp_path, data)
    assert line.startswith("[migrations-not-run] ecs.migration_command: ") and "migrate: {command:" in line


def test_review_report_lists_every_service_with_what_it_runs_reaches_and_reads(services: Synthesized) -> None:
    from report.assembly import load_assembly
    from report.services import extract_services

    rows = {(r.stack, r.name): r for r in extract_services(load_assembly(Path(services.assembly.directory)))}
    worker = rows[("shop-staging-ecs", "worker")]
    assert worker.kind == "worker" and worker.command.startswith("celery -A shop.tasks worker")
    assert worker.reaches == ["PostgreSQL", "Redis"] and worker.secrets == [
        "CELERY_BROKER_URL",
        "DATABASE_URL",
        "SMTP_PASSWORD",
    ]
    job = rows[("shop-staging-ecs", "nightly-report")]
    assert job.kind == "job" and job.schedule == "cron(0 3 * * ? *) Etc/UTC" and job.reaches == ["PostgreSQL"]
    assert rows[("shop-staging-eb", "migrate")].runs_as.startswith("deploy step")
    assert rows[("shop-staging-ecs", "web")].runs_as == "ECS service behind the ALB"


def test_a_cronjob_that_may_overlap_itself_is_refused() -> None:
    app, stacks = build_example(targets=["eks"])
    assert stacks.eks is not None
    stacks.eks.eks.cluster.add_manifest(
        "HandMade",
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "hand-made", "namespace": "app"},
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "x"}]}}}},
            },
        },
    )
    assert_refused(
        app, "job-schedule-invalid", "CronJob/hand-made", "concurrencyPolicy=Allow", "no activeDeadlineSeconds"
    )
