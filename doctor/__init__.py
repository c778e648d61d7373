"""Live diagnosis of a deployed stage: boto3 checks, each tagged with a misconfiguration catalogue id.

``python -m doctor --stage prod`` after a deploy, ``--preflight`` before the first one; ``--json`` for CI.
Checks are functions ``(Context) -> list[Finding]`` (``doctor.checks``); the CLI (``doctor.cli``) composes
them. Nothing here reads or prints a secret value (catalogue id secrets-printed).
"""

from doctor.model import Check, Context, Finding, Verdict

__all__ = ["Check", "Context", "Finding", "Verdict"]
