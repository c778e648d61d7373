#!/usr/bin/env python3
"""CDK entry point: load the stage (-c stage=NAME or -c config=PATH), build its stacks, guard, synthesize."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from config import ConfigError, load_config, resolve_account
from constructs.guards import register_guards
from stacks import build_stacks
from stacks.synth import SynthRefused, synthesize


def main() -> int:
    app = cdk.App()
    stage = app.node.try_get_context("stage")
    path = app.node.try_get_context("config")
    try:
        config = load_config(stage or (None if path else "dev"), path=path)
    except ConfigError as error:
        print(f"cannot synthesize: {error.source} has {len(error.problems)} problem(s):", file=sys.stderr)
        for line in error.problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    config, notice = resolve_account(config)
    if notice:
        print(f"notice: {notice}", file=sys.stderr)
    print(f"synthesizing {config.app}-{config.stage} in {config.account}/{config.region} ...", file=sys.stderr)
    build_stacks(app, config)
    register_guards(app, config)
    try:
        synthesize(app)
    except SynthRefused as refused:
        print(f"cannot synthesize {config.app}-{config.stage}: {len(refused.lines)} problem(s):", file=sys.stderr)
        for line in refused.lines:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
