"""Print findings: a rich table for people, one JSON document for CI."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from doctor.model import Finding, Verdict

STYLE = {Verdict.PASS: "green", Verdict.WARN: "yellow", Verdict.FAIL: "bold red"}
PIPE_WIDTH = 160  # when stdout is a file or a CI log, wrap at this width instead of rich's 80


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    return {str(v): sum(1 for f in findings if f.verdict is v) for v in Verdict}


def to_json(meta: Mapping[str, Any], findings: Sequence[Finding], exit_code: int) -> str:
    """``{..meta, "findings": [{check_id, resource, verdict, advice}], "summary": {...}, "exit_code": n}``."""
    document = {
        **meta,
        "findings": [f.to_dict() for f in findings],
        "summary": summary(findings),
        "exit_code": exit_code,
    }
    return json.dumps(document, indent=2)


def console_for(stream: IO[str]) -> Console:
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(file=stream, width=PIPE_WIDTH if piped else None, highlight=False)


def print_table(console: Console, meta: Mapping[str, Any], findings: Sequence[Finding]) -> None:
    caller = meta.get("caller") or {}
    title = f"doctor {meta['app']}-{meta['stage']} ({meta['mode']}) in {meta['region']}"
    if caller:
        title += f" as {caller['arn']}"
    table = Table(title=Text(title), title_justify="left", show_lines=False)
    table.add_column("check")
    table.add_column("resource", overflow="fold", max_width=48)
    table.add_column("verdict")
    table.add_column("what to do", overflow="fold")
    for finding in findings:
        # Text() cells: AWS messages may contain [brackets] that rich would otherwise read as markup.
        advice = Text(finding.advice)
        if finding.detail:  # evidence (e.g. masked log lines) under the advice, one item a line
            advice.append("\n" + finding.detail, style="dim")
        table.add_row(
            Text(finding.check_id),
            Text(finding.resource),
            Text(str(finding.verdict), style=STYLE[finding.verdict]),
            advice,
        )
    console.print(table)
    counts = summary(findings)
    console.print(Text(f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail"))
