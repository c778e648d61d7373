"""The kinds of Parameter Store value a setting can be: one list read by the schema, the refusal printer, the
constructs, doctor and the review (the deploy's Lambda handler keeps its own copy; a test holds them equal)."""

from __future__ import annotations

# ``{secret: <kind>}``: generated once, provided by the team, or composed from the database / Redis credentials.
SECRET_KINDS = ("generated", "provided", "database_url", "redis_url", "database_password", "redis_token")
# ``{from: <part>}``: one part of the connection, a String parameter.
FROM_KINDS = ("database_host", "database_port", "database_name", "database_user", "redis_host", "redis_port")
# Composed from a credential secret (rewritten when it rotates); the rest of the parts come from the endpoint.
FROM_CREDENTIALS = frozenset({"database_url", "database_password", "database_user", "redis_url", "redis_token"})


def parameter_family(kind: str) -> str:
    """generated / provided / composed (a URL) / part (one piece of the connection): the review's column."""
    if kind in ("generated", "provided"):
        return kind
    return "composed" if kind.endswith("_url") else "part"


def store_of(kind: str) -> str:
    """``database`` or ``cache`` for the kinds made from one of them, else ``""``."""
    return "database" if kind.startswith("database_") else "cache" if kind.startswith("redis_") else ""
