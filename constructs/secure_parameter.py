"""Parameter Store values of the app's settings, written by the deploy itself (CloudFormation cannot create
SecureStrings) and rewritten when the credentials they are composed from rotate."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import (
    CustomResource,
    Duration,
    RemovalPolicy,
    Stack,
    aws_events as events,
    aws_events_targets as targets,
    aws_iam as iam,
    aws_lambda as lambda_,
    aws_ssm as ssm,
)
from constructs import Construct

from config.kinds import FROM_CREDENTIALS, FROM_KINDS, SECRET_KINDS
from constructs.nag import acknowledge, nag_resource
from constructs.python_function import python_function
from constructs.retention import log_group

RESOURCE_TYPE = "Custom::SecureParameter"
HANDLER_DIR = Path(__file__).resolve().parents[1] / "functions" / "secure_parameter"
_FUNCTION_ID = "SecureParameterFunction"

# ``generated`` is written once, ``provided`` never (the team stores it with ``make secret``; the handler only checks
# it exists); the others are composed, from a credential secret (FROM_CREDENTIALS) or the endpoint.
KINDS = frozenset(SECRET_KINDS + FROM_KINDS)
HELPER_REASON = (
    "deploy-time helper: CloudFormation invokes it synchronously (a failure fails the deployment); EventBridge also "
    "invokes it when a source credential rotates, where Lambda retries twice and doctor's secret-rollout-stale "
    "shows a value that did not follow; it calls only AWS APIs (no VPC) and its environment holds no secret"
)


class SecureParameter(Construct):
    """One parameter: created if absent and never overwritten (``generated``), checked to exist (``provided``:
    the deploy fails with the ``make secret`` command to run), or composed from a Secrets Manager secret and
    the endpoints (``database_url`` ... ``redis_port``), rewritten only when the value changes. The value never
    reaches CloudFormation; the parameter is retained when the stack is deleted.

    Args:
        name: full parameter name, ``/<app>/<stage>/<SETTING>``.
        kind: one of ``KINDS`` (``config.schema.parameter_kind``).
        length: characters of a generated value. Default: 64; below 32 is refused at deploy by the handler
            and at synth by the secret-key-weak guard.
        source_secret_arn: the secret a composed value comes from (the app user's secret, the Redis AUTH token).
        fields: extra handler properties (``Scheme``, ``Host``, ``Port``, ``Database``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        kind: str,
        length: int = 64,
        source_secret_arn: str | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if kind not in KINDS:
            raise ValueError(f"[ssm-securestring-missing] {name}: unknown kind {kind!r}; use one of {sorted(KINDS)}")
        function = _handler_function(Stack.of(self), name.rsplit("/", 1)[0])
        manager = "stored with make secret" if kind == "provided" else "managed by CDK"
        properties: dict[str, str] = {"Name": name, "Kind": kind, "Description": f"{kind} setting, {manager}"}
        if kind == "generated":
            properties["Length"] = str(length)
        if kind in FROM_CREDENTIALS:
            if source_secret_arn is None:
                raise ValueError(f"[ssm-securestring-missing] {name}: a {kind} parameter needs source_secret_arn")
            properties["SecretArn"] = source_secret_arn
        properties.update(fields or {})
        self.kind = kind
        self.properties = properties
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


def refresh_on_rotation(
    scope: Construct, construct_id: str, *, secret_arn: str, parameters: list[SecureParameter]
) -> None:
    """When ``secret_arn``'s AWSCURRENT moves (a rotation finished), the handler rewrites ``parameters`` from it.

    Secrets Manager publishes ``Secret Label Updated`` to EventBridge natively (no CloudTrail trail needed); the
    rule's constant input lists the parameters with the same properties the deploy used. A rewritten parameter
    emits ``Parameter Store Change``, which rolls out the services that read it (``SecretRollout``).
    """
    if not parameters:
        return
    rule = events.Rule(
        scope,
        construct_id,
        description="rewrite the settings composed from this secret when its rotation finishes",
        event_pattern=events.EventPattern(
            source=["aws.secretsmanager"],
            detail_type=["Secret Label Updated"],
            resources=[secret_arn],
            detail={"labelUpdated": ["AWSCURRENT"]},
        ),
    )
    rule.add_target(
        targets.LambdaFunction(
            parameters[0].handler,
            event=events.RuleTargetInput.from_object({"Refresh": [p.properties for p in parameters]}),
            retry_attempts=4,
        )
    )


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
            # GetParameter: a provided value exists; a composed value changed (written only then).
            actions=["ssm:PutParameter", "ssm:GetParameter"],
            resources=[
                stack.format_arn(service="ssm", resource="parameter", resource_name=f"{path_prefix.lstrip('/')}/*")
            ],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[stack.format_arn(service="kms", resource="key", resource_name="*")],
            conditions={"StringEquals": {"kms:ViaService": f"ssm.{stack.region}.amazonaws.com"}},
        )
    )
    scope = nag_resource(stack, f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{path_prefix}/*")
    acknowledge(
        role, f"IAM5[Resource::{scope}]", f"reads and writes only parameters under this stage's path {path_prefix}/"
    )
    key_scope = nag_resource(stack, stack.format_arn(service="kms", resource="key", resource_name="*"))
    acknowledge(
        role,
        f"IAM5[Resource::{key_scope}]",
        "decrypts only through Parameter Store (kms:ViaService), to compare a composed value before writing it; "
        "the aws/ssm key's id is not known at synth",
    )
    return python_function(
        stack,
        _FUNCTION_ID,
        code=lambda_.Code.from_asset(str(HANDLER_DIR)),
        reason=HELPER_REASON,
        timeout=Duration.minutes(2),
        role=role,
        logs_=logs_,
        description="Custom::SecureParameter: writes the stage's setting parameters; never returns values",
    )
