"""ResourcesStack: the app's own buckets, queues, topics and SES identities (``resources:`` of the stage file).

Built only when the stage declares resources, deployed before the target stacks (they depend on it). Nothing is
exported: the targets' settings and grants use the deterministic names (config/resources.py).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, aws_sns as sns
from constructs import Construct

from config.resources import resource_setting
from config.schema import AppConfig
from constructs.app_resources import AppResources
from stacks.stage_stack import StageStack


class ResourcesStack(StageStack):
    """Stateful in part (buckets, queues: retained in prod, and the stack is termination-protected there)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, alarm_topic: sns.ITopic, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, termination_protection=config.stage == "prod", **kwargs)
        self.resources = AppResources(self, "Resources", config=config, alarm_topic=alarm_topic)
        # The plain settings the services that use them receive (literals, the same on every target).
        settings = dict(resource_setting(config, name) for name in self.resources.built)
        CfnOutput(self, "ResourceSettings", value=self.to_json_string(settings))
