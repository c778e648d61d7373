"""eks-fargate-pod-sg: with EKS on Fargate, pods use the cluster security group; DB and cache admit that group."""

from __future__ import annotations

from collections.abc import Iterator

from aws_cdk import Stack

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, ingress_rules
from constructs.guards.k8s import eks_stacks


class EksFargatePodSg:
    """Compliant: in every stack with a Fargate cluster, the ``eks`` ComputeTarget's security group is the cluster's
    ``ClusterSecurityGroupId`` (what Fargate pods get), and the DB and cache groups each have an ingress rule
    whose source is that group."""

    id = "eks-fargate-pod-sg"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        fargate = eks_stacks(tree)
        protected = {
            "the database": [
                g for r in tree.of_type("AWS::RDS::DBInstance") for g in r.raw.get("vpcSecurityGroups") or []
            ],
            "the cache": [
                g
                for r in tree.of_type("AWS::ElastiCache::ReplicationGroup")
                for g in r.raw.get("securityGroupIds") or []
            ],
        }
        for cluster in tree.of_type("AWS::EKS::Cluster"):
            if id(cluster.stack) not in fargate:
                continue
            stack = cluster.stack
            pods = {"Fn::GetAtt": [stack.get_logical_id(cluster.node), "ClusterSecurityGroupId"]}
            fix = "use cluster.cluster_security_group for the eks ComputeTarget and admit it to DB and cache"
            declared = [t for t in tree.targets if t.kind == "eks" and Stack.of(t) is stack]
            for target in declared:
                if stack.resolve(target.security_group.security_group_id) != pods:
                    yield Finding(
                        self.id,
                        target.node.path,
                        f"eks compute group is {stack.resolve(target.security_group.security_group_id)}, not the "
                        "cluster security group Fargate pods use",
                        fix,
                    )
            if not declared:
                yield Finding(self.id, cluster.path, "Fargate cluster without an eks ComputeTarget", fix)
            for what, groups in protected.items():
                admitted = any(
                    resource.raw.get("groupId") in groups and stack.resolve(rule.get("sourceSecurityGroupId")) == pods
                    for resource, rule in ingress_rules(tree)
                    if resource.stack is stack and resource.type == "AWS::EC2::SecurityGroupIngress"
                )
                if groups and not admitted:
                    yield Finding(
                        self.id,
                        cluster.path,
                        f"{what} does not admit the cluster security group",
                        f"in the EKS stack: ec2.Connections(security_groups=[cluster.cluster_security_group])"
                        f".allow_to_default_port(<{what.split()[-1]}>)",
                    )


RULE = EksFargatePodSg()
