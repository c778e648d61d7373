"""AppChart: one web service on EKS Fargate, wired to its target group of the CloudFormation ALB, its settings and
secrets. The stage's default web service and each routed one (``services.<name>.route``) are one AppChart each,
built from that service by ``k8s.props.app_props``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cdk8s
from constructs import Construct

from k8s.objects import api_object

# Custom resources of controllers the EKS stack installs (AWS Load Balancer Controller, External Secrets Operator).
TARGET_GROUP_BINDING_API = "elbv2.k8s.aws/v1beta1"
EXTERNAL_SECRETS_API = "external-secrets.io/v1"  # served by the pinned ESO chart; v1beta1 is deprecated
STARTUP_PERIOD_SECONDS = 5


@dataclass(frozen=True, kw_only=True)
class AppChartProps:
    """Args:
    name: names every object (``<name>``, ``<name>-settings``, ``<name>-secrets`` ...): the app name for the
        default web service, ``<app>-<service>`` for a routed one (``k8s.props.workload_name``).
    namespace: where the app runs; a Fargate profile selects it.
    service_account: IRSA service account the pods run as (each web service its own); ``role_arn`` is its role (a
        CDK token in the stack).
    image: immutable ECR image URI; command: its argv (None: the image's own command).
    port / health_port: container port and the port the health paths answer on.
    liveness_path / readiness_path: shallow path for liveness/startup, deep path for readiness only.
    interval_seconds / timeout_seconds / unhealthy_threshold / healthy_threshold: from the service's health contract.
    boot_seconds: worst-case start time; the startup probe's budget covers it.
    progress_deadline_seconds: how long a rollout step may go without a new pod becoming ready before the
        Deployment reports ProgressDeadlineExceeded (``HealthContract.deploy_deadline_seconds``).
    cpu / memory: per pod; requests == limits (Fargate sizes pods from requests).
    min_replicas / max_replicas / cpu_target_percent: HorizontalPodAutoscaler.
    environment: plain settings (``runtime_environment(config, service)``), delivered through a ConfigMap.
    secrets: setting name -> SSM parameter name, delivered through an ExternalSecret.
    target_group_arn: the service's IP target group on the CloudFormation ALB, which its pods join
        (TargetGroupBinding).
    region: region of the Parameter Store the secret store reads.
    secret_store_name: the stage's ClusterSecretStore (``SecretStoreChart``) every service's ExternalSecret reads.
    secret_store_service_account / secret_store_namespace: ESO's IRSA service account (jwt auth).
    refresh_interval: how often ESO re-reads the parameters (default ``5m``: a changed value reaches pods in minutes).
    settings_revision: ``k8s.props.pod_revision`` of its plain settings and of how its secret settings are made: a
        pod-template annotation, so a deploy that changes either rolls the pods (pods read the ConfigMap at start).
    """

    name: str
    namespace: str
    service_account: str
    role_arn: str
    image: str
    port: int
    health_port: int
    liveness_path: str
    readiness_path: str
    interval_seconds: int
    timeout_seconds: int
    unhealthy_threshold: int
    healthy_threshold: int
    boot_seconds: int
    progress_deadline_seconds: int
    cpu: str
    memory: str
    min_replicas: int
    max_replicas: int
    cpu_target_percent: int
    command: list[str] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    target_group_arn: str
    region: str
    secret_store_name: str
    secret_store_service_account: str = "external-secrets"
    secret_store_namespace: str = "external-secrets"
    refresh_interval: str = "5m"
    settings_revision: str = ""

    @property
    def settings_name(self) -> str:
        return f"{self.name}-settings"

    @property
    def secrets_name(self) -> str:
        return f"{self.name}-secrets"


def base_container(
    *,
    image: str,
    command: list[str] | None,
    settings_name: str,
    secrets_name: str,
    secrets: Mapping[str, str],
    cpu: str,
    memory: str,
) -> dict[str, Any]:
    """The container every service runs: its settings from its ConfigMap, each secret from its ExternalSecret's
    Secret, requests == limits (fargate-memory-oom), non-root with a read-only root filesystem and /tmp."""
    resources = {"cpu": cpu, "memory": memory}
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "envFrom": [{"configMapRef": {"name": settings_name, "optional": False}}],
        "env": [
            {"name": name, "valueFrom": {"secretKeyRef": {"name": secrets_name, "key": name, "optional": False}}}
            for name in sorted(secrets)
        ],
        # Fargate sizes the pod from requests and gives it nothing more: requests == limits (fargate-memory-oom).
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if command:
        container["command"] = list(command)
    return container


# Scanner findings on every workload that are decisions, not defects: checkov reads them from these annotations.
CHECKOV_DECISIONS = {
    "CKV_K8S_43": "images are pinned by release tag from the stage file; the review shows every tag change",
    "CKV_K8S_35": "the app reads settings from its environment on every target (ECS, EB, EKS); same contract here",
    "CKV_K8S_15": "every Fargate pod starts on a fresh node, so the image is always pulled",
    "CKV_K8S_40": "runAsNonRoot is enforced; a fixed UID would override the ownership the image sets for its user",
    "CKV2_K8S_6": "EKS Fargate does not enforce NetworkPolicy; the Fargate profile's security group isolates pods",
}


WORKER_DECISIONS = {
    "CKV_K8S_8": "a worker serves no HTTP: Kubernetes restarts it when its process exits; its queue shows it stalls",
    "CKV_K8S_9": "a worker takes no traffic from a Service, so there is nothing for a readiness probe to gate",
}


# Reloader (installed by the EKS stack, watching the app namespace only) rolls a Deployment out when a Secret named
# here changes: External Secrets refreshes the Secret from Parameter Store, the pods restart health-gated.
RELOAD_ANNOTATION = "secret.reloader.stakater.com/reload"


def pod_annotations(settings_revision: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A pod template's annotations: the scanner decisions and, when known, the settings revision."""
    revision = {"settings-revision": settings_revision} if settings_revision else {}
    return {**scanner_annotations(extra), **revision}


def rollout_annotations(secrets_name: str, secrets: Mapping[str, str]) -> dict[str, str]:
    """The Deployment annotation that restarts it when its ExternalSecret's Secret changes (none without secrets)."""
    return {RELOAD_ANNOTATION: secrets_name} if secrets else {}


def scanner_annotations(extra: dict[str, str] | None = None) -> dict[str, str]:
    """``checkov.io/skipN: <check>=<reason>`` for :data:`CHECKOV_DECISIONS` (and ``extra`` for this workload)."""
    decisions = {**CHECKOV_DECISIONS, **(extra or {})}
    return {
        f"checkov.io/skip{index}": f"{check}={reason}"
        for index, (check, reason) in enumerate(sorted(decisions.items()), start=1)
    }


def pod_spec(*, service_account: str, container: dict[str, Any], grace_seconds: int = 30) -> dict[str, Any]:
    return {
        "serviceAccountName": service_account,
        # IRSA's token comes from the EKS pod identity webhook's own projected volume; the app never calls the
        # Kubernetes API, so the API token is not mounted.
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": grace_seconds,
        "containers": [container],
        # The root filesystem is read-only; /tmp is the only scratch space.
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def settings_objects(
    chart: cdk8s.Chart,
    *,
    namespace: str,
    settings_name: str,
    environment: Mapping[str, str],
    secrets_name: str,
    secrets: Mapping[str, str],
    secret_store_name: str,
    refresh_interval: str,
) -> None:
    """The ConfigMap with the plain settings and, when there are secrets, the ExternalSecret that fills one
    Secret with one key per secret setting (never ``kubectl create secret | apply``, which drops keys)."""
    api_object(
        chart,
        "Settings",
        api_version="v1",
        kind="ConfigMap",
        name=settings_name,
        namespace=namespace,
        data=dict(sorted(environment.items())),
    )
    if secrets:
        api_object(
            chart,
            "Secrets",
            api_version=EXTERNAL_SECRETS_API,
            kind="ExternalSecret",
            name=secrets_name,
            namespace=namespace,
            spec={
                "refreshInterval": refresh_interval,
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": secret_store_name},
                "target": {"name": secrets_name, "creationPolicy": "Owner"},
                "data": [{"secretKey": name, "remoteRef": {"key": key}} for name, key in sorted(secrets.items())],
            },
        )


def autoscaler(
    chart: cdk8s.Chart, *, name: str, namespace: str, min_replicas: int, max_replicas: int, cpu_target_percent: int
) -> None:
    """The HorizontalPodAutoscaler of Deployment ``name`` on CPU (metrics-server); it owns the replica count."""
    api_object(
        chart,
        "Autoscaler",
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        name=name,
        namespace=namespace,
        spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu_target_percent},
                    },
                }
            ],
        },
    )


def service_account(chart: cdk8s.Chart, *, name: str, namespace: str, role_arn: str) -> None:
    api_object(
        chart,
        "ServiceAccount",
        api_version="v1",
        kind="ServiceAccount",
        name=name,
        namespace=namespace,
        annotations={"eks.amazonaws.com/role-arn": role_arn},
    )


class AppChart(cdk8s.Chart):
    """ServiceAccount, ConfigMap, ExternalSecret, Deployment, Service, TargetGroupBinding, HPA and PDB of one web
    service. Every pod setting comes from an object of this chart (k8s-secret-configmap-missing); the
    ClusterSecretStore they read through is the stage's (SecretStoreChart)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: AppChartProps) -> None:
        super().__init__(scope, construct_id)  # namespaces set per object: the secret store is cluster-scoped
        labels = {"app.kubernetes.io/name": props.name}
        ns = props.namespace

        service_account(self, name=props.service_account, namespace=ns, role_arn=props.role_arn)
        settings_objects(
            self,
            namespace=ns,
            settings_name=props.settings_name,
            environment=props.environment,
            secrets_name=props.secrets_name,
            secrets=props.secrets,
            secret_store_name=props.secret_store_name,
            refresh_interval=props.refresh_interval,
        )
        http_get = {"port": props.health_port, "scheme": "HTTP"}
        container = base_container(
            image=props.image,
            command=props.command,
            settings_name=props.settings_name,
            secrets_name=props.secrets_name,
            secrets=props.secrets,
            cpu=props.cpu,
            memory=props.memory,
        )
        container.update(
            {
                "ports": [{"name": "http", "containerPort": props.port, "protocol": "TCP"}],
                # The startup probe holds liveness back until the app has booted, so liveness stays short.
                "startupProbe": {
                    "httpGet": {**http_get, "path": props.liveness_path},
                    "periodSeconds": STARTUP_PERIOD_SECONDS,
                    "timeoutSeconds": min(props.timeout_seconds, STARTUP_PERIOD_SECONDS - 1),
                    "failureThreshold": max(1, math.ceil(props.boot_seconds / STARTUP_PERIOD_SECONDS)) + 1,
                },
                "livenessProbe": {
                    "httpGet": {**http_get, "path": props.liveness_path},
                    "periodSeconds": props.interval_seconds,
                    "timeoutSeconds": props.timeout_seconds,
                    "failureThreshold": props.unhealthy_threshold,
                },
                # Only readiness checks the deep path: a DB blip takes pods out of the target group, never
                # restarts them.
                "readinessProbe": {
                    "httpGet": {**http_get, "path": props.readiness_path},
                    "periodSeconds": props.interval_seconds,
                    "timeoutSeconds": props.timeout_seconds,
                    "failureThreshold": props.unhealthy_threshold,
                    "successThreshold": 1,
                },
            }
        )
        api_object(
            self,
            "Deployment",
            api_version="apps/v1",
            kind="Deployment",
            name=props.name,
            namespace=ns,
            labels=labels,
            annotations={**scanner_annotations(), **rollout_annotations(f"{props.name}-secrets", props.secrets)},
            # No spec.replicas: the HPA owns the count; a re-apply must not reset a scaled-out deployment.
            spec={
                "selector": {"matchLabels": labels},
                # A rollout never drops below the running count (manual-rollback); maxSurge adds one pod at a time.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                # A new pod that is not ready in time fails the rollout (`kubectl rollout status` exits non-zero).
                "progressDeadlineSeconds": props.progress_deadline_seconds,
                "template": {
                    "metadata": {"labels": labels, "annotations": pod_annotations(props.settings_revision)},
                    "spec": pod_spec(service_account=props.service_account, container=container),
                },
            },
        )
        api_object(
            self,
            "Service",
            api_version="v1",
            kind="Service",
            name=props.name,
            namespace=ns,
            labels=labels,
            spec={
                "type": "ClusterIP",
                "selector": labels,
                "ports": [{"name": "http", "port": props.port, "targetPort": "http", "protocol": "TCP"}],
            },
        )
        # Pods join the CloudFormation ALB's target group as IP targets (k8s-ingress-fargate). No `networking`
        # block: the security-group rule ALB -> cluster SG lives in the EKS stack, not in the controller.
        api_object(
            self,
            "TargetGroupBinding",
            api_version=TARGET_GROUP_BINDING_API,
            kind="TargetGroupBinding",
            name=props.name,
            namespace=ns,
            spec={
                "serviceRef": {"name": props.name, "port": props.port},
                "targetGroupARN": props.target_group_arn,
                "targetType": "ip",
            },
        )
        autoscaler(
            self,
            name=props.name,
            namespace=ns,
            min_replicas=props.min_replicas,
            max_replicas=props.max_replicas,
            cpu_target_percent=props.cpu_target_percent,
        )
        api_object(
            self,
            "Disruption",
            api_version="policy/v1",
            kind="PodDisruptionBudget",
            name=props.name,
            namespace=ns,
            spec={"minAvailable": 1, "selector": {"matchLabels": labels}},
        )


class SecretStoreChart(cdk8s.Chart):
    """The ClusterSecretStore every service's ExternalSecret reads through: External Secrets authenticates as its
    own IRSA service account (jwt) to Parameter Store. Applied once, before any service chart."""

    def __init__(
        self, scope: Construct, construct_id: str, *, name: str, region: str, service_account: str, namespace: str
    ) -> None:
        super().__init__(scope, construct_id)
        api_object(
            self,
            "SecretStore",
            api_version=EXTERNAL_SECRETS_API,
            kind="ClusterSecretStore",
            name=name,
            spec={
                "provider": {
                    "aws": {
                        "service": "ParameterStore",
                        "region": region,
                        "auth": {"jwt": {"serviceAccountRef": {"name": service_account, "namespace": namespace}}},
                    }
                }
            },
        )
