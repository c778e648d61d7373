"""The app on Elastic Beanstalk (Docker on AL2023) behind an ALB, with every option built from typed props.

CDK has no L2 for Elastic Beanstalk, and EB option settings are free strings that EB only checks at deploy time
(``Invalid option specification: HealthCheckURL``). Here options are ``Option`` values built by this construct
from the stage config and the resources it creates, and every (namespace, option) pair is checked against
``ALLOWED_OPTIONS`` at synth (eb-healthcheckurl-invalid).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import (
    ArnFormat,
    Duration,
    Fn,
    Stack,
    aws_cloudwatch as cw,
    aws_ec2 as ec2,
    aws_elasticbeanstalk as elasticbeanstalk,
    aws_iam as iam,
    aws_s3_assets as s3_assets,
    aws_sns as sns,
)
from constructs import Construct, IValidation

from config.schema import AppConfig
from config.services import Service
from constructs.alarms import GT, GTE, add_alarm
from constructs.app_permissions import grant_permissions
from constructs.app_secrets import AppSecrets
from constructs.compute_target import runtime_environment
from constructs.image_repository import image_repository
from constructs.nag import NO_DOMAIN, acknowledge, nag_resource, skip_checks
from constructs.service_task import add_declared_egress

VPC = "aws:ec2:vpc"
LAUNCH = "aws:autoscaling:launchconfiguration"
ASG = "aws:autoscaling:asg"
ROLLING_UPDATE = "aws:autoscaling:updatepolicy:rollingupdate"
ENVIRONMENT = "aws:elasticbeanstalk:environment"
PROCESS = "aws:elasticbeanstalk:environment:process:default"
HEALTH_REPORTING = "aws:elasticbeanstalk:healthreporting:system"
COMMAND = "aws:elasticbeanstalk:command"
MANAGED_ACTIONS = "aws:elasticbeanstalk:managedactions"
PLATFORM_UPDATE = "aws:elasticbeanstalk:managedactions:platformupdate"
LOGS = "aws:elasticbeanstalk:cloudwatch:logs"
HEALTH_LOGS = "aws:elasticbeanstalk:cloudwatch:logs:health"
HOST_MANAGER = "aws:elasticbeanstalk:hostmanager"
LISTENER_DEFAULT = "aws:elbv2:listener:default"
LISTENER_443 = "aws:elbv2:listener:443"
LOAD_BALANCER = "aws:elbv2:loadbalancer"
# One namespace per rule name: aws:elbv2:listenerrule:<rule_name> (command-options-general.md,
# "aws:elbv2:listenerrule:rule_name").
LISTENER_RULE = "aws:elbv2:listenerrule:"
PLAIN_ENV = "aws:elasticbeanstalk:application:environment"
SECRET_ENV = "aws:elasticbeanstalk:application:environmentsecrets"

# The (namespace, option) pairs this project writes. ``None``: any option name (environment variable names).
ALLOWED_OPTIONS: dict[str, frozenset[str] | None] = {
    VPC: frozenset({"VPCId", "Subnets", "ELBSubnets", "AssociatePublicIpAddress", "ELBScheme"}),
    LAUNCH: frozenset({"IamInstanceProfile", "InstanceType", "SecurityGroups", "DisableIMDSv1"}),
    ASG: frozenset({"MinSize", "MaxSize"}),
    ROLLING_UPDATE: frozenset({"RollingUpdateEnabled", "RollingUpdateType"}),
    # LoadBalancerIsShared: "aws:elasticbeanstalk:environment - ... tell Elastic Beanstalk that you'll use a shared
    # load balancer" (doc_source/environments-cfg-alb-shared.md, "Shared Application Load Balancer namespaces"); the
    # option name as the EB CLI writes it (aws/aws-elastic-beanstalk-cli ebcli/resources/strings.py,
    # option_names.LOAD_BALANCER_IS_SHARED, and its compile_shared_lb_options test).
    ENVIRONMENT: frozenset({"EnvironmentType", "LoadBalancerType", "ServiceRole", "LoadBalancerIsShared"}),
    PROCESS: frozenset(
        {
            "HealthCheckPath",
            "MatcherHTTPCode",
            "HealthCheckInterval",
            "HealthCheckTimeout",
            "HealthyThresholdCount",
            "UnhealthyThresholdCount",
            "Port",
            "Protocol",
            "DeregistrationDelay",
        }
    ),
    HEALTH_REPORTING: frozenset({"SystemType", "ConfigDocument", "HealthCheckSuccessThreshold"}),
    COMMAND: frozenset({"DeploymentPolicy", "BatchSizeType", "BatchSize", "Timeout", "IgnoreHealthCheck"}),
    MANAGED_ACTIONS: frozenset({"ManagedActionsEnabled", "PreferredStartTime"}),
    PLATFORM_UPDATE: frozenset({"UpdateLevel"}),
    LOGS: frozenset({"StreamLogs", "DeleteOnTerminate", "RetentionInDays"}),
    HEALTH_LOGS: frozenset({"HealthStreamingEnabled", "DeleteOnTerminate", "RetentionInDays"}),
    HOST_MANAGER: frozenset({"LogPublicationControl"}),
    # Rules: "List of rules to apply to the listener" (doc_source/command-options-general.md,
    # aws:elbv2:listener:default and aws:elbv2:listener:listener_port); on a shared load balancer the rules an
    # environment puts on a listener of it, "default" being EB's own (environments-cfg-alb-shared.md, example
    # alb-shared-admin-rule.config: aws:elbv2:listener:443 Rules default,admin).
    LISTENER_DEFAULT: frozenset({"ListenerEnabled", "Rules"}),
    LISTENER_443: frozenset(
        {"ListenerEnabled", "Protocol", "SSLCertificateArns", "SSLPolicy", "DefaultProcess", "Rules"}
    ),
    # SharedLoadBalancer: the shared ALB's ARN (environments-cfg-alb-shared.md, example
    # application-load-balancer-shared.config); SecurityGroups / ManagedSecurityGroup: command-options-general.md.
    LOAD_BALANCER: frozenset({"SecurityGroups", "ManagedSecurityGroup", "IdleTimeout", "SharedLoadBalancer"}),
    PLAIN_ENV: None,
    SECRET_ENV: None,
}

# aws:elbv2:listenerrule:<rule_name> (command-options-general.md): HostHeaders, PathPatterns (comma-separated, up to
# 128 characters each, wildcards * and ?), Priority (1 to 1000, lower first), Process (default: "default").
LISTENER_RULE_OPTIONS = frozenset({"PathPatterns", "HostHeaders", "Priority", "Process"})
RULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")

HEALTH_CHECK_PATH = f"{PROCESS}/HealthCheckPath"
# Options people copy from guides that are wrong here -> what to write instead.
KNOWN_MISTAKES: dict[str, str] = {
    "HealthCheckURL": HEALTH_CHECK_PATH,
    "Application Healthcheck URL": HEALTH_CHECK_PATH,
    "aws:elb:healthcheck/Target": HEALTH_CHECK_PATH,
    "aws:elb:healthcheck/Interval": f"{PROCESS}/HealthCheckInterval",
    "aws:elb:loadbalancer/SecurityGroups": f"{LOAD_BALANCER}/SecurityGroups",
    "aws:elasticbeanstalk:application/Application Healthcheck URL": HEALTH_CHECK_PATH,
}


@dataclass(frozen=True)
class Option:
    """One EB option setting; ``value`` is a string or a token (Ref, Join ...) that resolves to one."""

    namespace: str
    name: str
    value: str

    def to_cfn(self) -> elasticbeanstalk.CfnEnvironment.OptionSettingProperty:
        return elasticbeanstalk.CfnEnvironment.OptionSettingProperty(
            namespace=self.namespace, option_name=self.name, value=self.value
        )


def allowed_names(namespace: str) -> frozenset[str] | None:
    """The option names allowed in ``namespace`` (``None``: any); ``aws:elbv2:listenerrule:<rule_name>`` is one
    namespace per rule name, each with the same options."""
    if namespace.startswith(LISTENER_RULE) and RULE_NAME.match(namespace.removeprefix(LISTENER_RULE)):
        return LISTENER_RULE_OPTIONS
    return ALLOWED_OPTIONS.get(namespace, frozenset())


# Several environments behind one stack-owned ALB (one per web service, README "Elastic Beanstalk target"). On a
# shared load balancer EB creates, per environment, a default process (its target group) and the listener rules the
# environment lists; it adds the environment's CNAME to each rule as a host-header value ("One condition is reserved
# for the environment subdomain, and you can add up to four conditions") and treats rule priorities as relative
# across the environments sharing it (doc_source/environments-cfg-alb-shared.md). Priority: 1 to 1000
# (command-options-general.md, aws:elbv2:listenerrule:rule_name).
SHARED_RULE_VALUES = 4
SHARED_RULE_MAX_PRIORITY = 1000
CATCH_ALL_PRIORITY = SHARED_RULE_MAX_PRIORITY  # the default service's rule comes after every routed one


@dataclass(frozen=True)
class SharedLoadBalancer:
    """The stack's ALB the environments of a multi-web stage share (``LoadBalancerIsShared``).

    ``arn`` / ``security_group``: the ALB and its group (named in ``aws:elbv2:loadbalancer`` so EB attaches no group
    of its own); ``https``: its listeners are HTTPS on 443 (+ 80 redirecting) rather than HTTP on 80, so the
    environments put their rules on 443; ``host``: the host name clients use for the stage (the eb target's domain
    name, or the ALB's DNS name without a domain): the default service's catch-all rule and path-only routes match it,
    since EB's own ``default`` rule only matches the environment's CNAME.
    """

    arn: str
    security_group: ec2.ISecurityGroup
    https: bool
    host: str


def listener_rule(service: Service, shared: SharedLoadBalancer) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """(paths, hosts, priority) of ``service``'s own rule on the shared ALB: its route, on the stage host when the
    route names no host; the default service's catch-all is the stage host at priority 1000 (after every route)."""
    route = service.route
    if route is None:
        return (), (shared.host,), CATCH_ALL_PRIORITY
    return route.paths, route.hosts or (shared.host,), route.priority


def option_problem(namespace: str, name: str) -> str | None:
    """None when (namespace, name) is on the allow-list, else the valid alternative to suggest."""
    allowed = allowed_names(namespace)
    if allowed is None or name in allowed:
        return None
    alternative = KNOWN_MISTAKES.get(f"{namespace}/{name}") or KNOWN_MISTAKES.get(name)
    if alternative is None:
        known = sorted(f"{ns}/{o}" for ns, names in ALLOWED_OPTIONS.items() if names for o in names if o == name)
        alternative = " or ".join(known) if known else "an option listed in ALLOWED_OPTIONS (add it there, reviewed)"
    return alternative


def invalid_option_messages(path: str, options: Iterable[tuple[str, str]]) -> list[str]:
    """``[eb-healthcheckurl-invalid] ...`` lines for every pair outside the allow-list."""
    return [
        f"[eb-healthcheckurl-invalid] {path}: {namespace}/{name} — not an Elastic Beanstalk option here; use {fix}"
        for namespace, name in options
        if (fix := option_problem(namespace, name)) is not None
    ]


@jsii.implements(IValidation)
class _OptionsValidation:
    def __init__(self, owner: BeanstalkEnvironment) -> None:
        self._owner = owner

    def validate(self) -> list[str]:
        owner = self._owner
        return [
            *invalid_option_messages(owner.environment.node.path, ((o.namespace, o.name) for o in owner.options)),
            *owner.route_problems,
        ]


# Enhanced health publishes these environment metrics to CloudWatch every 60 s (they are alarmed below). No "Rules":
# 5xx always count toward health (EB can only be told to ignore 4xx, "Enhanced health rules"), and 4xx count too.
HEALTH_CONFIG = {
    "Version": 1,
    "CloudWatchMetrics": {"Environment": {"EnvironmentHealth": 60, "ApplicationRequests5xx": 60}, "Instance": {}},
}
# EB's nginx proxy listens on port 80 on every instance and forwards to the container port from Dockerrun.
PROXY_PORT = 80
# aws:elasticbeanstalk:command Timeout: EB accepts 1..3600 seconds (default 600) and adds 240 s of its own.
COMMAND_TIMEOUT_MAX = 3600
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # = elbv2.SslPolicy.RECOMMENDED_TLS, as the ECS ALB uses


# With a domain, port 80 answers with a redirect to HTTPS. EB's option model cannot express a redirect action; the
# environment's own CloudFormation resource for the port-80 listener can be overridden from .ebextensions (AWS's
# sample alb-http-to-https-redirection.config does the same).
HTTPS_REDIRECT = {
    "Resources": {
        "AWSEBV2LoadBalancerListener": {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {
                "LoadBalancerArn": {"Ref": "AWSEBV2LoadBalancer"},
                "Port": 80,
                "Protocol": "HTTP",
                "DefaultActions": [
                    {
                        "Type": "redirect",
                        "RedirectConfig": {
                            "Host": "#{host}",
                            "Path": "/#{path}",
                            "Port": "443",
                            "Protocol": "HTTPS",
                            "Query": "#{query}",
                            "StatusCode": "HTTP_301",
                        },
                    }
                ],
            },
        }
    }
}
REDIRECT_FILE = ".ebextensions/http-to-https.config"


def dockerrun_bundle(image: str, container_port: int, *, https_redirect: bool = False) -> Path:
    """Write ``Dockerrun.aws.json`` (v1, single container) into a content-addressed temp directory, with
    ``.ebextensions/http-to-https.config`` when ``https_redirect`` (a stage with a domain).

    The directory name is the content hash, so the same image + port always yields the same path and the same
    asset hash (a new image tag = a new application version).
    """
    document = {
        "AWSEBDockerrunVersion": "1",
        "Image": {"Name": image, "Update": "true"},
        "Ports": [{"ContainerPort": container_port}],
    }
    files = {"Dockerrun.aws.json": json.dumps(document, indent=2, sort_keys=True) + "\n"}
    if https_redirect:
        files[REDIRECT_FILE] = json.dumps(HTTPS_REDIRECT, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:24]
    directory = Path(tempfile.gettempdir()) / "eb-dockerrun" / digest
    for name, text in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
    return directory


class BeanstalkEnvironment(Construct):
    """EB application, version and load-balanced environment for one web service (the stage's default by default).

    Args:
        vpc: instances in its private-with-egress subnets without public IPs; the ALB in its public subnets.
        config: the stage: image, port, ``eb`` sizing / platform / deployment policy, health contract, settings
            map, log retention, ``load_balancer`` (allowed CIDRs, idle timeout) and ``domain`` (HTTPS).
        secrets: the stage's SecureString parameters; each secret setting is delivered through
            ``environmentsecrets`` and the instance role may read exactly these.
        alarm_topic / alarm_prefix: EnvironmentHealth and ApplicationRequests5xx alarms,
            named ``<alarm_prefix>-eb-<metric>``.
        certificate_arn: the HTTPS listener's certificate (``StageDomain``); defaults to ``domain.certificate_arn``.
        service: the web service it runs (default ``config.web``): its image, port, health contract, settings,
            secrets, permissions and egress. A routed one's alarms are ``<alarm_prefix>-eb-<service>-<metric>``.
        application / service_role: another environment's, to run in the same EB application.
        shared: the stack's ALB to attach to instead of an EB-managed one (several web services), with the
            service's listener rule (``listener_rule``).

    ``self.service`` says which service an environment runs (guards read it: ``Tree.eb_service_of``).

    Ports: the ALB forwards to EB's nginx on ``PROXY_PORT`` (80) on each instance; nginx proxies to the container
    port mapped from Dockerrun ``Ports``. So the default process (and its health check) is on 80, and the instance
    security group admits the ALB group on 80 only; the container port is never opened in a security group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        config: AppConfig,
        secrets: AppSecrets,
        alarm_topic: sns.ITopic,
        alarm_prefix: str,
        certificate_arn: str | None = None,
        service: Service | None = None,
        application: elasticbeanstalk.CfnApplication | None = None,
        service_role: iam.IRole | None = None,
        shared: SharedLoadBalancer | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        eb = config.eb
        self.certificate_arn = certificate_arn
        stack = Stack.of(self)
        web = self.service = service or config.web
        self.shared = shared
        self.route_problems: list[str] = []

        # -- identities ------------------------------------------------------------------------------------
        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="EB instances: pull the image, read the stage's secret parameters, ship logs",
            # Enhanced health reporting (healthd) and EB's log/bundle buckets; no *FullAccess policy.
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AWSElasticBeanstalkWebTier")],
        )
        secrets.grant_read(self.instance_role, secrets.keys(web))  # exactly /<app>/<stage>/<NAME> of the web's secrets
        grant_permissions(self.instance_role, web)  # the web's own AWS permissions
        image_repository(self, web.image)[0].grant_pull(self.instance_role)
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/elasticbeanstalk/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.instance_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[log_groups],
            )
        )
        self.instance_profile = iam.CfnInstanceProfile(self, "InstanceProfile", roles=[self.instance_role.role_name])
        acknowledge(
            self.instance_role,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AWSElasticBeanstalkWebTier]",
            "EB's own instance policy: enhanced health reporting and EB's log buckets, nothing else",
        )
        acknowledge(
            self.instance_role,
            "IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource scope; pulls are scoped to the repository",
        )
        acknowledge(
            self.instance_role,
            f"IAM5[Resource::{nag_resource(stack, log_groups)}]",
            "EB names its log groups after the generated environment name; scoped to EB's log-group prefix",
        )

        self.service_role = service_role or self._service_role()

        # -- network -----------------------------------------------------------------------------------------
        # Instances: the ALB in on the proxy port; HTTPS out to AWS APIs; DB/cache rules come from the stack.
        self.security_group = ec2.SecurityGroup(
            self, "InstanceSecurityGroup", vpc=vpc, allow_all_outbound=False, description="EB instances"
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs and ECR over HTTPS")
        add_declared_egress(self.security_group, web)  # the service's egress: (egress-blocked)
        if shared is not None:  # the stack's ALB: its group admits the clients (WebLoadBalancer)
            self.load_balancer_group: ec2.ISecurityGroup = shared.security_group
            shared.security_group.connections.allow_to(
                self.security_group, ec2.Port.tcp(PROXY_PORT), "ALB to EB's nginx proxy"
            )
        else:
            self._own_load_balancer_group(config, vpc)

        # -- application + version ---------------------------------------------------------------------------
        self.application = application or self._application(config)
        https_redirect = config.domain is not None and shared is None
        self.bundle = s3_assets.Asset(
            self,
            "SourceBundle",
            # On a shared ALB the stack's listeners redirect HTTP; EB's listener resource does not exist there.
            path=str(dockerrun_bundle(web.image, web.port or config.container_port, https_redirect=https_redirect)),
        )

        self.version = elasticbeanstalk.CfnApplicationVersion(
            self,
            "Version",
            application_name=self.application.ref,
            description=web.image,
            source_bundle=elasticbeanstalk.CfnApplicationVersion.SourceBundleProperty(
                s3_bucket=self.bundle.s3_bucket_name, s3_key=self.bundle.s3_object_key
            ),
        )

        # -- environment -------------------------------------------------------------------------------------
        self.options: list[Option] = self._options(config, vpc, secrets)
        # No EnvironmentName: CloudFormation generates one, so a replacement never clashes (eb-env-exists).
        self.environment = elasticbeanstalk.CfnEnvironment(
            self,
            "Environment",
            application_name=self.application.ref,
            description=f"{config.app} {config.stage} ({web.image})",
            solution_stack_name=eb.solution_stack,
            version_label=self.version.ref,
            option_settings=[o.to_cfn() for o in self.options],
        )
        self.node.add_validation(_OptionsValidation(self))
        self.alarms = self._add_alarms(alarm_topic, alarm_prefix)

    def _own_load_balancer_group(self, config: AppConfig, vpc: ec2.IVpc) -> None:
        """Our own ALB group for EB's dedicated ALB, named in aws:elbv2:loadbalancer so EB neither creates one nor
        opens it to the world."""
        self.load_balancer_group = ec2.SecurityGroup(
            self, "LoadBalancerSecurityGroup", vpc=vpc, allow_all_outbound=False, description="EB ALB"
        )
        self.load_balancer_group.connections.allow_to(
            self.security_group, ec2.Port.tcp(PROXY_PORT), "ALB to EB's nginx proxy"
        )
        client_ports = (80, 443) if config.domain else (80,)  # with a domain, 80 only redirects (HTTPS_REDIRECT)
        for cidr in config.load_balancer.allowed_cidrs:
            for port in client_ports:
                self.load_balancer_group.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(port), f"clients {port}")
        if "0.0.0.0/0" in config.load_balancer.allowed_cidrs:
            acknowledge(self.load_balancer_group, "EC23", "a public web service: clients come from the internet")
            skip_checks(
                self.load_balancer_group,
                ["CKV_AWS_260"],
                "port 80 only answers with a redirect to HTTPS on 443 (the bundle's .ebextensions)"
                if config.domain
                else NO_DOMAIN,
            )

    def _application(self, config: AppConfig) -> elasticbeanstalk.CfnApplication:
        return elasticbeanstalk.CfnApplication(
            self,
            "Application",
            description=f"{config.app} {config.stage}",
            resource_lifecycle_config=elasticbeanstalk.CfnApplication.ApplicationResourceLifecycleConfigProperty(
                service_role=self.service_role.role_arn,
                version_lifecycle_config=elasticbeanstalk.CfnApplication.ApplicationVersionLifecycleConfigProperty(
                    max_count_rule=elasticbeanstalk.CfnApplication.MaxCountRuleProperty(
                        enabled=True, max_count=50, delete_source_from_s3=False
                    )
                ),
            ),
        )

    def _service_role(self) -> iam.Role:
        role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("elasticbeanstalk.amazonaws.com"),
            description="EB service: enhanced health and managed platform updates",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSElasticBeanstalkEnhancedHealth"),
                iam.ManagedPolicy.from_aws_managed_policy_name("AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy"),
            ],
        )
        for policy in (
            "service-role/AWSElasticBeanstalkEnhancedHealth",
            "AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy",
        ):
            acknowledge(
                role,
                f"IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]",
                "the EB service role's documented managed policies (enhanced health, managed updates)",
            )
        return role

    def add_option(self, option: Option) -> None:
        """Add one more option; it is checked against ``ALLOWED_OPTIONS`` at synth like the built ones."""
        self.options.append(option)
        self.environment.option_settings = [o.to_cfn() for o in self.options]

    @property
    def _who(self) -> str:
        return "" if self.service.route is None else f" of {self.service.name}"

    @property
    def environment_name(self) -> str:
        return self.environment.ref

    def _options(self, config: AppConfig, vpc: ec2.IVpc, secrets: AppSecrets) -> list[Option]:
        eb, web, shared = config.eb, self.service, self.shared
        health = web.health or config.health  # the service's own contract (services.<name>.health)
        private = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids
        public = vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC).subnet_ids
        options = [
            Option(VPC, "VPCId", vpc.vpc_id),
            Option(VPC, "Subnets", Fn.join(",", private)),
            Option(VPC, "ELBSubnets", Fn.join(",", public)),
            Option(VPC, "AssociatePublicIpAddress", "false"),
            Option(VPC, "ELBScheme", "public"),
            Option(LAUNCH, "IamInstanceProfile", self.instance_profile.ref),
            Option(LAUNCH, "InstanceType", eb.instance_type),
            Option(LAUNCH, "SecurityGroups", self.security_group.security_group_id),
            Option(LAUNCH, "DisableIMDSv1", "true"),
            Option(ASG, "MinSize", str(eb.min_instances)),
            Option(ASG, "MaxSize", str(eb.max_instances)),
            Option(ENVIRONMENT, "EnvironmentType", "LoadBalanced"),
            Option(ENVIRONMENT, "LoadBalancerType", "application"),
            Option(ENVIRONMENT, "ServiceRole", self.service_role.role_arn),
            Option(PROCESS, "Port", str(PROXY_PORT)),
            Option(PROCESS, "Protocol", "HTTP"),
            Option(PROCESS, "HealthCheckPath", health.liveness_path),  # shallow liveness (deep-health-check)
            Option(PROCESS, "MatcherHTTPCode", health.matcher),
            Option(PROCESS, "HealthCheckInterval", str(health.interval_seconds)),
            Option(PROCESS, "HealthCheckTimeout", str(health.timeout_seconds)),
            Option(PROCESS, "HealthyThresholdCount", str(health.healthy_threshold)),
            Option(PROCESS, "UnhealthyThresholdCount", str(health.unhealthy_threshold)),
            Option(PROCESS, "DeregistrationDelay", "30"),
            Option(HEALTH_REPORTING, "SystemType", "enhanced"),
            Option(HEALTH_REPORTING, "ConfigDocument", json.dumps(HEALTH_CONFIG, separators=(",", ":"))),
            # A deploy's instances count as healthy only at Ok (EB's default, explicit: manual-rollback). The option
            # reference lists it here; the deployment-policies guide's example under aws:elasticbeanstalk:command is
            # refused by the allow-list, which points here.
            Option(HEALTH_REPORTING, "HealthCheckSuccessThreshold", "Ok"),
            # Both policies keep full capacity during a deploy (no "AllAtOnce" outage, no capacity dip).
            Option(COMMAND, "DeploymentPolicy", eb.deployment_policy),
            Option(COMMAND, "BatchSizeType", "Fixed"),
            Option(COMMAND, "BatchSize", "1"),
            # The health gate (manual-rollback): a batch that is not Ok within Timeout fails the deploy; with
            # Immutable the new instances are terminated and the old ones keep serving.
            Option(COMMAND, "IgnoreHealthCheck", "false"),
            Option(COMMAND, "Timeout", str(min(COMMAND_TIMEOUT_MAX, health.deploy_deadline_seconds))),
            # Configuration changes that replace instances follow the same discipline.
            Option(ROLLING_UPDATE, "RollingUpdateEnabled", "true"),
            Option(
                ROLLING_UPDATE, "RollingUpdateType", "Immutable" if eb.deployment_policy == "Immutable" else "Health"
            ),
            # Managed minor/patch platform updates: a pinned platform version does not rot (eb-solution-stack-retired).
            Option(MANAGED_ACTIONS, "ManagedActionsEnabled", "true"),
            Option(MANAGED_ACTIONS, "PreferredStartTime", "Sun:03:00"),
            Option(PLATFORM_UPDATE, "UpdateLevel", "minor"),
            Option(LOGS, "StreamLogs", "true"),
            Option(LOGS, "DeleteOnTerminate", "false"),
            Option(LOGS, "RetentionInDays", str(config.log_retention_days)),
            Option(HEALTH_LOGS, "HealthStreamingEnabled", "true"),
            Option(HEALTH_LOGS, "DeleteOnTerminate", "false"),
            Option(HEALTH_LOGS, "RetentionInDays", str(config.log_retention_days)),
            Option(HOST_MANAGER, "LogPublicationControl", "true"),  # rotated logs to EB's S3 bucket too (nag EB4)
            Option(LOAD_BALANCER, "SecurityGroups", self.load_balancer_group.security_group_id),
            Option(LOAD_BALANCER, "ManagedSecurityGroup", self.load_balancer_group.security_group_id),
        ]
        if shared is not None:
            options += self._shared_options(shared)
            plain = {**self._runtime_environment(config), **secrets.revision_environment(secrets.keys(web))}
            options += [Option(PLAIN_ENV, name, value) for name, value in plain.items()]
            options += [Option(SECRET_ENV, name, p.parameter_arn) for name, p in secrets.of(web).items()]
            return options
        # Below the app server's keep-alive, as for the ECS ALB (alb-keepalive-502). A shared ALB has its own.
        options.append(Option(LOAD_BALANCER, "IdleTimeout", str(config.load_balancer.idle_timeout_seconds)))
        certificate = self.certificate_arn or (config.domain.certificate_arn if config.domain else None)
        if config.domain is not None and certificate is not None:
            # HTTPS; the port-80 listener stays, and the bundle's .ebextensions turn its action into a redirect.
            options += [
                Option(LISTENER_DEFAULT, "ListenerEnabled", "true"),
                Option(LISTENER_443, "ListenerEnabled", "true"),
                Option(LISTENER_443, "Protocol", "HTTPS"),
                Option(LISTENER_443, "SSLCertificateArns", certificate),
                Option(LISTENER_443, "SSLPolicy", SSL_POLICY),
                Option(LISTENER_443, "DefaultProcess", "default"),
            ]
        else:
            options.append(Option(LISTENER_DEFAULT, "ListenerEnabled", "true"))
        plain = {**self._runtime_environment(config), **secrets.revision_environment(secrets.keys(web))}
        options += [Option(PLAIN_ENV, name, value) for name, value in plain.items()]
        options += [Option(SECRET_ENV, name, p.parameter_arn) for name, p in secrets.of(web).items()]
        return options

    def _runtime_environment(self, config: AppConfig) -> dict[str, str]:
        """The web's runtime values; the services it calls are reached through the shared ALB (config/calls.py)."""
        host = self.shared.host if self.shared is not None else None
        return runtime_environment(config, self.service, target="eb", load_balancer_host=host)

    def _shared_options(self, shared: SharedLoadBalancer) -> list[Option]:
        """Attach to the stack's ALB and route this service's requests to the environment's default process.

        ``LoadBalancerIsShared`` + ``SharedLoadBalancer`` (environments-cfg-alb-shared.md; set at creation only: EB
        cannot switch an environment between a dedicated and a shared load balancer). The ALB's own group is named
        in ``SecurityGroups`` / ``ManagedSecurityGroup`` so EB neither creates nor attaches another one
        (command-options-general.md, aws:elbv2:loadbalancer); the instance group admits it on 80 (above).
        The listener: 443 with a domain (the stack's HTTPS listener; 80 only redirects), else the port-80 listener
        (``aws:elbv2:listener:default``: "the default listener (port 80)"). Its ``Rules``: EB's ``default`` rule
        (the environment's CNAME -> default process) and this service's own rule, named after the service.
        """
        paths, hosts, priority = listener_rule(self.service, shared)
        web, rule = self.service, self.service.name
        where = f"services.{web.name}.route"
        if len(paths) + len(hosts) > SHARED_RULE_VALUES:
            self.route_problems.append(
                f"[config] {where}: {len(paths)} paths + {len(hosts)} hosts"
                f"{' (the stage host included)' if web.route is None or not web.route.hosts else ''} — on Elastic "
                f"Beanstalk a rule takes at most {SHARED_RULE_VALUES} (EB adds the environment's CNAME as the "
                "fifth): use wildcards (/api/*) or name the hosts"
            )
        if web.route is not None and priority >= SHARED_RULE_MAX_PRIORITY:
            self.route_problems.append(
                f"[config] {where}: priority {priority} — Elastic Beanstalk listener rules take 1 to "
                f"{SHARED_RULE_MAX_PRIORITY - 1} here ({SHARED_RULE_MAX_PRIORITY}: the default service's catch-all)"
            )
        listener = LISTENER_443 if shared.https else LISTENER_DEFAULT
        namespace = f"{LISTENER_RULE}{rule}"
        options = [
            Option(ENVIRONMENT, "LoadBalancerIsShared", "true"),
            Option(LOAD_BALANCER, "SharedLoadBalancer", shared.arn),
            Option(listener, "Rules", f"default,{rule}"),
        ]
        if paths:
            options.append(Option(namespace, "PathPatterns", ",".join(paths)))
        options += [
            Option(namespace, "HostHeaders", Fn.join(",", list(hosts)) if len(hosts) > 1 else hosts[0]),
            Option(namespace, "Priority", str(priority)),
            Option(namespace, "Process", "default"),
        ]
        return options

    def _metric(self, name: str, statistic: str) -> cw.Metric:
        return cw.Metric(
            namespace="AWS/ElasticBeanstalk",
            metric_name=name,
            dimensions_map={"EnvironmentName": self.environment.ref},
            statistic=statistic,
            period=Duration.minutes(1),
        )

    def _add_alarms(self, topic: sns.ITopic, prefix: str) -> list[cw.Alarm]:
        # The default service keeps the names of a one-web stage; a routed one's carry its name.
        label = "eb" if self.service.route is None else f"eb-{self.service.name}"
        return [
            add_alarm(
                self,
                "HealthAlarm",
                name=f"{prefix}-{label}-EnvironmentHealth",
                # 0 OK, 1 Info, 5 Unknown, 10 No data, 15 Warning, 20 Degraded, 25 Severe.
                metric=self._metric("EnvironmentHealth", "Maximum"),
                threshold=20,
                comparison=GTE,
                topic=topic,
                evaluation_periods=5,
                description=f"environment health{self._who} Degraded or Severe",
                # No data from a running environment means enhanced health stopped reporting.
                treat_missing_data=cw.TreatMissingData.BREACHING,
            ),
            add_alarm(
                self,
                "Requests5xxAlarm",
                name=f"{prefix}-{label}-ApplicationRequests5xx",
                metric=self._metric("ApplicationRequests5xx", "Sum"),
                threshold=10,
                comparison=GT,
                topic=topic,
                evaluation_periods=5,
                description=f"app 5xx responses{self._who}",
            ),
        ]
