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


def service_props(
    config: AppConfig, service: Service, *, role_arn: str, service_account: str, settings_revision: str = ""
) -> ServiceChartProps:
    """A worker, job or the migrate step as a chart; ``role_arn`` is a CDK token in the stack."""
    assert service.command is not None and service.kind != "web"
    sizing = service.eks
    environment = runtime_environment(config, service)
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
        secrets={name: config.parameter_name(name) for name in service.secrets},
        settings_revision=pod_revision(environment, settings_revision),
        secret_store_name=secret_store_name(config),
        progress_deadline_seconds=config.health.deploy_deadline_seconds,
    )


def app_props(
    config: AppConfig,
    *,
    environment: Mapping[str, str],
    role_arn: str,
    target_group_arn: str,
    settings_revision: str = "",
) -> AppChartProps:
    """The web service's chart; ``environment`` is ``runtime_environment(config, web)``; the ARNs are CDK tokens
    in the stack, placeholders in ``k8s/dist``."""
    web = config.web
    health = config.health
    return AppChartProps(
        name=config.app,
        namespace=config.eks.namespace,
        service_account=config.eks.service_account,
        role_arn=role_arn,
        image=web.image,
        command=list(web.command) if web.command else None,
        port=config.container_port,
        health_port=config.health_port,
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
        secrets={name: config.parameter_name(name) for name in web.secrets},
        settings_revision=pod_revision(environment, settings_revision),
        target_group_arn=target_group_arn,
        region=config.region,
        secret_store_service_account=ESO_SERVICE_ACCOUNT,
        secret_store_namespace=ESO_NAMESPACE,
    )
