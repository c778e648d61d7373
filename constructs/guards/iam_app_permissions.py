"""iam-app-permissions: the app's extra AWS permissions come from config and go to the app's IRSA role only."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, actions_of
from constructs.guards.k8s import eks_stacks, irsa_subjects, is_irsa_role, role_statements


class IamAppPermissions:
    """Compliant: in each stack with a Fargate cluster, the IRSA role trusted by ``eks.namespace/eks.service_account``
    allows exactly ``eks.app_permissions`` (nothing more), and no other IRSA role there allows any of them."""

    id = "iam-app-permissions"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        fargate = eks_stacks(tree)
        wanted = set(config.eks.app_permissions)
        subject = f"{config.eks.namespace}:{config.eks.service_account}"
        roles = [r for r in tree.of_type("AWS::IAM::Role") if id(r.stack) in fargate and is_irsa_role(r)]
        app_roles = [r for r in roles if subject in irsa_subjects(tree, r)]
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
            if role in app_roles:
                extra, missing = sorted(granted - wanted), sorted(wanted - granted)
                if extra:
                    yield Finding(
                        self.id,
                        role.path,
                        f"the app's role allows {', '.join(extra)} beyond eks.app_permissions",
                        "declare every extra permission in eks.app_permissions (config), nowhere else",
                    )
                if missing:
                    yield Finding(
                        self.id,
                        role.path,
                        f"the app's role lacks {', '.join(missing)} from eks.app_permissions",
                        "grant eks.app_permissions to the app's IRSA role",
                    )
            else:
                leaked = sorted(granted & wanted)
                if leaked:
                    yield Finding(
                        self.id,
                        role.path,
                        f"{', '.join(leaked)} (the app's permissions) on another service account's role",
                        "grant eks.app_permissions to the app's IRSA role only",
                    )


RULE = IamAppPermissions()
