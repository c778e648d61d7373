"""Review report for synthesized CDK templates.

``python -m report`` reads a cloud assembly (``cdk.out``) and optional rendered Kubernetes manifests
and writes ``REVIEW.md`` plus its JSON twin ``review.json``: stacks, network reachability, secrets,
health checks, alarms, IAM principals and stateful resources, in a deterministic order.
"""

from report.extract import Report, build_report
from report.render import render_json, render_markdown

__all__ = ["Report", "build_report", "render_json", "render_markdown"]
