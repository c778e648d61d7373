"""migrations-not-run: with ``migrate``, every enabled target runs it as a deploy step before its services."""

from __future__ import annotations

from collections.abc import Iterator

from aws_cdk import CfnResource, Stack
from constructs import IConstruct

from config.schema import AppConfig
from constructs.compute_target import ComputeTarget
from constructs.guards.framework import Finding, Tree, logical_ref
from constructs.guards.k8s import MANIFEST

# What "the service is updated" means per resource type: these must wait for the migration.
SERVING = ("AWS::ECS::Service", "AWS::ElasticBeanstalk::Environment", MANIFEST)


class MigrationsNotRun:
    """Compliant: when the stage sets ``migrate``, each target stack declares a migrate step whose gate (the
    custom resource that runs the task and waits for exit 0, or the Kubernetes Job's completion) every web and
    worker resource of that stack depends on, directly or through other resources. Without ``migrate`` nothing
    is required (a stage may have no schema to migrate)."""

    id = "migrations-not-run"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        if config.migrate is None:
            return
        by_stack: dict[Stack, list[ComputeTarget]] = {}
        for target in tree.targets:
            by_stack.setdefault(Stack.of(target), []).append(target)
        for stack, targets in by_stack.items():
            step = next((t for t in targets if t.service.kind == "migrate" and t.gate is not None), None)
            if step is None or step.gate is None:
                yield Finding(
                    self.id,
                    stack.stack_name,
                    f"{targets[0].kind} runs no migration step",
                    "run migrate.command as a deploy step in this stack (MigrationStep / the migration Job)",
                )
                continue
            gates = {r.node.path for r in _cfn(step.gate)}
            for target in targets:
                if target.service.kind not in ("web", "worker"):
                    continue
                for construct in target.compute + _services_of(tree, target):
                    for resource in _cfn(construct):
                        if resource.cfn_resource_type in SERVING and not gates & _depends_on(resource):
                            yield Finding(
                                self.id,
                                resource.node.path,
                                f"{target.label} can be updated before the migration ran",
                                "make it depend on the migration step (MigrationStep.protect / the Job's wait)",
                            )


def _cfn(construct: IConstruct) -> list[CfnResource]:
    return [c for c in construct.node.find_all() if isinstance(c, CfnResource)]


def _services_of(tree: Tree, target: ComputeTarget) -> list[IConstruct]:
    """ECS services running the target's task definition (the task definition itself serves nothing)."""
    refs = [logical_ref(r) for r in tree.computes_of(target, "AWS::ECS::TaskDefinition")]
    stack = Stack.of(target).stack_name
    return [
        s.node
        for s in tree.of_type("AWS::ECS::Service")
        if s.stack.stack_name == stack and s.props.get("taskDefinition") in refs
    ]


def _direct(resource: CfnResource) -> list[CfnResource]:
    """What ``resource`` waits for: its DependsOn, and the resources of every construct that it or one of its
    scopes was made to depend on (``node.add_dependency``, which CDK turns into DependsOn at synth)."""
    out = [d for d in resource.obtain_dependencies() if isinstance(d, CfnResource)]
    for scope in resource.node.scopes:
        for dependency in scope.node.dependencies:
            out.extend(_cfn(dependency))
    return out


def _depends_on(resource: CfnResource) -> set[str]:
    """Paths of every resource ``resource`` waits for, directly or through others (jsii proxies are compared by
    path: the same resource can come back as different Python objects)."""
    seen: set[str] = set()
    todo = [resource]
    while todo:
        for dependency in _direct(todo.pop()):
            if dependency.node.path not in seen:
                seen.add(dependency.node.path)
                todo.append(dependency)
    return seen


RULE = MigrationsNotRun()
