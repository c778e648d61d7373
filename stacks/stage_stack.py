"""StageStack: a stack of one stage, pinned to its account and region, that never asks AWS for anything at synth."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Environment, Stack
from constructs import Construct

from config.schema import AppConfig
from constructs.compute_target import ComputeTarget


class StageStack(Stack):
    """Base of every stack of a stage: ``env`` from the stage file, zones from the stage file.

    ``Stack.availability_zones`` would otherwise be a context lookup (``availability-zones:account=...``) that the
    CLI resolves with credentials, so synth with a real ``account:`` would need AWS access. The stage file lists
    its zones explicitly (validated against the region offline), and they are the stack's zones.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, env=Environment(account=config.account, region=config.region), **kwargs)
        self._zones = list(config.network.availability_zones)

    @property
    def availability_zones(self) -> list[str]:
        return list(self._zones)

    def output_log_groups(self, extra: dict[str, str] | None = None) -> None:
        """Output ``LogGroups``: ``{service name: log group name}`` of every process this stack runs (``make logs``
        and ``doctor`` read it); ``extra`` adds groups that no ComputeTarget declares (e.g. Elastic Beanstalk's)."""
        groups = {
            target.service.name: target.log_groups[0].log_group_name
            for target in self.node.find_all()
            if isinstance(target, ComputeTarget) and target.log_groups
        }
        CfnOutput(self, "LogGroups", value=self.to_json_string({**groups, **(extra or {})}))
