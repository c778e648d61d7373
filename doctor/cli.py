"""``python -m doctor --stage prod [--config PATH] [--json] [--preflight] [--region R]``.

Exit codes: 0 no check failed (warns allowed), 1 a check failed, 2 usage or config error, or no usable
credentials (nothing could be checked).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from rich.console import Console

from config import AppConfig, ConfigError, load_config
from config.schema import known_regions
from doctor.aws import Aws, explain
from doctor.checks import POST_DEPLOY, PREFLIGHT, run_checks
from doctor.checks.identity import read_stacks, whoami
from doctor.model import TARGET_PURPOSES, Check, ClientSource, Context, Finding, Verdict, fail
from doctor.report import console_for, print_table, to_json

OK, FAILED, UNUSABLE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m doctor",
        description="Diagnose a deployed stage (or, with --preflight, an account before the first deploy) "
        "with the caller's AWS credentials. Read-only; never prints a secret value.",
        epilog="exit codes: 0 no failure (warnings allowed), 1 a check failed, 2 usage/config/credentials error",
    )
    p.add_argument("--stage", help="stage to diagnose: reads config/stages/<stage>.yaml")
    p.add_argument("--config", metavar="PATH", help="stage file to read instead of config/stages/<stage>.yaml")
    p.add_argument("--json", action="store_true", help="print one JSON document to stdout (for CI)")
    p.add_argument("--preflight", action="store_true", help="checks to run before the first deploy")
    p.add_argument("--region", help="look in this region instead of the stage's (reported as region-mismatch)")
    return p


def main(argv: Sequence[str] | None = None, *, aws: ClientSource | None = None) -> int:
    """Run the doctor; ``aws`` replaces the default boto3 session (tests pass moto-backed clients)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:  # argparse already printed usage and the problem
        return OK if not stop.code else UNUSABLE
    if not args.stage and not args.config:
        print("doctor: pass --stage NAME (or --config PATH)", file=sys.stderr)
        return UNUSABLE
    try:
        config = load_config(args.stage, path=args.config)
    except ConfigError as error:
        error.print("doctor")
        return UNUSABLE
    region = args.region or config.region
    if region not in known_regions():
        print(f"doctor: --region {region!r} is not an AWS region; use e.g. {config.region}", file=sys.stderr)
        return UNUSABLE

    mode = "preflight" if args.preflight else "post-deploy"
    meta: dict[str, Any] = {"app": config.app, "stage": config.stage, "region": region, "mode": mode, "caller": None}
    with _status(Console(stderr=True), "asking STS who the caller is") as say:
        findings, code = _diagnose(config, region, args.preflight, aws, meta, say)
    if args.json:
        sys.stdout.write(to_json(meta, findings, code) + "\n")
    else:
        print_table(console_for(sys.stdout), meta, findings)
    return code


def _diagnose(
    config: AppConfig,
    region: str,
    preflight: bool,
    aws: ClientSource | None,
    meta: dict[str, Any],
    say: Callable[[str], None],
) -> tuple[list[Finding], int]:
    """Identify the caller, read the stage's stacks (after deploy), run the mode's checks; fill ``meta``."""
    try:
        source = aws if aws is not None else Aws()
        identity = whoami(source, region)
    except Exception as error:  # no / expired credentials, unknown profile, no network: one line, nothing to check
        return [fail("local-credentials", "caller", explain(error))], UNUSABLE
    meta["caller"] = {"account": identity.account, "arn": identity.arn}
    ctx = Context(
        config=config,
        aws=source,
        region=region,
        identity=identity,
        targets=tuple(config.targets),
        eb_solution_stack=_eb_solution_stack(config),
    )
    checks: Sequence[Check] = PREFLIGHT
    if not preflight:
        say(f"reading the stage's stacks in {region}")
        purposes = ["network", "data", *[t for t in TARGET_PURPOSES if t in ctx.targets]]
        ctx = replace(ctx, stacks=read_stacks(source, region, [config.stack_name(p) for p in purposes]))
        checks = POST_DEPLOY
    findings = run_checks(ctx, checks, on_start=lambda check: say(f"checking {check.check_id}: {check.title}"))
    return findings, FAILED if any(f.verdict is Verdict.FAIL for f in findings) else OK


def _eb_solution_stack(config: AppConfig) -> str | None:
    """``eb.solution_stack`` of the stage file (validated against the Docker AL2023 pattern at load)."""
    return config.eb.solution_stack


@contextlib.contextmanager
def _status(console: Console, first: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while slow steps run, only when stderr is a terminal; yields ``say(text)``."""
    if not console.is_terminal:
        yield lambda text: None
        return
    with console.status(first) as status:
        yield lambda text: status.update(text)
