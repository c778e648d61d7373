"""fargate-unsupported-k8s: no DaemonSet, host networking/ports, privileged containers or EBS volumes on Fargate."""

from __future__ import annotations

import re
from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import containers, eks_stacks, k8s_objects, workloads

EBS_PROVISIONERS = ("ebs.csi.aws.com", "kubernetes.io/aws-ebs")
EBS_CLASS = re.compile(r"gp2|gp3|io1|io2|st1|sc1|ebs", re.IGNORECASE)


class FargateUnsupportedK8s:
    """Compliant: manifests applied to a Fargate cluster contain no DaemonSet, no ``hostNetwork``, no ``hostPort``,
    no privileged container, no ``awsElasticBlockStore`` volume, no EBS StorageClass and no claim on one."""

    id = "fargate-unsupported-k8s"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        fargate = eks_stacks(tree)
        objects = [o for o in k8s_objects(tree) if id(o.resource.stack) in fargate]
        fix = "Fargate cannot run it: use a Deployment, pod IPs, an unprivileged container, RDS or EFS for data"
        for obj in objects:
            if obj.kind == "DaemonSet":
                yield Finding(self.id, obj.where, "DaemonSet", fix)
            if obj.kind == "StorageClass" and obj.body.get("provisioner") in EBS_PROVISIONERS:
                yield Finding(self.id, obj.where, f"EBS provisioner {obj.body.get('provisioner')}", fix)
            if obj.kind == "PersistentVolumeClaim" and EBS_CLASS.search(
                str((obj.body.get("spec") or {}).get("storageClassName", ""))
            ):
                yield Finding(self.id, obj.where, "claim on an EBS storage class", fix)
            if obj.kind == "PersistentVolume" and "awsElasticBlockStore" in (obj.body.get("spec") or {}):
                yield Finding(self.id, obj.where, "EBS persistent volume", fix)
        for obj, spec in workloads(objects):
            if spec.get("hostNetwork"):
                yield Finding(self.id, obj.where, "hostNetwork: true", fix)
            for volume in spec.get("volumes") or []:
                if "awsElasticBlockStore" in volume:
                    yield Finding(self.id, obj.where, f"EBS volume {volume.get('name')}", fix)
            for container in containers(spec):
                if (container.get("securityContext") or {}).get("privileged"):
                    yield Finding(self.id, obj.where, f"privileged container {container.get('name')}", fix)
                if any("hostPort" in port for port in container.get("ports") or []):
                    yield Finding(self.id, obj.where, f"hostPort on container {container.get('name')}", fix)


RULE = FargateUnsupportedK8s()
