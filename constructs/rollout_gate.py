"""rollout_gate: the EKS stack waits until a Deployment's new pods are ready, or fails (and CloudFormation rolls the
charts back to the previous release).

``kubectl apply`` returns as soon as the API server accepts a manifest; with ``maxUnavailable: 0`` a release whose
pods never get ready leaves the old pods serving, and nothing would notice. The gate is a KubernetesObjectValue
(CDK's kubectl handler, inside the VPC) reading the Deployment's ``Progressing`` condition: it has reason
``NewReplicaSetAvailable`` only once the rollout finished. After ``progressDeadlineSeconds`` without progress the
reason becomes ``ProgressDeadlineExceeded``, the value never appears, the wait times out and the stack update fails.
The gate runs again whenever the Deployment's inputs change (its ``Revision`` property).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from aws_cdk import CfnResource, Duration, Fn, Token, aws_eks_v2 as eks
from constructs import Construct

# The kubectl handler is a Lambda (15 minutes at most): the longest a gate can wait.
MAX_WAIT_SECONDS = 840
# Fargate schedules a pod in one to two minutes: room for that on top of the rollout's own deadline.
PLACEMENT_SECONDS = 180
DONE = '.status.conditions[?(@.reason=="NewReplicaSetAvailable")].status'


def _split(value: Any, tokens: list[str]) -> Any:
    """``value`` with every unresolved token string moved to ``tokens`` (replaced by its index)."""
    if isinstance(value, str) and Token.is_unresolved(value):
        tokens.append(value)
        return f"<token {len(tokens) - 1}>"
    if isinstance(value, dict):
        return {k: _split(v, tokens) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_split(v, tokens) for v in value]
    return value


def revision(props: Any) -> str:
    """A value that changes whenever the chart's inputs do: a hash of the literal props, joined (by CloudFormation)
    with the ARNs and versions that are tokens at synth time."""
    tokens: list[str] = []
    literal = _split(dataclasses.asdict(props), tokens)
    digest = hashlib.sha256(json.dumps(literal, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Fn.join("|", [digest, *tokens]) if tokens else digest


def rollout_gate(
    scope: Construct,
    construct_id: str,
    *,
    cluster: eks.Cluster,
    namespace: str,
    deployment: str,
    props: Any,
    deadline_seconds: int,
    manifest: eks.KubernetesManifest,
) -> eks.KubernetesObjectValue:
    """Wait (after ``manifest``) until Deployment ``deployment`` has rolled out ``props``."""
    gate = eks.KubernetesObjectValue(
        scope,
        construct_id,
        cluster=cluster,  # type: ignore[arg-type]
        object_type="deployment",
        object_name=deployment,
        object_namespace=namespace,
        json_path=DONE,
        timeout=Duration.seconds(min(deadline_seconds + PLACEMENT_SECONDS, MAX_WAIT_SECONDS)),
    )
    gate.node.add_dependency(manifest)
    resource = gate.node.find_child("Resource").node.default_child
    assert isinstance(resource, CfnResource)
    resource.add_property_override("Revision", revision(props))
    return gate
