"""SecureString parameters and who may read them. No value is ever read (secrets-printed): only
``describe_parameters`` metadata and IAM policy simulation."""

from __future__ import annotations

from typing import Any

from doctor.model import Context, Finding, NotChecked, fail, ok, warn

READ_ACTION = "ssm:GetParameters"
DECRYPT_ACTION = "kms:Decrypt"
SECRET_ACTION = "secretsmanager:GetSecretValue"


def parameter_metadata(ctx: Context) -> dict[str, dict[str, Any]]:
    """``{name: describe_parameters entry}`` for the stage's secret settings that exist (values never read)."""
    names = [ctx.config.parameter_name(setting) for setting in ctx.config.secret_settings]
    found: dict[str, dict[str, Any]] = {}
    paginator = ctx.client("ssm").get_paginator("describe_parameters")
    for start in range(0, len(names), 50):  # a filter takes at most 50 values
        chunk = names[start : start + 50]
        for page in paginator.paginate(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": chunk}]):
            for parameter in page.get("Parameters", []):
                found[str(parameter["Name"])] = parameter
    return found


def secure_strings(ctx: Context) -> list[Finding]:
    """ssm-securestring-missing: every ``/<app>/<stage>/<NAME>`` of a secret setting exists as a SecureString."""
    if not ctx.config.secret_settings:
        return [
            ok(
                "ssm-securestring-missing",
                f"/{ctx.config.app}/{ctx.config.stage}/*",
                "the stage has no secret settings",
            )
        ]
    found = parameter_metadata(ctx)
    findings: list[Finding] = []
    for setting in ctx.config.secret_settings:
        name = ctx.config.parameter_name(setting)
        parameter = found.get(name)
        if parameter is None:
            findings.append(
                fail(
                    "ssm-securestring-missing",
                    name,
                    f"missing in {ctx.region}: the app cannot start; redeploy the data stack, which "
                    "creates it (never create it by hand with a value in shell history)",
                )
            )
        elif parameter.get("Type") != "SecureString":
            findings.append(
                fail(
                    "ssm-securestring-missing",
                    name,
                    f"is a {parameter.get('Type')} (stored in plain text): delete it and redeploy "
                    "the data stack so it is recreated as a SecureString",
                )
            )
        else:
            findings.append(
                ok(
                    "ssm-securestring-missing",
                    name,
                    f"SecureString, key {parameter.get('KeyId', 'alias/aws/ssm')}, version "
                    f"{parameter.get('Version', '?')} (value not read)",
                )
            )
    return findings


def read_permission(ctx: Context) -> list[Finding]:
    """secret-read-permission: each target's consumer role may ssm:GetParameters every secret setting (and
    kms:Decrypt a customer key), and is not granted the data stores' master secrets it does not need.

    Uses iam:SimulatePrincipalPolicy: identity policies and permission boundaries of the role, not SCPs.
    """
    findings: list[Finding] = []
    consumers: dict[str, str] = {}
    for purpose in ctx.targets:
        try:
            consumers[purpose] = ctx.output(purpose, "ConsumerRoleArn")
        except NotChecked as skipped:
            findings.append(warn("secret-read-permission", f"{purpose} consumer", f"not checked: {skipped}"))
    if not consumers:
        return findings
    if ctx.identity is None:
        raise NotChecked("caller identity unknown")
    found = parameter_metadata(ctx)
    arns = {
        f"arn:{ctx.identity.partition}:ssm:{ctx.region}:{ctx.identity.account}:parameter{name}": name
        for name in (ctx.config.parameter_name(setting) for setting in ctx.config.secret_settings)
    }
    keys = sorted({str(p["KeyId"]) for p in found.values() if ":key/" in str(p.get("KeyId", ""))})
    data = ctx.stacks.get(ctx.config.stack_name("data"))
    data_outputs = data.outputs if data is not None else {}
    master_secrets = [data_outputs[k] for k in ("DatabaseSecretArn", "CacheAuthSecretArn") if data_outputs.get(k)]
    iam = ctx.client("iam")
    for purpose, role in sorted(consumers.items()):
        denied = _denied(iam, role, READ_ACTION, list(arns)) if arns else []
        denied += _denied(iam, role, DECRYPT_ACTION, keys) if keys else []
        for action, resource, decision in denied:
            findings.append(
                fail(
                    "secret-read-permission",
                    role,
                    f"{purpose} consumer cannot {action} on {arns.get(resource, resource)} "
                    f"({decision}): grant it with the data stack's AppSecrets.grant_read(role)",
                )
            )
        allowed = _allowed(iam, role, SECRET_ACTION, master_secrets) if master_secrets else []
        for resource in allowed:
            findings.append(
                warn(
                    "secret-read-permission",
                    role,
                    f"{purpose} consumer may {SECRET_ACTION} on {resource}; it needs only the "
                    "SecureString parameters: narrow the grant",
                )
            )
        if not denied and not allowed:
            findings.append(
                ok(
                    "secret-read-permission",
                    role,
                    f"{purpose} consumer may read all {len(arns)} parameter(s)"
                    + (f" and decrypt with {len(keys)} customer key(s)" if keys else ""),
                )
            )
    return findings


def _simulate(iam: Any, role: str, action: str, resources: list[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    request: dict[str, Any] = {"PolicySourceArn": role, "ActionNames": [action], "ResourceArns": resources}
    while True:
        reply = iam.simulate_principal_policy(**request)
        results.extend(reply.get("EvaluationResults", []))
        if not reply.get("IsTruncated"):
            return results
        request["Marker"] = reply["Marker"]


def _denied(iam: Any, role: str, action: str, resources: list[str]) -> list[tuple[str, str, str]]:
    return [
        (action, str(r.get("EvalResourceName", "*")), str(r.get("EvalDecision")))
        for r in _simulate(iam, role, action, resources)
        if r.get("EvalDecision") != "allowed"
    ]


def _allowed(iam: Any, role: str, action: str, resources: list[str]) -> list[str]:
    return [
        str(r.get("EvalResourceName", "*"))
        for r in _simulate(iam, role, action, resources)
        if r.get("EvalDecision") == "allowed"
    ]
