"""Unit tests of the pure extraction functions of ``python -m report`` on small hand-made templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from report.assembly import AssemblyError, Stack, load_assembly, load_k8s
from report.extract import (
    Edge,
    build_report,
    extract_alarms,
    extract_health_checks,
    extract_iam,
    extract_reachability,
    extract_secrets,
    extract_stateful,
    summarize,
)
from report.iam import resource_matches
from report.intrinsics import fmt

FIXTURES = Path(__file__).parent / "fixtures"
HASH = "0123456789abcdef" * 4


def make_stack(name: str, resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> Stack:
    """A stack in account 111111111111 / eu-west-1 from a Resources (and optional Outputs) section."""
    template = {"Resources": resources, "Outputs": outputs or {}}
    return Stack(name, template, account="111111111111", region="eu-west-1", stack_name=name)


def ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def getatt(logical_id: str, attribute: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def join(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


def role(**properties: Any) -> dict[str, Any]:
    trust = {
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "x.amazonaws.com"}}]
    }
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust, **properties}}


def policy(roles: list[Any], *statements: dict[str, Any]) -> dict[str, Any]:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return {"Type": "AWS::IAM::Policy", "Properties": {"PolicyName": "p", "Roles": roles, "PolicyDocument": document}}


def security_group(description: str, **properties: Any) -> dict[str, Any]:
    return {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": description, **properties}}


# --------------------------------------------------------------------------- intrinsics


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ref("Bucket"), "Ref:Bucket"),
        (getatt("Db", "Endpoint.Port"), "Db.Endpoint.Port"),
        ({"Fn::GetAtt": "Db.Endpoint.Address"}, "Db.Endpoint.Address"),
        (join("arn:", ref("AWS::Partition"), ":s3:::", ref("Bucket"), "/*"), "arn:${AWS::Partition}:s3:::${Bucket}/*"),
        (
            join(getatt("Db", "Endpoint.Address"), ":", getatt("Db", "Endpoint.Port")),
            "${Db.Endpoint.Address}:${Db.Endpoint.Port}",
        ),
        (
            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}::parameter/x"},
            "arn:${AWS::Partition}:ssm:${AWS::Region}::parameter/x",
        ),
        ({"Fn::Sub": ["${Host}:5432", {"Host": getatt("Db", "Endpoint.Address")}]}, "${Db.Endpoint.Address}:5432"),
        ({"Fn::ImportValue": "Network:VpcId"}, "Import:Network:VpcId"),
        ({"Fn::Select": [0, {"Fn::GetAZs": ""}]}, "Select(0, GetAZs())"),
        (f"s3://bucket/{HASH}.zip", "s3://bucket/<asset-hash>.zip"),
        (True, "true"),
        (8080, "8080"),
    ],
)
def test_fmt_renders_intrinsics_compactly(value: Any, expected: str) -> None:
    assert fmt(value) == expected


# --------------------------------------------------------------------------- reachability


def test_reachability_lists_sg_edges_and_flags_internet_ingress() -> None:
    app = make_stack(
        "App",
        {
            "Alb": security_group(
                "public load balancer",
                SecurityGroupIngress=[
                    {"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Description": "web"}
                ],
                SecurityGroupEgress=[{"CidrIp": "0.0.0.0/0", "IpProtocol": "-1"}],  # CIDR egress is not listed
            ),
            "Web": security_group("web tasks"),
            "DbSG": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {"GroupDescription": {"Fn::Sub": "${AWS::StackName} db"}},
            },
            "Db": {"Type": "AWS::RDS::DBInstance", "Properties": {}},
            "WebFromAlb": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": getatt("Web", "GroupId"),
                    "SourceSecurityGroupId": getatt("Alb", "GroupId"),
                    "IpProtocol": "tcp",
                    "FromPort": 8000,
                    "ToPort": 8100,
                },
            },
            "DbFromWeb": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": ref("DbSG"),
                    "SourceSecurityGroupId": getatt("Web", "GroupId"),
                    "IpProtocol": "6",
                    "FromPort": getatt("Db", "Endpoint.Port"),
                    "ToPort": getatt("Db", "Endpoint.Port"),
                },
            },
            "AnyFromVpn": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {"GroupId": ref("Web"), "CidrIpv6": "::/0", "IpProtocol": "-1"},
            },
        },
    )

    edges = extract_reachability([app])

    assert edges == [
        Edge("0.0.0.0/0", "public load balancer (App)", "tcp", "443", "ingress", "App", "Alb (inline)", "web", True),
        Edge("::/0", "web tasks (App)", "all", "all", "ingress", "App", "AnyFromVpn", "", True),
        Edge(
            "public load balancer (App)",
            "web tasks (App)",
            "tcp",
            "8000-8100",
            "ingress",
            "App",
            "WebFromAlb",
            "",
            False,
        ),
        # the description is not a literal, so the group is named by stack and logical id
        Edge(
            "web tasks (App)",
            "App/DbSG",
            "tcp",
            "database (App) Endpoint.Port",
            "ingress",
            "App",
            "DbFromWeb",
            "",
            False,
        ),
    ]
    assert [edge.internet for edge in edges].count(True) == 2


def test_import_value_resolves_to_the_exporting_stacks_group() -> None:
    network = make_stack(
        "Network",
        {"DbSG": security_group("database"), "Db": {"Type": "AWS::RDS::DBCluster", "Properties": {}}},
        outputs={
            "DbSGId": {"Value": getatt("DbSG", "GroupId"), "Export": {"Name": "Network:DbSGId"}},
            "DbPort": {
                "Value": getatt("Db", "Endpoint.Port"),
                "Export": {"Name": {"Fn::Sub": "${AWS::StackName}:DbPort"}},
            },
        },
    )
    app = make_stack(
        "App",
        {
            "Web": security_group("web tasks"),
            "DbFromWeb": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": {"Fn::ImportValue": "Network:DbSGId"},
                    "SourceSecurityGroupId": ref("Web"),
                    "IpProtocol": "tcp",
                    "FromPort": {"Fn::ImportValue": "Network:DbPort"},
                    "ToPort": {"Fn::ImportValue": "Network:DbPort"},
                },
            },
            "FromLegacy": {
                "Type": "AWS::EC2::SecurityGroupIngress",
                "Properties": {
                    "GroupId": ref("Web"),
                    "SourceSecurityGroupId": {"Fn::ImportValue": "Legacy:GroupId"},
                    "IpProtocol": "tcp",
                    "FromPort": 80,
                    "ToPort": 80,
                },
            },
        },
    )

    edges = {(edge.source, edge.destination, edge.ports) for edge in extract_reachability([network, app])}

    assert edges == {
        ("web tasks (App)", "database (Network)", "database (Network) Endpoint.Port"),
        ("Legacy:GroupId", "web tasks (App)", "80"),  # not exported by any template: shown as the import name
    }


def test_groups_with_the_same_description_get_distinct_names() -> None:
    stack = make_stack(
        "App",
        {
            "A": security_group(
                "same", SecurityGroupIngress=[{"CidrIp": "10.0.0.0/8", "IpProtocol": "tcp", "FromPort": 1}]
            ),
            "B": security_group(
                "same", SecurityGroupIngress=[{"CidrIp": "10.0.0.0/8", "IpProtocol": "tcp", "FromPort": 1}]
            ),
        },
    )
    assert {edge.destination for edge in extract_reachability([stack])} == {"same (App/A)", "same (App/B)"}


# --------------------------------------------------------------------------- secrets


def _ecs_stack() -> Stack:
    return make_stack(
        "App",
        {
            "DbSecret": {"Type": "AWS::SecretsManager::Secret", "Properties": {}},
            "ExecRole": role(),
            "ExecPolicy": policy(
                [ref("ExecRole")],
                {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": ref("DbSecret")},
                {
                    "Effect": "Allow",
                    "Action": "ssm:GetParameters",
                    "Resource": join(
                        "arn:",
                        ref("AWS::Partition"),
                        ":ssm:",
                        ref("AWS::Region"),
                        ":",
                        ref("AWS::AccountId"),
                        ":parameter/app/*",
                    ),
                },
            ),
            "OpsRole": role(),
            "OpsPolicy": policy([ref("OpsRole")], {"Effect": "Allow", "Action": "*", "Resource": "*"}),
            "OtherRole": role(),
            "OtherPolicy": policy([ref("OtherRole")], {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Family": "web",
                    "ExecutionRoleArn": getatt("ExecRole", "Arn"),
                    "ContainerDefinitions": [
                        {
                            "Name": "app",
                            "Secrets": [
                                {"Name": "DB_PASSWORD", "ValueFrom": join(ref("DbSecret"), ":password::")},
                                {
                                    "Name": "API_KEY",
                                    "ValueFrom": "arn:aws:ssm:eu-west-1:111111111111:parameter/app/api-key",
                                },
                                {"Name": "OTHER", "ValueFrom": "/other/token"},
                            ],
                        }
                    ],
                },
            },
        },
    )


def test_ecs_secrets_map_setting_to_secret_and_readers() -> None:
    uses = {use.setting: use for use in extract_secrets([_ecs_stack()])}

    password = uses["DB_PASSWORD"]
    assert (password.target, password.source, password.reference, password.store) == (
        "web/app",
        "ECS",
        "${App/DbSecret}:password::",
        "secretsmanager",
    )
    assert password.consumer == "App/ExecRole"
    assert password.readers == ("App/ExecRole", "App/OpsRole")  # matched by the same Ref token, and "*"
    assert password.consumer_can_read is True

    api_key = uses["API_KEY"]
    assert api_key.store == "ssm"
    assert api_key.readers == ("App/ExecRole", "App/OpsRole")  # wildcard ARN pattern with pseudo parameters

    other = uses["OTHER"]
    assert other.readers == ("App/OpsRole",)
    assert other.consumer_can_read is False


def test_beanstalk_secrets_are_read_by_the_instance_profile_role() -> None:
    stack = make_stack(
        "Worker",
        {
            "Role": role(),
            "Profile": {"Type": "AWS::IAM::InstanceProfile", "Properties": {"Roles": [ref("Role")]}},
            "RolePolicy": policy(
                [ref("Role")],
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "arn:aws:secretsmanager:*:*:secret:worker/*",
                },
            ),
            "Env": {
                "Type": "AWS::ElasticBeanstalk::Environment",
                "Properties": {
                    "OptionSettings": [
                        {
                            "Namespace": "aws:autoscaling:launchconfiguration",
                            "OptionName": "IamInstanceProfile",
                            "Value": ref("Profile"),
                        },
                        {
                            "Namespace": "aws:elasticbeanstalk:application:environmentsecrets",
                            "OptionName": "TOKEN",
                            "Value": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:worker/token-AbCdEf",
                        },
                    ]
                },
            },
        },
    )

    (use,) = extract_secrets([stack])

    assert (use.target, use.setting, use.store, use.consumer) == ("Env", "TOKEN", "secretsmanager", "Worker/Role")
    assert use.readers == ("Worker/Role",)
    assert use.consumer_can_read is True


def test_external_secrets_match_named_parameters_of_the_assembly() -> None:
    shared = make_stack(
        "Shared",
        {
            "Param": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/shop/api-key", "Type": "String", "Value": "x"},
            },
            "Reader": role(),
            "ReaderPolicy": policy(
                [ref("Reader")],
                {
                    "Effect": "Allow",
                    "Action": "ssm:GetParameter",
                    "Resource": join(
                        "arn:", ref("AWS::Partition"), ":ssm:eu-west-1:111111111111:parameter", ref("Param")
                    ),
                },
            ),
        },
    )
    external_secret = {
        "kind": "ExternalSecret",
        "metadata": {"name": "settings", "namespace": "shop"},
        "spec": {
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "aws"},
            "data": [{"secretKey": "API_KEY", "remoteRef": {"key": "/shop/api-key"}}],
        },
    }

    (use,) = extract_secrets([shared], [external_secret])

    assert (use.target, use.stack, use.setting, use.reference) == ("shop/settings", "k8s", "API_KEY", "/shop/api-key")
    assert (use.store, use.consumer, use.consumer_can_read) == ("ssm", "ClusterSecretStore/aws", None)
    assert use.readers == ("Shared/Reader",)  # the grant names the parameter by Ref, which is its name


@pytest.mark.parametrize(
    ("pattern", "target", "expected"),
    [
        ("*", "anything", True),
        ("${S:Secret}", "${S:Secret}:password::", True),
        (
            "arn:aws:secretsmanager:eu-west-1:1:secret:app/db-??????",
            "arn:aws:secretsmanager:eu-west-1:1:secret:app/db-AbCdEf:user::",
            True,
        ),
        ("arn:aws:ssm:eu-west-1:1:parameter/app/*", "/app/key", True),
        ("arn:aws:ssm:eu-west-1:1:parameter/other/*", "/app/key", False),
        ("arn:aws:secretsmanager:*:*:secret:app/db-??????", "app/db", True),
        ("${S:Other}", "${S:Secret}", False),
    ],
)
def test_resource_matches(pattern: str, target: str, expected: bool) -> None:
    assert resource_matches(pattern, target) is expected


# --------------------------------------------------------------------------- IAM


def test_iam_flags_wildcard_actions_and_resources() -> None:
    stack = make_stack(
        "App",
        {
            "Admin": role(
                ManagedPolicyArns=[join("arn:", ref("AWS::Partition"), ":iam::aws:policy/service-role/AWSLambdaRole")],
                Policies=[
                    {
                        "PolicyName": "all",
                        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
                    }
                ],
            ),
            "Worker": role(),
            "WorkerPolicy": policy(
                [ref("Worker")],
                {"Effect": "Allow", "Action": ["s3:*"], "Resource": getatt("Bucket", "Arn")},
                {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": getatt("Queue", "Arn")},
                {"Effect": "Deny", "Action": "*", "Resource": "*"},  # a Deny is never a finding
            ),
        },
    )

    principals = {principal.role: principal for principal in extract_iam([stack])}

    admin = principals["App/Admin"]
    assert admin.managed_policies == ("AWSLambdaRole",)
    assert admin.assumed_by == ("x.amazonaws.com",)
    assert [statement.wildcards for statement in admin.statements] == [("action *", "resource *")]
    worker = principals["App/Worker"]
    assert worker.actions == ("s3:*", "sqs:SendMessage")
    assert [statement.wildcards for statement in worker.statements] == [("action s3:*",), (), ()]
    assert worker.statements[0].resources == ("Bucket.Arn",)


def test_customer_managed_policies_are_expanded_and_counted_once() -> None:
    statement = {"Effect": "Allow", "Action": "logs:*", "Resource": "*"}
    stack = make_stack(
        "App",
        {
            "Shared": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {"Statement": [statement]}}},
            "A": role(ManagedPolicyArns=[ref("Shared")]),
            "B": role(ManagedPolicyArns=[ref("Shared")]),
        },
    )
    report = build_report([stack])
    assert [principal.actions for principal in report.iam] == [("logs:*",), ("logs:*",)]
    assert summarize(report)["wildcard_iam_statements"] == 1


# --------------------------------------------------------------------------- alarms


def test_alarms_without_actions_or_dimensions_are_flagged() -> None:
    metric = {"Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage", "Statistic": "Maximum"}
    stack = make_stack(
        "App",
        {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Good": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    **metric,
                    "AlarmName": "queue-age",
                    "Dimensions": [{"Name": "QueueName", "Value": getatt("Queue", "QueueName")}],
                    "Threshold": 300,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "Period": 60,
                    "EvaluationPeriods": 5,
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [ref("Topic")],
                },
            },
            "Silent": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {**metric, "Threshold": 1, "EvaluationPeriods": 1},
            },
        },
    )

    alarms = {alarm.name: alarm for alarm in extract_alarms([stack])}

    good = alarms["queue-age"]
    assert (good.dimensions, good.actions, good.flags) == (("QueueName",), ("App/Topic",), ())
    assert (good.statistic, good.threshold, good.comparison, good.period, good.evaluation_periods) == (
        "Maximum",
        "300",
        "GreaterThanThreshold",
        "60s",
        "5",
    )
    assert alarms["Silent"].flags == ("no actions", "no dimensions")
    assert alarms["Silent"].treat_missing_data == "missing"


def test_metric_math_alarm_takes_dimensions_from_its_metrics() -> None:
    stat = {
        "Metric": {"Namespace": "AWS/ELB", "MetricName": "5xx", "Dimensions": [{"Name": "LoadBalancer", "Value": "x"}]}
    }
    properties = {
        "Metrics": [
            {"Id": "m1", "MetricStat": {**stat, "Period": 60, "Stat": "Sum"}},
            {"Id": "e1", "Expression": "m1 * 2"},
        ],
        "EvaluationPeriods": 1,
        "Threshold": 5,
        "AlarmActions": ["arn:aws:sns:eu-west-1:111111111111:ops"],
    }
    (alarm,) = extract_alarms(
        [make_stack("App", {"Math": {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}})]
    )
    assert (alarm.metric, alarm.dimensions, alarm.statistic, alarm.period, alarm.flags) == (
        "5xx, m1 * 2",
        ("LoadBalancer",),
        "Sum",
        "60s",
        (),
    )


# --------------------------------------------------------------------------- health checks


def test_health_checks_of_target_groups_beanstalk_ecs_and_k8s() -> None:
    process = "aws:elasticbeanstalk:environment:process:default"
    stack = make_stack(
        "App",
        {
            "TG": {
                "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                "Properties": {
                    "Protocol": "HTTP",
                    "HealthCheckPath": "/up",
                    "Matcher": {"HttpCode": "200"},
                    "HealthyThresholdCount": 2,
                },
            },
            "Env": {
                "Type": "AWS::ElasticBeanstalk::Environment",
                "Properties": {
                    "EnvironmentName": "worker",
                    "OptionSettings": [
                        {"Namespace": process, "OptionName": "HealthCheckPath", "Value": "/health"},
                        {"Namespace": process, "OptionName": "HealthCheckInterval", "Value": "15"},
                    ],
                },
            },
            "Task": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "ContainerDefinitions": [
                        {
                            "Name": "app",
                            "HealthCheck": {"Command": ["CMD", "/bin/check"], "Retries": 4, "StartPeriod": 30},
                        },
                        {"Name": "sidecar"},
                    ]
                },
            },
        },
    )
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8000}, "periodSeconds": 5},
                        },
                        {"name": "proxy"},
                    ]
                }
            }
        },
    }

    checks = {(check.target, check.kind): check for check in extract_health_checks([stack], [deployment])}

    assert set(checks) == {
        ("TG", "ELBv2 target group"),
        ("worker", "EB process default"),
        ("Task/app", "ECS container"),
        ("Deployment web/app", "k8s readiness"),
        ("Deployment web/proxy", "k8s (no probes)"),
    }
    assert (checks[("TG", "ELBv2 target group")].check, checks[("TG", "ELBv2 target group")].matcher) == ("/up", "200")
    assert checks[("worker", "EB process default")].interval == "15s"
    assert (checks[("Task/app", "ECS container")].unhealthy, checks[("Task/app", "ECS container")].grace) == (
        "4",
        "30s",
    )
    assert (
        checks[("Deployment web/app", "k8s readiness")].check,
        checks[("Deployment web/app", "k8s readiness")].port,
    ) == (
        "/ready",
        "8000",
    )


# --------------------------------------------------------------------------- stateful resources


def test_stateful_resources_with_their_retention() -> None:
    bucket = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    secure = {"Type": "Custom::SSMSecureParameter", "Properties": {}}
    stack = make_stack("Data", {"Logs2": bucket, "Db": {"Type": "AWS::RDS::DBInstance"}, "Setting": secure})
    assert [(item.logical_id, item.deletion_policy) for item in extract_stateful([stack])] == [
        ("Db", ""),
        ("Logs2", "Retain"),
        ("Setting", ""),
    ]


# --------------------------------------------------------------------------- loading


def test_load_assembly_follows_nested_stage_assemblies() -> None:
    stacks = load_assembly(FIXTURES / "assembly")
    assert [(stack.name, stack.stack_name, stack.account, stack.region) for stack in stacks] == [
        ("Prod/App", "Prod-App", "111111111111", "eu-west-1"),
        ("Prod/Network", "Prod-Network", "111111111111", "eu-west-1"),
        ("Shared", "Shared", "111111111111", "eu-west-1"),
    ]


def test_load_assembly_without_manifest_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(AssemblyError, match=r"no cloud assembly at .* run 'make synth' first"):
        load_assembly(tmp_path / "cdk.out")


def test_load_k8s_reads_multi_document_yaml() -> None:
    kinds = [obj["kind"] for obj in load_k8s(FIXTURES / "k8s")]
    assert kinds == ["Deployment", "Service", "ExternalSecret"]


def test_fixture_assembly_summary() -> None:
    report = build_report(load_assembly(FIXTURES / "assembly"), load_k8s(FIXTURES / "k8s"))
    counts = summarize(report)
    assert counts["internet_facing_ingress"] == 2
    assert counts["wildcard_iam_statements"] == 2
    assert counts["alarms_without_actions"] == 1
    assert counts["secret_settings_consumer_cannot_read"] == 1
