"""iam-app-permissions: the app's own AWS permissions come from config (``permissions:`` of a service) and go to
that service's role only. What may be declared is checked when the file loads (config/permissions.py); this
rule checks the EKS IRSA roles the cluster builds against the declarations."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from config.services import Service
from constructs.guards.framework import Finding, Tree, actions_of
from constructs.guards.k8s import eks_stacks, irsa_subjects, is_irsa_role, role_statements
from k8s.props import service_account_name


class IamAppPermissions:
    """Compliant: in each stack with a Fargate cluster, the IRSA role of each service (``eks.namespace`` /
    ``eks.service_account`` for the default web service, ``<service_account>-<name>`` for the others, routed web
    services included: ``k8s.props.service_account_name``) allows exactly that service's declared permissions
    (nothing more), and no other IRSA role there allows any of them."""

    id = "iam-app-permissions"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        fargate = eks_stacks(tree)
        declared = {
            _subject(config, service): {a for actions, _ in service.permissions for a in actions}
            for service in config.workloads
        }
        everything = {action for actions in declared.values() for action in actions}
        subject = _subject(config, config.web)
        roles = [r for r in tree.of_type("AWS::IAM::Role") if id(r.stack) in fargate and is_irsa_role(r)]
        app_roles = [r for r in roles if subject in irsa_subjects(tree, r)]
        service_roles = [r for r in roles if set(irsa_subjects(tree, r)) & set(declared)]
        for stack in fargate:
            if not any(id(r.stack) == stack for r in app_roles):
                path = next(
                    (r.path for r in tree.resources if id(r.stack) == stack and r.type == "AWS::EKS::Cluster"), ""
                )
                yield Finding(
                    self.id,
                    path or "EKS stack",
                    f"no IRSA role for system:serviceaccount:{subject}",
                    "create the app's IRSA role for eks.namespace/eks.service_account",
                )
        for role in roles:
            granted = {a for s in role_statements(tree, role) for a in actions_of(s)}
            if role in service_roles:
                wanted = {a for subject_ in irsa_subjects(tree, role) for a in declared.get(subject_, set())}
                extra, missing = sorted(granted - wanted), sorted(wanted - granted)
                if extra:
                    yield Finding(
                        self.id,
                        role.path,
                        f"the service's role allows {', '.join(extra)} beyond its declared permissions",
                        "declare every AWS permission of a service in its permissions: (stage file), nowhere else",
                    )
                if missing:
                    yield Finding(
                        self.id,
                        role.path,
                        f"the service's role lacks {', '.join(missing)} from its declared permissions",
                        "grant the service's permissions: to its own IRSA role",
                    )
            else:
                leaked = sorted(granted & everything)
                if leaked:
                    yield Finding(
                        self.id,
                        role.path,
                        f"{', '.join(leaked)} (the app's permissions) on another service account's role",
                        "grant a service's permissions: to that service's IRSA role only",
                    )


def _subject(config: AppConfig, service: Service) -> str:
    """The ``namespace:service-account`` a service's pods run as."""
    return f"{config.eks.namespace}:{service_account_name(config, service)}"


RULE = IamAppPermissions()
