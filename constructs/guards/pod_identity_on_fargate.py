"""pod-identity-on-fargate: EKS Pod Identity does not work for Fargate pods; IRSA only."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import eks_stacks


class PodIdentityOnFargate:
    """Compliant: no stack with a Fargate profile has an ``AWS::EKS::PodIdentityAssociation`` or the
    ``eks-pod-identity-agent`` add-on (config refuses ``eks.identity: pod_identity`` too)."""

    id = "pod-identity-on-fargate"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        fargate = eks_stacks(tree)
        fix = "use IRSA: an IAM role trusting the cluster's OIDC provider for system:serviceaccount:<ns>:<name>"
        for resource in tree.of_type("AWS::EKS::PodIdentityAssociation", "AWS::EKS::Addon"):
            if id(resource.stack) not in fargate:
                continue
            if resource.type == "AWS::EKS::PodIdentityAssociation":
                account = f"{resource.props.get('namespace')}/{resource.props.get('serviceAccount')}"
                value = f"Pod Identity association for {account}"
                yield Finding(self.id, resource.path, value, fix)
            elif resource.props.get("addonName") == "eks-pod-identity-agent":
                yield Finding(self.id, resource.path, "eks-pod-identity-agent add-on (a DaemonSet)", fix)


RULE = PodIdentityOnFargate()
