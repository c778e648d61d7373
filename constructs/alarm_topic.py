"""The stage's alarm topic: encrypted, TLS-only, with the notification decision from the stage file."""

from __future__ import annotations

from aws_cdk import aws_iam as iam, aws_kms as kms, aws_sns as sns, aws_sns_subscriptions as subs
from constructs import Construct

from config.schema import AlarmsConfig


class AlarmTopic(Construct):
    """Where every alarm of the stage sends its state changes.

    Args:
        config: e-mail subscribers, an existing topic ARN (used as is, nothing created), or an explicit
            ``none_reason`` (the topic exists so alarms keep an action; nobody is subscribed).
        display_name: shown in notification e-mails.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: AlarmsConfig, display_name: str) -> None:
        super().__init__(scope, construct_id)
        self.topic: sns.ITopic
        if config.topic_arn is not None:
            self.topic = sns.Topic.from_topic_arn(self, "Default", config.topic_arn)
            return
        # CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key: use our own key.
        key = kms.Key(self, "Key", enable_key_rotation=True, description=f"{display_name} alarm topic")
        key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=["*"],
            )
        )
        topic = sns.Topic(self, "Default", display_name=display_name, master_key=key, enforce_ssl=True)
        for email in config.emails:
            topic.add_subscription(subs.EmailSubscription(email))
        self.topic = topic
