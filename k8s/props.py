"""Chart props from the stage config: one mapping used by the EKS stack and by ``python -m k8s.synth``."""

from __future__ import annotations

from collections.abc import Mapping

from config.schema import AppConfig
from k8s.app_chart import AppChartProps
from k8s.namespace_chart import NamespaceChartProps

ESO_NAMESPACE = "external-secrets"
ESO_SERVICE_ACCOUNT = "external-secrets"


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


def app_props(
    config: AppConfig, *, environment: Mapping[str, str], role_arn: str, target_group_arn: str
) -> AppChartProps:
    """``environment`` is ``runtime_environment(config)``; the ARNs are CDK tokens in the stack, placeholders
    in ``k8s/dist``."""
    health = config.health
    return AppChartProps(
        name=config.app,
        namespace=config.eks.namespace,
        service_account=config.eks.service_account,
        role_arn=role_arn,
        image=config.image,
        port=config.container_port,
        health_port=config.health_port,
        liveness_path=health.liveness_path,
        readiness_path=health.readiness_path,
        interval_seconds=health.interval_seconds,
        timeout_seconds=health.timeout_seconds,
        unhealthy_threshold=health.unhealthy_threshold,
        healthy_threshold=health.healthy_threshold,
        boot_seconds=health.boot_seconds,
        cpu=config.eks.cpu,
        memory=config.eks.memory,
        min_replicas=config.eks.min_replicas,
        max_replicas=config.eks.max_replicas,
        cpu_target_percent=config.eks.cpu_target_percent,
        environment=dict(environment),
        secrets={name: config.parameter_name(name) for name in config.secret_settings},
        target_group_arn=target_group_arn,
        region=config.region,
        secret_store_service_account=ESO_SERVICE_ACCOUNT,
        secret_store_namespace=ESO_NAMESPACE,
    )
