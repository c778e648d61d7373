"""SSM SecureString parameter created by the deploy itself (CloudFormation cannot create SecureStrings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aws_cdk import (
    CustomResource,
    Duration,
    RemovalPolicy,
    Stack,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_ssm as ssm,
)
from constructs import Construct

from constructs.nag import DEPLOY_HELPER, DEPLOY_HELPER_CHECKS, acknowledge, nag_resource, skip_checks
from constructs.retention import log_group

RESOURCE_TYPE = "Custom::SecureParameter"
HANDLER_DIR = Path(__file__).resolve().parents[1] / "functions" / "secure_parameter"
_FUNCTION_ID = "SecureParameterFunction"

Kind = Literal["generated", "database_url", "redis_url"]


class SecureParameter(Construct):
    """One SecureString parameter, created if absent and never overwritten (``generated``), or composed at
    deploy time from a Secrets Manager secret (``database_url``, ``redis_url``). The value never reaches
    CloudFormation; the parameter is retained when the stack is deleted.

    Args:
        name: full parameter name, ``/<app>/<stage>/<SETTING>``.
        kind: ``generated`` (random, ``length`` characters), ``database_url`` or ``redis_url``.
        length: characters of a generated value. Default: 64; below 32 is refused at deploy by the handler
            and at synth by the secret-key-weak guard.
        source_secret: the secret a URL is composed from (RDS master secret, Redis AUTH token).
        url_fields: extra handler properties for URLs (``Scheme``, ``Host``, ``Port``, ``Database``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        kind: Kind,
        length: int = 64,
        source_secret_arn: str | None = None,
        url_fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        function = _handler_function(Stack.of(self), name.rsplit("/", 1)[0])
        properties: dict[str, str] = {"Name": name, "Kind": kind, "Description": f"{kind} setting, managed by CDK"}
        if kind == "generated":
            properties["Length"] = str(length)
        else:
            if source_secret_arn is None:
                raise ValueError(f"[ssm-securestring-missing] {name}: a {kind} parameter needs source_secret_arn")
            properties["SecretArn"] = source_secret_arn
            properties.update(url_fields or {})
        self.handler = function
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties=properties,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.parameter_name = name
        self.parameter = ssm.StringParameter.from_secure_string_parameter_attributes(
            self, "Parameter", parameter_name=name
        )
        # A consumer that references the parameter waits for the deploy to have created it.
        self.parameter.node.add_dependency(self.resource)

    @property
    def parameter_arn(self) -> str:
        return self.parameter.parameter_arn

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        return self.parameter.grant_read(grantee)


def _handler_function(stack: Stack, path_prefix: str) -> lambda_.Function:
    """The one handler per stack; it may write parameters under ``path_prefix`` only."""
    existing = stack.node.try_find_child(_FUNCTION_ID)
    if isinstance(existing, lambda_.Function):
        return existing
    logs_ = log_group(stack, f"{_FUNCTION_ID}Logs", days=30)
    role = iam.Role(
        stack,
        f"{_FUNCTION_ID}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="creates SecureString parameters of this stage",
    )
    logs_.grant_write(role)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ssm:PutParameter"],
            resources=[
                stack.format_arn(service="ssm", resource="parameter", resource_name=f"{path_prefix.lstrip('/')}/*")
            ],
        )
    )
    scope = nag_resource(stack, f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{path_prefix}/*")
    acknowledge(role, f"IAM5[Resource::{scope}]", f"writes only parameters under this stage's path {path_prefix}/")
    function = lambda_.Function(
        stack,
        _FUNCTION_ID,
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_asset(str(HANDLER_DIR)),
        timeout=Duration.minutes(2),
        memory_size=256,
        role=role,
        log_group=logs_,
        description="Custom::SecureParameter: creates SecureString parameters; never returns values",
    )
    skip_checks(function, DEPLOY_HELPER_CHECKS, DEPLOY_HELPER)
    return function
