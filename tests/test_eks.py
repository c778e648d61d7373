"""EKS Fargate target: one synth of a stage with every target side by side, and each owned guard's bad case.

The negative tests build minimal L1s (a Fargate profile, a raw manifest resource) in a bare guarded stack: a
FargateCluster synth carries the ~57 MB kubectl layer, so only the module fixture synthesizes a real one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2, aws_eks as eks_l1, aws_iam as iam, aws_logs as logs
from pydantic import ValidationError

from config import AppConfig
from constructs.compute_target import ComputeTarget
from constructs.guards import RULES, register_guards
from stacks import build_stacks
from tests.conftest import ROOT, Synthesized, new_app, stage_config
from tests.test_guards import assert_refused

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
