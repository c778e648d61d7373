"""ServiceChart: a worker (Deployment + HPA), a job (CronJob) or the migration step (Job) of the stage on EKS Fargate.

Each has its own ServiceAccount (IRSA), ConfigMap and ExternalSecret with exactly the settings it names, and its
own ``app.kubernetes.io/name`` (``<app>-<service>``) so no Service of the web chart selects its pods
(worker-inbound). None has a port, a Service or probes: they serve no HTTP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import cdk8s
from constructs import Construct

from k8s.app_chart import (
    WORKER_DECISIONS,
    autoscaler,
    base_container,
    pod_annotations,
    pod_spec,
    rollout_annotations,
    scanner_annotations,
    service_account,
    settings_objects,
)
from k8s.objects import api_object

HISTORY = 3  # finished Jobs a CronJob keeps for `kubectl logs`


@dataclass(frozen=True, kw_only=True)
class ServiceChartProps:
    """Args:
    app / service: names every object ``<app>-<service>`` (``-settings``, ``-secrets``); labels part-of ``app``.
    kind: ``worker`` (Deployment + HPA), ``job`` (CronJob) or ``migrate`` (a Job named after its content, so each
        new image or command is a new Job).
    namespace / service_account / role_arn: where it runs and its IRSA identity.
    image / command / cpu / memory: what runs and how big (requests == limits).
    min_replicas / max_replicas / cpu_target_percent: worker scaling.
    schedule (5-field cron, UTC) / timeout_minutes / retries: job and migrate.
    progress_deadline_seconds: worker rollouts, as in AppChartProps.
    environment / secrets / secret_store_name / refresh_interval: its settings (as in AppChartProps).
    """

    app: str
    service: str
    kind: Literal["worker", "job", "migrate"]
    namespace: str
    service_account: str
    role_arn: str
    image: str
    command: list[str]
    cpu: str
    memory: str
    min_replicas: int = 1
    max_replicas: int = 1
    cpu_target_percent: int = 60
    schedule: str | None = None
    timeout_minutes: int = 30
    retries: int = 0
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    secret_store_name: str
    progress_deadline_seconds: int
    refresh_interval: str = "5m"
    settings_revision: str = ""

    @property
    def name(self) -> str:
        return f"{self.app}-{self.service}"

    @property
    def job_name(self) -> str:
        """The migration Job's name: ``<app>-migrate-<hash of image, command and settings>``."""
        content = "\n".join([self.image, *self.command, *sorted(f"{k}={v}" for k, v in self.environment.items())])
        return f"{self.name}-{hashlib.sha256(content.encode()).hexdigest()[:10]}"


class ServiceChart(cdk8s.Chart):
    def __init__(self, scope: Construct, construct_id: str, *, props: ServiceChartProps) -> None:
        super().__init__(scope, construct_id)
        ns, name = props.namespace, props.name
        labels = {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": props.app,
            "app.kubernetes.io/component": props.kind,
        }
        service_account(self, name=props.service_account, namespace=ns, role_arn=props.role_arn)
        settings_objects(
            self,
            namespace=ns,
            settings_name=f"{name}-settings",
            environment=props.environment,
            secrets_name=f"{name}-secrets",
            secrets=props.secrets,
            secret_store_name=props.secret_store_name,
            refresh_interval=props.refresh_interval,
        )
        container = base_container(
            image=props.image,
            command=props.command,
            settings_name=f"{name}-settings",
            secrets_name=f"{name}-secrets",
            secrets=props.secrets,
            cpu=props.cpu,
            memory=props.memory,
        )
        if props.kind == "worker":
            self._worker(props, labels, container)
        else:
            self._run_to_completion(props, labels, container)

    def _worker(self, props: ServiceChartProps, labels: dict[str, str], container: dict[str, object]) -> None:
        # Workers finish their current task on SIGTERM (Celery warm shutdown): a minute before SIGKILL.
        spec = pod_spec(service_account=props.service_account, container=container, grace_seconds=60)
        api_object(
            self,
            "Deployment",
            api_version="apps/v1",
            kind="Deployment",
            name=props.name,
            namespace=props.namespace,
            labels=labels,
            annotations={
                **scanner_annotations(WORKER_DECISIONS),
                **rollout_annotations(f"{props.name}-secrets", props.secrets),
            },
            # No spec.replicas: the HPA owns the count. A rollout never drops below the running count.
            spec={
                "selector": {"matchLabels": labels},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "progressDeadlineSeconds": props.progress_deadline_seconds,
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": pod_annotations(props.settings_revision, WORKER_DECISIONS),
                    },
                    "spec": spec,
                },
            },
        )
        autoscaler(
            self,
            name=props.name,
            namespace=props.namespace,
            min_replicas=props.min_replicas,
            max_replicas=props.max_replicas,
            cpu_target_percent=props.cpu_target_percent,
        )

    def _run_to_completion(
        self, props: ServiceChartProps, labels: dict[str, str], container: dict[str, object]
    ) -> None:
        timeout = props.timeout_minutes * 60
        pod = pod_spec(service_account=props.service_account, container=container)
        # Each attempt is stopped at the timeout; the Job as a whole after every attempt had its time.
        pod.update({"restartPolicy": "Never", "activeDeadlineSeconds": timeout})
        job = {
            "backoffLimit": props.retries,
            "activeDeadlineSeconds": timeout * (props.retries + 1) + 60 * props.retries,
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations(props.settings_revision)},
                "spec": pod,
            },
        }
        if props.kind == "migrate":
            # A new Job per image/command/settings (its spec is immutable); the stack waits for it to succeed.
            api_object(
                self,
                "Job",
                api_version="batch/v1",
                kind="Job",
                name=props.job_name,
                namespace=props.namespace,
                labels=labels,
                annotations=scanner_annotations(),
                spec=job,
            )
            return
        api_object(
            self,
            "CronJob",
            api_version="batch/v1",
            kind="CronJob",
            name=props.name,
            namespace=props.namespace,
            labels=labels,
            annotations=scanner_annotations(),
            spec={
                "schedule": props.schedule,
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "successfulJobsHistoryLimit": HISTORY,
                "failedJobsHistoryLimit": HISTORY,
                "jobTemplate": {"metadata": {"labels": labels}, "spec": job},
            },
        )
