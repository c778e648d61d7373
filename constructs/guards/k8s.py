"""Kubernetes objects as the app deploys them, for the EKS rules (a helper module, not a rule).

Rules read the manifests CloudFormation will apply: every ``Custom::AWSCDK-EKS-KubernetesResource``'s
``Manifest`` (a JSON string, or an ``Fn::Join`` whose tokens sit inside JSON strings) is flattened with each
intrinsic replaced by a placeholder and parsed. Reading the template rather than the cdk8s chart objects means
a manifest added by hand with ``cluster.add_manifest`` is checked too, and what is checked is what is deployed;
placeholders map back to their intrinsics (e.g. the IRSA role's ``Fn::GetAtt``) for cross-checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack

from config.schema import AppConfig, HealthContract
from config.services import Service
from constructs.guards.framework import (
    ENV_READERS,
    SECRET_READERS,
    EnvVar,
    Finding,
    Resource,
    SecretRef,
    Tree,
    strings,
)
from k8s.props import workload_name

MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"
HELM_CHART = "Custom::AWSCDK-EKS-HelmChart"
PLACEHOLDER = "__cfn_token_{}__"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")


def flatten(value: Any) -> tuple[str, dict[str, Any]]:
    """A resolved string property as text, each intrinsic inside an ``Fn::Join`` replaced by a placeholder."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        tokens: dict[str, Any] = {}
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                key = PLACEHOLDER.format(len(tokens))
                tokens[key] = part
                out.append(key)
        return separator.join(out), tokens
    key = PLACEHOLDER.format(0)
    return key, {key: value}


@dataclass(frozen=True)
class K8sObject:
    """One object of one applied manifest (a manifest resource is one cdk8s chart or one ``add_manifest``)."""

    resource: Resource
    body: dict[str, Any]
    tokens: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str((self.body.get("metadata") or {}).get("namespace") or "default")

    @property
    def where(self) -> str:
        return f"{self.resource.path} {self.kind}/{self.name}"

    def intrinsic(self, value: Any) -> Any:
        """The CloudFormation intrinsic a placeholder stands for (None for a literal)."""
        return self.tokens.get(value) if isinstance(value, str) else None


def manifest_objects(resource: Resource) -> list[K8sObject]:
    text, tokens = flatten(resource.props.get("Manifest"))
    try:
        documents = json.loads(text)
    except (TypeError, ValueError):
        return []
    documents = documents if isinstance(documents, list) else [documents]
    return [K8sObject(resource, doc, tokens) for doc in documents if isinstance(doc, dict)]


def k8s_objects(tree: Tree) -> list[K8sObject]:
    return [obj for resource in tree.of_type(MANIFEST) for obj in manifest_objects(resource)]


@dataclass(frozen=True)
class HelmRelease:
    resource: Resource
    chart: str
    namespace: str
    values: dict[str, Any]
    tokens: dict[str, Any]


def helm_releases(tree: Tree) -> list[HelmRelease]:
    releases = []
    for resource in tree.of_type(HELM_CHART):
        text, tokens = flatten(resource.props.get("Values") or "{}")
        try:
            values = json.loads(text)
        except ValueError:
            values = {}
        releases.append(
            HelmRelease(
                resource,
                str(resource.props.get("Chart", "")),
                str(resource.props.get("Namespace") or "default"),
                values if isinstance(values, dict) else {},
                tokens,
            )
        )
    return releases


def pod_spec(obj: K8sObject) -> dict[str, Any] | None:
    """The pod spec of a workload object, or None for other kinds."""
    spec = obj.body.get("spec") or {}
    if obj.kind == "Pod":
        return dict(spec)
    if obj.kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif obj.kind not in WORKLOAD_KINDS:
        return None
    template = spec.get("template") or {}
    return dict(template.get("spec") or {})


def workloads(objects: list[K8sObject]) -> Iterator[tuple[K8sObject, dict[str, Any]]]:
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            yield obj, spec


def web_service_of(config: AppConfig, obj: K8sObject) -> Service | None:
    """The web service a workload runs, matched by its name (``k8s.props.workload_name``: ``<app>`` for the default
    web service, ``<app>-<service>`` for a routed one); None for any other workload."""
    if obj.kind in ("Job", "CronJob", "Pod"):
        return None
    return next((s for s in config.webs if workload_name(config, s) == obj.name), None)


def health_of(config: AppConfig, obj: K8sObject) -> HealthContract:
    """The health contract a workload's probes follow: its web service's own, else the stage's."""
    service = web_service_of(config, obj)
    return service.health if service is not None and service.health is not None else config.health


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def has_workload(resource: Resource) -> bool:
    return any(pod_spec(obj) is not None for obj in manifest_objects(resource))


# -- IRSA ------------------------------------------------------------------------------------------------------

SUBJECT = re.compile(r"system:serviceaccount:([a-z0-9.-]+):([a-z0-9.-]+)")


def by_logical_id(tree: Tree, resource: Resource, logical_id: Any) -> Resource | None:
    for other in tree.resources:
        if other.stack is resource.stack and other.stack.get_logical_id(other.node) == logical_id:
            return other
    return None


def referenced(tree: Tree, resource: Resource, intrinsic: Any) -> Resource | None:
    """The resource an ``Fn::GetAtt`` / ``Ref`` in ``resource``'s stack points at."""
    if isinstance(intrinsic, dict) and "Fn::GetAtt" in intrinsic:
        return by_logical_id(tree, resource, intrinsic["Fn::GetAtt"][0])
    if isinstance(intrinsic, dict) and "Ref" in intrinsic:
        return by_logical_id(tree, resource, intrinsic["Ref"])
    return None


def irsa_subjects(tree: Tree, role: Resource) -> set[str]:
    """``namespace:name`` of every service account the role's web-identity trust names (CfnJson included)."""
    subjects: set[str] = set()
    for statement in role.get("assumeRolePolicyDocument", "Statement", default=[]) or []:
        actions = statement.get("Action", [])
        if "sts:AssumeRoleWithWebIdentity" not in ([actions] if isinstance(actions, str) else actions):
            continue
        condition = statement.get("Condition") or {}
        texts = list(strings(condition))
        for value in (condition.get("StringEquals"), condition.get("StringLike")):
            source = referenced(tree, role, value)
            if source is not None:  # Custom::AWSCDKCfnJson: the keys are tokens, so CDK builds the map at deploy
                texts.extend(strings(source.props.get("Value")))
        subjects |= {f"{ns}:{name}" for ns, name in SUBJECT.findall("".join(texts))}
    return subjects


def is_irsa_role(role: Resource) -> bool:
    return "sts:AssumeRoleWithWebIdentity" in json.dumps(role.get("assumeRolePolicyDocument"))


def role_statements(tree: Tree, role: Resource) -> list[dict[str, Any]]:
    """Allow statements attached to an ``AWS::IAM::Role`` resource (inline and ``AWS::IAM::Policy``)."""
    ref = {"Ref": role.stack.get_logical_id(role.node)}
    statements: list[dict[str, Any]] = []
    for policy in tree.of_type("AWS::IAM::Policy"):
        if policy.stack is role.stack and ref in (policy.props.get("roles") or []):
            statements.extend(policy.get("policyDocument", "Statement", default=[]) or [])
    for inline in role.props.get("policies") or []:
        statements.extend((inline.get("policyDocument") or {}).get("Statement", []))
    return [s for s in statements if s.get("Effect") == "Allow"]


def eks_stacks(tree: Tree) -> set[int]:
    """ids of stacks with an EKS cluster that runs pods on Fargate (has a Fargate profile)."""
    return {id(r.stack) for r in tree.of_type("AWS::EKS::FargateProfile")}


# -- settings readers (registered in framework.ENV_READERS / SECRET_READERS) --------------------------------------


def _config_maps(objects: list[K8sObject]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o.namespace, o.name): dict(o.body.get("data") or {}) for o in objects if o.kind == "ConfigMap"}


def external_secret_keys(objects: list[K8sObject]) -> dict[tuple[str, str], dict[str, str]]:
    """(namespace, target secret name) -> {key: remote ref key} for every ExternalSecret."""
    produced: dict[tuple[str, str], dict[str, str]] = {}
    for obj in objects:
        if obj.kind != "ExternalSecret":
            continue
        spec = obj.body.get("spec") or {}
        target = (spec.get("target") or {}).get("name") or obj.name
        keys = produced.setdefault((obj.namespace, target), {})
        for item in spec.get("data") or []:
            keys[str(item.get("secretKey"))] = str((item.get("remoteRef") or {}).get("key", ""))
    return produced


def k8s_env(resource: Resource) -> Iterator[EnvVar]:
    """Plain settings of every container: literal ``env`` values and the ConfigMaps it reads."""
    objects = manifest_objects(resource)
    maps = _config_maps(objects)
    for obj, spec in workloads(objects):
        for container in containers(spec):
            where = f"{obj.kind}/{obj.name} container {container.get('name')}"
            for source in container.get("envFrom") or []:
                ref = source.get("configMapRef") or {}
                for name, value in maps.get((obj.namespace, str(ref.get("name"))), {}).items():
                    yield EnvVar(resource, f"{where} envFrom {ref.get('name')}", source.get("prefix", "") + name, value)
            for item in container.get("env") or []:
                value_from = item.get("valueFrom") or {}
                if "value" in item:
                    yield EnvVar(resource, f"{where} env", item.get("name"), item.get("value"))
                elif "configMapKeyRef" in value_from:
                    ref = value_from["configMapKeyRef"]
                    value = maps.get((obj.namespace, str(ref.get("name"))), {}).get(ref.get("key"))
                    yield EnvVar(resource, f"{where} configMapKeyRef", item.get("name"), value)


def k8s_secrets(resource: Resource) -> Iterator[SecretRef]:
    """Secret settings of every container, each with the remote key its ExternalSecret reads ('' if none)."""
    objects = manifest_objects(resource)
    produced = external_secret_keys(objects)
    for obj, spec in workloads(objects):
        for container in containers(spec):
            where = f"{obj.kind}/{obj.name} container {container.get('name')}"
            for item in container.get("env") or []:
                ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    remote = produced.get((obj.namespace, ref.get("name")), {}).get(ref.get("key"), "")
                    yield resource, f"{where} secretKeyRef", item.get("name"), remote
            for source in container.get("envFrom") or []:
                ref = source.get("secretRef")
                if ref:
                    for key, remote in produced.get((obj.namespace, ref.get("name")), {}).items():
                        yield resource, f"{where} envFrom {ref.get('name')}", source.get("prefix", "") + key, remote


# The EKS target delivers settings through manifests; the shared rules (missing-env-vars, plaintext-secrets,
# jwt-secret-inconsistent) read them through these registries like ECS task definitions and EB option settings.
ENV_READERS[MANIFEST] = k8s_env
SECRET_READERS[MANIFEST] = k8s_secrets


def observability_findings(rule_id: str, tree: Tree) -> Iterator[Finding]:
    """logs-missing for EKS Fargate: the ``aws-observability`` namespace (label ``aws-observability: enabled``) and
    its ``aws-logging`` ConfigMap are applied in the target's stack and write to the target's log group."""
    objects = k8s_objects(tree)
    for target in (t for t in tree.targets if t.kind == "eks"):
        stack = Stack.of(target)
        mine = [o for o in objects if o.resource.stack is stack]
        namespace = next((o for o in mine if o.kind == "Namespace" and o.name == "aws-observability"), None)
        labels = ((namespace.body.get("metadata") or {}).get("labels") or {}) if namespace else {}
        if labels.get("aws-observability") != "enabled":
            yield Finding(
                rule_id,
                target.node.path,
                "no Namespace aws-observability labelled aws-observability: enabled",
                "apply the namespace chart (Fargate's log router only reads that namespace)",
            )
        logging = next(
            (
                o
                for o in mine
                if o.kind == "ConfigMap" and (o.namespace, o.name) == ("aws-observability", "aws-logging")
            ),
            None,
        )
        output = "\n".join(str(v) for v in ((logging.body.get("data") or {}) if logging else {}).values())
        # The group's literal name (its log_group_name attribute resolves to a Ref).
        resources = [tree.resource_for(group.node.default_child) for group in target.log_groups]
        groups = [r.props.get("logGroupName") for r in resources if r is not None]
        if not any(isinstance(group, str) and f"log_group_name {group}\n" in output for group in groups):
            yield Finding(
                rule_id,
                target.node.path,
                "no aws-logging ConfigMap writing to the target's log group",
                "ConfigMap aws-observability/aws-logging with a cloudwatch_logs output to that group",
            )
