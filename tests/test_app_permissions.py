"""The app's own AWS permissions (``permissions:``): checked against the IAM reference when the file loads,
granted to the declaring service's role on every target (ECS task role, EB instance role, EKS IRSA role)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from config import ConfigError, load_config
from constructs.guards import register_guards
from stacks import build_stacks
from tests.conftest import new_app, stage_config

READ_METRICS = {"actions": ["cloudwatch:GetMetricData"], "resources": ["*"]}
SEND = {"actions": ["sqs:SendMessage"], "resources": ["arn:aws:sqs:eu-west-1:123456789012:shop-jobs"]}


@pytest.mark.parametrize(
    ("permission", "fragment"),
    [
        ({"actions": ["iam:CreateAccessKey"], "resources": ["*"]}, "iam:CreateAccessKey: lets the app change"),
        ({"actions": ["iam:PassRole"], "resources": ["arn:aws:iam::123456789012:role/x"]}, "iam:PassRole: lets"),
        ({"actions": ["sts:AssumeRole"], "resources": ["*"]}, "sts:AssumeRole: lets the app"),
        ({"actions": ["secretsmanager:GetSecretValue"], "resources": ["*"]}, "reads secrets directly"),
        (
            {"actions": ["ssm:GetParametersByPath"], "resources": ["arn:aws:ssm:eu-west-1:1:parameter/x"]},
            "reads secrets",
        ),
        ({"actions": ["kms:Decrypt"], "resources": ["*"]}, "kms:Decrypt on '*': name the key"),
        ({"actions": ["s3:GetObject"], "resources": ["*"]}, "s3:GetObject on '*': it supports resource ARNs"),
        ({"actions": ["s3:*"], "resources": ["*"]}, "'s3:*' is not one IAM action"),
        ({"actions": ["s3:GetObjekt"], "resources": ["*"]}, "'s3:GetObjekt' is not an action of the IAM reference"),
        ({"actions": ["sqs:SendMessage"], "resources": ["shop-jobs"]}, "resource 'shop-jobs': write an ARN"),
    ],
)
def test_dangerous_or_unnecessarily_wide_permissions_are_refused(permission: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        stage_config("dev", permissions=[permission])


def test_the_old_eks_key_is_refused_with_where_it_moved(tmp_path: Any) -> None:
    text = tmp_path / "dev.yaml"
    source = load_config("dev").model_dump(mode="json", exclude_none=True)
    source["eks"] = {**source.get("eks", {}), "app_permissions": ["ce:GetCostAndUsage"]}
    text.write_text(json.dumps(source), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_config(path=str(text))
    assert any(
        line.startswith("[iam-app-permissions] eks.app_permissions") and "moved" in line
        for line in refused.value.problems
    )


def _policies(app: Any) -> dict[str, list[dict[str, Any]]]:
    """Role path -> the AppPermissions statements attached to it, over every stack of the assembly."""
    found: dict[str, list[dict[str, Any]]] = {}
    for stack in app.synth().stacks:
        template = stack.template
        for policy in template["Resources"].values():
            if policy["Type"] != "AWS::IAM::Policy":
                continue
            statements = [
                s
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if str(s.get("Sid", "")).startswith("AppPermissions")
            ]
            for role in policy["Properties"]["Roles"]:
                if not isinstance(role, dict) or "Ref" not in role:
                    continue  # a role of another stack (the operator role): not an app principal
                name = template["Resources"][role["Ref"]]["Metadata"]["aws:cdk:path"]
                found.setdefault(name, []).extend(statements)
    return found


def test_each_service_gets_exactly_its_permissions_on_every_target() -> None:
    """The all-targets example with the web reading metrics and the worker sending to a queue: the web's task
    role (ECS), instance role (EB) and IRSA role (EKS) carry the first, the worker's roles the second, nothing else."""
    base = stage_config("services")
    services = base.model_dump(mode="json", exclude_none=True)["services"]
    services["web"]["permissions"] = [READ_METRICS]
    services["worker"]["permissions"] = [SEND]
    for spec in services.values():
        spec.pop("uses", None)  # the example's app resources add their own grants (tests/test_resources.py)
        spec.pop("scale_on_queue", None)  # scales on a queue it no longer consumes here
    config = stage_config("services", services=services, resources={})
    app = new_app()
    build_stacks(app, config)
    register_guards(app, config)  # every guard and cdk-nag: the IAM5 acknowledgement names what it covers
    granted = {
        path: sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
        for path, statements in _policies(app).items()
        if statements
    }
    web = {path for path, actions in granted.items() if actions == ["cloudwatch:GetMetricData"]}
    worker = {path for path, actions in granted.items() if actions == ["sqs:SendMessage"]}
    assert set(granted) == web | worker
    assert any("-ecs/Service/Task/TaskRole" in p for p in web)
    assert any("-eb/Beanstalk/InstanceRole" in p for p in web)
    assert any("-eks/Eks/AppRole" in p for p in web)
    assert any("-ecs/Workloads/WorkerWorker/Task/TaskRole" in p for p in worker)
    assert any("-eks/Eks/WorkerWorkerRole" in p for p in worker)
