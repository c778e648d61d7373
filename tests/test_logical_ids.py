"""Golden list: stateful resources keep their logical IDs. A change here means CloudFormation would REPLACE
(delete + create) a database, cache, secret or parameter. Never update this list to make a test pass: move
the resource back, or plan the migration (cdk refactor / snapshot restore) and say so in the PR."""

from __future__ import annotations

import pytest

from tests.conftest import STAGES, synthesized

STATEFUL_TYPES = (
    "AWS::RDS::DBInstance",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::SecretsManager::Secret",
    "Custom::SecureParameter",
    "AWS::KMS::Key",
    "AWS::SNS::Topic",
)
GOLDEN = {
    "AWS::RDS::DBInstance": {"DatabaseB269D8BB"},
    "AWS::ElastiCache::ReplicationGroup": {"Cache18F6EE16"},
    # DatabaseUsersAppCredentials: the app user's secret (added with rotation; new, nothing moved).
    "AWS::SecretsManager::Secret": {
        "DatabaseCredentials24F58BE6",
        "CacheAuthToken04672416",
        "DatabaseUsersAppCredentials6ACC8A2D",
    },
    "Custom::SecureParameter": {
        "SettingsSECRETKEY1F869DF7",
        "SettingsJWTSECRETKEYF8AE9EF6",
        "SettingsDATABASEURL973C547B",
        "SettingsREDISURLAB9927F5",
    },
    "AWS::KMS::Key": {"AlarmsKey3C2381B3"},
    "AWS::SNS::Topic": {"Alarms04B5A0BF"},
}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("cfn_type", STATEFUL_TYPES)
def test_stateful_logical_ids_are_stable(stage: str, cfn_type: str) -> None:
    s = synthesized(stage)
    found = {k for k, v in s.template(s.stacks.data)["Resources"].items() if v["Type"] == cfn_type}
    assert found == GOLDEN[cfn_type]


# The app resources of the services example (resources stack): buckets and queues hold data, so their logical IDs
# are derived from the resource names and must never move.
RESOURCES_GOLDEN = {
    "AWS::S3::Bucket": {"ResourcesAccessLogs6CE8FE01", "ResourcesBucketUploadsA4B10BA0"},
    "AWS::SQS::Queue": {"ResourcesQueueEmails882E763C", "ResourcesQueueEmailsDeadLettersF7BCE3A1"},
}


@pytest.mark.parametrize("cfn_type", sorted(RESOURCES_GOLDEN))
def test_app_resource_logical_ids_are_stable(cfn_type: str) -> None:
    s = synthesized("services")
    assert s.stacks.resources is not None
    found = {k for k, v in s.template(s.stacks.resources)["Resources"].items() if v["Type"] == cfn_type}
    assert found == RESOURCES_GOLDEN[cfn_type]
