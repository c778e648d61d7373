"""CloudFormation custom resource ``Custom::SecureParameter``: create, check or compose one SSM parameter.

CloudFormation cannot create SecureString parameters, so this Lambda (ServiceToken = function ARN,
no cdk Provider framework) does it and PUTs the response JSON to the pre-signed ``ResponseURL`` itself.

ResourceProperties (strings): ``Name`` (``/<app>/<stage>/<NAME>``), ``Kind``, optional ``Description``.
Kinds (parameter Type in brackets):

- ``generated`` [SecureString]: ``Length`` (default 64, minimum 32); created only if absent, never overwritten.
- ``provided`` [SecureString, stored by the team with ``make secret``]: never written; the deploy fails with
  ``[provided-secret-missing]`` and the ``make secret`` command when it is absent or not a SecureString.
- ``database_url`` [SecureString]: ``SecretArn``, ``Scheme``, optional ``Host``/``Port``/``Database``.
- ``database_password`` [SecureString], ``database_user`` / ``database_host`` / ``database_port`` /
  ``database_name`` [String]: ``SecretArn`` (JSON: username, password, host, port, dbname), optional
  ``Host``/``Port``/``Database`` overriding host/port/dbname as for ``database_url`` (host/port/name need no
  ``SecretArn`` when overridden). The user is a parameter because it alternates between two users when the
  secret rotates.
- ``redis_url`` [SecureString]: ``SecretArn``, ``Host``, ``Port``, optional ``Database`` (0..15, default 0);
  ``redis_token`` [SecureString]:
  ``SecretArn`` (JSON with ``password``, or the plain token); ``redis_host`` [String]: ``Host``;
  ``redis_port`` [String]: ``Port``.

Composed kinds (all but generated and provided) are written only when the Type or value changed
(``Overwrite=True``); an unchanged value never creates a new parameter version. Create/Update return Data
``ParameterName``, ``ParameterArn`` and ``Version`` (the version after the call). Delete never deletes
(parameters are retained).

Second entry mode, for an EventBridge rule on secret rotation (constant input, no RequestType/ResponseURL):
``{"Refresh": [<ResourceProperties of one parameter>, ...]}``. Each composed entry is recomputed and written
if changed; generated and provided entries are skipped. If any entry failed, one RuntimeError with the
scrubbed reasons is raised after trying them all, so Lambda's asynchronous retry runs again.

Values never appear in the response, in Data, in a Reason, in an exception or in the logs.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import urllib.parse
import urllib.request
from collections.abc import Callable
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


def _secret_string(sm: Any, secret_arn: str, sensitive: list[str]) -> str:
    secret = sm.get_secret_value(SecretId=secret_arn).get("SecretString")
    if not isinstance(secret, str) or not secret:
        raise ContractError("secure-parameter-contract", "secret has no SecretString")
    sensitive.append(secret)
    return secret


def _generated_value(props: dict[str, Any]) -> str:
    raw = str(props.get("Length") or DEFAULT_LENGTH).strip()
    if not raw.isdigit():
        raise ContractError("secret-key-weak", "Length must be a positive integer")
    length = int(raw)
    if length < MIN_LENGTH:
        raise ContractError("secret-key-weak", f"Length {length} is below the minimum of {MIN_LENGTH}")
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _database_fields(props: dict[str, Any], sm: Any, sensitive: list[str]) -> dict[str, str]:
    """The database secret's fields (``Host``/``Port``/``Database`` override); empty string when absent."""
    try:
        data = json.loads(_secret_string(sm, _required(props, "SecretArn"), sensitive))
    except json.JSONDecodeError:
        raise ContractError("database-url-format", "database secret is not a JSON object") from None
    if not isinstance(data, dict):
        raise ContractError("database-url-format", "database secret is not a JSON object")
    sensitive.append(str(data.get("password") or ""))
    return {
        key: str((props.get(override) if override else None) or data.get(key) or "").strip()
        for key, override in DB_FIELDS
    }


def _database_field(fields: dict[str, str], key: str) -> str:
    if not fields[key]:
        raise ContractError("database-url-format", f"no {key} in the secret or the properties")
    return _port(fields[key], "database-url-format") if key == "port" else fields[key]


def _database_url(props: dict[str, Any], sm: Any, sensitive: list[str]) -> str:
    scheme = str(props.get("Scheme") or "")
    if scheme not in TLS_PARAM:
        raise ContractError("database-url-format", f"Scheme must be one of {', '.join(TLS_PARAM)}")
    fields = _database_fields(props, sm, sensitive)
    parts = {key: _database_field(fields, key) for key, _ in DB_FIELDS}
    user, password = (urllib.parse.quote(parts[k], safe="") for k in ("username", "password"))
    dbname = urllib.parse.quote(parts["dbname"], safe="")
    return f"{scheme}://{user}:{password}@{parts['host']}:{parts['port']}/{dbname}?{TLS_PARAM[scheme]}"


def _redis_token(props: dict[str, Any], sm: Any, sensitive: list[str]) -> str:
    secret = _secret_string(sm, _required(props, "SecretArn"), sensitive)
    try:
        data: Any = json.loads(secret)
    except json.JSONDecodeError:
        data = None
    token = str(data.get("password") or "") if isinstance(data, dict) else secret
    if not token:
        raise ContractError("secure-parameter-contract", "redis secret JSON has no password")
    sensitive.append(token)
    return token


def _redis_port(props: dict[str, Any]) -> str:
    return _port(_required(props, "Port"), "secure-parameter-contract")


def _redis_url(props: dict[str, Any], sm: Any, sensitive: list[str]) -> str:
    host, port = _required(props, "Host"), _redis_port(props)
    database = str(props.get("Database") or "0")
    if not database.isdigit() or int(database) > 15:
        raise ContractError("secure-parameter-contract", "Database is not a Redis database number 0..15")
    token = _redis_token(props, sm, sensitive)
    return f"rediss://:{urllib.parse.quote(token, safe='')}@{host}:{port}/{int(database)}"


Composer = Callable[[dict[str, Any], Any, list[str]], str]


def _database_part(key: str) -> Composer:
    override = dict(DB_FIELDS)[key]

    def compose(props: dict[str, Any], sm: Any, sensitive: list[str]) -> str:
        # An overridden host/port/dbname does not need the secret (nor a SecretArn).
        given = str(props.get(override) or "").strip() if override else ""
        fields = {key: given} if given else _database_fields(props, sm, sensitive)
        return _database_field(fields, key)

    return compose


# Composed kinds: Kind -> (parameter Type, value from (props, secretsmanager client, sensitive)).
COMPOSED: dict[str, tuple[str, Composer]] = {
    "database_url": ("SecureString", _database_url),
    "database_password": ("SecureString", _database_part("password")),
    "database_user": ("String", _database_part("username")),
    "database_host": ("String", _database_part("host")),
    "database_port": ("String", _database_part("port")),
    "database_name": ("String", _database_part("dbname")),
    "redis_url": ("SecureString", _redis_url),
    "redis_token": ("SecureString", _redis_token),
    "redis_host": ("String", lambda props, sm, sensitive: _required(props, "Host")),
    "redis_port": ("String", lambda props, sm, sensitive: _redis_port(props)),
}
KINDS = ("generated", "provided", *COMPOSED)
NOT_REFRESHED = ("generated", "provided")


def _stage_and_setting(name: str) -> tuple[str, str]:
    """``(stage, NAME)`` of ``/<app>/<stage>/<NAME>``."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] or not all(parts[1:]):
        raise ContractError("secure-parameter-contract", "a provided parameter's Name must be /<app>/<stage>/<NAME>")
    return parts[2], parts[3]


def _existing(ssm: Any, name: str, decrypt: bool) -> dict[str, Any] | None:
    try:
        return dict(ssm.get_parameter(Name=name, WithDecryption=decrypt)["Parameter"])
    except ssm.exceptions.ParameterNotFound:
        return None


def _provided(ssm: Any, name: str) -> str:
    """Check that the team stored ``name`` as a SecureString (never written here); return its version."""
    stage, setting = _stage_and_setting(name)
    command = f"make secret STAGE={stage} NAME={setting}"
    # Not decrypted: only the type and version are looked at; the ciphertext/value is never used.
    current = _existing(ssm, name, decrypt=False)
    if current is None:
        message = f"{name} does not exist in this account and region; store it, then deploy again: {command}"
        raise ContractError("provided-secret-missing", message)
    if current.get("Type") != "SecureString":
        message = f"{name} is a {current.get('Type')} (plain text); store it again as a SecureString: {command}"
        raise ContractError("provided-secret-missing", message)
    return str(current["Version"])


def _request(props: dict[str, Any], name: str, type_: str, value: str, overwrite: bool) -> dict[str, Any]:
    request: dict[str, Any] = {"Name": name, "Type": type_, "Value": value, "Overwrite": overwrite}
    request["Tier"] = "Standard"
    if props.get("Description"):
        request["Description"] = str(props["Description"])
    return request


def _apply(props: dict[str, Any], sensitive: list[str]) -> tuple[str, str, str]:
    """Create, check or refresh the parameter described by ``props``: ``(name, version, outcome)``.

    ``outcome``: ``written``, ``unchanged`` (composed, same Type and value: no new version), ``kept``
    (generated, already there) or ``present`` (provided, stored by the team).
    """
    name, kind = _required(props, "Name"), _required(props, "Kind")
    if kind not in KINDS:
        raise ContractError("secure-parameter-contract", f"Kind must be one of {', '.join(KINDS)}")
    ssm, sm = _clients()
    if kind == "provided":
        return name, _provided(ssm, name), "present"
    if kind == "generated":
        value = _generated_value(props)
        sensitive.append(value)
        try:
            version = ssm.put_parameter(**_request(props, name, "SecureString", value, overwrite=False))["Version"]
        except ssm.exceptions.ParameterAlreadyExists:
            current = _existing(ssm, name, decrypt=False)
            return name, str(current["Version"] if current else ""), "kept"
        return name, str(version), "written"
    type_, compose = COMPOSED[kind]
    value = compose(props, sm, sensitive)
    if type_ == "SecureString":
        sensitive.append(value)
    current = _existing(ssm, name, decrypt=True)
    if current is not None:
        if current.get("Type") == "SecureString":
            sensitive.append(str(current.get("Value") or ""))
        if current.get("Type") == type_ and current.get("Value") == value:
            return name, str(current["Version"]), "unchanged"
    version = ssm.put_parameter(**_request(props, name, type_, value, overwrite=True))["Version"]
    return name, str(version), "written"


def _parameter_arn(event: dict[str, Any], context: Any, name: str) -> str:
    source = str(getattr(context, "invoked_function_arn", "") or event.get("ServiceToken") or "")
    fields = source.split(":")
    partition, region, account = (fields[1], fields[3], fields[4]) if len(fields) > 4 else ("aws", "", "")
    return f"arn:{partition}:ssm:{region}:{account}:parameter{name if name.startswith('/') else '/' + name}"


def _scrub(text: str, sensitive: list[str]) -> str:
    # Defence in depth: no message should carry a value, but scrub any that does (short ones would garble it).
    for value in sorted({s for s in sensitive if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, "***").replace(urllib.parse.quote(value, safe=""), "***")
    return " ".join(text.split())


def _reason(exc: Exception, sensitive: list[str]) -> str:
    text = str(exc) if isinstance(exc, ContractError) else f"{type(exc).__name__}: {exc}"
    return _scrub(text, sensitive)[:500]


OUTCOME_LOG = {
    "written": "written",
    "unchanged": "unchanged; not written",
    "kept": "already exists; left untouched",
    "present": "exists as a SecureString; not written",
}


def _refresh(entries: Any) -> dict[str, list[str]]:
    """Rotation: recompute every composed entry and write it if it changed; raise once if any failed."""
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise RuntimeError("[secure-parameter-contract] Refresh must be a list of parameter property objects")
    summary: dict[str, list[str]] = {"refreshed": [], "unchanged": [], "skipped": []}
    failures: list[str] = []
    sensitive: list[str] = []
    for props in entries:
        name, kind = str(props.get("Name") or "?"), str(props.get("Kind") or "?")
        if kind in NOT_REFRESHED:
            LOG.info("parameter %s skipped (kind=%s): not composed from a secret", name, kind)
            summary["skipped"].append(name)
            continue
        try:
            name, version, outcome = _apply(props, sensitive)
        except Exception as exc:
            reason = _reason(exc, sensitive)
            LOG.error("parameter %s failed (kind=%s): %s", name, kind, reason)
            failures.append(f"{name}: {reason}")
            continue
        state = "refreshed" if outcome == "written" else "unchanged"
        LOG.info("parameter %s %s (kind=%s, version=%s)", name, state, kind, version)
        summary[state].append(name)
    if failures:
        # Raised after trying every entry, so Lambda's asynchronous retry runs the whole list again.
        text = f"refresh failed for {len(failures)} of {len(entries)} parameters: " + "; ".join(failures)
        raise RuntimeError(_scrub(text, sensitive))
    return summary


def handler(event: dict[str, Any], context: Any) -> dict[str, list[str]] | None:
    """Entry point. CloudFormation: always PUTs exactly one response to ``event["ResponseURL"]``.

    ``{"Refresh": [...]}`` (EventBridge, on rotation): returns the names refreshed/unchanged/skipped, or raises.
    """
    if "Refresh" in event and "RequestType" not in event:
        return _refresh(event["Refresh"])
    request_type = str(event.get("RequestType", ""))
    props: dict[str, Any] = dict(event.get("ResourceProperties") or {})
    physical_id = str(event.get("PhysicalResourceId") or props.get("Name") or event.get("RequestId") or "unknown")
    LOG.info("%s %s (%s)", request_type, event.get("LogicalResourceId"), props.get("Name"))
    status, reason = "SUCCESS", ""
    data: dict[str, str] = {}
    sensitive: list[str] = []
    try:
        if request_type in ("Create", "Update"):
            physical_id, version, outcome = _apply(props, sensitive)
            LOG.info("parameter %s %s (kind=%s, version=%s)", physical_id, OUTCOME_LOG[outcome], props["Kind"], version)
            data = {
                "ParameterName": physical_id,
                "ParameterArn": _parameter_arn(event, context, physical_id),
                "Version": version,
            }
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
    return None
