"""A fix for every kind of schema error: what pydantic found, said as what to write instead.

``describe(error item, location)`` -> (catalogue id or ``config``, fix). Keys and values people paste from guides
that the schema refuses on purpose get the catalogue id of the mistake they would cause and the safe alternative.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel

from config.kinds import FROM_KINDS, SECRET_KINDS

# Keys that are refused on purpose: (parent path, key) -> (id, fix).
REFUSED_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("eks", "app_permissions"): (
        "iam-app-permissions",
        "moved: write permissions: [{actions: [cloudwatch:GetMetricData], resources: ['*']}] at the top level "
        "(the web service, on every target) or under services.<name>",
    ),
    ("database", "publicly_accessible"): (
        "rds-public-access",
        "the database is never public; remove the key and reach it from inside the VPC (Session Manager "
        "port forwarding), not through the internet",
    ),
    ("cache", "publicly_accessible"): ("rds-public-access", "the cache is never public; remove the key"),
    ("database", "port"): ("sg-compute-to-rds", "the port comes from the database itself; remove the key"),
    ("eb", "health_check_url"): (
        "eb-healthcheckurl-invalid",
        "the health check path comes from health.liveness_path; remove the key",
    ),
    ("load_balancer", "health_check_path"): (
        "alb-health-check-path",
        "the health check path comes from health.liveness_path; remove the key",
    ),
    ("ecs", "assign_public_ip"): (
        "private-egress-for-pulls",
        "tasks stay in private subnets and pull through NAT or VPC endpoints; remove the key",
    ),
    ("ecs", "migration_command"): (
        "migrations-not-run",
        "moved: write migrate: {command: [alembic, upgrade, head]} at the top level; it now runs as a deploy step "
        "before the new version serves, on every target",
    ),
    ("", "ssh_key_name"): ("ssh-bastion", "no SSH: operators use Session Manager; remove the key"),
    ("eb", "ssh_key_name"): ("ssh-bastion", "no SSH: operators use Session Manager; remove the key"),
}

# Values refused by a Literal: path -> (id, why + what to write).
LITERAL_FIXES: dict[str, tuple[str, str]] = {
    "database.url_scheme": (
        "database-url-format",
        "SQLAlchemy 1.4+ refuses 'postgres://'; use postgresql+asyncpg (asyncpg), postgresql+psycopg (psycopg 3) "
        "or postgresql (psycopg2 / libpq)",
    ),
    "eks.identity": ("pod-identity-on-fargate", "use irsa: EKS Pod Identity does not work for Fargate pods"),
}

# Required sections whose absence has a catalogue id.
MISSING_FIXES: dict[str, tuple[str, str]] = {
    "alarms": (
        "alarm-5xx-misconfigured",
        "alarms are a required decision: add alarms: {emails: [...]}, {topic_arn: <SNS ARN>} or "
        "{none_reason: <why nobody is notified>}",
    ),
    "network": (
        "config",
        "add network: {cidr: 10.0.0.0/16, availability_zones: [<region>a, <region>b]} (zones are explicit so "
        "synth needs no AWS lookup)",
    ),
}

_TYPE_NAMES = {bool: "true/false", int: "a number", float: "a number", str: "text", dict: "a mapping", list: "a list"}


def describe(item: Any, loc: list[str]) -> tuple[str, str]:
    """(id, fix) for one pydantic error item at ``loc`` (the path without discriminator tags)."""
    kind, value, ctx = item["type"], item.get("input"), item.get("ctx") or {}
    path = ".".join(loc)
    seen = _TYPE_NAMES.get(type(value), type(value).__name__)
    if kind == "extra_forbidden":
        parent, key = ".".join(loc[:-1]), loc[-1] if loc else ""
        if (parent, key) in REFUSED_KEYS:
            return REFUSED_KEYS[(parent, key)]
        if len(loc) == 3 and loc[0] == "settings":
            return "config", (
                "a setting is plain text, {secret: <kind>} or {from: <part>}, one key only; kinds: "
                f"{', '.join(SECRET_KINDS)}; parts: {', '.join(FROM_KINDS)}"
            )
        known = ", ".join(known_keys(loc[:-1]))
        return "config", f"unknown key; remove it (known keys here: {known})"
    if kind == "missing":
        return MISSING_FIXES.get(path, ("config", "this field is required; add it (see config/stages/dev.yaml)"))
    if kind == "literal_error":
        rule, why = LITERAL_FIXES.get(path, ("config", ""))
        choices = str(ctx.get("expected", "")).replace("'", "")
        if not why and not isinstance(value, str) and "'" in str(ctx.get("expected", "")):
            why = f"YAML read {seen} here; quote the value: '{value}' (one of: {choices})"
        hint = ""
        if len(loc) == 3 and loc[0] == "settings" and isinstance(value, str):
            # A mistyped kind: suggest the kind (a word of the schema), never echo what was typed.
            close = difflib.get_close_matches(
                value, SECRET_KINDS if loc[2] == "secret" else FROM_KINDS, n=1, cutoff=0.8
            )
            hint = f" (did you mean {close[0]}?)" if close else ""
        return rule, (why or f"use one of: {choices}") + hint
    if kind == "string_type":
        if isinstance(value, bool):
            return "config", "YAML reads yes/no/on/off/true/false as a boolean; quote the value: 'on'"
        return "config", f"YAML read {seen} here; quote the value to keep it as text: '{value}'"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "config", f"write a whole number without quotes (found {seen})"
    if kind in ("bool_type", "bool_parsing"):
        return "config", f"write true or false without quotes (found {seen})"
    if kind in ("list_type", "tuple_type"):
        return "config", f"write a list, e.g. [a, b] (found {seen})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "config", f"write a mapping of key: value lines (found {seen})"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()), "")
        return "config", f"use a value {sign} {bound}"
    if kind in ("too_short", "too_long"):
        return "config", str(item["msg"]).replace("List should have", "write").replace("after validation, ", "")
    if kind == "string_pattern_mismatch":
        return "config", f"write it to match {ctx.get('pattern')}"
    if kind == "int_from_float" or kind == "float_type":
        return "config", f"write a number (found {seen})"
    return "config", str(item["msg"])


def known_keys(loc: list[str]) -> list[str]:
    """Keys of the model at ``loc`` (``[]`` when ``loc`` is not a model)."""
    from config.schema import AppConfig

    model: type[BaseModel] | None = AppConfig
    for part in loc:
        if model is None or part not in model.model_fields:
            return []
        annotation = model.model_fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return sorted(model.model_fields) if model else []
