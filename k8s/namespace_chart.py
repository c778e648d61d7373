"""NamespaceChart: the app namespace and Fargate's built-in log router configuration (aws-observability)."""

from __future__ import annotations

from dataclasses import dataclass

import cdk8s
from constructs import Construct

from k8s.objects import api_object

# Fargate's log router reads exactly this namespace (with this label) and ConfigMap name; nothing else works.
OBSERVABILITY_NAMESPACE = "aws-observability"
LOGGING_CONFIGMAP = "aws-logging"


@dataclass(frozen=True, kw_only=True)
class NamespaceChartProps:
    """Args:
    namespace: the app's namespace (selected by the app's Fargate profile).
    region: CloudWatch Logs region (the stage region).
    log_group_name: the group the EKS stack creates with retention; Fluent Bit only writes to it.
    log_retention_days: repeated for Fluent Bit; it only applies if the router had to create the group.
    """

    namespace: str
    region: str
    log_group_name: str
    log_retention_days: int


class NamespaceChart(cdk8s.Chart):
    """Namespaces first: everything else in the cluster lands in one of them."""

    def __init__(self, scope: Construct, construct_id: str, *, props: NamespaceChartProps) -> None:
        super().__init__(scope, construct_id)
        api_object(self, "AppNamespace", api_version="v1", kind="Namespace", name=props.namespace)
        api_object(
            self,
            "ObservabilityNamespace",
            api_version="v1",
            kind="Namespace",
            name=OBSERVABILITY_NAMESPACE,
            labels={"aws-observability": "enabled"},
        )
        # auto_create_group false: the group exists with its retention before any pod starts (logs-missing);
        # the pod execution role may write to it but not create groups.
        output = "\n".join(
            [
                "[OUTPUT]",
                "    Name cloudwatch_logs",
                "    Match *",
                f"    region {props.region}",
                f"    log_group_name {props.log_group_name}",
                "    log_stream_prefix fargate-",
                "    auto_create_group false",
                f"    log_retention_days {props.log_retention_days}",
                "",
            ]
        )
        api_object(
            self,
            "Logging",
            api_version="v1",
            kind="ConfigMap",
            name=LOGGING_CONFIGMAP,
            namespace=OBSERVABILITY_NAMESPACE,
            data={"flb_log_cw": "false", "output.conf": output},
        )
