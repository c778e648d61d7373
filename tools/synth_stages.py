"""Synthesize several stages in one process (the jsii start-up is paid once): ``OUT/<stage>/`` per stage.

Run it with the checkout to synthesize as the working directory (``make review`` runs it in a worktree of the
base ref too): it imports that checkout's ``app.py`` and ``cdk.json`` context, never this file's neighbours.
The previous output of a stage is kept in ``OUT/.previous/<stage>/`` so it can serve as a review base.
Each stage prints one line; a refused stage prints its refusal lines and the exit code is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import re
import shutil
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

# A preview stage's name (config/previews.py; not imported: this tool may run for an older checkout without it).
PREVIEW_NAME = re.compile(r"pr-[1-9][0-9]{0,5}")
# The same context the CDK CLI adds: construct paths in the metadata (the review names resources by them).
CLI_CONTEXT = {"aws:cdk:enable-path-metadata": True}


def stages_of(root: Path) -> list[str]:
    """Every stage file of a checkout: ``config/stages/*.yaml``, sorted."""
    return sorted(path.stem for path in (root / "config" / "stages").glob("*.yaml"))


def _entry(root: Path) -> Callable[[Any], int]:
    """The checkout's ``app.main`` as a function of the App to build into."""
    sys.path[:] = [str(root), *(entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent)]
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    module = importlib.import_module("app")
    main: Callable[..., int] = module.main
    if "app" in inspect.signature(main).parameters:
        return lambda app: main(app)

    # An older checkout whose main() builds its own cdk.App(): hand it ours through the module's `cdk` name.
    import aws_cdk

    def older(app: Any) -> int:
        setattr(module, "cdk", types.SimpleNamespace(**{**vars(aws_cdk), "App": lambda *_, **__: app}))  # noqa: B010
        try:
            return main()
        finally:
            setattr(module, "cdk", aws_cdk)  # noqa: B010

    return older


def synth_stage(main: Callable[[Any], int], context: dict[str, Any], stage: str, out: Path) -> int:
    """Synthesize one stage (a name, or the path of a stage file such as an example) into ``out/<name>``; the
    previous output moves to ``out/.previous/<name>``."""
    import aws_cdk as cdk

    selected = {"config": stage} if stage.endswith((".yaml", ".yml")) else {"stage": stage}
    stage = Path(stage).stem
    target = out / stage
    if target.exists():
        previous = out / ".previous" / stage
        shutil.rmtree(previous, ignore_errors=True)
        previous.parent.mkdir(parents=True, exist_ok=True)
        target.rename(previous)
    app = cdk.App(outdir=str(target), context={**context, **CLI_CONTEXT, **selected})
    with contextlib.redirect_stdout(sys.stderr):
        return main(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/synth_stages.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output root: one cloud assembly per stage below it")
    parser.add_argument("stages", nargs="*", metavar="STAGE", help="stage names or stage files, or 'all' (default)")
    args = parser.parse_args(argv)
    root = Path.cwd()
    stages = stages_of(root) if not args.stages or args.stages == ["all"] else args.stages
    unknown = [
        stage
        for stage in stages
        if not (root / stage).is_file()
        and not (root / "config" / "stages" / f"{stage}.yaml").is_file()
        and not PREVIEW_NAME.fullmatch(stage)  # a preview stage: config/preview.yaml (config/previews.py)
    ]
    if unknown:
        print(
            f"[config] STAGE: {', '.join(unknown)} — no config/stages/<stage>.yaml; known: {', '.join(stages_of(root))}"
            ", or a preview pr-<number>"
        )
        return 2
    context = json.loads((root / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    out = args.out.resolve()
    started = time.perf_counter()
    entry = _entry(root)
    failed = []
    for stage in stages:
        begin = time.perf_counter()
        if synth_stage(entry, context, stage, out) != 0:
            failed.append(stage)
            print(f"==> stage {stage}: refused (lines above)", file=sys.stderr)
        else:
            print(
                f"==> stage {stage}: synthesized into {out / Path(stage).stem} in {time.perf_counter() - begin:.1f} s",
                file=sys.stderr,
            )
    print(f"==> {len(stages)} stage(s) in {time.perf_counter() - started:.1f} s, one process", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
