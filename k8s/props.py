"""Chart props from the stage config: one mapping used by the EKS stack and by ``python -m k8s.synth``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from config.schema import AppConfig
from config.services import Service
from constructs.compute_target import runtime_environment
from k8s.app_chart import AppChartProps
from k8s.namespace_chart import NamespaceChartProps
from k8s.service_chart import ServiceChartProps

ESO_NAMESPACE = "external-secrets"
ESO_SERVICE_ACCOUNT = "external-secrets"


def pod_revision(environment: Mapping[str, str], secrets_revision: str) -> str:
    """The pod template's ``settings-revision``: its plain settings (the ConfigMap, which pods read only at start)
    and how its secret settings are made (``AppSecrets.revision``). A change to either rolls the Deployment."""
    text = json.dumps({"environment": dict(environment), "secrets": secrets_revision}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def log_group_name(config: AppConfig) -> str:
    """The app's log group on EKS (created with retention by the EKS stack, written by Fargate's log router)."""
    return f"/{config.app}/{config.stage}/eks/app"


def namespace_props(config: AppConfig) -> NamespaceChartProps:
    return NamespaceChartProps(
        namespace=config.eks.namespace,
        region=config.region,
        log_group_name=log_group_name(config),
        log_retention_days=config.log_retention_days,
    )


def secret_store_name(config: AppConfig) -> str:
    return f"{config.app}-parameter-store"


def is_default_web(service: Service) -> bool:
    """The stage's default web service (the one without a route): its objects keep the names of a one-web stage."""
    return service.is_web and service.route is None


def workload_name(config: AppConfig, service: Service) -> str:
    """What a service's Kubernetes objects are called (Deployment, Service, TargetGroupBinding, HPA ...): ``<app>``
    for the default web service, ``<app>-<service>`` for every other (a routed web service, a worker, a job)."""
    return config.app if is_default_web(service) else f"{config.app}-{service.name}"


def service_account_name(config: AppConfig, service: Service) -> str:
    """The IRSA service account a service's pods run as: ``eks.service_account`` for the default web service,
    ``<eks.service_account>-<service>`` for every other; each has its own role with its own permissions."""
    account = config.eks.service_account
    return account if is_default_web(service) else f"{account}-{service.name}"


def service_props(
    config: AppConfig, service: Service, *, role_arn: str, service_account: str, settings_revision: str = ""
) -> ServiceChartProps:
    """A worker, job or the migrate step as a chart; ``role_arn`` is a CDK token in the stack."""
    assert service.command is not None and service.kind != "web"
    sizing = service.eks
    environment = runtime_environment(config, service, target="eks")
    return ServiceChartProps(
        app=config.app,
        service=service.name,
        kind=service.kind,
        namespace=config.eks.namespace,
        service_account=service_account,
        role_arn=role_arn,
        image=service.image,
        command=list(service.command),
        cpu=sizing.cpu,
        memory=sizing.memory,
        min_replicas=sizing.min_replicas,
        max_replicas=sizing.max_replicas,
        cpu_target_percent=sizing.cpu_target_percent,
        schedule=service.schedule.cron if service.schedule else None,
        timeout_minutes=service.timeout_minutes,
        retries=service.retries,
        environment=environment,
        secrets={name: config.parameter_of(service, name) for name in service.secrets},
        settings_revision=pod_revision(environment, settings_revision),
        secret_store_name=secret_store_name(config),
        progress_deadline_seconds=config.health.deploy_deadline_seconds,
    )


def app_props(
    config: AppConfig,
    service: Service | None = None,
    *,
    role_arn: str,
    target_group_arn: str,
    environment: Mapping[str, str] | None = None,
    settings_revision: str = "",
) -> AppChartProps:
    """The chart of one web service (default: the stage's default one): its own names, port, health contract
    (probes), ``eks`` sizing and settings. ``environment`` defaults to ``runtime_environment(config, service)``;
    ``target_group_arn`` is the service's own target group; the ARNs are CDK tokens in the stack, placeholders in
    ``k8s/dist``."""
    web = service or config.web
    health, port, health_port = web.health, web.port, web.health_port
    assert health is not None and port is not None and health_port is not None, f"{web.name} is not a web service"
    environment = runtime_environment(config, web, target="eks") if environment is None else environment
    return AppChartProps(
        name=workload_name(config, web),
        namespace=config.eks.namespace,
        service_account=service_account_name(config, web),
        role_arn=role_arn,
        image=web.image,
        command=list(web.command) if web.command else None,
        port=port,
        health_port=health_port,
        liveness_path=health.liveness_path,
        readiness_path=health.readiness_path,
        interval_seconds=health.interval_seconds,
        timeout_seconds=health.timeout_seconds,
        unhealthy_threshold=health.unhealthy_threshold,
        healthy_threshold=health.healthy_threshold,
        boot_seconds=health.boot_seconds,
        progress_deadline_seconds=health.deploy_deadline_seconds,
        cpu=web.eks.cpu,
        memory=web.eks.memory,
        min_replicas=web.eks.min_replicas,
        max_replicas=web.eks.max_replicas,
        cpu_target_percent=web.eks.cpu_target_percent,
        environment=dict(environment),
        secrets={name: config.parameter_of(web, name) for name in web.secrets},
        settings_revision=pod_revision(environment, settings_revision),
        target_group_arn=target_group_arn,
        region=config.region,
        secret_store_name=secret_store_name(config),
        secret_store_service_account=ESO_SERVICE_ACCOUNT,
        secret_store_namespace=ESO_NAMESPACE,
    )
