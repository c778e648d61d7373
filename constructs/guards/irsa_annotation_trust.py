"""irsa-annotation-trust: pods run as the IRSA service account whose role trusts exactly that namespace/name."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import irsa_subjects, k8s_objects, manifest_objects, referenced, workloads

ANNOTATION = "eks.amazonaws.com/role-arn"


class IrsaAnnotationTrust:
    """Compliant: every workload names a ``serviceAccountName`` that is a ServiceAccount in the same manifest (chart),
    annotated ``eks.amazonaws.com/role-arn`` with a role of this app whose web-identity trust names
    ``system:serviceaccount:<namespace>:<name>`` of that same service account."""

    id = "irsa-annotation-trust"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for obj, spec in workloads(k8s_objects(tree)):
            name = spec.get("serviceAccountName") or spec.get("serviceAccount")
            if not name:
                yield Finding(
                    self.id,
                    obj.where,
                    "no serviceAccountName (pods would run as 'default', without AWS credentials)",
                    "set serviceAccountName to the chart's IRSA service account",
                )
                continue
            account = next(
                (
                    o
                    for o in manifest_objects(obj.resource)
                    if o.kind == "ServiceAccount" and o.name == name and o.namespace == obj.namespace
                ),
                None,
            )
            if account is None:
                yield Finding(
                    self.id,
                    obj.where,
                    f"serviceAccountName {name!r} is not a ServiceAccount of the same chart in {obj.namespace!r}",
                    "define the ServiceAccount (with its role annotation) in the chart that runs the pods",
                )
                continue
            arn = ((account.body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
            role = referenced(tree, obj.resource, account.intrinsic(arn))
            if role is None or role.type != "AWS::IAM::Role":
                yield Finding(
                    self.id,
                    account.where,
                    f"{ANNOTATION}={arn!r} is not a role of this app",
                    "annotate with the IRSA role's ARN (role.role_arn), so its trust can be checked",
                )
                continue
            subject = f"{obj.namespace}:{name}"
            subjects = irsa_subjects(tree, role)
            if subject not in subjects:
                yield Finding(
                    self.id,
                    role.path,
                    f"trust names {sorted(subjects) or 'no service account'}, pods run as {subject}",
                    f"trust system:serviceaccount:{subject} (sub) and sts.amazonaws.com (aud) via the cluster's "
                    "OIDC provider",
                )


RULE = IrsaAnnotationTrust()
