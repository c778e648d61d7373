"""make db: the tunnel the data stack builds with operators:, its admission to the database, and tools/db.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_ec2 as ec2

from constructs.guards import register_guards
from stacks import build_stacks
from tests.conftest import Synthesized, new_app, stage_config
from tests.test_guards import assert_refused
from tests.test_operators import (
    ACCOUNT,
    OPERATORS,
    UPDATES,
    FakeAws,
    _actions,
    _assume,
    _identity,
    _of_type,
    _stack,
    _stage_file,
    _statements,
)
from tools import db, shell

CLUSTER = "shop-staging-data-TunnelCluster"
TASK = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task/{CLUSTER}/0123abcd"
TASK_DEFINITION = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task-definition/shop-staging-db-tunnel:3"
ENDPOINT = "shop-staging.abc.eu-west-1.rds.amazonaws.com"
OUTPUTS = {
    "TunnelClusterName": CLUSTER,
    "TunnelTaskDefinitionArn": TASK_DEFINITION,
    "TunnelSubnetIds": "subnet-a,subnet-b",
    "TunnelSecurityGroupId": "sg-tunnel",
    "DatabaseEndpoint": ENDPOINT,
    "DatabaseName": "app",
    "DatabaseAppUser": "app_user",
    "DatabaseAppSecretArn": f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:app-user-AbCdEf",
}


# -- templates -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ops() -> Synthesized:
    config = stage_config("staging", **UPDATES)
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config)  # guards and cdk-nag: every finding fixed or acknowledged
    return Synthesized(config, stacks, app.synth())


def _one(resources: dict[str, Any], prefix: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in resources.items() if k.startswith(prefix)]
    return found


def test_tunnel_task_definition(ops: Synthesized) -> None:
    data = ops.template(ops.stacks.data)
    _, task = _one(_of_type(data, "AWS::ECS::TaskDefinition"), "TunnelTaskDefinition")
    assert (task["Family"], task["Cpu"], task["Memory"]) == ("shop-staging-db-tunnel", "256", "512")
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    (container,) = task["ContainerDefinitions"]
    assert container["Command"] == ["sleep", "3600"]
    assert container["Environment"] == [{"Name": "APP_STAGE", "Value": "staging"}]
    assert "Secrets" not in container
    assert "/shop-api:1.0.0" in json.dumps(container["Image"])  # the stage's image
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    group = container["LogConfiguration"]["Options"]["awslogs-group"]["Ref"]
    assert data["Resources"][group]["Properties"]["RetentionInDays"] == 7
    _, cluster = _one(_of_type(data, "AWS::ECS::Cluster"), "TunnelCluster")
    config = cluster["Configuration"]["ExecuteCommandConfiguration"]
    assert config["Logging"] == "OVERRIDE"
    assert config["LogConfiguration"]["CloudWatchLogGroupName"] == "/shop/staging/sessions"
    _, task_policy = _one(_of_type(data, "AWS::IAM::Policy"), "TunnelTaskDefinitionTaskRole")
    granted = {a for s in _statements(task_policy) for a in _actions(s)}
    assert {"ssmmessages:CreateControlChannel", "ssmmessages:OpenDataChannel", "kms:Decrypt"} <= granted
    assert not any(a.startswith(("secretsmanager:", "ssm:Get", "rds")) for a in granted)


def test_tunnel_security_group_reaches_only_the_database(ops: Synthesized) -> None:
    data = ops.template(ops.stacks.data)
    resources = data["Resources"]
    group, props = _one(_of_type(data, "AWS::EC2::SecurityGroup"), "TunnelSecurityGroup")
    assert props["SecurityGroupEgress"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "AWS APIs over HTTPS (Session Manager, ECR, logs)", "FromPort": 443,
         "IpProtocol": "tcp", "ToPort": 443},
    ]  # fmt: skip
    assert "SecurityGroupIngress" not in props
    database = next(k for k in resources if k.startswith("DatabaseSecurityGroup") and "from" not in k)
    egress = [
        e for e in _of_type(data, "AWS::EC2::SecurityGroupEgress").values() if e["GroupId"]["Fn::GetAtt"][0] == group
    ]
    assert [(e["FromPort"], e["ToPort"], e["DestinationSecurityGroupId"]["Fn::GetAtt"][0]) for e in egress] == [
        (5432, 5432, database)
    ]
    ingress = [
        i
        for i in _of_type(data, "AWS::EC2::SecurityGroupIngress").values()
        if i.get("SourceSecurityGroupId", {}).get("Fn::GetAtt", [None])[0] == group
    ]
    assert [(i["FromPort"], i["ToPort"], i["GroupId"]["Fn::GetAtt"][0]) for i in ingress] == [(5432, 5432, database)]


def test_operator_may_run_stop_and_forward_only_the_tunnel(ops: Synthesized) -> None:
    data = ops.template(ops.stacks.data)
    _, policy = _one(_of_type(data, "AWS::IAM::Policy"), "TunnelOperatorTunnel")
    assert policy["Roles"] == [{"Ref": next(k for k in data["Resources"] if k.startswith("OperatorsRole"))}]
    by_actions = {tuple(_actions(s)): s for s in _statements(policy)}
    assert set(by_actions) == {("ecs:RunTask",), ("iam:PassRole",), ("ecs:DescribeTasks", "ecs:StopTask"),
                               ("ssm:StartSession",)}  # fmt: skip
    run = by_actions[("ecs:RunTask",)]
    assert run["Resource"]["Ref"].startswith("TunnelTaskDefinition")
    assert run["Condition"]["ArnEquals"]["ecs:cluster"]["Fn::GetAtt"][0].startswith("TunnelCluster")
    passed = by_actions[("iam:PassRole",)]
    assert sorted(r["Fn::GetAtt"][0][:30] for r in passed["Resource"]) == [
        "TunnelTaskDefinitionExecutionR", "TunnelTaskDefinitionTaskRole82",
    ]  # fmt: skip
    assert passed["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    cluster = next(k for k in data["Resources"] if k.startswith("TunnelCluster"))
    tasks = {"Fn::Join": ["", [f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task/", {"Ref": cluster}, "/*"]]}
    assert by_actions[("ecs:DescribeTasks", "ecs:StopTask")]["Resource"] == tasks
    start = by_actions[("ssm:StartSession",)]
    assert start["Resource"] == ["arn:aws:ssm:eu-west-1::document/AWS-StartPortForwardingSessionToRemoteHost", tasks]
    assert start["Condition"] == {"BoolIfExists": {"ssm:SessionDocumentAccessCheck": "true"}}


def test_tunnel_outputs_name_no_password(ops: Synthesized) -> None:
    outputs = ops.template(ops.stacks.data)["Outputs"]
    assert set(OUTPUTS) <= set(outputs)
    assert outputs["DatabaseName"]["Value"] == "app" and outputs["DatabaseAppUser"]["Value"] == "app_user"
    assert outputs["DatabaseEndpoint"]["Value"]["Fn::GetAtt"][1] == "Endpoint.Address"
    assert "password" not in json.dumps(outputs).lower()


def test_no_tunnel_without_operators(dev: Synthesized) -> None:
    for template in dev.templates().values():
        text = json.dumps(template)
        assert "Tunnel" not in text and "db-tunnel" not in text and "PortForwarding" not in text


def test_tunnel_admitted_on_another_port_is_refused() -> None:
    config = stage_config("staging", operators=OPERATORS)
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config, nag=False)
    assert stacks.data.tunnel is not None
    stacks.data.database.security_group.add_ingress_rule(stacks.data.tunnel.security_group, ec2.Port.tcp(5433))
    assert_refused(app, "sg-compute-to-rds", "ports 5433-5433 open to its maintenance group", "on 5432 only")


# -- make db ---------------------------------------------------------------------------------------------------

_CURRENT: list[FakeAws] = []


@pytest.fixture(autouse=True)
def _operator_is_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shell, "operator_clients", lambda credentials, region: _CURRENT[0])


@pytest.fixture
def aws() -> FakeAws:
    fake = FakeAws()
    _CURRENT[:] = [fake]
    return fake


def _described(status: str, agent: str | None = None, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "tunnel", "runtimeId": "0123abcd-111"}
    if agent:
        container["managedAgents"] = [{"name": "ExecuteCommandAgent", "lastStatus": agent}]
    return {"tasks": [{"taskArn": TASK, "lastStatus": status, "containers": [container], **extra}]}


def _started(aws: FakeAws, *statuses: dict[str, Any]) -> None:
    _identity(aws)
    _assume(aws)
    _stack(aws, "shop-staging-data", OUTPUTS)
    stub = aws.stub("ecs")
    network = {"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-tunnel"],
                                       "assignPublicIp": "DISABLED"}}  # fmt: skip
    stub.add_response(
        "run_task",
        {"tasks": [{"taskArn": TASK, "lastStatus": "PROVISIONING"}], "failures": []},
        {"cluster": CLUSTER, "taskDefinition": TASK_DEFINITION, "launchType": "FARGATE", "count": 1,
         "enableExecuteCommand": True, "startedBy": "make-db", "networkConfiguration": network},
    )  # fmt: skip
    for status in statuses:
        stub.add_response("describe_tasks", status, {"cluster": CLUSTER, "tasks": [TASK]})


def _stopped(aws: FakeAws) -> None:
    aws.stub("ecs").add_response(
        "stop_task", {"task": {"taskArn": TASK}}, {"cluster": CLUSTER, "task": TASK, "reason": "make db: session ended"}
    )


def _db(
    tmp_path: Path,
    *args: str,
    run: Any = None,
    missing: tuple[str, ...] = (),
    clock: Any = None,
    **updates: Any,
) -> tuple[int, list[tuple[list[str], dict[str, str]]]]:
    path = _stage_file(tmp_path, **{"operators": OPERATORS, **updates})
    calls: list[tuple[list[str], dict[str, str]]] = []

    def record(command: list[str], env: dict[str, str]) -> int:
        calls.append((command, env))
        return 0 if run is None else int(run())

    code = db.main(
        ["--config", str(path), *args],
        aws=_CURRENT[0],  # type: ignore[arg-type]
        which=lambda name: None if name in missing else f"/usr/bin/{name}",
        run=record,
        environ={"PATH": "/usr/bin", "AWS_PROFILE": "sso"},
        sleep=lambda seconds: None,
        clock=clock or (lambda: 0.0),
    )
    return code, calls


def test_db_forwards_a_port_then_stops_the_task(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    _started(aws, _described("PENDING"), _described("RUNNING", "PENDING"), _described("RUNNING", "RUNNING"))
    _stopped(aws)
    code, calls = _db(tmp_path, "--local-port", "5433")
    assert code == 0
    ((command, env),) = calls
    assert command == [
        "aws", "ssm", "start-session", "--region", "eu-west-1", "--target", f"ecs:{CLUSTER}_0123abcd_0123abcd-111",
        "--document-name", "AWS-StartPortForwardingSessionToRemoteHost",
        "--parameters", f"host={ENDPOINT},portNumber=5432,localPortNumber=5433",
    ]  # fmt: skip
    assert env["AWS_ACCESS_KEY_ID"] == "ASIAOPERATOREXAMPLE" and "AWS_PROFILE" not in env
    aws.stubs["ecs"].assert_no_pending_responses()
    err = capsys.readouterr().err
    assert 'psql "host=127.0.0.1 port=5433 dbname=app user=app_user sslmode=require"' in err
    assert "the app user's secret in Secrets Manager" in err and OUTPUTS["DatabaseAppSecretArn"] in err
    assert "==> task 0123abcd: RUNNING, exec agent PENDING" in err
    assert err.rstrip().endswith("==> stopped the tunnel task 0123abcd")
    assert "Traceback" not in err


def test_db_stops_the_task_after_ctrl_c(tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    _started(aws, _described("RUNNING", "RUNNING"))
    _stopped(aws)

    def interrupted() -> int:
        raise KeyboardInterrupt

    code, calls = _db(tmp_path, run=interrupted)
    assert code == 130 and len(calls) == 1
    assert calls[0][0][-1] == f"host={ENDPOINT},portNumber=5432,localPortNumber=15432"
    aws.stubs["ecs"].assert_no_pending_responses()
    err = capsys.readouterr().err
    assert "stopped the tunnel task 0123abcd" in err and "Traceback" not in err


def test_db_task_that_never_runs_is_stopped(tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    _started(aws, _described("PENDING"), _described("PENDING"))
    _stopped(aws)
    times = iter([0.0, 10.0, 181.0])
    code, calls = _db(tmp_path, clock=lambda: next(times))
    assert (code, calls) == (2, [])
    aws.stubs["ecs"].assert_no_pending_responses()
    lines = capsys.readouterr().err.strip().splitlines()
    refusals = [line for line in lines if not line.startswith("==>")]
    assert len(refusals) == 1 and "did not run with its exec agent within 3 minutes" in refusals[0]
    assert lines[-1] == "==> stopped the tunnel task 0123abcd"


def test_db_task_that_stops_at_once(tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    _started(aws, _described("STOPPED", stoppedReason="CannotPullContainerError: pull access denied"))
    _stopped(aws)
    code, calls = _db(tmp_path)
    assert (code, calls) == (2, [])
    err = capsys.readouterr().err
    assert "stopped before it ran (CannotPullContainerError: pull access denied)" in err
    assert "stopped the tunnel task" in err


@pytest.mark.parametrize(
    ("missing", "fragment"),
    [(("aws",), "the aws CLI is not on PATH"), (("session-manager-plugin",), "session-manager-plugin is not on PATH")],
)
def test_db_names_a_missing_tool(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str], missing: tuple[str, ...], fragment: str
) -> None:
    code, calls = _db(tmp_path, missing=missing)
    assert (code, calls) == (2, [])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "[local-tools]" in line and fragment in line


def test_db_without_operators_says_what_to_add(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    code, calls = _db(tmp_path, operators=None)
    assert (code, calls) == (2, [])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("cannot open a database session to shop-staging: [config] operators: not set")


def test_db_refuses_a_bad_local_port(tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _db(tmp_path, "--local-port", "22")
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "LOCAL_PORT=22" in line


def test_db_stack_without_tunnel_outputs(tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]) -> None:
    _identity(aws)
    _assume(aws)
    _stack(aws, "shop-staging-data", {"OperatorRoleArn": "x"})
    code, calls = _db(tmp_path)
    assert (code, calls) == (2, [])
    assert "has no TunnelClusterName output" in capsys.readouterr().err


def test_db_aws_error_is_its_code_and_operation(
    tmp_path: Path, aws: FakeAws, capsys: pytest.CaptureFixture[str]
) -> None:
    _identity(aws)
    _assume(aws)
    _stack(aws, "shop-staging-data", OUTPUTS)
    aws.stub("ecs").add_client_error("run_task", "AccessDeniedException", f"arn:aws:iam::{ACCOUNT}:role/x is not ...")
    code, calls = _db(tmp_path)
    assert (code, calls) == (1, [])
    err = capsys.readouterr().err
    assert "ecs RunTask failed: AccessDeniedException" in err and "is not ..." not in err
