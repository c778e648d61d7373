"""The "what changes" review on small hand-made template pairs: replacement prediction, each semantic section,
name resolution of every intrinsic the project emits, and the comment's size limit."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from report.assembly import Stack
from report.changes import ResourceChange, diff_resources
from report.compare import Review, review
from report.extract import build_report
from report.render_review import MARKER, StagePage, render_comment, render_page
from report.resolve import Resolver
from tests.report.test_extract import getatt, join, make_stack, policy, ref, role, security_group


def path(stack: str, construct: str) -> dict[str, Any]:
    return {"aws:cdk:path": f"{stack}/{construct}/Resource"}


def db(**properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::RDS::DBInstance",
        "DeletionPolicy": "Snapshot",
        "UpdateReplacePolicy": "Snapshot",
        "Properties": {"Engine": "postgres", "DBName": "shop", "DBInstanceClass": "db.t4g.micro", **properties},
        "Metadata": path("Data", "Database"),
    }


def changes(base: list[Stack], head: list[Stack]) -> dict[str, ResourceChange]:
    return {change.logical_id: change for change in diff_resources(base, head)}


def compare(base: list[Stack], head: list[Stack]) -> Review:
    return review(build_report(base), build_report(head), base, head)


# --------------------------------------------------------------------------- replacement prediction


def test_a_create_only_property_change_would_replace_the_database_with_the_cause() -> None:
    found = changes([make_stack("Data", {"Db": db()})], [make_stack("Data", {"Db": db(DBName="shop2")})])
    change = found["Db"]
    assert (change.action, change.certainty, change.stateful, change.name) == (
        "replace",
        "would",
        True,
        "PostgreSQL (Data)",
    )
    assert change.cause == "DBName (create-only)"
    assert [(p.path, p.before, p.after, p.create_only) for p in change.properties] == [
        ("DBName", "shop", "shop2", True)
    ]
    assert change.data == "a final snapshot is taken (UpdateReplacePolicy Snapshot); the new one starts empty"


def test_an_updatable_property_is_an_update_not_a_replacement() -> None:
    found = changes(
        [make_stack("Data", {"Db": db()})], [make_stack("Data", {"Db": db(DBInstanceClass="db.t4g.large")})]
    )
    assert found["Db"].action == "update"
    assert not found["Db"].loud


def test_a_token_valued_create_only_change_may_replace() -> None:
    base = make_stack("Data", {"Db": db(), "Key": {"Type": "AWS::KMS::Key"}, "Key2": {"Type": "AWS::KMS::Key"}})
    head = copy.deepcopy(base.template)
    head["Resources"]["Db"]["Properties"]["KmsKeyId"] = ref("Key2")
    base.template["Resources"]["Db"]["Properties"]["KmsKeyId"] = ref("Key")  # type: ignore[index]
    found = changes([base], [make_stack("Data", head["Resources"])])
    assert (found["Db"].action, found["Db"].certainty) == ("replace", "may")


def test_the_same_value_written_differently_is_no_change() -> None:
    literal = {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/shop/eu-west-1/x", "Type": "String"}}
    token = copy.deepcopy(literal)
    token["Properties"]["Name"] = join("/shop/", ref("AWS::Region"), "/x")
    assert changes([make_stack("S", {"P": literal})], [make_stack("S", {"P": token})]) == {}


def test_weaker_retention_is_reported() -> None:
    weak = db()
    weak["DeletionPolicy"] = "Delete"
    found = changes([make_stack("Data", {"Db": db()})], [make_stack("Data", {"Db": weak})])
    assert (found["Db"].action, found["Db"].cause) == ("retention", "DeletionPolicy Snapshot → Delete")
    assert found["Db"].loud


def test_a_removed_resource_is_deleted_with_its_data_per_the_base_policy() -> None:
    found = changes([make_stack("Data", {"Db": db()})], [make_stack("Data", {})])
    assert (found["Db"].action, found["Db"].stateful) == ("remove", True)
    assert found["Db"].data.startswith("a final snapshot is taken (DeletionPolicy Snapshot)")


def test_a_changed_logical_id_is_a_replacement_not_an_addition() -> None:
    bucket = {"Type": "AWS::S3::Bucket", "Metadata": path("Data", "Uploads")}
    found = changes(
        [make_stack("Data", {"UploadsA1B2C3D4": bucket})], [make_stack("Data", {"UploadsE5F6A7B8": bucket})]
    )
    assert list(found) == ["UploadsA1B2C3D4"]
    change = found["UploadsA1B2C3D4"]
    assert (change.action, change.certainty, change.stateful, change.name) == ("replace", "would", True, "Data/Uploads")
    assert "logical ID changed to UploadsE5F6A7B8" in change.cause


def test_replacement_cascades_through_references_across_stacks() -> None:
    def network(cidr: str) -> Stack:
        return make_stack(
            "Network",
            {
                "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": cidr}},
                "Subnet": {
                    "Type": "AWS::EC2::Subnet",
                    "Properties": {"VpcId": ref("Vpc"), "CidrBlock": cidr.replace("/16", "/24")},
                },
            },
            {"SubnetOut": {"Value": ref("Subnet")}, "VpcOut": {"Value": ref("Vpc")}},
        )

    def imported(name: str) -> dict[str, Any]:
        return {"Fn::GetStackOutput": {"StackName": "Network", "OutputName": name, "Region": "eu-west-1"}}

    data = make_stack(
        "Data",
        {
            "Group": {"Type": "AWS::RDS::DBSubnetGroup", "Properties": {"SubnetIds": [imported("SubnetOut")]}},
            "Db": db(DBSubnetGroupName=ref("Group")),
            "Sg": security_group("PostgreSQL", VpcId=imported("VpcOut")),
        },
    )
    found = changes([network("10.0.0.0/16"), data], [network("10.1.0.0/16"), data])
    assert {key: (c.action, c.certainty) for key, c in found.items()} == {
        "Vpc": ("replace", "would"),
        "Subnet": ("replace", "would"),
        "Group": ("replace", "would"),
        "Db": ("replace", "would"),
        "Sg": ("replace", "would"),
    }
    assert found["Sg"].cause == "VpcId refers to VPC (Network), which is replaced"
    assert "cannot move to another VPC" in found["Group"].cause
    first = diff_resources([network("10.0.0.0/16"), data], [network("10.1.0.0/16"), data])[0]
    assert first.logical_id == "Vpc"  # the cause comes first, what follows from it after


def test_an_image_bump_is_only_an_image_change() -> None:
    def task(image: str) -> dict[str, Any]:
        container = {"Name": "app", "Image": image, "Essential": True}
        sidecar = {"Name": "log", "Image": "fluent-bit:3", "Essential": False}
        return {"Type": "AWS::ECS::TaskDefinition", "Properties": {"ContainerDefinitions": [container, sidecar]}}

    base = [make_stack("App", {"Task": task("shop:1.0.0")})]
    head = [make_stack("App", {"Task": task("shop:1.1.0")})]
    result = compare(base, head)
    assert result.loud == [] and result.findings == [] and result.other == []
    assert [(row.what, row.path, row.before, row.after) for row in result.runtime] == [
        ("image", "ContainerDefinitions[app].Image", "shop:1.0.0", "shop:1.1.0")
    ]
    assert result.resources[0].action == "revision"


def test_named_list_items_are_matched_by_name_not_position() -> None:
    tags = [{"Key": "app", "Value": "shop"}, {"Key": "stage", "Value": "dev"}]
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"Tags": tags}}
    reordered = {"Type": "AWS::S3::Bucket", "Properties": {"Tags": list(reversed(tags))}}
    assert changes([make_stack("S", {"B": bucket})], [make_stack("S", {"B": reordered})]) == {}


# --------------------------------------------------------------------------- semantic sections


def _app(*, public_port: int | None = None, actions: str = "sqs:SendMessage", threshold: int = 5) -> Stack:
    alb_rules = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}]
    if public_port is not None:
        alb_rules.append({"IpProtocol": "tcp", "FromPort": public_port, "ToPort": public_port, "CidrIp": "0.0.0.0/0"})
    alarm = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": "web-5xx",
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": [{"Name": "LoadBalancer", "Value": "x"}],
            "Statistic": "Sum",
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": threshold,
            "Period": 60,
            "EvaluationPeriods": 3,
            "AlarmActions": ["arn:aws:sns:eu-west-1:111111111111:alerts"],
        },
    }
    return make_stack(
        "App",
        {
            "Alb": security_group("public load balancer", SecurityGroupIngress=alb_rules),
            "Task": role(),
            "TaskPolicy": policy([ref("Task")], {"Effect": "Allow", "Action": actions, "Resource": "*"}),
            "Alarm": alarm,
        },
    )


def test_a_new_internet_facing_rule_is_the_first_finding_and_the_headline() -> None:
    result = compare([_app()], [_app(public_port=22)])
    first = result.findings[0]
    assert (first.section, first.change, first.subject, first.detail, first.flags) == (
        "reachability",
        "added",
        "0.0.0.0/0 → public load balancer (App)",
        "tcp 22",
        ("internet-facing",),
    )
    page = render_page(StagePage("dev", "base", "head", "account x", result, "", "{}"))
    assert "🌐 **1 new internet-facing rule(s)**" in page.splitlines()[4]


def test_iam_changes_per_principal_with_wildcards_flagged() -> None:
    result = compare([_app()], [_app(actions="s3:*")])
    iam = [(f.change, f.subject, f.detail, f.flags) for f in result.findings if f.section == "iam"]
    assert iam == [
        ("added", "App/Task", "s3:* on *", ("wildcard",)),
        ("removed", "App/Task", "sqs:SendMessage on *", ()),
    ]


def test_a_loosened_alarm_is_flagged_and_a_removed_one_too() -> None:
    loosened = compare([_app()], [_app(threshold=50)])
    assert [(f.change, f.detail, f.flags) for f in loosened.findings if f.section == "alarms"] == [
        ("loosened", "threshold 5 → 50", ("fires later",))
    ]
    without = _app()
    del without.template["Resources"]["Alarm"]  # type: ignore[attr-defined]
    removed = compare([_app()], [without])
    assert [(f.change, f.subject) for f in removed.findings if f.section == "alarms"] == [("removed", "web-5xx")]


def test_a_new_secret_reader_is_reported() -> None:
    def stack(readers: list[str]) -> Stack:
        task = {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "ExecutionRoleArn": getatt("Exec", "Arn"),
                "ContainerDefinitions": [
                    {"Name": "app", "Secrets": [{"Name": "API_KEY", "ValueFrom": "/shop/dev/API_KEY"}]}
                ],
            },
        }
        grant = {
            "Effect": "Allow",
            "Action": "ssm:GetParameters",
            "Resource": "arn:aws:ssm:eu-west-1:111111111111:parameter/shop/dev/API_KEY",
        }
        resources: dict[str, Any] = {"Task": task, "Exec": role(), "Other": role()}
        resources["Grant"] = policy([ref(name) for name in readers], grant)
        return make_stack("App", resources)

    result = compare([stack(["Exec"])], [stack(["Exec", "Other"])])
    assert [(f.change, f.subject, f.detail) for f in result.findings if f.section == "secrets"] == [
        ("can now read", "App/Other", "/shop/dev/API_KEY")
    ]


def test_a_health_check_change_is_reported() -> None:
    def stack(path_: str) -> Stack:
        group = {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {"HealthCheckPath": path_}}
        return make_stack("App", {"Targets": group})

    result = compare([stack("/health")], [stack("/")])
    assert [(f.change, f.detail) for f in result.findings if f.section == "health"] == [
        ("changed", "check /health → /")
    ]


# --------------------------------------------------------------------------- names, not tokens


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ref("Db"), "PostgreSQL (Data)"),
        (getatt("Db", "Endpoint.Port"), "5432"),
        (getatt("Db", "Endpoint.Address"), "PostgreSQL (Data) Endpoint.Address"),
        (ref("AWS::Region"), "eu-west-1"),
        (join("arn:", ref("AWS::Partition"), ":rds:", ref("AWS::Region")), "arn:aws:rds:eu-west-1"),
        ({"Fn::Sub": "${Db.Endpoint.Address}:${AWS::Region}"}, "${PostgreSQL (Data) Endpoint.Address}:eu-west-1"),
        # from the consuming stack: weak (GetStackOutput) and exported (ImportValue) cross-stack references
        ({"Fn::GetStackOutput": {"StackName": "Data", "OutputName": "DbPort", "Region": "eu-west-1"}}, "5432"),
        ({"Fn::ImportValue": "Data:DbRef"}, "PostgreSQL (Data)"),
        ({"Fn::GetStackOutput": {"StackName": "Gone", "OutputName": "X"}}, "output X of Gone"),
        ({"Fn::Select": [0, ["a", "b"]]}, "Select(0, [a, b])"),
    ],
)
def test_every_intrinsic_resolves_to_a_readable_name(value: Any, expected: str) -> None:
    data = make_stack(
        "Data",
        {"Db": db()},
        {
            "DbPort": {"Value": getatt("Db", "Endpoint.Port")},
            "DbRef": {"Value": ref("Db"), "Export": {"Name": "Data:DbRef"}},
        },
    )
    app = make_stack("App", {})
    cross_stack = "GetStackOutput" in str(value) or "ImportValue" in str(value)
    assert Resolver([data, app]).display(value, app if cross_stack else data) == expected


# --------------------------------------------------------------------------- the comment


def test_the_comment_stays_under_the_limit_and_points_at_the_artifact() -> None:
    base = [make_stack("Data", {f"Db{i}": db() for i in range(300)})]
    head = [make_stack("Data", {f"Db{i}": db(DBName=f"shop{i}") for i in range(300)})]
    result = compare(base, head)
    page = StagePage("dev", "base", "head", "account x", result, "", "{}")
    text = render_comment([page, page, page], limit=20_000)
    assert len(text) <= 20_000
    assert text.startswith(MARKER)
    assert text.rstrip().endswith("(`cdk.out/review/` after `make review`).")
    assert "**truncated**" in text
    short = render_comment([StagePage("dev", "base", "head", "account x", compare(base, base), "", "{}")])
    assert "No infrastructure change." in short and "truncated" not in short


def test_a_refused_synth_puts_its_lines_in_the_comment() -> None:
    text = render_comment([], ["cannot synthesize: shop-dev: 1 problem(s):", "  [db-public] database.x: … — fix"])
    assert "does not synthesize" in text and "[db-public] database.x" in text


def test_cloudformation_default_policies_count_when_none_is_written() -> None:
    bare = db()
    del bare["DeletionPolicy"], bare["UpdateReplacePolicy"]
    removed = changes([make_stack("Data", {"Db": bare})], [make_stack("Data", {})])["Db"]
    assert removed.data.startswith("a final snapshot is taken (DeletionPolicy Snapshot)")  # the RDS default
    replaced = changes(
        [make_stack("Data", {"Db": bare})],
        [make_stack("Data", {"Db": {**bare, "Properties": {**bare["Properties"], "DBName": "x"}}})],
    )["Db"]
    assert replaced.data == "its data is deleted (UpdateReplacePolicy Delete)"


def test_a_stack_that_leaves_the_app_is_reported_once_and_kept_running() -> None:
    eb = make_stack(
        "Eb",
        {
            "Public": security_group(
                "EB ALB",
                SecurityGroupIngress=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"}],
            )
        },
    )
    result = compare([_app(), eb], [_app()])
    (left,) = result.loud
    assert (left.action, left.stack) == ("orphan", "Eb")
    assert "cdk deploy leaves it running" in left.cause
    assert [f for f in result.findings if f.section == "reachability"] == []  # still open: not "removed"


def test_a_public_eks_api_endpoint_is_an_internet_facing_edge() -> None:
    def cluster(public: bool) -> Stack:
        config = {"EndpointPublicAccess": public, "EndpointPrivateAccess": True}
        return make_stack(
            "Eks", {"Cluster": {"Type": "AWS::EKS::Cluster", "Properties": {"ResourcesVpcConfig": config}}}
        )

    found = [f for f in compare([cluster(False)], [cluster(True)]).findings if f.section == "reachability"]
    assert [(f.change, f.subject, f.flags) for f in found] == [
        ("added", "0.0.0.0/0 → EKS API endpoint (Eks)", ("internet-facing",))
    ]


def test_beanstalk_options_are_matched_by_namespace_and_name() -> None:
    def environment(*options: tuple[str, str, str]) -> Stack:
        settings = [{"Namespace": ns, "OptionName": name, "Value": value} for ns, name, value in options]
        env = {"Type": "AWS::ElasticBeanstalk::Environment", "Properties": {"OptionSettings": settings}}
        return make_stack("Eb", {"Env": env})

    base = environment(("aws:autoscaling:asg", "MinSize", "1"), ("aws:elbv2:listener:443", "Protocol", "HTTPS"))
    head = environment(
        ("aws:elbv2:listener:80", "Protocol", "HTTP"),  # inserted first: positions shift, names do not
        ("aws:autoscaling:asg", "MinSize", "2"),
        ("aws:elbv2:listener:443", "Protocol", "HTTPS"),
    )
    result = compare([base], [head])
    assert [(r.what, r.path, r.before, r.after) for r in result.runtime] == [
        ("sizing", "OptionSettings[aws:autoscaling:asg:MinSize].Value", "1", "2")
    ]
    assert [r.path for r in result.other] == ["OptionSettings[aws:elbv2:listener:80:Protocol]"]


def test_removing_every_alarm_subscription_says_nobody_is_notified() -> None:
    def topic(*emails: str) -> Stack:
        subscriptions = [{"Protocol": "email", "Endpoint": email} for email in emails]
        return make_stack(
            "Data", {"Alarms": {"Type": "AWS::SNS::Topic", "Properties": {"Subscription": subscriptions}}}
        )

    found = [f for f in compare([topic("oncall@example.com")], [topic()]).findings if f.section == "alarms"]
    assert [(f.change, f.subject, f.flags) for f in found] == [
        ("notifies no more", "email oncall@example.com", ("nobody is notified",))
    ]


def test_what_refers_to_a_replaced_resource_is_listed_as_updated() -> None:
    def stack(name: str) -> Stack:
        return make_stack(
            "Data",
            {
                "Db": db(DBName=name),
                "Out": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {"Type": "String", "Value": getatt("Db", "Endpoint.Address")},
                },
            },
        )

    found = changes([stack("a")], [stack("b")])
    assert (found["Out"].action, found["Out"].cause) == ("update", "refers to PostgreSQL (Data), which is replaced")


def test_a_listener_swapped_on_the_same_port_warns_that_the_deploy_fails() -> None:
    def listener(action: str) -> dict[str, Any]:
        return {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {"LoadBalancerArn": ref("Alb"), "Port": 80, "DefaultActions": [{"Type": action}]},
        }

    alb = {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {}}
    found = changes(
        [make_stack("App", {"Alb": alb, "Http": listener("forward")})],
        [make_stack("App", {"Alb": alb, "Redirect80To443": listener("redirect")})],
    )
    assert found["Http"].action == "remove"
    assert "DuplicateListener" in found["Http"].cause and "Redirect80To443" in found["Http"].cause


def test_a_new_role_is_one_line_with_its_counts() -> None:
    extra = _app()
    extra.template["Resources"]["Extra"] = role()  # type: ignore[index]
    extra.template["Resources"]["ExtraPolicy"] = policy(  # type: ignore[index]
        [ref("Extra")], {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "sqs:*"], "Resource": "*"}
    )
    iam = [(f.change, f.subject, f.detail, f.flags) for f in compare([_app()], [extra]).findings if f.section == "iam"]
    assert iam == [
        ("new principal", "App/Extra", "3 actions, wildcard on s3:GetObject, s3:PutObject, sqs:*", ("wildcard",))
    ]
