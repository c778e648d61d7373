"""Unit tests for the ``Custom::SecureParameter`` Lambda handler (functions/secure_parameter/index.py)."""

from __future__ import annotations

import json
import string
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:secure-parameter"
NASTY_PASSWORD = "p@ss:w/rd?#% x"


@pytest.fixture
def mod(handler_module: Any) -> Iterator[ModuleType]:
    with handler_module("secure_parameter") as module:
        yield module


@pytest.fixture
def sent(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Responses the handler PUT, captured instead of going to the network (raw text kept under ``_raw``)."""
    captured: list[dict[str, Any]] = []

    def fake_send(url: str, body: bytes) -> None:
        assert url == "https://cfn-response.example/presigned"
        document = json.loads(body)
        document["_raw"] = body.decode("utf-8")
        captured.append(document)

    monkeypatch.setattr(mod, "_send", fake_send)
    return captured


@pytest.fixture
def ssm(mod: ModuleType) -> Any:
    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def sm(mod: ModuleType) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


def _event(request_type: str, props: dict[str, str], physical_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": FUNCTION_ARN,
        "ResponseURL": "https://cfn-response.example/presigned",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/shop-dev/guid",
        "RequestId": "req-1",
        "LogicalResourceId": "SecretKeyParam",
        "ResourceType": "Custom::SecureParameter",
        "ResourceProperties": {"ServiceToken": FUNCTION_ARN, **props},
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return event


def _context() -> Any:
    return SimpleNamespace(invoked_function_arn=FUNCTION_ARN, log_stream_name="2024/01/01/[$LATEST]abc")


def _call(mod: ModuleType, sent: list[dict[str, Any]], event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    before = len(sent)
    mod.handler(event, _context() if context is None else context)
    assert len(sent) == before + 1, "handler must send exactly one response"
    return sent[-1]


def _db_secret(sm: Any, password: str = NASTY_PASSWORD) -> str:
    secret = {
        "username": "shop_admin",
        "password": password,
        "host": "db.cluster-xyz.eu-west-1.rds.amazonaws.com",
        "port": 5432,
        "dbname": "shop",
        "engine": "postgres",
    }
    return str(sm.create_secret(Name="shop/dev/db", SecretString=json.dumps(secret))["ARN"])


def _value(ssm: Any, name: str) -> dict[str, Any]:
    return dict(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"])


# --- generated ---------------------------------------------------------------------------------------------------


def test_create_generated_makes_64_char_secure_string(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    name = "/shop/dev/SECRET_KEY"
    body = _call(mod, sent, _event("Create", {"Name": name, "Kind": "generated", "Description": "Django key"}))

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == name
    assert body["NoEcho"] is True
    assert body["StackId"].endswith("stack/shop-dev/guid")
    assert body["RequestId"] == "req-1"
    assert body["LogicalResourceId"] == "SecretKeyParam"
    param = _value(ssm, name)
    assert param["Type"] == "SecureString"
    assert len(param["Value"]) == 64
    assert set(param["Value"]) <= set(string.ascii_letters + string.digits + "-_")
    assert body["Data"] == {"ParameterName": name, "ParameterArn": param["ARN"], "Version": "1"}
    assert param["ARN"] == f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"
    assert param["Value"] not in body["_raw"]
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]
    assert described["Description"] == "Django key"
    assert described["Tier"] == "Standard"


def test_create_generated_custom_length(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    body = _call(mod, sent, _event("Create", {"Name": "/shop/dev/K", "Kind": "generated", "Length": "48"}))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert len(_value(ssm, "/shop/dev/K")["Value"]) == 48


def test_second_create_and_update_never_overwrite(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    name = "/shop/dev/SECRET_KEY"
    _call(mod, sent, _event("Create", {"Name": name, "Kind": "generated"}))
    first = _value(ssm, name)

    again = _call(mod, sent, _event("Create", {"Name": name, "Kind": "generated"}))
    update = _call(mod, sent, _event("Update", {"Name": name, "Kind": "generated", "Length": "80"}, name))

    assert again["Status"] == update["Status"] == "SUCCESS"
    second = _value(ssm, name)
    assert second["Value"] == first["Value"]
    assert second["Version"] == 1


def test_existing_manual_value_is_left_untouched(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    name = "/shop/dev/SECRET_KEY"
    ssm.put_parameter(Name=name, Type="SecureString", Value="set-by-an-operator")
    body = _call(mod, sent, _event("Create", {"Name": name, "Kind": "generated"}))
    assert body["Status"] == "SUCCESS"
    assert _value(ssm, name)["Value"] == "set-by-an-operator"
    assert "set-by-an-operator" not in body["_raw"]


@pytest.mark.parametrize("length", ["16", "31", "abc", "-64"])
def test_weak_length_fails(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, length: str) -> None:
    name = "/shop/dev/SECRET_KEY"
    body = _call(mod, sent, _event("Create", {"Name": name, "Kind": "generated", "Length": length}))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[secret-key-weak]")
    assert body["Data"] == {}
    assert ssm.describe_parameters()["Parameters"] == []


def test_update_with_new_name_creates_new_and_keeps_old(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    old, new = "/shop/dev/SECRET_KEY", "/shop/dev/SECRET_KEY_V2"
    _call(mod, sent, _event("Create", {"Name": old, "Kind": "generated"}))
    old_value = _value(ssm, old)["Value"]

    body = _call(mod, sent, _event("Update", {"Name": new, "Kind": "generated"}, physical_id=old))

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == new
    assert body["Data"]["ParameterName"] == new
    assert len(_value(ssm, new)["Value"]) == 64
    assert _value(ssm, old)["Value"] == old_value
    # CloudFormation then sends Delete for the old physical id: it must be retained.
    cleanup = _call(mod, sent, _event("Delete", {"Name": old, "Kind": "generated"}, physical_id=old))
    assert cleanup["Status"] == "SUCCESS"
    assert _value(ssm, old)["Value"] == old_value


# --- database_url ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "tls"),
    [
        ("postgresql+asyncpg", "ssl=require"),
        ("postgresql+psycopg", "sslmode=require"),
        ("postgresql", "sslmode=require"),
    ],
)
def test_database_url_round_trips_nasty_password(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, scheme: str, tls: str
) -> None:
    name = "/shop/dev/DATABASE_URL"
    props = {"Name": name, "Kind": "database_url", "SecretArn": _db_secret(sm), "Scheme": scheme}
    body = _call(mod, sent, _event("Create", props))

    assert body["Status"] == "SUCCESS", body["Reason"]
    param = _value(ssm, name)
    assert param["Type"] == "SecureString"
    url = urllib.parse.urlsplit(param["Value"])
    assert url.scheme == scheme
    assert urllib.parse.unquote(url.username or "") == "shop_admin"
    assert urllib.parse.unquote(url.password or "") == NASTY_PASSWORD
    assert url.hostname == "db.cluster-xyz.eu-west-1.rds.amazonaws.com"
    assert url.port == 5432
    assert url.path == "/shop"
    assert url.query == tls
    assert url.fragment == ""
    raw = body["_raw"]
    assert NASTY_PASSWORD not in raw
    assert urllib.parse.quote(NASTY_PASSWORD, safe="") not in raw
    assert param["Value"] not in raw
    assert body["Data"] == {"ParameterName": name, "ParameterArn": param["ARN"], "Version": "1"}


def test_database_url_overrides_and_update_overwrites(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any
) -> None:
    name = "/shop/dev/DATABASE_URL"
    props = {"Name": name, "Kind": "database_url", "SecretArn": _db_secret(sm), "Scheme": "postgresql+asyncpg"}
    _call(mod, sent, _event("Create", props))
    override = {**props, "Host": "proxy.internal", "Port": "6432", "Database": "shop_ro"}
    body = _call(mod, sent, _event("Update", override, physical_id=name))

    assert body["Status"] == "SUCCESS", body["Reason"]
    param = _value(ssm, name)
    assert param["Version"] == 2
    url = urllib.parse.urlsplit(param["Value"])
    assert (url.hostname, url.port, url.path, url.query) == ("proxy.internal", 6432, "/shop_ro", "ssl=require")


@pytest.mark.parametrize("scheme", ["postgres", "", "mysql", "postgresql+asyncpg "])
def test_database_url_bad_scheme_fails(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, scheme: str
) -> None:
    props = {"Name": "/shop/dev/DATABASE_URL", "Kind": "database_url", "SecretArn": _db_secret(sm), "Scheme": scheme}
    body = _call(mod, sent, _event("Create", props))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[database-url-format]")
    assert ssm.describe_parameters()["Parameters"] == []


def test_database_url_missing_field_fails(mod: ModuleType, sent: list[dict[str, Any]], sm: Any) -> None:
    arn = sm.create_secret(Name="db", SecretString=json.dumps({"username": "u", "password": "pw-value-123"}))["ARN"]
    props = {"Name": "/shop/dev/DATABASE_URL", "Kind": "database_url", "SecretArn": arn, "Scheme": "postgresql"}
    body = _call(mod, sent, _event("Create", props))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[database-url-format]")
    assert "pw-value-123" not in body["_raw"]


# --- redis_url ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [True, False])
def test_redis_url_from_json_and_plain_secret(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, as_json: bool
) -> None:
    token = "tok/en+with:odd@chars%"
    secret = json.dumps({"password": token}) if as_json else token
    arn = sm.create_secret(Name="shop/dev/redis", SecretString=secret)["ARN"]
    name = "/shop/dev/REDIS_URL"
    props = {"Name": name, "Kind": "redis_url", "SecretArn": arn, "Host": "master.redis.cache.amazonaws.com"}
    body = _call(mod, sent, _event("Create", {**props, "Port": "6379"}))

    assert body["Status"] == "SUCCESS", body["Reason"]
    value = _value(ssm, name)["Value"]
    assert value == f"rediss://:{urllib.parse.quote(token, safe='')}@master.redis.cache.amazonaws.com:6379/0"
    url = urllib.parse.urlsplit(value)
    assert url.scheme == "rediss"
    assert urllib.parse.unquote(url.password or "") == token
    assert (url.hostname, url.port, url.path) == ("master.redis.cache.amazonaws.com", 6379, "/0")
    assert token not in body["_raw"]
    assert urllib.parse.quote(token, safe="") not in body["_raw"]


def test_redis_numeric_plain_token_is_used_verbatim(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any
) -> None:
    arn = sm.create_secret(Name="r", SecretString="12345678901234567890")["ARN"]
    props = {"Name": "/shop/dev/REDIS_URL", "Kind": "redis_url", "SecretArn": arn, "Host": "h", "Port": "6379"}
    assert _call(mod, sent, _event("Create", props))["Status"] == "SUCCESS"
    assert _value(ssm, "/shop/dev/REDIS_URL")["Value"] == "rediss://:12345678901234567890@h:6379/0"


@pytest.mark.parametrize(("database", "ok"), [("1", True), ("15", True), ("16", False), ("x", False)])
def test_redis_url_of_a_services_own_database_ends_in_its_number(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, database: str, ok: bool
) -> None:
    arn = sm.create_secret(Name="r", SecretString="token")["ARN"]
    name = "/shop/dev/REDIS_URL_DB1"
    props = {"Name": name, "Kind": "redis_url", "SecretArn": arn, "Host": "h", "Port": "6379", "Database": database}
    body = _call(mod, sent, _event("Create", props))
    if ok:
        assert body["Status"] == "SUCCESS" and _value(ssm, name)["Value"] == f"rediss://:token@h:6379/{database}"
    else:
        assert body["Status"] == "FAILED" and "Redis database number" in body["Reason"]


# --- delete, failures, response plumbing ---------------------------------------------------------------------------


def test_delete_leaves_parameter_and_succeeds(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    name = "/shop/dev/SECRET_KEY"
    _call(mod, sent, _event("Create", {"Name": name, "Kind": "generated"}))
    value = _value(ssm, name)["Value"]

    body = _call(mod, sent, _event("Delete", {"Name": name, "Kind": "generated"}, physical_id=name))

    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == name
    assert _value(ssm, name)["Value"] == value
    assert value not in body["_raw"]


def test_delete_after_failed_create_succeeds(mod: ModuleType, sent: list[dict[str, Any]]) -> None:
    failed = _call(mod, sent, _event("Create", {"Name": "/shop/dev/K", "Kind": "generated", "Length": "8"}))
    assert failed["Status"] == "FAILED"
    body = _call(mod, sent, _event("Delete", {"Kind": "nonsense"}, physical_id=failed["PhysicalResourceId"]))
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == failed["PhysicalResourceId"]


def test_missing_secret_fails_with_one_line_reason(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:does-not-exist-AbCdEf"
    props = {"Name": "/shop/dev/DATABASE_URL", "Kind": "database_url", "SecretArn": arn, "Scheme": "postgresql"}
    body = _call(mod, sent, _event("Create", props))

    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("ResourceNotFoundException: ")
    assert "\n" not in body["Reason"]
    assert body["PhysicalResourceId"] == "/shop/dev/DATABASE_URL"
    assert body["Data"] == {}
    assert ssm.describe_parameters()["Parameters"] == []


@pytest.mark.parametrize(
    "props",
    [{"Kind": "generated"}, {"Name": "/shop/dev/X"}, {"Name": "/shop/dev/X", "Kind": "plaintext"}],
)
def test_contract_violations_fail(mod: ModuleType, sent: list[dict[str, Any]], props: dict[str, str]) -> None:
    body = _call(mod, sent, _event("Create", props))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[secure-parameter-contract]")


def test_unexpected_exception_is_redacted_and_still_answered(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Exploding:
        class exceptions:  # mimics the boto3 client attribute
            ParameterAlreadyExists = KeyError
            ParameterNotFound = LookupError

        def get_parameter(self, **kwargs: Any) -> None:
            raise self.exceptions.ParameterNotFound(kwargs["Name"])

        def put_parameter(self, **kwargs: Any) -> None:
            raise RuntimeError(f"boom\nvalue was {kwargs['Value']}")

    real_sm = sm
    monkeypatch.setattr(mod, "_clients", lambda: (Exploding(), real_sm))
    props = {"Name": "/shop/dev/DATABASE_URL", "Kind": "database_url", "SecretArn": _db_secret(sm)}
    body = _call(mod, sent, _event("Create", {**props, "Scheme": "postgresql+psycopg"}))

    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("RuntimeError: boom value was ***")
    assert "\n" not in body["Reason"]
    assert NASTY_PASSWORD not in body["_raw"]
    assert urllib.parse.quote(NASTY_PASSWORD, safe="") not in body["_raw"]


def test_arn_falls_back_to_service_token(mod: ModuleType, sent: list[dict[str, Any]]) -> None:
    event = _event("Create", {"Name": "/shop/dev/SECRET_KEY", "Kind": "generated"})
    event["ServiceToken"] = "arn:aws-cn:lambda:cn-north-1:210987654321:function:fn"
    body = _call(mod, sent, event, context=SimpleNamespace())
    assert body["Data"]["ParameterArn"] == "arn:aws-cn:ssm:cn-north-1:210987654321:parameter/shop/dev/SECRET_KEY"


def test_values_never_logged(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    props = {"Name": "/shop/dev/DATABASE_URL", "Kind": "database_url", "SecretArn": _db_secret(sm)}
    _call(mod, sent, _event("Create", {**props, "Scheme": "postgresql+asyncpg"}))
    _call(mod, sent, _event("Create", {"Name": "/shop/dev/SECRET_KEY", "Kind": "generated"}))
    logged = caplog.text
    assert "/shop/dev/SECRET_KEY written" in logged
    for secret in (NASTY_PASSWORD, _value(ssm, "/shop/dev/SECRET_KEY")["Value"], _value(ssm, props["Name"])["Value"]):
        assert secret not in logged


def test_send_puts_json_with_empty_content_type(mod: ModuleType) -> None:
    received: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            received["method"] = self.command
            received["path"] = self.path
            received["content_type"] = self.headers.get("Content-Type")
            received["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        mod._send(f"http://127.0.0.1:{server.server_port}/presigned?X-Amz-Signature=abc", b'{"Status": "SUCCESS"}')
    finally:
        thread.join(timeout=5)
        server.server_close()
    assert received == {
        "method": "PUT",
        "path": "/presigned?X-Amz-Signature=abc",
        "content_type": "",
        "body": b'{"Status": "SUCCESS"}',
    }


# --- database and redis parts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "type_", "expected", "overridden"),
    [
        ("database_password", "SecureString", NASTY_PASSWORD, NASTY_PASSWORD),
        ("database_user", "String", "shop_admin", "shop_admin"),
        ("database_host", "String", "db.cluster-xyz.eu-west-1.rds.amazonaws.com", "proxy.internal"),
        ("database_port", "String", "5432", "6432"),
        ("database_name", "String", "shop", "shop_ro"),
    ],
)
def test_database_parts(
    mod: ModuleType,
    sent: list[dict[str, Any]],
    ssm: Any,
    sm: Any,
    kind: str,
    type_: str,
    expected: str,
    overridden: str,
) -> None:
    arn = _db_secret(sm)
    plain, override = "/shop/dev/PART", "/shop/dev/PART_OVERRIDDEN"
    body = _call(mod, sent, _event("Create", {"Name": plain, "Kind": kind, "SecretArn": arn}))
    extra = {"Host": "proxy.internal", "Port": "6432", "Database": "shop_ro"}
    again = _call(mod, sent, _event("Create", {"Name": override, "Kind": kind, "SecretArn": arn, **extra}))

    for response, name, value in ((body, plain, expected), (again, override, overridden)):
        assert response["Status"] == "SUCCESS", response["Reason"]
        param = _value(ssm, name)
        assert (param["Type"], param["Value"], param["Version"]) == (type_, value, 1)
        assert response["Data"] == {"ParameterName": name, "ParameterArn": param["ARN"], "Version": "1"}
        assert NASTY_PASSWORD not in response["_raw"]
        assert urllib.parse.quote(NASTY_PASSWORD, safe="") not in response["_raw"]


@pytest.mark.parametrize(
    ("kind", "props", "expected"),
    [
        ("database_host", {"Host": "proxy.internal"}, "proxy.internal"),
        ("database_port", {"Port": "06432"}, "6432"),
        ("database_name", {"Database": "shop_ro"}, "shop_ro"),
    ],
)
def test_overridden_database_part_needs_no_secret(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, kind: str, props: dict[str, str], expected: str
) -> None:
    body = _call(mod, sent, _event("Create", {"Name": "/shop/dev/PART", "Kind": kind, **props}))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert {k: _value(ssm, "/shop/dev/PART")[k] for k in ("Type", "Value")} == {"Type": "String", "Value": expected}


def test_database_port_part_is_validated(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any) -> None:
    props = {"Name": "/shop/dev/DB_PORT", "Kind": "database_port", "SecretArn": _db_secret(sm), "Port": "99999"}
    body = _call(mod, sent, _event("Create", props))
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "[database-url-format] port must be an integer between 1 and 65535"
    assert ssm.describe_parameters()["Parameters"] == []


def test_database_part_needs_only_its_own_field(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any) -> None:
    arn = sm.create_secret(Name="db", SecretString=json.dumps({"username": "u", "password": "pw-value-123"}))["ARN"]
    ok = _call(
        mod, sent, _event("Create", {"Name": "/shop/dev/DB_PASSWORD", "Kind": "database_password", "SecretArn": arn})
    )
    missing = _call(
        mod, sent, _event("Create", {"Name": "/shop/dev/DB_HOST", "Kind": "database_host", "SecretArn": arn})
    )

    assert ok["Status"] == "SUCCESS", ok["Reason"]
    assert _value(ssm, "/shop/dev/DB_PASSWORD")["Value"] == "pw-value-123"
    assert missing["Status"] == "FAILED"
    assert missing["Reason"] == "[database-url-format] no host in the secret or the properties"
    for body in (ok, missing):
        assert "pw-value-123" not in body["_raw"]


@pytest.mark.parametrize("as_json", [True, False])
def test_redis_token_from_json_and_plain_secret(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, as_json: bool
) -> None:
    token = "tok/en+with:odd@chars%"
    arn = sm.create_secret(Name="shop/dev/redis", SecretString=json.dumps({"password": token}) if as_json else token)
    name = "/shop/dev/REDIS_TOKEN"
    body = _call(mod, sent, _event("Create", {"Name": name, "Kind": "redis_token", "SecretArn": arn["ARN"]}))

    assert body["Status"] == "SUCCESS", body["Reason"]
    param = _value(ssm, name)
    assert (param["Type"], param["Value"], param["Version"]) == ("SecureString", token, 1)
    assert body["Data"]["Version"] == "1"
    assert token not in body["_raw"]
    assert urllib.parse.quote(token, safe="") not in body["_raw"]


def test_redis_host_and_port_need_no_secret(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    host = _call(mod, sent, _event("Create", {"Name": "/shop/dev/REDIS_HOST", "Kind": "redis_host", "Host": "m.x"}))
    port = _call(mod, sent, _event("Create", {"Name": "/shop/dev/REDIS_PORT", "Kind": "redis_port", "Port": " 6380"}))

    assert host["Status"] == port["Status"] == "SUCCESS", (host["Reason"], port["Reason"])
    assert {k: _value(ssm, "/shop/dev/REDIS_HOST")[k] for k in ("Type", "Value")} == {"Type": "String", "Value": "m.x"}
    assert {k: _value(ssm, "/shop/dev/REDIS_PORT")[k] for k in ("Type", "Value")} == {"Type": "String", "Value": "6380"}


@pytest.mark.parametrize(
    "props",
    [
        {"Kind": "redis_port", "Port": "0"},
        {"Kind": "redis_port", "Port": "63 79"},
        {"Kind": "redis_port"},
        {"Kind": "redis_host"},
        {"Kind": "redis_token"},
        {"Kind": "database_user"},
    ],
)
def test_parts_contract_violations_fail(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, props: dict[str, str]
) -> None:
    body = _call(mod, sent, _event("Create", {"Name": "/shop/dev/X", **props}))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[secure-parameter-contract]")
    assert ssm.describe_parameters()["Parameters"] == []


# --- provided ----------------------------------------------------------------------------------------------------


def test_provided_missing_fails_with_make_secret_command(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    body = _call(mod, sent, _event("Create", {"Name": "/shop/staging/STRIPE_API_KEY", "Kind": "provided"}))

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        "[provided-secret-missing] /shop/staging/STRIPE_API_KEY does not exist in this account and region; "
        "store it, then deploy again: make secret STAGE=staging NAME=STRIPE_API_KEY"
    )
    assert body["Data"] == {}
    assert ssm.describe_parameters()["Parameters"] == []


def test_provided_plain_string_fails_and_is_left_alone(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any) -> None:
    name = "/shop/dev/STRIPE_API_KEY"
    ssm.put_parameter(Name=name, Type="String", Value="sk_live_plain_text_value")
    body = _call(mod, sent, _event("Create", {"Name": name, "Kind": "provided"}))

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        "[provided-secret-missing] /shop/dev/STRIPE_API_KEY is a String (plain text); "
        "store it again as a SecureString: make secret STAGE=dev NAME=STRIPE_API_KEY"
    )
    assert "sk_live_plain_text_value" not in body["_raw"]
    param = _value(ssm, name)
    assert (param["Type"], param["Version"]) == ("String", 1)


def test_provided_present_succeeds_without_writing(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    name = "/shop/dev/STRIPE_API_KEY"
    ssm.put_parameter(Name=name, Type="SecureString", Value="sk_live_first")
    ssm.put_parameter(Name=name, Type="SecureString", Value="sk_live_stored_by_team", Overwrite=True)

    create = _call(mod, sent, _event("Create", {"Name": name, "Kind": "provided", "Description": "Stripe"}))
    update = _call(mod, sent, _event("Update", {"Name": name, "Kind": "provided"}, physical_id=name))

    for body in (create, update):
        assert body["Status"] == "SUCCESS", body["Reason"]
        assert body["PhysicalResourceId"] == name
        assert body["Data"] == {"ParameterName": name, "ParameterArn": _value(ssm, name)["ARN"], "Version": "2"}
        assert "sk_live" not in body["_raw"]
    param = _value(ssm, name)
    assert (param["Type"], param["Value"], param["Version"]) == ("SecureString", "sk_live_stored_by_team", 2)
    assert "sk_live" not in caplog.text


@pytest.mark.parametrize("name", ["STRIPE_API_KEY", "/shop/STRIPE_API_KEY", "/shop/dev/nested/KEY", "/shop//KEY"])
def test_provided_needs_app_stage_name(mod: ModuleType, sent: list[dict[str, Any]], name: str) -> None:
    body = _call(mod, sent, _event("Create", {"Name": name, "Kind": "provided"}))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[secure-parameter-contract]")


# --- write only when changed ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["database_url", "database_password", "database_user"])
def test_compose_twice_with_same_secret_keeps_version(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level("INFO")
    name = "/shop/dev/COMPOSED"
    props = {"Name": name, "Kind": kind, "SecretArn": _db_secret(sm), "Scheme": "postgresql+asyncpg"}
    _call(mod, sent, _event("Create", props))
    first = _value(ssm, name)

    again = _call(mod, sent, _event("Create", props))
    update = _call(mod, sent, _event("Update", {**props, "Description": "reworded"}, physical_id=name))

    assert again["Status"] == update["Status"] == "SUCCESS", (again["Reason"], update["Reason"])
    assert again["Data"]["Version"] == update["Data"]["Version"] == "1"
    second = _value(ssm, name)
    assert (second["Value"], second["Version"]) == (first["Value"], 1)
    assert f"parameter {name} unchanged" in caplog.text
    for value in (first["Value"], NASTY_PASSWORD, urllib.parse.quote(NASTY_PASSWORD, safe="")):
        assert value not in caplog.text
        assert all(value not in body["_raw"] for body in sent)


def test_changed_secret_writes_new_version(mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any) -> None:
    arn = _db_secret(sm)
    url = {"Name": "/shop/dev/DATABASE_URL", "Kind": "database_url", "SecretArn": arn, "Scheme": "postgresql"}
    password = {"Name": "/shop/dev/DB_PASSWORD", "Kind": "database_password", "SecretArn": arn}
    user = {"Name": "/shop/dev/DB_USER", "Kind": "database_user", "SecretArn": arn}
    for props in (url, password, user):
        _call(mod, sent, _event("Create", props))
    rotated = {**json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]), "password": "rotated-pass-2"}
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps(rotated))

    bodies = [_call(mod, sent, _event("Update", props, physical_id=props["Name"])) for props in (url, password, user)]

    assert [body["Data"]["Version"] for body in bodies] == ["2", "2", "1"]
    assert urllib.parse.urlsplit(_value(ssm, url["Name"])["Value"]).password == "rotated-pass-2"
    assert (_value(ssm, password["Name"])["Value"], _value(ssm, password["Name"])["Version"]) == ("rotated-pass-2", 2)
    assert _value(ssm, user["Name"])["Version"] == 1
    for body in bodies:
        assert "rotated-pass-2" not in body["_raw"]


def test_same_value_with_another_type_is_rewritten(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any
) -> None:
    name = "/shop/dev/DB_PASSWORD"
    ssm.put_parameter(Name=name, Type="String", Value=NASTY_PASSWORD)
    body = _call(mod, sent, _event("Create", {"Name": name, "Kind": "database_password", "SecretArn": _db_secret(sm)}))
    assert body["Status"] == "SUCCESS", body["Reason"]
    param = _value(ssm, name)
    assert (param["Type"], param["Value"], param["Version"]) == ("SecureString", NASTY_PASSWORD, 2)


# --- Refresh (EventBridge, on rotation) ----------------------------------------------------------------------------


def _redis_secret(sm: Any, token: str = "redis-token-one") -> str:
    return str(sm.create_secret(Name="shop/dev/redis", SecretString=json.dumps({"password": token}))["ARN"])


def test_refresh_rewrites_changed_and_skips_generated(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    db_arn, redis_arn = _db_secret(sm), _redis_secret(sm)
    entries = [
        {"Name": "/shop/dev/DATABASE_URL", "Kind": "database_url", "SecretArn": db_arn, "Scheme": "postgresql"},
        {"Name": "/shop/dev/REDIS_TOKEN", "Kind": "redis_token", "SecretArn": redis_arn},
        {"Name": "/shop/dev/SECRET_KEY", "Kind": "generated"},
        {"Name": "/shop/dev/DB_USER", "Kind": "database_user", "SecretArn": db_arn},
        {"Name": "/shop/dev/STRIPE_API_KEY", "Kind": "provided"},
    ]
    for props in entries[:4]:
        assert _call(mod, sent, _event("Create", props))["Status"] == "SUCCESS"
    secret_key = _value(ssm, "/shop/dev/SECRET_KEY")["Value"]
    rotated = {**json.loads(sm.get_secret_value(SecretId=db_arn)["SecretString"]), "password": "rotated-db-pass"}
    sm.put_secret_value(SecretId=db_arn, SecretString=json.dumps(rotated))
    sm.put_secret_value(SecretId=redis_arn, SecretString=json.dumps({"password": "rotated-redis-token"}))
    responses = len(sent)

    summary = mod.handler({"Refresh": entries}, _context())

    assert len(sent) == responses, "Refresh must not answer CloudFormation"
    assert summary == {
        "refreshed": ["/shop/dev/DATABASE_URL", "/shop/dev/REDIS_TOKEN"],
        "unchanged": ["/shop/dev/DB_USER"],
        "skipped": ["/shop/dev/SECRET_KEY", "/shop/dev/STRIPE_API_KEY"],
    }
    url = _value(ssm, "/shop/dev/DATABASE_URL")
    assert (urllib.parse.urlsplit(url["Value"]).password, url["Version"]) == ("rotated-db-pass", 2)
    token = _value(ssm, "/shop/dev/REDIS_TOKEN")
    assert (token["Value"], token["Version"]) == ("rotated-redis-token", 2)
    assert _value(ssm, "/shop/dev/DB_USER")["Version"] == 1
    assert (_value(ssm, "/shop/dev/SECRET_KEY")["Value"], _value(ssm, "/shop/dev/SECRET_KEY")["Version"]) == (
        secret_key,
        1,
    )
    logged = caplog.text
    assert "parameter /shop/dev/DATABASE_URL refreshed (kind=database_url" in logged
    assert "parameter /shop/dev/REDIS_TOKEN refreshed (kind=redis_token" in logged
    assert "parameter /shop/dev/DB_USER unchanged (kind=database_user" in logged
    assert "parameter /shop/dev/SECRET_KEY skipped (kind=generated)" in logged
    for value in (
        "rotated-db-pass",
        "rotated-redis-token",
        "redis-token-one",
        NASTY_PASSWORD,
        secret_key,
        url["Value"],
    ):
        assert value not in logged

    # Run again (e.g. the second rotation event): nothing changed, no new version.
    assert mod.handler({"Refresh": entries}, _context())["unchanged"] == [
        "/shop/dev/DATABASE_URL",
        "/shop/dev/REDIS_TOKEN",
        "/shop/dev/DB_USER",
    ]
    assert _value(ssm, "/shop/dev/DATABASE_URL")["Version"] == _value(ssm, "/shop/dev/REDIS_TOKEN")["Version"] == 2


def test_refresh_with_a_broken_entry_writes_the_others_then_raises(
    mod: ModuleType, sent: list[dict[str, Any]], ssm: Any, sm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    db_arn, redis_arn = _db_secret(sm), _redis_secret(sm, token="redis-token-value")
    missing = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:does-not-exist-AbCdEf"
    entries = [
        {"Name": "/shop/dev/BROKEN_URL", "Kind": "database_url", "SecretArn": missing, "Scheme": "postgresql"},
        {"Name": "/shop/dev/DATABASE_URL", "Kind": "database_url", "SecretArn": db_arn, "Scheme": "postgresql"},
        {"Name": "/shop/dev/BAD_PORT", "Kind": "redis_port", "Port": "http"},
        {"Name": "/shop/dev/REDIS_TOKEN", "Kind": "redis_token", "SecretArn": redis_arn},
    ]

    with pytest.raises(RuntimeError) as raised:
        mod.handler({"Refresh": entries}, _context())

    text = str(raised.value)
    assert text.startswith("refresh failed for 2 of 4 parameters: /shop/dev/BROKEN_URL: ResourceNotFoundException")
    assert "/shop/dev/BAD_PORT: [secure-parameter-contract] port must be" in text
    assert "\n" not in text
    database_url = _value(ssm, "/shop/dev/DATABASE_URL")["Value"]
    assert urllib.parse.urlsplit(database_url).password == urllib.parse.quote(NASTY_PASSWORD, safe="")
    assert _value(ssm, "/shop/dev/REDIS_TOKEN")["Value"] == "redis-token-value"
    assert {p["Name"] for p in ssm.describe_parameters()["Parameters"]} == {
        "/shop/dev/DATABASE_URL",
        "/shop/dev/REDIS_TOKEN",
    }
    assert sent == []
    for value in (NASTY_PASSWORD, urllib.parse.quote(NASTY_PASSWORD, safe=""), database_url, "redis-token-value"):
        assert value not in text
        assert value not in caplog.text


def test_refresh_failure_text_is_scrubbed(mod: ModuleType, sm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Exploding:
        class exceptions:  # mimics the boto3 client attribute
            ParameterAlreadyExists = KeyError
            ParameterNotFound = LookupError

        def get_parameter(self, **kwargs: Any) -> None:
            raise self.exceptions.ParameterNotFound(kwargs["Name"])

        def put_parameter(self, **kwargs: Any) -> None:
            raise RuntimeError(f"boom\nvalue was {kwargs['Value']}")

    real_sm = sm
    monkeypatch.setattr(mod, "_clients", lambda: (Exploding(), real_sm))
    entries = [
        {"Name": "/shop/dev/DB_PASSWORD", "Kind": "database_password", "SecretArn": _db_secret(sm)},
        {"Name": "/shop/dev/REDIS_TOKEN", "Kind": "redis_token", "SecretArn": _redis_secret(sm, "redis-token-value")},
    ]
    with pytest.raises(RuntimeError) as raised:
        mod.handler({"Refresh": entries}, _context())
    text = str(raised.value)
    assert text.count("RuntimeError: boom value was ***") == 2
    for value in (NASTY_PASSWORD, urllib.parse.quote(NASTY_PASSWORD, safe=""), "redis-token-value"):
        assert value not in text


@pytest.mark.parametrize("refresh", [None, "x", {"Name": "/shop/dev/X"}, ["/shop/dev/X"]])
def test_refresh_must_be_a_list_of_objects(mod: ModuleType, refresh: Any) -> None:
    with pytest.raises(RuntimeError, match=r"^\[secure-parameter-contract\] Refresh must be a list"):
        mod.handler({"Refresh": refresh}, _context())
