"""The stage's own resources in the review (issue 18): buckets, queues, topics and e-mail identities with their
grants per service, dotted edges to them in the diagram, calls between services, and the review diff in plain
words; on hand-made templates and on the synthesized config/examples/services.yaml."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from config import load_config, resolve_account
from report.assembly import Stack, load_assembly
from report.compare import review
from report.extract import build_report
from report.render import render_json, render_markdown
from report.render_review import changes_markdown
from report.resources import extract_resources
from report.routing import role_services
from stacks import build_stacks
from tests.conftest import ROOT, new_app
from tests.report.test_extract import getatt, make_stack, ref, security_group
from tests.report.test_routing import multi_web_resources, service

ACCOUNT, REGION = "111111111111", "eu-west-1"
BUCKET = f"shop-dev-uploads-{ACCOUNT}-{REGION}"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:shop-dev-emails"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:shop-dev-orders"
IDENTITY_ARN = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/mail.example.com"
WRITE = ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"]
CONSUME = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]


def resources_template(*, retain: bool = False) -> dict[str, Any]:
    policy = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"} if retain else {}
    return {
        "BucketUploads": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "BucketName": BUCKET,
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
            },
            **policy,
        },
        "QueueEmails": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": "shop-dev-emails",
                "SqsManagedSseEnabled": True,
                "MessageRetentionPeriod": 345600,
                "RedrivePolicy": {"deadLetterTargetArn": getatt("QueueEmailsDlq", "Arn"), "maxReceiveCount": 5},
            },
            **policy,
        },
        "QueueEmailsDlq": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": "shop-dev-emails-dlq", "MessageRetentionPeriod": 1209600},
            **policy,
        },
        "TopicOrders": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": "shop-dev-orders", "KmsMasterKeyId": "alias/aws/sns"},
        },
        "EmailMail": {"Type": "AWS::SES::EmailIdentity", "Properties": {"EmailIdentity": "mail.example.com"}},
    }


def task(name: str, role: str) -> dict[str, Any]:
    env = [{"Name": "APP_SERVICE", "Value": name}]
    return {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "TaskRoleArn": getatt(role, "Arn"),
            "ContainerDefinitions": [{"Name": "app", "Environment": env}],
        },
    }


def statement(actions: list[str], *resources: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": list(resources)}


def grant_policy(role: str, *statements: dict[str, Any]) -> dict[str, Any]:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return {"Type": "AWS::IAM::Policy", "Properties": {"Roles": [ref(role)], "PolicyDocument": document}}


def iam_role() -> dict[str, Any]:
    trust = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ecs"}}]}
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}


def ecs_template(*, worker_writes: bool = False) -> dict[str, Any]:
    worker = [statement(CONSUME, QUEUE_ARN), statement(["s3:ListBucket"], BUCKET_ARN)]
    worker.append(statement(["s3:GetObject", *(WRITE if worker_writes else [])], f"{BUCKET_ARN}/*"))
    return {
        "WebRole": iam_role(),
        "WorkerRole": iam_role(),
        "OpsRole": iam_role(),
        "WebTask": task("web", "WebRole"),
        "WorkerTask": task("worker", "WorkerRole"),
        "WebService": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "TaskDefinition": ref("WebTask"),
                "NetworkConfiguration": {"AwsvpcConfiguration": {"SecurityGroups": [getatt("WebSG", "GroupId")]}},
            },
        },
        "WebSG": security_group("ECS web tasks"),
        "WebPolicy": grant_policy(
            "WebRole",
            statement(WRITE, f"{BUCKET_ARN}/*"),
            statement(["sqs:GetQueueUrl", "sqs:SendMessage"], QUEUE_ARN),
            statement(["sns:Publish"], TOPIC_ARN),
            statement(["ses:SendEmail", "ses:SendRawEmail"], IDENTITY_ARN),
            statement(["logs:*"], "*"),  # not about the resources: no grant
        ),
        "WorkerPolicy": grant_policy("WorkerRole", *worker),
        "OpsPolicy": grant_policy("OpsRole", statement(["s3:*"], "*")),
    }


def stage(*, retain: bool = False, worker_writes: bool = False) -> list[Stack]:
    outputs = {"ResourceSettings": {"Value": json.dumps({"UPLOADS_BUCKET": BUCKET})}}
    return [
        make_stack("shop-dev-resources", resources_template(retain=retain), outputs),
        make_stack("shop-dev-ecs", ecs_template(worker_writes=worker_writes)),
    ]


def test_every_resource_is_listed_with_its_protection_and_retention() -> None:
    found = {r.short: r for r in extract_resources(stage())}
    assert sorted(found) == ["emails", "emails-dlq", "mail.example.com", "orders", "uploads"]
    uploads, emails, dlq = found["uploads"], found["emails"], found["emails-dlq"]
    assert (uploads.kind, uploads.name, uploads.encryption, uploads.protection) == (
        "bucket",
        BUCKET,
        "SSE-S3",
        "versioned",
    )
    assert uploads.retention == "deleted with the stack, its objects with it (DeletionPolicy Delete)"
    assert emails.protection == "dead-letter queue shop-dev-emails-dlq after 5 receives, messages kept 4 days"
    assert dlq.protection == "dead-letter queue of shop-dev-emails, messages kept 14 days"
    assert found["orders"].encryption == "SSE-KMS (alias/aws/sns)"
    retained = {r.short: r for r in extract_resources(stage(retain=True))}["uploads"]
    assert retained.retained and retained.retention == "retained (DeletionPolicy Retain)"


def test_grants_are_the_access_each_service_has_on_each_resource() -> None:
    found = {r.short: r for r in extract_resources(stage())}
    access = {r: {(g.service, g.access, g.targets) for g in found[r].grants} for r in found}
    ops = "shop-dev-ecs/OpsRole"  # no service runs as it: named by its role
    assert access["uploads"] == {
        ("web", ("write",), ("objects",)),
        ("worker", ("read",), ("bucket", "objects")),
        (ops, ("read", "write"), ("bucket", "objects")),
    }
    assert access["emails"] == {("web", ("send",), ("queue",)), ("worker", ("consume",), ("queue",))}
    assert access["orders"] == {("web", ("publish",), ("topic",))}
    assert access["mail.example.com"] == {("web", ("send e-mail",), ("email identity",))}
    assert access["emails-dlq"] == set()
    wide = next(g for g in found["uploads"].grants if g.service == ops)
    assert wide.wildcards == ("action s3:*", "resource *")
    web = next(g for g in found["uploads"].grants if g.service == "web")
    assert (web.stack, web.role, web.node) == ("shop-dev-ecs", "shop-dev-ecs/WebRole", "ECS web tasks (shop-dev-ecs)")
    worker = next(g for g in found["uploads"].grants if g.service == "worker")
    assert worker.node == "service worker (shop-dev-ecs)"  # no ECS service of its own here: a node by name


def test_a_grant_by_reference_counts_too() -> None:
    ecs = ecs_template()
    ecs["WebPolicy"] = grant_policy(
        "WebRole", statement(["sqs:SendMessage"], {"Fn::ImportValue": "EmailsArn"}), statement(["sns:Publish"], "*")
    )
    outputs = {
        "ResourceSettings": {"Value": "{}"},
        "EmailsArn": {"Value": getatt("QueueEmails", "Arn"), "Export": {"Name": "EmailsArn"}},
    }
    stacks = [make_stack("shop-dev-resources", resources_template(), outputs), make_stack("shop-dev-ecs", ecs)]
    found = {r.short: r for r in extract_resources(stacks)}
    assert {(g.service, g.access) for g in found["emails"].grants} >= {("web", ("send",))}
    assert [(g.service, g.wildcards) for g in found["orders"].grants] == [("web", ("resource *",))]


def test_the_page_has_a_resources_section_and_dotted_edges_to_them() -> None:
    markdown = render_markdown(build_report(stage()))
    assert "## Resources" in markdown and "### Who may do what" in markdown
    assert "| `uploads` | `worker` | shop-dev-ecs | **read** | `s3:GetObject`, `s3:ListBucket` | bucket, objects |" in (
        markdown
    )
    assert "**2** grants" not in markdown and "buckets, queues, topics and e-mail identities" in markdown
    assert f'r_bucket_{BUCKET.replace("-", "_")}[("bucket {BUCKET}")]' in markdown
    assert f'n_ECS_web_tasks_shop_dev_ecs -.->|"write"| r_bucket_{BUCKET.replace("-", "_")}' in markdown
    assert 'n_service_worker_shop_dev_ecs -.->|"consume"| r_queue_shop_dev_emails' in markdown
    document = json.loads(render_json(build_report(stage())))
    assert document["summary"]["app_resources"] == 5
    assert {r["short"] for r in document["resources"]} >= {"uploads", "emails"}


def test_a_stage_without_resources_renders_as_before() -> None:
    stacks = [make_stack("shop-dev-ecs", ecs_template())]  # grants, but no resources stack
    report = build_report(stacks)
    assert report.resources == []
    markdown = render_markdown(report)
    assert "## Resources" not in markdown and "-.->" not in markdown and "e-mail identities" not in markdown
    document = json.loads(render_json(report))
    assert "resources" not in document and "app_resources" not in document["summary"]


def test_role_services_name_the_service_of_a_task_role() -> None:
    users = role_services(stage())
    assert [u.service for u in users["shop-dev-ecs/WebRole"]] == ["web"]
    assert "shop-dev-ecs/OpsRole" not in users


def test_a_service_that_calls_another_is_drawn_as_a_call() -> None:
    resources = multi_web_resources()
    resources.update(service("api", "TargetsApi", "ApiSG"))
    resources.update(service("storefront", "Targets", "StorefrontSG"))
    resources["ApiFromStorefront"] = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "GroupId": getatt("ApiSG", "GroupId"),
            "SourceSecurityGroupId": getatt("StorefrontSG", "GroupId"),
            "IpProtocol": "tcp",
            "FromPort": 8080,
            "ToPort": 8080,
        },
    }
    markdown = render_markdown(build_report([make_stack("App", resources)]))
    assert 'n_web_service_storefront_App -->|"calls · tcp 8080"| n_web_service_api_App' in markdown
    assert '-->|"tcp 8000"| n_web_service_api_App' in markdown  # the load balancer does not call: it forwards
    assert "calls · tcp 8000" not in markdown


# --------------------------------------------------------------------------- the review diff


def page(base: list[Stack], head: list[Stack]) -> tuple[str, list[str]]:
    compared = review(build_report(base), build_report(head), base, head)
    found = [f"{f.change} | {f.subject} | {f.detail} | {', '.join(f.flags)}" for f in compared.findings]
    return "\n".join(changes_markdown(compared)), found


def test_a_widened_grant_reads_in_plain_words() -> None:
    markdown, found = page(stage(), stage(worker_writes=True))
    assert "may now | worker → uploads | worker may now write to uploads (on shop-dev-ecs) | more access" in found
    assert "## Resources and who may use them" in markdown
    _, back = page(stage(worker_writes=True), stage())
    assert "may no longer | worker → uploads | worker may no longer write to uploads (on shop-dev-ecs) | " in back


def test_a_removed_resource_is_loud_even_a_queue() -> None:
    head = stage()
    template = copy.deepcopy(dict(head[0].template))
    del template["Resources"]["QueueEmailsDlq"]
    del template["Resources"]["BucketUploads"]
    head[0] = Stack(head[0].name, template, ACCOUNT, REGION, head[0].stack_name)
    compared = review(build_report(stage()), build_report(head), stage(), head)
    removed = {c.logical_id: c for c in compared.loud}
    assert removed["BucketUploads"].stateful and removed["QueueEmailsDlq"].stateful  # messages are data too
    assert "its data is deleted (DeletionPolicy Delete)" in removed["QueueEmailsDlq"].data
    _, found = page(stage(), head)
    assert f"removed | bucket uploads | {BUCKET}: what it holds is deleted | stateful data" in found


def test_retention_and_replacement_are_flagged_like_the_database() -> None:
    _, found = page(stage(retain=True), stage())
    assert (
        "retention | bucket uploads | retained (DeletionPolicy Retain) → deleted with the stack, its objects with it "
        "(DeletionPolicy Delete) | stateful data"
    ) in found
    compared = review(build_report(stage(retain=True)), build_report(stage()), stage(retain=True), stage())
    assert {c.logical_id for c in compared.loud if c.action == "retention"} >= {"BucketUploads", "QueueEmails"}

    head = stage()
    template = copy.deepcopy(dict(head[0].template))
    template["Resources"]["QueueEmails"]["Properties"]["FifoQueue"] = True  # create-only: a new queue
    head[0] = Stack(head[0].name, template, ACCOUNT, REGION, head[0].stack_name)
    compared = review(build_report(stage()), build_report(head), stage(), head)
    replaced = next(c for c in compared.loud if c.logical_id == "QueueEmails")
    assert (replaced.action, replaced.certainty, replaced.stateful) == ("replace", "would", True)
    assert any(
        f.section == "resources" and f.change == "replaced" and f.subject == "queue emails" and f.flags
        for f in compared.findings
    )


# --------------------------------------------------------------------------- the synthesized example


@pytest.fixture(scope="module")
def example() -> list[Stack]:
    """config/examples/services.yaml (ECS, EB and EKS; an ``uploads`` bucket, an ``emails`` queue) synthesized."""
    config, _ = resolve_account(load_config(path=ROOT / "config" / "examples" / "services.yaml"), environ={})
    app = new_app()
    build_stacks(app, config)
    return load_assembly(Path(app.synth().directory))


def test_the_synthesized_example_grants_exactly_what_each_service_uses(example: list[Stack]) -> None:
    report = build_report(example)
    found = {r.short: r for r in report.resources}
    assert {"uploads", "emails", "emails-dlq"} <= set(found)
    for target in ("ecs", "eb", "eks"):
        stack = f"shop-staging-{target}"
        uploads = {g.service: g.access for g in found["uploads"].grants if g.stack == stack}
        emails = {g.service: g.access for g in found["emails"].grants if g.stack == stack}
        assert uploads == {"web": ("write",), "worker": ("read",)}, target
        assert emails == {"web": ("send",), "worker": ("consume",)}, target
    assert not any(g.wildcards for r in report.resources for g in r.grants)
    markdown = render_markdown(report)
    assert "## Resources" in markdown
    assert '-.->|"consume"| r_queue_shop_staging_emails' in markdown
