"""EbStack: the web service on Elastic Beanstalk (Docker on AL2023); workers, jobs and the migration step as
Fargate tasks next to it; everything wired to the data stack from this side."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, aws_ec2 as ec2, aws_ecs as ecs
from constructs import Construct

from config.schema import AppConfig
from constructs.beanstalk_environment import BeanstalkEnvironment
from constructs.compute_target import ComputeTarget
from constructs.fargate_workloads import wire_to_data
from constructs.secret_rollout import SecretRollout
from constructs.stage_domain import StageDomain
from stacks.data import DataStack
from stacks.stage_stack import StageStack
from stacks.workloads import stage_workloads


class EbStack(StageStack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, vpc: ec2.IVpc, data: DataStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        prefix = f"{config.app}-{config.stage}"
        web = config.web
        # The name this target answers and its certificate; with a hosted zone, its own certificate and CNAME.
        self.domain = StageDomain(self, "Domain", config=config, target="eb") if config.domain else None
        self.beanstalk = BeanstalkEnvironment(
            self,
            "Beanstalk",
            vpc=vpc,
            config=config,
            secrets=data.secrets,
            alarm_topic=data.alarm_topic,
            alarm_prefix=prefix,
            certificate_arn=self.domain.certificate.certificate_arn if self.domain else None,
        )
        if self.domain is not None:
            self.domain.cname_to(self.beanstalk.environment.attr_endpoint_url)
        security_group = self.beanstalk.security_group
        wire_to_data(security_group, web, database=data.database, cache=data.cache, where="EB instances")

        role = self.beanstalk.instance_role
        eb = config.eb
        if data.operators is not None:  # make shell: Session Manager to these instances, logged with the document
            data.operators.allow_instances(
                self, config=config, environment_name=self.beanstalk.environment_name, instance_role=role
            )
        ComputeTarget(
            self,
            "Declaration",
            kind="eb",
            service=web,
            security_group=security_group,
            secret_reader=role,
            image_puller=role,
            max_units=eb.surge_instances,
            # EB creates and names its log groups (/aws/elasticbeanstalk/<env>/...); logs-missing checks the
            # environment's StreamLogs / RetentionInDays options instead.
            log_groups=[],
            compute=[self.beanstalk.environment],
            # The ALB talks to EB's nginx on port 80, not to the container port alb-to-target-sg checks; the
            # instance group admits the ALB group on 80 in BeanstalkEnvironment.
            load_balancer_group=None,
        )
        outputs = {
            "ComputeSecurityGroupId": security_group.security_group_id,
            "LoadBalancerSecurityGroupId": self.beanstalk.load_balancer_group.security_group_id,
            "ConsumerRoleArn": role.role_arn,
            "EnvironmentName": self.beanstalk.environment_name,
            "EnvironmentUrl": self.beanstalk.environment.attr_endpoint_url,
            "ApplicationName": self.beanstalk.application.ref,
            "ApplicationVersion": self.beanstalk.version.ref,
            "SolutionStackName": eb.solution_stack,
        }
        groups: list[ec2.ISecurityGroup] = [security_group]
        cluster_name: str | None = None
        workers: dict[str, ecs.FargateService] = {}
        if any(not s.is_web and s.runs_on("eb") for s in config.workloads):
            # Workers, jobs and the migration step run as Fargate tasks (README: "Elastic Beanstalk target").
            self.cluster = ecs.Cluster(
                self,
                "Tasks",
                vpc=vpc,
                container_insights_v2=ecs.ContainerInsights.ENHANCED,
                execute_command_configuration=data.operators.cluster_exec_configuration(self)
                if data.operators
                else None,
            )
            if data.operators is not None:
                data.operators.allow_ecs_exec(self, self.cluster)
            self.workloads = stage_workloads(
                self, kind="eb", cluster=self.cluster, config=config, data=data, alarm_prefix=f"{prefix}-eb"
            )
            self.workloads.protect(self.beanstalk.environment)  # the new version serves only after migrating
            groups += [t.security_group for t in self.workloads.targets]
            outputs["TaskClusterName"] = cluster_name = self.cluster.cluster_name
            workers = self.workloads.services
            if data.operators is not None:  # make shell: {worker: ECS service name} in the task cluster
                outputs["ServiceNames"] = self.to_json_string({n: s.service_name for n, s in workers.items()})
        SecretRollout(
            self,
            "SecretRollout",
            config=config,
            ecs_cluster=cluster_name,
            ecs_services={name: (s.service_arn, s.service_name) for name, s in workers.items()},
            eb_environment=self.beanstalk,
            alarm_topic=data.alarm_topic,
            alarm_prefix=f"{prefix}-eb",
        )
        if self.domain is not None and self.domain.zone is not None:  # doctor: domain-misrouted
            outputs["DomainName"] = self.domain.name
            outputs["CertificateArn"] = self.domain.certificate.certificate_arn
        outputs["ComputeSecurityGroupIds"] = Fn.join(",", [g.security_group_id for g in groups])
        for key, value in outputs.items():
            CfnOutput(self, key, value=value)
        # EB names the group of the web container's output itself (StreamLogs).
        container_log = "var/log/eb-docker/containers/eb-current-app/stdouterr.log"
        eb_web = f"/aws/elasticbeanstalk/{self.beanstalk.environment_name}/{container_log}"
        self.output_log_groups({web.name: eb_web})
