"""eb-solution-stack-retired: EB environments run the configured Docker on AL2023 solution stack."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import EB_SOLUTION_STACK, AppConfig
from constructs.guards.framework import Finding, Tree, compact


class EbSolutionStackRetired:
    """Compliant: every EB environment / configuration template sets ``SolutionStackName`` to
    ``eb.solution_stack`` of the stage, which matches ``64bit Amazon Linux 2023 v4.x.y running Docker``
    (no ``PlatformArn``, no other platform family); ``doctor`` checks EB still offers it."""

    id = "eb-solution-stack-retired"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        expected = config.eb.solution_stack
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment", "AWS::ElasticBeanstalk::ConfigurationTemplate"):
            name = env.props.get("solutionStackName")
            if name is None and env.props.get("templateName") and not env.props.get("platformArn"):
                continue  # the template it names carries the solution stack and is checked itself
            if not isinstance(name, str) or not EB_SOLUTION_STACK.match(name):
                yield Finding(
                    self.id,
                    env.path,
                    f"SolutionStackName={compact(name)}"
                    + (f" PlatformArn={compact(env.props['platformArn'])}" if env.props.get("platformArn") else ""),
                    f"use eb.solution_stack from the stage file, matching {EB_SOLUTION_STACK.pattern}",
                )
            elif name != expected:
                yield Finding(
                    self.id,
                    env.path,
                    f"SolutionStackName={name}",
                    f"use eb.solution_stack from the stage file ({expected}), refreshed when EB retires it",
                )


RULE = EbSolutionStackRetired()
