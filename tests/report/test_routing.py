"""Several web services behind one load balancer (issue 17): the routing table, one diagram node per service,
alarms under their service and routing changes in plain words; on hand-made templates (ECS, EKS and Elastic
Beanstalk shapes) and on the synthesized config/examples/multi-web.yaml."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from config import load_config, resolve_account
from report.assembly import Stack, load_assembly
from report.compare import review
from report.extract import build_report
from report.render import render_json, render_markdown
from report.render_review import changes_markdown
from report.routing import extract_routes, has_rules
from stacks import build_stacks
from tests.conftest import ROOT, new_app
from tests.report.test_extract import FIXTURES, getatt, join, make_stack, ref, security_group

TASK_SG_DESCRIPTION = "ECS tasks"


def path(construct: str) -> dict[str, str]:
    return {"aws:cdk:path": f"App/{construct}/Resource"}


def target_group(health: str, port: int) -> dict[str, Any]:
    return {
        "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
        "Properties": {"Port": port, "Protocol": "HTTP", "HealthCheckPath": health, "HealthCheckPort": str(port)},
    }


def rule(group: str, priority: int, *, paths: list[str] | None = None, hosts: list[str] | None = None) -> dict:
    conditions = []
    if paths:
        conditions.append({"Field": "path-pattern", "PathPatternConfig": {"Values": paths}})
    if hosts:
        conditions.append({"Field": "host-header", "HostHeaderConfig": {"Values": hosts}})
    return {
        "Type": "AWS::ElasticLoadBalancingV2::ListenerRule",
        "Properties": {
            "Actions": [{"Type": "forward", "TargetGroupArn": ref(group)}],
            "Conditions": conditions,
            "ListenerArn": ref("Https"),
            "Priority": priority,
        },
    }


def service(name: str, group: str, sg: str) -> dict[str, dict[str, Any]]:
    """An ECS service (task definition with APP_SERVICE, own security group) registered into ``group``."""
    pascal = name.capitalize()
    env = [{"Name": "APP_SERVICE", "Value": name}]
    return {
        f"Task{pascal}": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {"ContainerDefinitions": [{"Name": "app", "Environment": env}]},
        },
        f"Service{pascal}": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "TaskDefinition": ref(f"Task{pascal}"),
                "LoadBalancers": [{"ContainerName": "app", "ContainerPort": 8000, "TargetGroupArn": ref(group)}],
                "NetworkConfiguration": {"AwsvpcConfiguration": {"SecurityGroups": [getatt(sg, "GroupId")]}},
            },
        },
        sg: security_group(f"{TASK_SG_DESCRIPTION} {name}"),
        f"{sg}FromAlb": {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "GroupId": getatt(sg, "GroupId"),
                "SourceSecurityGroupId": getatt("AlbSG", "GroupId"),
                "IpProtocol": "tcp",
                "FromPort": 8000,
                "ToPort": 8000,
            },
        },
    }


def alarm(name: str, group: str | None) -> dict[str, Any]:
    dimensions = [{"Name": "LoadBalancer", "Value": getatt("Alb", "LoadBalancerFullName")}]
    if group:
        dimensions.append({"Name": "TargetGroup", "Value": getatt(group, "TargetGroupFullName")})
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": dimensions,
            "Statistic": "Sum",
            "Threshold": 10,
            "ComparisonOperator": "GreaterThanThreshold",
            "EvaluationPeriods": 3,
            "Period": 300,
            "AlarmActions": [ref("Topic")],
        },
    }


def multi_web_resources() -> dict[str, Any]:
    """The ECS shape of issue 17: storefront (catch-all, 50000), api (/api/*, 10), admin (host, 5), 404 default."""
    resources: dict[str, Any] = {
        "AlbSG": security_group(
            "load balancer",
            SecurityGroupIngress=[{"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}],
        ),
        "Alb": {
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {"SecurityGroups": [getatt("AlbSG", "GroupId")]},
        },
        "Https": {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {
                "LoadBalancerArn": ref("Alb"),
                "Port": 443,
                "Protocol": "HTTPS",
                "DefaultActions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
            },
        },
        "Targets": {**target_group("/health", 8000), "Metadata": path("LoadBalancer/Targets")},
        "TargetsApi": {**target_group("/api/health", 8080), "Metadata": path("LoadBalancer/TargetsApi")},
        "TargetsAdmin": {**target_group("/health", 8000), "Metadata": path("LoadBalancer/TargetsAdmin")},
        "RouteStorefront": rule("Targets", 50000, paths=["/*"]),
        "RouteApi": rule("TargetsApi", 10, paths=["/api/*"]),
        "RouteAdmin": rule("TargetsAdmin", 5, hosts=["admin.example.com"]),
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "AlbTarget5xx": alarm("shop-dev-ecs-alb-HTTPCode_Target_5XX_Count", "Targets"),
        "ApiTarget5xx": alarm("shop-dev-ecs-api-HTTPCode_Target_5XX_Count", "TargetsApi"),
        "AdminTarget5xx": alarm("shop-dev-ecs-admin-HTTPCode_Target_5XX_Count", "TargetsAdmin"),
        "Elb5xx": alarm("shop-dev-ecs-alb-HTTPCode_ELB_5XX_Count", None),
    }
    resources |= service("storefront", "Targets", "StorefrontSG")
    resources |= service("api", "TargetsApi", "ApiSG")
    resources |= service("admin", "TargetsAdmin", "AdminSG")
    return resources


def multi_web(resources: dict[str, Any] | None = None) -> list[Stack]:
    return [make_stack("App", resources if resources is not None else multi_web_resources())]


# --------------------------------------------------------------------------- extraction


def test_every_listener_rule_says_which_service_gets_which_requests_and_its_health_check() -> None:
    routes = extract_routes(multi_web())
    rows = [(r.priority, r.match, r.destination, r.target_group, r.health_path, r.health_port) for r in routes]
    assert rows == [
        ("5", "admin.example.com", "admin", "LoadBalancer/TargetsAdmin", "/health", "8000"),
        ("10", "/api/*", "api", "LoadBalancer/TargetsApi", "/api/health", "8080"),
        ("50000", "/*", "storefront", "LoadBalancer/Targets", "/health", "8000"),
        ("default", "everything else", "fixed response 404", "", "", ""),
    ]
    assert {r.listener for r in routes} == {"HTTPS 443"}
    assert {r.load_balancer for r in routes} == {"load balancer (App)"}
    assert routes[1].group == f"{TASK_SG_DESCRIPTION} api (App)"
    assert has_rules(routes)


def test_a_single_web_listener_forwards_by_default_and_has_no_rules() -> None:
    resources = {k: v for k, v in multi_web_resources().items() if not k.startswith("Route")}
    resources["Https"]["Properties"]["DefaultActions"] = [{"Type": "forward", "TargetGroupArn": ref("Targets")}]
    routes = extract_routes(multi_web(resources))
    assert [(r.priority, r.destination) for r in routes] == [("default", "storefront")]
    assert not has_rules(routes)


def test_a_target_group_bound_by_a_kubernetes_target_group_binding_names_its_service() -> None:
    resources = {k: v for k, v in multi_web_resources().items() if not k.startswith(("Service", "Task"))}
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shop-api-settings"},
            "data": {"APP_SERVICE": "api"},
        },
        {
            "apiVersion": "elbv2.k8s.aws/v1beta1",
            "kind": "TargetGroupBinding",
            "metadata": {"name": "shop-api"},
            "spec": {"serviceRef": {"name": "shop-api", "port": 8080}, "targetGroupARN": "@TG@", "targetType": "ip"},
        },
    ]
    before, after = json.dumps(objects).split('"@TG@"')
    resources["WebApi"] = {
        "Type": "Custom::AWSCDK-EKS-KubernetesResource",
        "Properties": {"Manifest": join(before + '"', ref("TargetsApi"), '"' + after)},
    }
    objects[1]["spec"]["targetGroupARN"] = "@TG@"
    del objects[0]  # no APP_SERVICE setting in the manifest: the bound Kubernetes Service names it
    before, after = json.dumps(objects).split('"@TG@"')
    resources["WebAdmin"] = {
        "Type": "Custom::AWSCDK-EKS-KubernetesResource",
        "Properties": {"Manifest": join(before + '"', ref("TargetsAdmin"), '"' + after)},
    }
    routes = {r.priority: r for r in extract_routes(multi_web(resources))}
    assert routes["10"].service == "api"
    assert routes["5"].service == "shop-api"  # the same binding's Service name
    assert routes["50000"].service == ""  # nothing registers into it: the target group is still named
    assert routes["50000"].destination == "forward"
    assert routes["50000"].target_group == "LoadBalancer/Targets"


def test_elastic_beanstalk_listener_rule_options_on_a_shared_load_balancer_are_routes() -> None:
    def environment(name: str, rules: dict[str, dict[str, str]], health: str) -> dict[str, Any]:
        options = [
            ("aws:elasticbeanstalk:application:environment", "APP_SERVICE", name),
            ("aws:elbv2:loadbalancer", "SharedLoadBalancer", ref("Alb")),
            ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath", health),
            ("aws:elasticbeanstalk:environment:process:default", "Port", "80"),
            ("aws:elbv2:listener:443", "Rules", ",".join(["default", *rules])),
        ]
        for rule_name, settings in rules.items():
            options += [(f"aws:elbv2:listenerrule:{rule_name}", key, value) for key, value in settings.items()]
        settings_list = [{"Namespace": ns, "OptionName": option, "Value": value} for ns, option, value in options]
        return {"Type": "AWS::ElasticBeanstalk::Environment", "Properties": {"OptionSettings": settings_list}}

    resources = {k: v for k, v in multi_web_resources().items() if k in ("Alb", "AlbSG", "Https")}
    resources["Api"] = environment("api", {"api": {"PathPatterns": "/api/*,/v2/*", "Priority": "10"}}, "/api/health")
    resources["Admin"] = environment("admin", {"admin": {"HostHeaders": "admin.example.com", "Priority": "5"}}, "/h")
    routes = extract_routes(multi_web(resources))
    rows = [(r.listener, r.priority, r.match, r.destination, r.target_group, r.health_path) for r in routes]
    assert rows == [
        ("HTTPS 443", "5", "admin.example.com", "admin", "EB process default", "/h"),
        ("HTTPS 443", "10", "/api/*, /v2/*", "api", "EB process default", "/api/health"),
        ("HTTPS 443", "EB default", "admin's own CNAME", "admin", "EB process default", "/h"),
        ("HTTPS 443", "EB default", "api's own CNAME", "api", "EB process default", "/api/health"),
        ("HTTPS 443", "default", "everything else", "fixed response 404", "", ""),
    ]


def test_alarms_are_attributed_to_the_service_whose_target_group_they_watch() -> None:
    report = build_report(multi_web())
    services = {a.name: a.service for a in report.alarms}
    assert services == {
        "shop-dev-ecs-alb-HTTPCode_Target_5XX_Count": "storefront",  # the default keeps its "alb" name
        "shop-dev-ecs-api-HTTPCode_Target_5XX_Count": "api",
        "shop-dev-ecs-admin-HTTPCode_Target_5XX_Count": "admin",
        "shop-dev-ecs-alb-HTTPCode_ELB_5XX_Count": "",  # the whole load balancer: no one service
    }


# --------------------------------------------------------------------------- the page


def test_the_page_has_a_routing_table_per_listener() -> None:
    markdown = render_markdown(build_report(multi_web()))
    routing = markdown.split("## Routing\n", 1)[1].split("\n## ", 1)[0]
    assert "### load balancer (App) · HTTPS 443\n" in routing
    assert "| `5` | `admin.example.com` | **admin** | `LoadBalancer/TargetsAdmin` | `/health` | `8000` |" in routing
    assert "| `10` | `/api/*` | **api** | `LoadBalancer/TargetsApi` | `/api/health` | `8080` |" in routing
    assert "| `50000` | `/*` | **storefront** | `LoadBalancer/Targets` | `/health` | `8000` |" in routing
    assert "| `default` | everything else | fixed response 404 | — | — | — |" in routing
    sections = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert sections.index("Routing") == sections.index("Services") + 1
    routes = json.loads(render_json(build_report(multi_web())))["routes"]
    assert [(r["priority"], r["match"], r["service"]) for r in routes][:2] == [
        ("5", "admin.example.com", "admin"),
        ("10", "/api/*", "api"),
    ]


def test_the_diagram_has_one_node_per_web_service_with_its_route() -> None:
    markdown = render_markdown(build_report(multi_web()))
    diagram = markdown.split("```mermaid\n", 1)[1].split("```", 1)[0]
    nodes = dict(re.findall(r'^  (\S+)\["(.*)"\]$', diagram, flags=re.MULTILINE))
    assert {"web service api (App)", "web service admin (App)", "web service storefront (App)"} <= set(nodes.values())
    assert not any(TASK_SG_DESCRIPTION in name for name in nodes.values())  # the task group is drawn as its service
    ids = {name: node for node, name in nodes.items()}
    balancer, api = ids["load balancer (App)"], ids["web service api (App)"]
    assert f'  {balancer} ==>|"prio 10 · /api/*"| {api}' in diagram
    assert f'  {balancer} -->|"tcp 8000"| {api}' in diagram  # the security group rule stays
    assert f'==>|"prio 5 · admin.example.com"| {ids["web service admin (App)"]}' in diagram
    assert f'==>|"prio 50000 · /*"| {ids["web service storefront (App)"]}' in diagram
    reachability = markdown.split("## Reachability\n", 1)[1].split("```mermaid", 1)[0]
    assert f"`{TASK_SG_DESCRIPTION} api (App)`" in reachability  # the table keeps the security groups' names


def test_alarms_are_listed_under_their_service() -> None:
    markdown = render_markdown(build_report(multi_web()))
    alarms = markdown.split("## Alarms\n", 1)[1].split("\n## ", 1)[0]
    headings = re.findall(r"^### (.+)$", alarms, flags=re.MULTILINE)
    assert headings == [
        "Service `admin` (App)",
        "Service `api` (App)",
        "Service `storefront` (App)",
        "Other alarms",
    ]
    api = alarms.split("### Service `api` (App)", 1)[1].split("###", 1)[0]
    assert "`shop-dev-ecs-api-HTTPCode_Target_5XX_Count`" in api and "admin" not in api
    storefront = alarms.split("### Service `storefront` (App)", 1)[1].split("###", 1)[0]
    assert "`shop-dev-ecs-alb-HTTPCode_Target_5XX_Count`" in storefront
    assert "`shop-dev-ecs-alb-HTTPCode_ELB_5XX_Count`" in alarms.split("### Other alarms", 1)[1]


def test_a_single_web_stage_reads_as_before() -> None:
    stacks = load_assembly(FIXTURES / "assembly")
    report = build_report(stacks)
    assert not has_rules(report.routes)
    markdown = render_markdown(report)
    assert "## Routing" not in markdown and "==>" not in markdown and "### Service" not in markdown
    assert "web service" not in markdown


# --------------------------------------------------------------------------- routing changes


def compare(base: dict[str, Any], head: dict[str, Any]) -> list[str]:
    base_stacks, head_stacks = multi_web(base), multi_web(head)
    found = review(build_report(base_stacks), build_report(head_stacks), base_stacks, head_stacks)
    return [
        f"{f.change} | {f.subject} | {f.detail} | {','.join(f.flags)}" for f in found.findings if f.section == "routing"
    ]


def test_a_removed_rule_says_the_host_is_no_longer_routed_and_where_its_requests_go() -> None:
    base = multi_web_resources()
    head = copy.deepcopy(base)
    del head["RouteAdmin"]
    assert compare(base, head) == [
        "route removed | admin.example.com | no longer routed (went to admin, priority 5); those requests now reach "
        "the catch-all /* → storefront · HTTPS 443 of load balancer (App) | requests move"
    ]


def test_a_new_rule_says_which_service_its_requests_now_go_to() -> None:
    head = multi_web_resources()
    base = copy.deepcopy(head)
    del base["RouteApi"]
    assert compare(base, head) == [
        "new route | /api/* | now goes to api (priority 10) · HTTPS 443 of load balancer (App) | "
    ]


def test_rerouted_paths_changed_paths_and_priorities_read_as_routing_changes() -> None:
    base = multi_web_resources()
    head = copy.deepcopy(base)
    head["RouteApi"]["Properties"]["Actions"][0]["TargetGroupArn"] = ref("TargetsAdmin")  # /api/* now to admin
    head["RouteAdmin"]["Properties"]["Priority"] = 7
    head["RouteStorefront"]["Properties"]["Conditions"][0]["PathPatternConfig"]["Values"] = ["/shop/*"]
    assert compare(base, head) == [
        "rerouted | /api/* | now goes to admin (was api) · HTTPS 443 of load balancer (App) | requests move",
        "priority changed | admin.example.com | 5 → 7, still to admin · HTTPS 443 of load balancer (App) | ",
        "route changed | /shop/* | now goes to storefront, which took /* before · HTTPS 443 of load balancer (App) | ",
    ]


def test_going_from_one_web_service_to_several_says_what_the_listener_now_answers() -> None:
    head = multi_web_resources()
    base = {k: copy.deepcopy(v) for k, v in head.items() if not k.startswith("Route")}
    base["Https"]["Properties"]["DefaultActions"] = [{"Type": "forward", "TargetGroupArn": ref("Targets")}]
    found = compare(base, head)
    assert found[0] == (
        "rerouted | everything else on HTTPS 443 of load balancer (App) | now gets fixed response 404 (was storefront)"
        " | requests move"
    )
    assert "new route | /* | now goes to storefront (priority 50000) · HTTPS 443 of load balancer (App) | " in found
    base_stacks, head_stacks = multi_web(base), multi_web(head)
    page = changes_markdown(review(build_report(base_stacks), build_report(head_stacks), base_stacks, head_stacks))
    assert "## Routing" in page
    assert "- **new route** `/api/*`: now goes to api (priority 10) · HTTPS 443 of load balancer (App)" in page


# --------------------------------------------------------------------------- the synthesized example


@pytest.fixture(scope="module")
def example() -> list[Stack]:
    """config/examples/multi-web.yaml (ECS, EB and EKS) synthesized offline."""
    config, _ = resolve_account(load_config(path=ROOT / "config" / "examples" / "multi-web.yaml"), environ={})
    app = new_app()
    build_stacks(app, config)
    return load_assembly(Path(app.synth().directory))


def test_the_synthesized_example_routes_every_web_service_on_every_target(example: list[Stack]) -> None:
    report = build_report(example)
    for target in ("ecs", "eks", "eb"):
        routes = [r for r in report.routes if r.stack == f"shop-staging-{target}" and r.listener == "HTTPS 443"]
        by_service = {r.service: r for r in routes if r.rule}
        assert set(by_service) == {"storefront", "api", "admin"}, target
        assert "/api/*" in by_service["api"].paths and by_service["api"].health_path == "/api/health"
        assert by_service["admin"].hosts == ("admin.staging.shop.example.com",)
        assert routes[-1].destination == "fixed response 404"
        api_alarms = {a.name for a in report.alarms if a.stack == f"shop-staging-{target}" and a.service == "api"}
        assert api_alarms, target
    markdown = render_markdown(report)
    assert "## Routing" in markdown
    for target in ("ecs", "eks", "eb"):
        assert f"web service api (shop-staging-{target})" in markdown
        assert f"### Service `api` (shop-staging-{target})" in markdown
