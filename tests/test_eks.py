"""EKS Fargate target: one synth of a stage with every target side by side, and each owned guard's bad case.

The negative tests build minimal L1s (a Fargate profile, a raw manifest resource) in a bare guarded stack: a
FargateCluster synth carries the ~57 MB kubectl layer, so only the module fixture synthesizes a real one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2, aws_eks as eks_l1, aws_iam as iam, aws_logs as logs, aws_sns as sns
from pydantic import ValidationError

from config import AppConfig, load_config, resolve_account
from config.services import pascal
from constructs.compute_target import ComputeTarget, runtime_environment
from constructs.guards import RULES, register_guards
from constructs.load_balancer import WebLoadBalancer
from constructs.rollout_gate import revision
from k8s.props import app_props, secret_store_name, service_account_name, workload_name
from stacks import build_stacks
from tests.conftest import ROOT, Synthesized, new_app, stage_config
from tests.test_guards import assert_refused, refusals

# The dev stage's web service, for declarations built by hand.
WEB = stage_config("dev").web

OWNED_IDS = {
    "eks-fargate-pod-sg",
    "irsa-annotation-trust",
    "pod-identity-on-fargate",
    "fargate-profile-namespace",
    "fargate-unsupported-k8s",
    "k8s-probe-timing",
    "k8s-secret-configmap-missing",
    "k8s-ingress-fargate",
    "iam-app-permissions",
}
APP_PERMISSIONS = [{"actions": ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"], "resources": ["*"]}]


def side_by_side() -> AppConfig:
    """dev with ecs, eb and eks at once; a larger DB class so three targets fit the connection budget."""
    dev = stage_config("dev")
    return stage_config(
        "dev",
        targets=["ecs", "eb", "eks"],
        database={**dev.database.model_dump(), "instance_class": "t4g.medium"},
        permissions=APP_PERMISSIONS,
    )


@pytest.fixture(scope="module")
def synth() -> Synthesized:
    config = side_by_side()
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config)  # every guard + cdk-nag: reaching the assertions means zero refusals
    return Synthesized(config, stacks, app.synth())


@pytest.fixture(scope="module")
def template(synth: Synthesized) -> dict[str, Any]:
    assert synth.stacks.eks is not None
    return synth.template(synth.stacks.eks)


def _of_type(template: dict[str, Any], cfn_type: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


def _flat(value: Any) -> str:
    """A manifest / values property as text, tokens as <TOKEN>."""
    if isinstance(value, str):
        return value
    return "".join(p if isinstance(p, str) else "<TOKEN>" for p in value["Fn::Join"][1])


def _manifests(template: dict[str, Any]) -> list[str]:
    return [
        _flat(r["Properties"]["Manifest"]) for r in _of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").values()
    ]


def test_every_owned_id_has_a_rule() -> None:
    assert {rule.id for rule in RULES} >= OWNED_IDS


def test_all_targets_synthesize_side_by_side(synth: Synthesized) -> None:
    names = {s.stack_name for s in synth.stacks.all()}
    assert {"shop-dev-ecs", "shop-dev-eb", "shop-dev-eks"} <= names


def test_cluster_is_private_pinned_and_logs_its_control_plane(template: dict[str, Any]) -> None:
    (cluster,) = _of_type(template, "AWS::EKS::Cluster").values()
    props = cluster["Properties"]
    assert props["Version"] == "1.33"
    assert props["ResourcesVpcConfig"]["EndpointPublicAccess"] is False
    assert props["ResourcesVpcConfig"]["EndpointPrivateAccess"] is True
    enabled = {t["Type"] for t in props["Logging"]["ClusterLogging"]["EnabledTypes"]}
    assert enabled == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    handlers = [f for f in _of_type(template, "AWS::Lambda::Function").values() if "kubectl" in json.dumps(f).lower()]
    assert any("VpcConfig" in f["Properties"] for f in handlers), "kubectl handler must run in the VPC"


def test_irsa_trust_names_the_app_service_account(synth: Synthesized, template: dict[str, Any]) -> None:
    eks = synth.config.eks
    subject = f'system:serviceaccount:{eks.namespace}:{eks.service_account}"'
    trusts = [_flat(r["Properties"]["Value"]) for r in _of_type(template, "Custom::AWSCDKCfnJson").values()]
    assert any(subject in t and ':aud":"sts.amazonaws.com"' in t for t in trusts)
    assert any("system:serviceaccount:external-secrets:external-secrets" in t for t in trusts)
    assert not _of_type(template, "AWS::EKS::PodIdentityAssociation")
    assert _of_type(template, "AWS::IAM::OIDCProvider"), "native OIDC provider (cdk.json flag)"


def test_service_account_manifest_carries_the_role_annotation(template: dict[str, Any]) -> None:
    assert any(
        '"kind":"ServiceAccount"' in m
        and '"eks.amazonaws.com/role-arn":"<TOKEN>"' in m
        and '"serviceAccountName":"app"' in m
        for m in _manifests(template)
    )


def test_fargate_profiles_cover_every_namespace_with_pods(synth: Synthesized, template: dict[str, Any]) -> None:
    selected = {
        s["Namespace"]
        for p in _of_type(template, "AWS::EKS::FargateProfile").values()
        for s in p["Properties"]["Selectors"]
    }
    assert selected == {"default", "kube-system", synth.config.eks.namespace, "external-secrets"}
    assert all(p["Properties"].get("Subnets") for p in _of_type(template, "AWS::EKS::FargateProfile").values())


def test_cluster_security_group_reaches_db_and_cache_from_the_eks_stack(
    synth: Synthesized, template: dict[str, Any]
) -> None:
    (cluster_id,) = _of_type(template, "AWS::EKS::Cluster")
    pods = {"Fn::GetAtt": [cluster_id, "ClusterSecurityGroupId"]}
    ingress = [r["Properties"] for r in _of_type(template, "AWS::EC2::SecurityGroupIngress").values()]
    from_pods = [r for r in ingress if r.get("SourceSecurityGroupId") == pods]
    # Ports and target groups are the data stack's outputs (weak cross-stack references).
    targets = sorted(json.dumps(r["GroupId"]) for r in from_pods)
    assert len(from_pods) == 2 and "DatabaseSecurityGroup" in targets[0] + targets[1]
    assert "CacheSecurityGroup" in targets[0] + targets[1]
    into_pods = [r for r in ingress if r.get("GroupId") == pods]
    assert [r["FromPort"] for r in into_pods] == [synth.config.container_port]  # from the ALB only
    data = synth.template(synth.stacks.data)
    assert not any("Eks" in json.dumps(r) for r in _of_type(data, "AWS::EC2::SecurityGroupIngress").values()), (
        "the data stack must not change for EKS"
    )


def test_alb_controller_gets_region_and_vpc_id(synth: Synthesized, template: dict[str, Any]) -> None:
    charts = {
        r["Properties"]["Chart"]: r["Properties"] for r in _of_type(template, "Custom::AWSCDK-EKS-HelmChart").values()
    }
    values = _flat(charts["aws-load-balancer-controller"]["Values"])
    assert f'"region":"{synth.config.region}"' in values and '"vpcId":"<TOKEN>"' in values
    assert f".dkr.ecr.{synth.config.region}.amazonaws.com/amazon/aws-load-balancer-controller" in values
    eso = charts["external-secrets"]
    assert (eso["Version"], eso["Namespace"], eso["Repository"]) == (
        "0.20.4",
        "external-secrets",
        "https://charts.external-secrets.io",
    )
    assert '"installCRDs":true' in _flat(eso["Values"])


def test_target_group_binding_uses_the_cloudformation_target_group(template: dict[str, Any]) -> None:
    (group_id,) = _of_type(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    (app,) = [
        r["Properties"]["Manifest"]
        for r in _of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").values()
        if "TargetGroupBinding" in json.dumps(r)
    ]
    assert {"Ref": group_id} in app["Fn::Join"][1]
    assert '"targetType":"ip"' in _flat(app)


def test_app_permissions_only_on_the_app_role(synth: Synthesized, template: dict[str, Any]) -> None:
    assert synth.stacks.eks is not None
    app_role = synth.stacks.eks.resolve(synth.stacks.eks.eks.app_role.role_name)
    holders = [
        p["Properties"]["Roles"]
        for p in _of_type(template, "AWS::IAM::Policy").values()
        if "cloudwatch:GetMetricData" in json.dumps(p["Properties"]["PolicyDocument"])
    ]
    assert holders == [[app_role]]


def test_healthy_host_alarm_and_outputs(synth: Synthesized, template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in _of_type(template, "AWS::CloudWatch::Alarm").values()]
    healthy = [a for a in alarms if a["MetricName"] == "HealthyHostCount"]
    assert healthy and healthy[0]["Threshold"] == synth.config.eks.min_replicas
    assert set(template["Outputs"]) >= {
        "ClusterName",
        "ComputeSecurityGroupId",
        "TargetGroupArn",
        "LoadBalancerArn",
        "ConsumerRoleArn",
        "LogGroupName",
    }
    groups = [g["Properties"] for g in _of_type(template, "AWS::Logs::LogGroup").values()]
    assert {"LogGroupName": "/shop/dev/eks/app", "RetentionInDays": 30}.items() <= next(
        g for g in groups if g.get("LogGroupName") == "/shop/dev/eks/app"
    ).items()


def test_cfn_lint_is_clean_on_the_eks_template(synth: Synthesized) -> None:
    assert synth.stacks.eks is not None
    path = synth.assembly.get_stack_by_name(synth.stacks.eks.stack_name).template_full_path
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--config-file", str(ROOT / ".cfnlintrc.yaml"), path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- config refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eks", "fragment"),
    [
        ({"identity": "pod_identity"}, "[pod-identity-on-fargate]"),
        ({"memory": "1G"}, "[fargate-memory-oom]"),
    ],
)
def test_config_refuses(eks: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        stage_config("dev", eks=eks)


# -- guards: minimal bad cases ------------------------------------------------------------------------------------


def _fargate(stack: cdk.Stack, *namespaces: str) -> eks_l1.CfnCluster:
    cluster = eks_l1.CfnCluster(
        stack,
        "Cluster",
        role_arn="arn:aws:iam::000000000000:role/eks",
        resources_vpc_config=eks_l1.CfnCluster.ResourcesVpcConfigProperty(subnet_ids=["subnet-1"]),
    )
    eks_l1.CfnFargateProfile(
        stack,
        "Profile",
        cluster_name=cluster.ref,
        pod_execution_role_arn="arn:aws:iam::000000000000:role/pod",
        selectors=[eks_l1.CfnFargateProfile.SelectorProperty(namespace=ns) for ns in namespaces],
    )
    return cluster


def _manifest(stack: cdk.Stack, construct_id: str, *objects: dict[str, Any]) -> cdk.CfnResource:
    return cdk.CfnResource(
        stack,
        construct_id,
        type="Custom::AWSCDK-EKS-KubernetesResource",
        properties={
            "ServiceToken": "arn:aws:lambda:eu-west-1:000000000000:function:x",
            "Manifest": json.dumps(list(objects)),
        },
    )


def _deployment(namespace: str = "app", *, pod: dict[str, Any] | None = None, **container: Any) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/health", "port": 8000}}
    base = {
        "name": "app",
        "image": "x",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 20},
        "livenessProbe": probe,
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8000}},
    }
    base.update(container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"template": {"spec": {"serviceAccountName": "app", "containers": [base], **(pod or {})}}},
    }


def test_fails_when_db_admits_a_node_group_instead_of_the_cluster_sg(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("eks-fargate-pods.amazonaws.com"))
    ComputeTarget(
        stack,
        "Declaration",
        kind="eks",
        service=WEB,
        compute=[],
        security_group=ec2.SecurityGroup(stack, "NodeSg", vpc=vpc),
        secret_reader=role,
        image_puller=role,
        max_units=2,
        log_groups=[logs.LogGroup(stack, "Logs", retention=logs.RetentionDays.ONE_MONTH)],
    )
    assert_refused(app, "eks-fargate-pod-sg", "Test/Declaration", "not the cluster security group")


def test_fails_when_the_role_trusts_another_service_account(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    provider = iam.OidcProviderNative(stack, "Oidc", url="https://oidc.eks.eu-west-1.amazonaws.com/id/X")
    role = iam.Role(
        stack,
        "AppRole",
        assumed_by=iam.OpenIdConnectPrincipal(provider).with_conditions(
            {"StringEquals": {"oidc.eks.eu-west-1.amazonaws.com/id/X:sub": "system:serviceaccount:app:other"}}
        ),
    )
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "app", "namespace": "app", "annotations": {"eks.amazonaws.com/role-arn": role.role_arn}},
    }
    _manifest(stack, "Chart", account, _deployment())
    assert_refused(app, "irsa-annotation-trust", "Test/AppRole", "pods run as app:app")


def test_fails_when_the_deployment_uses_a_service_account_from_nowhere(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    _manifest(stack, "Chart", _deployment())
    assert_refused(app, "irsa-annotation-trust", "is not a ServiceAccount of the same chart")


def test_fails_on_pod_identity_with_fargate(guarded_stack) -> None:
    app, stack = guarded_stack()
    cluster = _fargate(stack, "app")
    eks_l1.CfnPodIdentityAssociation(
        stack,
        "Assoc",
        cluster_name=cluster.ref,
        namespace="app",
        service_account="app",
        role_arn="arn:aws:iam::0:role/x",
    )
    assert_refused(app, "pod-identity-on-fargate", "Test/Assoc", "app/app")


def test_fails_when_a_namespace_has_no_fargate_profile(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    _manifest(stack, "Chart", _deployment("worker"))
    assert_refused(app, "fargate-profile-namespace", "namespace 'worker' has no Fargate profile")


def test_fails_on_daemonset_hostnetwork_and_privileged(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    daemon = {**_deployment(pod={"hostNetwork": True}, securityContext={"privileged": True}), "kind": "DaemonSet"}
    _manifest(stack, "Chart", daemon)
    assert_refused(app, "fargate-unsupported-k8s", "DaemonSet", "hostNetwork: true", "privileged container app")


def test_fails_when_requests_differ_from_limits(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    sized = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    _manifest(stack, "Chart", _deployment(resources=sized))
    assert_refused(app, "fargate-memory-oom", "memory requests=512Mi limits=1Gi")


def test_fails_without_readiness_and_with_a_short_startup_budget(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    _manifest(stack, "Chart", _deployment(readinessProbe=None, startupProbe={"httpGet": {"path": "/health"}}))
    assert_refused(app, "k8s-probe-timing", "no readinessProbe", "startup budget 10x3=30s < boot_seconds=60")


def test_fails_when_a_secret_key_is_not_produced_by_the_chart(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    env = [{"name": "JWT_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "JWT_SECRET_KEY"}}}]
    _manifest(stack, "Chart", _deployment(env=env, envFrom=[{"configMapRef": {"name": "settings"}}]))
    assert_refused(
        app,
        "k8s-secret-configmap-missing",
        "Secret 'app-secrets' is not produced by this chart",
        "ConfigMap 'settings' is not produced",
    )


def test_fails_on_instance_targets_without_a_controller(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    binding = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "app", "namespace": "app"},
        "spec": {"serviceRef": {"name": "app", "port": 80}, "targetGroupARN": "arn", "targetType": "instance"},
    }
    _manifest(stack, "Chart", binding)
    assert_refused(app, "k8s-ingress-fargate", "targetType=instance", "no AWS Load Balancer Controller")


def test_fails_when_app_permissions_land_on_another_role(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    provider = iam.OidcProviderNative(stack, "Oidc", url="https://oidc.eks.eu-west-1.amazonaws.com/id/X")

    def irsa(construct_id: str, subject: str) -> iam.Role:
        return iam.Role(
            stack,
            construct_id,
            assumed_by=iam.OpenIdConnectPrincipal(provider).with_conditions(
                {"StringEquals": {"oidc.eks.eu-west-1.amazonaws.com/id/X:sub": f"system:serviceaccount:{subject}"}}
            ),
        )

    irsa("AppRole", "app:app").add_to_principal_policy(
        iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
    )
    irsa("OtherRole", "external-secrets:external-secrets").add_to_principal_policy(
        iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
    )
    # dev declares no permissions: any action on the app role is undeclared
    assert_refused(
        app, "iam-app-permissions", "Test/AppRole", "cloudwatch:GetMetricData beyond its declared permissions"
    )


def test_fails_when_fargate_logging_is_not_configured(guarded_stack) -> None:
    app, stack = guarded_stack()
    _fargate(stack, "app")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("eks-fargate-pods.amazonaws.com"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    ComputeTarget(
        stack,
        "Declaration",
        kind="eks",
        service=WEB,
        compute=[],
        security_group=ec2.SecurityGroup(stack, "Sg", vpc=vpc),
        secret_reader=role,
        image_puller=role,
        max_units=2,
        log_groups=[
            logs.LogGroup(stack, "Logs", log_group_name="/shop/dev/eks/app", retention=logs.RetentionDays.ONE_MONTH)
        ],
    )
    assert_refused(app, "logs-missing", "aws-observability labelled", "no aws-logging ConfigMap")


def test_shared_rules_read_k8s_settings(guarded_stack) -> None:
    """missing-env-vars / plaintext-secrets / jwt-secret-inconsistent see the Deployment's env through the readers."""
    app, stack = guarded_stack()
    _fargate(stack, "app")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("eks-fargate-pods.amazonaws.com"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    ComputeTarget(
        stack,
        "Declaration",
        kind="eks",
        service=WEB,
        compute=[],
        security_group=ec2.SecurityGroup(stack, "Sg", vpc=vpc),
        secret_reader=role,
        image_puller=role,
        max_units=2,
        log_groups=[logs.LogGroup(stack, "Logs", retention=logs.RetentionDays.ONE_MONTH)],
    )
    settings = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "s", "namespace": "app"},
        "data": {"JWT_SECRET_KEY": "x"},
    }
    external = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "e", "namespace": "app"},
        "spec": {
            "target": {"name": "e"},
            "data": [{"secretKey": "SECRET_KEY", "remoteRef": {"key": "/shop/dev/OTHER"}}],
        },
    }
    env = [{"name": "SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "e", "key": "SECRET_KEY"}}}]
    _manifest(stack, "Chart", settings, external, _deployment(env=env, envFrom=[{"configMapRef": {"name": "s"}}]))
    lines = [
        assert_refused(app, "plaintext-secrets", "JWT_SECRET_KEY=<plain value>"),
        assert_refused(app, "jwt-secret-inconsistent", "SECRET_KEY reads /shop/dev/OTHER"),
        assert_refused(app, "missing-env-vars", "does not receive"),
    ]
    assert all(lines)


# -- several web services (config/examples/multi-web.yaml on ecs + eks) -------------------------------------------

MULTI_WEB = ROOT / "config" / "examples" / "multi-web.yaml"


def multi_web_config(**services: dict[str, Any]) -> AppConfig:
    """The multi-web example on ECS and EKS; ``services`` replaces keys of a service's entry (e.g. its health)."""
    config, _ = resolve_account(load_config(path=MULTI_WEB), environ={})
    data = config.model_dump(exclude_none=True)
    for name, updates in services.items():
        data["services"][name] = {**data["services"][name], **updates}
    return AppConfig.model_validate({**data, "targets": ["ecs", "eks"]})


@pytest.fixture(scope="module")
def multi_web() -> Synthesized:
    # api declares its own AWS permissions: they must land on its own IRSA role only.
    config = multi_web_config(api={"permissions": APP_PERMISSIONS})
    app = new_app()
    stacks = build_stacks(app, config)
    register_guards(app, config)  # every guard + cdk-nag: reaching the assertions means zero refusals
    return Synthesized(config, stacks, app.synth())


@pytest.fixture(scope="module")
def multi_web_template(multi_web: Synthesized) -> dict[str, Any]:
    assert multi_web.stacks.eks is not None
    return multi_web.template(multi_web.stacks.eks)


def _objects(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(logical id of its manifest resource, object) of every applied Kubernetes object; tokens as <TOKEN>."""
    return [
        (logical_id, obj)
        for logical_id, r in _of_type(template, "Custom::AWSCDK-EKS-KubernetesResource").items()
        for obj in json.loads(_flat(r["Properties"]["Manifest"]))
    ]


def _named(template: dict[str, Any], kind: str, name: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(i, o) for i, o in _objects(template) if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_multi_web_synthesizes_on_eks_with_every_guard(multi_web: Synthesized) -> None:
    assert [w.name for w in multi_web.config.webs] == ["storefront", "admin", "api"]
    assert multi_web.stacks.eks is not None and set(multi_web.stacks.eks.eks.manifests) >= {
        "storefront",
        "admin",
        "api",
    }


def test_multi_web_binds_each_service_to_its_own_target_group(
    multi_web: Synthesized, multi_web_template: dict[str, Any]
) -> None:
    stack = multi_web.stacks.eks
    assert stack is not None
    groups = {name: stack.resolve(t.target_group.target_group_arn) for name, t in stack.load_balancer.targets.items()}
    assert len({json.dumps(g) for g in groups.values()}) == 3
    manifests = _of_type(multi_web_template, "Custom::AWSCDK-EKS-KubernetesResource")
    bindings = [o for _, o in _objects(multi_web_template) if o["kind"] == "TargetGroupBinding"]
    assert len(bindings) == 3
    for web in multi_web.config.webs:
        name = workload_name(multi_web.config, web)
        logical_id, binding = _named(multi_web_template, "TargetGroupBinding", name)
        assert binding["spec"] == {
            "serviceRef": {"name": name, "port": web.port},
            "targetGroupARN": "<TOKEN>",
            "targetType": "ip",
        }
        parts = manifests[logical_id]["Properties"]["Manifest"]["Fn::Join"][1]
        assert [g for g in groups.values() if g in parts] == [groups[web.name]], f"{name} binds another group"
        _, service = _named(multi_web_template, "Service", name)
        assert service["spec"]["ports"][0]["port"] == web.port


def test_multi_web_deployments_follow_their_own_contract_sizing_and_settings(
    multi_web: Synthesized, multi_web_template: dict[str, Any]
) -> None:
    config = multi_web.config
    for web in config.webs:
        health = web.health
        assert health is not None
        name = workload_name(config, web)
        _, deployment = _named(multi_web_template, "Deployment", name)
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == web.image
        assert container["ports"] == [{"name": "http", "containerPort": web.port, "protocol": "TCP"}]
        startup, liveness, readiness = (container[p] for p in ("startupProbe", "livenessProbe", "readinessProbe"))
        assert startup["httpGet"]["path"] == liveness["httpGet"]["path"] == health.liveness_path
        assert readiness["httpGet"]["path"] == health.readiness_path
        assert {p["httpGet"]["port"] for p in (startup, liveness, readiness)} == {web.health_port}
        assert startup["periodSeconds"] * startup["failureThreshold"] >= health.boot_seconds
        assert (liveness["periodSeconds"], liveness["timeoutSeconds"]) == (
            health.interval_seconds,
            health.timeout_seconds,
        )
        assert deployment["spec"]["progressDeadlineSeconds"] == health.deploy_deadline_seconds
        assert container["resources"]["limits"] == {"cpu": web.eks.cpu, "memory": web.eks.memory}
        _, hpa = _named(multi_web_template, "HorizontalPodAutoscaler", name)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (web.eks.min_replicas, web.eks.max_replicas)
        _named(multi_web_template, "PodDisruptionBudget", name)
        # Its own settings only: the ConfigMap is its runtime environment, the ExternalSecret its secrets.
        _, settings = _named(multi_web_template, "ConfigMap", f"{name}-settings")
        assert settings["data"]["PORT"] == str(web.port) and settings["data"]["APP_SERVICE"] == web.name
        assert set(settings["data"]) - set(runtime_environment(config, web, target="eks")) == set()
        _, external = _named(multi_web_template, "ExternalSecret", f"{name}-secrets")
        assert {d["secretKey"] for d in external["spec"]["data"]} == set(web.secrets)
        assert external["spec"]["secretStoreRef"]["name"] == secret_store_name(config)
    api = next(w for w in config.webs if w.name == "api")
    admin = next(w for w in config.webs if w.name == "admin")
    assert (api.port, api.health and api.health.liveness_path) == (8080, "/api/health")
    assert "REDIS_URL" not in admin.secrets and "ALLOWED_ORIGINS" not in admin.settings


def test_multi_web_alb_reaches_the_pods_on_every_port(
    multi_web: Synthesized, multi_web_template: dict[str, Any]
) -> None:
    stack = multi_web.stacks.eks
    assert stack is not None
    alb = stack.resolve(stack.load_balancer.security_group.security_group_id)
    pods = stack.resolve(stack.eks.cluster.cluster_security_group.security_group_id)
    ingress = {
        r["Properties"]["FromPort"]
        for r in _of_type(multi_web_template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("SourceSecurityGroupId") == alb and r["Properties"]["GroupId"] == pods
    }
    egress = {
        r["Properties"]["FromPort"]
        for r in _of_type(multi_web_template, "AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"].get("DestinationSecurityGroupId") == pods
    }
    wanted = {p for w in multi_web.config.webs for p in (w.port, w.health_port)}
    assert wanted == {8000, 8080}
    assert ingress == egress == wanted


def test_multi_web_each_service_runs_as_its_own_irsa_account(
    multi_web: Synthesized, multi_web_template: dict[str, Any]
) -> None:
    stack, config = multi_web.stacks.eks, multi_web.config
    assert stack is not None
    trusts = [_flat(r["Properties"]["Value"]) for r in _of_type(multi_web_template, "Custom::AWSCDKCfnJson").values()]
    for web in config.webs:
        account = service_account_name(config, web)
        assert any(f'system:serviceaccount:{config.eks.namespace}:{account}"' in t for t in trusts), account
        _, deployment = _named(multi_web_template, "Deployment", workload_name(config, web))
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account
        _named(multi_web_template, "ServiceAccount", account)
    assert service_account_name(config, config.web) == config.eks.service_account
    api_role = stack.resolve(stack.eks.roles["api"].role_name)
    holders = [
        p["Properties"]["Roles"]
        for p in _of_type(multi_web_template, "AWS::IAM::Policy").values()
        if "cloudwatch:GetMetricData" in json.dumps(p["Properties"]["PolicyDocument"])
    ]
    assert holders == [[api_role]]


def test_multi_web_healthy_host_alarm_per_target_group(
    multi_web: Synthesized, multi_web_template: dict[str, Any]
) -> None:
    stack = multi_web.stacks.eks
    assert stack is not None
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in _of_type(multi_web_template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "HealthyHostCount"
    }
    names = {"storefront": "shop-staging-eks-HealthyHostCount"}
    names |= {w: f"shop-staging-eks-{w}-HealthyHostCount" for w in ("admin", "api")}
    assert set(alarms) == set(names.values())
    for web in multi_web.config.webs:
        alarm = alarms[names[web.name]]
        assert alarm["Threshold"] == web.eks.min_replicas
        group = stack.resolve(stack.load_balancer.targets[web.name].target_group.target_group_full_name)
        assert {"Name": "TargetGroup", "Value": group} in alarm["Dimensions"]
    assert {"TargetGroupArn", "TargetGroupArnApi", "TargetGroupArnAdmin"} <= set(multi_web_template["Outputs"])


# -- guards read each web service's own contract and service account ----------------------------------------------


def _guarded(config: AppConfig) -> tuple[cdk.App, cdk.Stack]:
    app = new_app()
    stack = cdk.Stack(app, "Test", env=cdk.Environment(account=config.account, region=config.region))
    # A focused refusal test: the bad case breaks resources on purpose; cdk-nag's findings on
    # them would only add noise (the full stage runs with cdk-nag in the module fixtures).
    register_guards(app, config, nag=False)
    return app, stack


def test_fails_when_a_routed_web_startup_budget_misses_its_own_boot_time() -> None:
    # api boots in 120 s (the stage's contract: 60 s): a 5x20=100 s budget covers the stage's, not api's.
    config = multi_web_config(
        api={"health": {"liveness_path": "/api/health", "readiness_path": "/api/ready", "boot_seconds": 120}}
    )
    app, stack = _guarded(config)
    _fargate(stack, "app")
    api = _deployment()
    api["metadata"]["name"] = "shop-api"
    _manifest(stack, "Chart", api)
    assert_refused(app, "k8s-probe-timing", "Deployment/shop-api", "startup budget 5x20=100s < boot_seconds=120")


def test_fails_when_a_routed_web_liveness_uses_its_own_deep_path() -> None:
    app, stack = _guarded(multi_web_config())
    _fargate(stack, "app")
    api = _deployment(livenessProbe={"httpGet": {"path": "/api/ready", "port": 8080}})
    api["metadata"]["name"] = "shop-api"
    _manifest(stack, "Chart", api)
    assert_refused(app, "deep-health-check", "Deployment/shop-api", "livenessProbe on /api/ready", "'/api/health'")


def test_fails_when_a_routed_web_role_lacks_its_declared_permissions() -> None:
    config = multi_web_config(api={"permissions": APP_PERMISSIONS})
    app, stack = _guarded(config)
    _fargate(stack, "app")
    provider = iam.OidcProviderNative(stack, "Oidc", url="https://oidc.eks.eu-west-1.amazonaws.com/id/X")
    iam.Role(
        stack,
        "ApiRole",
        assumed_by=iam.OpenIdConnectPrincipal(provider).with_conditions(
            {"StringEquals": {"oidc.eks.eu-west-1.amazonaws.com/id/X:sub": "system:serviceaccount:app:app-api"}}
        ),
    )
    assert_refused(app, "iam-app-permissions", "Test/ApiRole", "lacks cloudwatch:GetMetricData")


def test_fails_when_a_web_target_group_has_no_target_group_binding() -> None:
    config = multi_web_config()
    app, stack = _guarded(config)
    _fargate(stack, "app")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    balancer = WebLoadBalancer.for_stage(
        stack, config=config, vpc=vpc, alarm_topic=sns.Topic(stack, "Topic"), target="eks", certificate=None
    )
    default = balancer.target_group.target_group_arn  # only the default web service's pods are bound
    binding = {
        "apiVersion": "elbv2.k8s.aws/v1beta1",
        "kind": "TargetGroupBinding",
        "metadata": {"name": "shop", "namespace": "app"},
        "spec": {"serviceRef": {"name": "shop", "port": 8000}, "targetGroupARN": default, "targetType": "ip"},
    }
    cdk.CfnResource(
        stack,
        "Chart",
        type="Custom::AWSCDK-EKS-KubernetesResource",
        properties={
            "ServiceToken": "arn:aws:lambda:eu-west-1:000000000000:function:x",
            "Manifest": stack.to_json_string([binding]),
        },
    )
    assert_refused(
        app, "k8s-ingress-fargate", "no TargetGroupBinding registers the pods of web service api", "service admin"
    )
    unbound = [line for line in refusals(app) if "no TargetGroupBinding registers" in line]
    assert len(unbound) == 2 and not any("storefront" in line for line in unbound)


# -- rollout gates: the stack waits for each Deployment's new pods ---------------------------------------------


def test_every_deployment_has_a_rollout_gate_after_its_manifest(template: dict[str, Any]) -> None:
    gates = _of_type(template, "Custom::AWSCDK-EKS-KubernetesObjectValue")
    deployments = {
        json.loads(doc)["metadata"]["name"]
        for text in _manifests(template)
        for doc in [json.dumps(d) for d in json.loads(text) if isinstance(d, dict)]
        if json.loads(doc).get("kind") == "Deployment"
    }
    waited = {
        p["ObjectName"]: p
        for p in (gate["Properties"] for gate in gates.values())
        if p.get("ObjectType") == "deployment" and "NewReplicaSetAvailable" in p["JsonPath"]
    }
    assert deployments and set(waited) == deployments
    for gate in waited.values():
        assert gate["TimeoutSeconds"] <= 840 and "Revision" in gate  # the kubectl Lambda's limit; re-runs on change
    resources = template["Resources"]
    for resource in resources.values():
        if (
            resource["Type"] == "Custom::AWSCDK-EKS-KubernetesObjectValue"
            and resource["Properties"].get("ObjectType") == "deployment"
        ):
            assert any(resources[d]["Type"] == "Custom::AWSCDK-EKS-KubernetesResource" for d in resource["DependsOn"])


def test_a_gate_runs_again_when_the_release_changes() -> None:
    config = side_by_side()
    web = config.web
    before = app_props(config, web, role_arn="arn", target_group_arn="tg", settings_revision="r1")
    image = before.image.replace(":1.0.0", ":1.0.1")
    same = app_props(config, web, role_arn="arn", target_group_arn="tg", settings_revision="r1")
    assert revision(before) == revision(same)
    assert revision(before) != revision(dataclasses.replace(before, image=image))
    assert revision(before) != revision(
        app_props(config, web, role_arn="arn", target_group_arn="tg", settings_revision="r2")
    )


def test_fails_when_a_deployment_has_no_rollout_gate() -> None:
    config = side_by_side()
    app = new_app()
    stacks = build_stacks(app, config)
    # A focused refusal test: the bad case breaks resources on purpose; cdk-nag's findings on
    # them would only add noise (the full stage runs with cdk-nag in the module fixtures).
    register_guards(app, config, nag=False)
    assert stacks.eks is not None and stacks.eks.eks.node.try_remove_child(f"Rollout{pascal(config.web.name)}")
    assert_refused(app, "manual-rollback", "Deployment/", "no rollout gate")
