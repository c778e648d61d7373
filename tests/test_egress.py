"""Declared egress (``egress:``, ``services.<name>.egress``): config refusals, the rules on ECS and EB compute groups,
the egress-blocked guard's two bad cases, and stages without it unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from config import ConfigError, load_config
from stacks.synth import synthesize
from tests.conftest import ROOT, Synthesized, synthesized
from tests.test_ecs import build
from tests.test_guards import assert_refused

DEV = (ROOT / "config" / "stages" / "dev.yaml").read_text()
SMTP = {"port": 587, "cidrs": ["203.0.113.0/24"], "description": "SMTP relay"}


def _egress(template: dict[str, Any], prefix: str) -> list[tuple[str, int | None, str | None]]:
    (group,) = [
        r for k, r in template["Resources"].items() if k.startswith(prefix) and r["Type"] == "AWS::EC2::SecurityGroup"
    ]
    return [(e["IpProtocol"], e.get("FromPort"), e.get("CidrIp")) for e in group["Properties"]["SecurityGroupEgress"]]


def _problems(egress: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "stage.yaml"
    path.write_text(DEV + "\negress: " + egress + "\n")
    with pytest.raises(ConfigError) as error:
        load_config(path=path)
    return error.value.problems


@pytest.mark.parametrize(
    ("egress", "expected"),
    [
        ("[{port: 22, to: internet}]", "[ssh-bastion] egress.0.port: 22 — "),
        ("[{port: 5432, cidrs: [10.0.0.0/8]}]", "[sg-compute-to-rds] egress.0.port: 5432 — "),
        ("[{port: 6379, to: internet}]", "[redis-sg] egress.0.port: 6379 — "),
        ("[{port: 443, to: internet}]", "[egress-blocked] egress.0.port: 443 — HTTPS (443) is already open"),
        ("[{port: 587}]", "[egress-blocked] egress.0: "),
        ("[{port: 587, to: internet, cidrs: [10.0.0.0/8]}]", "write exactly one of cidrs"),
        ("[{port: 587, cidrs: [0.0.0.0/0]}]", "[egress-blocked] egress.0.cidrs.0: '0.0.0.0/0' — 0.0.0.0/0 is the"),
        ("[{port: 587, cidrs: [203.0.113.7/24]}]", "host bits are set; write the network: 203.0.113.0/24"),
        ("[{port: 587, cidrs: [nope]}]", "[egress-blocked] egress.0.cidrs.0: 'nope' — not an IPv4 CIDR"),
        ("[{port: 70000, to: internet}]", "egress.0.port: 70000"),
        ("[{port: 587, to: somewhere}]", "egress.0.to"),
    ],
)
def test_config_refuses_bad_egress_one_line_each(egress: str, expected: str, tmp_path: Path) -> None:
    lines = _problems(egress, tmp_path)
    assert any(expected in line for line in lines), lines
    assert all(line.startswith("[") and " — " in line for line in lines), lines


def test_ecs_worker_has_exactly_its_declared_rule() -> None:
    services = synthesized("services")
    assert services.stacks.ecs is not None
    template = services.template(services.stacks.ecs)
    assert _egress(template, "WorkloadsWorker") == [("tcp", 443, "0.0.0.0/0"), ("tcp", 587, "203.0.113.0/24")]
    assert _egress(template, "ServiceSecurityGroup") == [("tcp", 443, "0.0.0.0/0")]  # the web declared none


def test_to_internet_is_that_port_only_on_every_ecs_group() -> None:
    app, stacks, _ = build("dev", nag=True, egress=[{"port": 8443, "to": "internet"}])
    assembly = synthesize(app)
    assert stacks.ecs is not None
    template = assembly.get_stack_by_name(stacks.ecs.stack_name).template
    expected = [("tcp", 443, "0.0.0.0/0"), ("tcp", 8443, "0.0.0.0/0")]
    assert _egress(template, "ServiceSecurityGroup") == expected
    assert _egress(template, "WorkloadsMigrate") == expected


def test_eb_instance_group_gets_the_web_list() -> None:
    app, stacks, _ = build("staging", nag=True, egress=[SMTP])
    assembly = synthesize(app)
    assert stacks.eb is not None
    template = assembly.get_stack_by_name(stacks.eb.stack_name).template
    assert _egress(template, "BeanstalkInstanceSecurityGroup") == [
        ("tcp", 443, "0.0.0.0/0"),
        ("tcp", 587, "203.0.113.0/24"),
    ]


def test_stages_without_egress_keep_https_only(dev: Synthesized) -> None:
    assert dev.stacks.ecs is not None
    assert _egress(dev.template(dev.stacks.ecs), "ServiceSecurityGroup") == [("tcp", 443, "0.0.0.0/0")]


def test_guard_refuses_hand_added_open_egress() -> None:
    app, stacks, _ = build("dev", egress=[SMTP])
    assert stacks.ecs is not None
    group = stacks.ecs.service.security_group
    ec2.CfnSecurityGroupEgress(
        stacks.ecs, "OpenEgress", group_id=group.security_group_id, ip_protocol="-1", cidr_ip="0.0.0.0/0"
    )
    assert_refused(app, "egress-blocked", "undeclared egress -1 all ports to 0.0.0.0/0", "ecs web")


def test_guard_refuses_declared_entry_missing_from_a_group() -> None:
    app, stacks, _ = build("dev", egress=[SMTP])
    assert stacks.ecs is not None
    cfn = stacks.ecs.service.security_group.node.default_child
    assert isinstance(cfn, cdk.CfnResource)
    cfn.add_property_override(
        "SecurityGroupEgress", [{"CidrIp": "0.0.0.0/0", "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443}]
    )
    assert_refused(app, "egress-blocked", "declared egress tcp 587 to 203.0.113.0/24 missing", "ecs web")


def test_a_token_cidr_is_judged_not_crashed_on() -> None:
    """A rule to the VPC's CIDR (a token at synth) on a port that is not the DB's is refused with one line."""
    from aws_cdk import aws_ec2 as ec2

    from tests.test_ecs import build
    from tests.test_guards import assert_refused

    app, stacks, _ = build()
    assert stacks.ecs is not None
    group = stacks.ecs.service.security_group
    group.add_egress_rule(ec2.Peer.ipv4(stacks.network.vpc.vpc_cidr_block), ec2.Port.tcp(8080), "VPC on 8080")
    assert_refused(app, "egress-blocked", "undeclared egress tcp port 8080")
