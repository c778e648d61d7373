"""Domain end to end: a hosted-zone domain gives each target its DNS-validated certificate and record; the
certificate_arn form is unchanged (the staging and prod snapshots hold it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import load_config
from constructs.guards import register_guards
from stacks import build_stacks
from tests.conftest import ROOT, Synthesized, new_app, stage_config, synthesized
from tests.test_config import STAGING, problems, with_
from tests.test_guards import assert_refused

ZONE_ID = "Z0123456789ABCDEFGHIJ"
HOSTED = {"name": "staging.shop.example.com", "hosted_zone_id": ZONE_ID, "hosted_zone_name": "shop.example.com"}
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        (
            {**HOSTED, "certificate_arn": CERTIFICATE},
            "[tls-certificate] domain: ",
        ),
        ({"name": "staging.shop.example.com"}, "[tls-certificate] domain: "),
        ({**HOSTED, "hosted_zone_id": "/hostedzone/Z123"}, "[config] domain.hosted_zone_id: '/hostedzone/Z123'"),
        ({**HOSTED, "hosted_zone_id": "z123abc"}, "[config] domain.hosted_zone_id: 'z123abc'"),
        ({**HOSTED, "name": "staging.shop.example.org"}, "[config] domain: "),
        ({**HOSTED, "name": "shop.example.com"}, "[config] domain: "),
        ({**HOSTED, "hosted_zone_name": None}, "[config] domain: "),
        ({**HOSTED, "hosted_zone_name": "not a zone"}, "[config] domain.hosted_zone_name: "),
    ],
)
def test_domain_refusals(domain: dict[str, Any], expected: str, tmp_path: Path) -> None:
    lines = problems(with_(STAGING, "domain", {k: v for k, v in domain.items() if v is not None}), tmp_path)
    assert any(line.startswith(expected) for line in lines), lines
    assert all(" — " in line for line in lines), lines


def test_refusal_lines_say_what_to_do(tmp_path: Path) -> None:
    both = problems(with_(STAGING, "domain", {**HOSTED, "certificate_arn": CERTIFICATE}), tmp_path)
    assert any("set exactly one of certificate_arn" in line for line in both), both
    apex = problems(with_(STAGING, "domain", {**HOSTED, "name": "shop.example.com"}), tmp_path)
    assert any("apex of the zone" in line and "CNAME" in line for line in apex), apex
    outside = problems(with_(STAGING, "domain", {**HOSTED, "name": "staging.shop.example.org"}), tmp_path)
    assert any("not inside hosted_zone_name 'shop.example.com'" in line for line in outside), outside


def test_hosted_zone_domain_loads_and_names_each_target(tmp_path: Path) -> None:
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(with_(STAGING, "domain", {**HOSTED, "hosted_zone_name": "shop.example.com."})))
    config = load_config(path=path)
    assert config.domain is not None and config.domain.hosted_zone_name == "shop.example.com"
    assert config.domain_name("ecs") == "staging.shop.example.com"
    assert config.domain_name("eb") == "eb.staging.shop.example.com"
    staging = load_config("staging")
    assert staging.domain_name("ecs") == staging.domain_name("eb") == "staging.shop.example.com"


@pytest.fixture(scope="module")
def hosted() -> Synthesized:
    app = new_app()
    config = stage_config("staging", domain=HOSTED)
    stacks = build_stacks(app, config)
    register_guards(app, config)  # guards + cdk-nag: the hosted-zone form passes both
    return Synthesized(config, stacks, app.synth())


def _of_type(template: dict[str, Any], cfn_type: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == cfn_type]


def test_each_target_gets_a_dns_validated_certificate_for_exactly_its_name(hosted: Synthesized) -> None:
    assert hosted.stacks.ecs is not None and hosted.stacks.eb is not None
    for stack, name in (
        (hosted.stacks.ecs, "staging.shop.example.com"),
        (hosted.stacks.eb, "eb.staging.shop.example.com"),
    ):
        (certificate,) = _of_type(hosted.template(stack), "AWS::CertificateManager::Certificate")
        assert certificate["DomainName"] == name
        assert "SubjectAlternativeNames" not in certificate
        assert certificate["ValidationMethod"] == "DNS"
        assert certificate["DomainValidationOptions"] == [{"DomainName": name, "HostedZoneId": ZONE_ID}]


def test_ecs_answers_the_name_with_an_alias_to_its_alb(hosted: Synthesized) -> None:
    assert hosted.stacks.ecs is not None
    template = hosted.template(hosted.stacks.ecs)
    (record,) = _of_type(template, "AWS::Route53::RecordSet")
    assert record["Type"] == "A" and record["Name"] == "staging.shop.example.com." and record["HostedZoneId"] == ZONE_ID
    alb = next(k for k, v in template["Resources"].items() if v["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert record["AliasTarget"]["HostedZoneId"] == {"Fn::GetAtt": [alb, "CanonicalHostedZoneID"]}
    assert alb in str(record["AliasTarget"]["DNSName"])
    (https,) = [x for x in _of_type(template, "AWS::ElasticLoadBalancingV2::Listener") if x["Protocol"] == "HTTPS"]
    certificate = next(k for k, v in template["Resources"].items() if v["Type"].endswith("::Certificate"))
    assert https["Certificates"] == [{"CertificateArn": {"Ref": certificate}}]
    outputs = template["Outputs"]
    assert outputs["DomainName"]["Value"] == "staging.shop.example.com"
    assert outputs["CertificateArn"]["Value"] == {"Ref": certificate}


def test_eb_answers_its_own_name_with_a_cname_and_serves_the_new_certificate(hosted: Synthesized) -> None:
    assert hosted.stacks.eb is not None
    template = hosted.template(hosted.stacks.eb)
    (record,) = _of_type(template, "AWS::Route53::RecordSet")
    environment = next(k for k, v in template["Resources"].items() if v["Type"] == "AWS::ElasticBeanstalk::Environment")
    assert record["Type"] == "CNAME" and record["Name"] == "eb.staging.shop.example.com."
    assert record["ResourceRecords"] == [{"Fn::GetAtt": [environment, "EndpointURL"]}]
    certificate = next(k for k, v in template["Resources"].items() if v["Type"].endswith("::Certificate"))
    options = {
        (o["Namespace"], o["OptionName"]): o["Value"]
        for o in template["Resources"][environment]["Properties"]["OptionSettings"]
    }
    assert options[("aws:elbv2:listener:443", "SSLCertificateArns")] == {"Ref": certificate}
    # Port 80 stays open only to redirect: the application bundle replaces the listener's action (.ebextensions).
    assert options[("aws:elbv2:listener:default", "ListenerEnabled")] == "true"
    eb = hosted.stacks.eb
    bundle = Path(hosted.assembly.directory) / f"asset.{eb.beanstalk.bundle.asset_hash}"
    redirect = json.loads((bundle / ".ebextensions" / "http-to-https.config").read_text())
    (action,) = redirect["Resources"]["AWSEBV2LoadBalancerListener"]["Properties"]["DefaultActions"]
    assert action["Type"] == "redirect" and action["RedirectConfig"]["Protocol"] == "HTTPS"
    assert template["Outputs"]["DomainName"]["Value"] == "eb.staging.shop.example.com"


def test_certificate_arn_form_creates_no_certificate_or_record() -> None:
    staging = synthesized("staging")
    for stack in staging.stacks.all():
        template = staging.template(stack)
        assert not _of_type(template, "AWS::CertificateManager::Certificate")
        assert not _of_type(template, "AWS::Route53::RecordSet")
        assert "CertificateArn" not in template.get("Outputs", {})


def test_stage_files_still_use_certificate_arn() -> None:
    for stage in ("staging", "prod"):
        data = yaml.safe_load((ROOT / "config" / "stages" / f"{stage}.yaml").read_text())
        assert set(data["domain"]) == {"name", "certificate_arn"}


def _hosted_app() -> tuple[Any, Any]:
    app = new_app()
    config = stage_config("staging", domain=HOSTED)
    stacks = build_stacks(app, config)
    register_guards(app, config, nag=False)
    return app, stacks


def test_fails_on_target_without_its_record() -> None:
    app, stacks = _hosted_app()
    assert stacks.eb.domain.node.try_remove_child("Record")
    assert_refused(app, "domain-misrouted", "shop-staging-eb: no record eb.staging.shop.example.com in zone")


def test_fails_on_https_listener_with_another_certificate() -> None:
    app, stacks = _hosted_app()
    listener = stacks.ecs.load_balancer.listener.node.default_child
    listener.add_property_override("Certificates", [{"CertificateArn": CERTIFICATE}])
    assert_refused(app, "domain-misrouted", "the HTTPS listener does not use the certificate of staging.shop")
