"""A service with its own Redis database (services.<name>.redis_db): its REDIS_URL ends in /<n> on every target,
read from its own parameter; numbers are unique; the guards follow the per-service parameter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import ConfigError, load_config
from tests.conftest import EXAMPLES, synthesized

PARAMETER = "/shop/staging/REDIS_URL_DB1"


def refused(tmp_path: Path, **services: dict[str, Any]) -> list[str]:
    raw = yaml.safe_load(EXAMPLES["multi-web"].read_text())
    for name, change in services.items():
        raw["services"][name] = {**raw["services"][name], **change}
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as error:
        load_config(path=path)
    return error.value.problems


def test_two_services_may_not_share_a_database_number(tmp_path: Path) -> None:
    problems = refused(tmp_path, storefront={"redis_db": 1})
    assert any(line.startswith("[config] services.") and "database 1 is also" in line for line in problems), problems


def test_redis_db_needs_a_redis_url_setting(tmp_path: Path) -> None:
    problems = refused(tmp_path, admin={"redis_db": 2})  # admin's settings have no REDIS_URL
    assert any(line.startswith("[config] services.admin.redis_db") for line in problems), problems


def test_only_databases_1_to_15(tmp_path: Path) -> None:
    problems = refused(tmp_path, api={"redis_db": 16})
    assert any(line.startswith("[config] services.api.redis_db") for line in problems), problems


def test_the_services_own_parameter_is_composed_with_its_database() -> None:
    example = synthesized("multi-web")
    data = example.template(example.stacks.data)
    composed = [
        r["Properties"]
        for r in data["Resources"].values()
        if r["Type"] == "Custom::SecureParameter" and r["Properties"].get("Name") == PARAMETER
    ]
    assert len(composed) == 1 and composed[0]["Kind"] == "redis_url" and composed[0]["Database"] == "1"


def test_every_target_delivers_the_services_own_database_and_the_others_the_shared_one() -> None:
    example = synthesized("multi-web")
    assert example.stacks.ecs is not None and example.stacks.eb is not None and example.stacks.eks is not None
    ecs = json.dumps(example.template(example.stacks.ecs))
    tasks = {
        k: v["Properties"]
        for k, v in example.template(example.stacks.ecs)["Resources"].items()
        if v["Type"] == "AWS::ECS::TaskDefinition"
    }
    reads: dict[str, str] = {}
    for logical_id, task in tasks.items():
        for container in task["ContainerDefinitions"]:
            for secret in container.get("Secrets", []):
                if secret["Name"] == "REDIS_URL":
                    reads[logical_id] = json.dumps(secret["ValueFrom"])
    api = [v for k, v in reads.items() if k.startswith("ServiceApi")]
    others = [v for k, v in reads.items() if not k.startswith("ServiceApi")]
    assert api and all("REDIS_URL_DB1" in v for v in api)
    assert others and not any("REDIS_URL_DB1" in v for v in others)
    assert "REDIS_URL_DB1" in ecs
    eb = example.template(example.stacks.eb)
    api_env = next(
        v
        for k, v in eb["Resources"].items()
        if k.startswith("BeanstalkApi") and v["Type"] == "AWS::ElasticBeanstalk::Environment"
    )
    secret_options = [
        o
        for o in api_env["Properties"]["OptionSettings"]
        if o["Namespace"] == "aws:elasticbeanstalk:application:environmentsecrets" and o["OptionName"] == "REDIS_URL"
    ]
    assert secret_options and "REDIS_URL_DB1" in json.dumps(secret_options)
    eks = json.dumps(example.template(example.stacks.eks))
    assert PARAMETER in eks  # the api's ExternalSecret key
