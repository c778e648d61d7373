"""``make db STAGE=prod [LOCAL_PORT=15432]``: a local port to the stage's PostgreSQL, for psql.

No bastion host, no port 22, no public database: with ``operators:`` in the stage file the data stack builds a
small ECS cluster and a task definition ``<app>-<stage>-db-tunnel`` that only sleeps. This command:

1. checks the local tools (``aws``, ``session-manager-plugin``) and ``operators:`` (as ``make shell``);
2. prints the stage, account, region and caller, refuses credentials of another account, assumes the operator role;
3. runs one tunnel task (Fargate, private subnets, the tunnel's security group, ECS Exec on) and waits until it and
   its ExecuteCommandAgent are RUNNING (3 minutes at most);
4. prints how to connect, then runs ``aws ssm start-session`` with ``AWS-StartPortForwardingSessionToRemoteHost``
   (127.0.0.1:LOCAL_PORT -> the database on 5432) until Ctrl-C;
5. always stops the task, however the session ended.

Exit codes: the session's own, 1 when an AWS call fails (its code and operation), 2 for a refusal (tools, stage
file, credentials, role, stack not deployed, a task that never runs), 130 after Ctrl-C. Never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from config.schema import AppConfig
from constructs.database_tunnel import PORT_FORWARD_DOCUMENT, POSTGRES_PORT
from doctor.aws import Aws, error_code
from doctor.model import ClientSource
from tools.shell import AWS_FAILED, REFUSED, Refused, Runner, _tools, assume_operator, outputs
from tools.stage_file import stage_from

DEFAULT_LOCAL_PORT = 15432
WAIT_SECONDS = 180
POLL_SECONDS = 5
AGENT = "ExecuteCommandAgent"
OUTPUTS = ("TunnelClusterName", "TunnelTaskDefinitionArn", "TunnelSubnetIds", "TunnelSecurityGroupId",
           "DatabaseEndpoint", "DatabaseName", "DatabaseAppUser")  # fmt: skip


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.db", description=__doc__.splitlines()[0])
    p.add_argument("--stage", help="reads config/stages/<stage>.yaml")
    p.add_argument("--config", metavar="PATH", help="stage file to read instead")
    p.add_argument("--local-port", default=str(DEFAULT_LOCAL_PORT), help=f"default {DEFAULT_LOCAL_PORT}")
    return p


def _failed(operation: str, error: BaseException) -> str:
    """An AWS failure as its code and operation only (the message may carry ARNs of other accounts)."""
    return f"{operation} failed: {error_code(error) or type(error).__name__}"


def main(
    argv: Sequence[str] | None = None,
    *,
    aws: ClientSource | None = None,
    which: Callable[[str], str | None] = shutil.which,
    run: Runner = subprocess.call,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run the command; ``aws``, ``which``, ``run``, ``environ``, ``sleep`` and ``clock`` are replaced in tests."""
    args = parser().parse_args(argv)
    config = stage_from(args, command="db", what="cannot open a database session")
    if config is None:
        return REFUSED
    prefix = f"cannot open a database session to {config.app}-{config.stage}"
    try:
        local_port = _port(args.local_port, prefix)
        _tools("ecs", which, prefix)
        operator, env, _ = assume_operator(
            config, prefix, aws=aws or Aws(), environ=dict(os.environ if environ is None else environ)
        )
        out = _outputs(operator, config, prefix)
        ecs = operator.client("ecs", config.region)
        task = _run_task(ecs, out, prefix)
    except Refused as refused:
        print(refused.line, file=sys.stderr)
        return refused.code
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # anything botocore raised that a step did not name: one line
        print(f"{prefix}: {_failed('a lookup', error)}", file=sys.stderr)
        return AWS_FAILED
    return _session(config, ecs, out, task, local_port, env, run=run, sleep=sleep, clock=clock, prefix=prefix)


def _port(value: str, prefix: str) -> int:
    if not value.isdigit() or not 1024 <= int(value) <= 65535:
        raise Refused(f"{prefix}: [config] LOCAL_PORT={value} — use a free port between 1024 and 65535")
    return int(value)


def _outputs(aws: ClientSource, config: AppConfig, prefix: str) -> dict[str, str]:
    out = outputs(aws, config, "data", prefix)
    missing = [key for key in OUTPUTS if not out.get(key)]
    if missing:
        raise Refused(
            f"{prefix}: [operators] {config.stack_name('data')} has no {missing[0]} output — deployed before "
            f"make db existed or before operators: was set; make deploy STAGE={config.stage}"
        )
    return out


def _run_task(ecs: Any, out: dict[str, str], prefix: str) -> str:
    try:
        reply = ecs.run_task(
            cluster=out["TunnelClusterName"],
            taskDefinition=out["TunnelTaskDefinitionArn"],
            launchType="FARGATE",
            count=1,
            enableExecuteCommand=True,
            startedBy="make-db",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [s for s in out["TunnelSubnetIds"].split(",") if s],
                    "securityGroups": [out["TunnelSecurityGroupId"]],
                    "assignPublicIp": "DISABLED",
                }
            },
        )
    except Exception as error:
        raise Refused(f"{prefix}: {_failed('ecs RunTask', error)}", AWS_FAILED) from None
    tasks = reply.get("tasks") or []
    if not tasks:
        reasons = ", ".join(sorted({str(f.get("reason", "?")) for f in reply.get("failures") or []})) or "no task"
        raise Refused(f"{prefix}: ecs RunTask started no task ({reasons})", AWS_FAILED)
    return str(tasks[0]["taskArn"])


def _session(
    config: AppConfig,
    ecs: Any,
    out: dict[str, str],
    task: str,
    local_port: int,
    env: dict[str, str],
    *,
    run: Runner,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    prefix: str,
) -> int:
    """Wait for the task, forward the port, and stop the task whatever happens."""
    cluster, task_id = out["TunnelClusterName"], task.rsplit("/", 1)[-1]
    print(f"==> started tunnel task {task_id} in {cluster}", file=sys.stderr)
    code = 0
    try:
        runtime_id = _wait(ecs, cluster, task, sleep=sleep, clock=clock, prefix=prefix)
        endpoint = out["DatabaseEndpoint"]
        print(
            f"==> forwarding 127.0.0.1:{local_port} to {endpoint}:{POSTGRES_PORT}; in another terminal:\n"
            f'    psql "host=127.0.0.1 port={local_port} dbname={out["DatabaseName"]} user={out["DatabaseAppUser"]} '
            'sslmode=require"\n'
            "==> the password: the app user's secret in Secrets Manager"
            + (f" ({out['DatabaseAppSecretArn']})" if out.get("DatabaseAppSecretArn") else "")
            + ", key password (after a rotation the login is its username field, "
            f"{out['DatabaseAppUser']} or {out['DatabaseAppUser']}_clone)\n"
            "==> Ctrl-C ends the session and stops the task",
            file=sys.stderr,
        )
        forward = f"host={endpoint},portNumber={POSTGRES_PORT},localPortNumber={local_port}"
        command = ["aws", "ssm", "start-session", "--region", config.region,
                   "--target", f"ecs:{cluster}_{task_id}_{runtime_id}", "--document-name", PORT_FORWARD_DOCUMENT,
                   "--parameters", forward]  # fmt: skip
        print(f"==> {' '.join(command)}", file=sys.stderr)
        code = run(command, env=env)
    except Refused as refused:
        print(refused.line, file=sys.stderr)
        code = refused.code
    except KeyboardInterrupt:
        code = 130
    finally:
        code = _stop(ecs, cluster, task, task_id, code, prefix)
    return code


def _wait(
    ecs: Any, cluster: str, task: str, *, sleep: Callable[[float], None], clock: Callable[[], float], prefix: str
) -> str:
    """Poll until the task and its ExecuteCommandAgent run; the container's runtime id (the session target)."""
    deadline = clock() + WAIT_SECONDS
    last = ""
    while True:
        try:
            tasks = ecs.describe_tasks(cluster=cluster, tasks=[task]).get("tasks") or []
        except Exception as error:
            raise Refused(f"{prefix}: {_failed('ecs DescribeTasks', error)}", AWS_FAILED) from None
        described = tasks[0] if tasks else {}
        status = str(described.get("lastStatus", "PENDING"))
        containers = described.get("containers") or [{}]
        agents = {str(a.get("name")): str(a.get("lastStatus", "")) for a in containers[0].get("managedAgents") or []}
        runtime_id = containers[0].get("runtimeId")
        state = f"{status}, exec agent {agents.get(AGENT) or 'not yet'}"
        if state != last:
            print(f"==> task {task.rsplit('/', 1)[-1]}: {state}", file=sys.stderr)
            last = state
        if status == "RUNNING" and agents.get(AGENT) == "RUNNING" and runtime_id:
            return str(runtime_id)
        if status in ("DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"):
            reason = described.get("stoppedReason") or "no reason given"
            raise Refused(f"{prefix}: [operators] the tunnel task stopped before it ran ({reason})")
        if clock() >= deadline:
            raise Refused(
                f"{prefix}: [operators] the tunnel task did not run with its exec agent within "
                f"{WAIT_SECONDS // 60} minutes (last: {state}); see the tunnel log group and make doctor"
            )
        sleep(POLL_SECONDS)


def _stop(ecs: Any, cluster: str, task: str, task_id: str, code: int, prefix: str) -> int:
    try:
        ecs.stop_task(cluster=cluster, task=task, reason="make db: session ended")
    except KeyboardInterrupt:
        print(
            f"{prefix}: interrupted while stopping task {task_id}; it stops by itself within an hour", file=sys.stderr
        )
        return 130
    except Exception as error:
        print(
            f"{prefix}: {_failed('ecs StopTask', error)} — stop task {task_id} in {cluster} by hand "
            "(it ends by itself within an hour)",
            file=sys.stderr,
        )
        return code or AWS_FAILED
    print(f"==> stopped the tunnel task {task_id}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
