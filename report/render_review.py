"""Rendering of a :class:`~report.compare.Review`: the per-stage "what changes" page and the pull-request comment.

The page opens with what can lose data (replacements, deletions, weaker retention), then the semantic
sections in :data:`~report.compare.SECTIONS` order, then every other property change and the full inventory
in collapsed blocks. The comment holds the opening part of each stage and stays under GitHub's size limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from report.assembly import Stack
from report.changes import ResourceChange
from report.compare import SECTIONS, Finding, PropertyRow, Review
from report.intrinsics import scrub
from report.render import code, details, flags, plain, table

MARKER = "<!-- infra-review -->"
COMMENT_LIMIT = 60_000
LOUD_ROWS = 15  # replacements listed one by one; the rest (all without data) go into a collapsed table
ARTIFACT_HINT = "`<stage>/REVIEW.md` of the `review` artifact of this run (`cdk.out/review/` after `make review`)"


@dataclass(frozen=True)
class StagePage:
    """One stage's review: names of both sides, where it deploys, the review and the rendered inventory."""

    stage: str
    base: str
    head: str
    environment: str
    review: Review | None  # None: the base did not synthesize (inventory only)
    inventory: str
    inventory_json: str


def environment(stacks: Sequence[Stack]) -> str:
    """``account 123456789012 · region eu-west-1`` of a stage (all its stacks share one environment)."""
    accounts = sorted({stack.account for stack in stacks})
    regions = sorted({stack.region for stack in stacks})
    return f"account {', '.join(accounts)} · region {', '.join(regions)}"


def headline(review: Review) -> str:
    """One line of counts, the data-losing ones first and in bold."""
    counts = review.counts()
    parts = []
    if counts["replaced_holding_data"] or counts["removed_holding_data"] or counts["retention_weakened"]:
        danger = counts["replaced_holding_data"] + counts["removed_holding_data"]
        parts.append(f"⚠️ **{danger} resource(s) holding data replaced or removed**")
        if counts["retention_weakened"]:
            parts.append(f"**{counts['retention_weakened']} with weaker retention**")
    parts.append(
        f"**{counts['replaced']}** replaced"
        + (f" ({counts['may_be_replaced']} may be)" if counts["may_be_replaced"] else "")
    )
    parts += [f"**{counts['removed']}** removed", f"**{counts['added']}** added", f"**{counts['updated']}** updated"]
    internet = sum("internet-facing" in f.flags and f.change == "added" for f in review.findings)
    if internet:
        parts.insert(0, f"🌐 **{internet} new internet-facing rule(s)**")
    left = [c.stack for c in review.resources if c.action == "orphan"]
    if left:
        parts.insert(0, f"🧭 **{len(left)} stack(s) leave the app and keep running**: {', '.join(left)}")
    return " · ".join(parts)


def _what(change: ResourceChange) -> str:
    if change.action == "replace":
        return f"**{change.certainty} be replaced**"
    if change.action == "remove":
        return "**removed**"
    if change.action == "orphan":
        return "**leaves the app; not deleted**"
    return "**retention weakened**"


def _why(change: ResourceChange) -> str:
    creating = [p for p in change.properties if p.create_only]
    if creating:
        return "; ".join(f"{code(p.path)}: {code(p.before)} → {code(p.after)} (create-only)" for p in creating[:3])
    return plain(change.cause)


def _loud(review: Review) -> list[str]:
    loud = review.loud
    if not loud:
        return ["_Nothing is replaced or removed._"]
    header = ["", "Resource", "Stack", "What happens", "Why", "Data"]

    def row(change: ResourceChange) -> list[str]:
        mark = "⚠️" if change.stateful else ""
        return [mark, code(change.name), plain(change.stack), _what(change), _why(change), plain(change.data)]

    first = [c for c in loud if c.stateful][:LOUD_ROWS] or loud[:LOUD_ROWS]
    if len(first) < LOUD_ROWS:
        first += [c for c in loud if c not in first][: LOUD_ROWS - len(first)]
    rest = [c for c in loud if c not in first]
    lines = table(header, (row(c) for c in first))
    if rest:
        lines += [
            "",
            *details(f"{len(rest)} more replaced or removed, none holding data", table(header, (row(c) for c in rest))),
        ]
    return lines


def _finding(finding: Finding) -> str:
    marks = f" {flags(finding.flags)}" if finding.flags else ""
    return f"- **{plain(finding.change)}** {code(finding.subject)}: {plain(finding.detail)}{marks}"


def _rows(rows: Sequence[PropertyRow]) -> list[str]:
    return table(
        ["What", "Resource", "Setting", "Before", "After"],
        ([plain(r.what), code(r.resource), code(r.path), code(r.before), code(r.after)] for r in rows),
    )


def changes_markdown(review: Review, *, level: int = 2) -> list[str]:
    """The "what changes" part of a page: loud changes, then each semantic section that has findings."""
    h = "#" * level
    lines = [headline(review), "", f"{h} Replacements and deletions", "", *_loud(review)]
    added = [c for c in review.resources if c.action == "add"]
    if added:
        new_stacks = [c.name for c in added if c.type == "AWS::CloudFormation::Stack"]
        lines += ["", f"{h} Added", ""]
        lines += [f"- **{plain(name)}**" for name in new_stacks]
        rows = ([code(c.name), code(c.type), plain(c.stack)] for c in sorted(added, key=lambda c: (c.type, c.name)))
        lines += details(f"{len(added)} resources or stacks added", table(["Resource", "Type", "Stack"], rows))
    for key, title in SECTIONS.items():
        if key == "runtime":
            if review.runtime:
                lines += ["", f"{h} {title}", "", *_rows(review.runtime)]
            continue
        found = [f for f in review.findings if f.section == key]
        if found:
            lines += ["", f"{h} {title}", "", *(_finding(f) for f in found)]
    return lines


def render_page(page: StagePage) -> str:
    """The full ``REVIEW.md`` of one stage."""
    lines = [
        f"# What this change does: {page.stage}",
        "",
        f"{code(page.base)} → {code(page.head)} · {plain(page.environment)}",
        "",
    ]
    if page.review is None:
        lines += ["_The base did not synthesize: no comparison, inventory only._"]
    else:
        lines += changes_markdown(page.review)
        if page.review.other:
            lines += [
                "",
                "## Other changes",
                "",
                *details(f"{len(page.review.other)} other property changes", _rows(page.review.other)),
            ]
        follow = [c for c in page.review.resources if c.action == "update" and not c.properties]
        if follow:
            rows = ([code(c.name), plain(c.stack), plain(c.cause)] for c in follow)
            summary = f"{len(follow)} updated because something they refer to changes"
            lines += ["", *details(summary, table(["Resource", "Stack", "Why"], rows))]
    lines += [
        "",
        "## Inventory after this change",
        "",
        *details("Stacks, services, reachability, secrets, health, alarms, IAM, stateful resources", [page.inventory]),
    ]
    return scrub("\n".join(lines) + "\n")


def render_page_json(page: StagePage) -> str:
    """The page's JSON twin."""
    review = page.review
    payload = {
        "stage": page.stage,
        "base": page.base,
        "head": page.head,
        "environment": page.environment,
        "compared": review is not None,
        "counts": review.counts() if review else {},
        "resources": [asdict(c) for c in review.resources] if review else [],
        "findings": [asdict(f) for f in review.findings] if review else [],
        "runtime": [asdict(r) for r in review.runtime] if review else [],
        "other": [asdict(r) for r in review.other] if review else [],
        "inventory": json.loads(page.inventory_json),
    }
    return scrub(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def render_comment(pages: Sequence[StagePage], refusals: Sequence[str] = (), limit: int = COMMENT_LIMIT) -> str:
    """One pull-request comment for every stage, under ``limit`` characters (cut with a pointer to the artifact)."""
    head = [MARKER, "## Infrastructure review", ""]
    if refusals:
        head += [
            "❌ **The working tree does not synthesize** — the deploy would be refused:",
            "",
            "```",
            *refusals,
            "```",
            "",
        ]
    blocks = []
    for page in pages:
        block = [f"### {page.stage}", "", f"{code(page.base)} → {code(page.head)} · {plain(page.environment)}", ""]
        if page.review is None:
            block += ["_The base did not synthesize: nothing to compare._"]
        elif not page.review.resources:
            block += ["No infrastructure change."]
        else:
            block += changes_markdown(page.review, level=4)
        blocks.append("\n".join(block))
    foot = f"\n\nFull pages with every property change and the inventory: {ARTIFACT_HINT}.\n"
    text = "\n".join(head) + "\n\n".join(blocks) + foot
    if len(text) <= limit:
        return scrub(text)
    cut = f"\n\n… **truncated** at {limit:,} characters: read the rest in {ARTIFACT_HINT}.\n"
    return scrub(text[: limit - len(cut)].rsplit("\n", 1)[0] + cut)
