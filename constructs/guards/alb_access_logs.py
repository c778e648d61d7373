"""alb-access-logs: every ALB writes access logs to an S3-managed-key bucket of its own stack (same region)."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree


class AlbAccessLogs:
    """Compliant: ``access_logs.s3.enabled`` is true and the bucket is encrypted with AES256 (SSE-S3): ELB log
    delivery cannot write to SSE-KMS buckets."""

    id = "alb-access-logs"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for alb in tree.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer"):
            attributes = {a.get("key"): a.get("value") for a in alb.props.get("loadBalancerAttributes") or []}
            if attributes.get("access_logs.s3.enabled") != "true":
                yield Finding(self.id, alb.path, "access logs off", "load_balancer.log_access_logs(<SSE-S3 bucket>)")
                continue
            bucket = attributes.get("access_logs.s3.bucket")
            owners = [
                b
                for b in tree.in_stack_of(alb.node, "AWS::S3::Bucket")
                if {"Ref": b.stack.get_logical_id(b.node)} == bucket
            ]
            encryption = [
                rule.get("serverSideEncryptionByDefault", {}).get("sseAlgorithm")
                for b in owners
                for rule in b.get("bucketEncryption", "serverSideEncryptionConfiguration", default=[])
            ]
            if not owners or encryption != ["AES256"]:
                yield Finding(
                    self.id,
                    alb.path,
                    f"log bucket encryption={encryption or 'unknown bucket'}",
                    "use a bucket of this stack with BucketEncryption.S3_MANAGED",
                )


RULE = AlbAccessLogs()
