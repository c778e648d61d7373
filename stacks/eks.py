"""EksStack: the app on EKS Fargate behind its own CloudFormation ALB, wired to the data stack from this side."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, aws_ec2 as ec2
from constructs import Construct

from config.schema import AppConfig
from config.services import pascal
from constructs.alarms import LT, add_alarm
from constructs.compute_target import ComputeTarget
from constructs.eks_fargate_cluster import EksFargateCluster
from constructs.load_balancer import WebLoadBalancer
from constructs.stage_domain import StageDomain
from k8s.props import is_default_web
from stacks.data import DataStack
from stacks.stage_stack import StageStack


class EksStack(StageStack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, vpc: ec2.IVpc, data: DataStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        prefix = f"{config.app}-{config.stage}"
        # The name this target answers and its certificate; with a hosted zone, its own certificate and record.
        self.domain = StageDomain(self, "Domain", config=config, target="eks") if config.domain else None
        self.load_balancer = WebLoadBalancer.for_stage(
            self,
            config=config,
            vpc=vpc,
            alarm_topic=data.alarm_topic,
            target="eks",
            certificate=self.domain.certificate if self.domain else None,
        )
        if self.domain is not None:
            self.domain.alias_to(self.load_balancer.load_balancer)
        target_group = self.load_balancer.target_group  # the default web service's
        targets = self.load_balancer.targets  # every web service's own target group (and rule, alarms)
        self.eks = EksFargateCluster(
            self,
            "Eks",
            vpc=vpc,
            config=config,
            secrets=data.secrets,
            target_group_arns={name: t.target_group.target_group_arn for name, t in targets.items()},
        )
        cluster = self.eks.cluster
        # Fargate pods get the *cluster* security group (eks-fargate-pod-sg): that is the group to wire.
        cluster_sg = cluster.cluster_security_group
        pods = ec2.Connections(security_groups=[cluster_sg])
        # The TargetGroupBindings register pod IPs; nothing else opens the path ALB -> pods (alb-to-target-sg):
        # every web service's port and health port (all pods share the cluster group).
        ports = {port for web in config.webs for port in (web.port, web.health_port) if port is not None}
        for port in sorted(ports):
            self.load_balancer.connections.allow_to(pods, ec2.Port.tcp(port), f"ALB to EKS pods on {port}")
        # Consumer-side wiring: the rules live in this stack; the data stack does not change (sg-compute-to-rds).
        # All pods share the cluster group: it is admitted when any service that runs here uses the store.
        here = [s for s in config.workloads if s.runs_on("eks")]
        if any(s.uses_database for s in here):
            pods.allow_to_default_port(data.database, "EKS Fargate pods to PostgreSQL")
        if any(s.uses_cache for s in here):
            pods.allow_to_default_port(data.cache, "EKS Fargate pods to Redis")

        for service in config.workloads:
            manifest = self.eks.manifests.get(service.name)
            if manifest is None:
                continue  # a job scheduled on another target
            units = {"web": service.eks.surge_replicas, "worker": service.eks.surge_replicas}.get(service.kind, 1)
            ComputeTarget(
                self,
                "Declaration" if is_default_web(service) else f"Declaration{service.name.title().replace('-', '')}",
                kind="eks",
                service=service,
                security_group=cluster_sg,  # every Fargate pod runs in the cluster security group
                secret_reader=self.eks.secret_reader,
                image_puller=self.eks.pod_execution_role,
                max_units=units,
                log_groups=[self.eks.log_group],
                compute=[manifest],
                load_balancer_group=self.load_balancer.security_group if service.is_web else None,
                gate=self.eks.migration_done if service.kind == "migrate" else None,
            )
        if data.operators is not None:  # make shell: kubectl exec in the app namespace only
            data.operators.allow_eks(self, cluster, namespace=config.eks.namespace)  # type: ignore[arg-type]
        # Per web service: fewer healthy pods in its target group than its minimum; the default keeps the names of
        # a one-web stage, a routed one is <prefix>-eks-<service>-HealthyHostCount.
        for web in config.webs:
            default = is_default_web(web)
            group = targets[web.name].target_group
            add_alarm(
                self,
                "HealthyHostsAlarm" if default else f"HealthyHostsAlarm{pascal(web.name)}",
                name=f"{prefix}-eks-HealthyHostCount" if default else f"{prefix}-eks-{web.name}-HealthyHostCount",
                metric=group.metrics.healthy_host_count(period=Duration.minutes(1), statistic="Minimum"),
                threshold=web.eks.min_replicas,
                comparison=LT,
                topic=data.alarm_topic,
                description=f"fewer than {web.eks.min_replicas} healthy pods in the target group"
                + ("" if default else f" of {web.name}"),
            )
        outputs = {
            "ClusterName": cluster.cluster_name,
            "ComputeSecurityGroupId": cluster_sg.security_group_id,
            "TargetGroupArn": target_group.target_group_arn,
            "LoadBalancerArn": self.load_balancer.load_balancer.load_balancer_arn,
            "LoadBalancerDnsName": self.load_balancer.load_balancer.load_balancer_dns_name,
            "ConsumerRoleArn": self.eks.secret_reader.role_arn,  # External Secrets reads the parameters
            "LogGroupName": self.eks.log_group.log_group_name,
        }
        # A routed web service's target group (k8s/dist's TargetGroupBinding placeholders name these outputs).
        for web in config.webs[1:]:
            outputs[f"TargetGroupArn{pascal(web.name)}"] = targets[web.name].target_group.target_group_arn
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)
        if self.domain is not None and self.domain.zone is not None:  # doctor: domain-misrouted
            CfnOutput(self, "DomainName", value=self.domain.name)
            CfnOutput(self, "CertificateArn", value=self.domain.certificate.certificate_arn)
        self.output_log_groups()  # one group; a pod's streams are fargate-kube.var.log.containers.<pod name>_...
