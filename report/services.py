"""Services section: every process the stage runs, per stack: kind, how it runs, command, schedule, what it may
reach (ingress rules from its security group), which secrets it receives."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from report.assembly import K8sObject, Stack

PORT_NAMES = {5432: "PostgreSQL", 6379: "Redis"}


@dataclass(frozen=True)
class ServiceRow:
    stack: str
    name: str
    kind: str  # web | worker | job | migrate
    runs_as: str
    command: str
    schedule: str
    reaches: list[str]
    secrets: list[str]


def extract_services(stacks: Sequence[Stack], k8s: Sequence[K8sObject] = ()) -> list[ServiceRow]:
    rows: list[ServiceRow] = []
    for stack in stacks:
        rows += _fargate(stack)
        rows += _beanstalk(stack)
    rows += _kubernetes(k8s)
    return sorted(rows, key=lambda r: (r.stack, {"web": 0, "worker": 1, "job": 2}.get(r.kind, 3), r.name))


def _fargate(stack: Stack) -> list[ServiceRow]:
    resources = stack.resources
    rows = []
    for task_id, task in resources.items():
        if task.get("Type") != "AWS::ECS::TaskDefinition":
            continue
        (container, *_) = task.get("Properties", {}).get("ContainerDefinitions") or [{}]
        env = {e.get("Name"): e.get("Value") for e in container.get("Environment") or []}
        ref = json.dumps({"Ref": task_id})
        family = str(task.get("Properties", {}).get("Family", task_id))
        users = {
            k: r
            for k, r in resources.items()
            if ref in (text := json.dumps(r.get("Properties", {})))
            or (r.get("Type") == "AWS::StepFunctions::StateMachine" and family in text)  # runs the family's latest
        }
        service = next((r for r in users.values() if r.get("Type") == "AWS::ECS::Service"), None)
        groups: list[Any] = []
        schedule = ""
        if service is not None:
            web = bool(service["Properties"].get("LoadBalancers"))
            kind, runs_as = ("web", "ECS service behind the ALB") if web else ("worker", "ECS service, no inbound")
            network = service["Properties"].get("NetworkConfiguration", {}).get("AwsvpcConfiguration", {})
            groups = network.get("SecurityGroups") or []
        elif any(r.get("Type") == "Custom::RunTask" for r in users.values()):
            run = next(r for r in users.values() if r.get("Type") == "Custom::RunTask")
            kind, runs_as = "migrate", "deploy step: Fargate task, waited for (exit 0)"
            groups = run["Properties"].get("SecurityGroups") or []
        elif machine := next((k for k, r in users.items() if r.get("Type") == "AWS::StepFunctions::StateMachine"), ""):
            kind, runs_as = "job", "EventBridge Scheduler -> Step Functions -> Fargate task"
            for other in resources.values():
                if other.get("Type") == "AWS::Scheduler::Schedule" and machine in json.dumps(other["Properties"]):
                    props = other["Properties"]
                    schedule = f"{props.get('ScheduleExpression')} {props.get('ScheduleExpressionTimezone', 'UTC')}"
            definition = json.dumps(resources[machine]["Properties"].get("DefinitionString"))
            groups = [
                {"Fn::GetAtt": [g, "GroupId"]}
                for g in re.findall(r'"Fn::GetAtt": \["([A-Za-z0-9]+)", "GroupId"', definition)
            ]
        else:
            continue
        rows.append(
            ServiceRow(
                stack=stack.name,
                name=str(env.get("APP_SERVICE") or task_id),
                kind=kind,
                runs_as=runs_as,
                command=" ".join(container.get("Command") or ["(image default)"]),
                schedule=schedule,
                reaches=_reaches(resources, groups),
                secrets=sorted(s.get("Name") for s in container.get("Secrets") or []),
            )
        )
    return rows


def _reaches(resources: Mapping[str, Mapping[str, Any]], groups: Sequence[Any]) -> list[str]:
    texts = [json.dumps(g) for g in groups]
    out = set()
    for resource in resources.values():
        props = resource.get("Properties", {})
        if (
            resource.get("Type") == "AWS::EC2::SecurityGroupIngress"
            and json.dumps(props.get("SourceSecurityGroupId")) in texts
        ):
            port = props.get("FromPort")
            out.add(PORT_NAMES.get(port, f"port {port}") if isinstance(port, int) else "PostgreSQL")
    return sorted(out)


def _beanstalk(stack: Stack) -> list[ServiceRow]:
    rows = []
    for resource in stack.resources.values():
        if resource.get("Type") != "AWS::ElasticBeanstalk::Environment":
            continue
        options = resource.get("Properties", {}).get("OptionSettings") or []
        secrets = sorted(o["OptionName"] for o in options if o.get("Namespace", "").endswith(":environmentsecrets"))
        groups = [
            o.get("Value")
            for o in options
            if o.get("Namespace") == "aws:autoscaling:launchconfiguration" and o.get("OptionName") == "SecurityGroups"
        ]
        reaches = _reaches(stack.resources, groups)
        rows.append(
            ServiceRow(
                stack.name, "web", "web", "Elastic Beanstalk environment", "(image default)", "", reaches, secrets
            )
        )
    return rows


def _kubernetes(objects: Sequence[K8sObject]) -> list[ServiceRow]:
    rows = []
    for obj in objects:
        kind = obj.get("kind")
        if kind not in ("Deployment", "CronJob", "Job"):
            continue
        spec = obj.get("spec") or {}
        template = ((spec.get("jobTemplate") or {}).get("spec") or spec).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        (container, *_) = (template.get("spec") or {}).get("containers") or [{}]
        component = labels.get("app.kubernetes.io/component", "web")
        rows.append(
            ServiceRow(
                stack="k8s",
                name=str((obj.get("metadata") or {}).get("name")),
                kind=component,
                runs_as={"Deployment": "Deployment", "CronJob": "CronJob (Forbid overlap)", "Job": "Job, waited for"}[
                    str(kind)
                ],
                command=" ".join(container.get("command") or ["(image default)"]),
                schedule=f"{spec.get('schedule')} {spec.get('timeZone', 'UTC')}" if kind == "CronJob" else "",
                reaches=[],
                secrets=sorted(
                    e["name"] for e in container.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})
                ),
            )
        )
    return rows
