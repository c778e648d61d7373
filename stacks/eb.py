"""EbStack: the web services on Elastic Beanstalk (Docker on AL2023); workers, jobs and the migration step as
Fargate tasks next to them; everything wired to the data stack from this side.

One web service: one environment with its EB-managed ALB. Several: one environment per web service in the same
application, all on one stack-owned ALB (EB's shared load balancer), each routed by its own listener rule.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, aws_ec2 as ec2, aws_ecs as ecs
from constructs import Construct

from config.schema import AppConfig
from config.services import pascal
from constructs.beanstalk_environment import BeanstalkEnvironment, SharedLoadBalancer
from constructs.compute_target import ComputeTarget
from constructs.fargate_workloads import wire_to_data
from constructs.load_balancer import WebLoadBalancer
from constructs.secret_rollout import SecretRollout
from constructs.service_calls import allow_calls
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
        eb = config.eb
        # The name this target answers and its certificate; with a hosted zone, its own certificate and CNAME.
        self.domain = StageDomain(self, "Domain", config=config, target="eb") if config.domain else None
        shared = self._shared_load_balancer(config, vpc, data) if len(config.webs) > 1 else None
        common: dict[str, Any] = {
            "vpc": vpc,
            "config": config,
            "secrets": data.secrets,
            "alarm_topic": data.alarm_topic,
            "alarm_prefix": prefix,
            "certificate_arn": self.domain.certificate.certificate_arn if self.domain else None,
            "shared": shared,
        }
        # The default web service keeps the ids of a one-web stage; the routed ones share its application.
        self.beanstalk = BeanstalkEnvironment(self, "Beanstalk", **common)
        self.environments: dict[str, BeanstalkEnvironment] = {web.name: self.beanstalk}
        for service in config.webs[1:]:
            self.environments[service.name] = BeanstalkEnvironment(
                self,
                f"Beanstalk{pascal(service.name)}",
                **common,
                service=service,
                application=self.beanstalk.application,
                service_role=self.beanstalk.service_role,
            )
            # EB maps each environment's rule priorities onto the shared listener as it creates them: the default
            # service's catch-all (priority 1000) is created after every routed rule.
            self.beanstalk.environment.node.add_dependency(self.environments[service.name].environment)
        if self.domain is not None:
            endpoint = self.shared_alb.load_balancer.load_balancer_dns_name if shared else None
            self.domain.cname_to(endpoint or self.beanstalk.environment.attr_endpoint_url)
        groups: list[ec2.ISecurityGroup] = []
        declarations: list[ComputeTarget] = []
        for name, env in self.environments.items():
            service, security_group, role = env.service, env.security_group, env.instance_role
            default = env is self.beanstalk
            wire_to_data(
                security_group,
                service,
                database=data.database,
                cache=data.cache,
                where="EB instances" if default else f"EB instances of {name}",
            )
            if data.operators is not None:  # make shell: Session Manager to these instances, logged with the document
                data.operators.allow_instances(
                    self if default else env,
                    config=config,
                    environment_name=env.environment_name,
                    instance_role=role,
                )
            declaration = ComputeTarget(
                self,
                "Declaration" if default else f"Declaration{pascal(name)}",
                kind="eb",
                service=service,
                security_group=security_group,
                secret_reader=role,
                image_puller=role,
                max_units=eb.surge_instances,
                # EB creates and names its log groups (/aws/elasticbeanstalk/<env>/...); logs-missing checks the
                # environment's StreamLogs / RetentionInDays options instead.
                log_groups=[],
                compute=[env.environment],
                # The ALB talks to EB's nginx on port 80, not to the container port alb-to-target-sg checks; the
                # instance group admits the ALB group on 80 in BeanstalkEnvironment.
                load_balancer_group=None,
            )
            groups.append(security_group)
            declarations.append(declaration)
        security_group, role = self.beanstalk.security_group, self.beanstalk.instance_role
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
        if shared is not None:  # {web service: EB environment name}, and where clients connect
            outputs["EnvironmentNames"] = self.to_json_string(
                {name: env.environment_name for name, env in self.environments.items()}
            )
            outputs["LoadBalancerDnsName"] = self.shared_alb.load_balancer.load_balancer_dns_name
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
                self,
                kind="eb",
                cluster=self.cluster,
                config=config,
                data=data,
                alarm_prefix=f"{prefix}-eb",
                load_balancer_host=shared.host if shared else self.beanstalk.environment.attr_endpoint_url,
            )
            # Every environment serves a new version only after migrating.
            self.workloads.protect(*(env.environment for env in self.environments.values()))
            groups += [t.security_group for t in self.workloads.targets]
            declarations += self.workloads.targets
            outputs["TaskClusterName"] = cluster_name = self.cluster.cluster_name
            workers = self.workloads.services
            if data.operators is not None:  # make shell: {worker: ECS service name} in the task cluster
                outputs["ServiceNames"] = self.to_json_string({n: s.service_name for n, s in workers.items()})
        allow_calls(declarations, config)  # the callers' way out to the load balancer (config/calls.py)
        SecretRollout(
            self,
            "SecretRollout",
            config=config,
            ecs_cluster=cluster_name,
            ecs_services={name: (s.service_arn, s.service_name) for name, s in workers.items()},
            eb_environments=list(self.environments.values()),
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
        self.output_log_groups(
            {
                name: f"/aws/elasticbeanstalk/{env.environment_name}/{container_log}"
                for name, env in self.environments.items()
            }
        )

    def _shared_load_balancer(self, config: AppConfig, vpc: ec2.IVpc, data: DataStack) -> SharedLoadBalancer:
        """The stage's ALB the environments share: the ECS/EKS one (``WebLoadBalancer``: internet-facing, access
        logs, invalid headers dropped, HTTPS with the recommended TLS policy and HTTP redirected with a domain)
        without target groups: EB creates each environment's process and rules; what none matches answers 404."""
        self.shared_alb = WebLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            config=config.load_balancer,
            services=(),
            certificate=self.domain.certificate if self.domain else None,
            alarm_topic=data.alarm_topic,
            alarm_prefix=f"{config.app}-{config.stage}-eb",
            prod=config.stage == "prod",
        )
        alb = self.shared_alb.load_balancer
        return SharedLoadBalancer(
            arn=alb.load_balancer_arn,
            security_group=self.shared_alb.security_group,
            https=self.domain is not None,
            host=config.domain_name("eb") or alb.load_balancer_dns_name,
        )
