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
    assert body["Data"] == {"ParameterName": name, "ParameterArn": param["ARN"]}
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
    assert body["Data"] == {"ParameterName": name, "ParameterArn": param["ARN"]}


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
