"""Secrets Manager rotation Lambda for the AUTH token of an ElastiCache (Redis OSS) replication group.

Scope: a node-based replication group in AUTH-token mode with TLS in transit (not RBAC users). Environment:
``REPLICATION_GROUP_ID``. The secret value is the token as a plain string (what the CDK construct generates);
a JSON object with a ``password`` key is accepted too, and the pending version keeps that shape (other keys
copied, ``password`` replaced).

Goal: no app ever holds a token the server no longer accepts. Apps read AWSCURRENT and are restarted elsewhere
within minutes of a rotation, so at every moment the server must accept the AWSCURRENT token, and right after
``finishSecret`` also the token it replaced (held by the apps until they restart).

What ElastiCache documents (https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/auth.html, "Modifying the
AUTH token on an existing cluster", and the ``AuthTokenUpdateStrategy`` API reference):

- ROTATE "adds an additional AUTH token to the server while retaining the previous token"; "If this modification
  is performed on a server that already supports two AUTH tokens, the oldest AUTH token will also be removed
  during this operation. This allows a server to support up to two most recent AUTH tokens at a given time."
- SET is called "with same value as the last AUTH token"; it "can only be used with a cluster that has 2 AUTH
  tokens or 1 optional AUTH token from using a ROTATE strategy before"; afterwards "the server supports only the
  AUTH token specified". (API reference: "SET - allowed only after ROTATE".)

Sequence chosen for ``setSecret``: a single ``ROTATE`` to the pending token, then wait until the group is
``available`` again. No SET. Why the SET-then-ROTATE idea adds nothing, according to those facts:

- Steady state before rotation N+1 is {previous, current}, current being the token the last rotation ROTATEd
  in, i.e. the newest. ROTATE(pending) drops the oldest (previous) and gives {current, pending}: exactly what
  SET(current) + ROTATE(pending) would give, with one modification (one ``modifying`` period) instead of two.
- First rotation after creation: the group has one required token (set by CreateReplicationGroup, no ROTATE
  yet), SET is not allowed; ROTATE(pending) gives {current, pending}.
- SET(current) is only documented when current is the *last* token. In the one case where it would matter
  (current is the older of two, e.g. a retry after our ROTATE went through) the docs do not allow it, so it
  cannot be relied on as a repair. What actually protects that case is not re-sending ROTATE (below): a second
  ROTATE(pending) on {current, pending} would drop current, the token every app holds.

Safe to run twice. The custom staging label ``REDIS_ROTATE_SENT`` on the pending version records that ROTATE
may have been sent: it is attached *before* the ModifyReplicationGroup call and removed only when ElastiCache
definitely refused the call (a ClientError, and the group still ``available`` with an unchanged
``AuthTokenLastModifiedDate``), or by ``finishSecret``. So:

- label absent: ROTATE was never sent for this version -> send it, then wait until the group is ``available``
  with an ``AuthTokenLastModifiedDate`` that moved from the value seen before the call;
- label present (a retry after a crash, a timeout, a lost response): never send it again -> wait until the
  group is ``available`` with ``AuthTokenLastModifiedDate`` not older than the pending version's ``CreatedDate``.
  If ElastiCache never applies it, every attempt waits and fails; that is safe (the apps keep the current
  token); remove the label by hand to let the next attempt send ROTATE again.

Dates alone cannot decide whether to send: the previous rotation's ROTATE can fall in the same second as the
new version's ``CreatedDate`` (it does in the full-rotation test, where rotations follow each other at once),
and a date that never moved would make every retry send ROTATE again.

If the group is not ``available`` at the start of ``setSecret``/``testSecret``, or it has not come back
``available`` with the new date within the invocation's time (``get_remaining_time_in_millis()`` minus 30 s),
the step raises and Secrets Manager retries the rotation with the same ClientRequestToken.

``testSecret`` cannot send AUTH: the function is not in the VPC (it needs only the ElastiCache and Secrets
Manager APIs). It checks the control plane instead, and it never sends ROTATE (or anything else) itself. It has
two callers:

- a rotation, after ``setSecret``: the version carries the label, and the checks are strict: the group is
  ``available``, ``AuthTokenEnabled`` is true and ``AuthTokenLastModifiedDate`` is not older than the pending
  version's ``CreatedDate``;
- the configuration test. The schedule is created with ``RotateImmediately=false`` (CloudFormation's
  ``RotateImmediatelyOnUpdate``), and then, per the RotateSecret API reference
  (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html), "Secrets Manager tests
  the rotation configuration by running the testSecret step of the Lambda rotation function. The test creates an
  AWSPENDING version of the secret and then removes it." No ``createSecret``/``setSecret`` runs for that
  version, so it has no label: ROTATE was never sent for it (the label goes on before any ModifyReplicationGroup
  and is removed only when ElastiCache refused, and then ``setSecret`` fails and ``testSecret`` is not called).
  Without the label the step checks only that the group is ``available`` in AUTH-token mode and, when the
  version has a value, that the value holds a well-formed token; it logs that this is the configuration test.
  Failing here would fail the CloudFormation resource and roll the stack back.

  What that AWSPENDING version holds is not documented: the docs say neither that it is a copy of the AWSCURRENT
  value nor that it is a new value (our ``createSecret`` does not run for it, so it is not a token we
  generated). Nothing here relies on either: the value is only parsed and shape-checked (a copy of the current
  token, generated with the same rules, and a new well-formed token both pass), never sent to ElastiCache and
  never logged; a version without a value is accepted, since there is nothing to send or check.

``finishSecret`` moves AWSCURRENT to the pending version (Secrets Manager moves AWSPREVIOUS to the old one).

Assumptions: this function is the only writer of the group's AUTH token, and the apps roll to AWSCURRENT well
within one rotation interval (the next rotation drops the token before the current one).

Dates come from GetSecretValue (``CreatedDate`` of the version): ListSecretVersionIds would need an IAM action
that ``add_rotation_schedule`` does not grant. IAM: secretsmanager:DescribeSecret, GetSecretValue,
PutSecretValue, UpdateSecretVersionStage on the secret; secretsmanager:GetRandomPassword on ``*``;
elasticache:DescribeReplicationGroups, ModifyReplicationGroup on the replication group.

Token values never appear in logs or in raised errors; botocore (which logs request bodies at DEBUG) is held
at WARNING.
"""

from __future__ import annotations

import json
import logging
import os
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOG = logging.getLogger("redis_rotation")
LOG.setLevel(logging.INFO)
# botocore logs request/response bodies (the token) at DEBUG: keep it quiet whatever the Lambda log level.
logging.getLogger("botocore").setLevel(logging.WARNING)

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
ROTATE_SENT = "REDIS_ROTATE_SENT"
TOKEN_LENGTH = 64
# ElastiCache: 16-128 printable characters, non-alphanumerics restricted to ! & # $ ^ < > -.
TOKEN_MIN, TOKEN_MAX = 16, 128
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!&#$^<>-")
SAFETY_MARGIN_S = 30.0
POLL_INTERVAL_S = 10.0
_BOTO_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 4, "mode": "standard"})

# Module-level so tests can make polling instant and time deterministic.
_sleep = time.sleep
_clock = time.monotonic


class RotationError(Exception):
    """A rotation step that cannot (yet) complete; the message never contains a token."""


def _clients() -> tuple[Any, Any]:
    """Return ``(secretsmanager, elasticache)`` clients; tests monkeypatch this."""
    return boto3.client("secretsmanager", config=_BOTO_CONFIG), boto3.client("elasticache", config=_BOTO_CONFIG)


def _scrub(text: str, *sensitive: str) -> str:
    for value in sensitive:
        if value:
            text = text.replace(value, "***")
    return text


def _token_of(secret_string: str) -> str:
    """The AUTH token in a secret value: the plain string, or the ``password`` of a JSON object."""
    try:
        data: Any = json.loads(secret_string)
    except json.JSONDecodeError:
        return secret_string
    if not isinstance(data, dict):
        return secret_string
    password = data.get("password")
    if not isinstance(password, str) or not password:
        raise RotationError("the secret is a JSON object without a string 'password'")
    return password


def _with_token(current_string: str, token: str) -> str:
    """``token`` in the shape of the current secret value (plain string or JSON object with ``password``)."""
    try:
        data: Any = json.loads(current_string)
    except json.JSONDecodeError:
        return token
    if isinstance(data, dict):
        return json.dumps({**data, "password": token})
    return token


def _check_token(token: str) -> None:
    if not TOKEN_MIN <= len(token) <= TOKEN_MAX or not set(token) <= TOKEN_CHARS:
        raise RotationError(
            f"the pending token does not meet ElastiCache's rules ({TOKEN_MIN}-{TOKEN_MAX} characters from "
            "letters, digits and ! & # $ ^ < > -)"
        )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _applied(group: dict[str, Any], created: datetime) -> bool:
    """True when the group's AUTH token changed at or after the pending version was created."""
    modified = group.get("AuthTokenLastModifiedDate")
    return isinstance(modified, datetime) and _aware(modified) >= _aware(created)


def _group(elasticache: Any, group_id: str) -> dict[str, Any]:
    groups = elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"]
    if not groups:
        raise RotationError(f"replication group {group_id} not found")
    return dict(groups[0])


def _require_auth_mode(group: dict[str, Any], group_id: str) -> None:
    if not group.get("AuthTokenEnabled"):
        raise RotationError(f"replication group {group_id} does not have an AUTH token enabled")
    if group.get("UserGroupIds"):
        raise RotationError(f"replication group {group_id} uses RBAC user groups, not an AUTH token")


def _require_available(group: dict[str, Any], group_id: str) -> None:
    status = group.get("Status")
    if status != "available":
        raise RotationError(f"replication group {group_id} is {status}, not available; the rotation is retried")


def _stages(sm: Any, arn: str, token: str) -> dict[str, list[str]] | None:
    """Validate like AWS's rotation templates; the version-to-stages map, or None when nothing is to be done."""
    metadata = sm.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"rotation is not enabled on secret {arn}")
    versions: dict[str, list[str]] = metadata.get("VersionIdsToStages") or {}
    if token not in versions:
        raise RotationError(f"secret {arn} has no version {token} to rotate")
    if CURRENT in versions[token]:
        LOG.info("version %s of %s is already AWSCURRENT: nothing to do", token, arn)
        return None
    if PENDING not in versions[token]:
        raise RotationError(f"version {token} of secret {arn} is not staged AWSPENDING")
    return versions


def _pending(sm: Any, arn: str, token: str) -> dict[str, Any]:
    return dict(sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage=PENDING))


def _create_secret(sm: Any, arn: str, token: str) -> None:
    current = sm.get_secret_value(SecretId=arn, VersionStage=CURRENT)["SecretString"]
    try:
        _pending(sm, arn, token)
    except sm.exceptions.ResourceNotFoundException:
        pass
    else:
        LOG.info("createSecret: version %s of %s already has a value", token, arn)
        return
    new_token = sm.get_random_password(PasswordLength=TOKEN_LENGTH, ExcludePunctuation=True)["RandomPassword"]
    _check_token(new_token)
    value = _with_token(current, new_token)
    try:
        sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=value, VersionStages=[PENDING])
    except (ClientError, BotoCoreError) as error:
        raise RotationError(_scrub(f"PutSecretValue failed: {error}", value, new_token)) from None
    LOG.info("createSecret: new token stored as AWSPENDING version %s of %s", token, arn)


def _rotate(sm: Any, elasticache: Any, arn: str, token: str, group_id: str, before: Any) -> None:
    """Send ROTATE to the pending token, labelling the version first so that it is never sent twice."""
    secret_string = _pending(sm, arn, token)["SecretString"]
    new_token = _token_of(secret_string)
    _check_token(new_token)
    sm.update_secret_version_stage(SecretId=arn, VersionStage=ROTATE_SENT, MoveToVersionId=token)
    LOG.info("setSecret: ModifyReplicationGroup %s AuthTokenUpdateStrategy=ROTATE", group_id)
    try:
        response = elasticache.modify_replication_group(
            ReplicationGroupId=group_id,
            AuthToken=new_token,
            AuthTokenUpdateStrategy="ROTATE",
            ApplyImmediately=True,
        )
    except (ClientError, BotoCoreError) as error:
        message = _scrub(str(error), new_token, secret_string)
        if isinstance(error, ClientError) and _refused(elasticache, group_id, before):
            sm.update_secret_version_stage(SecretId=arn, VersionStage=ROTATE_SENT, RemoveFromVersionId=token)
            outcome = "nothing changed; the next attempt sends ROTATE again"
        else:
            outcome = f"the request may have gone through; label {ROTATE_SENT} kept so it is not sent twice"
        raise RotationError(f"ModifyReplicationGroup (ROTATE) on {group_id} failed: {message} ({outcome})") from None
    LOG.info("setSecret: ROTATE accepted, group %s is %s", group_id, response["ReplicationGroup"].get("Status"))


def _refused(elasticache: Any, group_id: str, before: Any) -> bool:
    """After a ClientError: the group is still available with the same token date (the request changed nothing)."""
    try:
        group = _group(elasticache, group_id)
    except (ClientError, BotoCoreError, RotationError):
        return False
    return group.get("Status") == "available" and group.get("AuthTokenLastModifiedDate") == before


def _wait_applied(elasticache: Any, group_id: str, done: Callable[[dict[str, Any]], bool], deadline: float) -> None:
    """Poll until the group is available and ``done``; raise when the time budget runs out."""
    while True:
        group = _group(elasticache, group_id)
        status = group.get("Status")
        applied = done(group)
        if status == "available" and applied:
            modified = group["AuthTokenLastModifiedDate"]
            LOG.info("setSecret: group %s available, AUTH token modified %s", group_id, modified)
            return
        remaining = deadline - _clock()
        if remaining <= 0:
            raise RotationError(
                f"replication group {group_id} is {status} (new token applied: {applied}) and the time budget "
                "ran out; Secrets Manager retries the rotation"
            )
        LOG.info("setSecret: group %s is %s (new token applied: %s), waiting", group_id, status, applied)
        _sleep(min(POLL_INTERVAL_S, remaining))


def _set_secret(
    sm: Any, elasticache: Any, arn: str, token: str, group_id: str, stages: dict[str, list[str]], context: Any
) -> None:
    deadline = _clock() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
    group = _group(elasticache, group_id)
    LOG.info("setSecret: group %s is %s", group_id, group.get("Status"))
    _require_auth_mode(group, group_id)
    _require_available(group, group_id)
    created = _pending(sm, arn, token)["CreatedDate"]
    if ROTATE_SENT in stages[token]:
        LOG.info("setSecret: ROTATE already sent for version %s by an earlier attempt; not sending it again", token)
        try:
            _wait_applied(elasticache, group_id, lambda g: _applied(g, created), deadline)
        except RotationError as error:
            raise RotationError(
                f"{error}; ROTATE was sent by an earlier attempt (label {ROTATE_SENT} on version {token}): if "
                "ElastiCache did not apply it, remove that label to let the next attempt send it again"
            ) from None
        return
    if deadline <= _clock():
        raise RotationError("not enough time left in this invocation to apply the token; the rotation is retried")
    before = group.get("AuthTokenLastModifiedDate")
    _rotate(sm, elasticache, arn, token, group_id, before)
    _wait_applied(
        elasticache, group_id, lambda g: _applied(g, created) and g.get("AuthTokenLastModifiedDate") != before, deadline
    )


def _test_configuration(sm: Any, arn: str, token: str, group_id: str, group: dict[str, Any]) -> None:
    """The configuration test of ``RotateImmediately=false``: the group is usable, the test value well-formed."""
    LOG.info(
        "testSecret: version %s has no label %s: configuration test (RotateImmediately=false); checking the group "
        "and the pending value's shape only, nothing is sent",
        token,
        ROTATE_SENT,
    )
    _require_available(group, group_id)
    _require_auth_mode(group, group_id)
    try:
        secret_string = _pending(sm, arn, token).get("SecretString")
    except sm.exceptions.ResourceNotFoundException:
        LOG.info("testSecret: the test version %s has no value; nothing to check", token)
        return
    if not isinstance(secret_string, str):
        raise RotationError(f"version {token} of secret {arn} has no SecretString")
    _check_token(_token_of(secret_string))
    LOG.info("testSecret: configuration test passed: group %s is available with an AUTH token", group_id)


def _test_secret(sm: Any, elasticache: Any, arn: str, token: str, group_id: str, stages: dict[str, list[str]]) -> None:
    group = _group(elasticache, group_id)
    LOG.info(
        "testSecret: group %s is %s, AuthTokenEnabled=%s, AuthTokenLastModifiedDate=%s",
        group_id,
        group.get("Status"),
        group.get("AuthTokenEnabled"),
        group.get("AuthTokenLastModifiedDate"),
    )
    if ROTATE_SENT not in stages[token]:
        _test_configuration(sm, arn, token, group_id, group)
        return
    _require_available(group, group_id)
    _require_auth_mode(group, group_id)
    created = _pending(sm, arn, token)["CreatedDate"]
    if not _applied(group, created):
        raise RotationError(
            f"AUTH token of {group_id} last modified {group.get('AuthTokenLastModifiedDate')}, before version "
            f"{token} was created ({created}): the pending token is not applied"
        )


def _finish_secret(sm: Any, arn: str, token: str, stages: dict[str, list[str]]) -> None:
    current = next((version for version, labels in stages.items() if CURRENT in labels), None)
    move: dict[str, Any] = {"SecretId": arn, "VersionStage": CURRENT, "MoveToVersionId": token}
    if current is not None:
        move["RemoveFromVersionId"] = current
    sm.update_secret_version_stage(**move)
    LOG.info("finishSecret: AWSCURRENT moved to version %s of %s (from %s)", token, arn, current)
    if ROTATE_SENT in stages[token]:
        try:
            sm.update_secret_version_stage(SecretId=arn, VersionStage=ROTATE_SENT, RemoveFromVersionId=token)
        except (ClientError, BotoCoreError) as error:
            LOG.warning("finishSecret: could not remove label %s from %s: %s", ROTATE_SENT, token, error)


def handler(event: dict[str, Any], context: Any) -> None:
    arn, token, step = str(event["SecretId"]), str(event["ClientRequestToken"]), str(event["Step"])
    group_id = os.environ["REPLICATION_GROUP_ID"]
    LOG.info("step=%s secret=%s version=%s group=%s", step, arn, token, group_id)
    if step not in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        raise RotationError(f"unknown rotation step {step!r}")
    sm, elasticache = _clients()
    stages = _stages(sm, arn, token)
    if stages is None:
        return
    if step == "createSecret":
        _create_secret(sm, arn, token)
    elif step == "setSecret":
        _set_secret(sm, elasticache, arn, token, group_id, stages, context)
    elif step == "testSecret":
        _test_secret(sm, elasticache, arn, token, group_id, stages)
    else:
        _finish_secret(sm, arn, token, stages)
