"""App resources (``resources:`` + ``services.<name>.uses``): the resources stack's templates, the grants and
settings each service gets on every target, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_s3 as s3, aws_sqs as sqs

from config import ConfigError, load_config
from config.permissions import problems as permission_problems
from constructs.app_resources import AppResources
from constructs.guards import register_guards
from constructs.guards.framework import ENV_READERS, Tree
from constructs.guards.missing_env_vars import COMPUTE_TYPES
from stacks import build_stacks
from stacks.synth import synthesize
from tests.conftest import EXAMPLES, Synthesized, new_app, stage_config, synthesized
from tests.test_guards import assert_refused

ACCOUNT, REGION = "123456789012", "eu-west-1"
BUCKET = f"shop-staging-uploads-{ACCOUNT}-{REGION}"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:shop-staging-emails"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/shop-staging-emails"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:shop-staging-alerts"
IDENTITY_ARN = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/shop.example.com"
# Every kind: the services example (uploads, emails) plus a topic the web publishes to and an SES identity the
# worker sends from.
EXTRA_RESOURCES = {"topics": {"alerts": {}}, "email": {"notifications": {"domain": "shop.example.com"}}}
WEB_ACCESS = {
    (("s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"), (f"{BUCKET_ARN}/*",)),
    (("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"), (QUEUE_ARN,)),
    (("sns:Publish",), (TOPIC_ARN,)),
}
WORKER_ACCESS = {
    (
        (
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage",
        ),
        (QUEUE_ARN,),
    ),
    (("s3:ListBucket",), (BUCKET_ARN,)),
    (("s3:GetObject",), (f"{BUCKET_ARN}/*",)),
    (("ses:SendEmail", "ses:SendRawEmail"), (IDENTITY_ARN,)),
}
WEB_SETTINGS = {"UPLOADS_BUCKET": BUCKET, "EMAILS_QUEUE_URL": QUEUE_URL, "ALERTS_TOPIC_ARN": TOPIC_ARN}
WORKER_SETTINGS = {
    "UPLOADS_BUCKET": BUCKET,
    "EMAILS_QUEUE_URL": QUEUE_URL,
    "NOTIFICATIONS_EMAIL_DOMAIN": "shop.example.com",
}


def raw_example() -> dict[str, Any]:
    return dict(yaml.safe_load(EXAMPLES["services"].read_text()))


def every_kind(raw: dict[str, Any]) -> dict[str, Any]:
    raw = json.loads(json.dumps(raw))
    raw["resources"].update(EXTRA_RESOURCES)
    raw["services"]["web"]["uses"]["alerts"] = "publish"
    raw["services"]["worker"]["uses"]["notifications"] = "send"
    return raw


def refused(tmp_path: Path, raw: dict[str, Any]) -> list[str]:
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as error:
        load_config(path=path)
    return error.value.problems


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Synthesized, Tree]:
    """The services example with every resource kind, on all three targets, through every guard and cdk-nag."""
    path = tmp_path_factory.mktemp("stage") / "every-kind.yaml"
    path.write_text(yaml.safe_dump(every_kind(raw_example()), sort_keys=False))
    config = load_config(path=path)
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config)
    tree = Tree(app)
    return Synthesized(config, stacks, synthesize(app)), tree


def resources_template(s: Synthesized) -> dict[str, Any]:
    assert s.stacks.resources is not None
    return s.template(s.stacks.resources)


def of_type(template: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


# -- the resources stack --------------------------------------------------------------------------------------------
def test_resources_stack_is_built_only_when_declared_and_deploys_before_every_target(full) -> None:
    s, _ = full
    assert s.stacks.resources is not None and s.stacks.resources.stack_name == "shop-staging-resources"
    for target in (s.stacks.ecs, s.stacks.eb, s.stacks.eks):
        assert target is not None and s.stacks.resources in target.dependencies
    assert synthesized("dev").stacks.resources is None
    # No export: the targets name the resources by their deterministic names.
    assert "Export" not in json.dumps(resources_template(s).get("Outputs", {}))


def test_bucket_is_private_encrypted_tls_only_versioned_logged_with_lifecycle_and_cors(full) -> None:
    s, _ = full
    template = resources_template(s)
    buckets = of_type(template, "AWS::S3::Bucket")
    uploads = next(v["Properties"] for v in buckets.values() if v["Properties"].get("BucketName") == BUCKET)
    assert uploads["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert uploads["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert uploads["VersioningConfiguration"] == {"Status": "Enabled"}
    assert uploads["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    rule = uploads["LifecycleConfiguration"]["Rules"][0]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    cors = uploads["CorsConfiguration"]["CorsRules"][0]
    assert cors["AllowedOrigins"] == ["https://staging.shop.example.com"] and cors["AllowedMethods"] == ["GET", "PUT"]
    assert uploads["LoggingConfiguration"]["LogFilePrefix"] == "uploads/"
    policies = json.dumps(of_type(template, "AWS::S3::BucketPolicy"))
    assert '"aws:SecureTransport": "false"' in policies
    # staging: deleted with the stack (emptied first); prod retains (test below).
    uploads_id = next(k for k, v in buckets.items() if v["Properties"].get("BucketName") == BUCKET)
    assert buckets[uploads_id]["DeletionPolicy"] == "Delete"
    assert uploads_id.startswith("ResourcesBucketUploads")


def test_queue_is_encrypted_tls_only_with_a_dead_letter_queue_and_alarms(full) -> None:
    s, _ = full
    template = resources_template(s)
    queues = of_type(template, "AWS::SQS::Queue")
    by_name = {v["Properties"]["QueueName"]: (k, v["Properties"]) for k, v in queues.items()}
    assert set(by_name) == {"shop-staging-emails", "shop-staging-emails-dlq"}
    queue_id, queue = by_name["shop-staging-emails"]
    dlq_id, dlq = by_name["shop-staging-emails-dlq"]
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] == 60
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    policies = json.dumps(of_type(template, "AWS::SQS::QueuePolicy"))
    assert policies.count('"aws:SecureTransport": "false"') == 2
    alarms = {
        v["Properties"]["AlarmName"]: v["Properties"] for v in of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    oldest = alarms["shop-staging-queue-emails-oldest-message"]
    assert oldest["MetricName"] == "ApproximateAgeOfOldestMessage" and oldest["Threshold"] == 300
    dead = alarms["shop-staging-queue-emails-dead-letters"]
    assert dead["MetricName"] == "ApproximateNumberOfMessagesVisible" and dead["Threshold"] == 0
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    for alarm in (oldest, dead):
        assert "shop-staging-data" in json.dumps(alarm["AlarmActions"])  # the stage's alarm topic
    assert queue_id.startswith("ResourcesQueueEmails")


def test_topic_is_encrypted_with_the_aws_managed_key_and_tls_only(full) -> None:
    s, _ = full
    template = resources_template(s)
    (topic,) = of_type(template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["TopicName"] == "shop-staging-alerts"
    assert topic["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"  # publishers need sns:Publish only
    assert '"aws:SecureTransport": "false"' in json.dumps(of_type(template, "AWS::SNS::TopicPolicy"))


def test_email_identity_puts_its_dkim_records_in_the_stage_zone(full) -> None:
    s, _ = full
    template = resources_template(s)
    (identity,) = of_type(template, "AWS::SES::EmailIdentity").values()
    assert identity["Properties"]["EmailIdentity"] == "shop.example.com"
    records = of_type(template, "AWS::Route53::RecordSet").values()
    assert len(records) == 3
    assert {r["Properties"]["HostedZoneId"] for r in records} == {"Z0123456789ABCDEFGHIJ"}
    assert {r["Properties"]["Type"] for r in records} == {"CNAME"}


def test_email_identity_without_the_zone_outputs_its_records() -> None:
    raw = every_kind(raw_example())
    raw["resources"]["email"]["notifications"]["domain"] = "mail.other.example.org"
    config = stage_config("services", **{k: raw[k] for k in ("resources", "services")})
    app = new_app()
    stacks = build_stacks(app, config)
    assert stacks.resources is not None
    template = app.synth().get_stack_by_name(stacks.resources.stack_name).template
    assert not of_type(template, "AWS::Route53::RecordSet")
    dkim = [k for k in template["Outputs"] if "Dkim" in k]
    assert len(dkim) == 3


def test_prod_retains_buckets_and_queues_and_protects_the_stack() -> None:
    raw = raw_example()
    config = stage_config(
        "prod",
        resources=raw["resources"],
        services={"web": {"kind": "web", "uses": {"uploads": "write", "emails": "send"}}},
    )
    app = new_app()
    stacks = build_stacks(app, config)
    assert stacks.resources is not None and stacks.resources.termination_protection
    template = app.synth().get_stack_by_name(stacks.resources.stack_name).template
    stateful = {**of_type(template, "AWS::S3::Bucket"), **of_type(template, "AWS::SQS::Queue")}
    assert len(stateful) == 4  # uploads, its access-log bucket, the queue and its DLQ
    assert {v["DeletionPolicy"] for v in stateful.values()} == {"Retain"}
    assert not of_type(template, "Custom::S3AutoDeleteObjects")


# -- grants and settings on every target ---------------------------------------------------------------------------
def app_grants(template: dict[str, Any]) -> dict[str, set[tuple[tuple[str, ...], tuple[str, ...]]]]:
    """Policy logical id -> its AppPermissions statements as (sorted actions, resources)."""
    out: dict[str, set[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
    for key, policy in of_type(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if str(statement.get("Sid", "")).startswith("AppPermissions"):
                actions, resources = statement["Action"], statement["Resource"]
                actions = [actions] if isinstance(actions, str) else actions
                resources = [resources] if isinstance(resources, str) else resources
                out.setdefault(key, set()).add((tuple(sorted(actions)), tuple(resources)))
    return out


@pytest.mark.parametrize(
    ("purpose", "web_role", "worker_role"),
    [
        ("ecs", "ServiceTaskTaskRole", "WorkloadsWorkerWorkerTaskTaskRole"),  # task roles
        ("eb", "BeanstalkInstanceRole", "WorkloadsWorkerWorkerTaskTaskRole"),  # instance role; the worker's task
        ("eks", "EksAppRole", "EksWorkerWorkerRole"),  # IRSA roles
    ],
)
def test_each_service_role_gets_exactly_its_declared_access(
    full, purpose: str, web_role: str, worker_role: str
) -> None:
    s, _ = full
    grants = app_grants(s.template(getattr(s.stacks, purpose)))
    assert len(grants) == 2, grants  # web and worker; the jobs and the migration step use nothing
    web = next(v for k, v in grants.items() if k.startswith(web_role))
    worker = next(v for k, v in grants.items() if k.startswith(worker_role))
    assert web == WEB_ACCESS
    assert worker == WORKER_ACCESS


def test_each_service_receives_the_settings_of_what_it_uses_on_every_target(full) -> None:
    _, tree = full
    seen: set[tuple[str, str]] = set()
    for target in tree.targets:
        service = target.service
        want = {"web": WEB_SETTINGS, "worker": WORKER_SETTINGS}.get(service.name, {})
        for resource in tree.computes_of(target, *COMPUTE_TYPES):
            delivered = {str(e.name): e.value for e in ENV_READERS[resource.type](resource)}
            if not delivered:
                continue
            got = {
                k: v
                for k, v in delivered.items()
                if k.endswith(("_BUCKET", "_QUEUE_URL", "_TOPIC_ARN", "_EMAIL_DOMAIN"))
            }
            if resource.type != "AWS::ElasticBeanstalk::Environment" or service.is_web:
                assert got == want, (target.label, resource.path)
            seen.add((target.kind, service.name))
    assert {
        ("ecs", "web"),
        ("ecs", "worker"),
        ("eb", "web"),
        ("eb", "worker"),
        ("eks", "web"),
        ("eks", "worker"),
    } <= seen


def test_the_grants_pass_the_permission_checks(full) -> None:
    s, _ = full
    granted = [p for service in s.config.workloads for p in service.permissions]
    assert len(granted) == len(WEB_ACCESS) + len(WORKER_ACCESS)
    for actions, resources in granted:
        assert not list(permission_problems(actions, resources)), (actions, resources)
        assert "*" not in resources


# -- refusals -------------------------------------------------------------------------------------------------------
def test_a_resource_no_service_uses_is_refused(tmp_path: Path) -> None:
    raw = raw_example()
    del raw["services"]["worker"]["uses"]["emails"]
    del raw["services"]["web"]["uses"]["emails"]
    lines = refused(tmp_path, raw)
    assert any(line.startswith("[resource-unused] resources.queues.emails:") for line in lines), lines


def test_a_use_of_an_undeclared_resource_is_refused(tmp_path: Path) -> None:
    raw = raw_example()
    raw["services"]["web"]["uses"]["avatars"] = "read"
    lines = refused(tmp_path, raw)
    assert any(line.startswith("[resource-undeclared] services.web.uses.avatars:") for line in lines), lines


@pytest.mark.parametrize(("name", "access"), [("uploads", "send"), ("emails", "read"), ("emails", "publish")])
def test_an_access_that_does_not_fit_the_kind_is_refused(tmp_path: Path, name: str, access: str) -> None:
    raw = raw_example()
    raw["services"]["web"]["uses"][name] = access
    lines = refused(tmp_path, raw)
    assert any(
        line.startswith(f"[config] services.web.uses.{name}:") and "is not an access of a" in line for line in lines
    ), lines


def test_an_unknown_access_level_is_refused(tmp_path: Path) -> None:
    raw = raw_example()
    raw["services"]["web"]["uses"]["uploads"] = "admin"
    assert any("services.web.uses.uploads" in line for line in refused(tmp_path, raw))


def test_resources_without_services_are_refused(tmp_path: Path) -> None:
    raw = raw_example()
    del raw["services"]
    raw.pop("migrate")
    lines = refused(tmp_path, raw)
    assert any(line.startswith("[config] resources:") and "declare services:" in line for line in lines), lines


def test_a_bucket_name_over_63_characters_is_refused(tmp_path: Path) -> None:
    raw = raw_example()
    long = "customer-uploads-archive-2024"
    raw["resources"]["buckets"][long] = raw["resources"]["buckets"].pop("uploads")
    for service in raw["services"].values():
        if "uploads" in service.get("uses", {}):
            service["uses"][long] = service["uses"].pop("uploads")
    lines = refused(tmp_path, raw)
    assert any(f"resources.buckets.{long}" in line and "S3 allows 63" in line for line in lines), lines


def test_names_are_unique_across_kinds_and_do_not_clash_with_settings(tmp_path: Path) -> None:
    raw = raw_example()
    raw["resources"]["topics"] = {"emails": {}}
    lines = refused(tmp_path, raw)
    assert any("resources.topics.emails" in line and "also declared under queues" in line for line in lines), lines
    raw = raw_example()
    raw["settings"]["UPLOADS_BUCKET"] = "something"
    lines = refused(tmp_path, raw)
    assert any(line.startswith("[reserved-setting-name] settings.UPLOADS_BUCKET:") for line in lines), lines


def test_a_wildcard_origin_is_refused(tmp_path: Path) -> None:
    raw = raw_example()
    raw["resources"]["buckets"]["uploads"]["cors"]["origins"] = ["*"]
    assert any(
        line.startswith("[cors-wildcard] resources.buckets.uploads.cors.origins.0:") for line in refused(tmp_path, raw)
    )


# -- guards over the templates ---------------------------------------------------------------------------------------
def test_fails_on_a_public_bucket(guarded_stack) -> None:
    app, stack = guarded_stack()
    open_ = s3.BlockPublicAccess(
        block_public_acls=True, block_public_policy=False, ignore_public_acls=True, restrict_public_buckets=False
    )
    s3.Bucket(stack, "Open", block_public_access=open_, enforce_ssl=True)
    assert_refused(app, "bucket-public", "Test/Open", "blockPublicPolicy")


def test_fails_on_a_bucket_policy_open_to_anyone(guarded_stack) -> None:
    app, stack = guarded_stack()
    bucket = s3.Bucket(stack, "Shared", block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
    bucket.add_to_resource_policy(
        cdk.aws_iam.PolicyStatement(
            actions=["s3:GetObject"], principals=[cdk.aws_iam.AnyPrincipal()], resources=[bucket.arn_for_objects("*")]
        )
    )
    assert_refused(app, "bucket-public", "Principal * (anyone)")


def _bare_resources(stack: cdk.Stack) -> AppResources:
    """An AppResources with nothing declared (the config is dev's), to which a test adds a raw resource."""
    topic = cdk.aws_sns.Topic(stack, "AlarmTopic")
    return AppResources(stack, "Resources", config=stage_config("dev"), alarm_topic=topic)


def test_fails_on_an_app_bucket_that_accepts_plain_http(guarded_stack) -> None:
    app, stack = guarded_stack()
    resources = _bare_resources(stack)
    s3.Bucket(resources, "BucketPlain", block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
    assert_refused(app, "bucket-public", "Resources/BucketPlain", "without TLS")


def test_fails_on_an_app_queue_without_a_dead_letter_queue(guarded_stack) -> None:
    app, stack = guarded_stack()
    resources = _bare_resources(stack)
    sqs.Queue(resources, "QueueJobs", enforce_ssl=True)
    dlq = sqs.Queue(resources, "QueueOkDeadLetters")
    sqs.Queue(resources, "QueueOk", dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=3, queue=dlq))
    line = assert_refused(app, "queue-no-dlq", "Resources/QueueJobs")
    assert all("QueueOk" not in entry for entry in [line])


def test_fails_on_a_built_resource_no_service_uses(guarded_stack) -> None:
    app, stack = guarded_stack()
    resources = _bare_resources(stack)
    resources.built["orphans"] = "bucket"
    assert_refused(app, "resource-unused", "(bucket orphans)", "no service on any target uses it")


def test_fails_on_a_service_using_a_resource_nothing_builds(full) -> None:
    # The full stage without its resources stack: every use of a target names a resource no stack builds.
    s, _ = full
    config = s.config
    app = new_app()
    stacks = build_stacks(app, config)
    assert stacks.resources is not None
    stacks.resources.resources.built.clear()
    # A focused refusal test: the bad case breaks resources on purpose; cdk-nag's findings on
    # them would only add noise (the full stage runs with cdk-nag in the module fixtures).
    register_guards(app, config, nag=False)
    from tests.test_guards import refusals

    lines = [line for line in refusals(app) if line.startswith("[resource-undeclared] ")]
    assert any("web uses 'uploads' (write), which no resources stack of this app builds" in line for line in lines)


# -- a worker scales on the backlog of the queue it consumes ----------------------------------------------------


def test_the_example_worker_scales_on_its_queue_backlog_on_ecs_and_eb() -> None:
    services = synthesized("services")
    for stack in (services.stacks.ecs, services.stacks.eb):
        assert stack is not None
        template = services.template(stack)
        policies = [
            r["Properties"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
            and r["Properties"].get("PolicyType") == "StepScaling"
        ]
        alarms = [
            r["Properties"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::CloudWatch::Alarm"
            and r["Properties"].get("Namespace") == "AWS/SQS"
            and r["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        ]
        assert policies, stack.stack_name
        queues = {d["Value"] for a in alarms for d in a["Dimensions"] if isinstance(d["Value"], str)}
        assert queues == {"shop-staging-emails"}, stack.stack_name  # (the jobs' dead-letter queues are Refs)
        steps = sorted(
            (s.get("MetricIntervalLowerBound", -1), s["ScalingAdjustment"])
            for p in policies
            for s in p["StepScalingPolicyConfiguration"]["StepAdjustments"]
            if s["ScalingAdjustment"] > 0
        )
        assert steps[0][1] == 1 and steps[-1][1] == 3


@pytest.mark.parametrize(
    ("service", "scaling", "fragment"),
    [
        ("worker", {"queue": "uploads"}, "does not consume a queue 'uploads'"),
        ("web", {"queue": "emails"}, "only a worker scales on a queue"),
    ],
)
def test_scaling_on_a_queue_it_does_not_consume_is_refused(
    tmp_path: Path, service: str, scaling: dict[str, Any], fragment: str
) -> None:
    raw = yaml.safe_load(EXAMPLES["services"].read_text())
    raw["services"][service]["scale_on_queue"] = scaling
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as refused:
        load_config(path=path)
    where = f"[config] services.{service}.scale_on_queue.queue"
    assert any(line.startswith(where) and fragment in line for line in refused.value.problems), refused.value.problems
