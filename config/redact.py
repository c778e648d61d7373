"""What looks secret, and how a secret-looking value is shown: never itself, at most its length and a fingerprint.

Used by every message the config layer prints (a refusal lands in CI logs) and by the schema's plaintext check.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from config.kinds import SECRET_KINDS

# Names that must never carry a plain value (plaintext-secrets), matched on the upper-cased name. ``KEY`` and ``PASS``
# only as a word (``SMTP_PASS``, not ``BYPASS_CACHE``); ``PWD``, ``PASSPHRASE``, ``APIKEY`` anywhere (``DBPWD``).
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|PASSPHRASE|PWD|TOKEN|(^|_)(KEY|PASS)($|_)|APIKEY|PRIVATE|CREDENTIAL|DATABASE_URL"
    r"|REDIS_URL|DSN"
)
# A plain value that embeds credentials: scheme://user:password@host.
CREDENTIAL_URL = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*:[^/@\s]+@", re.IGNORECASE)
# Well-known key formats, whatever the setting is called (Stripe, AWS access key, GitHub, Slack, PEM, JWT).
SECRET_VALUE = re.compile(
    r"^(sk|rk)_(live|test)_\S+|^AKIA[0-9A-Z]{16}$|^gh[pousr]_[A-Za-z0-9]{20,}|^xox[abprs]-\S+|-----BEGIN [A-Z ]*PRIVATE"
    r"|^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."
)
SHOWN_CHARS = 60
# The words a setting's ``secret:`` key takes are kinds, never values: a refusal may print them.


def looks_secret(name: str, value: Any) -> bool:
    """True when ``value`` under the key ``name`` must not be printed."""
    if not isinstance(value, str):
        return False
    if name == "secret" and value in SECRET_KINDS:
        return False
    return bool(SECRET_NAME.search(name.upper()) or CREDENTIAL_URL.match(value) or SECRET_VALUE.search(value))


def fingerprint(value: str) -> str:
    """A short, non-reversible identifier of a value: enough to tell two values apart, nothing more."""
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:8]


# Below this length a hash could be reversed by trying a dictionary of common passwords: length only.
FINGERPRINT_MIN_CHARS = 24


def hidden(value: str) -> str:
    """``<hidden: N chars, sha256 abcd1234>``; a short value shows its length only."""
    if len(value) < FINGERPRINT_MIN_CHARS:
        return f"<hidden: {len(value)} chars>"
    return f"<hidden: {len(value)} chars, sha256 {fingerprint(value)}>"


def redact(value: Any, name: str = "") -> Any:
    """``value`` with every secret-looking string (by its key or by its shape) replaced by ``hidden(...)``."""
    if isinstance(value, Mapping):
        return {key: redact(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, name) for item in value]
    if looks_secret(name, value):
        return hidden(value)
    return value


def unprintable(value: Any, name: str = "") -> list[tuple[str, str]]:
    """(string, what to print instead) for every string inside ``value`` that is secret-looking or too long to
    print whole, longest first (so a message quoting it can be rewritten)."""
    found: dict[str, str] = {}

    def walk(item: Any, key: str) -> None:
        if isinstance(item, Mapping):
            for child_key, child in item.items():
                walk(child, str(child_key))
        elif isinstance(item, list | tuple):
            for child in item:
                walk(child, key)
        elif isinstance(item, str) and item and (looks_secret(key, item) or len(item) > SHOWN_CHARS):
            found[item] = show(item, key)

    walk(value, name)
    return sorted(found.items(), key=lambda pair: -len(pair[0]))


def show(value: Any, name: str = "") -> str:
    """A one-line rendering of a config value for a message: redacted, then shortened."""
    value = redact(value, name)
    if isinstance(value, str) and value.startswith("<hidden: "):
        return value
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "<a number too long to show>"
    text = " ".join(text.split())
    if len(text) > SHOWN_CHARS:
        text = f"{text[: SHOWN_CHARS - 3]}... ({len(text)} chars)"
    return text
