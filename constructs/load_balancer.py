"""Internet-facing ALB owned by CloudFormation: listener(s), one IP target group per web service on its health
contract, listener rules for the routed ones, access logs, alarms. Shared by the ECS and EKS targets (EKS pods join
their target group through a TargetGroupBinding).

One web service (most stages): the listener forwards everything to its target group, as always. Several: the
listener's default action answers 404 (never an arbitrary service: route-default-missing), one rule per routed
service in priority order, and a catch-all rule for the default service after them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import jsii
from aws_cdk import (
    Duration,
    RemovalPolicy,
    aws_certificatemanager as acm,
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_elasticloadbalancingv2 as elbv2,
    aws_s3 as s3,
    aws_sns as sns,
    aws_wafv2 as wafv2,
)
from constructs import Construct

from config.routes import DEFAULT_PRIORITY
from config.schema import AppConfig, LoadBalancerConfig
from config.services import Service, pascal
from constructs.alarms import GT, add_alarm
from constructs.nag import NO_DOMAIN, acknowledge, skip_checks


@dataclass
class ServiceTargets:
    """A web service's part of the load balancer: its target group, alarms on it, and its listener rule (none for
    the default service of a one-web stage, whose traffic is the listener's default action)."""

    service: Service
    target_group: elbv2.ApplicationTargetGroup
    alarms: list[cw.Alarm] = field(default_factory=list)
    rule: elbv2.ApplicationListenerRule | None = None


@jsii.implements(ec2.IConnectable)
class WebLoadBalancer(Construct):
    """ALB in public subnets in front of IP targets in private subnets.

    Args:
        vpc: the stage VPC.
        config: allowed client CIDRs and the idle timeout (kept below the app's keep-alive by config validation).
        services: the web services, the default one (no route) first; each target group checks its service's
            **liveness** path (never readiness) on its port (or the contract's health port). Empty: no target
            group and a listener that answers 404 unless a rule added elsewhere matches (EB's shared load balancer).
        certificate: with the stage's domain, the certificate (``StageDomain``) of HTTPS on 443, HTTP redirected
            to HTTPS; without one, plain HTTP on 80 (refused in staging and prod by config validation).
        alarm_topic / alarm_prefix: action and name prefix of the 5xx, unhealthy-host and latency alarms.
        prod: keep the access-log bucket when the stack is deleted and protect the ALB from deletion.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        config: LoadBalancerConfig,
        services: Sequence[Service],
        certificate: acm.ICertificate | None,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
        prod: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=False, description="ALB: clients in, targets out"
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "Default",
            vpc=vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=self.security_group,
            idle_timeout=Duration.seconds(config.idle_timeout_seconds),
            drop_invalid_header_fields=True,
            deletion_protection=prod,  # a deleted ALB comes back with a new DNS name for every client
        )
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # ELB log delivery does not support SSE-KMS
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(90), noncurrent_version_expiration=Duration.days(30))
            ],
            removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
            auto_delete_objects=not prod,
        )
        self.load_balancer.log_access_logs(self.access_logs, "alb")
        acknowledge(
            self.access_logs,
            "S1",
            "this bucket receives ALB access logs; logging it again would recurse",
            checkov=["CKV_AWS_18"],
        )

        # No services: a load balancer whose listener rules others add (Elastic Beanstalk environments on a shared
        # load balancer, constructs/shared_load_balancer.py): no target group, and the listener answers 404.
        default: Service | None = services[0] if services else None
        routed = list(services[1:])
        assert default is None or (default.route is None and all(s.route is not None for s in routed)), (
            "the default web service first"
        )
        # The default service's target group and alarms keep the ids they had when a stage had one web service.
        self.targets: dict[str, ServiceTargets] = {
            service.name: ServiceTargets(
                service, self._target_group(vpc, service, "" if index == 0 else pascal(service.name))
            )
            for index, service in enumerate(services)
        }
        if default is not None:
            self.target_group = self.targets[default.name].target_group
        # Several web services: requests no route takes answer 404 rather than reach an arbitrary service.
        not_routed = elbv2.ListenerAction.fixed_response(
            404, content_type="text/plain", message_body="no service of this stage serves this request"
        )
        forward = (
            {"default_target_groups": [self.target_group]}
            if default is not None and not routed
            else {"default_action": not_routed}
        )
        peers = [ec2.Peer.ipv4(cidr) for cidr in config.allowed_cidrs]
        if certificate is not None:
            self.listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                open=False,
                **forward,
            )
            self.load_balancer.add_redirect(source_port=80, target_port=443, open=False)
            ports: tuple[int, ...] = (80, 443)
            http = "port 80 only answers with a redirect to HTTPS on 443"
        else:
            self.listener = self.load_balancer.add_listener("Http", port=80, open=False, **forward)
            acknowledge(self.load_balancer, "ELB2", "access logs are on; nag cannot see the attribute")
            ports = (80,)
            http = NO_DOMAIN
            skip_checks(self.listener, ["CKV_AWS_2", "CKV_AWS_103"], NO_DOMAIN)
        for peer in peers:
            for port in ports:
                self.security_group.add_ingress_rule(peer, ec2.Port.tcp(port), f"clients on {port}")
        if "0.0.0.0/0" in config.allowed_cidrs:
            acknowledge(self.security_group, "EC23", "a public web service: clients come from the internet")
            skip_checks(self.security_group, ["CKV_AWS_260"], http)
        if routed:
            for service in services:
                self._add_rule(self.targets[service.name])
        self.alarms = self._add_alarms(alarm_topic, alarm_prefix)
        if config.waf is not None:
            self.web_acl = self._add_waf(config.waf.managed_rules, alarm_prefix)

    def _target_group(self, vpc: ec2.IVpc, service: Service, suffix: str) -> elbv2.ApplicationTargetGroup:
        """An IP target group on ``service``'s port that checks its health contract's liveness path."""
        health = service.health
        assert health is not None and service.port is not None, "only web services have a target group"
        return elbv2.ApplicationTargetGroup(
            self,
            f"Targets{suffix}",
            vpc=vpc,
            port=service.port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path=health.liveness_path,
                port=str(service.health_port),
                healthy_http_codes=health.matcher,
                interval=Duration.seconds(health.interval_seconds),
                timeout=Duration.seconds(health.timeout_seconds),
                healthy_threshold_count=health.healthy_threshold,
                unhealthy_threshold_count=health.unhealthy_threshold,
            ),
        )

    def _add_rule(self, targets: ServiceTargets) -> None:
        """The listener rule of a routed service; the default service's is a catch-all after every other."""
        route = targets.service.route
        conditions = (
            [elbv2.ListenerCondition.path_patterns(["/*"])]
            if route is None
            else [
                *([elbv2.ListenerCondition.path_patterns(list(route.paths))] if route.paths else []),
                *([elbv2.ListenerCondition.host_headers(list(route.hosts))] if route.hosts else []),
            ]
        )
        targets.rule = elbv2.ApplicationListenerRule(
            self,
            f"Route{pascal(targets.service.name)}",
            listener=self.listener,
            priority=route.priority if route is not None else DEFAULT_PRIORITY,
            conditions=conditions,
            action=elbv2.ListenerAction.forward([targets.target_group]),
        )

    def _add_waf(self, rule_groups: list[str], prefix: str) -> wafv2.CfnWebACL:
        """A regional web ACL with the AWS managed rule groups (in order), associated with this ALB."""

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"{prefix}-waf"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name=group,
                    priority=index,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name=group
                        )
                    ),
                    visibility_config=visibility(f"{prefix}-{group}"),
                )
                for index, group in enumerate(rule_groups)
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=self.load_balancer.load_balancer_arn, web_acl_arn=acl.attr_arn
        )
        return acl

    @classmethod
    def for_stage(
        cls,
        scope: Construct,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        alarm_topic: sns.ITopic,
        target: str,
        certificate: acm.ICertificate | None,
    ) -> WebLoadBalancer:
        """The stage's ALB for ``target`` (``ecs``/``eks``), child ``LoadBalancer`` of ``scope``: every setting from
        the stage file, HTTPS with ``certificate`` (the target's ``StageDomain``), alarms named
        ``<app>-<stage>-<target>-alb-<metric>``, access logs kept in prod."""
        return cls(
            scope,
            "LoadBalancer",
            vpc=vpc,
            config=config.load_balancer,
            services=config.webs,
            certificate=certificate,
            alarm_topic=alarm_topic,
            alarm_prefix=f"{config.app}-{config.stage}-{target}",
            prod=config.stage == "prod",
        )

    @property
    def connections(self) -> ec2.Connections:
        return self.load_balancer.connections

    def _add_alarms(self, topic: sns.ITopic, prefix: str) -> list[cw.Alarm]:
        """The load balancer's 5xx alarm, and per web service 5xx, unhealthy-host and p99-latency alarms on its
        target group (``ServiceTargets.alarms``): ``<prefix>-alb-<metric>`` for the default service (the names of
        a one-web stage), ``<prefix>-<service>-<metric>`` for a routed one. Returns them all."""
        five = Duration.minutes(5)
        elb5xx = self.load_balancer.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=five, statistic="Sum")
        alarms = [
            add_alarm(
                self,
                "Elb5xxAlarm",
                name=f"{prefix}-alb-HTTPCode_ELB_5XX_Count",
                metric=elb5xx,
                threshold=10,
                comparison=GT,
                topic=topic,
                description="load balancer 5xx responses",
            )
        ]
        for index, targets in enumerate(self.targets.values()):
            suffix, name_prefix = (
                ("", f"{prefix}-alb")
                if index == 0
                else (pascal(targets.service.name), f"{prefix}-{targets.service.name}")
            )
            who = "" if index == 0 else f" of {targets.service.name}"
            tg_metrics = targets.target_group.metrics
            specs: list[tuple[str, str, cw.IMetric, float, str]] = [
                (
                    "Target5xx",
                    "HTTPCode_Target_5XX_Count",
                    tg_metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=five, statistic="Sum"),
                    10,
                    f"app 5xx responses{who}",
                ),
                (
                    "UnhealthyHosts",
                    "UnHealthyHostCount",
                    tg_metrics.unhealthy_host_count(period=Duration.minutes(1), statistic="Maximum"),
                    0,
                    f"a target{who} fails the liveness check",
                ),
                (
                    "LatencyP99",
                    "TargetResponseTime",
                    tg_metrics.target_response_time(period=five, statistic="p99"),
                    2,
                    f"p99 response time{who} above 2 s",
                ),
            ]
            targets.alarms = [
                add_alarm(
                    self,
                    f"{construct_id}Alarm{suffix}",
                    name=f"{name_prefix}-{metric_name}",
                    metric=metric,
                    threshold=threshold,
                    comparison=GT,
                    topic=topic,
                    description=description,
                )
                for construct_id, metric_name, metric, threshold, description in specs
            ]
            alarms += targets.alarms
        return alarms
