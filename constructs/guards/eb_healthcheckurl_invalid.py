"""eb-healthcheckurl-invalid: every EB option is a known (namespace, option) pair; health path = HealthCheckPath."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.beanstalk_environment import option_problem
from constructs.guards.framework import Finding, Tree


class EbHealthcheckUrlInvalid:
    """Compliant: every option setting of every ``CfnEnvironment`` / ``CfnConfigurationTemplate`` (raw ones
    included) is on ``ALLOWED_OPTIONS`` of ``constructs.beanstalk_environment``; the health check path is
    ``aws:elasticbeanstalk:environment:process:default`` ``HealthCheckPath``, never ``HealthCheckURL``."""

    id = "eb-healthcheckurl-invalid"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for env in tree.of_type("AWS::ElasticBeanstalk::Environment", "AWS::ElasticBeanstalk::ConfigurationTemplate"):
            for option in env.get("optionSettings", default=[]) or []:
                namespace, name = str(option.get("namespace")), str(option.get("optionName"))
                fix = option_problem(namespace, name)
                if fix is not None:
                    yield Finding(
                        self.id,
                        env.path,
                        f"{namespace}/{name}",
                        f"not an Elastic Beanstalk option here; use {fix}",
                    )


RULE = EbHealthcheckUrlInvalid()
