"""The ECR repository of the configured image, imported by ARN so each target can grant pulls on exactly it."""

from __future__ import annotations

from aws_cdk import aws_ecr as ecr
from constructs import Construct

from config.schema import ECR_IMAGE


def image_repository(scope: Construct, uri: str, construct_id: str = "Repository") -> tuple[ecr.IRepository, str]:
    """(repository, tag or digest) of an ECR image URI; ``scope`` gets a child ``construct_id`` (no resource)."""
    match = ECR_IMAGE.match(uri)
    if match is None:  # the config schema already refused it; this guards direct construct use
        raise ValueError(f"[ecr-pull-permission] image: {uri!r} — use an ECR URI with an immutable tag or digest")
    partition = "aws-cn" if ".amazonaws.com.cn/" in uri else "aws"
    repository = ecr.Repository.from_repository_attributes(
        scope,
        construct_id,
        repository_name=match["repo"],
        repository_arn=f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}",
    )
    return repository, match["digest"] or match["tag"]
