"""`make bench`: warm synth time per stage, `make synth` (one stage, all stages), `make review` (three stages against
HEAD), full test-suite time, and peak memory of each. Measures, asserts nothing."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CDK = ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "--no-version-reporting"]


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of the biggest child process of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if result.returncode != 0:
        print(f"note: {' '.join(command)} exited with {result.returncode}; its time is still shown", file=sys.stderr)
    elapsed = time.perf_counter() - start
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return elapsed, peak / 1024


def main() -> int:
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    rows = []
    for stage in ("dev", "staging", "prod"):
        timed([*CDK, "-c", f"stage={stage}"])  # warm-up: Node, jsii and the asset cache
        seconds, peak = timed([*CDK, "-c", f"stage={stage}"])
        rows.append((f"warm synth {stage}", seconds, peak))
    for name, command in (
        ("make synth (dev)", ["make", "--no-print-directory", "synth", "STAGE=dev"]),
        ("make synth STAGE=all", ["make", "--no-print-directory", "synth", "STAGE=all"]),
        ("make review (3 stages)", ["make", "--no-print-directory", "review", "BASE=HEAD"]),
    ):
        seconds, peak = timed(command)
        rows.append((name, seconds, peak))
    one_stage = next(seconds for name, seconds, _ in rows if name == "make synth (dev)")
    review = next(seconds for name, seconds, _ in rows if name.startswith("make review"))
    seconds, peak = timed([sys.executable, "-m", "pytest", "-q"])
    rows.append(("test suite", seconds, peak))
    print(f"{'step':<26}{'seconds':>10}{'peak MiB':>12}")
    for name, seconds, peak in rows:
        print(f"{name:<26}{seconds:>10.1f}{peak:>12.0f}")
    print(f"make review / make synth (one stage) = {review / one_stage:.2f}x")
    print("(peak MiB is the largest child process so far: python + the jsii Node runtime)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
