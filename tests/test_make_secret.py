"""``make secret`` (tools/secret.py) on moto: what it stores, what it prints (never the value), what it refuses.

stdin is an ``io.StringIO`` (not a terminal: the piped case) or a ``Terminal`` (a StringIO that says it is one)
with ``getpass.getpass`` replaced; SSM and STS are moto, except where an AWS error is injected with Stubber.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from config.redact import fingerprint
from tools import secret

ROOT = Path(__file__).resolve().parents[1]
DEV = yaml.safe_load((ROOT / "config" / "stages" / "dev.yaml").read_text(encoding="utf-8"))
REGION = "eu-west-1"
NAME = "STRIPE_API_KEY"
PARAMETER = f"/shop/dev/{NAME}"
VALUE = "sk_live_make-secret-must-never-print-this-4f9Q"  # 46 chars: fingerprinted
Run = Callable[..., tuple[int, str, str]]


class Terminal(io.StringIO):
    """stdin that is a terminal: the value comes from getpass, never from here."""

    def isatty(self) -> bool:
        return True


pytestmark = pytest.mark.usefixtures("offline_aws")  # tests/conftest.py: fake keys, moto


@pytest.fixture
def stage(tmp_path: Path) -> Callable[..., Path]:
    """``stage(**changes)``: dev.yaml with ``STRIPE_API_KEY: {secret: provided}`` and a worker reading it."""

    def write(**changes: Any) -> Path:
        data = {
            **DEV,
            "settings": {**DEV["settings"], NAME: {"secret": "provided"}, "DB_HOST": {"from": "database_host"}},
            "services": {
                "web": {"kind": "web"},
                "worker": {"kind": "worker", "command": ["celery", "worker"], "settings": ["LOG_LEVEL", NAME]},
            },
            **changes,
        }
        path = tmp_path / "dev.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


@pytest.fixture
def run(stage: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> Run:
    """``run(stdin, *extra_args, name=NAME, path=None, aws=None)`` -> (exit code, stdout, stderr)."""

    def call(
        stdin: io.StringIO, *extra: str, name: str = NAME, path: Path | None = None, aws: Any = None
    ) -> tuple[int, str, str]:
        argv = ["--config", str(path or stage()), "--name", name, *extra]
        code = secret.main(argv, stdin=stdin, aws=aws)
        out, err = capsys.readouterr()
        return code, out, err

    return call


def ssm() -> Any:
    return boto3.client("ssm", region_name=REGION)


def stored() -> dict[str, Any] | None:
    found = ssm().describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [PARAMETER]}])["Parameters"]
    return found[0] if found else None


def terminal(monkeypatch: pytest.MonkeyPatch, *entries: str) -> Terminal:
    answers = iter(entries)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    return Terminal()


# -- storing ---------------------------------------------------------------------------------------------------


def test_piped_value_is_stored_as_a_securestring(run: Run) -> None:
    code, out, _ = run(io.StringIO(VALUE + "\n"))  # printf '%s\n' / a file: one trailing newline dropped
    assert code == secret.STORED
    parameter = ssm().get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]
    assert (parameter["Type"], parameter["Value"], parameter["Version"]) == ("SecureString", VALUE, 1)
    meta = stored()
    assert meta is not None
    assert (meta["Tier"], meta["Description"]) == ("Standard", "provided setting, stored with make secret")
    assert (
        f"stored {PARAMETER}: version 1, SecureString (alias/aws/ssm, Standard tier), sha256 {fingerprint(VALUE)}"
        in (out)
    )


def test_banner_comes_first_on_stderr_and_says_where(run: Run) -> None:
    _, _, err = run(io.StringIO(VALUE))
    assert err.splitlines()[:3] == [
        "==> stage dev of shop: account 123456789012 (the caller's: the stage file names none), region eu-west-1",
        "==> caller arn:aws:sts::123456789012:user/moto",
        f"==> will write SecureString {PARAMETER} (key alias/aws/ssm)",
    ]
    assert "==> it does not exist yet: creating it" in err


def test_second_run_makes_version_2(run: Run) -> None:
    assert run(io.StringIO(VALUE))[0] == secret.STORED
    code, out, err = run(io.StringIO(VALUE + "-rotated"))
    assert code == secret.STORED
    assert f"stored {PARAMETER}: version 2," in out
    assert "==> it exists: version 1, SecureString, Standard tier; the new value becomes the next version" in err
    assert ssm().get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"] == VALUE + "-rotated"


def test_output_names_version_and_fingerprint_never_the_value(run: Run) -> None:
    code, out, err = run(io.StringIO(VALUE))
    assert code == secret.STORED
    seen = out + err
    assert PARAMETER in seen and "version 1" in seen and f"sha256 {fingerprint(VALUE)}" in seen
    assert VALUE not in seen and VALUE[:12] not in seen


def test_output_says_what_happens_next(run: Run) -> None:
    _, out, _ = run(io.StringIO(VALUE))
    assert (
        f"next: web and worker read {NAME}; the stage's roll-out restarts them automatically after the change "
        "(ECS starts a new deployment)" in out
    )
    assert "check: make doctor STAGE=dev shows any service still running on the old version" in out


def test_a_short_value_shows_its_length_not_a_fingerprint(run: Run) -> None:
    code, out, _ = run(io.StringIO("hunter2"))
    assert code == secret.STORED
    assert "7 chars, no fingerprint for a value under 24 characters" in out and fingerprint("hunter2") not in out


def test_typed_twice_at_a_terminal(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(terminal(monkeypatch, VALUE, VALUE))
    assert code == secret.STORED
    assert ssm().get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"] == VALUE
    assert VALUE not in out + err


def test_over_4_kib_uses_the_advanced_tier(run: Run) -> None:
    code, out, _ = run(io.StringIO("k" * 5000))
    assert code == secret.STORED
    assert stored() is not None and stored()["Tier"] == "Advanced"  # type: ignore[index]
    assert "(alias/aws/ssm, Advanced tier)" in out


# -- refusals --------------------------------------------------------------------------------------------------


def test_two_different_entries_are_refused(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run(terminal(monkeypatch, VALUE, VALUE + "x"))
    assert code == secret.REFUSED and stored() is None
    assert f"[provided-secret-missing] settings.{NAME}: the two entries differ — nothing stored" in err
    assert VALUE not in out + err


def test_an_empty_value_is_refused(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    for stdin in (io.StringIO(""), io.StringIO("\n"), terminal(monkeypatch, "")):
        code, _, err = run(stdin)
        assert code == secret.REFUSED and stored() is None
        assert f"[provided-secret-missing] settings.{NAME}: an empty value" in err


def test_a_value_over_8_kib_is_refused(run: Run) -> None:
    code, _, err = run(io.StringIO("k" * 8193))
    assert code == secret.REFUSED and stored() is None
    assert f"[provided-secret-missing] settings.{NAME}: a value of 8193 bytes — Parameter Store holds at most 8192" in (
        err
    )


@pytest.mark.parametrize(
    ("name", "line"),
    [
        (
            "SECRET_KEY",
            "[provided-secret-missing] settings.SECRET_KEY: {secret: generated} — the deploy manages this value; "
            "only {secret: provided} settings are stored with make secret",
        ),
        (
            "DATABASE_URL",
            "[provided-secret-missing] settings.DATABASE_URL: {secret: database_url} — the deploy manages this value",
        ),
        ("DB_HOST", "[provided-secret-missing] settings.DB_HOST: {from: database_host} — the deploy manages this"),
        (
            "SENTRY_DSN",
            "[provided-secret-missing] settings.SENTRY_DSN: not a setting of stage dev — add SENTRY_DSN: "
            "{secret: provided} under settings: in config/stages/dev.yaml",
        ),
        ("LOG_LEVEL", "[provided-secret-missing] settings.LOG_LEVEL: a plain setting — "),
    ],
)
def test_a_name_that_is_not_a_provided_setting_is_refused(run: Run, name: str, line: str) -> None:
    code, _, err = run(io.StringIO(VALUE), name=name)
    assert code == secret.REFUSED
    assert err.strip().startswith(line)
    assert len(err.strip().splitlines()) == 1  # one line, before any AWS call
    assert not ssm().describe_parameters()["Parameters"]


def test_a_value_given_as_the_name_is_not_echoed(run: Run) -> None:
    code, out, err = run(io.StringIO(""), name=VALUE)
    assert code == secret.REFUSED
    assert "[provided-secret-missing] settings.<name>: <hidden: 46 chars, sha256" in err
    assert VALUE not in out + err


def test_no_name_lists_the_provided_settings(run: Run) -> None:
    code, _, err = run(io.StringIO(VALUE), name="")
    assert code == secret.REFUSED
    assert err.strip() == (
        "[provided-secret-missing] settings.<name>: no NAME given — make secret STAGE=dev NAME=<setting>; the "
        f"stage's {{secret: provided}} settings: {NAME}"
    )


def test_credentials_of_another_account_are_refused(run: Run, stage: Callable[..., Path]) -> None:
    code, _, err = run(io.StringIO(VALUE), path=stage(account="111111111111"))
    assert code == secret.REFUSED and stored() is None
    assert "==> stage dev of shop: account 111111111111, region eu-west-1" in err  # shown first
    assert (
        f"cannot store {PARAMETER}: [region-mismatch] account: 123456789012 — the credentials are for account "
        "123456789012, the stage file pins 111111111111" in err
    )


def test_a_plain_string_parameter_in_the_way_is_refused(run: Run) -> None:
    ssm().put_parameter(Name=PARAMETER, Value="typed-by-hand", Type="String")
    code, _, err = run(io.StringIO(VALUE))
    assert code == secret.REFUSED
    assert f"{PARAMETER} exists as a String (stored in plain text) — delete it" in err


def test_an_aws_error_prints_its_code_and_the_name_only(run: Run) -> None:
    """The error's message quotes the value (as a validation error could): only its code is printed."""

    class Source:
        default_region = REGION

        def __init__(self) -> None:
            self.ssm = boto3.client("ssm", region_name=REGION)
            self.stub = Stubber(self.ssm)
            self.stub.add_response("describe_parameters", {"Parameters": []})
            self.stub.add_client_error(
                "put_parameter", service_error_code="AccessDeniedException", service_message=f"no: {VALUE}"
            )
            self.stub.activate()

        def client(self, service: str, region: str) -> Any:
            return self.ssm if service == "ssm" else boto3.client(service, region_name=region)

    code, out, err = run(io.StringIO(VALUE), aws=Source())
    assert code == secret.AWS_FAILED
    assert (
        f"cannot store {PARAMETER}: AccessDeniedException on PutParameter — the caller may not ssm:PutParameter" in err
    )
    assert VALUE not in out + err


def test_no_credentials_is_one_line(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    code, _, err = run(io.StringIO(VALUE))
    assert code == secret.REFUSED
    assert f"cannot store {PARAMETER}: [local-credentials] no AWS credentials found" in err
    assert "Traceback" not in err


# -- the value never comes from the command line ---------------------------------------------------------------


def test_the_parser_has_no_option_for_the_value() -> None:
    options = {o for action in secret.parser()._actions for o in action.option_strings}
    assert options == {"-h", "--help", "--stage", "--config", "--name"}
    assert not [a for a in secret.parser()._actions if not a.option_strings]  # no positional argument either


def test_an_extra_argument_is_refused_without_being_echoed(run: Run) -> None:
    code, out, err = run(io.StringIO(VALUE), "--value", VALUE)
    assert code == secret.REFUSED and stored() is None
    assert "2 unexpected argument(s), not shown" in err
    assert VALUE not in out + err


def test_the_make_target_passes_only_stage_and_name() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^secret:.*?\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target is not None, "no secret: target in the Makefile"
    command = target.group(1).splitlines()[-1]
    assert command.strip() == '@$(BIN)/python -m tools.secret --stage $(STAGE) --name "$(NAME)"'
