"""The deploy workflow's steps (.github/workflows/deploy.yml, deploy-stage.yml), runnable from a laptop too.

``plan``     every stage file -> one JSON line ``plan={...}`` for $GITHUB_OUTPUT: per stage whether it deploys from
             CI (``ci:`` set), its GitHub environment, deploy role, account and region. Offline.
``deploy``   the stage banner, the account gate of ``make deploy``, then ``cdk deploy`` of a synthesized assembly
             (never a new synth: the commit promoted is the one tested); a failure prints CloudFormation's first
             failure reason as one ``::error::`` line.
``verify``   after a deploy: watch the stage's alarms (``<app>-<stage>-*``) for ``--minutes``; one that goes to
             ALARM after ``--since`` (the deploy's start) fails it (the workflow then redeploys the previous good
             release, tools/rollback.py). Reads through the stage's CDK lookup role (read-only), so the CI role
             stays limited to assuming bootstrap roles.
Exit codes: 0 ok, 1 the deploy or the alarm check failed, 2 refused (stage file, credentials, no assembly).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import STAGES_DIR, AppConfig, ConfigError, load_config
from tools.stage_file import stage_from

OK, FAILED, REFUSED = 0, 1, 2

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
            "role_arn": f"arn:{config.partition}:iam::{config.account}:role/{config.ci_deploy_role_name}",
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


def stream(command: list[str]) -> tuple[int, list[str]]:
    """Run ``command``, echoing each line of its output as it comes (a long deploy shows its progress live, and a
    cancelled job keeps what was printed); return its exit code and the lines."""
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", file=sys.stderr, flush=True)
            lines.append(line.rstrip("\n"))
    return process.returncode, lines


def annotation(kind: str, title: str, message: str) -> str:
    """A GitHub workflow command (``::error title=...::message``), its data escaped as the runner expects."""

    def escape(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    return f"::{kind} title={escape(title).replace(':', '%3A').replace(',', '%2C')}::{escape(message)}"


def deploy(
    config: AppConfig,
    assembly: Path,
    *,
    gate: Callable[[list[str]], int],
    run: Callable[[list[str]], tuple[int, list[str]]] = stream,
) -> int:
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
        *("npx", "--no-install", "cdk", "deploy", "--app", str(assembly), "--all"),
        *("--require-approval", "never", "--no-notices", "--no-version-reporting", "--progress", "events"),
    ]
    print(f"==> {' '.join(command)}", file=sys.stderr)
    code, lines = run(command)
    if code == 0:
        return OK
    reason = first_failure(lines) or f"cdk deploy exited with {code} (see the log above)"
    print(annotation("error", f"{config.app}-{config.stage} deploy failed", reason), file=sys.stderr)
    return FAILED


@dataclass(frozen=True)
class Firing:
    name: str
    reason: str
    since: datetime

    def __str__(self) -> str:
        return f"{self.name} ({' '.join(self.reason.split())[:160]})"


def alarms_in_alarm(config: AppConfig, session: Any) -> list[Firing]:
    """The stage's alarms (metric and composite) now in ALARM, read through the stage's CDK lookup role."""
    from constructs.github_deploy_roles import bootstrap_role_arn

    if config.ci is not None and config.account is not None:
        assumed = session.client("sts", region_name=config.region).assume_role(
            RoleArn=bootstrap_role_arn(config, "lookup", config.partition),
            RoleSessionName=f"{config.app}-{config.stage}-verify",
        )["Credentials"]
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=assumed["AccessKeyId"],
            aws_secret_access_key=assumed["SecretAccessKey"],
            aws_session_token=assumed["SessionToken"],
        )
    cloudwatch = session.client("cloudwatch", region_name=config.region)
    prefix, firing = f"{config.app}-{config.stage}-", []
    pages = cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=prefix, StateValue="ALARM", AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    for page in pages:
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            if not str(alarm["AlarmName"]).startswith(prefix) or alarm.get("StateValue") != "ALARM":
                continue  # the filters are the API's; checked again here
            actions = [str(a) for a in alarm.get("AlarmActions", [])]
            if actions and all(":autoscaling:" in a for a in actions):
                continue  # it scales something (load, not a release's fault)
            since = alarm.get("StateUpdatedTimestamp") or datetime.now(UTC)
            firing.append(Firing(str(alarm["AlarmName"]), str(alarm.get("StateReason", "")), since))
    return firing


def verify(
    config: AppConfig,
    minutes: float,
    *,
    session: Any,
    since: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    every: float = 30.0,
) -> int:
    """Fail as soon as one of the stage's alarms goes to ALARM at or after ``since`` (the deploy's start; default
    now) within ``minutes``. An alarm already in ALARM before is reported once as a warning: it is not this
    release's doing (a stuck queue must not roll back every deploy). Writes ``fired=true`` to $GITHUB_OUTPUT when
    an alarm fired, so the workflow rolls back only then, never when the alarms could not be read."""
    start = since or datetime.now(UTC)
    checks = max(1, int(minutes * 60 // every) + 1)
    title = f"{config.app}-{config.stage}"
    print(
        f"==> watching {title}-* alarms for {minutes:g} min (changes since {start:%Y-%m-%dT%H:%M:%SZ})", file=sys.stderr
    )
    warned: set[str] = set()
    for index in range(checks):
        alarms = alarms_in_alarm(config, session)
        for alarm in alarms:
            if alarm.since < start and alarm.name not in warned:
                warned.add(alarm.name)
                print(
                    annotation("warning", f"{title} alarm already firing before the deploy", str(alarm)),
                    file=sys.stderr,
                )
        fired = [alarm for alarm in alarms if alarm.since >= start]
        if fired:
            for alarm in fired:
                print(annotation("error", f"{title} alarm after deploy", str(alarm)), file=sys.stderr)
            output = os.environ.get("GITHUB_OUTPUT")
            if output:
                with open(output, "a", encoding="utf-8") as handle:
                    handle.write("fired=true\n")
            return FAILED
        if index < checks - 1:
            sleep(every)
    print(f"==> no alarm of {title} fired", file=sys.stderr)
    return OK


def main(
    argv: Sequence[str] | None = None,
    *,
    run: Callable[[list[str]], tuple[int, list[str]]] = stream,
    session: Any = None,
    gate: Callable[[list[str]], int] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ci", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["plan", "deploy", "verify"])
    parser.add_argument("--stage")
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--assembly", type=Path, help="deploy: the stage's synthesized cloud assembly")
    parser.add_argument("--minutes", type=float, default=5.0, help="verify: how long to watch the alarms")
    parser.add_argument("--since", type=datetime.fromisoformat, help="verify: the deploy's start (ISO 8601, UTC)")
    args = parser.parse_args(argv)
    if args.command == "plan":
        stages = plan()
        for stage, entry in stages.items():
            if not entry["enabled"]:
                print(annotation("notice", f"stage {stage} does not deploy from CI", entry["reason"]), file=sys.stderr)
        print(f"plan={json.dumps(stages, sort_keys=True)}")
        return OK
    config = stage_from(args, command=f"ci-{args.command}", what=f"cannot {args.command}")
    if config is None:
        return REFUSED
    if args.command == "deploy":
        from doctor.gate import main as gate_main

        return deploy(config, args.assembly or Path("cdk.out") / config.stage, run=run, gate=gate or gate_main)
    import boto3

    from doctor.aws import explain

    since = args.since.replace(tzinfo=args.since.tzinfo or UTC) if args.since else None
    try:
        return verify(config, args.minutes, session=session or boto3.session.Session(), since=since)
    except Exception as error:  # no credentials, lookup role not assumable: one line, and no rollback
        print(f"cannot verify {config.app}-{config.stage}: [local-credentials] {explain(error)}", file=sys.stderr)
        return REFUSED


if __name__ == "__main__":
    sys.exit(main())
