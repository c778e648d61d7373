"""EcsStack: the stage's services on ECS Fargate (web behind its own ALB, workers, jobs, migration step), wired to
the data stack from this side."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, aws_ec2 as ec2, aws_ecs as ecs
from constructs import Construct

from config.schema import AppConfig
from config.services import pascal
from constructs.compute_target import ComputeTarget
from constructs.fargate_service import FargateService
from constructs.fargate_workloads import wire_to_data
from constructs.load_balancer import WebLoadBalancer
from constructs.secret_rollout import SecretRollout
from constructs.service_calls import allow_calls, register_called
from constructs.stage_domain import StageDomain
from stacks.data import DataStack
from stacks.stage_stack import StageStack
from stacks.workloads import stage_workloads

# The cluster's logical ID from when it belonged to the web service: changing it would replace every service.
CLUSTER_LOGICAL_ID = "ServiceCluster572F72F1"


class EcsStack(StageStack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, vpc: ec2.IVpc, data: DataStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        prefix = f"{config.app}-{config.stage}"
        operators = data.operators
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            container_insights_v2=ecs.ContainerInsights.ENHANCED,
            execute_command_configuration=operators.cluster_exec_configuration(self) if operators else None,
        )
        self.cluster.node.default_child.override_logical_id(CLUSTER_LOGICAL_ID)  # type: ignore[union-attr]
        # The name this target answers and its certificate; with a hosted zone, its own certificate and record.
        self.domain = StageDomain(self, "Domain", config=config, target="ecs") if config.domain else None
        self.load_balancer = WebLoadBalancer.for_stage(
            self,
            config=config,
            vpc=vpc,
            alarm_topic=data.alarm_topic,
            target="ecs",
            certificate=self.domain.certificate if self.domain else None,
        )
        if self.domain is not None:
            self.domain.alias_to(self.load_balancer.load_balancer)
        # One Fargate service per web service; the default one keeps the ids of a one-web stage.
        self.web_services: dict[str, FargateService] = {}
        declarations: list[ComputeTarget] = []
        for web in config.webs:
            suffix = "" if web.route is None else pascal(web.name)
            service = FargateService(
                self,
                f"Service{suffix}",
                cluster=self.cluster,
                config=config,
                service=web,
                secrets=data.secrets,
                load_balancer=self.load_balancer,
                alarm_topic=data.alarm_topic,
                alarm_prefix=prefix,
            )
            wire_to_data(service, web, database=data.database, cache=data.cache, where="ECS")
            role = service.task_definition.obtain_execution_role()
            declaration = ComputeTarget(
                self,
                f"Declaration{suffix}",
                kind="ecs",
                service=web,
                security_group=service.security_group,
                secret_reader=role,
                image_puller=role,
                max_units=web.ecs.surge_tasks,
                log_groups=[service.log_group],
                compute=[service.task_definition],
                load_balancer_group=self.load_balancer.security_group,
            )
            declarations.append(declaration)
            self.web_services[web.name] = service
        self.service = self.web_services[config.web.name]
        role = self.service.task_definition.obtain_execution_role()
        self.workloads = stage_workloads(
            self, kind="ecs", cluster=self.cluster, config=config, data=data, alarm_prefix=prefix
        )
        for service in self.web_services.values():
            self.workloads.protect(service.service)  # the new version takes traffic only after migrating
        # Service-to-service calls: each called web service by name in a private namespace, rules from the callers.
        register_called(self, config, vpc, {n: s.service for n, s in self.web_services.items()})
        allow_calls([*declarations, *self.workloads.targets], config)
        services = {**{n: s.service for n, s in self.web_services.items()}, **self.workloads.services}
        SecretRollout(
            self,
            "SecretRollout",
            config=config,
            ecs_cluster=self.cluster.cluster_name,
            ecs_services={name: (s.service_arn, s.service_name) for name, s in services.items()},
            alarm_topic=data.alarm_topic,
            alarm_prefix=prefix,
        )

        if operators is not None:
            operators.allow_ecs_exec(self, self.cluster)

        webs = list(self.web_services.values())
        groups = [*(w.security_group for w in webs), *(t.security_group for t in self.workloads.targets)]
        outputs = {
            "ComputeSecurityGroupId": self.service.security_group.security_group_id,
            "ComputeSecurityGroupIds": Fn.join(",", [g.security_group_id for g in groups]),
            "LoadBalancerArn": self.load_balancer.load_balancer.load_balancer_arn,
            "LoadBalancerDnsName": self.load_balancer.load_balancer.load_balancer_dns_name,
            "TargetGroupArn": self.load_balancer.target_group.target_group_arn,
            "LogGroupName": self.service.log_group.log_group_name,
            "ConsumerRoleArn": role.role_arn,
            "ClusterName": self.cluster.cluster_name,
            "ServiceName": self.service.service.service_name,
        }
        if len(self.load_balancer.targets) > 1:  # doctor: each web service's target group
            groups_by_service = {n: t.target_group.target_group_arn for n, t in self.load_balancer.targets.items()}
            outputs["TargetGroupArns"] = self.to_json_string(groups_by_service)
        if operators is not None:  # make shell: {service: ECS service name}
            outputs["ServiceNames"] = self.to_json_string({n: s.service_name for n, s in services.items()})
        if self.domain is not None and self.domain.zone is not None:  # doctor: domain-misrouted
            outputs["DomainName"] = self.domain.name
            outputs["CertificateArn"] = self.domain.certificate.certificate_arn
        if self.workloads.migration is not None:
            outputs["MigrationTaskDefinitionArn"] = self.workloads.migration.task_definition.task_definition_arn
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)
        self.output_log_groups()
