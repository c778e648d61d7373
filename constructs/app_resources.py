"""The app's own resources from ``resources:`` of the stage file: buckets, queues, topics, SES sending identities.

Physical names are deterministic (config/resources.py), so the services' settings and grants in the target stacks
are literals: nothing here is exported. Construct ids come from the resource names (``BucketUploads``,
``QueueEmails`` ...), so a resource keeps its logical ID as long as it keeps its name.

- Buckets: private (all four public-access blocks), SSE-S3, TLS-only, object ownership enforced (no ACLs),
  versioned, old versions expire after ``expire_noncurrent_days``, unfinished multipart uploads after 7 days,
  optional CORS for exact origins, server access logs to the stack's access-log bucket.
- Queues: SQS-managed encryption, TLS-only, a dead-letter queue after ``max_receives`` receives, alarms on the
  age of the oldest message and on any dead letter (to the stage's alarm topic).
- Topics: encrypted with the AWS-managed key aws/sns (publishers of the account need only ``sns:Publish``), TLS-only.
- Email: an SES domain identity with Easy DKIM; its CNAME records go into the stage's hosted zone when the domain is
  in it, else they are stack outputs to create where the domain's DNS is.

Buckets and queues are retained when the stack is deleted in prod; elsewhere they go with it (buckets emptied).
"""

from __future__ import annotations

from aws_cdk import (
    CfnOutput,
    Duration,
    Fn,
    RemovalPolicy,
    aws_route53 as route53,
    aws_s3 as s3,
    aws_ses as ses,
    aws_sns as sns,
    aws_sqs as sqs,
)
from constructs import Construct

from config.resources import (
    BucketSpec,
    QueueSpec,
    ResourceKind,
    TopicSpec,
    bucket_name,
    dead_letter_queue_name,
    queue_name,
    topic_name,
)
from config.schema import AppConfig
from config.services import pascal
from constructs.alarms import GT, GTE, add_alarm
from constructs.nag import acknowledge, skip_checks

SQS_MANAGED = (
    "encrypted at rest with SQS-managed keys (SqsManagedSseEnabled): who reads is decided by the IAM grants of "
    "services.<name>.uses; a KMS key would need every sender and consumer granted kms:GenerateDataKey/kms:Decrypt "
    "on a key ARN not known before deploy, and checkov recognises only a KMS key"
)
S3_MANAGED = (
    "encrypted at rest with SSE-S3: who reads is decided by the IAM grants of services.<name>.uses; a KMS key would "
    "need every reader granted kms:Decrypt on a key ARN not known before deploy and adds a KMS request per object"
)
SNS_MANAGED_KEY = "alias/aws/sns"
DEAD_LETTER_RETENTION = Duration.days(14)


class AppResources(Construct):
    """Every resource of ``config.resources``; ``built`` maps each name to its kind (what the guards check).

    Args:
        config: the stage (names, the resources, the hosted zone, prod or not).
        alarm_topic: where queue alarms go (the data stack's alarm topic).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.prod = config.stage == "prod"
        self.alarm_topic = alarm_topic
        self.prefix = f"{config.app}-{config.stage}"
        self.built: dict[str, ResourceKind] = {}
        self.buckets: dict[str, s3.Bucket] = {}
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.topics: dict[str, sns.Topic] = {}
        self.identities: dict[str, ses.EmailIdentity] = {}
        resources = config.resources
        self.access_logs = self._access_log_bucket() if resources.buckets else None
        for name, bucket in resources.buckets.items():
            self._bucket(name, bucket)
        for name, queue in resources.queues.items():
            self._queue(name, queue)
        for name, topic in resources.topics.items():
            self._topic(name, topic)
        for name, email in resources.email.items():
            self._email(name, email.domain)

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.prod else RemovalPolicy.DESTROY

    def _access_log_bucket(self) -> s3.Bucket:
        """Where S3 writes the server access logs of the stage's buckets (SSE-S3: log delivery needs it)."""
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30))
            ],
            removal_policy=self.removal_policy,
            auto_delete_objects=not self.prod,
        )
        acknowledge(
            bucket,
            "S1",
            "this bucket receives the server access logs of the stage's buckets; logging it again would recurse",
            checkov=["CKV_AWS_18"],
        )
        return bucket

    def _bucket(self, name: str, spec: BucketSpec) -> None:
        cors = spec.cors
        bucket = s3.Bucket(
            self,
            f"Bucket{pascal(name)}",
            bucket_name=bucket_name(self.config, name),
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=spec.versioned,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-and-incomplete",
                    noncurrent_version_expiration=Duration.days(spec.expire_noncurrent_days)
                    if spec.versioned
                    else None,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            cors=[
                s3.CorsRule(
                    allowed_origins=list(cors.origins),
                    allowed_methods=[s3.HttpMethods(method) for method in cors.methods],
                    allowed_headers=["*"],
                    max_age=cors.max_age_seconds,
                )
            ]
            if cors is not None
            else None,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{name}/",
            removal_policy=self.removal_policy,
            auto_delete_objects=not self.prod,
        )
        skip_checks(bucket, ["CKV_AWS_145"], S3_MANAGED)
        if not spec.versioned:
            skip_checks(bucket, ["CKV_AWS_21"], f"resources.buckets.{name}.versioned: false in the stage file")
        self.buckets[name] = bucket
        self.built[name] = "bucket"

    def _queue(self, name: str, spec: QueueSpec) -> None:
        component = f"Queue{pascal(name)}"
        dead_letters = sqs.Queue(
            self,
            f"{component}DeadLetters",
            queue_name=dead_letter_queue_name(self.config, name),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
            removal_policy=self.removal_policy,
        )
        acknowledge(
            dead_letters, "SQS3", f"this queue is itself the dead-letter queue of {queue_name(self.config, name)}"
        )
        queue = sqs.Queue(
            self,
            component,
            queue_name=queue_name(self.config, name),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
            retention_period=Duration.days(spec.retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=spec.max_receives, queue=dead_letters),
            removal_policy=self.removal_policy,
        )
        for each in (queue, dead_letters):
            skip_checks(each, ["CKV_AWS_27"], SQS_MANAGED)
        alarm = f"{self.prefix}-queue-{name}"
        add_alarm(
            self,
            f"{component}OldestMessageAlarm",
            name=f"{alarm}-oldest-message",
            metric=queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum"),
            threshold=spec.oldest_message_alarm_seconds,
            comparison=GTE,
            topic=self.alarm_topic,
            description=(
                f"a message of {queue.queue_name} has waited {spec.oldest_message_alarm_seconds}s or more: its "
                "consumers are stopped, failing or too few"
            ),
        )
        add_alarm(
            self,
            f"{component}DeadLettersAlarm",
            name=f"{alarm}-dead-letters",
            metric=dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            comparison=GT,
            topic=self.alarm_topic,
            description=(
                f"messages of {queue.queue_name} failed {spec.max_receives} times and wait in its dead-letter queue; "
                "read them, fix the consumer, redrive"
            ),
            evaluation_periods=1,
        )
        self.queues[name] = queue
        self.dead_letter_queues[name] = dead_letters
        self.built[name] = "queue"

    def _topic(self, name: str, spec: TopicSpec) -> None:
        topic = sns.Topic(
            self,
            f"Topic{pascal(name)}",
            topic_name=topic_name(self.config, name),
            display_name=spec.display_name,
            enforce_ssl=True,
        )
        cfn = topic.node.default_child
        assert isinstance(cfn, sns.CfnTopic)
        cfn.kms_master_key_id = SNS_MANAGED_KEY
        self.topics[name] = topic
        self.built[name] = "topic"

    def _email(self, name: str, domain: str) -> None:
        component = f"Email{pascal(name)}"
        identity = ses.EmailIdentity(self, component, identity=ses.Identity.domain(domain))
        zone = self.config.domain
        zone_name = (zone.hosted_zone_name or "").rstrip(".") if zone is not None else ""
        records = [
            (identity.dkim_dns_token_name1, identity.dkim_dns_token_value1),
            (identity.dkim_dns_token_name2, identity.dkim_dns_token_value2),
            (identity.dkim_dns_token_name3, identity.dkim_dns_token_value3),
        ]
        if zone is not None and zone.hosted_zone_id and (domain == zone_name or domain.endswith(f".{zone_name}")):
            for index, (record_name, value) in enumerate(records, start=1):
                route53.CfnRecordSet(
                    self,
                    f"{component}Dkim{index}",
                    hosted_zone_id=zone.hosted_zone_id,
                    name=record_name,
                    type="CNAME",
                    ttl="1800",
                    resource_records=[value],
                )
        else:
            for index, (record_name, value) in enumerate(records, start=1):
                CfnOutput(
                    self,
                    f"{component}Dkim{index}",
                    description=f"create this CNAME record where the DNS of {domain} is (SES DKIM verification)",
                    value=Fn.join(" ", [record_name, "CNAME", value]),
                )
        self.identities[name] = identity
        self.built[name] = "email"
