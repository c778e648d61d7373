"""Unit tests for the ``Custom::DatabaseUser`` Lambda handler (functions/database_users/index.py).

PostgreSQL is a fake connection that records every statement and its parameters (and applies CREATE ROLE on
COMMIT only); the two secrets live in moto's Secrets Manager. Quoting and the SCRAM verifier go through the
pinned pg8000/scramp of requirements.txt, which the synth copies into the Lambda's asset.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import re
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:database-users"
MASTER_PASSWORD = "master-Pa55word-0123456789"
# Printable ASCII with both quotes and a backslash: the characters SQL quoting could get wrong.
USER_PASSWORD = 'it\'s a "pass\\word" 0123456789'
CLONE_PASSWORD = "clone-Pa55word-'quoted'-9876543210"
ROLE_SQL = "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname IN (:user, :clone)"
VERIFIER = re.compile(r"SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)")


class FakeDatabase:
    """Roles and relations of a fake server; CREATE ROLE takes effect at COMMIT, like a transaction."""

    def __init__(self, roles: tuple[str, ...] = (), relations: tuple[tuple[str, str], ...] = ()) -> None:
        self.roles = set(roles)
        # What the three ownership queries return: (name, relkind), (name, typtype), (regprocedure, prokind).
        self.relations = list(relations)
        self.types: list[tuple[str, str]] = []
        self.routines: list[tuple[str, str]] = []
        self.statements: list[tuple[str, dict[str, Any]]] = []
        self.connects: list[dict[str, Any]] = []
        self.closed = 0
        self.fail_on: str | None = None
        self.error: Callable[[str], Exception] = lambda sql: RuntimeError("boom")

    def connect(self, host: str, port: int, database: str, user: str, password: str) -> FakeConnection:
        self.connects.append({"host": host, "port": port, "database": database, "user": user, "password": password})
        return FakeConnection(self)

    def sql(self) -> list[str]:
        return [statement for statement, _ in self.statements]


class FakeConnection:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.created: set[str] = set()

    def run(self, sql: str, **params: Any) -> list[list[Any]] | None:
        self.db.statements.append((sql, params))
        if self.db.fail_on is not None and self.db.fail_on in sql:
            raise self.db.error(sql)
        if sql == ROLE_SQL:
            return [[name] for name in (params["user"], params["clone"]) if name in self.db.roles]
        for prefix, rows in (
            ("SELECT c.relname, c.relkind", self.db.relations),
            ("SELECT t.typname, t.typtype", self.db.types),
            ("SELECT p.oid::pg_catalog.regprocedure::text, p.prokind", self.db.routines),
        ):
            if sql.startswith(prefix):
                return [[name, kind] for name, kind in rows]
        created = re.match(r'CREATE ROLE "(\w+)"', sql)
        if created:
            self.created.add(created.group(1))
        if sql == "COMMIT":
            self.db.roles |= self.created
        return None

    def close(self) -> None:
        self.db.closed += 1


@pytest.fixture
def mod(handler_module: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    # No __pycache__ in the Lambda's source directory (the asset excludes it anyway); sys.path restored after.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with handler_module("database_users") as module:
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
def sm(mod: ModuleType) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def db(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> FakeDatabase:
    database = FakeDatabase()
    monkeypatch.setattr(mod, "_connect", database.connect)
    return database


def _secret(sm: Any, name: str, username: str, password: str) -> str:
    value = {"username": username, "password": password, "host": "db.internal", "port": 5432, "dbname": "shop"}
    return str(sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])


def _props(sm: Any, user: str = "app_user", password: str = USER_PASSWORD, **overrides: str) -> dict[str, str]:
    props = {
        "MasterSecretArn": _secret(sm, "shop/dev/db-master", "shop_admin", MASTER_PASSWORD),
        "UserSecretArn": _secret(sm, "shop/dev/db-app", user, password),
        "Host": "db.abc.eu-west-1.rds.amazonaws.com",
        "Port": "5432",
        "Database": "shop",
    }
    return {**props, **overrides}


def _rotate(sm: Any, arn: str, username: str, password: str) -> None:
    """What the multi-user rotation leaves behind: AWSCURRENT names the other login."""
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"username": username, "password": password}))


def _event(request_type: str, props: dict[str, str], physical_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": FUNCTION_ARN,
        "ResponseURL": "https://cfn-response.example/presigned",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/shop-dev-data/guid",
        "RequestId": "req-1",
        "LogicalResourceId": "DatabaseUsers",
        "ResourceType": "Custom::DatabaseUser",
        "ResourceProperties": {"ServiceToken": FUNCTION_ARN, **props},
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return event


def _call(mod: ModuleType, sent: list[dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    before = len(sent)
    mod.handler(event, SimpleNamespace(invoked_function_arn=FUNCTION_ARN, log_stream_name="2024/01/01/[$LATEST]x"))
    assert len(sent) == before + 1, "handler must send exactly one response"
    return sent[-1]


def _passwords_set(db: FakeDatabase) -> dict[str, str]:
    """role -> the SQL literal of its new password, from the recorded ALTER ROLE ... PASSWORD statements."""
    found: dict[str, str] = {}
    for sql in db.sql():
        match = re.fullmatch(r'ALTER ROLE "(\w+)" WITH PASSWORD (.+)', sql)
        if match:
            assert match.group(1) not in found, "one password statement per role"
            found[match.group(1)] = match.group(2)
    return found


def _assert_verifier_of(mod: ModuleType, literal: str, password: str) -> None:
    """``literal`` is pg8000's quoting of PostgreSQL's SCRAM-SHA-256 verifier of ``password`` (checked by scramp)."""
    match = VERIFIER.fullmatch(literal[1:-1])
    assert match is not None and literal == mod._literal(match.group(0)), literal
    salt, stored_key, server_key = (base64.b64decode(part) for part in match.groups())
    mod._pg8000()
    scramp = importlib.import_module("scramp")
    expected = scramp.ScramMechanism("SCRAM-SHA-256").make_auth_info(password, iteration_count=4096, salt=salt)
    assert (len(salt), stored_key, server_key) == (16, expected[1], expected[2])


# --- create / update ---------------------------------------------------------------------------------------------


def test_fresh_database_creates_users_then_grants_in_one_transaction(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    props = _props(sm)
    body = _call(mod, sent, _event("Create", props))

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["Data"] == {"Username": "app_user"}
    assert body["PhysicalResourceId"] == "app_user"
    assert body["NoEcho"] is True
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/shop-dev-data/guid",
        "req-1",
        "DatabaseUsers",
    )
    assert db.connects == [
        {
            "host": "db.abc.eu-west-1.rds.amazonaws.com",
            "port": 5432,
            "database": "shop",
            "user": "shop_admin",
            "password": MASTER_PASSWORD,
        }
    ]
    statements = db.sql()
    password = _passwords_set(db)["app_user"]
    assert statements == [
        "START TRANSACTION",
        "SET LOCAL lock_timeout = '5s'",
        "SET LOCAL statement_timeout = '8s'",
        ROLE_SQL,
        'CREATE ROLE "app_user" WITH LOGIN',
        f'ALTER ROLE "app_user" WITH PASSWORD {password}',
        'CREATE ROLE "app_user_clone" WITH LOGIN IN ROLE "app_user"',
        "ALTER ROLE \"app_user_clone\" SET role = 'app_user'",
        'GRANT CONNECT, TEMPORARY ON DATABASE "shop" TO "app_user"',
        'GRANT USAGE, CREATE ON SCHEMA "public" TO "app_user"',
        mod.OWNED_RELATIONS_SQL,
        mod.OWNED_TYPES_SQL,
        mod.OWNED_ROUTINES_SQL,
        "COMMIT",
    ]
    # Names go in as bind parameters where PostgreSQL takes them.
    assert db.statements[3][1] == {"user": "app_user", "clone": "app_user_clone"}
    assert [params for _, params in db.statements[10:13]] == [{"schema": "public"}] * 3
    assert db.closed == 1
    assert db.roles == {"app_user", "app_user_clone"}
    _assert_verifier_of(mod, password, USER_PASSWORD)


def test_existing_users_only_get_the_awscurrent_password(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    db.roles = {"app_user", "app_user_clone"}
    body = _call(mod, sent, _event("Update", _props(sm), physical_id="app_user"))

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["PhysicalResourceId"] == "app_user"
    statements = db.sql()
    assert not [s for s in statements if s.startswith("CREATE ROLE")]
    assert list(_passwords_set(db)) == ["app_user"]
    assert statements[4:8] == [
        f'ALTER ROLE "app_user" WITH PASSWORD {_passwords_set(db)["app_user"]}',
        'GRANT "app_user" TO "app_user_clone"',
        "ALTER ROLE \"app_user_clone\" SET role = 'app_user'",
        'GRANT CONNECT, TEMPORARY ON DATABASE "shop" TO "app_user"',
    ]
    assert statements[-1] == "COMMIT"


def test_second_run_is_idempotent(mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase) -> None:
    props = _props(sm)
    first = _call(mod, sent, _event("Create", props))
    db.statements.clear()
    second = _call(mod, sent, _event("Update", props, physical_id=first["PhysicalResourceId"]))

    assert first["Status"] == second["Status"] == "SUCCESS"
    assert second["Data"] == first["Data"] == {"Username": "app_user"}
    assert not [s for s in db.sql() if s.startswith("CREATE ROLE")]
    assert db.roles == {"app_user", "app_user_clone"}


@pytest.mark.parametrize("roles", [(), ("app_user", "app_user_clone")])
def test_awscurrent_names_the_clone_base_password_untouched(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, roles: tuple[str, ...]
) -> None:
    db.roles = set(roles)
    props = _props(sm)
    _rotate(sm, props["UserSecretArn"], "app_user_clone", CLONE_PASSWORD)
    body = _call(mod, sent, _event("Update", props, physical_id="app_user"))

    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["Data"] == {"Username": "app_user"}
    passwords = _passwords_set(db)
    assert list(passwords) == ["app_user_clone"]
    _assert_verifier_of(mod, passwords["app_user_clone"], CLONE_PASSWORD)
    statements = db.sql()
    assert not [s for s in statements if s.startswith('ALTER ROLE "app_user" ')]
    clone_password = statements.index(f'ALTER ROLE "app_user_clone" WITH PASSWORD {passwords["app_user_clone"]}')
    assert statements[clone_password + 1] == "ALTER ROLE \"app_user_clone\" SET role = 'app_user'"
    if not roles:  # created without a password: the rotation sets it when it switches back
        assert 'CREATE ROLE "app_user" WITH LOGIN' in statements
        assert 'CREATE ROLE "app_user_clone" WITH LOGIN IN ROLE "app_user"' in statements


def test_ownership_of_master_relations_moves_to_the_user(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    db.relations = [
        ("orders", "r"),
        ("events", "p"),
        ("order totals", "v"),
        ("daily", "m"),
        ("remote", "f"),
        ('invoice"no', "S"),
    ]
    body = _call(mod, sent, _event("Create", _props(sm)))

    assert body["Status"] == "SUCCESS", body["Reason"]
    statements = db.sql()
    start = statements.index(mod.OWNED_ROUTINES_SQL)
    assert statements[start + 1 :] == [
        'GRANT "app_user" TO CURRENT_USER',
        'ALTER TABLE "public"."orders" OWNER TO "app_user"',
        'ALTER TABLE "public"."events" OWNER TO "app_user"',
        'ALTER VIEW "public"."order totals" OWNER TO "app_user"',
        'ALTER MATERIALIZED VIEW "public"."daily" OWNER TO "app_user"',
        'ALTER FOREIGN TABLE "public"."remote" OWNER TO "app_user"',
        'ALTER SEQUENCE "public"."invoice""no" OWNER TO "app_user"',
        "COMMIT",
    ]
    assert "6 relation(s) in schema public moved to app_user" in caplog.text


def test_ownership_query_selects_master_relations_and_skips_column_sequences(mod: ModuleType) -> None:
    query = " ".join(mod.OWNED_RELATIONS_SQL.split())
    assert "n.nspname = :schema" in query
    assert "c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)" in query
    assert "c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')" in query
    # serial / OWNED BY ('a') and identity ('i') sequences depend on their table: ALTER TABLE moves them.
    assert "NOT (c.relkind = 'S' AND EXISTS ( SELECT 1 FROM pg_catalog.pg_depend d" in query
    assert "d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')" in query
    assert set(mod.RELATION_COMMANDS) == {"r", "p", "v", "m", "f", "S"}


def test_types_and_routines_of_the_master_move_to_the_user(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    db.relations = [("orders", "r")]
    db.types = [("pair", "c"), ('odd"name', "d"), ("positive_int", "d"), ("mood", "e")]
    # regprocedure text as the server writes it: quoted where needed, input argument types only.
    db.routines = [
        ("row_count()", "a"),
        ("my_sum(integer)", "a"),
        ('"Add One"(integer)', "f"),
        ("tag(text,integer[])", "f"),
        ("my_rank()", "w"),
        ("refresh_totals(integer,text)", "p"),
    ]
    body = _call(mod, sent, _event("Create", _props(sm)))

    assert body["Status"] == "SUCCESS", body["Reason"]
    statements = db.sql()
    start = statements.index(mod.OWNED_ROUTINES_SQL)
    assert statements[start - 2 : start] == [mod.OWNED_RELATIONS_SQL, mod.OWNED_TYPES_SQL]
    assert statements[start + 1 :] == [
        'GRANT "app_user" TO CURRENT_USER',
        'ALTER TABLE "public"."orders" OWNER TO "app_user"',
        'ALTER TYPE "public"."pair" OWNER TO "app_user"',
        'ALTER DOMAIN "public"."odd""name" OWNER TO "app_user"',
        'ALTER DOMAIN "public"."positive_int" OWNER TO "app_user"',
        'ALTER TYPE "public"."mood" OWNER TO "app_user"',
        'ALTER AGGREGATE row_count(*) OWNER TO "app_user"',  # ALTER AGGREGATE takes (*), not ()
        'ALTER AGGREGATE my_sum(integer) OWNER TO "app_user"',
        'ALTER FUNCTION "Add One"(integer) OWNER TO "app_user"',
        'ALTER FUNCTION tag(text,integer[]) OWNER TO "app_user"',
        'ALTER FUNCTION my_rank() OWNER TO "app_user"',  # a window function is a FUNCTION
        'ALTER PROCEDURE refresh_totals(integer,text) OWNER TO "app_user"',
        "COMMIT",
    ]
    assert statements.count('GRANT "app_user" TO CURRENT_USER') == 1
    assert "1 relation(s) in schema public moved to app_user: table orders" in caplog.text
    assert '4 type(s) in schema public moved to app_user: type pair, domain odd"name' in caplog.text
    assert "6 routine(s) in schema public moved to app_user: aggregate row_count()" in caplog.text


def test_types_only_still_grant_the_membership_first(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    db.types = [("mood", "e")]
    body = _call(mod, sent, _event("Create", _props(sm)))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert db.sql()[-3:] == [
        'GRANT "app_user" TO CURRENT_USER',
        'ALTER TYPE "public"."mood" OWNER TO "app_user"',
        "COMMIT",
    ]


def test_type_query_selects_enums_domains_and_standalone_composites_only(mod: ModuleType) -> None:
    query = " ".join(mod.OWNED_TYPES_SQL.split())
    assert "n.nspname = :schema" in query
    assert "t.typowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)" in query
    # Table/view row types are 'c' too, but their pg_class row is not relkind 'c': they follow their relation.
    assert (
        "(t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND EXISTS ( "
        "SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))"
    ) in query
    # Implicit array types ('_mood': the typarray of mood) follow their element type.
    assert "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)" in query
    # Extension members stay with the extension (recorded on the type, or on a composite's pg_class row).
    assert "d.deptype = 'e'" in query
    assert "(d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid)" in query
    assert "(d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = t.typrelid)" in query
    assert mod.TYPE_COMMANDS == {"e": "TYPE", "d": "DOMAIN", "c": "TYPE"}


def test_routine_query_selects_master_routines_outside_extensions(mod: ModuleType) -> None:
    query = " ".join(mod.OWNED_ROUTINES_SQL.split())
    assert query.startswith("SELECT p.oid::pg_catalog.regprocedure::text, p.prokind FROM pg_catalog.pg_proc p")
    assert "n.nspname = :schema" in query
    assert "p.proowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)" in query
    assert (
        "NOT EXISTS ( SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass "
        "AND d.objid = p.oid AND d.deptype = 'e')"
    ) in query
    assert mod.ROUTINE_COMMANDS == {"f": "FUNCTION", "w": "FUNCTION", "p": "PROCEDURE", "a": "AGGREGATE"}


def test_nothing_to_move_runs_nothing(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = _call(mod, sent, _event("Create", _props(sm)))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert not [s for s in db.sql() if "CURRENT_USER" in s or " OWNER TO " in s]
    assert db.sql()[-4:] == [mod.OWNED_RELATIONS_SQL, mod.OWNED_TYPES_SQL, mod.OWNED_ROUTINES_SQL, "COMMIT"]
    assert "nothing in schema public owned by the master user" in caplog.text


def _server_error(code: str, message: str) -> Exception:
    """What pg8000 raises for a server error: a DatabaseError carrying the server's fields."""
    errors = importlib.import_module("pg8000.exceptions")
    return errors.DatabaseError({"S": "ERROR", "V": "ERROR", "C": code, "M": message})  # type: ignore[no-any-return]


def test_lock_timeout_during_the_hand_over_says_to_retry(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    mod._pg8000()
    db.relations = [("orders", "r")]
    db.routines = [("total(integer)", "f")]
    db.fail_on = "ALTER FUNCTION total(integer)"
    db.error = lambda sql: _server_error("55P03", "canceling statement due to lock timeout")
    body = _call(mod, sent, _event("Create", _props(sm)))

    assert body["Status"] == "FAILED"
    assert body["Reason"] == (
        "[database-user-contract] ownership hand-over to app_user hit lock_timeout on function total(integer): it "
        "waits for locks held by the running app; nothing was changed (one transaction) and the deploy can simply "
        "be retried"
    )
    statements = db.sql()
    assert statements[-1] == "ROLLBACK" and "COMMIT" not in statements
    assert db.roles == set()


def test_other_server_errors_during_the_hand_over_are_reported_as_they_are(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    mod._pg8000()
    db.types = [("mood", "e")]
    db.fail_on = "ALTER TYPE"
    db.error = lambda sql: _server_error("42501", "must be able to SET ROLE")
    body = _call(mod, sent, _event("Create", _props(sm)))
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "DatabaseError: 42501 must be able to SET ROLE"
    assert db.sql()[-1] == "ROLLBACK"


# --- quoting -----------------------------------------------------------------------------------------------------


def test_identifiers_and_literals_use_pg8000_quoting(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    native = mod._pg8000()
    assert mod._literal("it's") == "'it''s'" == native.literal("it's")
    assert mod._literal(USER_PASSWORD) == "'it''s a \"pass\\word\" 0123456789'"
    assert mod._ident('sh"op') == '"sh""op"' == native.identifier('sh"op')

    body = _call(mod, sent, _event("Create", _props(sm, Database='sh"op; DROP')))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert 'GRANT CONNECT, TEMPORARY ON DATABASE "sh""op; DROP" TO "app_user"' in db.sql()
    assert db.connects[0]["database"] == 'sh"op; DROP'


def test_password_with_quotes_reaches_sql_only_as_a_quoted_verifier(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    body = _call(mod, sent, _event("Create", _props(sm)))
    assert body["Status"] == "SUCCESS", body["Reason"]
    literal = _passwords_set(db)["app_user"]
    assert literal.startswith("'SCRAM-SHA-256$4096:") and literal.endswith("'") and literal.count("'") == 2
    _assert_verifier_of(mod, literal, USER_PASSWORD)
    recorded = json.dumps(db.statements)
    for secret in (USER_PASSWORD, MASTER_PASSWORD, "it's", "it''s"):
        assert secret not in recorded


@pytest.mark.parametrize("password", ["caf\u00e9-0123456789", "tab\there-0123456789", "nul\x00-0123456789"])
def test_non_printable_ascii_password_is_refused(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, password: str
) -> None:
    body = _call(mod, sent, _event("Create", _props(sm, password=password)))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[database-user-contract] the password must be printable ASCII")
    assert db.connects == []
    assert json.dumps(password)[1:-1] not in body["_raw"]


# --- refusals ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username",
    ["App", "1app", "app-user", "a" * 58, "a" * 58 + "_clone", "pg_app", "public", "none", "app user", "_clone"],
)
def test_bad_username_fails_before_connecting(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, username: str
) -> None:
    body = _call(mod, sent, _event("Create", _props(sm, user=username)))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[database-user-contract] ")
    assert body["Data"] == {}
    assert body["PhysicalResourceId"] == "req-1"
    assert db.connects == []


def test_longest_valid_username_is_accepted(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    name = "a" * 57
    body = _call(mod, sent, _event("Create", _props(sm, user=name + "_clone")))
    assert body["Status"] == "SUCCESS", body["Reason"]
    assert body["Data"] == {"Username": name}
    assert f'CREATE ROLE "{name}_clone" WITH LOGIN IN ROLE "{name}"' in db.sql()


@pytest.mark.parametrize("username", ["shop_admin", "shop_admin_clone"])
def test_app_user_must_not_be_the_master(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, username: str
) -> None:
    body = _call(mod, sent, _event("Create", _props(sm, user=username)))
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "[database-user-contract] the app user 'shop_admin' must not be the master user"
    assert db.connects == []


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("Host", "", "property Host is required"),
        ("Database", " ", "property Database is required"),
        ("Port", "abc", "Port must be an integer between 1 and 65535"),
        ("Port", "70000", "Port must be an integer between 1 and 65535"),
        ("MasterSecretArn", "", "property MasterSecretArn is required"),
    ],
)
def test_contract_violations_fail(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, key: str, value: str, message: str
) -> None:
    body = _call(mod, sent, _event("Create", _props(sm, **{key: value})))
    assert body["Status"] == "FAILED"
    assert body["Reason"] == f"[database-user-contract] {message}"
    assert db.connects == []


@pytest.mark.parametrize(
    "secret",
    ["not json", json.dumps(["a"]), json.dumps({"username": "app_user"}), json.dumps({"password": "pw-0123456789"})],
)
def test_malformed_user_secret_fails(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, secret: str
) -> None:
    props = _props(sm)
    sm.put_secret_value(SecretId=props["UserSecretArn"], SecretString=secret)
    body = _call(mod, sent, _event("Create", props))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("[database-user-contract] the user secret ")
    assert "pw-0123456789" not in body["_raw"]
    assert db.connects == []


def test_missing_secret_fails_with_one_line_reason(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:does-not-exist-AbCdEf"
    body = _call(mod, sent, _event("Create", _props(sm, MasterSecretArn=arn)))
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("ResourceNotFoundException: ")
    assert "\n" not in body["Reason"]


def test_unknown_request_type_fails(mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase) -> None:
    body = _call(mod, sent, _event("Replace", _props(sm)))
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "[database-user-contract] unknown RequestType"
    assert db.connects == []


# --- failures inside the transaction, delete, secrets never shown ------------------------------------------------


def test_server_error_rolls_back_and_is_reported_without_secrets(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db.fail_on = "WITH PASSWORD"
    # A server error that quotes the statement back: every value in it must be scrubbed.
    message = f"permission denied near {USER_PASSWORD} {MASTER_PASSWORD}"
    db.error = lambda sql: RuntimeError({"S": "ERROR", "C": "42501", "M": message})
    body = _call(mod, sent, _event("Create", _props(sm)))

    assert body["Status"] == "FAILED"
    assert body["Reason"] == "RuntimeError: 42501 permission denied near *** ***"
    statements = db.sql()
    assert statements[-1] == "ROLLBACK" and "COMMIT" not in statements
    assert db.closed == 1
    assert db.roles == set()
    for secret in (USER_PASSWORD, MASTER_PASSWORD):
        assert secret not in body["_raw"] and secret not in caplog.text


def test_error_quoting_the_verifier_is_scrubbed(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase
) -> None:
    db.fail_on = "WITH PASSWORD"
    db.error = lambda sql: ValueError(f"bad statement:\n{sql}")
    body = _call(mod, sent, _event("Create", _props(sm)))
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "ValueError: bad statement: ALTER ROLE \"app_user\" WITH PASSWORD '***'"
    assert "SCRAM-SHA-256" not in body["_raw"]


def test_connection_failure_fails_cleanly(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(host: str, port: int, database: str, user: str, password: str) -> None:
        raise ConnectionRefusedError(f"cannot reach {host}:{port} as {user}/{password}")

    monkeypatch.setattr(mod, "_connect", refuse)
    body = _call(mod, sent, _event("Create", _props(sm)))
    assert body["Status"] == "FAILED"
    assert (
        body["Reason"]
        == "ConnectionRefusedError: cannot reach db.abc.eu-west-1.rds.amazonaws.com:5432 as shop_admin/***"
    )


def test_delete_does_nothing_and_succeeds(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = _call(mod, sent, _event("Delete", _props(sm), physical_id="app_user"))
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "app_user"
    assert body["Data"] == {}
    assert db.connects == []
    assert "kept with the data" in caplog.text


def test_delete_after_failed_create_succeeds(mod: ModuleType, sent: list[dict[str, Any]], db: FakeDatabase) -> None:
    body = _call(mod, sent, _event("Delete", {"Port": "nonsense"}, physical_id="req-0"))
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "req-0"


def test_no_password_in_any_response_reason_or_log(
    mod: ModuleType, sent: list[dict[str, Any]], sm: Any, db: FakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    props = _props(sm)
    _call(mod, sent, _event("Create", props))
    _rotate(sm, props["UserSecretArn"], "app_user_clone", CLONE_PASSWORD)
    _call(mod, sent, _event("Update", props, physical_id="app_user"))
    db.fail_on = "GRANT CONNECT"
    _call(mod, sent, _event("Update", props, physical_id="app_user"))
    _call(mod, sent, _event("Delete", props, physical_id="app_user"))

    assert [body["Status"] for body in sent] == ["SUCCESS", "SUCCESS", "FAILED", "SUCCESS"]
    verifiers = [literal[1:-1] for literal in re.findall(r"PASSWORD ('[^']*')", json.dumps(db.sql()))]
    assert len(verifiers) == 3
    shown = caplog.text + "".join(body["_raw"] for body in sent)
    for secret in (USER_PASSWORD, CLONE_PASSWORD, MASTER_PASSWORD, *verifiers):
        assert secret not in shown
        assert json.dumps(secret)[1:-1] not in shown
    assert "role app_user: password set from AWSCURRENT" in caplog.text
    assert "role app_user_clone: password set from AWSCURRENT" in caplog.text


# --- the real connection ------------------------------------------------------------------------------------------


def test_connect_requires_tls_without_verification_and_times_out(
    mod: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    fake = ModuleType("pg8000.native")

    def connection(*args: Any, **kwargs: Any) -> str:
        calls.append((args, kwargs))
        return "connection"

    fake.Connection = connection  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pg8000.native", fake)

    assert mod._connect("db.internal", 5432, "shop", "shop_admin", MASTER_PASSWORD) == "connection"

    [(args, kwargs)] = calls
    context = kwargs.pop("ssl_context")
    assert args == ("shop_admin",)
    assert kwargs == {
        "host": "db.internal",
        "port": 5432,
        "database": "shop",
        "password": MASTER_PASSWORD,
        "timeout": 10,
        "application_name": "database-user-bootstrap",
    }
    # An SSLContext (not None/True): pg8000 then refuses a server that does not speak TLS.
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_the_asset_carries_the_pinned_driver_and_no_bytecode() -> None:
    """The synth copies pg8000 and its imports (requirements.txt) next to the handler (constructs/database_users.py)."""
    from tests.conftest import synthesized

    s = synthesized("dev")
    assets = [p for p in Path(s.assembly.directory).glob("asset.*") if (p / "pg8000").is_dir()]
    assert len(assets) == 1
    (asset,) = assets
    assert {p.name for p in asset.iterdir()} == {"index.py", "pg8000", "scramp", "asn1crypto", "dateutil", "six.py"}
    assert not [p for p in asset.rglob("*") if p.suffix == ".pyc" or p.name == "__pycache__"]
    requirements = (Path(__file__).parents[2] / "requirements.txt").read_text()
    pins = dict(re.findall(r"^([a-z0-9-]+)==(\S+)$", requirements, re.M))
    assert (pins["pg8000"], pins["scramp"], pins["asn1crypto"]) == ("1.31.6", "1.5.0", "1.5.1")
