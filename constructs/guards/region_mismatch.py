"""region-mismatch: every stack in the stage's account/region; no cross-region reference or ARN."""

from __future__ import annotations

import re
from collections.abc import Iterator

from aws_cdk import Token

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, strings

# Regional ARNs whose region differs from the stage region (global services have an empty region field).
REGIONAL_ARN = re.compile(r"arn:aws[a-z-]*:([a-z0-9-]+):([a-z]{2}(?:-[a-z]+)+-\d):")
CROSS_REGION = ("Custom::CrossRegionExportWriter", "Custom::CrossRegionExportReader")


class RegionMismatch:
    """Compliant: each stack's env is the stage's account and region, and nothing points at another region."""

    id = "region-mismatch"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for stack in tree.stacks:
            for field, actual, expected in (
                ("region", stack.region, config.region),
                ("account", stack.account, config.account),
            ):
                if Token.is_unresolved(actual) or actual != expected:
                    shown = "environment-agnostic" if Token.is_unresolved(actual) else actual
                    yield Finding(
                        self.id,
                        stack.node.path,
                        f"{field}={shown}",
                        f"build every stack with env=Environment(account, region) from the stage file "
                        f"({field} {expected})",
                    )
        for resource in tree.of_type(*CROSS_REGION):
            yield Finding(
                self.id,
                resource.path,
                resource.type,
                "a stack references a resource in another region; keep the stage in one region",
            )
        for resource in tree.resources:
            for text in strings(resource.props):
                for match in REGIONAL_ARN.finditer(text):
                    if match.group(2) != config.region:
                        yield Finding(
                            self.id,
                            resource.path,
                            match.group(0),
                            f"use the {match.group(1)} resource in {config.region}",
                        )


RULE = RegionMismatch()
