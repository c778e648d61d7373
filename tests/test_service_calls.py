"""Service-to-service calls (services.<name>.calls): the URL each caller receives on each target, the network wiring
from the caller's side, and the refusals (README "Calling another service", config/calls.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk8s
import pytest
import yaml

from config import ConfigError, load_config, resolve_account
from config.calls import call_settings, url_setting
from constructs.guards import register_guards
from k8s.app_chart import AppChart
from k8s.props import app_props
from stacks import build_stacks
from tests.conftest import ROOT, new_app, synthesized
from tests.test_guards import assert_refused

MULTI_WEB = ROOT / "config" / "examples" / "multi-web.yaml"
API_ON_ECS = "http://api.shop-staging.local:8080"


def _raw(**changes: Any) -> dict[str, Any]:
    return {**yaml.safe_load(MULTI_WEB.read_text()), **changes}


def _path(raw: dict[str, Any]) -> Path:
    path = Path(tempfile.mkdtemp()) / "stage.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _app(raw: dict[str, Any]) -> tuple[cdk.App, Any]:
    config, _ = resolve_account(load_config(path=_path(raw)), environ={})
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config)
    return app, stacks


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in template["Resources"].items() if v["Type"] == kind}


def _container_env(task: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in task["ContainerDefinitions"][0]["Environment"]}


def _eb_env(environment: dict[str, Any]) -> dict[str, Any]:
    return {
        o["OptionName"]: o["Value"]
        for o in environment["OptionSettings"]
        if o["Namespace"] == "aws:elasticbeanstalk:application:environment"
    }


def test_the_setting_is_the_callee_upper_cased() -> None:
    assert url_setting("api") == "API_URL"
    assert url_setting("order-api") == "ORDER_API_URL"


def test_the_example_resolves_its_calls() -> None:
    config = synthesized("multi-web").config
    calls = {s.name: s.calls for s in config.workloads}
    assert calls == {"storefront": ("api",), "admin": ("api",), "api": ("storefront",), "fulfilment": ()}


# -- ECS: Cloud Map names, rules from the caller's side ----------------------------------------------------------


def test_ecs_callers_receive_the_cloud_map_url_and_the_callee_is_registered() -> None:
    s = synthesized("multi-web")
    template = s.template(s.stacks.ecs)
    tasks = _resources(template, "AWS::ECS::TaskDefinition")
    urls = {_container_env(t)["APP_SERVICE"]: _container_env(t).get("API_URL") for t in tasks.values()}
    assert urls == {"storefront": API_ON_ECS, "admin": API_ON_ECS, "api": None, "fulfilment": None}
    (namespace,) = _resources(template, "AWS::ServiceDiscovery::PrivateDnsNamespace").values()
    assert namespace["Name"] == "shop-staging.local"
    registries = _resources(template, "AWS::ServiceDiscovery::Service").values()
    assert sorted(r["Name"] for r in registries) == ["api", "storefront"]  # the two that are called
    assert all(r["DnsConfig"]["DnsRecords"] == [{"TTL": 10, "Type": "A"}] for r in registries)
    services = _resources(template, "AWS::ECS::Service")
    registered = sorted(k for k, p in services.items() if p.get("ServiceRegistries"))
    workers = [k for k in services if "Workloads" in k or "Fulfilment" in k]
    assert len(registered) == 2 and not set(registered) & set(workers)


def test_ecs_the_callee_admits_each_caller_on_its_port_only() -> None:
    s = synthesized("multi-web")
    template = s.template(s.stacks.ecs)
    api_group = {"Fn::GetAtt": ["ServiceApiSecurityGroup0F8483B6", "GroupId"]}
    ingress = [
        p for p in _resources(template, "AWS::EC2::SecurityGroupIngress").values() if "calls" in p["Description"]
    ]
    egress = [p for p in _resources(template, "AWS::EC2::SecurityGroupEgress").values() if "calls" in p["Description"]]
    into_api = [p for p in ingress if p["GroupId"] == api_group]
    assert sorted(p["Description"] for p in into_api) == ["ECS admin calls api", "ECS storefront calls api"]
    for rule in into_api:
        assert (rule["FromPort"], rule["ToPort"]) == (8080, 8080)
    to_api = [p for p in egress if p["DestinationSecurityGroupId"] == api_group]
    assert len(to_api) == 2 and all((r["FromPort"], r["ToPort"]) == (8080, 8080) for r in to_api)
    # ... and the other way: the api calls the storefront on its port only
    (back,) = [p for p in ingress if p["GroupId"] != api_group]
    assert back["Description"] == "ECS api calls storefront" and (back["FromPort"], back["ToPort"]) == (8000, 8000)


# -- EKS: the Kubernetes Service's cluster DNS name ----------------------------------------------------------------


def test_eks_callers_receive_the_cluster_dns_name_of_the_callees_service() -> None:
    config = synthesized("multi-web").config
    webs = {w.name: w for w in config.webs}

    def objects(name: str) -> list[dict[str, Any]]:
        props = app_props(config, webs[name], role_arn="arn:role", target_group_arn="arn:group")
        return list(cdk8s.Testing.synth(AppChart(cdk8s.Testing.app(), name, props=props)))

    (service,) = [o for o in objects("api") if o["kind"] == "Service"]
    assert service["spec"]["ports"][0]["port"] == 8080
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert host == "shop-api.app.svc.cluster.local"
    for caller in ("storefront", "admin"):
        (settings,) = [o for o in objects(caller) if o["kind"] == "ConfigMap"]
        assert settings["data"]["API_URL"] == f"http://{host}:8080"
    # ... and that is what the EKS stack applies (the ConfigMaps of storefront and admin)
    s = synthesized("multi-web")
    assert json.dumps(s.template(s.stacks.eks)).count(f'\\"API_URL\\":\\"http://{host}:8080\\"') == 2


# -- Elastic Beanstalk: through the stage's load balancer ----------------------------------------------------------


def test_eb_callers_reach_the_callee_through_the_load_balancer_by_the_stage_name() -> None:
    s = synthesized("multi-web")
    environments = _resources(s.template(s.stacks.eb), "AWS::ElasticBeanstalk::Environment")
    urls = sorted(str(_eb_env(e).get("API_URL")) for e in environments.values())
    # storefront and admin; the eb target answers eb.<domain> (it is not the first target), over HTTPS
    assert urls == ["None", "https://eb.staging.shop.example.com", "https://eb.staging.shop.example.com"]


def test_eb_without_a_domain_a_worker_calls_over_http_to_the_load_balancer_dns_name() -> None:
    raw = _raw(stage="dev", targets=["eb"])
    raw.pop("domain")
    raw["services"]["mailer"] = {"kind": "worker", "command": ["python", "-m", "mailer"], "calls": ["api"]}
    app, stacks = _app(raw)
    assembly = app.synth()  # every guard (egress-blocked included) and cdk-nag: no refusal
    template = assembly.get_stack_by_name(stacks.eb.stack_name).template
    tasks = _resources(template, "AWS::ECS::TaskDefinition")
    (worker,) = [t for t in tasks.values() if _container_env(t)["APP_SERVICE"] == "mailer"]
    url = _container_env(worker)["API_URL"]
    assert url["Fn::Join"][1][0] == "http://"
    assert url["Fn::Join"][1][1] == {"Fn::GetAtt": ["LoadBalancerBE9EEC3A", "DNSName"]}
    groups = _resources(template, "AWS::EC2::SecurityGroup")
    (group,) = [g for g in groups.values() if "mailer" in g["GroupDescription"]]
    assert {"CidrIp": "0.0.0.0/0", "Description": "calls to the stage's load balancer over HTTP", "FromPort": 80,
            "IpProtocol": "tcp", "ToPort": 80} in group["SecurityGroupEgress"]  # fmt: skip


# -- refusals -----------------------------------------------------------------------------------------------------


def _refused(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_config(path=_path(raw))
    return error.value.problems


@pytest.mark.parametrize(
    ("calls", "where", "fragment"),
    [
        (["nope"], "services.storefront.calls.0", "'nope' is no service"),
        (["mailer"], "services.storefront.calls.0", "a worker, which has no port"),
        (["storefront"], "services.storefront.calls.0", "does not call itself"),
        (["api", "api"], "services.storefront.calls.1", "listed twice"),
        (["admin"], "services.storefront.calls.0", "routed by host 'admin.staging.shop.example.com'"),
    ],
)
def test_a_call_the_stage_cannot_make_is_refused_with_its_path(calls: list[str], where: str, fragment: str) -> None:
    raw = _raw()
    raw["services"]["mailer"] = {"kind": "worker", "command": ["python", "-m", "mailer"]}
    raw["services"]["storefront"]["calls"] = calls
    problems = _refused(raw)
    assert any(line.startswith(f"[config] {where}") and fragment in line for line in problems), problems


def test_a_setting_of_the_callers_name_is_refused() -> None:
    raw = _raw()
    raw["settings"]["API_URL"] = "https://api.example.com"
    problems = _refused(raw)
    assert any(line.startswith("[config] services.storefront.calls.0") and "API_URL" in line for line in problems)


def test_a_host_routed_callee_is_called_by_its_host_when_eb_answers_it() -> None:
    raw = _raw(targets=["eb", "ecs"])
    raw["services"]["storefront"]["calls"] = ["api", "admin"]
    config = load_config(path=_path(raw))
    storefront = next(s for s in config.workloads if s.name == "storefront")
    assert call_settings(config, storefront, "eb") == {
        "API_URL": "https://staging.shop.example.com",
        "ADMIN_URL": "https://admin.staging.shop.example.com",
    }


def test_a_callee_that_does_not_admit_its_caller_is_refused() -> None:
    raw = _raw(targets=["ecs"])
    app, stacks = _app(raw)
    api_group = stacks.ecs.web_services["api"].security_group
    for child in api_group.node.children:
        if isinstance(child, cdk.aws_ec2.CfnSecurityGroupIngress) and "ServiceAdmin" in child.node.id:
            child.add_property_override("FromPort", 9000)
            child.add_property_override("ToPort", 9000)
    assert_refused(app, "service-call-blocked", "DeclarationApi", "does not admit ecs web admin on 8080")
