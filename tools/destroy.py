"""``make destroy STAGE=dev``: delete every stack of a stage, after saying what goes and what stays.

``prod`` is refused before anything else (no credentials are even read). For any other stage it runs the account
gate ``make deploy`` runs (``doctor.gate``: banner, and refusal of another account's credentials), reads which of
the stage's stacks are deployed, prints what ``cdk destroy`` deletes and what it keeps, and asks for the stage name
typed back (``--yes`` skips the question, for CI). Only then it turns off the data stack's termination protection
(and the database instance's deletion protection, when it is on: staging sets it) and runs
``npx --no-install cdk destroy --all --force -c stage=<stage>``. When that fails while the data stack still exists,
both protections are turned back on.

What stays is what the code keeps (read from it, not guessed): the SecureString / String parameters of the stage's
settings (their custom resources are RETAIN), log groups with RETAIN or made outside CloudFormation (the Redis slow
log, the deploy helpers' function logs, RDS exports, Elastic Beanstalk's, the EKS control plane's), the image
repository (not this project's) and the CDK bootstrap. Outside prod the database and Redis have no final snapshot:
they are DELETED with their data.

Exit codes: 0 destroyed (or nothing deployed), 1 cancelled, or AWS / cdk failed, 2 refused: prod, stage file,
credentials or another account's credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from config.schema import AppConfig
from doctor import gate
from doctor.aws import Aws, error_code, explain
from doctor.checks.identity import STACK_MISSING_CODE
from doctor.model import TARGET_PURPOSES, ClientSource
from tools.stage_file import stage_from

DESTROYED, FAILED, REFUSED = 0, 1, 2
PROD = "prod"
PROD_REFUSAL = (
    "cannot destroy {what}: [config] STAGE: 'prod' — prod is never destroyed from here; to change it, edit "
    "config/stages/prod.yaml and run make deploy STAGE=prod; to retire it, agree it in a reviewed change and have an "
    "account admin delete its stacks in the CloudFormation console (termination protection, database deletion "
    "protection and a final snapshot guard its data)"
)
DB_MISSING = frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault"})

Runner = Callable[..., "subprocess.CompletedProcess[Any]"]


@dataclass
class Stack:
    name: str
    purpose: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    protected: bool = False


@dataclass
class Deployed:
    """The stage's stacks found in its region, in the order cdk destroys them (compute first, network last)."""

    stacks: list[Stack]
    orphans: list[Stack]  # target stacks deployed whose target is no longer in the stage file
    database: str | None = None
    database_protected: bool | None = None  # the instance's DeletionProtection (None: unknown or no instance)

    def get(self, purpose: str) -> Stack | None:
        return next((s for s in self.stacks if s.purpose == purpose), None)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.destroy",
        description="Delete every stack of a stage (never prod), after showing what goes and what stays.",
        epilog="exit codes: 0 destroyed or nothing deployed, 1 cancelled or failed, 2 refused",
    )
    p.add_argument("--stage", help="reads config/stages/<stage>.yaml")
    p.add_argument("--config", metavar="PATH", help="stage file to read instead of config/stages/<stage>.yaml")
    p.add_argument("--yes", action="store_true", help="do not ask for the stage name (CI)")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    aws: ClientSource | None = None,
    stdin: TextIO | None = None,
    run: Runner = subprocess.run,
) -> int:
    """Run the command; ``aws`` replaces the boto3 session, ``stdin`` the terminal, ``run`` subprocess.run (tests)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:
        return DESTROYED if not stop.code else REFUSED
    if args.stage == PROD:
        print(PROD_REFUSAL.format(what="stage prod"), file=sys.stderr)
        return REFUSED
    config = stage_from(args, command="destroy", what="cannot destroy")
    if config is None:
        return REFUSED
    if config.stage == PROD:
        print(PROD_REFUSAL.format(what=f"{config.app}-{config.stage}"), file=sys.stderr)
        return REFUSED
    source = aws if aws is not None else Aws()
    if not account_gate(args, source):
        return REFUSED
    try:
        deployed = read_deployed(config, source)
    except Exception as error:
        print(f"cannot destroy {config.app}-{config.stage}: {explain(error)}", file=sys.stderr)
        return FAILED
    if not deployed.stacks and not deployed.orphans:
        print(f"==> nothing to destroy: no stack of {config.app}-{config.stage} in {config.region}")
        return DESTROYED
    for line in plan(config, deployed):
        print(line)
    if not args.yes and not confirmed(config, stdin if stdin is not None else sys.stdin):
        print(f"==> not destroyed: the answer was not {config.stage!r}; nothing was changed", file=sys.stderr)
        return FAILED
    return destroy(config, args, source, deployed, run)


def account_gate(args: argparse.Namespace, aws: ClientSource) -> bool:
    """``doctor.gate`` (what ``make deploy`` runs first), its lines worded for a destroy."""
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        code = gate.main(["--config", args.config] if args.config else ["--stage", args.stage], aws=aws)
    for line in captured.getvalue().splitlines():
        print(line.replace("cannot deploy", "cannot destroy", 1), file=sys.stderr)
    return code == gate.OK


def read_deployed(config: AppConfig, aws: ClientSource) -> Deployed:
    cloudformation = aws.client("cloudformation", config.region)
    # What depends on what: compute, the app's resources (they use the data stack's alarm topic), data, network.
    order = [*reversed(config.targets), "resources", "data", "network"]
    stacks: list[Stack] = []
    orphans: list[Stack] = []
    for purpose in [*order, *(t for t in TARGET_PURPOSES if t not in config.targets)]:
        found = describe(cloudformation, config.stack_name(purpose), purpose)
        if found is None:
            continue
        (stacks if purpose in order else orphans).append(found)
    deployed = Deployed(stacks, orphans)
    data = deployed.get("data")
    if data and data.outputs.get("DatabaseInstanceId"):
        deployed.database = data.outputs["DatabaseInstanceId"]
        deployed.database_protected = database_protection(aws, config, deployed.database)
    return deployed


def describe(cloudformation: Any, name: str, purpose: str) -> Stack | None:
    try:
        found = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except Exception as error:
        if error_code(error) == STACK_MISSING_CODE and "does not exist" in str(error):
            return None
        raise
    if not found or found[0].get("StackStatus") == "DELETE_COMPLETE":
        return None
    stack = found[0]
    return Stack(
        name=name,
        purpose=purpose,
        status=str(stack["StackStatus"]),
        outputs={str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])},
        protected=bool(stack.get("EnableTerminationProtection")),
    )


def database_protection(aws: ClientSource, config: AppConfig, instance: str) -> bool | None:
    try:
        found = aws.client("rds", config.region).describe_db_instances(DBInstanceIdentifier=instance)
    except Exception as error:
        if error_code(error) in DB_MISSING:
            return None
        return config.database.deletion_protection  # unreadable: what the stage file asks for
    instances = found.get("DBInstances", [])
    return bool(instances[0].get("DeletionProtection")) if instances else None


def plan(config: AppConfig, deployed: Deployed) -> list[str]:
    """What cdk destroy deletes (per deployed stack) and what stays."""
    prefix = f"{config.app}-{config.stage}"
    width = max(len(s.name) for s in [*deployed.stacks, *deployed.orphans])
    on_ecs = ", ".join(s.name for s in config.workloads if s.runs_on("ecs"))
    what = {
        "ecs": f"the ECS cluster with {on_ecs}, the ALB and its access-log bucket (with the logs in it), "
        "schedules, alarms, the services' log groups",
        "eb": "the Elastic Beanstalk application, environment and load balancer, the Fargate tasks of its workers, "
        "jobs and migration, schedules, alarms, their log groups",
        "eks": "the EKS cluster with every pod and chart (External Secrets, load balancer controller), its ALB, the "
        "app log group, the secrets key (scheduled for deletion by KMS)",
        "resources": "the app's buckets (emptied: every object and version is DELETED), queues with their "
        "messages, topics and e-mail identities",
        "network": "the VPC, its subnets, NAT gateway(s), endpoints and flow logs",
    }
    lines = [f"==> make destroy STAGE={config.stage} deletes, compute first and network last, in {config.region}:"]
    for stack in deployed.stacks:
        head = f"  {stack.name:<{width}}  {stack.status}"
        if stack.purpose != "data":
            lines.append(f"{head}: {what[stack.purpose]}")
            continue
        guard = "termination protection on: turned off only after you confirm" if stack.protected else ""
        lines.append(f"{head}{': ' + guard if guard else ''}")
        database = deployed.database or "(its instance)"
        lines.append(
            f"    PostgreSQL {database}: DELETED with all its data and automated backups — no final snapshot "
            "(only prod keeps one)"
        )
        if deployed.database_protected:
            lines.append(
                "    its deletion protection (database.deletion_protection) is turned off only after you confirm"
            )
        cache = stack.outputs.get("CacheReplicationGroupId") or "(its replication group)"
        lines.append(f"    Redis {cache}: DELETED, no final snapshot")
        lines.append(
            "    the Secrets Manager secrets (master user, app user, Redis AUTH token), the alarm topic and alarms"
        )
    declared = [*config.targets, *(["resources"] if config.resources else []), "data", "network"]
    missing = [config.stack_name(p) for p in declared if not deployed.get(p)]
    if missing:
        lines.append(f"  not deployed (nothing to do): {', '.join(missing)}")
    for orphan in deployed.orphans:
        lines.append(
            f"  warning: {orphan.name} is deployed but {orphan.purpose} is not in targets: cdk destroy does not see "
            f"it and the network stack cannot go while it uses the VPC; add {orphan.purpose} back to targets, or "
            f"delete it first (aws cloudformation delete-stack --stack-name {orphan.name} --region {config.region})"
        )
    parameters = sorted(config.parameter_settings)
    images = sorted({s.image.split("@")[0].rsplit(":", 1)[0] for s in config.workloads})
    lines += [
        "==> it keeps:",
        f"  the Parameter Store settings /{config.app}/{config.stage}/* ({len(parameters)}: "
        f"{', '.join(parameters) or 'none'}; retained, a later deploy reuses them; delete them by hand if "
        "the stage is gone for good)",
        "  log groups with RETAIN or made outside CloudFormation: the Redis slow log, the deploy helpers' "
        f"function logs, RDS's /aws/rds/instance/{deployed.database or '<instance>'}/*"
        + (", Elastic Beanstalk's /aws/elasticbeanstalk/<environment>/*" if "eb" in config.targets else "")
        + (", the EKS control plane's /aws/eks/<cluster>/cluster" if "eks" in config.targets else ""),
        "  the alarm topic's KMS key (CDK retains keys; schedule its deletion in KMS if the stage is gone for good)",
        f"  the images in {', '.join(images)}: not this project's (it never creates the repository)",
        f"  the CDK bootstrap (CDKToolkit) of {config.region}; {prefix} can be deployed again with "
        f"make deploy STAGE={config.stage}",
    ]
    return lines


def confirmed(config: AppConfig, stdin: TextIO) -> bool:
    print(f"type the stage name ({config.stage}) to destroy it, anything else cancels: ", end="", file=sys.stderr)
    sys.stderr.flush()
    try:
        answer = stdin.readline()
    except (EOFError, KeyboardInterrupt):
        answer = ""
    if not answer.endswith("\n"):
        print(file=sys.stderr)
    return answer.strip() == config.stage


def destroy(config: AppConfig, args: argparse.Namespace, aws: ClientSource, deployed: Deployed, run: Runner) -> int:
    prefix = f"{config.app}-{config.stage}"
    cloudformation = aws.client("cloudformation", config.region)
    rds = aws.client("rds", config.region)
    data = deployed.get("data")
    unprotected: list[str] = []  # what was turned off, to turn it back on if the destroy fails
    try:
        if data and data.protected:
            cloudformation.update_termination_protection(EnableTerminationProtection=False, StackName=data.name)
            unprotected.append("stack")
            print(f"==> termination protection of {data.name} turned off", file=sys.stderr)
        if deployed.database and deployed.database_protected:
            rds.modify_db_instance(
                DBInstanceIdentifier=deployed.database, DeletionProtection=False, ApplyImmediately=True
            )
            unprotected.append("database")
            print(f"==> deletion protection of PostgreSQL {deployed.database} turned off", file=sys.stderr)
    except Exception as error:
        print(f"cannot destroy {prefix}: {explain(error)}; nothing was deleted", file=sys.stderr)
        restore(config, aws, deployed, unprotected)
        return FAILED
    context = f"config={args.config}" if args.config else f"stage={config.stage}"
    command = ["npx", "--no-install", "cdk", "destroy", "--all", "--force", "-c", context]
    print(f"==> {' '.join(command)}", file=sys.stderr)
    try:
        code = run(command, check=False).returncode
    except FileNotFoundError:
        print(f"cannot destroy {prefix}: npx not found — run it through make (make destroy STAGE=...)", file=sys.stderr)
        code = REFUSED
    except KeyboardInterrupt:
        code = 130
    if code == 0:
        print(
            f"==> destroyed {prefix}; kept: the Parameter Store settings /{config.app}/{config.stage}/*, "
            "retained log groups, the images, the CDK bootstrap",
            file=sys.stderr,
        )
        return DESTROYED
    print(f"==> cdk destroy stopped with exit code {code}", file=sys.stderr)
    restore(config, aws, deployed, unprotected)
    return FAILED


def restore(config: AppConfig, aws: ClientSource, deployed: Deployed, unprotected: list[str]) -> None:
    """Turn back on what ``destroy`` turned off, for what still exists."""
    data = deployed.get("data")
    if "stack" in unprotected and data:
        try:
            still = describe(aws.client("cloudformation", config.region), data.name, "data")
            if still and not still.status.startswith("DELETE_"):
                aws.client("cloudformation", config.region).update_termination_protection(
                    EnableTerminationProtection=True, StackName=data.name
                )
                print(f"==> {data.name} still exists: termination protection turned back on", file=sys.stderr)
        except Exception as error:
            print(
                f"==> could not turn termination protection of {data.name} back on ({explain(error)}): "
                f"aws cloudformation update-termination-protection --enable-termination-protection "
                f"--stack-name {data.name} --region {config.region}",
                file=sys.stderr,
            )
    if "database" in unprotected and deployed.database:
        try:
            if database_protection(aws, config, deployed.database) is False:
                aws.client("rds", config.region).modify_db_instance(
                    DBInstanceIdentifier=deployed.database, DeletionProtection=True, ApplyImmediately=True
                )
                print(
                    f"==> PostgreSQL {deployed.database} still exists: deletion protection turned back on",
                    file=sys.stderr,
                )
        except Exception as error:
            print(
                f"==> could not turn deletion protection of {deployed.database} back on ({explain(error)}): "
                f"aws rds modify-db-instance --deletion-protection --db-instance-identifier {deployed.database} "
                f"--region {config.region}",
                file=sys.stderr,
            )


if __name__ == "__main__":
    sys.exit(main())
