"""StageStack: a stack of one stage, pinned to its account and region, that never asks AWS for anything at synth."""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stack
from constructs import Construct

from config.schema import AppConfig


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
