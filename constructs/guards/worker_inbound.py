"""worker-inbound: workers, jobs and the migration step have no load balancer, target group or inbound rule."""

from __future__ import annotations

import json
from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, ingress_rules, logical_ref
from constructs.guards.k8s import MANIFEST, k8s_objects


class WorkerInbound:
    """Compliant: no ingress rule on the security group of a non-web service (unless a web service shares the
    group: EB instances, EKS pods); no ECS service running a non-web task definition has a load balancer or a
    port mapping; no Kubernetes Service, Ingress or TargetGroupBinding selects a non-web pod."""

    id = "worker-inbound"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        background = [t for t in tree.targets if not t.service.is_web]
        web_groups = {t.security_group.security_group_id for t in tree.targets if t.service.is_web}
        for target in background:
            token = target.security_group.security_group_id
            if token in web_groups:
                continue
            for resource, rule in ingress_rules(tree):
                standalone = resource.type == "AWS::EC2::SecurityGroupIngress"
                group = resource.raw.get("groupId") if standalone else resource.node.attr_group_id  # type: ignore[attr-defined]
                if group == token:
                    yield Finding(
                        self.id,
                        resource.path,
                        f"{target.label} admits {json.dumps(rule, default=str)[:80]}",
                        "a worker or job takes no inbound traffic; remove the rule",
                    )
        tasks = {
            (r.stack.stack_name, json.dumps(logical_ref(r))): t
            for t in background
            for r in tree.computes_of(t, "AWS::ECS::TaskDefinition")
        }
        for resource in tree.of_type("AWS::ECS::TaskDefinition"):
            owner = tasks.get((resource.stack.stack_name, json.dumps(logical_ref(resource))))
            for container in resource.get("containerDefinitions", default=[]) or []:
                if owner is not None and container.get("portMappings"):
                    yield Finding(
                        self.id,
                        resource.path,
                        f"{owner.label} container {container.get('name')} maps ports",
                        "a worker or job listens on no port; remove the port mapping",
                    )
        for service in tree.of_type("AWS::ECS::Service"):
            owner = tasks.get((service.stack.stack_name, json.dumps(service.props.get("taskDefinition"))))
            if owner is not None and (service.props.get("loadBalancers") or service.props.get("serviceRegistries")):
                yield Finding(
                    self.id,
                    service.path,
                    f"{owner.label} is registered with a load balancer",
                    "run workers without a load balancer or target group (FargateWorker)",
                )
        yield from self._kubernetes(tree)

    def _kubernetes(self, tree: Tree) -> Iterator[Finding]:
        objects = k8s_objects(tree)
        background = {r.path for t in tree.targets if not t.service.is_web for r in tree.computes_of(t, MANIFEST)}
        pods = [
            (obj, ((obj.body.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {})
            for obj in objects
            if obj.kind in ("Deployment", "Job") and obj.resource.path in background
        ]
        for obj in objects:
            if obj.kind not in ("Service", "Ingress", "TargetGroupBinding"):
                continue
            if obj.resource.path in background:
                yield Finding(
                    self.id, obj.where, f"{obj.kind} next to a worker", "a worker or job has no Service or Ingress"
                )
                continue
            selector = (obj.body.get("spec") or {}).get("selector") or {}
            for pod, labels in pods:
                if obj.kind == "Service" and selector and all(labels.get(k) == v for k, v in selector.items()):
                    yield Finding(
                        self.id,
                        obj.where,
                        f"selects the pods of {pod.kind}/{pod.name} ({selector})",
                        "give the worker its own app.kubernetes.io/name so the web Service does not select it",
                    )


RULE = WorkerInbound()
