"""The deploy workflow's steps (.github/workflows/deploy.yml, deploy-stage.yml), runnable from a laptop too.

``plan``     every stage file -> one JSON line ``plan={...}`` for $GITHUB_OUTPUT: per stage whether it deploys from
             CI (``ci:`` set), its GitHub environment, deploy role, account and region. Offline.
``deploy``   the stage banner, the account gate of ``make deploy``, then ``cdk deploy`` of a synthesized assembly
             (never a new synth: the commit promoted is the one tested); a failure prints CloudFormation's first
             failure reason as one ``::error::`` line.
``verify``   after a deploy: watch the stage's alarms (``<app>-<stage>-*``) for ``--minutes``; any in ALARM fails
             (the workflow then redeploys the previous good assembly, tools/rollback.py). Reads through the stage's
             CDK lookup role (read-only), so the CI role stays limited to assuming bootstrap roles.
Exit codes: 0 ok, 1 the deploy or the alarm check failed, 2 refused (stage file, credentials, no assembly).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from config import STAGES_DIR, AppConfig, ConfigError, load_config
from tools.stage_file import stage_from

OK, FAILED, REFUSED = 0, 1, 2
Runner = Callable[..., "subprocess.CompletedProcess[str]"]

# A CloudFormation event line of the CDK CLI's progress output: "<stack> | 3/12 | 10:01:02 AM | UPDATE_FAILED | ..."
FAILED_EVENT = re.compile(r"^(?P<stack>\S+)\s*\|.*?\|\s*(?P<status>(CREATE|UPDATE|DELETE)_FAILED)\s*\|\s*(?P<rest>.+)$")
# Failures that only follow the first one (CloudFormation cancels the other resources of the stack).
CONSEQUENTIAL = ("Resource creation cancelled", "Resource update cancelled", "cancelled")


def plan(stages_dir: Path = STAGES_DIR) -> dict[str, dict[str, Any]]:
    """stage -> {enabled, environment, role_arn, account, region} for every stage file (offline)."""
    result: dict[str, dict[str, Any]] = {}
    for path in sorted(stages_dir.glob("*.yaml")):
        try:
            config = load_config(path.stem, path=path)
        except ConfigError:
            result[path.stem] = {"enabled": False, "reason": f"{path} has problems (make synth STAGE={path.stem})"}
            continue
        if config.ci is None or config.account is None:
            result[path.stem] = {"enabled": False, "reason": "no ci: in the stage file"}
            continue
        result[path.stem] = {
            "enabled": True,
            "environment": config.ci_environment,
            "role_arn": f"arn:aws:iam::{config.account}:role/{config.ci_deploy_role_name}",
            "account": config.account,
            "region": config.region,
        }
    return result


def first_failure(output: Iterable[str]) -> str | None:
    """CloudFormation's first failure reason in ``cdk deploy`` output, as ``<stack>: <resource and reason>``."""
    consequential = None
    for line in output:
        match = FAILED_EVENT.match(line.strip())
        if not match:
            continue
        reason = f"{match['stack']}: {match['status']} {' '.join(match['rest'].replace('|', ' ').split())}"
        if not any(marker in line for marker in CONSEQUENTIAL):
            return reason
        consequential = consequential or reason
    return consequential


def deploy(config: AppConfig, assembly: Path, *, run: Runner, gate: Callable[[list[str]], int]) -> int:
    """Deploy every stack of ``assembly`` (one stage's synthesized cloud assembly) after the account gate."""
    if not (assembly / "manifest.json").is_file():
        print(
            f"cannot deploy: [config] assembly: {assembly} — no cloud assembly there; make synth STAGE={config.stage} "
            "(or download the workflow artifact)",
            file=sys.stderr,
        )
        return REFUSED
    source = assembly / "COMMIT"
    commit = source.read_text().strip() if source.is_file() else "the working tree"
    print(
        f"==> deploying {config.app}-{config.stage} to {config.account}/{config.region} from {commit}", file=sys.stderr
    )
    if gate(["--stage", config.stage]) != OK:
        return REFUSED
    command = [
        "npx",
        "--no-install",
        "cdk",
        "deploy",
        "--app",
        str(assembly),
        "--all",
        "--require-approval",
        "never",
        "--no-notices",
        "--no-version-reporting",
        "--progress",
        "events",
    ]
    print(f"==> {' '.join(command)}", file=sys.stderr)
    done = run(command, check=False, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = (done.stdout or "").splitlines()
    for line in lines:
        print(line, file=sys.stderr)
    if done.returncode == 0:
        return OK
    reason = first_failure(lines) or f"cdk deploy exited with {done.returncode} (see the log above)"
    print(f"::error title={config.app}-{config.stage} deploy failed::{reason}", file=sys.stderr)
    return FAILED


def alarms_in_alarm(config: AppConfig, session: Any) -> list[str]:
    """Names (with reason) of the stage's alarms now in ALARM, read through the stage's CDK lookup role."""
    from constructs.github_deploy_roles import bootstrap_role_arn

    if config.ci is not None and config.account is not None:
        assumed = session.client("sts", region_name=config.region).assume_role(
            RoleArn=bootstrap_role_arn(config, "lookup"), RoleSessionName=f"{config.app}-{config.stage}-verify"
        )["Credentials"]
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=assumed["AccessKeyId"],
            aws_secret_access_key=assumed["SecretAccessKey"],
            aws_session_token=assumed["SessionToken"],
        )
    cloudwatch = session.client("cloudwatch", region_name=config.region)
    prefix, firing = f"{config.app}-{config.stage}-", []
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, StateValue="ALARM")
    for page in pages:
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            if not str(alarm["AlarmName"]).startswith(prefix) or alarm.get("StateValue") != "ALARM":
                continue  # the filters are the API's; checked again here
            firing.append(f"{alarm['AlarmName']} ({' '.join(str(alarm.get('StateReason', '')).split())[:160]})")
    return firing


def verify(
    config: AppConfig, minutes: float, *, session: Any, sleep: Callable[[float], None] = time.sleep, every: float = 30.0
) -> int:
    """Fail as soon as one of the stage's alarms is in ALARM within ``minutes`` after the deploy."""
    checks = max(1, int(minutes * 60 // every) + 1)
    print(f"==> watching {config.app}-{config.stage}-* alarms for {minutes:g} min", file=sys.stderr)
    for index in range(checks):
        firing = alarms_in_alarm(config, session)
        if firing:
            for name in firing:
                print(f"::error title={config.app}-{config.stage} alarm after deploy::{name}", file=sys.stderr)
            return FAILED
        if index < checks - 1:
            sleep(every)
    print(f"==> no alarm of {config.app}-{config.stage} fired", file=sys.stderr)
    return OK


def main(
    argv: Sequence[str] | None = None,
    *,
    run: Runner = subprocess.run,
    session: Any = None,
    gate: Callable[[list[str]], int] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ci", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["plan", "deploy", "verify"])
    parser.add_argument("--stage")
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--assembly", type=Path, help="deploy: the stage's synthesized cloud assembly")
    parser.add_argument("--minutes", type=float, default=5.0, help="verify: how long to watch the alarms")
    args = parser.parse_args(argv)
    if args.command == "plan":
        print(f"plan={json.dumps(plan(), sort_keys=True)}")
        return OK
    config = stage_from(args, command=f"ci-{args.command}", what=f"cannot {args.command}")
    if config is None:
        return REFUSED
    if args.command == "deploy":
        from doctor.gate import main as gate_main

        return deploy(config, args.assembly or Path("cdk.out") / config.stage, run=run, gate=gate or gate_main)
    import boto3

    from doctor.aws import explain

    try:
        return verify(config, args.minutes, session=session or boto3.session.Session())
    except Exception as error:  # no credentials, lookup role not assumable: one line
        print(f"cannot verify {config.app}-{config.stage}: [local-credentials] {explain(error)}", file=sys.stderr)
        return REFUSED


if __name__ == "__main__":
    sys.exit(main())
