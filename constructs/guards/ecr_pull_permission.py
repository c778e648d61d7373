"""ecr-pull-permission: each target's pulling principal may pull the image; tags are immutable."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import ECR_IMAGE, AppConfig
from constructs.guards.framework import Finding, Tree, allows, strings

PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:GetAuthorizationToken")


class EcrPullPermission:
    """Compliant: no container image uses ``:latest`` or no tag; every target's image puller is allowed the ECR
    pull actions on the configured repository."""

    id = "ecr-pull-permission"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for task in tree.of_type("AWS::ECS::TaskDefinition"):
            for container in task.get("containerDefinitions", default=[]) or []:
                image = "".join(strings(container.get("image")))
                tail = image.rsplit("/", 1)[-1]
                if "@sha256:" not in tail and (":" not in tail or tail.endswith(":latest")):
                    yield Finding(self.id, task.path, f"image {image}", "pin an immutable tag or @sha256 digest")
        for target in tree.targets:
            match = ECR_IMAGE.match(target.service.image)
            repository = f"repository/{match['repo']}" if match else ""
            statements = tree.statements_of(target.image_puller)
            missing = [a for a in PULL_ACTIONS if not allows(statements, a, "" if "Token" in a else repository)]
            if missing:
                yield Finding(
                    self.id,
                    target.node.path,
                    f"{target.label} image puller lacks {', '.join(missing)}",
                    f"grant pull on {repository} to the principal that pulls (repository.grant_pull)",
                )


RULE = EcrPullPermission()
