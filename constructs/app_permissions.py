"""The app's own AWS permissions (``permissions:`` of a service): granted to that service's role on every target.

What may be declared is checked when the stage file loads (config/permissions.py: no secret reading, no IAM
writes, ``"*"`` only for actions without resource-level permissions). Here each statement becomes one policy
statement ``AppPermissions<n>`` on the role (the grants of ``services.<name>.uses`` come last), and the cdk-nag
acknowledgement names exactly the actions and resources it covers (``<bucket ARN>/*``: the objects of a bucket the
stage declares).
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
            if resource.startswith("arn:aws:s3:::") and resource.endswith("/*") and "*" not in resource[:-2]:
                acknowledge(
                    role,
                    f"IAM5[Resource::{resource}]",
                    f"services.{service.name}: {', '.join(sorted(actions))} on the objects of bucket "
                    f"{resource[len('arn:aws:s3:::') : -2]} (S3 names objects only under their bucket's ARN)",
                )
            elif "*" in resource:
                acknowledge(
                    role,
                    f"IAM5[Resource::{resource}]",
                    f"services.{service.name}.permissions[{index}]: {', '.join(sorted(actions))} on {resource}, "
                    "declared in the stage file ('*' only where the IAM reference lists no resource)",
                )
