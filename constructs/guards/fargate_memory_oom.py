"""fargate-memory-oom: ECS task sizes are valid Fargate cpu/memory pairs; containers fit in the task."""

from __future__ import annotations

from collections.abc import Iterator

from config.schema import FARGATE_SIZES, AppConfig
from constructs.guards.framework import Finding, Tree
from constructs.guards.k8s import containers, eks_stacks, k8s_objects, workloads


class FargateMemoryOom:
    """Compliant: each Fargate task definition has a cpu/memory pair from the Fargate table, and no container
    asks for more memory than the task has."""

    id = "fargate-memory-oom"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        for task in tree.of_type("AWS::ECS::TaskDefinition"):
            if "FARGATE" not in (task.props.get("requiresCompatibilities") or []):
                continue
            cpu, memory = int(task.props.get("cpu", 0)), int(task.props.get("memory", 0))
            allowed = FARGATE_SIZES.get(cpu)
            if allowed is None or memory not in allowed:
                hint = (
                    f"{allowed.start}..{allowed.stop - 1} step {allowed.step}" if allowed else str(list(FARGATE_SIZES))
                )
                yield Finding(
                    self.id,
                    task.path,
                    f"cpu={cpu} memory={memory}",
                    f"use a valid Fargate pair (for this cpu: {hint}) via ecs.cpu / ecs.memory_mib",
                )
            for container in task.get("containerDefinitions", default=[]) or []:
                limit = container.get("memory") or container.get("memoryReservation")
                if isinstance(limit, int) and limit > memory:
                    yield Finding(
                        self.id,
                        task.path,
                        f"container {container.get('name')} memory={limit} > task {memory}",
                        "leave container memory unset or below the task memory",
                    )
        # EKS Fargate sizes a pod from its requests and all pods are Guaranteed: requests must equal limits.
        fargate = eks_stacks(tree)
        for obj, spec in workloads([o for o in k8s_objects(tree) if id(o.resource.stack) in fargate]):
            for container in containers(spec):
                resources = container.get("resources") or {}
                requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
                for quantity in ("cpu", "memory"):
                    if not requests.get(quantity) or requests.get(quantity) != limits.get(quantity):
                        yield Finding(
                            self.id,
                            f"{obj.where} container {container.get('name')}",
                            f"{quantity} requests={requests.get(quantity)} limits={limits.get(quantity)}",
                            "set requests == limits (eks.cpu / eks.memory): Fargate sizes the pod from requests",
                        )


RULE = FargateMemoryOom()
