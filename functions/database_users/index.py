"""CloudFormation custom resource ``Custom::DatabaseUser``: the app's two PostgreSQL logins, before any rotation.

AWS's hosted *multi-user* rotation alternates the app secret between ``<user>`` and ``<user>_clone``; it needs
``<user>`` to exist, and objects created while the clone is current must still be owned by ``<user>``. This
Lambda (ServiceToken = function ARN, no cdk Provider framework) creates both, connected as the master user, and
PUTs the response JSON to the pre-signed ``ResponseURL`` itself.

ResourceProperties (strings): ``MasterSecretArn`` and ``UserSecretArn`` (JSON with ``username``/``password``; the
user secret is read at AWSCURRENT), ``Host``, ``Port``, ``Database``. Create/Update, idempotent, in one
transaction: ``<user>`` (LOGIN) and ``<user>_clone`` (LOGIN, member of ``<user>``, ``SET role = '<user>'``) are
created if missing; only the login AWSCURRENT names gets its password (the other one belongs to the rotation);
``<user>`` gets CONNECT/TEMPORARY on the database, USAGE/CREATE on schema ``public`` and the ownership of what
the master user owns there (migrations ran as the master before the switch; after it they run as ``<user>``, and
ALTERing those objects would fail with "must be owner"): relations, enum/domain/stand-alone composite types and
functions/procedures/aggregates. Types and routines that belong to an extension stay with it; table row types,
implicit array types and column sequences follow the object they belong to. ``ALTER ... OWNER`` waits for the
locks the running app holds (``lock_timeout``): a timeout fails the deploy, which can simply be retried. Data:
``Username`` (the base user name). Delete does nothing: the users stay with the data. Passwords never appear in
the response, in a Reason or in the logs, and never reach the server in clear text either (see
``_scram_verifier``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import logging
import re
import secrets
import ssl
import urllib.parse
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

LOG = logging.getLogger("database_users")
LOG.setLevel(logging.INFO)
# botocore logs request/response bodies (secret values) at DEBUG: keep it quiet whatever the Lambda log level.
logging.getLogger("botocore").setLevel(logging.WARNING)

CODE = "database-user-contract"
# pg8000 and its dependencies, installed by `make setup` from requirements.txt (the runtime has no driver).
CLONE_SUFFIX = "_clone"
# At most 57 characters, so that <user>_clone fits PostgreSQL's 63-byte identifiers.
USER_NAME = re.compile(r"[a-z_][a-z0-9_]{0,56}")
# Names PostgreSQL refuses for a role (pg_ is reserved for the system roles).
RESERVED_NAMES = frozenset({"public", "none", "current_user", "current_role", "session_user"})
SCHEMA = "public"
CONNECT_TIMEOUT_S = 10
# Server-side limits below the socket timeout, so a blocked ALTER ... OWNER (it waits for the app's locks)
# fails with a server error (lock_timeout: reported as retryable, see _hand_over) instead of a dropped connection.
SESSION_SETTINGS = ("SET LOCAL lock_timeout = '5s'", "SET LOCAL statement_timeout = '8s'")
SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
# relkind -> the ALTER command for it. Indexes and the sequences of a table's columns follow their table.
RELATION_COMMANDS = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "f": "FOREIGN TABLE",
    "S": "SEQUENCE",
}
# Relations in the schema owned by the connected (master) user. A sequence linked to a table column (serial:
# dependency 'a', identity: 'i') is left out: ALTER SEQUENCE ... OWNER fails for it, and ALTER TABLE moves it.
OWNED_RELATIONS_SQL = """
SELECT c.relname, c.relkind
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema
  AND c.relowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND NOT (c.relkind = 'S' AND EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')))
ORDER BY c.relkind, c.relname
""".strip()
# Types in the schema owned by the master user: enums ('e'), domains ('d') and stand-alone composite types ('c'
# whose pg_class row has relkind 'c'; a table's row type follows its table). Implicit array types ('_name', the
# typarray of another type) follow their element type, and so do the other typtypes (base, pseudo, range and
# multirange are not handed over). Extension members are left out, whether pg_depend records the extension on the
# type or, for a composite type, on its pg_class row.
OWNED_TYPES_SQL = """
SELECT t.typname, t.typtype
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = :schema
  AND t.typowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
  AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND EXISTS (
    SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.deptype = 'e' AND (
      (d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid)
      OR (d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = t.typrelid)))
ORDER BY t.typtype, t.typname
""".strip()
# typtype -> the ALTER command for it.
TYPE_COMMANDS = {"e": "TYPE", "d": "DOMAIN", "c": "TYPE"}
# Routines in the schema owned by the master user, named by their regprocedure text (name and input argument
# types, quoted and schema-qualified by the server as this session needs them to resolve). Extension members are
# left out.
OWNED_ROUTINES_SQL = """
SELECT p.oid::pg_catalog.regprocedure::text, p.prokind
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = :schema
  AND p.proowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
  AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY p.prokind, 1
""".strip()
# prokind -> the ALTER command for it: a window function ('w') is ALTERed as a FUNCTION.
ROUTINE_COMMANDS = {"f": "FUNCTION", "w": "FUNCTION", "p": "PROCEDURE", "a": "AGGREGATE"}
# PostgreSQL's SQLSTATE for a lock_timeout (lock_not_available).
LOCK_NOT_AVAILABLE = "55P03"
EXISTING_ROLES_SQL = "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname IN (:user, :clone)"
_BOTO_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"})


class ContractError(Exception):
    """A request that violates the property contract, or a known runtime condition (a lock timeout) reported
    the same way; ``str()`` starts with ``[<catalogue id>]``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"[{code}] {message}")


class Credentials:
    """A username and its password (a plain class: the test loader runs this file outside sys.modules)."""

    __slots__ = ("password", "username")

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def __repr__(self) -> str:  # never the password, whatever prints it
        return f"Credentials(username={self.username!r}, password=***)"


def _clients() -> Any:
    """Return the Secrets Manager client; tests may monkeypatch this."""
    return boto3.client("secretsmanager", config=_BOTO_CONFIG)


def _send(url: str, body: bytes) -> None:
    """PUT the response document to the pre-signed S3 URL; tests monkeypatch this."""
    # The URL is the https pre-signed S3 URL from CloudFormation; an empty Content-Type is required.
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        LOG.info("response sent, HTTP %s", response.status)


def _pg8000() -> Any:
    """``pg8000.native``, imported at first use (the asset carries the driver next to this file: the synth copies
    the pinned pg8000 and its dependencies from the project's environment, constructs/database_users.py)."""
    return importlib.import_module("pg8000.native")


def _ssl_context() -> ssl.SSLContext:
    """TLS required (the server enforces rds.force_ssl=1), certificate not verified.

    The RDS CA bundle is in no system trust store and cannot be fetched at synth (offline) or at run time (the
    function has no internet), so verification would fail. The traffic stays inside the VPC, from this function's
    security group to the database's; AWS's hosted rotation functions connect the same way unless given a CA.
    Encryption is what this buys; server identity rests on the VPC and the security groups.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _connect(host: str, port: int, database: str, user: str, password: str) -> Any:
    """A ``pg8000.native.Connection`` over TLS; tests monkeypatch this with a fake."""
    native = _pg8000()
    return native.Connection(
        user,
        host=host,
        port=port,
        database=database,
        password=password,
        ssl_context=_ssl_context(),
        timeout=CONNECT_TIMEOUT_S,
        application_name="database-user-bootstrap",
    )


def _ident(name: str) -> str:
    """A double-quoted SQL identifier (pg8000's quoting)."""
    return str(_pg8000().identifier(name))


def _literal(value: str) -> str:
    """A single-quoted SQL string literal (pg8000's quoting)."""
    return str(_pg8000().literal(value))


def _required(props: dict[str, Any], key: str) -> str:
    value = str(props.get(key) or "").strip()
    if not value:
        raise ContractError(CODE, f"property {key} is required")
    return value


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ContractError(CODE, "Port must be an integer between 1 and 65535")
    return int(value)


def _credentials(sm: Any, secret_arn: str, label: str, sensitive: list[str]) -> Credentials:
    secret = sm.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT").get("SecretString")
    if not isinstance(secret, str) or not secret:
        raise ContractError(CODE, f"the {label} secret has no SecretString")
    sensitive.append(secret)
    try:
        data: Any = json.loads(secret)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise ContractError(CODE, f"the {label} secret is not a JSON object")
    username, password = data.get("username"), data.get("password")
    if isinstance(password, str) and password:
        sensitive.append(password)
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise ContractError(CODE, f"the {label} secret needs a non-empty username and password")
    return Credentials(username, password)


def _base_name(username: str, master: str) -> str:
    """``<user>`` from AWSCURRENT's username (``<user>`` or ``<user>_clone``), checked."""
    base = username.removesuffix(CLONE_SUFFIX)
    if not USER_NAME.fullmatch(base) or base.startswith("pg_") or base in RESERVED_NAMES:
        raise ContractError(
            CODE,
            f"user name {base[:80]!r} must match [a-z_][a-z0-9_]{{0,56}} (57 characters at most, so "
            "<user>_clone fits in 63) and be neither reserved nor pg_*",
        )
    if master in (base, base + CLONE_SUFFIX):
        raise ContractError(CODE, f"the app user {base!r} must not be the master user")
    return base


def _check_password(password: str) -> None:
    if not all(" " <= char <= "~" for char in password):
        raise ContractError(CODE, "the password must be printable ASCII (as Secrets Manager generates them)")


def _scram_verifier(password: str) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of ``password``, computed here, as psql's \\password does.

    ``ALTER ROLE ... PASSWORD`` takes no bind parameter, and PostgreSQL writes a statement's text to its log on
    an error or a slow statement (log_min_duration_statement is set, and the logs are exported): a verifier
    there reveals nothing usable, a clear-text password would. Printable ASCII only, where SASLprep is the
    identity (Secrets Manager generates such passwords), so the server's check of a login matches this hash.
    """
    _check_password(password)
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, SCRAM_ITERATIONS)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = [base64.b64encode(part).decode("ascii") for part in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64[0]}${b64[1]}:{b64[2]}"


def _set_password(conn: Any, role: str, password: str, sensitive: list[str]) -> None:
    verifier = _scram_verifier(password)
    sensitive.append(verifier)
    conn.run(f"ALTER ROLE {_ident(role)} WITH PASSWORD {_literal(verifier)}")
    LOG.info("role %s: password set from AWSCURRENT", role)


def _apply(conn: Any, base: str, current: Credentials, database: str, sensitive: list[str]) -> None:
    """The whole bootstrap, in the caller's transaction."""
    clone = base + CLONE_SUFFIX
    user_q, clone_q = _ident(base), _ident(clone)
    for statement in SESSION_SETTINGS:
        conn.run(statement)
    existing = {str(row[0]) for row in conn.run(EXISTING_ROLES_SQL, user=base, clone=clone) or []}

    if base in existing:
        LOG.info("role %s: exists", base)
    else:
        conn.run(f"CREATE ROLE {user_q} WITH LOGIN")
        LOG.info("role %s: created", base)
    if current.username == base:
        _set_password(conn, base, current.password, sensitive)

    if clone in existing:
        # The rotation creates it the same way; a clone that lost the membership could not SET role at login.
        conn.run(f"GRANT {user_q} TO {clone_q}")
        LOG.info("role %s: exists (membership in %s ensured)", clone, base)
    else:
        conn.run(f"CREATE ROLE {clone_q} WITH LOGIN IN ROLE {user_q}")
        LOG.info("role %s: created as a member of %s", clone, base)
    if current.username == clone:
        _set_password(conn, clone, current.password, sensitive)
    # Every session of the clone runs as <user>: what it creates is owned by <user>.
    conn.run(f"ALTER ROLE {clone_q} SET role = {_literal(base)}")

    conn.run(f"GRANT CONNECT, TEMPORARY ON DATABASE {_ident(database)} TO {user_q}")
    conn.run(f"GRANT USAGE, CREATE ON SCHEMA {_ident(SCHEMA)} TO {user_q}")

    _hand_over(conn, base, user_q)


def _owned(conn: Any, sql: str) -> list[tuple[str, str]]:
    return [(str(row[0]), str(row[1])) for row in conn.run(sql, schema=SCHEMA) or []]


def _routine(signature: str, kind: str) -> str:
    """``signature`` (regprocedure text) as ALTER takes it: a zero-argument aggregate is written ``name(*)``."""
    return signature[:-2] + "(*)" if kind == "a" and signature.endswith("()") else signature


def _hand_over(conn: Any, base: str, user_q: str) -> None:
    """What the master user created in the schema (migrations before the switch) becomes ``<user>``'s, so that
    migrations running as ``<user>`` can ALTER it."""
    schema_q = _ident(SCHEMA)
    relations = _owned(conn, OWNED_RELATIONS_SQL)
    types = _owned(conn, OWNED_TYPES_SQL)
    routines = _owned(conn, OWNED_ROUTINES_SQL)
    moves = [
        *((RELATION_COMMANDS[kind], f"{schema_q}.{_ident(name)}") for name, kind in relations),
        *((TYPE_COMMANDS[kind], f"{schema_q}.{_ident(name)}") for name, kind in types),
        *((ROUTINE_COMMANDS[kind], _routine(signature, kind)) for signature, kind in routines),
    ]
    if not moves:
        LOG.info("nothing in schema %s owned by the master user", SCHEMA)
        return
    # ALTER ... OWNER TO <user> needs the master to be able to SET ROLE <user> (it has ADMIN, not SET).
    conn.run(f"GRANT {user_q} TO CURRENT_USER")
    for command, target in moves:
        try:
            conn.run(f"ALTER {command} {target} OWNER TO {user_q}")
        except Exception as error:
            if _sqlstate(error) != LOCK_NOT_AVAILABLE:
                raise
            raise ContractError(
                CODE,
                f"ownership hand-over to {base} hit lock_timeout on {command.lower()} {target}: it waits for locks "
                "held by the running app; nothing was changed (one transaction) and the deploy can simply be retried",
            ) from None
    for label, moved, commands in (
        ("relation", relations, RELATION_COMMANDS),
        ("type", types, TYPE_COMMANDS),
        ("routine", routines, ROUTINE_COMMANDS),
    ):
        if moved:
            shown = ", ".join(f"{commands[kind].lower()} {name}" for name, kind in moved[:50])
            more = f" and {len(moved) - 50} more" if len(moved) > 50 else ""
            LOG.info("%d %s(s) in schema %s moved to %s: %s%s", len(moved), label, SCHEMA, base, shown, more)


def _sqlstate(error: Exception) -> str:
    """The SQLSTATE of a pg8000 server error (its first argument is the server's fields), else ``""``."""
    detail = error.args[0] if error.args else None
    return str(detail.get("C", "")) if isinstance(detail, dict) else ""


def _bootstrap(props: dict[str, Any], sensitive: list[str]) -> str:
    """Create or refresh the users; return the base user name."""
    host, port = _required(props, "Host"), _port(_required(props, "Port"))
    database = _required(props, "Database")
    master_arn, user_arn = _required(props, "MasterSecretArn"), _required(props, "UserSecretArn")
    sm = _clients()
    master = _credentials(sm, master_arn, "master", sensitive)
    current = _credentials(sm, user_arn, "user", sensitive)
    base = _base_name(current.username, master.username)
    _check_password(current.password)
    LOG.info(
        "AWSCURRENT names %s; bootstrapping %s and %s%s in %s", current.username, base, base, CLONE_SUFFIX, database
    )
    conn = _connect(host, port, database, master.username, master.password)
    try:
        conn.run("START TRANSACTION")
        try:
            _apply(conn, base, current, database, sensitive)
            conn.run("COMMIT")
        except Exception:
            try:
                conn.run("ROLLBACK")
            except Exception as rollback_error:  # the first error is the one to report
                LOG.warning("rollback failed: %s", type(rollback_error).__name__)
            raise
    finally:
        try:
            conn.close()
        except Exception as close_error:
            LOG.warning("close failed: %s", type(close_error).__name__)
    return base


def _reason(exc: Exception, sensitive: list[str]) -> str:
    if isinstance(exc, ContractError):
        text = str(exc)
    else:
        detail = exc.args[0] if exc.args else None
        if isinstance(detail, dict) and "M" in detail:  # a pg8000 server error: SQLSTATE and message
            text = f"{type(exc).__name__}: {detail.get('C', '')} {detail['M']}"
        else:
            text = f"{type(exc).__name__}: {exc}"
    # Defence in depth: no message should carry a value, but scrub any that does (short ones would garble it).
    for value in sorted({s for s in sensitive if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(value, "***").replace(urllib.parse.quote(value, safe=""), "***")
    return " ".join(text.split())[:500]


def handler(event: dict[str, Any], context: Any) -> None:
    """Entry point: always PUTs exactly one response to ``event["ResponseURL"]``."""
    request_type = str(event.get("RequestType", ""))
    props: dict[str, Any] = dict(event.get("ResourceProperties") or {})
    physical_id = str(event.get("PhysicalResourceId") or event.get("RequestId") or "unknown")
    LOG.info("%s %s (database %s)", request_type, event.get("LogicalResourceId"), props.get("Database"))
    status, reason = "SUCCESS", ""
    data: dict[str, str] = {}
    sensitive: list[str] = []
    try:
        if request_type in ("Create", "Update"):
            physical_id = _bootstrap(props, sensitive)
            data = {"Username": physical_id}
        elif request_type == "Delete":
            LOG.info("Delete: the database users are kept with the data; nothing to do")
        else:
            raise ContractError(CODE, "unknown RequestType")
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
