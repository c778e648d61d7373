"""``make ci-bootstrap STAGE=...``: the ``<app>-ci`` stack of the stage's account, synthesized offline, then deployed.

The stack holds the GitHub OIDC provider (or uses ``ci.oidc_provider_arn``) and one deploy role per stage of that
account with a ``ci:`` block (every ``config/stages/*.yaml`` of the same app and account, plus ``--config``), and
one diff role for pull requests. It is synthesized with every guard and cdk-nag into ``OUT/<app>-ci-<account>/``
and its roles and trust printed; ``--deploy`` then checks the caller's account (as ``make deploy`` does) and runs
``cdk deploy`` of that assembly. Exit codes: 0 done, 1 synth or deploy failed, 2 refused (stage file, credentials).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from config import STAGES_DIR, AppConfig, ConfigError, load_config
from tools.stage_file import stage_from

Runner = Callable[..., "subprocess.CompletedProcess[Any]"]
OK, FAILED, REFUSED = 0, 1, 2


def account_stages(config: AppConfig, stages_dir: Path = STAGES_DIR) -> tuple[list[AppConfig], list[str]]:
    """The stages of ``config``'s app and account that deploy from CI (``config`` among them), sorted by name (the
    stack lives in the first one's region), and notices for stage files that could not be read (no role until
    fixed)."""
    stages, notices = [config], []
    for path in sorted(stages_dir.glob("*.yaml")):
        try:
            other = load_config(path.stem, path=path)
        except ConfigError as error:
            notices.append(f"{path}: skipped, it has {len(error.problems)} problem(s) (make synth STAGE={path.stem})")
            continue
        if other.stage != config.stage and other.app == config.app and other.account == config.account and other.ci:
            stages.append(other)
    # By stage name: whichever stage bootstraps, the one stack of the account is the same, in the same region.
    return sorted(stages, key=lambda c: c.stage), notices


def conflicts(stages: Sequence[AppConfig]) -> list[str]:
    """One line per stage whose ``ci.oidc_provider_arn`` disagrees with another's (one provider per account)."""
    arns = {c.stage: c.ci.oidc_provider_arn for c in stages if c.ci and c.ci.oidc_provider_arn}
    if len(set(arns.values())) <= 1:
        return []
    listed = ", ".join(f"{stage}: {arn}" for stage, arn in sorted(arns.items()))
    return [
        f"[config] ci.oidc_provider_arn: {listed} — an account has one GitHub OIDC provider; give every stage of "
        "the account the same ARN (or none to create it)"
    ]


def synth(stages: Sequence[AppConfig], out: Path) -> tuple[Path | None, list[str]]:
    """Synthesize the ``<app>-ci`` stack with every guard and cdk-nag; (assembly dir, refusal lines)."""
    import aws_cdk as cdk

    from constructs.guards import register_guards
    from stacks.ci import CiStack
    from stacks.synth import SynthRefused, synthesize

    first = stages[0]
    target = out / f"{first.app}-ci-{first.account}"
    app = cdk.App(outdir=str(target), context={"aws:cdk:enable-path-metadata": True})
    CiStack(app, f"{first.app}-ci", configs=stages)
    register_guards(app, first)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            synthesize(app)
    except SynthRefused as refused:
        return None, refused.lines
    return target, []


def describe(stages: Sequence[AppConfig]) -> list[str]:
    from constructs.github_deploy_roles import environment_subject, pull_request_subject

    lines = [
        f"  {c.ci_deploy_role_name}: assumed only by {environment_subject(c)}; may only assume the CDK bootstrap "
        f"roles of {c.account}/{c.region}"
        for c in stages
    ]
    repositories = sorted({c.ci.repository for c in stages if c.ci})
    subjects = ", ".join(pull_request_subject(r) for r in repositories)
    lines.append(f"  {stages[0].app}-ci-diff: assumed only by {subjects}; may only assume the lookup roles")
    return lines


def main(
    argv: Sequence[str] | None = None, *, run: Runner = subprocess.run, gate: Callable[..., int] | None = None
) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ci_bootstrap", description=__doc__.splitlines()[0])
    parser.add_argument("--stage")
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--out", type=Path, default=Path("cdk.out/ci"))
    parser.add_argument("--deploy", action="store_true", help="deploy the synthesized stack (needs credentials)")
    args = parser.parse_args(argv)
    config = stage_from(args, command="ci-bootstrap", what="cannot bootstrap CI")
    if config is None:
        return REFUSED
    if config.ci is None or config.account is None:
        source = args.config or f"config/stages/{config.stage}.yaml"
        print(
            f"cannot bootstrap CI: [config] {source}: ci: not set — add ci: {{repository: <owner>/<name>}} and "
            'account: "<12-digit id>" to the stage file (README, "Deploying from GitHub Actions")',
            file=sys.stderr,
        )
        return REFUSED
    stages, notices = account_stages(config)
    for notice in notices:
        print(f"notice: {notice}", file=sys.stderr)
    problems = conflicts(stages)
    if problems:
        print(
            f"cannot bootstrap CI for account {config.account}:",
            *(f"  {p}" for p in problems),
            sep="\n",
            file=sys.stderr,
        )
        return REFUSED
    names = ", ".join(c.stage for c in stages)
    print(f"==> synthesizing {config.app}-ci for account {config.account} ({names}), offline", file=sys.stderr)
    assembly, refused = synth(stages, args.out)
    if assembly is None:
        print(f"cannot synthesize {config.app}-ci: {len(refused)} problem(s):", file=sys.stderr)
        for line in refused:
            print(f"  {line}", file=sys.stderr)
        return FAILED
    print(f"==> {assembly}:", *describe(stages), sep="\n", file=sys.stderr)
    if not args.deploy:
        return OK
    from doctor.gate import main as gate_main

    gate_argv = ["--config", args.config] if args.config else ["--stage", config.stage]
    if (gate or gate_main)(gate_argv) != OK:
        return REFUSED
    command = ["npx", "--no-install", "cdk", "deploy", "--app", str(assembly), "--all", "--no-notices"]
    print(f"==> {' '.join(command)}", file=sys.stderr)
    return OK if run(command, check=False).returncode == 0 else FAILED


if __name__ == "__main__":
    sys.exit(main())
