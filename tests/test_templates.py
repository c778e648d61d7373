"""What the network and data stacks provision, asserted on the session synth of each stage."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from tests.conftest import Synthesized


def _t(s: Synthesized, purpose: str) -> Template:
    return Template.from_json(s.template(getattr(s.stacks, purpose)))


def _resources(s: Synthesized, purpose: str, cfn_type: str) -> dict[str, Any]:
    return {k: v for k, v in s.template(getattr(s.stacks, purpose))["Resources"].items() if v["Type"] == cfn_type}


def test_vpc_has_three_tiers_endpoints_and_flow_logs(dev: Synthesized) -> None:
    network = _t(dev, "network")
    network.resource_count_is("AWS::EC2::NatGateway", 1)
    network.resource_count_is("AWS::EC2::FlowLog", 1)
    services = {
        json.dumps(r["Properties"]["ServiceName"]) for r in _resources(dev, "network", "AWS::EC2::VPCEndpoint").values()
    }
    for service in ("ecr.api", "ecr.dkr", "logs", "ssm", "secretsmanager", "sts", "s3"):
        assert any(f".{service}" in s for s in services), service
    assert len(_resources(dev, "network", "AWS::EC2::Subnet")) == 6  # 2 AZs x public / app / data


def test_prod_spans_three_zones_with_two_nat_gateways(prod: Synthesized) -> None:
    _t(prod, "network").resource_count_is("AWS::EC2::NatGateway", 2)
    assert len(_resources(prod, "network", "AWS::EC2::Subnet")) == 9


def test_database_is_private_encrypted_tls_only_and_logged(dev: Synthesized) -> None:
    data = _t(dev, "data")
    data.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "PubliclyAccessible": False,
            "StorageEncrypted": True,
            "Engine": "postgres",
            "EngineVersion": "17.6",
            "MaxAllocatedStorage": 50,
            "BackupRetentionPeriod": 7,
            "EnableCloudwatchLogsExports": ["postgresql", "upgrade"],
        },
    )
    data.has_resource_properties(
        "AWS::RDS::DBParameterGroup",
        {
            "Family": "postgres17",
            "Parameters": {"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
        },
    )
    data.has_resource_properties("AWS::RDS::DBSubnetGroup", {"SubnetIds": Match.any_value()})


def test_dev_database_is_disposable_prod_database_is_kept(dev: Synthesized, prod: Synthesized) -> None:
    _t(dev, "data").has_resource("AWS::RDS::DBInstance", {"DeletionPolicy": "Delete"})
    _t(prod, "data").has_resource(
        "AWS::RDS::DBInstance",
        {
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
            "Properties": Match.object_like({"DeletionProtection": True, "MultiAZ": True}),
        },
    )


def test_data_stack_has_termination_protection(dev: Synthesized) -> None:
    assert dev.stacks.data.termination_protection is True


def test_data_security_groups_admit_nothing_until_a_target_wires_in(dev: Synthesized) -> None:
    """The one rule in the data stack admits the database's own user bootstrap and rotation functions on 5432;
    the stores admit no compute until a target's stack wires itself in."""
    (rule,) = _resources(dev, "data", "AWS::EC2::SecurityGroupIngress").values()
    props = rule["Properties"]
    assert (props["FromPort"], props["ToPort"]) == (5432, 5432)
    assert "DatabaseSecurityGroup" in json.dumps(props["GroupId"])
    assert "DatabaseUsersSecurityGroup" in json.dumps(props["SourceSecurityGroupId"])
    for sg in _resources(dev, "data", "AWS::EC2::SecurityGroup").values():
        assert "SecurityGroupIngress" not in sg["Properties"]


def test_redis_is_encrypted_with_auth_token_from_secrets_manager(prod: Synthesized) -> None:
    (group,) = _resources(prod, "data", "AWS::ElastiCache::ReplicationGroup").values()
    props = group["Properties"]
    assert props["TransitEncryptionEnabled"] is True and props["AtRestEncryptionEnabled"] is True
    assert props["MultiAZEnabled"] is True and props["NumCacheClusters"] == 2
    assert "{{resolve:secretsmanager:" in json.dumps(props["AuthToken"])


def test_every_secret_setting_is_a_secure_parameter_created_by_the_deploy(dev: Synthesized) -> None:
    params = _resources(dev, "data", "Custom::SecureParameter")
    by_name = {p["Properties"]["Name"]: p for p in params.values()}
    assert set(by_name) == {f"/shop/dev/{n}" for n in ("SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL")}
    assert by_name["/shop/dev/SECRET_KEY"]["Properties"]["Length"] == "64"
    assert by_name["/shop/dev/DATABASE_URL"]["Properties"]["Scheme"] == "postgresql+asyncpg"
    assert by_name["/shop/dev/REDIS_URL"]["Properties"]["Kind"] == "redis_url"
    for param in params.values():
        assert param["DeletionPolicy"] == "Retain"


def test_alarms_have_dimensions_actions_and_missing_data_policy(dev: Synthesized) -> None:
    alarms = _resources(dev, "data", "AWS::CloudWatch::Alarm")
    metrics = {a["Properties"]["MetricName"] for a in alarms.values()}
    assert {
        "CPUUtilization",
        "FreeStorageSpace",
        "DatabaseConnections",
        "FreeableMemory",
        "EngineCPUUtilization",
        "DatabaseMemoryUsagePercentage",
        "Evictions",
    } <= metrics
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["Dimensions"] and props["AlarmActions"] and props["TreatMissingData"] == "notBreaching"
        assert props["AlarmName"].startswith("shop-dev-")


def test_alarm_topic_is_encrypted_and_subscribed_in_prod(prod: Synthesized) -> None:
    data = _t(prod, "data")
    data.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    data.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "platform-oncall@example.com"}
    )


def test_outputs_for_doctor_and_targets(dev: Synthesized) -> None:
    outputs = dev.template(dev.stacks.data)["Outputs"]
    assert {
        "DatabaseInstanceId",
        "DatabaseSecurityGroupId",
        "DatabaseSecretArn",
        "CacheReplicationGroupId",
        "CacheSecurityGroupId",
        "CacheAuthSecretArn",
        "AlarmTopicArn",
    } <= set(outputs)


def test_handler_may_write_only_this_stages_parameters(dev: Synthesized) -> None:
    policies = _resources(dev, "data", "AWS::IAM::Policy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    put = [s for s in statements if "ssm:PutParameter" in s["Action"]]
    assert put and sorted(put[0]["Action"]) == ["ssm:GetParameter", "ssm:PutParameter"]
    assert len(put) == 1 and json.dumps(put[0]["Resource"]).endswith(':parameter/shop/dev/*"')
