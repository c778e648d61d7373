"""The cdk8s charts alone (no AWS): hardening, probes, IRSA annotation, settings, schema validity, dist snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cdk8s
import kubernetes_validate
import pytest

from config import load_config, resolve_account
from config.schema import AppConfig
from constructs.compute_target import runtime_environment
from k8s.app_chart import AppChart, SecretStoreChart
from k8s.namespace_chart import NamespaceChart
from k8s.props import (
    app_props,
    log_group_name,
    namespace_props,
    secret_store_name,
    service_account_name,
    service_props,
    workload_name,
)
from k8s.service_chart import ServiceChart
from k8s.synth import build
from tests.conftest import ROOT, stage_config

ROLE = "arn:aws:iam::123456789012:role/app-irsa"
TARGET_GROUP = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/app/0123456789abcdef"
# Custom resources of the ALB controller and External Secrets: not in the Kubernetes schema, checked by the
# controllers' CRDs at apply time (and by the tests below for the fields that matter).
CRD_KINDS = {"TargetGroupBinding", "ExternalSecret", "ClusterSecretStore"}
KUBERNETES_VERSION = "1.33.0"


@pytest.fixture(scope="module")
def config() -> AppConfig:
    return stage_config("dev", targets=["eks"])


@pytest.fixture(scope="module")
def app_objects(config: AppConfig) -> list[dict[str, Any]]:
    props = app_props(config, environment=runtime_environment(config), role_arn=ROLE, target_group_arn=TARGET_GROUP)
    return list(cdk8s.Testing.synth(AppChart(cdk8s.Testing.app(), "app", props=props)))


@pytest.fixture(scope="module")
def namespace_objects(config: AppConfig) -> list[dict[str, Any]]:
    return list(cdk8s.Testing.synth(NamespaceChart(cdk8s.Testing.app(), "ns", props=namespace_props(config))))


def store_chart(config: AppConfig) -> SecretStoreChart:
    return SecretStoreChart(
        cdk8s.Testing.app(),
        "store",
        name=secret_store_name(config),
        region=config.region,
        service_account="external-secrets",
        namespace="external-secrets",
    )


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(_one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0])


def test_container_is_hardened_and_sized_for_fargate(app_objects: list[dict[str, Any]]) -> None:
    pod = _one(app_objects, "Deployment")["spec"]["template"]["spec"]
    container = _container(app_objects)
    assert container["resources"]["requests"] == container["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert "hostNetwork" not in pod and not any("hostPort" in p for p in container["ports"])


def test_probes_follow_the_health_contract(config: AppConfig, app_objects: list[dict[str, Any]]) -> None:
    container = _container(app_objects)
    startup, liveness, readiness = (container[p] for p in ("startupProbe", "livenessProbe", "readinessProbe"))
    assert startup["periodSeconds"] * startup["failureThreshold"] >= config.health.boot_seconds
    assert startup["httpGet"]["path"] == liveness["httpGet"]["path"] == config.health.liveness_path
    assert readiness["httpGet"]["path"] == config.health.readiness_path
    assert liveness["httpGet"]["port"] == config.health_port


def test_rollout_keeps_capacity_and_scales(config: AppConfig, app_objects: list[dict[str, Any]]) -> None:
    deployment = _one(app_objects, "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert deployment["spec"]["progressDeadlineSeconds"] == config.health.deploy_deadline_seconds
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    hpa = _one(app_objects, "HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (config.eks.min_replicas, config.eks.max_replicas)
    assert _one(app_objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_pods_run_as_the_irsa_service_account(config: AppConfig, app_objects: list[dict[str, Any]]) -> None:
    account = _one(app_objects, "ServiceAccount")
    assert account["metadata"] == {
        "name": config.eks.service_account,
        "namespace": config.eks.namespace,
        "annotations": {"eks.amazonaws.com/role-arn": ROLE},
    }
    pod = _one(app_objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == config.eks.service_account


def test_pods_join_the_alb_target_group_as_ip_targets(config: AppConfig, app_objects: list[dict[str, Any]]) -> None:
    binding = _one(app_objects, "TargetGroupBinding")
    assert binding["apiVersion"] == "elbv2.k8s.aws/v1beta1"
    assert binding["spec"] == {
        "serviceRef": {"name": config.app, "port": config.container_port},
        "targetGroupARN": TARGET_GROUP,
        "targetType": "ip",
    }
    assert _one(app_objects, "Service")["spec"]["type"] == "ClusterIP"


def test_settings_configmap_is_the_runtime_environment(config: AppConfig, app_objects: list[dict[str, Any]]) -> None:
    settings = _one(app_objects, "ConfigMap")
    assert settings["data"] == runtime_environment(config)
    assert _container(app_objects)["envFrom"] == [
        {"configMapRef": {"name": settings["metadata"]["name"], "optional": False}}
    ]


def test_external_secret_has_one_entry_per_secret_setting(config: AppConfig, app_objects: list[dict[str, Any]]) -> None:
    external = _one(app_objects, "ExternalSecret")
    data = {d["secretKey"]: d["remoteRef"]["key"] for d in external["spec"]["data"]}
    assert data == {name: config.parameter_name(name) for name in config.secret_settings}
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in _container(app_objects)["env"]}
    assert set(env) == set(config.secret_settings)
    assert {ref["name"] for ref in env.values()} == {external["spec"]["target"]["name"]}
    store = _one(list(cdk8s.Testing.synth(store_chart(config))), "ClusterSecretStore")
    assert external["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": store["metadata"]["name"]}
    aws = store["spec"]["provider"]["aws"]
    assert (aws["service"], aws["region"]) == ("ParameterStore", config.region)
    assert aws["auth"]["jwt"]["serviceAccountRef"] == {"name": "external-secrets", "namespace": "external-secrets"}
    assert not any(o["kind"] == "Secret" for o in app_objects)


def test_fargate_logging_is_configured(config: AppConfig, namespace_objects: list[dict[str, Any]]) -> None:
    namespaces = {o["metadata"]["name"]: o for o in namespace_objects if o["kind"] == "Namespace"}
    assert set(namespaces) == {config.eks.namespace, "aws-observability"}
    assert namespaces["aws-observability"]["metadata"]["labels"] == {"aws-observability": "enabled"}
    logging = _one(namespace_objects, "ConfigMap")
    assert (logging["metadata"]["name"], logging["metadata"]["namespace"]) == ("aws-logging", "aws-observability")
    output = logging["data"]["output.conf"]
    assert f"log_group_name {log_group_name(config)}\n" in output and f"region {config.region}\n" in output
    assert "auto_create_group false" in output


@pytest.fixture(scope="module")
def service_objects() -> list[dict[str, Any]]:
    """The worker, the CronJob and the migration Job of config/examples/services.yaml."""
    config, _ = resolve_account(load_config(path=ROOT / "config" / "examples" / "services.yaml"), environ={})
    objects: list[dict[str, Any]] = []
    for service in config.workloads:
        if not service.is_web:
            props = service_props(config, service, role_arn=ROLE, service_account=f"app-{service.name}")
            objects += cdk8s.Testing.synth(ServiceChart(cdk8s.Testing.app(), props.name, props=props))
    return objects


def test_worker_rollout_keeps_capacity_and_has_the_progress_deadline(service_objects: list[dict[str, Any]]) -> None:
    config, _ = resolve_account(load_config(path=ROOT / "config" / "examples" / "services.yaml"), environ={})
    workers = [o for o in service_objects if o["kind"] == "Deployment"]
    assert workers
    for worker in workers:
        assert worker["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert worker["spec"]["progressDeadlineSeconds"] == config.health.deploy_deadline_seconds


MULTI_WEB = ROOT / "config" / "examples" / "multi-web.yaml"


@pytest.fixture(scope="module")
def multi_web() -> AppConfig:
    config, _ = resolve_account(load_config(path=MULTI_WEB), environ={})
    return config


@pytest.fixture(scope="module")
def routed_web_objects(multi_web: AppConfig) -> dict[str, list[dict[str, Any]]]:
    """The AppChart of each routed web service of config/examples/multi-web.yaml (api, admin), by service name."""
    charts = {}
    for web in multi_web.webs[1:]:
        props = app_props(multi_web, web, role_arn=ROLE, target_group_arn=f"{TARGET_GROUP}-{web.name}")
        charts[web.name] = list(cdk8s.Testing.synth(AppChart(cdk8s.Testing.app(), props.name, props=props)))
    return charts


def test_a_routed_web_chart_has_its_own_names_port_contract_sizing_and_settings(
    multi_web: AppConfig, routed_web_objects: dict[str, list[dict[str, Any]]]
) -> None:
    assert set(routed_web_objects) == {"api", "admin"}
    for web in multi_web.webs[1:]:
        objects, name, health = routed_web_objects[web.name], workload_name(multi_web, web), web.health
        assert name == f"shop-{web.name}" and health is not None
        account = service_account_name(multi_web, web)
        assert _one(objects, "ServiceAccount")["metadata"]["name"] == account == f"app-{web.name}"
        assert {o["metadata"]["name"] for o in objects if o["kind"] not in ("ConfigMap", "ExternalSecret")} == {
            name,
            account,
        }
        container = _container(objects)
        assert container["ports"][0]["containerPort"] == web.port
        assert container["startupProbe"]["httpGet"] == container["livenessProbe"]["httpGet"]
        assert container["livenessProbe"]["httpGet"] == {
            "port": web.health_port,
            "scheme": "HTTP",
            "path": health.liveness_path,
        }
        assert container["readinessProbe"]["httpGet"]["path"] == health.readiness_path
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= health.boot_seconds
        assert container["resources"]["limits"] == {"cpu": web.eks.cpu, "memory": web.eks.memory}
        hpa = _one(objects, "HorizontalPodAutoscaler")["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (web.eks.min_replicas, web.eks.max_replicas)
        binding = _one(objects, "TargetGroupBinding")["spec"]
        assert binding["serviceRef"] == {"name": name, "port": web.port}
        assert binding["targetGroupARN"] == f"{TARGET_GROUP}-{web.name}"
        assert _one(objects, "ConfigMap")["data"] == runtime_environment(multi_web, web, target="eks")
        external = _one(objects, "ExternalSecret")["spec"]
        assert {d["secretKey"] for d in external["data"]} == set(web.secrets)
        # Every ExternalSecret reads through the stage's one ClusterSecretStore.
        assert external["secretStoreRef"]["name"] == secret_store_name(multi_web)
    api = routed_web_objects["api"]
    assert _container(api)["livenessProbe"]["httpGet"] == {"port": 8080, "scheme": "HTTP", "path": "/api/health"}
    admin_settings = _one(routed_web_objects["admin"], "ConfigMap")["data"]
    assert "ALLOWED_ORIGINS" not in admin_settings  # admin names its settings: only those reach it


def test_every_builtin_manifest_is_valid_for_kubernetes_1_33(
    app_objects: list[dict[str, Any]],
    namespace_objects: list[dict[str, Any]],
    service_objects: list[dict[str, Any]],
    routed_web_objects: dict[str, list[dict[str, Any]]],
) -> None:
    routed = [obj for objects in routed_web_objects.values() for obj in objects]
    objects = [*app_objects, *namespace_objects, *service_objects, *routed]
    for obj in objects:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)  # raises on any schema violation
    kinds = {o["kind"] for o in objects if o["kind"] not in CRD_KINDS}
    assert {"Deployment", "CronJob", "Job", "HorizontalPodAutoscaler", "ServiceAccount", "ConfigMap"} <= kinds


def test_validation_catches_a_broken_manifest(app_objects: list[dict[str, Any]]) -> None:
    broken = {**_one(app_objects, "Deployment"), "spec": {"selector": {}, "template": {"spec": {"containers": 1}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_dist_manifests_match_snapshot(tmp_path: Path, snapshot: Any) -> None:
    # What `make k8s` writes for review (placeholder ARNs), for stage dev.
    files = build(stage_config("dev"), tmp_path / "dist")
    assert [f.name for f in files] == [
        "app.k8s.yaml",
        "namespaces.k8s.yaml",
        "secret-store.k8s.yaml",
        "shop-migrate.k8s.yaml",
    ]
    assert {f.name: f.read_text() for f in files} == snapshot


def test_dist_renders_every_web_service(tmp_path: Path, multi_web: AppConfig) -> None:
    files = {f.name: f.read_text() for f in build(multi_web, tmp_path / "dist")}
    assert set(files) == {
        "app.k8s.yaml",
        "namespaces.k8s.yaml",
        "secret-store.k8s.yaml",
        "shop-admin.k8s.yaml",
        "shop-api.k8s.yaml",
        "shop-fulfilment.k8s.yaml",  # the example's worker
    }
    assert "output TargetGroupArn of the shop-staging-eks stack" in files["app.k8s.yaml"]
    assert "output TargetGroupArnApi of the shop-staging-eks stack" in files["shop-api.k8s.yaml"]
    assert "role/<shop-staging-eks-app-api-irsa-role>" in files["shop-api.k8s.yaml"]
    assert "containerPort: 8080" in files["shop-api.k8s.yaml"]
