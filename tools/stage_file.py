"""The stage file a command-line tool works on: ``--stage NAME`` or ``--config PATH``, problems printed once."""

from __future__ import annotations

import argparse
import sys

from config import AppConfig, ConfigError, load_config


def stage_from(args: argparse.Namespace, *, command: str, what: str) -> AppConfig | None:
    """The loaded stage of ``args`` (``stage`` / ``config``), or None after printing why not: no stage given
    (``make <command>: pass STAGE=<stage> ...``) or the file's problems (``<what>: <file> has N problem(s):``)."""
    if not args.stage and not args.config:
        print(f"make {command}: pass STAGE=<stage> (python -m tools.{command} --stage NAME)", file=sys.stderr)
        return None
    try:
        return load_config(args.stage, path=args.config)
    except ConfigError as error:
        error.print(what)
        return None
