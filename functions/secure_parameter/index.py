"""CloudFormation custom resource ``Custom::SecureParameter``: create one SSM SecureString parameter.

CloudFormation cannot create SecureString parameters, so this Lambda (ServiceToken = function ARN,
no cdk Provider framework) does it and PUTs the response JSON to the pre-signed ``ResponseURL`` itself.

ResourceProperties (strings): ``Name``, ``Kind`` (``generated`` | ``database_url`` | ``redis_url``),
optional ``Description``; ``generated``: ``Length`` (default 64, minimum 32), created only if absent and
never overwritten; ``database_url``: ``SecretArn``, ``Scheme``, optional ``Host``/``Port``/``Database``;
``redis_url``: ``SecretArn``, ``Host``, ``Port``. Delete never deletes (parameters are retained).
Values never appear in the response, in Data, in a Reason or in the logs.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import urllib.parse
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

LOG = logging.getLogger("secure_parameter")
LOG.setLevel(logging.INFO)
# botocore logs request/response bodies (parameter values) at DEBUG: keep it quiet whatever the Lambda log level.
logging.getLogger("botocore").setLevel(logging.WARNING)

ALPHABET = string.ascii_letters + string.digits + "-_"
DEFAULT_LENGTH = 64
MIN_LENGTH = 32
# Catalogue id asyncpg-ssl-param: asyncpg takes ``ssl=``, libpq drivers take ``sslmode=``.
TLS_PARAM = {
    "postgresql+asyncpg": "ssl=require",
    "postgresql+psycopg": "sslmode=require",
    "postgresql": "sslmode=require",
}
DB_FIELDS = (("username", ""), ("password", ""), ("host", "Host"), ("port", "Port"), ("dbname", "Database"))
_BOTO_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"})


class ContractError(Exception):
    """A request that violates the property contract; ``str()`` starts with ``[<catalogue id>]``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")


def _clients() -> tuple[Any, Any]:
    """Return ``(ssm, secretsmanager)`` clients; tests may monkeypatch this."""
    return boto3.client("ssm", config=_BOTO_CONFIG), boto3.client("secretsmanager", config=_BOTO_CONFIG)


def _send(url: str, body: bytes) -> None:
    """PUT the response document to the pre-signed S3 URL; tests monkeypatch this."""
    # The URL is the https pre-signed S3 URL from CloudFormation; an empty Content-Type is required.
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        LOG.info("response sent, HTTP %s", response.status)


def _required(props: dict[str, Any], key: str, code: str = "secure-parameter-contract") -> str:
    value = str(props.get(key) or "").strip()
    if not value:
        raise ContractError(code, f"property {key} is required")
    return value


def _port(value: Any, code: str) -> str:
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ContractError(code, "port must be an integer between 1 and 65535")
    return str(int(text))


def _secret_string(sm: Any, secret_arn: str) -> str:
    secret = sm.get_secret_value(SecretId=secret_arn).get("SecretString")
    if not isinstance(secret, str) or not secret:
        raise ContractError("secure-parameter-contract", "secret has no SecretString")
    return secret


def _generated_value(props: dict[str, Any]) -> str:
    raw = str(props.get("Length") or DEFAULT_LENGTH).strip()
    if not raw.isdigit():
        raise ContractError("secret-key-weak", "Length must be a positive integer")
    length = int(raw)
    if length < MIN_LENGTH:
        raise ContractError("secret-key-weak", f"Length {length} is below the minimum of {MIN_LENGTH}")
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _database_url(props: dict[str, Any], sm: Any, sensitive: list[str]) -> str:
    scheme = str(props.get("Scheme") or "")
    if scheme not in TLS_PARAM:
        raise ContractError("database-url-format", f"Scheme must be one of {', '.join(TLS_PARAM)}")
    try:
        data = json.loads(_secret_string(sm, _required(props, "SecretArn")))
    except json.JSONDecodeError:
        raise ContractError("database-url-format", "database secret is not a JSON object") from None
    if not isinstance(data, dict):
        raise ContractError("database-url-format", "database secret is not a JSON object")
    sensitive.append(str(data.get("password") or ""))
    parts: dict[str, str] = {}
    for key, override in DB_FIELDS:
        value = str((props.get(override) if override else None) or data.get(key) or "").strip()
        if not value:
            raise ContractError("database-url-format", f"no {key} in the secret or the properties")
        parts[key] = value
    user, password = (urllib.parse.quote(parts[k], safe="") for k in ("username", "password"))
    port = _port(parts["port"], "database-url-format")
    dbname = urllib.parse.quote(parts["dbname"], safe="")
    return f"{scheme}://{user}:{password}@{parts['host']}:{port}/{dbname}?{TLS_PARAM[scheme]}"


def _redis_url(props: dict[str, Any], sm: Any, sensitive: list[str]) -> str:
    host, port = _required(props, "Host"), _port(_required(props, "Port"), "secure-parameter-contract")
    secret = _secret_string(sm, _required(props, "SecretArn"))
    sensitive.append(secret)
    try:
        data: Any = json.loads(secret)
    except json.JSONDecodeError:
        data = None
    token = str(data.get("password") or "") if isinstance(data, dict) else secret
    if not token:
        raise ContractError("secure-parameter-contract", "redis secret JSON has no password")
    sensitive.append(token)
    return f"rediss://:{urllib.parse.quote(token, safe='')}@{host}:{port}/0"


def _put(props: dict[str, Any], sensitive: list[str]) -> str:
    """Create or refresh the parameter described by ``props``; return its name."""
    name, kind = _required(props, "Name"), _required(props, "Kind")
    ssm, sm = _clients()
    if kind == "generated":
        value, overwrite = _generated_value(props), False
    elif kind == "database_url":
        value, overwrite = _database_url(props, sm, sensitive), True
    elif kind == "redis_url":
        value, overwrite = _redis_url(props, sm, sensitive), True
    else:
        raise ContractError("secure-parameter-contract", "Kind must be generated, database_url or redis_url")
    sensitive.append(value)
    request: dict[str, Any] = {"Name": name, "Type": "SecureString", "Value": value, "Overwrite": overwrite}
    request["Tier"] = "Standard"
    if props.get("Description"):
        request["Description"] = str(props["Description"])
    try:
        ssm.put_parameter(**request)
        LOG.info("parameter %s written (kind=%s, overwrite=%s)", name, kind, overwrite)
    except ssm.exceptions.ParameterAlreadyExists:
        LOG.info("parameter %s already exists; left untouched", name)
    return name


def _parameter_arn(event: dict[str, Any], context: Any, name: str) -> str:
    source = str(getattr(context, "invoked_function_arn", "") or event.get("ServiceToken") or "")
    fields = source.split(":")
    partition, region, account = (fields[1], fields[3], fields[4]) if len(fields) > 4 else ("aws", "", "")
    return f"arn:{partition}:ssm:{region}:{account}:parameter{name if name.startswith('/') else '/' + name}"


def _reason(exc: Exception, sensitive: list[str]) -> str:
    text = str(exc) if isinstance(exc, ContractError) else f"{type(exc).__name__}: {exc}"
    # Defence in depth: no message should carry a value, but scrub any that does (short ones would garble it).
    for value in sorted({s for s in sensitive if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, "***").replace(urllib.parse.quote(value, safe=""), "***")
    return " ".join(text.split())[:500]


def handler(event: dict[str, Any], context: Any) -> None:
    """Entry point: always PUTs exactly one response to ``event["ResponseURL"]``."""
    request_type = str(event.get("RequestType", ""))
    props: dict[str, Any] = dict(event.get("ResourceProperties") or {})
    physical_id = str(event.get("PhysicalResourceId") or props.get("Name") or event.get("RequestId") or "unknown")
    LOG.info("%s %s (%s)", request_type, event.get("LogicalResourceId"), props.get("Name"))
    status, reason = "SUCCESS", ""
    data: dict[str, str] = {}
    sensitive: list[str] = []
    try:
        if request_type in ("Create", "Update"):
            physical_id = _put(props, sensitive)
            data = {"ParameterName": physical_id, "ParameterArn": _parameter_arn(event, context, physical_id)}
        elif request_type != "Delete":
            raise ContractError("secure-parameter-contract", "unknown RequestType")
        # Delete: the parameter is retained on purpose; nothing to do.
    except Exception as exc:
        reason = _reason(exc, sensitive)
        if request_type == "Delete":
            LOG.warning("ignored failure during Delete: %s", reason)
        else:
            LOG.error("failed: %s", reason)
            status, data = "FAILED", {}
    body = {
        "Status": status,
        "Reason": reason or f"See CloudWatch log stream {getattr(context, 'log_stream_name', '')}",
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "NoEcho": True,
        "Data": data,
    }
    _send(str(event["ResponseURL"]), json.dumps(body).encode("utf-8"))
