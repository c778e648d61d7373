"""The app's own AWS permissions (``permissions:`` of a service): granted to that service's role on every target.

What may be declared is checked when the stage file loads (config/permissions.py: no secret reading, no IAM
writes, ``"*"`` only for actions without resource-level permissions). Here each statement becomes one policy
statement ``AppPermissions<n>`` on the role, and the cdk-nag acknowledgement names exactly the actions and
resources it covers.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from config.services import Service
from constructs.nag import acknowledge

SID = "AppPermissions"


def grant_permissions(role: iam.IRole, service: Service) -> None:
    """One statement per declared permission of ``service`` on ``role``."""
    for index, (actions, resources) in enumerate(service.permissions):
        role.add_to_principal_policy(
            iam.PolicyStatement(sid=f"{SID}{index}", actions=sorted(actions), resources=list(resources))
        )
        for resource in resources:
            if "*" in resource:
                acknowledge(
                    role,
                    f"IAM5[Resource::{resource}]",
                    f"services.{service.name}.permissions[{index}]: {', '.join(sorted(actions))} on {resource}, "
                    "declared in the stage file ('*' only where the IAM reference lists no resource)",
                )
