"""Unit tests for the Redis AUTH token rotation Lambda (functions/redis_rotation/index.py).

Secrets Manager runs on moto. ElastiCache is ``FakeElastiCache`` below: moto's replication groups do not model
AUTH token update strategies, so the fake records the ModifyReplicationGroup calls, scripts the group status and
models the set of tokens the server accepts with the documented semantics
(https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/auth.html): ROTATE adds a token and, when two are
there already, drops the oldest; SET needs two tokens and the last one's value and leaves only that one.

moto 5.2.5 gap: ``rotate_secret`` without a Lambda it can run moves AWSCURRENT to the new version at once, and
with one it needs moto's Lambda backend (Docker). ``_start`` therefore does what RotateSecret does before invoking
the function, in moto's Secrets Manager backend: rotation enabled, a value-less AWSPENDING version.
"""

from __future__ import annotations

import json
import logging
import string
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

REGION = "eu-west-1"
GROUP = "shop-dev-cache"
NAME = "shop/dev/redis-auth"
TOKEN_0 = "PreviousTokenZero" + "a" * 47  # the token before the current one (previous rotation)
TOKEN_1 = "CurrentTokenOne" + "b" * 49  # AWSCURRENT when a test starts
V1 = "11111111-1111-4111-8111-111111111111"  # never used as a ClientRequestToken: create_secret picks its own
V2 = "22222222-2222-4222-8222-222222222222"
V3 = "33333333-3333-4333-8333-333333333333"
ALPHANUMERIC = set(string.ascii_letters + string.digits)


class FakeElastiCache:
    """One replication group in AUTH-token mode: documented ROTATE/SET semantics and scripted statuses.

    ``tokens`` are oldest first (at most two). A modification keeps the group ``modifying`` for ``apply_after``
    DescribeReplicationGroups calls; while it is in flight only the tokens valid both before and after count as
    accepted (the worst case). ``updates_date=False`` leaves ``AuthTokenLastModifiedDate`` where it is.
    """

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = list(tokens)
        self.status = "available"
        self.auth_enabled = True
        self.modified = datetime(2020, 1, 1, tzinfo=UTC)
        self.apply_after = 2
        self.updates_date = True
        self.refuse: str | None = None
        self.calls: list[tuple[str, str]] = []
        self.in_flight: list[str] | None = None
        self.countdown = 0
        self.on_event: Callable[[], None] = lambda: None

    def accepted(self) -> set[str]:
        if self.in_flight is None:
            return set(self.tokens)
        return set(self.tokens) & set(self.in_flight)

    def _group(self) -> dict[str, Any]:
        return {
            "ReplicationGroupId": GROUP,
            "Status": self.status,
            "AuthTokenEnabled": self.auth_enabled,
            "AuthTokenLastModifiedDate": self.modified,
            "TransitEncryptionEnabled": True,
            "UserGroupIds": [],
        }

    @staticmethod
    def _error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": f"fake {code}"}}, "ModifyReplicationGroup")

    def modify_replication_group(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["ReplicationGroupId"] == GROUP
        assert kwargs["ApplyImmediately"] is True
        strategy, token = kwargs["AuthTokenUpdateStrategy"], kwargs["AuthToken"]
        self.calls.append((strategy, token))
        if self.refuse:
            code, self.refuse = self.refuse, None
            raise self._error(code)
        if self.status != "available":
            raise self._error("InvalidReplicationGroupState")
        if strategy == "ROTATE":
            new = [*self.tokens, token][-2:]
        elif strategy == "SET":
            if len(self.tokens) != 2:
                raise self._error("InvalidParameterCombination")
            if token != self.tokens[-1]:
                raise self._error("InvalidParameterValue")
            new = [token]
        else:
            raise self._error("InvalidParameterValue")
        self.in_flight, self.status, self.countdown = new, "modifying", self.apply_after
        self.on_event()
        return {"ReplicationGroup": self._group()}

    def describe_replication_groups(self, ReplicationGroupId: str) -> dict[str, Any]:
        assert ReplicationGroupId == GROUP
        if self.in_flight is not None:
            self.countdown -= 1
            if self.countdown <= 0:
                self.tokens, self.in_flight, self.status = self.in_flight, None, "available"
                if self.updates_date:
                    self.modified = datetime.now(UTC)
        self.on_event()
        return {"ReplicationGroups": [self._group()]}


class FakeClock:
    """``_clock``/``_sleep`` of the module: sleeping advances time at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep()


@pytest.fixture
def mod(handler_module: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("REPLICATION_GROUP_ID", GROUP)
    with handler_module("redis_rotation") as module:
        yield module


@pytest.fixture
def sm(mod: ModuleType) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def ec(mod: ModuleType, sm: Any, monkeypatch: pytest.MonkeyPatch) -> FakeElastiCache:
    fake = FakeElastiCache([TOKEN_0, TOKEN_1])
    monkeypatch.setattr(mod, "_clients", lambda: (sm, fake))
    return fake


@pytest.fixture
def clock(mod: ModuleType, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(mod, "_clock", fake.clock)
    monkeypatch.setattr(mod, "_sleep", fake.sleep)
    return fake


def _all_tokens(sm: Any, ec: FakeElastiCache) -> set[str]:
    """Every token value a test handled: constants, values sent to the fake, all stored secret versions."""
    values = {TOKEN_0, TOKEN_1, *(token for _, token in ec.calls), *ec.tokens}
    for secret in sm.list_secrets()["SecretList"]:
        for version in secret.get("SecretVersionsToStages", {}):
            try:
                text = sm.get_secret_value(SecretId=secret["ARN"], VersionId=version)["SecretString"]
            except ClientError:
                continue  # a version without a value yet
            values.add(text)
            data = json.loads(text) if text.startswith("{") else None
            if isinstance(data, dict) and isinstance(data.get("password"), str):
                values.add(data["password"])
    return values


@pytest.fixture(autouse=True)
def no_token_in_logs(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, caplog: pytest.LogCaptureFixture
) -> Iterator[list[str]]:
    """Capture everything at DEBUG; afterwards no token may appear in the log or in the texts tests add."""
    caplog.set_level(logging.DEBUG)
    assert logging.getLogger("botocore").level == logging.WARNING
    texts: list[str] = []
    yield texts
    logged = [record for when in ("setup", "call") for record in caplog.get_records(when)]
    output = "\n".join([*(logging.Formatter().format(record) for record in logged), *texts])
    assert output.strip(), "the handler logs its steps"
    for value in _all_tokens(sm, ec):
        assert value not in output


def _secret(sm: Any, value: str = TOKEN_1) -> str:
    return str(sm.create_secret(Name=NAME, SecretString=value)["ARN"])


def _start(sm: Any, arn: str, version: str) -> None:
    """What RotateSecret does before invoking the function: rotation on, a value-less AWSPENDING version."""
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[arn]
    assert isinstance(secret, FakeSecret)
    secret.rotation_requested = secret.rotation_enabled = True
    secret.rotation_lambda_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:redis-rotation"
    secret.auto_rotate_after_days = 30
    for stages in (old["version_stages"] for old in secret.versions.values()):
        if "AWSPENDING" in stages:
            stages.remove("AWSPENDING")
    secret.versions[version] = {"createdate": int(time.time()), "version_id": version, "version_stages": ["AWSPENDING"]}


def _start_configuration_test(sm: Any, arn: str, version: str, value: str | None) -> None:
    """What RotateSecret with RotateImmediately=false does before it runs testSecret alone: an AWSPENDING version.

    Its value is not documented (a copy of AWSCURRENT, a new value, or none): ``value`` is each of those.
    """
    _start(sm, arn, version)
    if value is not None:
        secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[arn]
        secret.versions[version]["secret_string"] = value


def _invoke(mod: ModuleType, arn: str, version: str, step: str, remaining_ms: int = 300_000) -> None:
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: remaining_ms)
    mod.handler({"SecretId": arn, "ClientRequestToken": version, "Step": step}, context)


def _raises(mod: ModuleType, texts: list[str], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(mod.RotationError) as info:
        _invoke(mod, *args, **kwargs)
    texts.append(str(info.value))
    return str(info.value)


def _pending(sm: Any, arn: str, version: str) -> str:
    return str(sm.get_secret_value(SecretId=arn, VersionId=version, VersionStage="AWSPENDING")["SecretString"])


def _current(sm: Any, arn: str) -> str:
    return str(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])


def _stages(sm: Any, arn: str) -> dict[str, list[str]]:
    return dict(sm.describe_secret(SecretId=arn)["VersionIdsToStages"])


# createSecret


@pytest.mark.usefixtures("clock")
def test_create_secret_stores_a_new_pending_token_once(mod: ModuleType, sm: Any, ec: FakeElastiCache) -> None:
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    pending = _pending(sm, arn, V2)
    assert len(pending) == 64 and set(pending) <= ALPHANUMERIC and pending != TOKEN_1

    _invoke(mod, arn, V2, "createSecret")

    assert _pending(sm, arn, V2) == pending
    assert _current(sm, arn) == TOKEN_1
    assert ec.calls == []


@pytest.mark.usefixtures("clock")
def test_create_secret_keeps_the_json_shape(mod: ModuleType, sm: Any, ec: FakeElastiCache) -> None:
    arn = _secret(sm, json.dumps({"username": "default", "password": TOKEN_1}))
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    pending = json.loads(_pending(sm, arn, V2))
    assert set(pending) == {"username", "password"} and pending["username"] == "default"
    assert len(pending["password"]) == 64 and set(pending["password"]) <= ALPHANUMERIC
    assert pending["password"] != TOKEN_1

    _invoke(mod, arn, V2, "setSecret")  # the token sent is the JSON's password
    assert ec.calls == [("ROTATE", pending["password"])]


# setSecret


def test_set_secret_rotates_to_the_pending_token_and_waits(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, clock: FakeClock
) -> None:
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    pending = _pending(sm, arn, V2)

    _invoke(mod, arn, V2, "setSecret")

    # ROTATE on a server with two tokens drops the oldest: the previous one goes, the current one stays.
    assert ec.calls == [("ROTATE", pending)]
    assert ec.tokens == [TOKEN_1, pending]
    assert ec.status == "available" and ec.modified > datetime.now(UTC) - timedelta(minutes=1)
    assert clock.sleeps and all(0 < seconds <= mod.POLL_INTERVAL_S for seconds in clock.sleeps)
    assert mod.ROTATE_SENT in _stages(sm, arn)[V2]


@pytest.mark.usefixtures("clock")
def test_set_secret_first_rotation_keeps_the_creation_token(mod: ModuleType, sm: Any, ec: FakeElastiCache) -> None:
    ec.tokens = [TOKEN_1]  # set by CreateReplicationGroup: one required token, SET not allowed yet
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    _invoke(mod, arn, V2, "setSecret")
    assert ec.tokens == [TOKEN_1, _pending(sm, arn, V2)]
    assert [strategy for strategy, _ in ec.calls] == ["ROTATE"]


@pytest.mark.usefixtures("clock")
def test_set_secret_refuses_while_the_group_is_modifying(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, no_token_in_logs: list[str]
) -> None:
    ec.status = "modifying"
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    message = _raises(mod, no_token_in_logs, arn, V2, "setSecret")
    assert "modifying, not available" in message
    assert ec.calls == [] and ec.tokens == [TOKEN_0, TOKEN_1]


@pytest.mark.usefixtures("clock")
def test_set_secret_twice_sends_rotate_once(mod: ModuleType, sm: Any, ec: FakeElastiCache) -> None:
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    _invoke(mod, arn, V2, "setSecret")
    _invoke(mod, arn, V2, "setSecret")
    assert len(ec.calls) == 1
    assert ec.tokens == [TOKEN_1, _pending(sm, arn, V2)]


def test_set_secret_retry_after_a_timeout_waits_instead_of_resending(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, clock: FakeClock, no_token_in_logs: list[str]
) -> None:
    ec.apply_after = 100  # slower than the first invocation's budget
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    pending = _pending(sm, arn, V2)

    message = _raises(mod, no_token_in_logs, arn, V2, "setSecret", remaining_ms=60_000)
    assert "time budget ran out" in message
    assert sum(clock.sleeps) == pytest.approx(30.0)  # 60 s left minus the 30 s margin
    assert TOKEN_1 in ec.accepted()

    # Retried while the modification is still in flight: refused before anything is sent.
    assert "not available" in _raises(mod, no_token_in_logs, arn, V2, "setSecret")
    # Retried once ElastiCache has applied it: the date shows the ROTATE happened, nothing is sent again.
    ec.countdown = 1
    _invoke(mod, arn, V2, "setSecret")

    assert ec.calls == [("ROTATE", pending)]
    assert ec.tokens == [TOKEN_1, pending]


@pytest.mark.usefixtures("clock")
def test_set_secret_never_resends_rotate_when_the_date_does_not_move(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, no_token_in_logs: list[str]
) -> None:
    """The REDIS_ROTATE_SENT label alone stops a second ROTATE, which would drop the current token."""
    ec.updates_date = False
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    pending = _pending(sm, arn, V2)

    assert "time budget ran out" in _raises(mod, no_token_in_logs, arn, V2, "setSecret", remaining_ms=90_000)
    message = _raises(mod, no_token_in_logs, arn, V2, "setSecret", remaining_ms=90_000)

    assert "remove that label" in message
    assert ec.calls == [("ROTATE", pending)]
    assert ec.tokens == [TOKEN_1, pending]


@pytest.mark.usefixtures("clock")
def test_set_secret_refused_rotate_is_sent_again_next_time(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, no_token_in_logs: list[str]
) -> None:
    ec.refuse = "InvalidParameterValue"
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    pending = _pending(sm, arn, V2)

    message = _raises(mod, no_token_in_logs, arn, V2, "setSecret")
    assert "InvalidParameterValue" in message and "nothing changed" in message
    assert mod.ROTATE_SENT not in _stages(sm, arn)[V2]
    assert ec.tokens == [TOKEN_0, TOKEN_1]

    _invoke(mod, arn, V2, "setSecret")
    assert ec.calls == [("ROTATE", pending), ("ROTATE", pending)]
    assert ec.tokens == [TOKEN_1, pending]


# testSecret


@pytest.mark.usefixtures("clock")
def test_test_secret_passes_once_the_token_was_modified_after_the_pending_version(
    mod: ModuleType, sm: Any, ec: FakeElastiCache
) -> None:
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    _invoke(mod, arn, V2, "setSecret")
    _invoke(mod, arn, V2, "testSecret")
    assert len(ec.calls) == 1


@pytest.mark.usefixtures("clock")
def test_test_secret_of_a_rotation_enforces_the_label_and_the_dates(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, no_token_in_logs: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    arn = _secret(sm)
    _start(sm, arn, V2)
    _invoke(mod, arn, V2, "createSecret")
    _invoke(mod, arn, V2, "setSecret")
    assert mod.ROTATE_SENT in _stages(sm, arn)[V2]

    # The label is there: the group's token date older than the pending version fails, whatever the status.
    ec.modified = datetime.now(UTC) - timedelta(hours=1)
    assert "the pending token is not applied" in _raises(mod, no_token_in_logs, arn, V2, "testSecret")

    ec.modified, ec.status = datetime.now(UTC) + timedelta(seconds=1), "modifying"
    assert "not available" in _raises(mod, no_token_in_logs, arn, V2, "testSecret")

    ec.status, ec.auth_enabled = "available", False
    assert "does not have an AUTH token enabled" in _raises(mod, no_token_in_logs, arn, V2, "testSecret")

    ec.auth_enabled = True
    _invoke(mod, arn, V2, "testSecret")
    assert "configuration test" not in caplog.text
    assert len(ec.calls) == 1  # setSecret's ROTATE only: testSecret sends nothing


# testSecret alone: the configuration test of RotateImmediately=false


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize("shape", ["no value", "copy of AWSCURRENT", "new value", "JSON copy"])
def test_configuration_test_passes_without_set_secret_and_sends_nothing(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    current = json.dumps({"username": "default", "password": TOKEN_1}) if shape == "JSON copy" else TOKEN_1
    value = {"no value": None, "new value": "NewTestToken" + "c" * 52}.get(shape, current)
    arn = _secret(sm, current)
    _start_configuration_test(sm, arn, V2, value)
    ec.modified = datetime.now(UTC) - timedelta(days=30)  # the last rotation, long before the test version

    _invoke(mod, arn, V2, "testSecret")

    assert ec.calls == [] and ec.tokens == [TOKEN_0, TOKEN_1]
    assert "configuration test" in caplog.text
    assert _stages(sm, arn)[V2] == ["AWSPENDING"]  # no label: nothing recorded as sent
    assert _current(sm, arn) == current


@pytest.mark.usefixtures("clock")
@pytest.mark.parametrize(
    ("status", "auth_enabled", "value", "message"),
    [
        ("modifying", True, TOKEN_1, "is modifying, not available"),
        ("creating", True, None, "is creating, not available"),
        ("available", False, TOKEN_1, "does not have an AUTH token enabled"),
        ("available", True, "short", "does not meet ElastiCache's rules"),
        ("available", True, json.dumps({"username": "default"}), "without a string 'password'"),
    ],
)
def test_configuration_test_fails_when_the_group_or_the_value_is_not_usable(
    mod: ModuleType,
    sm: Any,
    ec: FakeElastiCache,
    no_token_in_logs: list[str],
    status: str,
    auth_enabled: bool,
    value: str | None,
    message: str,
) -> None:
    arn = _secret(sm)
    _start_configuration_test(sm, arn, V2, value)
    ec.status, ec.auth_enabled = status, auth_enabled

    assert message in _raises(mod, no_token_in_logs, arn, V2, "testSecret")
    assert ec.calls == []
    assert mod.ROTATE_SENT not in _stages(sm, arn)[V2]


# finishSecret


@pytest.mark.usefixtures("clock", "ec")
def test_finish_secret_moves_awscurrent(mod: ModuleType, sm: Any) -> None:
    arn = _secret(sm)
    first = next(iter(_stages(sm, arn)))
    _start(sm, arn, V2)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        _invoke(mod, arn, V2, step)

    stages = _stages(sm, arn)
    assert "AWSCURRENT" in stages[V2] and mod.ROTATE_SENT not in stages[V2]
    assert "AWSCURRENT" not in stages[first] and "AWSPREVIOUS" in stages[first]
    assert _current(sm, arn) != TOKEN_1

    _invoke(mod, arn, V2, "finishSecret")  # already current: nothing to do
    assert _stages(sm, arn) == stages


# validation


@pytest.mark.usefixtures("clock")
def test_validation_like_the_aws_templates(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, no_token_in_logs: list[str]
) -> None:
    arn = _secret(sm)
    sm.put_secret_value(SecretId=arn, ClientRequestToken=V2, SecretString="x" * 64, VersionStages=["AWSPENDING"])
    assert "rotation is not enabled" in _raises(mod, no_token_in_logs, arn, V2, "createSecret")

    _start(sm, arn, V3)
    assert "no version" in _raises(mod, no_token_in_logs, arn, V1, "createSecret")
    assert "not staged AWSPENDING" in _raises(mod, no_token_in_logs, arn, V2, "setSecret")  # V3 took AWSPENDING
    current = next(version for version, labels in _stages(sm, arn).items() if "AWSCURRENT" in labels)
    _invoke(mod, arn, current, "setSecret")  # already AWSCURRENT: returns
    assert "unknown rotation step" in _raises(mod, no_token_in_logs, arn, V3, "dropSecret")
    assert ec.calls == []


# a full rotation 1 -> 2 -> 3


def test_full_rotation_keeps_the_current_token_accepted_at_every_moment(
    mod: ModuleType, sm: Any, ec: FakeElastiCache, clock: FakeClock
) -> None:
    ec.tokens = [TOKEN_1]  # the group was created with the generated token
    arn = _secret(sm)
    checks: list[str] = []

    def invariant() -> None:
        current = _current(sm, arn)
        assert current in ec.accepted(), "the server must accept the AWSCURRENT token"
        checks.append(current)

    ec.on_event = invariant
    clock.on_sleep = invariant
    held_by_apps = [TOKEN_1]

    for version in (V2, V3):
        _start(sm, arn, version)
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            _invoke(mod, arn, version, step)
            invariant()
            # Apps restart with the new AWSCURRENT within minutes; until then they hold the one before.
            assert held_by_apps[-1] in ec.accepted()
        new = _current(sm, arn)
        assert ec.accepted() == {held_by_apps[-1], new}
        held_by_apps.append(new)

    token_2, token_3 = held_by_apps[1:]
    assert len({TOKEN_1, token_2, token_3}) == 3
    assert ec.accepted() == {token_2, token_3}  # the token before the current one was dropped
    assert ec.calls == [("ROTATE", token_2), ("ROTATE", token_3)]
    assert len(checks) > 10
