"""`make scan`: scanners nobody here wrote, over what a deploy would apply.

1. Synthesizes every stage and every example stage file (``config/examples/*.yaml``) into ``cdk.out/<name>/``
   (one process), renders the Kubernetes manifests of each that runs on EKS into ``cdk.out/<name>/k8s/``, and the
   ``<app>-ci`` stack (make ci-bootstrap) of each with ``ci:`` into ``cdk.out/ci/``.
2. Runs checkov (its own venv ``.venv/scan``, offline) over each: CloudFormation and Kubernetes.
3. Fails on any failed check, and on any skip without a reason. A skip is written by the construct or chart that
   owns the resource (``Metadata.checkov.skip`` / ``checkov.io/skipN`` annotations) with the reason next to it.

4. Runs the cdk-nag NIST 800-53 R5 pack as a report, not a gate (``tools/nist.py``): ``cdk.out/<name>/REVIEW.md``
   lists its findings, with the reason where this project accepts one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHECKOV = ROOT / ".venv" / "scan" / "bin" / "checkov"
NO_COMMENT = "No comment provided"  # what checkov records for a skip written without a reason


@dataclass(frozen=True)
class Finding:
    """One checkov result: a failed check, or a skipped one with its reason."""

    check: str
    title: str
    resource: str
    file: str
    reason: str = ""


@dataclass
class Scan:
    """checkov's verdict on one directory with one framework."""

    label: str
    framework: str
    passed: int = 0
    failed: list[Finding] = field(default_factory=list)
    skipped: list[Finding] = field(default_factory=list)
    error: str = ""

    def problems(self) -> list[str]:
        """One line per failure, per skip without a reason, or the scanner's own error."""
        if self.error:
            return [f"[scan] {self.label} ({self.framework}): checkov did not run — {self.error}"]
        lines = [
            f"[scan] {self.label}: {f.check} {f.resource} ({f.file}) — {f.title}; fix it, or skip it on the resource "
            "with the reason (constructs/nag.py acknowledge(..., checkov=[...]) / k8s scanner_annotations)"
            for f in self.failed
        ]
        lines += [
            f"[scan] {self.label}: {f.check} {f.resource} is skipped without a reason — write why next to the skip"
            for f in self.skipped
            if not f.reason.strip() or f.reason.strip() == NO_COMMENT
        ]
        return lines


def _findings(results: Iterable[dict[str, Any]]) -> list[Finding]:
    found = []
    for item in results:
        reason = (item.get("check_result") or {}).get("suppress_comment") or ""
        found.append(
            Finding(
                str(item.get("check_id")),
                str(item.get("check_name")),
                str(item.get("resource")),
                Path(str(item.get("file_path", ""))).name,
                str(reason),
            )
        )
    return sorted(found, key=lambda finding: (finding.check, finding.resource))


def run_checkov(label: str, directory: Path, framework: str) -> Scan:
    """checkov over ``directory`` (offline: nothing is downloaded, nothing is uploaded)."""
    scan = Scan(label, framework)
    if not CHECKOV.is_file():
        scan.error = f"{CHECKOV} is missing; run 'make setup'"
        return scan
    command = [str(CHECKOV), "-d", str(directory), "--framework", framework, "--skip-download", "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        payload = json.loads(result.stdout)
    except ValueError:
        scan.error = (result.stderr.strip().splitlines() or ["no JSON output"])[-1][:200]
        return scan
    for report in payload if isinstance(payload, list) else [payload]:
        if "results" not in report:  # an empty directory: checkov prints a summary without results
            continue
        scan.passed += int(report.get("summary", {}).get("passed", 0))
        scan.failed += _findings(report["results"].get("failed_checks", []))
        scan.skipped += _findings(report["results"].get("skipped_checks", []))
    return scan


def scan_all(targets: Sequence[tuple[str, Path, str]]) -> list[Scan]:
    """Every ``(label, directory, framework)``, two at a time (checkov is single-threaded)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda target: run_checkov(*target), targets))


def names() -> list[str]:
    """Every stage, then every example stage file (relative paths)."""
    stages = sorted(path.stem for path in (ROOT / "config" / "stages").glob("*.yaml"))
    return [*stages, *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "config" / "examples").glob("*.yaml"))]


def prepare(out: Path) -> list[tuple[str, Path, str]]:
    """Synthesize every stage and example into ``out``, render EKS manifests; return what to scan."""
    sys.path.insert(0, str(ROOT))
    from config import load_config, resolve_account
    from k8s.synth import build

    print(f"==> synthesizing {', '.join(names())} into {out}/ (one process)")
    command = [sys.executable, str(ROOT / "tools" / "synth_stages.py"), "--out", str(out), *names()]
    result = subprocess.run(command, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise SystemExit(result.returncode)
    targets = []
    for name in names():
        config, _ = resolve_account(
            load_config(None if name.endswith(".yaml") else name, path=name if name.endswith(".yaml") else None),
            environ={},
        )
        label = Path(name).stem
        targets.append((label, out / label, "cloudformation"))
        if "eks" in config.targets:
            build(config, out / label / "k8s")
            targets.append((f"{label} manifests", out / label / "k8s", "kubernetes"))
        targets += ci_target(config, out / "ci")
    return targets


def ci_target(config: Any, out: Path) -> list[tuple[str, Path, str]]:
    """The ``<app>-ci`` stack (make ci-bootstrap) of a stage with ``ci:``, synthesized into ``out``; else none."""
    from tools.ci_bootstrap import synth

    if config.ci is None:
        return []
    assembly, refused = synth([config], out)
    if assembly is None:
        raise SystemExit(f"{config.app}-ci: " + "; ".join(refused))
    return [(f"{config.app}-{config.stage} ci", assembly, "cloudformation")]


def render(scans: Sequence[Scan]) -> str:
    """A table: passed, failed and skipped (with reasons) per target."""
    lines = [f"{'target':<28}{'framework':<16}{'passed':>8}{'failed':>8}{'skipped':>9}"]
    for scan in scans:
        lines.append(f"{scan.label:<28}{scan.framework:<16}{scan.passed:>8}{len(scan.failed):>8}{len(scan.skipped):>9}")
    reasons = sorted({(f.check, f.reason) for scan in scans for f in scan.skipped})
    lines += ["", f"{len(reasons)} skip reasons (check: reason):"]
    lines += [f"  {check}: {reason}" for check, reason in reasons]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/scan.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "cdk.out", help="default: cdk.out")
    args = parser.parse_args(argv)
    scans = scan_all(prepare(args.out.resolve()))
    print(render(scans))
    problems = [line for scan in scans for line in scan.problems()]
    for line in problems:
        print(line, file=sys.stderr)
    print(f"==> checkov: {len(problems)} unexplained finding(s)", file=sys.stderr)
    from tools.nist import nist_report

    for name in names():
        label = Path(name).stem
        findings = nist_report(name, args.out.resolve() / label)
        subprocess.run([sys.executable, "-m", "report", str(args.out.resolve() / label)], cwd=ROOT, check=False)
        still_open = ", ".join(sorted({item["rule"] for item in findings if not item["reason"]})) or "-"
        print(f"==> NIST 800-53 R5 (report only) {label}: {len(findings)} rule(s); open: {still_open}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
