"""Several web services behind one load balancer: routes in the stage file, the listener rules they become on ECS,
and the guards route-overlap / route-default-missing / alb-health-check-path over both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk.assertions import Template

from config import ConfigError, load_config, resolve_account
from config.routes import Route, covers, shadowing, takes_all_of
from constructs.guards import register_guards
from stacks import build_stacks
from tests.conftest import ROOT, new_app
from tests.test_guards import assert_refused

MULTI_WEB = ROOT / "config" / "examples" / "multi-web.yaml"


def multi_web(tmp_path: Path, **changes: Any) -> Path:
    raw = yaml.safe_load(MULTI_WEB.read_text())
    raw.update(changes)
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def refused(tmp_path: Path, **changes: Any) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_config(path=multi_web(tmp_path, **changes))
    return error.value.problems


def services(**routes: Any) -> dict[str, Any]:
    """The example's services with the routes (None: no route) replaced."""
    raw = yaml.safe_load(MULTI_WEB.read_text())["services"]
    for name, route in routes.items():
        raw[name] = (
            {**raw[name], "route": route} if route is not None else {k: v for k, v in raw[name].items() if k != "route"}
        )
    return raw


# -- the pattern logic -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "other", "expected"),
    [
        ("/api/*", "/api/admin/*", True),
        ("/api/*", "/api/health", True),
        ("/api/*", "/api", False),  # ALB: /api/* does not match /api
        ("/api/?", "/api/*", False),  # ? is one character, * may be many
        ("/a?c", "/abc", True),
        ("/abc", "/a?c", False),
        ("*.example.com", "ADMIN.example.com", True),  # hosts are case-insensitive
        ("/[a]", "/a", False),  # no character classes in ALB patterns: [ is a literal
    ],
)
def test_covers_means_every_request_the_other_matches_is_matched(pattern: str, other: str, expected: bool) -> None:
    assert covers(pattern, other) is expected


def test_a_route_with_hosts_does_not_take_requests_for_other_hosts() -> None:
    api = Route(("/api/*",), (), 10)
    admin_api = Route(("/api/*",), ("admin.example.com",), 20)
    assert takes_all_of(api, admin_api) and not takes_all_of(admin_api, api)
    assert not takes_all_of(Route((), ("admin.example.com",), 5), Route(("/x",), (), 6))


def test_shadowing_names_the_unreachable_route_and_equal_priorities() -> None:
    lines = list(
        shadowing(
            [
                ("api", Route(("/api/*",), (), 10)),
                ("reports", Route(("/api/reports/*",), (), 20)),
                ("admin", Route((), ("admin.example.com",), 10)),
            ]
        )
    )
    assert any(line.startswith("admin: priority 10 is also api's") for line in lines)
    assert any(line.startswith("reports: path /api/reports/* is never reached: api (priority 10)") for line in lines)


# -- the stage file ----------------------------------------------------------------------------------------------


def test_the_example_resolves_one_default_and_two_routed_web_services() -> None:
    config, _ = resolve_account(load_config(path=MULTI_WEB), environ={})
    assert config.web.name == "storefront" and config.web.route is None
    webs = {s.name: s for s in config.webs}
    assert list(webs) == ["storefront", "admin", "api"]  # default first, then by priority
    assert webs["api"].route == Route(("/api/*",), (), 10) and webs["api"].port == 8080
    assert webs["api"].health is not None and webs["api"].health.liveness_path == "/api/health"
    assert webs["admin"].route == Route((), ("admin.staging.shop.example.com",), 5)
    assert webs["storefront"].health == config.health and webs["admin"].port == config.container_port


@pytest.mark.parametrize(
    ("routes", "rule", "where", "fragment"),
    [
        ({"api": None}, "route-overlap", "services", "have no route, so each would take every request"),
        ({"storefront": {"paths": ["/*"]}}, "route-default-missing", "services", "every web service"),
        (
            {"admin": {"paths": ["/api/*"], "priority": 10}},
            "route-overlap",
            "services.admin.route",
            "priority 10 is also",
        ),
        (
            {"admin": {"paths": ["/api/*", "/admin/*"], "priority": 5}},
            "route-overlap",
            "services.api.route",
            "never reached",
        ),
        ({"api": {"paths": []}}, "config", "services.api.route", "needs paths or hosts"),
        ({"api": {"paths": ["/a", "/b", "/c", "/d", "/e", "/f"]}}, "config", "services.api.route", "at most 5"),
        ({"api": {"paths": ["api/*"]}}, "config", "services.api.route.paths.0", "not an ALB path pattern"),
        ({"api": {"hosts": ["Admin.Example.com"]}}, "config", "services.api.route.hosts.0", "not a host name"),
    ],
)
def test_a_bad_route_is_refused_with_its_id_and_path(
    tmp_path: Path, routes: dict[str, Any], rule: str, where: str, fragment: str
) -> None:
    problems = refused(tmp_path, services=services(**routes))
    assert any(line.startswith(f"[{rule}] {where}") and fragment in line for line in problems), problems


def test_only_a_web_service_has_a_route_port_or_health(tmp_path: Path) -> None:
    raw = services()
    raw["worker"] = {"kind": "worker", "command": ["celery", "worker"], "route": {"paths": ["/w/*"]}, "port": 9000}
    problems = refused(tmp_path, services=raw)
    assert any(line.startswith("[config] services.worker.route") for line in problems), problems
    assert any(line.startswith("[config] services.worker.port") for line in problems), problems


# -- the ECS target: one health-checked target group and one rule per web service -------------------------------


def ecs_app(**changes: Any) -> tuple[cdk.App, Any]:
    raw = {**yaml.safe_load(MULTI_WEB.read_text()), "targets": ["ecs"], **changes}
    config, _ = resolve_account(load_config(path=_write(raw)), environ={})
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config)
    return app, stacks


def _write(raw: dict[str, Any]) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "multi-web.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def ecs_template() -> dict[str, Any]:
    app, stacks = ecs_app()
    app.synth()  # every guard and cdk-nag: no refusal
    return dict(Template.from_stack(stacks.ecs).to_json())


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == kind}


def test_each_web_service_has_its_rule_its_checked_target_group_and_its_service(ecs_template: dict[str, Any]) -> None:
    groups = of_type(ecs_template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    by_id = {k: (p["Port"], p["HealthCheckPath"]) for k, p in groups.items()}
    rules = of_type(ecs_template, "AWS::ElasticLoadBalancingV2::ListenerRule")
    routed = {
        r["Priority"]: (
            [c.get("PathPatternConfig", c.get("HostHeaderConfig"))["Values"] for c in r["Conditions"]],
            by_id[r["Actions"][0]["TargetGroupArn"]["Ref"]],
        )
        for r in rules.values()
    }
    assert routed == {
        5: ([["admin.staging.shop.example.com"]], (8000, "/health")),
        10: ([["/api/*"]], (8080, "/api/health")),
        50000: ([["/*"]], (8000, "/health")),
    }
    (listener,) = [
        p for p in of_type(ecs_template, "AWS::ElasticLoadBalancingV2::Listener").values() if p["Port"] == 443
    ]
    assert listener["DefaultActions"][0]["Type"] == "fixed-response"
    assert listener["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    behind = [p for p in of_type(ecs_template, "AWS::ECS::Service").values() if p.get("LoadBalancers")]
    assert len(behind) == 3  # one per web service (the example's worker has no load balancer)
    alarms = {p["AlarmName"] for p in of_type(ecs_template, "AWS::CloudWatch::Alarm").values()}
    assert {
        "shop-staging-ecs-api-HTTPCode_Target_5XX_Count",
        "shop-staging-ecs-alb-HTTPCode_Target_5XX_Count",
    } <= alarms


def test_each_web_service_deployment_is_gated_by_its_own_alarms(ecs_template: dict[str, Any]) -> None:
    alarms = of_type(ecs_template, "AWS::CloudWatch::Alarm")
    gates = {
        name: sorted(alarms[ref["Ref"]]["AlarmName"] for ref in p["DeploymentConfiguration"]["Alarms"]["AlarmNames"])
        for name, p in of_type(ecs_template, "AWS::ECS::Service").items()
        if p.get("LoadBalancers")
    }
    api = next(v for k, v in gates.items() if k.startswith("ServiceApi"))
    assert api == ["shop-staging-ecs-api-HTTPCode_Target_5XX_Count", "shop-staging-ecs-api-TargetResponseTime"]
    default = next(
        v for k, v in gates.items() if k.startswith("Service") and not k.startswith(("ServiceApi", "ServiceAdmin"))
    )
    assert default == ["shop-staging-ecs-alb-HTTPCode_Target_5XX_Count", "shop-staging-ecs-alb-TargetResponseTime"]


def test_a_hand_added_rule_shadowed_by_an_earlier_one_is_refused() -> None:
    app, stacks = ecs_app()
    lb = stacks.ecs.load_balancer
    elbv2.ApplicationListenerRule(
        lb,
        "Reports",
        listener=lb.listener,
        priority=20,
        conditions=[elbv2.ListenerCondition.path_patterns(["/api/reports/*"])],
        action=elbv2.ListenerAction.forward([lb.targets["api"].target_group]),
    )
    assert_refused(app, "route-overlap", "LoadBalancer/Reports", "never reached", "priority 10")


def test_a_listener_with_routes_that_forwards_unrouted_requests_is_refused() -> None:
    app, stacks = ecs_app()
    lb = stacks.ecs.load_balancer
    lb.listener.node.default_child.add_property_override(  # type: ignore[union-attr]
        "DefaultActions", [{"Type": "forward", "TargetGroupArn": lb.targets["api"].target_group.target_group_arn}]
    )
    assert_refused(app, "route-default-missing", "LoadBalancer/Default/Https", "default action forwards")


def test_a_listener_with_routes_but_no_catch_all_is_refused() -> None:
    app, stacks = ecs_app()
    lb = stacks.ecs.load_balancer
    assert lb.node.try_remove_child("RouteStorefront")
    assert_refused(app, "route-default-missing", "no catch-all")


def test_a_target_group_without_health_checks_is_refused() -> None:
    app, stacks = ecs_app()
    group = stacks.ecs.load_balancer.targets["admin"].target_group
    group.node.default_child.add_property_override("HealthCheckEnabled", False)  # type: ignore[union-attr]
    assert_refused(app, "alb-health-check-path", "TargetsAdmin", "healthCheckEnabled=false")


def test_a_target_group_that_checks_another_services_contract_is_refused() -> None:
    app, stacks = ecs_app()
    group = stacks.ecs.load_balancer.targets["api"].target_group
    group.configure_health_check(path="/health")
    assert_refused(app, "alb-health-check-path", "TargetsApi", "healthCheckPath=/health", "'/api/health'")


def test_the_first_target_answers_the_route_hosts_of_its_zone(ecs_template: dict[str, Any]) -> None:
    (certificate,) = of_type(ecs_template, "AWS::CertificateManager::Certificate").values()
    assert certificate["SubjectAlternativeNames"] == ["admin.staging.shop.example.com"]
    names = sorted(p["Name"] for p in of_type(ecs_template, "AWS::Route53::RecordSet").values())
    assert names == ["admin.staging.shop.example.com.", "staging.shop.example.com."]
