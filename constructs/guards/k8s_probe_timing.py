"""k8s-probe-timing: every container has startup, liveness and readiness probes; startup covers the boot time."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import MANIFEST, health_of, k8s_objects, workloads

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


class K8sProbeTiming:
    """Compliant: each container of each workload has all three probes, and the startup probe's budget
    (``periodSeconds`` * ``failureThreshold``, k8s defaults 10 * 3) is at least ``boot_seconds`` of the health
    contract of the web service the workload runs (``services.<name>.health``; matched by the Deployment's name,
    ``k8s.props.workload_name``), the stage's ``health`` for any other."""

    id = "k8s-probe-timing"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        # Workers, jobs and the migration Job serve no HTTP: probes are for the web Deployment (and any undeclared one).
        exempt = {r.path for t in tree.targets if not t.service.is_web for r in tree.computes_of(t, MANIFEST)}
        for obj, spec in workloads(k8s_objects(tree)):
            if obj.resource.path in exempt:
                continue
            boot = health_of(config, obj).boot_seconds
            for container in spec.get("containers") or []:
                where = f"{obj.where} container {container.get('name')}"
                missing = [p for p in PROBES if not container.get(p)]
                if missing:
                    yield Finding(
                        self.id,
                        where,
                        f"no {', '.join(missing)}",
                        "startup probe on the liveness path, liveness on liveness_path, readiness on readiness_path",
                    )
                startup = container.get("startupProbe")
                if startup:
                    period, failures = startup.get("periodSeconds", 10), startup.get("failureThreshold", 3)
                    if period * failures < boot:
                        yield Finding(
                            self.id,
                            where,
                            f"startup budget {period}x{failures}={period * failures}s < boot_seconds={boot}",
                            "raise the startup probe's failureThreshold (not liveness delays) to cover the boot time",
                        )


RULE = K8sProbeTiming()
