"""missing-env-vars: one settings map is delivered whole to every enabled target."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.compute_target import runtime_environment
from constructs.guards.framework import ENV_READERS, SECRET_READERS, Finding, Tree
from constructs.guards.k8s import MANIFEST, has_workload

COMPUTE_TYPES = ("AWS::ECS::TaskDefinition", "AWS::ElasticBeanstalk::Environment", MANIFEST)


class MissingEnvVars:
    """Compliant: every task definition / environment of an enabled target receives every name of the settings
    map (plain or secret) and the runtime values; a target type extends ``ENV_READERS``/``SECRET_READERS``."""

    id = "missing-env-vars"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        required = set(config.settings) | set(runtime_environment(config))
        for target in tree.targets:
            for resource in tree.in_stack_of(target, *COMPUTE_TYPES):
                if resource.type == MANIFEST and not has_workload(resource):
                    continue  # namespaces, service accounts ...: manifests that run no pods
                delivered = {e.name for e in ENV_READERS[resource.type](resource)}
                if resource.type in SECRET_READERS:
                    delivered |= {name for _, _, name, _ in SECRET_READERS[resource.type](resource)}
                missing = sorted(required - delivered)
                if missing:
                    yield Finding(
                        self.id,
                        resource.path,
                        f"{target.kind} does not receive {', '.join(missing)}",
                        "deliver the whole settings map: runtime_environment(config) + every secret setting",
                    )


RULE = MissingEnvVars()
