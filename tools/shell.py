"""``make shell STAGE=prod [SERVICE=web] [TARGET=ecs|eb|eks]``: a shell in a running copy of a service.

No SSH, no bastion, no hand-made access: the stage file names who may (``operators: {role_arns: [...]}``), the
deploy builds the role ``<app>-<stage>-operator`` those roles may assume, and every session is logged to the
encrypted group ``/<app>/<stage>/sessions``. This command:

1. checks the local tools (``aws``; ``session-manager-plugin`` for ECS and Elastic Beanstalk; ``kubectl`` for EKS);
2. prints the stage, account, region and caller, and refuses credentials of another account (as ``make deploy``);
3. assumes the operator role, reads the stacks' outputs with it and finds a running task / instance of SERVICE
   on TARGET (default: the first enabled target that runs it);
4. runs ``aws ecs execute-command`` (ECS, and EB workers in its task cluster), ``aws ssm start-session`` with the
   stage's session document (EB instances), or ``kubectl exec`` (EKS, after ``aws eks update-kubeconfig``).

Exit codes: the shell's own, 1 when AWS fails a lookup, 2 for a refusal (tools, stage file, credentials, role,
nothing running). Never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.schema import AppConfig
from config.services import Service
from constructs.operator_access import operator_role_name
from constructs.service_task import CONTAINER
from doctor.aws import ACCESS_DENIED, Aws, error_code, explain
from doctor.checks.identity import whoami
from doctor.model import ClientSource
from tools.stage_file import stage_from

AWS_FAILED, REFUSED = 1, 2
PLUGIN_URL = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html"
)
KUBECTL_URL = "https://kubernetes.io/docs/tasks/tools/"
AWS_CLI_URL = "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
SHELL = "/bin/sh"


class Refused(Exception):
    """One line on stderr and exit ``code``."""

    def __init__(self, line: str, code: int = REFUSED) -> None:
        super().__init__(line)
        self.line = line
        self.code = code


@dataclass(frozen=True)
class Session:
    """Where the shell goes and the command that opens it; ``env`` is the environment it runs with."""

    target: str
    where: str
    commands: list[list[str]]
    env: dict[str, str]


Runner = Callable[..., int]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.shell", description=__doc__.splitlines()[0])
    p.add_argument("--stage", help="reads config/stages/<stage>.yaml")
    p.add_argument("--config", metavar="PATH", help="stage file to read instead")
    p.add_argument("--service", default="", help="web (default) or a worker of the stage")
    p.add_argument("--target", default="", help="ecs, eb or eks (default: the first enabled target running it)")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    aws: ClientSource | None = None,
    which: Callable[[str], str | None] = shutil.which,
    run: Runner = subprocess.call,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the command; ``aws``, ``which``, ``run`` and ``environ`` are replaced in tests."""
    args = parser().parse_args(argv)
    config = stage_from(args, command="shell", what="cannot open a shell")
    if config is None:
        return REFUSED
    try:
        session = prepare(config, args.service or "web", args.target, aws=aws or Aws(), which=which,
                          environ=dict(os.environ if environ is None else environ))  # fmt: skip
    except Refused as refused:
        print(refused.line, file=sys.stderr)
        return refused.code
    except Exception as error:  # anything AWS or botocore raised that a step did not name: one line
        print(f"cannot open a shell in {config.app}-{config.stage}: {explain(error)}", file=sys.stderr)
        return AWS_FAILED
    print(f"==> {session.where}", file=sys.stderr)
    code = 0
    try:
        for command in session.commands:
            print(f"==> {' '.join(command)}", file=sys.stderr)
            code = run(command, env=session.env)
            if code != 0:
                break
    except KeyboardInterrupt:
        return 130
    return code


def prepare(
    config: AppConfig,
    service_name: str,
    target: str,
    *,
    aws: ClientSource,
    which: Callable[[str], str | None],
    environ: dict[str, str],
) -> Session:
    """Every check, the banner, the role, the lookups: the commands to run, or a ``Refused``."""
    prefix = f"cannot open a shell in {config.app}-{config.stage}"
    service = _service(config, service_name, prefix)
    target = _target(config, service, target, prefix)
    _tools(target, which, prefix)
    operator, env, role_arn = assume_operator(config, prefix, aws=aws, environ=environ)
    if target == "ecs" or (target == "eb" and not service.is_web):
        return _ecs(config, service, target, operator, env, prefix)
    if target == "eb":
        return _eb(config, operator, env, prefix)
    return _eks(config, service, operator, role_arn, environ, prefix)


def assume_operator(
    config: AppConfig, prefix: str, *, aws: ClientSource, environ: Mapping[str, str]
) -> tuple[ClientSource, dict[str, str], str]:
    """``operators:`` set, the banner, the account gate, the operator role assumed: (clients signed with it, the
    environment of a subprocess acting as it (``AWS_PROFILE`` removed), the role's ARN), or a ``Refused``."""
    if config.operators is None:
        raise Refused(
            f"{prefix}: [config] operators: not set — add operators: {{role_arns: "
            f'["arn:aws:iam::{config.account or "<account>"}:role/<your role>"]}} to the stage file and '
            f"make deploy STAGE={config.stage} (it builds the role {operator_role_name(config)})"
        )
    try:
        identity = whoami(aws, config.region)
    except Exception as error:
        raise Refused(f"{prefix}: [local-credentials] {explain(error)}") from None
    account = config.account or f"{identity.account} (the caller's: the stage file names none)"
    print(
        f"==> stage {config.stage} of {config.app}: account {account}, region {config.region}\n"
        f"==> caller {identity.arn}",
        file=sys.stderr,
    )
    if config.account and config.account != identity.account:
        raise Refused(
            f"{prefix}: [region-mismatch] account: {identity.account} — the credentials are for account "
            f"{identity.account}, the stage file pins {config.account}; switch profile (AWS_PROFILE=... or aws sso "
            "login) to that account"
        )
    role_arn = f"arn:aws:iam::{identity.account}:role/{operator_role_name(config)}"
    session_name = re.sub(r"[^\w+=,.@-]", "-", identity.arn.rsplit("/", 1)[-1])[:64] or "operator"
    try:
        credentials = aws.client("sts", config.region).assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
            "Credentials"
        ]
    except Exception as error:
        if error_code(error) in ACCESS_DENIED:
            raise Refused(
                f"{prefix}: [operators] {identity.arn} may not assume {role_arn} — add that role to "
                f"operators.role_arns in the stage file and make deploy STAGE={config.stage} (or sign in with a "
                "listed role)"
            ) from None
        raise Refused(f"{prefix}: [operators] assuming {role_arn}: {explain(error)}", AWS_FAILED) from None
    operator = operator_clients(credentials, config.region)
    env = {k: v for k, v in environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    env.update(
        AWS_ACCESS_KEY_ID=str(credentials["AccessKeyId"]),
        AWS_SECRET_ACCESS_KEY=str(credentials["SecretAccessKey"]),
        AWS_SESSION_TOKEN=str(credentials["SessionToken"]),
        AWS_REGION=config.region,
        AWS_DEFAULT_REGION=config.region,
    )
    return operator, env, role_arn


def operator_clients(credentials: Mapping[str, Any], region: str) -> ClientSource:
    """Clients signed with the operator role's temporary credentials."""
    import boto3  # type: ignore[import-untyped, unused-ignore]

    return Aws(
        boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
    )


def _service(config: AppConfig, name: str, prefix: str) -> Service:
    services = {s.name: s for s in config.workloads if s.kind in ("web", "worker")}
    if name not in services:
        raise Refused(
            f"{prefix}: [config] SERVICE={name} — not a web or worker service of this stage; use one of "
            f"{', '.join(services)} (jobs and the migration step run only while they work)"
        )
    return services[name]


def _target(config: AppConfig, service: Service, target: str, prefix: str) -> str:
    running = [t for t in config.targets if service.runs_on(t)]
    if not running:
        raise Refused(f"{prefix}: [config] the stage enables no target (targets: is empty)")
    if not target:
        return running[0]
    if target not in running:
        raise Refused(f"{prefix}: [config] TARGET={target} — {service.name} runs on {', '.join(running)} only")
    return target


def _tools(target: str, which: Callable[[str], str | None], prefix: str) -> None:
    if which("aws") is None:
        raise Refused(f"{prefix}: [local-tools] the aws CLI is not on PATH — install AWS CLI v2: {AWS_CLI_URL}")
    if target in ("ecs", "eb") and which("session-manager-plugin") is None:
        raise Refused(
            f"{prefix}: [local-tools] session-manager-plugin is not on PATH (aws ecs execute-command and aws ssm "
            f"start-session need it) — install it: {PLUGIN_URL}"
        )
    if target == "eks" and which("kubectl") is None:
        raise Refused(f"{prefix}: [local-tools] kubectl is not on PATH — install it: {KUBECTL_URL}")


def outputs(aws: ClientSource, config: AppConfig, purpose: str, prefix: str) -> dict[str, str]:
    """The outputs of ``<app>-<stage>-<purpose>``, read with the operator role."""
    stack = config.stack_name(purpose)
    try:
        reply = aws.client("cloudformation", config.region).describe_stacks(StackName=stack)
    except Exception as error:
        if error_code(error) == "ValidationError":
            raise Refused(f"{prefix}: [operators] {stack} is not deployed — make deploy STAGE={config.stage}") from None
        raise Refused(f"{prefix}: reading {stack}: {explain(error)}", AWS_FAILED) from None
    found = reply["Stacks"][0].get("Outputs", [])
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in found}


def _ecs(
    config: AppConfig, service: Service, target: str, aws: ClientSource, env: dict[str, str], prefix: str
) -> Session:
    out = outputs(aws, config, target, prefix)
    cluster = out.get("ClusterName" if target == "ecs" else "TaskClusterName")
    names = json.loads(out.get("ServiceNames", "{}"))
    ecs_service = names.get(service.name) or (out.get("ServiceName") if service.is_web else None)
    if not cluster or not ecs_service:
        raise Refused(
            f"{prefix}: [operators] {config.stack_name(target)} has no ServiceNames output for {service.name} — "
            f"deployed before operators: was set; make deploy STAGE={config.stage}"
        )
    client = aws.client("ecs", config.region)
    try:
        arns = client.list_tasks(cluster=cluster, serviceName=ecs_service, desiredStatus="RUNNING")["taskArns"]
        tasks = client.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    except Exception as error:
        raise Refused(f"{prefix}: listing the tasks of {ecs_service}: {explain(error)}", AWS_FAILED) from None
    running = [t for t in tasks if t.get("lastStatus") == "RUNNING"]
    if not running:
        raise Refused(
            f"{prefix}: [operators] no running task of {service.name} ({ecs_service} in {cluster}) — see "
            f"make doctor STAGE={config.stage}"
        )
    task = str(running[0]["taskArn"])
    if not running[0].get("enableExecuteCommand", True):
        raise Refused(
            f"{prefix}: [no-exec-on-fargate] task {task.rsplit('/', 1)[-1]} started before ECS Exec was turned on; "
            f"make deploy STAGE={config.stage} rolls the service (or wait for its next deployment)"
        )
    command = ["aws", "ecs", "execute-command", "--region", config.region, "--cluster", cluster, "--task", task,
               "--container", CONTAINER, "--interactive", "--command", SHELL]  # fmt: skip
    return Session(target, f"{service.name} on {target}: task {task.rsplit('/', 1)[-1]} in {cluster}", [command], env)


def _eb(config: AppConfig, aws: ClientSource, env: dict[str, str], prefix: str) -> Session:
    out = outputs(aws, config, "eb", prefix)
    document = outputs(aws, config, "data", prefix).get("SessionDocumentName")
    environment = out.get("EnvironmentName")
    if not environment or not document:
        raise Refused(
            f"{prefix}: [operators] the stacks have no SessionDocumentName / EnvironmentName output — deployed "
            f"before operators: was set; make deploy STAGE={config.stage}"
        )
    try:
        reply = aws.client("ec2", config.region).describe_instances(
            Filters=[
                {"Name": "tag:elasticbeanstalk:environment-name", "Values": [environment]},
                {"Name": "instance-state-name", "Values": ["running"]},
            ]
        )
    except Exception as error:
        raise Refused(f"{prefix}: listing the instances of {environment}: {explain(error)}", AWS_FAILED) from None
    instances = sorted(str(i["InstanceId"]) for r in reply.get("Reservations", []) for i in r.get("Instances", []))
    if not instances:
        raise Refused(
            f"{prefix}: [operators] no running instance of {environment} — see make doctor STAGE={config.stage}"
        )
    command = ["aws", "ssm", "start-session", "--region", config.region, "--target", instances[0],
               "--document-name", document]  # fmt: skip
    return Session("eb", f"web on eb: instance {instances[0]} of {environment} (then: sudo docker ps)", [command], env)


def _eks(
    config: AppConfig, service: Service, aws: ClientSource, role_arn: str, environ: dict[str, str], prefix: str
) -> Session:
    out = outputs(aws, config, "eks", prefix)
    cluster = out.get("ClusterName")
    if not cluster:
        raise Refused(f"{prefix}: [operators] {config.stack_name('eks')} has no ClusterName output")
    if config.eks.endpoint_access == "private":
        print(
            "==> the cluster's API endpoint is private (eks.endpoint_access: private): this works from inside the "
            "VPC, or after deploying with eks.endpoint_access: public_and_private",
            file=sys.stderr,
        )
    context = f"{config.app}-{config.stage}"
    deployment = config.app if service.is_web else f"{config.app}-{service.name}"
    # kubeconfig's token command assumes the operator role with the caller's own credentials.
    commands = [
        ["aws", "eks", "update-kubeconfig", "--region", config.region, "--name", cluster, "--role-arn", role_arn,
         "--alias", context],
        ["kubectl", "--context", context, "-n", config.eks.namespace, "exec", "-it", f"deploy/{deployment}", "--",
         SHELL],
    ]  # fmt: skip
    where = f"{service.name} on eks: a pod of deploy/{deployment} in {config.eks.namespace} ({cluster})"
    return Session("eks", where, commands, dict(environ))


if __name__ == "__main__":
    sys.exit(main())
