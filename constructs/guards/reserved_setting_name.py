"""reserved-setting-name: no container receives a name twice, AWS credentials as variables, or a platform name."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

from config.schema import RESERVED_PREFIXES, RUNTIME_NAMES, AppConfig
from constructs.guards.framework import Finding, Tree, plain_env, secret_env
from constructs.guards.k8s import MANIFEST

# Credentials as environment variables: the SDKs would use them instead of the task/instance/IRSA role.
CREDENTIALS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})
# CDK's own helper functions set AWS_* variables for their runtimes; only app compute is held to the prefix rule.
APP_COMPUTE = ("AWS::ECS::TaskDefinition", "AWS::ElasticBeanstalk::Environment", MANIFEST)
_K8S_CONTAINER = re.compile(r"^(\S+ container \S+)")


def _container(where: str) -> str:
    """The container a settings entry belongs to: ECS container definition, k8s container, or the EB environment."""
    if where.startswith("containerDefinitions["):
        return where.split(".", 1)[0]
    match = _K8S_CONTAINER.match(where)
    return match.group(1) if match else ""


class ReservedSettingName:
    """Compliant: each container gets every name once (never both plain and secret); no container gets AWS
    credentials as variables; app containers get no ``AWS_*``/``ECS_*``/``KUBERNETES_*`` name except the ones the
    deployment injects (``AWS_REGION``)."""

    id = "reserved-setting-name"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        seen: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for env in plain_env(tree):
            name = str(env.name)
            seen[(env.resource.path, _container(env.where), name)].append("plain")
            if name in CREDENTIALS:
                yield Finding(
                    self.id,
                    f"{env.resource.path} {env.where}",
                    f"{name}=<plain value>",
                    "never pass AWS keys to a container; grant the permission to its role instead",
                )
            elif env.resource.type in APP_COMPUTE and name.startswith(RESERVED_PREFIXES) and name not in RUNTIME_NAMES:
                yield Finding(
                    self.id,
                    f"{env.resource.path} {env.where}",
                    name,
                    "the platform sets this name; remove it (settings cannot override AWS_*, ECS_* or KUBERNETES_*)",
                )
        for resource, where, name, _ in secret_env(tree):
            seen[(resource.path, _container(where), str(name))].append("secret")
        for (path, container, name), kinds in sorted(seen.items()):
            if len(kinds) > 1:
                yield Finding(
                    self.id,
                    f"{path} {container}".strip(),
                    f"{name} delivered {len(kinds)} times ({' + '.join(sorted(kinds))})",
                    "deliver each name once: one setting in the stage file, not also a runtime value or a secret",
                )


RULE = ReservedSettingName()
