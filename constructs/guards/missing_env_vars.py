"""missing-env-vars: every service receives its settings and runtime values on every enabled target."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from aws_cdk import Stack

from config.schema import AppConfig
from constructs.compute_target import required_names
from constructs.guards.framework import ENV_READERS, SECRET_READERS, Finding, Resource, Tree
from constructs.guards.k8s import MANIFEST, has_workload

COMPUTE_TYPES = ("AWS::ECS::TaskDefinition", "AWS::ElasticBeanstalk::Environment", MANIFEST)


class MissingEnvVars:
    """Compliant: each compute resource a service declares (task definition, EB environment, Kubernetes manifest)
    receives every name of that service's settings (plain or secret) and its runtime values; a compute resource in
    a target's stack that no service declares must receive what the web service does. A target type extends
    ``ENV_READERS``/``SECRET_READERS``."""

    id = "missing-env-vars"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        required, who = declared_names(tree, config)
        stacks: set[Stack] = {Stack.of(t) for t in tree.targets}
        web = required_names(config, config.web)
        for resource in tree.resources:
            if resource.type not in COMPUTE_TYPES or resource.stack not in stacks:
                continue
            if resource.type == MANIFEST and not has_workload(resource):
                continue  # namespaces, service accounts ...: manifests that run no pods
            missing = sorted(required.get(resource.path, web) - delivered(resource))
            if missing:
                yield Finding(
                    self.id,
                    resource.path,
                    f"{', '.join(sorted(who.get(resource.path, {'an undeclared task'})))} does not receive "
                    f"{', '.join(missing)}",
                    "deliver the service's settings: runtime_environment(config, service) + its secret settings",
                )


def declared_names(tree: Tree, config: AppConfig) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per compute resource path: the names its services must receive, and the labels of those services (an EB
    environment or a manifest may serve several)."""
    names: dict[str, set[str]] = defaultdict(set)
    labels: dict[str, set[str]] = defaultdict(set)
    for target in tree.targets:
        for resource in tree.computes_of(target, *COMPUTE_TYPES):
            names[resource.path] |= required_names(config, target.service)
            labels[resource.path].add(target.label)
    return names, labels


def delivered(resource: Resource) -> set[str]:
    names = {str(e.name) for e in ENV_READERS[resource.type](resource)}
    if resource.type in SECRET_READERS:
        names |= {str(name) for _, _, name, _ in SECRET_READERS[resource.type](resource)}
    return names


RULE = MissingEnvVars()
