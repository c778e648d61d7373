"""domain-misrouted: names resolve to the stage's load balancers, the certificate in use is ISSUED with 30+ days left.

DNS is a fake resolver (``{name: addresses}``); ACM is botocore's Stubber (status and NotAfter under the test's
control), and moto for a certificate that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from doctor_world import ACCOUNT, REGION, Clients, StageFile, make_ctx

from config import AppConfig, load_config
from doctor.checks import POST_DEPLOY, domain, run_checks
from doctor.model import Finding, Verdict

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ZONE = {"name": "api.shop.example.com", "hosted_zone_id": "Z0123456789ABC", "hosted_zone_name": "shop.example.com"}
CERT_ECS = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/00000000-0000-4000-8000-00000000000e"
CERT_EB = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/00000000-0000-4000-8000-0000000000eb"
ECS_ALB = "shop-dev-ecs-123.eu-west-1.elb.amazonaws.com"
EB_ALB = "awseb-e-abc-123.eu-west-1.elb.amazonaws.com"
DNS = {
    ECS_ALB: {"203.0.113.10", "203.0.113.11"},
    EB_ALB: {"198.51.100.20"},
    "api.shop.example.com": {"203.0.113.11"},
    "eb.api.shop.example.com": {"198.51.100.20"},
}


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(domain, "clock", lambda: NOW)


def resolver(answers: dict[str, set[str]]) -> domain.Resolver:
    return lambda name: set(answers.get(name, set()))


def hosted_stage(clients: Clients, stage_file: StageFile) -> AppConfig:
    config = load_config(path=stage_file(targets=["ecs", "eb"], domain=ZONE))
    clients.add_stack(
        "shop-dev-ecs",
        {"LoadBalancerDnsName": ECS_ALB, "DomainName": "api.shop.example.com", "CertificateArn": CERT_ECS},
    )
    clients.add_stack(
        "shop-dev-eb", {"EnvironmentUrl": EB_ALB, "DomainName": "eb.api.shop.example.com", "CertificateArn": CERT_EB}
    )
    return config


def issued(arn: str, *, days: int = 200, status: str = "ISSUED", **extra: Any) -> dict[str, Any]:
    certificate = {
        "CertificateArn": arn,
        "DomainName": "api.shop.example.com",
        "Status": status,
        "Type": "AMAZON_ISSUED",
        "NotAfter": NOW + timedelta(days=days),
        **extra,
    }
    return {"Certificate": certificate}


def run(clients: Clients, config: AppConfig, answers: dict[str, set[str]] = DNS) -> list[Finding]:
    ctx = make_ctx(clients, config, targets=("ecs", "eb"))
    return domain.misrouted(ctx, resolve=resolver(answers))


def by_resource(findings: list[Finding]) -> dict[str, Finding]:
    return {f.resource: f for f in findings}


def test_hosted_zone_stage_routed_and_issued_passes(clients: Clients, stage_file: StageFile) -> None:
    config = hosted_stage(clients, stage_file)
    acm = clients.stub("acm")
    acm.add_response("describe_certificate", issued(CERT_ECS), {"CertificateArn": CERT_ECS})
    acm.add_response("describe_certificate", issued(CERT_EB), {"CertificateArn": CERT_EB})
    found = by_resource(run(clients, config))
    assert {f.verdict for f in found.values()} == {Verdict.PASS}, found
    assert found["api.shop.example.com"].advice == f"resolves to the ecs load balancer ({ECS_ALB})"
    assert found["eb.api.shop.example.com"].advice == f"resolves to the eb load balancer ({EB_ALB})"
    assert found[CERT_ECS].advice == "ISSUED, valid until 2026-09-17"
    acm.assert_no_pending_responses()


def test_name_pointing_at_the_other_target_fails_with_delegation_fix(clients: Clients, stage_file: StageFile) -> None:
    config = hosted_stage(clients, stage_file)
    acm = clients.stub("acm")
    acm.add_response("describe_certificate", issued(CERT_ECS), {"CertificateArn": CERT_ECS})
    acm.add_response("describe_certificate", issued(CERT_EB), {"CertificateArn": CERT_EB})
    answers = {**DNS, "eb.api.shop.example.com": DNS[ECS_ALB], "api.shop.example.com": set()}
    found = by_resource(run(clients, config, answers))
    eb = found["eb.api.shop.example.com"]
    assert eb.verdict is Verdict.FAIL
    assert eb.advice.startswith("resolves to 203.0.113.10, 203.0.113.11, not the stage's load balancer")
    assert "delegation (NS) of the zone" in eb.advice
    missing = found["api.shop.example.com"]
    assert missing.verdict is Verdict.FAIL and missing.advice.startswith("does not resolve: ")
    assert "aws route53 get-hosted-zone --id Z0123456789ABC" in missing.advice
    assert "dig NS shop.example.com" in missing.advice


def test_pending_validation_fails_with_the_records_to_create(clients: Clients, stage_file: StageFile) -> None:
    config = hosted_stage(clients, stage_file)
    record = {"Name": "_x1.api.shop.example.com.", "Type": "CNAME", "Value": "_y1.acm-validations.aws."}
    pending = issued(
        CERT_ECS,
        status="PENDING_VALIDATION",
        DomainValidationOptions=[
            {"DomainName": "api.shop.example.com", "ValidationStatus": "PENDING_VALIDATION", "ResourceRecord": record}
        ],
    )
    acm = clients.stub("acm")
    acm.add_response("describe_certificate", pending, {"CertificateArn": CERT_ECS})
    acm.add_response("describe_certificate", issued(CERT_EB, status="EXPIRED"), {"CertificateArn": CERT_EB})
    found = by_resource(run(clients, config))
    assert found[CERT_ECS].verdict is Verdict.FAIL
    assert found[CERT_ECS].advice.startswith("pending validation: ")
    assert found[CERT_ECS].detail == "_x1.api.shop.example.com. CNAME _y1.acm-validations.aws."
    assert found[CERT_EB].verdict is Verdict.FAIL and found[CERT_EB].advice.startswith("status EXPIRED: ")


def test_certificate_expiring_within_30_days_warns_with_renewal_fix(clients: Clients, stage_file: StageFile) -> None:
    config = hosted_stage(clients, stage_file)
    acm = clients.stub("acm")
    option = {"DomainName": "api.shop.example.com", "ValidationStatus": "PENDING_VALIDATION"}
    renewal = {"RenewalStatus": "PENDING_AUTO_RENEWAL", "DomainValidationOptions": [option], "UpdatedAt": NOW}
    expiring = issued(CERT_ECS, days=12, RenewalSummary=renewal)
    acm.add_response("describe_certificate", expiring, {"CertificateArn": CERT_ECS})
    imported = issued(CERT_EB, days=3, Type="IMPORTED")
    acm.add_response("describe_certificate", imported, {"CertificateArn": CERT_EB})
    found = by_resource(run(clients, config))
    assert found[CERT_ECS].verdict is Verdict.WARN
    assert found[CERT_ECS].advice.startswith("expires 2026-03-13 (12 days), renewal PENDING_AUTO_RENEWAL: ")
    assert "validation CNAME still resolves" in found[CERT_ECS].advice
    assert found[CERT_EB].verdict is Verdict.WARN and "aws acm import-certificate" in found[CERT_EB].advice


def test_certificate_arn_stage_needs_the_name_on_any_target(clients: Clients, stage_file: StageFile) -> None:
    arn = f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/11111111-1111-4111-8111-111111111111"
    config = load_config(path=stage_file(targets=["ecs", "eb"], domain={"name": "api.shop.example.com",
                                                                       "certificate_arn": arn}))  # fmt: skip
    clients.add_stack("shop-dev-ecs", {"LoadBalancerDnsName": ECS_ALB})
    clients.add_stack("shop-dev-eb", {"EnvironmentUrl": EB_ALB})
    acm = clients.stub("acm")
    acm.add_response("describe_certificate", issued(arn), {"CertificateArn": arn})
    acm.add_response("describe_certificate", issued(arn), {"CertificateArn": arn})
    assert {f.verdict for f in run(clients, config)} == {Verdict.PASS}
    elsewhere = {**DNS, "api.shop.example.com": {"192.0.2.1"}}
    found = by_resource(run(clients, config, elsewhere))
    assert found["api.shop.example.com"].verdict is Verdict.FAIL
    assert f"point its record (alias A or CNAME) at ecs {ECS_ALB}, eb {EB_ALB}" in found["api.shop.example.com"].advice


def test_unknown_certificate_fails_on_moto(clients: Clients, stage_file: StageFile) -> None:
    config = hosted_stage(clients, stage_file)
    findings = run(clients, config)  # moto's ACM holds no certificate
    assert {f.verdict for f in findings if f.resource.startswith("arn:aws:acm")} == {Verdict.FAIL}
    assert all("no such certificate in eu-west-1" in f.advice for f in findings if f.resource.startswith("arn:"))


def test_stack_without_certificate_output_warns(clients: Clients, stage_file: StageFile) -> None:
    config = load_config(path=stage_file(targets=["ecs"], domain=ZONE))
    clients.add_stack("shop-dev-ecs", {"LoadBalancerDnsName": ECS_ALB})
    findings = domain.misrouted(make_ctx(clients, config, targets=("ecs",)), resolve=resolver(DNS))
    assert [(f.resource, f.verdict) for f in findings] == [
        ("api.shop.example.com", Verdict.PASS),
        ("shop-dev-ecs", Verdict.WARN),
    ]


def test_registered_post_deploy_and_silent_without_domain(
    clients: Clients, stage_file: StageFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "domain-misrouted" in {c.check_id for c in POST_DEPLOY}
    config = load_config(path=stage_file())
    assert domain.misrouted(make_ctx(clients, config)) == []
    hosted = load_config(path=stage_file(targets=["ecs"], domain=ZONE))
    monkeypatch.setattr(domain, "resolver", resolver(DNS))
    checks = [c for c in POST_DEPLOY if c.check_id == "domain-misrouted"]
    [skipped] = run_checks(make_ctx(clients, hosted, targets=("ecs",)), checks)
    assert skipped.verdict is Verdict.WARN and skipped.advice.startswith("not checked: no target stack")
