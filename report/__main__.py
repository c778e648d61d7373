"""Command line entry point: ``python -m report [--out DIR] [--base DIR] [--k8s DIR] [CDK_OUT_DIR]``.

Without ``--base`` it writes the inventory of one assembly; with ``--base`` (another synthesized assembly, e.g.
``cdk.out/.previous/dev``) the page says what changes from the base, with the inventory collapsed below.
``make review`` does the same for a git ref and every stage (:mod:`report.review`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from report.assembly import AssemblyError, Stack, load_assembly, load_k8s
from report.compare import review
from report.extract import build_report
from report.render import render_json, render_markdown
from report.render_review import StagePage, environment, render_page, render_page_json

DEFAULT_K8S = Path("k8s/dist")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m report",
        description="Write REVIEW.md and review.json (a reviewer's summary of the synthesized templates).",
    )
    parser.add_argument(
        "cdk_out", nargs="?", type=Path, default=Path("cdk.out"), metavar="CDK_OUT_DIR", help="default: cdk.out"
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: CDK_OUT_DIR)")
    parser.add_argument("--base", type=Path, metavar="DIR", help="base cloud assembly: write what changes from it")
    parser.add_argument(
        "--k8s", type=Path, metavar="DIR", help=f"Kubernetes manifests (default: {DEFAULT_K8S} if present)"
    )
    return parser.parse_args(argv)


def _default_k8s(stacks: Sequence[Stack]) -> Path | None:
    """``k8s/dist`` belongs in the report only when this assembly applies Kubernetes manifests (an EKS stack)."""
    applies = any(
        resource.get("Type") == "Custom::AWSCDK-EKS-KubernetesResource"
        for stack in stacks
        for resource in stack.resources.values()
    )
    return DEFAULT_K8S if applies and DEFAULT_K8S.is_dir() else None


def main(argv: Sequence[str] | None = None) -> int:
    """Write the review files; return the process exit code."""
    args = parse_args(argv)
    try:
        stacks = load_assembly(args.cdk_out)
        base = None
        if args.base is not None:
            if not (args.base / "manifest.json").is_file():
                raise AssemblyError(f"no base cloud assembly at {args.base}")
            base = load_assembly(args.base)
        k8s_dir = args.k8s if args.k8s is not None else _default_k8s(stacks)
        if k8s_dir is not None and not k8s_dir.is_dir():
            raise AssemblyError(f"no Kubernetes manifests at {k8s_dir}")
        k8s = load_k8s(k8s_dir) if k8s_dir is not None else []
    except AssemblyError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    report = build_report(stacks, k8s)
    out = args.out if args.out is not None else args.cdk_out
    out.mkdir(parents=True, exist_ok=True)
    nist_path = args.cdk_out / "nist-800-53-r5.json"
    nist = json.loads(nist_path.read_text(encoding="utf-8")) if nist_path.is_file() else None
    if base is None:
        (out / "REVIEW.md").write_text(render_markdown(report, nist), encoding="utf-8")
        (out / "review.json").write_text(render_json(report), encoding="utf-8")
    else:
        changes = review(build_report(base, k8s), report, base, stacks)
        page = StagePage(
            args.cdk_out.name,
            str(args.base),
            str(args.cdk_out),
            environment(stacks),
            changes,
            render_markdown(report),
            render_json(report),
        )
        (out / "REVIEW.md").write_text(render_page(page), encoding="utf-8")
        (out / "review.json").write_text(render_page_json(page), encoding="utf-8")
    print(f"report: wrote {out / 'REVIEW.md'} and {out / 'review.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
