"""no-exec-on-fargate: ECS Exec follows the stage file, with the permissions it needs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

from aws_cdk import aws_iam as iam

from config.schema import AppConfig
from constructs.guards.framework import Finding, Tree, allows, logical_ref

# What ``enable_execute_command=True`` grants the task role: the Session Manager channels ECS Exec opens.
EXEC_ACTIONS = tuple(
    f"ssmmessages:{action}"
    for action in ("CreateControlChannel", "CreateDataChannel", "OpenControlChannel", "OpenDataChannel")
)


class NoExecOnFargate:
    """Compliant: every ECS service's EnableExecuteCommand, as written to the template (a raw property override
    included), equals ``ecs.exec_enabled`` (or ``operators:``, which implies it); where it is on,
    the task role may open every Session Manager channel."""

    id = "no-exec-on-fargate"

    def check(self, tree: Tree, config: AppConfig) -> Iterator[Finding]:
        wanted = config.exec_enabled
        roles = {
            json.dumps({"Fn::GetAtt": [r.stack.get_logical_id(r.node), "Arn"]}): r.node
            for r in tree.of_type("AWS::IAM::Role")
            if isinstance(r.node, iam.CfnRole)
        }
        for service in tree.of_type("AWS::ECS::Service"):
            actual = str(service.props.get("enableExecuteCommand")).lower() == "true"  # an override may say "true"
            if actual != wanted:
                why = " (operators: is set, which turns ECS Exec on)" if config.operators else ""
                yield Finding(self.id, service.path, f"EnableExecuteCommand={actual}",
                              f"follow the stage file: ecs.exec_enabled is {str(wanted).lower()}{why}")  # fmt: skip
            if not actual:
                continue
            task = next((t for t in tree.in_stack_of(service.node, "AWS::ECS::TaskDefinition")
                         if logical_ref(t) == service.props.get("taskDefinition")), None)  # fmt: skip
            role = roles.get(json.dumps(task.props.get("taskRoleArn"))) if task else None
            principal = SimpleNamespace(role_name=role.ref, role_arn=role.attr_arn) if role else None
            statements = tree.statements_of(principal) if principal else []
            missing = [action for action in EXEC_ACTIONS if not allows(statements, action)]
            if missing:
                yield Finding(
                    self.id,
                    service.path,
                    f"EnableExecuteCommand=True, task role cannot open an exec channel (no {', '.join(missing)})",
                    "switch exec on with ecs.exec_enabled or operators: (enable_execute_command=True on the service "
                    "grants ssmmessages:* to the task role), never with a raw property override",
                )


RULE = NoExecOnFargate()
