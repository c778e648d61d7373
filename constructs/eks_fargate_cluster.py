"""The EKS Fargate cluster of a stage: private endpoint, Fargate profiles, IRSA, ALB controller, External Secrets."""

from __future__ import annotations

from collections.abc import Mapping

import cdk8s
from aws_cdk import (
    CfnJson,
    Duration,
    RemovalPolicy,
    Stack,
    aws_ec2 as ec2,
    aws_eks_v2 as eks,
    aws_iam as iam,
    aws_kms as kms,
    aws_lambda as lambda_,
    aws_logs as logs,
)
from aws_cdk.lambda_layer_kubectl_v33 import KubectlV33Layer
from constructs import Construct

from config.schema import AppConfig
from config.services import MIGRATE, Service, pascal
from constructs.app_permissions import grant_permissions
from constructs.app_secrets import AppSecrets
from constructs.image_repository import image_repository
from constructs.nag import DEPLOY_HELPER, DEPLOY_HELPER_CHECKS, LOGS_AWS_KEY, acknowledge, skip_checks
from constructs.retention import log_group
from constructs.rollout_gate import rollout_gate
from k8s.app_chart import AppChart, SecretStoreChart
from k8s.namespace_chart import NamespaceChart
from k8s.props import (
    ESO_NAMESPACE,
    ESO_SERVICE_ACCOUNT,
    app_props,
    is_default_web,
    log_group_name,
    namespace_props,
    secret_store_name,
    service_account_name,
    service_props,
)
from k8s.service_chart import ServiceChart

MAX_WAIT_MINUTES = 14  # KubernetesObjectValue polls from the kubectl Lambda, which stops at 15 minutes
KUBERNETES_VERSIONS = {"1.33": eks.KubernetesVersion.V1_33}
ALB_CONTROLLER_VERSION = eks.AlbControllerVersion.V2_17_1
# External Secrets Operator: runs as Deployments (Fargate-compatible, unlike the Secrets Store CSI driver).
ESO_CHART_VERSION = "0.20.4"
ESO_REPOSITORY = "https://charts.external-secrets.io"
# Stakater Reloader: rolls a Deployment out when a Secret it names changes (External Secrets refreshed it from
# Parameter Store after a rotation or `make secret`). Runs in the app namespace, watching only that namespace.
RELOADER_CHART_VERSION = "2.2.12"
RELOADER_REPOSITORY = "https://stakater.github.io/stakater-charts"
# Regions whose EKS add-on images live in account 602401143452. Pulling the ALB controller image from the stage
# region keeps the pull on the ECR VPC endpoints; elsewhere CDK's default (us-west-2) is kept and needs NAT.
EKS_IMAGE_ACCOUNT = "602401143452"
EKS_IMAGE_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "sa-east-1",
        "eu-central-1",
        "eu-north-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
    }
)
CONTROL_PLANE_LOGS = (
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
)


class EksFargateCluster(Construct):
    """A ``FargateCluster`` running the app's charts, with everything the pods need from AWS.

    Args:
        vpc: the stage VPC; the control plane ENIs, the kubectl handler and every pod use its private subnets.
        config: the stage (``eks`` section, image, health contracts, settings, log retention).
        secrets: the stage's SecureString parameters; External Secrets' IRSA role may read exactly these.
        target_group_arns: web service name -> its IP target group on the CloudFormation ALB, which its pods join
            through a TargetGroupBinding (every web service of ``config.webs``).

    Attributes:
        cluster: the ``eks.FargateCluster``; ``cluster.cluster_security_group`` is what Fargate pods use.
        roles: service name -> its IRSA role (only its declared ``permissions``), one per service run here.
        app_role: the default web service's IRSA role.
        manifests: service name -> the manifest (one cdk8s chart) that runs it.
        secret_reader: External Secrets' IRSA role.
        pod_execution_role: the app profile's pod execution role (pulls the image, writes logs).
        log_group: the app's log group (retention from ``log_retention_days``), fed by the ``aws-logging`` ConfigMap.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        config: AppConfig,
        secrets: AppSecrets,
        target_group_arns: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        eks_config = config.eks
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        alb_repository = (
            f"{EKS_IMAGE_ACCOUNT}.dkr.ecr.{config.region}.amazonaws.com/amazon/aws-load-balancer-controller"
            if config.region in EKS_IMAGE_REGIONS
            else None
        )
        # Kubernetes Secrets (the External Secrets copies of the app's settings) envelope-encrypted with our key.
        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"{config.app}-{config.stage}: EKS envelope encryption of Kubernetes Secrets",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if config.stage == "prod" else RemovalPolicy.DESTROY,
        )
        self.cluster = eks.FargateCluster(
            self,
            "Cluster",
            secrets_encryption_key=self.secrets_key,
            version=KUBERNETES_VERSIONS[eks_config.kubernetes_version],
            vpc=vpc,
            vpc_subnets=[private],
            endpoint_access=(
                eks.EndpointAccess.PRIVATE
                if eks_config.endpoint_access == "private"
                else eks.EndpointAccess.PUBLIC_AND_PRIVATE
            ),
            cluster_logging=list(CONTROL_PLANE_LOGS),
            # The kubectl handler runs in the private subnets (in the cluster SG) so it reaches a private endpoint.
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=KubectlV33Layer(self, "KubectlLayer"),
                private_subnets=vpc.private_subnets,
            ),
            # The default profile (default + kube-system: CoreDNS, ALB controller, metrics-server) in private subnets.
            default_profile=eks.FargateProfileOptions(
                selectors=[eks.Selector(namespace="default"), eks.Selector(namespace="kube-system")],
                vpc=vpc,
                subnet_selection=private,
            ),
            # Region and VPC id go into the controller's values: Fargate pods have no IMDS to discover them.
            alb_controller=eks.AlbControllerOptions(version=ALB_CONTROLLER_VERSION, repository=alb_repository),
        )
        cluster = self.cluster

        # One profile per namespace with pods (fargate-profile-namespace); `vpc` makes the Subnets explicit.
        app_profile = cluster.add_fargate_profile(
            "AppProfile", selectors=[eks.Selector(namespace=eks_config.namespace)], vpc=vpc, subnet_selection=private
        )
        eso_profile = cluster.add_fargate_profile(
            "ExternalSecretsProfile",
            selectors=[eks.Selector(namespace=ESO_NAMESPACE)],
            vpc=vpc,
            subnet_selection=private,
        )
        self.pod_execution_role = app_profile.pod_execution_role
        self.log_group = log_group(
            self,
            "AppLogs",
            name=log_group_name(config),
            days=config.log_retention_days,
            removal_policy=RemovalPolicy.RETAIN if config.stage == "prod" else RemovalPolicy.DESTROY,
        )
        # Fargate's log router writes with the pod execution role; the group exists already (no CreateLogGroup).
        self.log_group.grant_write(self.pod_execution_role)
        self.pod_execution_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["logs:DescribeLogStreams"], resources=[self.log_group.log_group_arn])
        )
        for index, image in enumerate(sorted({s.image for s in config.workloads})):
            repository = image_repository(self, image, "Repository" if index == 0 else f"Repository{index}")[0]
            repository.grant_pull(self.pod_execution_role)

        # IRSA only: Pod Identity does not work on Fargate (pod-identity-on-fargate). Each service's pods run as
        # their own service account, whose role has that service's declared permissions and nothing else.
        here = [service for service in config.workloads if service.runs_on("eks")]
        self.roles: dict[str, iam.IRole] = {service.name: self._service_role(config, service) for service in here}
        self.app_role = self.roles[config.web.name]
        self.secret_reader = self.irsa_role("ExternalSecretsRole", namespace=ESO_NAMESPACE, name=ESO_SERVICE_ACCOUNT)
        # External Secrets fills every service's Secret: it reads the union of the services' secrets, nothing else.
        secrets.grant_read(self.secret_reader, {key for s in config.workloads for key in secrets.keys(s)})

        external_secrets = cluster.add_helm_chart(
            "ExternalSecrets",
            chart="external-secrets",
            repository=ESO_REPOSITORY,
            version=ESO_CHART_VERSION,
            release="external-secrets",
            namespace=ESO_NAMESPACE,
            create_namespace=True,
            wait=True,  # CRDs and webhook ready before the ExternalSecret objects are applied
            values={
                "installCRDs": True,
                "serviceAccount": {
                    "create": True,
                    "name": ESO_SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": self.secret_reader.role_arn},
                },
            },
        )
        external_secrets.node.add_dependency(eso_profile)
        # metrics-server feeds the HorizontalPodAutoscaler's CPU metric; runs in kube-system (default profile).
        # (ignore: jsii's ICluster protocol lists kubectl_provider_options, which FargateCluster lacks in Python.)
        eks.Addon(self, "MetricsServer", cluster=cluster, addon_name="metrics-server")  # type: ignore[arg-type]

        namespaces = cluster.add_cdk8s_chart(
            "Namespaces", NamespaceChart(cdk8s.App(), "namespaces", props=namespace_props(config))
        )
        store = cluster.add_cdk8s_chart(
            "SecretStore",
            SecretStoreChart(
                cdk8s.App(),
                "secret-store",
                name=secret_store_name(config),
                region=config.region,
                service_account=ESO_SERVICE_ACCOUNT,
                namespace=ESO_NAMESPACE,
            ),
        )
        store.node.add_dependency(external_secrets)  # ESO's CRDs before the store
        # In the app namespace (its Fargate profile), with a namespaced Role: it may read Secrets and patch the
        # Deployments of this namespace only (watchGlobally: false).
        reloader = cluster.add_helm_chart(
            "Reloader",
            chart="reloader",
            repository=RELOADER_REPOSITORY,
            version=RELOADER_CHART_VERSION,
            release="reloader",
            namespace=eks_config.namespace,
            create_namespace=False,
            values={
                "reloader": {
                    "watchGlobally": False,
                    # Plain settings change only with a deploy, which changes the pod template's settings-revision.
                    "ignoreConfigMaps": True,
                    "readOnlyRootFileSystem": True,
                    "deployment": {
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "512Mi"},
                            "limits": {"cpu": "250m", "memory": "512Mi"},
                        },
                    },
                },
            },
        )
        for dependency in (namespaces, app_profile):
            reloader.node.add_dependency(dependency)
        # One chart per service: each web service's AppChart (its own port, probes, sizing, settings and target
        # group), each worker's, job's and the migration step's ServiceChart.
        self.manifests: dict[str, eks.KubernetesManifest] = {}
        self.migration_done: eks.KubernetesObjectValue | None = None
        self.rollouts: dict[str, eks.KubernetesObjectValue] = {}
        for service in here:
            role = self.roles[service.name]
            revision = secrets.revision(secrets.keys(service))
            chart: cdk8s.Chart
            if service.is_web:
                web = app_props(
                    config,
                    service,
                    role_arn=role.role_arn,
                    target_group_arn=target_group_arns[service.name],
                    settings_revision=revision,
                )
                chart = AppChart(cdk8s.App(), "app" if is_default_web(service) else web.name, props=web)
            else:
                props = service_props(
                    config,
                    service,
                    role_arn=role.role_arn,
                    service_account=service_account_name(config, service),
                    settings_revision=revision,
                )
                chart = ServiceChart(cdk8s.App(), props.name, props=props)
            manifest = cluster.add_cdk8s_chart(chart_id(service), chart)
            # Namespace before its objects; the store before ExternalSecrets; the controller before a
            # TargetGroupBinding.
            for dependency in (namespaces, store, app_profile):
                manifest.node.add_dependency(dependency)
            if service.is_web and cluster.alb_controller is not None:
                manifest.node.add_dependency(cluster.alb_controller)
            self.manifests[service.name] = manifest
            if service.kind in ("web", "worker"):
                # The stack waits until the new pods are ready; past the deadline the update fails and rolls back.
                chart_props = web if service.is_web else props
                self.rollouts[service.name] = rollout_gate(
                    self,
                    f"Rollout{pascal(service.name)}",
                    cluster=cluster,
                    namespace=eks_config.namespace,
                    deployment=chart_props.name,
                    props=chart_props,
                    deadline_seconds=chart_props.progress_deadline_seconds,
                    manifest=manifest,
                )
            if service.kind == "migrate":
                # The stack waits for the Job to succeed (kubectl runs in a Lambda: 14 minutes at most).
                self.migration_done = eks.KubernetesObjectValue(
                    self,
                    "MigrationDone",
                    cluster=cluster,  # type: ignore[arg-type]
                    object_type="job",
                    object_name=props.job_name,
                    object_namespace=eks_config.namespace,
                    json_path=".status.succeeded",
                    timeout=Duration.minutes(min(service.timeout_minutes, MAX_WAIT_MINUTES)),
                )
                self.migration_done.node.add_dependency(manifest)
        if self.migration_done is not None:
            for service_name, manifest in self.manifests.items():
                if service_name != MIGRATE:
                    manifest.node.add_dependency(self.migration_done)
        self._acknowledge_platform(app_profile, eso_profile)

    def _acknowledge_platform(self, *profiles: eks.FargateProfile) -> None:
        """cdk-nag findings on roles and functions CDK's EKS module builds for itself, each with its reason."""
        cluster = self.cluster
        acknowledge(
            cluster.role,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]",
            "the EKS service role needs AmazonEKSClusterPolicy; AWS maintains it with the service",
        )
        for profile in (cluster.default_profile, *profiles):
            if profile is not None:
                acknowledge(
                    profile.pod_execution_role,
                    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSFargatePodExecutionRolePolicy]",
                    "Fargate's pod execution role policy (image pulls for system pods); AWS maintains it",
                )
        acknowledge(
            self.pod_execution_role,
            "IAM5[Resource::*]",
            "ecr:GetAuthorizationToken has no resource-level permissions; pulls are scoped to the repository",
        )
        provider = cluster.kubectl_provider
        if provider is not None:
            handler = provider.node.find_child("Handler")
            handler_id = Stack.of(self).get_logical_id(handler.node.default_child)  # type: ignore[arg-type]
            for policy in (
                "AmazonEC2ContainerRegistryReadOnly",
                "service-role/AWSLambdaBasicExecutionRole",
                "service-role/AWSLambdaVPCAccessExecutionRole",
            ):
                acknowledge(
                    provider,
                    f"IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]",
                    "CDK's kubectl provider functions: logs, VPC ENIs and Helm chart pulls from ECR",
                )
            acknowledge(
                provider,
                'IAM4[Policy::{"Fn::If":["'
                + Stack.of(self).get_logical_id(
                    handler.node.find_child("HasEcrPublic")  # type: ignore[arg-type]
                )
                + '",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},'
                '":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
                "CDK's kubectl handler: ECR Public read only where the partition has ECR Public",
            )
            acknowledge(
                provider,
                f"IAM5[Resource::<{handler_id}.Arn>:*]",
                "the provider framework invokes any version of the kubectl handler",
            )
            acknowledge(provider, "L1", "CDK pins the kubectl handler's runtime to the one the kubectl layer needs")
            for child in provider.node.find_all():
                if isinstance(child, lambda_.CfnFunction):
                    skip_checks(child, DEPLOY_HELPER_CHECKS, DEPLOY_HELPER)
                if isinstance(child, logs.CfnLogGroup):
                    skip_checks(child, ["CKV_AWS_158"], LOGS_AWS_KEY)
        if cluster.alb_controller is not None:
            controller = cluster.alb_controller
            for resource in (
                "*",
                "arn:<AWS::Partition>:ec2:*:*:security-group/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:targetgroup/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:loadbalancer/app/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:loadbalancer/net/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener/app/*/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener/net/*/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener-rule/app/*/*/*",
                "arn:<AWS::Partition>:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
            ):
                acknowledge(
                    controller,
                    f"IAM5[Resource::{resource}]",
                    "the AWS Load Balancer Controller's published IAM policy (bundled by CDK per version); "
                    "it registers pod IPs in target groups it cannot know at deploy time",
                    checkov=["CKV_AWS_111"],
                )

    def _service_role(self, config: AppConfig, service: Service) -> iam.Role:
        """The IRSA role of ``service``'s own service account, with only the AWS permissions it declares."""
        role = self.irsa_role(
            f"{chart_id(service)}Role", namespace=config.eks.namespace, name=service_account_name(config, service)
        )
        grant_permissions(role, service)
        return role

    def irsa_role(self, construct_id: str, *, namespace: str, name: str) -> iam.Role:
        """An IAM role only the service account ``namespace/name`` of this cluster can assume (IRSA).

        The same trust ``cluster.add_service_account`` builds, without its ServiceAccount manifest: the app's
        ServiceAccount lives in the app chart next to the Deployment using it, ESO's in its Helm values.
        """
        provider = self.cluster.open_id_connect_provider
        issuer = provider.open_id_connect_provider_issuer
        conditions = CfnJson(
            self,
            f"{construct_id}Trust",
            value={
                f"{issuer}:aud": "sts.amazonaws.com",
                f"{issuer}:sub": f"system:serviceaccount:{namespace}:{name}",
            },
        )
        return iam.Role(
            self,
            construct_id,
            assumed_by=iam.OpenIdConnectPrincipal(provider).with_conditions({"StringEquals": conditions}),
            description=f"IRSA: service account {namespace}/{name}",
        )


def chart_id(service: Service) -> str:
    """The construct id of a service's manifest (and, with ``Role``, of its IRSA role): ``App`` for the default web
    service (the ids of a one-web stage), ``<Kind><Name>`` for every other (``WebApi``, ``WorkerCelery``)."""
    return "App" if is_default_web(service) else f"{service.kind.title()}{service.name.title().replace('-', '')}"
