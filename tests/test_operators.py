"""Shell access from the stage file (operators:): config refusals, what the templates grant, make shell."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aws_cdk import aws_ecs as ecs
from botocore.stub import Stubber

from config import ConfigError, load_config
from constructs.guards import register_guards
from stacks import build_stacks
from tests.conftest import ROOT, Synthesized, new_app, stage_config
from tests.test_guards import assert_refused
from tools import shell

ACCOUNT = "123456789012"
SRE = f"arn:aws:iam::{ACCOUNT}:role/platform-sre"
SSO = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Dev_0123"
OPERATORS = {"role_arns": [SRE, SSO]}
WORKER = {"kind": "worker", "command": ["celery", "-A", "shop", "worker"]}
# staging with every target, a worker, and operators (the database sized for ECS + EKS connections).
UPDATES: dict[str, Any] = {
    "targets": ["ecs", "eb", "eks"],
    "operators": OPERATORS,
    "services": {"web": {"kind": "web"}, "worker": WORKER},
    "database": {**stage_config("staging").database.model_dump(), "instance_class": "t4g.medium"},
}


def _stage_file(tmp_path: Path, **updates: Any) -> Path:
    data = yaml.safe_load((ROOT / "config" / "stages" / "staging.yaml").read_text())
    data.update(updates)
    path = tmp_path / "stage.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# -- config ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arns", "fragment"),
    [
        (["arn:aws:iam::123456789012:user/alice"], "not an IAM role ARN"),
        (["arn:aws:iam::123456789012:root"], "not an IAM role ARN"),
        (["arn:aws:sts::123456789012:assumed-role/sre/alice"], "not an IAM role ARN"),
        (["arn:aws:iam::123456789012:role/*"], "wildcard"),
        (["arn:aws:iam::123456789012:role/sre-?"], "wildcard"),
        (["arn:aws:iam::999999999999:role/sre"], "a role of account 999999999999, the stage is in 123456789012"),
        ([SRE, SRE], "listed twice"),
    ],
)
def test_operators_refused(tmp_path: Path, arns: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(path=_stage_file(tmp_path, operators={"role_arns": arns}))
    lines = [line for line in raised.value.problems if "operators.role_arns" in line]
    assert lines and all(line.startswith("[config] operators.role_arns") for line in lines), raised.value.problems
    assert any(fragment in line for line in lines), lines


def test_operators_need_the_stage_account(tmp_path: Path) -> None:
    path = _stage_file(tmp_path, operators=OPERATORS, stage="dev", domain=None)
    data = yaml.safe_load(path.read_text())
    del data["account"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as raised:
        load_config(path=path)
    assert any("operators need the stage's account" in line for line in raised.value.problems)


def test_operators_imply_exec() -> None:
    assert stage_config("staging").exec_enabled is False
    assert stage_config("staging", operators=OPERATORS).exec_enabled is True


# -- templates -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ops() -> Synthesized:
    config = stage_config("staging", **UPDATES)
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config)  # guards and cdk-nag: every finding fixed or acknowledged
    return Synthesized(config, stacks, app.synth())


def _of_type(template: dict[str, Any], cfn_type: str) -> dict[str, Any]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == cfn_type}


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["PolicyDocument"]["Statement"])


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_operator_role_trusts_exactly_the_listed_roles(ops: Synthesized) -> None:
    data = ops.template(ops.stacks.data)
    (role,) = [r for r in _of_type(data, "AWS::IAM::Role").values() if r.get("RoleName") == "shop-staging-operator"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole" and "Condition" not in statement
    assert sorted(statement["Principal"]["AWS"]) == sorted([SRE, SSO])
    outputs = data["Outputs"]
    assert {"OperatorRoleArn", "SessionDocumentName", "SessionLogGroupName"} <= set(outputs)


def test_operator_role_base_permissions(ops: Synthesized) -> None:
    data = ops.template(ops.stacks.data)
    (policy,) = [p for k, p in _of_type(data, "AWS::IAM::Policy").items() if k.startswith("OperatorsRole")]
    granted = {tuple(_actions(s)): json.dumps(s["Resource"]) for s in _statements(policy)}
    assert granted == {
        ("cloudformation:DescribeStacks",): '"arn:aws:cloudformation:eu-west-1:123456789012:stack/shop-staging-*/*"',
        ("ssm:StartSession",): granted[("ssm:StartSession",)],
        ("ssm:ResumeSession", "ssm:TerminateSession"): '"arn:aws:ssm:eu-west-1:123456789012:session/${aws:userid}-*"',
        ("kms:GenerateDataKey",): granted[("kms:GenerateDataKey",)],
    }
    assert "document/" in granted[("ssm:StartSession",)] and "SessionDocument" in granted[("ssm:StartSession",)]


def test_sessions_are_logged_to_an_encrypted_group(ops: Synthesized) -> None:
    data = ops.template(ops.stacks.data)
    (key,) = [k for n, k in _of_type(data, "AWS::KMS::Key").items() if n.startswith("OperatorsSessionKey")]
    assert key["EnableKeyRotation"] is True
    (group,) = [
        g for g in _of_type(data, "AWS::Logs::LogGroup").values() if g.get("LogGroupName") == "/shop/staging/sessions"
    ]
    assert "OperatorsSessionKey" in json.dumps(group["KmsKeyId"])
    (document,) = _of_type(data, "AWS::SSM::Document").values()
    assert document["DocumentType"] == "Session"
    inputs = document["Content"]["inputs"]
    assert inputs["cloudWatchLogGroupName"] == "/shop/staging/sessions" and inputs["cloudWatchEncryptionEnabled"]
    assert document["Content"]["sessionType"] == "Standard_Stream"
    for stack in (ops.stacks.ecs, ops.stacks.eb):
        assert stack is not None
        template = ops.template(stack)
        (cluster,) = _of_type(template, "AWS::ECS::Cluster").values()
        config = cluster["Configuration"]["ExecuteCommandConfiguration"]
        assert config["Logging"] == "OVERRIDE"
        assert config["LogConfiguration"] == {
            "CloudWatchEncryptionEnabled": True,
            "CloudWatchLogGroupName": "/shop/staging/sessions",
        }
        assert "OperatorsSessionKey" in json.dumps(config["KmsKeyId"])
        services = _of_type(template, "AWS::ECS::Service")
        assert services and all(s["EnableExecuteCommand"] is True for s in services.values())


def test_task_roles_get_exactly_what_exec_needs(ops: Synthesized) -> None:
    assert ops.stacks.ecs is not None
    template = ops.template(ops.stacks.ecs)
    policy = next(p for k, p in _of_type(template, "AWS::IAM::Policy").items() if k.startswith("ServiceTaskTaskRole"))
    actions = {a: json.dumps(s["Resource"]) for s in _statements(policy) for a in _actions(s)}
    assert set(actions) == {
        "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel", "logs:DescribeLogGroups", "logs:CreateLogStream", "logs:DescribeLogStreams",
        "logs:PutLogEvents", "kms:Decrypt", "kms:GenerateDataKey",
    }  # fmt: skip
    assert actions["logs:PutLogEvents"] == '"arn:aws:logs:eu-west-1:123456789012:log-group:/shop/staging/sessions:*"'
    assert "OperatorsSessionKey" in actions["kms:Decrypt"]


def test_operator_may_exec_only_into_the_stage_clusters(ops: Synthesized) -> None:
    for stack, cluster in ((ops.stacks.ecs, "ServiceCluster"), (ops.stacks.eb, "Tasks")):
        assert stack is not None
        policies = _of_type(ops.template(stack), "AWS::IAM::Policy")
        (policy,) = [p for k, p in policies.items() if k.startswith("OperatorExec")]
        assert "OperatorsRole" in json.dumps(policy["Roles"])
        by_action = {a: s for s in _statements(policy) for a in _actions(s)}
        assert set(by_action) == {"ecs:ExecuteCommand", "ecs:DescribeTasks", "ecs:ListTasks"}
        exec_resources = json.dumps(by_action["ecs:ExecuteCommand"]["Resource"])
        assert cluster in exec_resources and ":task/" in exec_resources
        assert by_action["ecs:ListTasks"]["Resource"] == "*"
        assert cluster in json.dumps(by_action["ecs:ListTasks"]["Condition"]["ArnEquals"]["ecs:cluster"])


def test_eb_instances_take_sessions_from_the_operator_only(ops: Synthesized) -> None:
    assert ops.stacks.eb is not None
    template = ops.template(ops.stacks.eb)
    roles = _of_type(template, "AWS::IAM::Role")
    instance_role = next(r for k, r in roles.items() if k.startswith("BeanstalkInstanceRole"))
    assert "AmazonSSMManagedInstanceCore" in json.dumps(instance_role["ManagedPolicyArns"])
    (policy,) = [p for k, p in _of_type(template, "AWS::IAM::Policy").items() if k.startswith("OperatorSessions")]
    start = next(s for s in _statements(policy) if _actions(s) == ["ssm:StartSession"])
    assert start["Resource"] == "arn:aws:ec2:eu-west-1:123456789012:instance/*"
    tag = start["Condition"]["StringEquals"]["ssm:resourceTag/elasticbeanstalk:environment-name"]
    assert tag == {"Ref": next(k for k in template["Resources"] if k.startswith("BeanstalkEnvironment"))}


def test_eks_access_entry_is_namespace_scoped(ops: Synthesized) -> None:
    assert ops.stacks.eks is not None
    entries = _of_type(ops.template(ops.stacks.eks), "AWS::EKS::AccessEntry")
    (entry,) = [e for k, e in entries.items() if k.startswith("OperatorAccessEntry")]
    assert "OperatorsRole" in json.dumps(entry["PrincipalArn"])
    (policy,) = entry["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "namespace", "Namespaces": ["app"]}
    assert "AmazonEKSEditPolicy" in json.dumps(policy["PolicyArn"])


def test_stages_without_operators_are_unchanged(dev: Synthesized) -> None:
    for template in dev.templates().values():
        text = json.dumps(template)
        assert "-operator" not in text and "Operators" not in text and "AWS::SSM::Document" not in text
        assert "ExecuteCommandConfiguration" not in text


def test_exec_switched_off_next_to_operators_is_refused() -> None:
    config = stage_config("staging", operators=OPERATORS)
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config, nag=False)
    assert stacks.ecs is not None
    service = stacks.ecs.service.service.node.default_child
    assert isinstance(service, ecs.CfnService)
    service.enable_execute_command = False
    assert_refused(app, "no-exec-on-fargate", "EnableExecuteCommand=False", "operators: is set")


# -- make shell ------------------------------------------------------------------------------------------------

CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/platform-sre/alice"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-staging-operator"
EXPIRES = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
CREDENTIALS = {
    "AccessKeyId": "ASIAOPERATOREXAMPLE",
    "SecretAccessKey": "s" * 40,
    "SessionToken": "t",
    "Expiration": EXPIRES,
}


class FakeAws:
    """A ClientSource whose clients are stubbed (one per service), shared by caller and operator."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.stubs: dict[str, Stubber] = {}

    def stub(self, service: str) -> Stubber:
        if service not in self.stubs:
            client = boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
            self.clients[service], self.stubs[service] = client, Stubber(client)
            self.stubs[service].activate()
        return self.stubs[service]

    def client(self, service: str, region: str) -> Any:
        self.stub(service)
        return self.clients[service]

    @property
    def default_region(self) -> str:
        return "eu-west-1"


def _identity(aws: FakeAws, account: str = ACCOUNT) -> None:
    reply = {"Account": account, "Arn": CALLER.replace(ACCOUNT, account), "UserId": "AROAX:alice"}
    aws.stub("sts").add_response("get_caller_identity", reply)


def _assume(aws: FakeAws) -> None:
    aws.stub("sts").add_response(
        "assume_role",
        {"Credentials": CREDENTIALS, "AssumedRoleUser": {"AssumedRoleId": "AROAY:alice", "Arn": CALLER}},
        {"RoleArn": ROLE, "RoleSessionName": "alice"},
    )


def _stack(aws: FakeAws, name: str, outputs: dict[str, str]) -> None:
    stack = {
        "StackName": name,
        "CreationTime": EXPIRES,
        "StackStatus": "UPDATE_COMPLETE",
        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
    }
    aws.stub("cloudformation").add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": name})


def _run(
    tmp_path: Path, aws: FakeAws, *args: str, missing: tuple[str, ...] = (), **updates: Any
) -> tuple[int, list[tuple[list[str], dict[str, str]]]]:
    path = _stage_file(tmp_path, **{"operators": OPERATORS, **updates})
    calls: list[tuple[list[str], dict[str, str]]] = []

    def run(command: list[str], env: dict[str, str]) -> int:
        calls.append((command, env))
        return 0

    code = shell.main(
        ["--config", str(path), *args],
        aws=aws,  # type: ignore[arg-type]
        which=lambda name: None if name in missing else f"/usr/bin/{name}",
        run=run,
        environ={"PATH": "/usr/bin", "AWS_PROFILE": "sso"},
    )
    return code, calls


@pytest.fixture(autouse=True)
def _operator_is_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shell, "operator_clients", lambda credentials, region: _CURRENT[0])


_CURRENT: list[FakeAws] = []


@pytest.fixture
def aws() -> FakeAws:
    fake = FakeAws()
    _CURRENT[:] = [fake]
    return fake


def test_shell_execs_into_a_running_ecs_task(tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    _identity(aws)
    _assume(aws)
    _stack(aws, "shop-staging-ecs", {"ClusterName": "shop-cluster", "ServiceName": "shop-web",
                                     "ServiceNames": json.dumps({"web": "shop-web"})})  # fmt: skip
    task = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task/shop-cluster/abc123"
    ecs_stub = aws.stub("ecs")
    expected = {"cluster": "shop-cluster", "serviceName": "shop-web", "desiredStatus": "RUNNING"}
    ecs_stub.add_response("list_tasks", {"taskArns": [task]}, expected)
    ecs_stub.add_response("describe_tasks", {"tasks": [{"taskArn": task, "lastStatus": "RUNNING",
                                                        "enableExecuteCommand": True}]})  # fmt: skip
    code, calls = _run(tmp_path, aws)
    assert code == 0
    ((command, env),) = calls
    assert command == ["aws", "ecs", "execute-command", "--region", "eu-west-1", "--cluster", "shop-cluster",
                       "--task", task, "--container", "app", "--interactive", "--command", "/bin/sh"]  # fmt: skip
    assert env["AWS_ACCESS_KEY_ID"] == "ASIAOPERATOREXAMPLE" and "AWS_PROFILE" not in env
    err = capsys.readouterr().err
    assert "==> stage staging of shop: account 123456789012, region eu-west-1" in err
    assert f"==> caller {CALLER}" in err
    assert "Traceback" not in err


def test_shell_opens_a_session_on_an_eb_instance(tmp_path: Path, aws: FakeAws) -> None:
    _identity(aws)
    _assume(aws)
    _stack(aws, "shop-staging-eb", {"EnvironmentName": "e-shop"})
    _stack(aws, "shop-staging-data", {"SessionDocumentName": "shop-staging-sessions"})
    reservations = {"Reservations": [{"Instances": [{"InstanceId": "i-0b"}, {"InstanceId": "i-0a"}]}]}
    aws.stub("ec2").add_response("describe_instances", reservations)
    code, calls = _run(tmp_path, aws, "--target", "eb")
    assert code == 0
    ((command, _),) = calls
    assert command == ["aws", "ssm", "start-session", "--region", "eu-west-1", "--target", "i-0a",
                       "--document-name", "shop-staging-sessions"]  # fmt: skip


def test_shell_on_eks_updates_kubeconfig_then_execs(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    _identity(aws)
    _assume(aws)
    _stack(aws, "shop-staging-eks", {"ClusterName": "shop-eks"})
    services = {"web": {"kind": "web"}, "worker": WORKER}
    code, calls = _run(tmp_path, aws, "--service", "worker", "--target", "eks", targets=["eks"], services=services)
    assert code == 0
    assert [c for c, _ in calls] == [
        ["aws", "eks", "update-kubeconfig", "--region", "eu-west-1", "--name", "shop-eks", "--role-arn", ROLE,
         "--alias", "shop-staging"],
        ["kubectl", "--context", "shop-staging", "-n", "app", "exec", "-it", "deploy/shop-worker", "--", "/bin/sh"],
    ]  # fmt: skip
    assert "endpoint is private" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("missing", "target", "fragment"),
    [
        (("aws",), "ecs", "the aws CLI is not on PATH"),
        (("session-manager-plugin",), "ecs", "session-manager-working-with-install-plugin.html"),
        (("session-manager-plugin",), "eb", "session-manager-plugin is not on PATH"),
        (("kubectl",), "eks", "kubectl is not on PATH"),
    ],
)
def test_shell_names_a_missing_tool(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str], missing: tuple[str, ...], target: str,
    fragment: str,
) -> None:  # fmt: skip
    code, calls = _run(tmp_path, aws, "--target", target, missing=missing, targets=["ecs", "eb", "eks"])
    assert (code, calls) == (2, [])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "[local-tools]" in line and fragment in line


def test_shell_without_operators_says_what_to_add(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    code, calls = _run(tmp_path, aws, operators=None)
    assert (code, calls) == (2, [])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "operators: not set" in line and 'role_arns: ["arn:aws:iam::123456789012:role/<your role>"]' in line


def test_shell_refuses_another_accounts_credentials(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    _identity(aws, "999999999999")
    code, calls = _run(tmp_path, aws)
    assert (code, calls) == (2, [])
    assert "the stage file pins 123456789012" in capsys.readouterr().err


def test_shell_when_the_caller_may_not_assume_the_role(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    _identity(aws)
    aws.stub("sts").add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole")
    code, calls = _run(tmp_path, aws)
    assert (code, calls) == (2, [])
    err = capsys.readouterr().err
    assert f"{CALLER} may not assume {ROLE}" in err and "Traceback" not in err


def test_shell_with_no_running_task(tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    _identity(aws)
    _assume(aws)
    _stack(aws, "shop-staging-ecs", {"ClusterName": "c", "ServiceNames": json.dumps({"web": "s"})})
    aws.stub("ecs").add_response("list_tasks", {"taskArns": []})
    code, calls = _run(tmp_path, aws)
    assert (code, calls) == (2, [])
    assert "no running task of web (s in c)" in capsys.readouterr().err
