"""k8s-ingress-fargate: pods register as IP targets; the load balancer controller knows region and VPC id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aws_cdk import CfnResource, Stack

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import eks_stacks, helm_releases, k8s_objects

CONTROLLER_CHART = "aws-load-balancer-controller"
INGRESS_TARGET_TYPE = "alb.ingress.kubernetes.io/target-type"
NLB_TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"


class K8sIngressFargate:
    """Compliant: on a Fargate cluster every TargetGroupBinding has ``targetType: ip``, every Ingress the annotation
    ``alb.ingress.kubernetes.io/target-type: ip``, every LoadBalancer Service the NLB ``ip`` target type; when any of
    them exists, the ``aws-load-balancer-controller`` Helm release is in the stack with ``region`` and ``vpcId``
    values (Fargate pods have no IMDS to discover them); in a stack with a Fargate cluster, the target group of each
    web service on the stage load balancer is named by a TargetGroupBinding (else no pod of that service ever
    receives its requests: the ALB answers 503)."""

    id = "k8s-ingress-fargate"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        fargate = eks_stacks(tree)
        needs_controller: dict[int, str] = {}
        fix = "Fargate pods can only be IP targets: set targetType ip"
        bound: list[Any] = []  # the targetGroupARN intrinsics of every TargetGroupBinding
        for obj in k8s_objects(tree):
            stack = id(obj.resource.stack)
            if stack not in fargate:
                continue
            annotations = (obj.body.get("metadata") or {}).get("annotations") or {}
            spec = obj.body.get("spec") or {}
            if obj.kind == "TargetGroupBinding":
                needs_controller[stack] = obj.where
                bound.append(obj.intrinsic(spec.get("targetGroupARN")))
                if spec.get("targetType") != "ip":
                    yield Finding(self.id, obj.where, f"targetType={spec.get('targetType')}", fix)
            elif obj.kind == "Ingress":
                needs_controller[stack] = obj.where
                if annotations.get(INGRESS_TARGET_TYPE) != "ip":
                    yield Finding(
                        self.id, obj.where, f"{INGRESS_TARGET_TYPE}={annotations.get(INGRESS_TARGET_TYPE)}", fix
                    )
            elif obj.kind == "Service" and spec.get("type") == "LoadBalancer":
                needs_controller[stack] = obj.where
                if annotations.get(NLB_TARGET_TYPE) != "ip":
                    yield Finding(self.id, obj.where, f"{NLB_TARGET_TYPE}={annotations.get(NLB_TARGET_TYPE)}", fix)
        for targets in tree.web_targets:
            group = targets.target_group.node.default_child
            if not isinstance(group, CfnResource) or id(Stack.of(group)) not in fargate:
                continue
            if {"Ref": Stack.of(group).get_logical_id(group)} not in bound:
                yield Finding(
                    self.id,
                    group.node.path,
                    f"no TargetGroupBinding registers the pods of web service {targets.service.name}",
                    "apply its AppChart (k8s.props.app_props(config, service, target_group_arn=...)) in the cluster",
                )
        controllers = {id(r.resource.stack): r for r in helm_releases(tree) if r.chart == CONTROLLER_CHART}
        for stack, where in needs_controller.items():
            release = controllers.get(stack)
            if release is None:
                yield Finding(
                    self.id,
                    where,
                    "no AWS Load Balancer Controller in this cluster",
                    "FargateCluster(alb_controller=eks.AlbControllerOptions(version=...))",
                )
                continue
            missing = [key for key in ("region", "vpcId") if not release.values.get(key)]
            if missing:
                yield Finding(
                    self.id,
                    release.resource.path,
                    f"controller values lack {', '.join(missing)}",
                    "pass region and vpcId to the controller (CDK's alb_controller option does)",
                )


RULE = K8sIngressFargate()
