"""eb-instance-profile-service-role: the instance profile and service role are created in the app, health enhanced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from config.schema import AppConfig
from constructs.guards.framework import Finding, Resource, Tree, compact, eb_options

REQUIRED = (
    ("aws:autoscaling:launchconfiguration", "IamInstanceProfile", "AWS::IAM::InstanceProfile"),
    ("aws:elasticbeanstalk:environment", "ServiceRole", "AWS::IAM::Role"),
)


def _references(value: Any, env: Resource, tree: Tree, resource_type: str) -> bool:
    """True when ``value`` is a Ref / GetAtt of a ``resource_type`` in the environment's own stack."""
    text = json.dumps(value, sort_keys=True)
    for resource in tree.in_stack_of(env.node, resource_type):
        logical_id = resource.stack.get_logical_id(resource.node)
        if json.dumps({"Ref": logical_id}) in text or f'"Fn::GetAtt": ["{logical_id}", "Arn"]' in text:
            return True
    return False


class EbInstanceProfileServiceRole:
    """Compliant: every EB environment sets ``IamInstanceProfile`` to an ``AWS::IAM::InstanceProfile`` and
    ``ServiceRole`` to an ``AWS::IAM::Role`` both created in its stack (not EB's console defaults, which may not
    exist), and ``aws:elasticbeanstalk:healthreporting:system`` ``SystemType=enhanced``."""

    id = "eb-instance-profile-service-role"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment"):
            options = eb_options(env)
            for namespace, name, resource_type in REQUIRED:
                value = options.get((namespace, name))
                if value is None or not _references(value, env, tree, resource_type):
                    yield Finding(
                        self.id,
                        env.path,
                        f"{namespace} {name}={compact(value)}",
                        f"create the {resource_type} in this stack and reference it (BeanstalkEnvironment does)",
                    )
            system = options.get(("aws:elasticbeanstalk:healthreporting:system", "SystemType"))
            if system != "enhanced":
                yield Finding(
                    self.id,
                    env.path,
                    f"healthreporting SystemType={compact(system)}",
                    "set SystemType=enhanced (needs the service role) for health metrics and managed updates",
                )


RULE = EbInstanceProfileServiceRole()
