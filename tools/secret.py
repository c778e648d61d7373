"""``make secret STAGE=prod NAME=STRIPE_API_KEY``: store the value of a ``{secret: provided}`` setting.

The value never comes from the command line (shell history, ``ps``): typed twice at a prompt that does not echo
it, or read whole from stdin (``printf %s "$KEY" | make secret ...``, ``make secret ... < file``; one trailing
newline is dropped). It is written as the SecureString ``/<app>/<stage>/<NAME>`` (key ``alias/aws/ssm``) in the
stage's region; the deploy never writes a provided value, it only checks it exists (provided-secret-missing).

Before reading the value it shows, on stderr, the account, region, caller and parameter it will write, and
refuses credentials for another account than the stage file names (the rule ``make deploy`` applies,
``doctor.gate``). Nothing it prints contains the value: the result names the parameter, its new version and a
short sha256 fingerprint (a value under 24 characters: its length only, see ``config.redact.hidden``).

Exit codes: 0 stored, 1 AWS refused or failed the write, 2 usage, stage file, setting or value refused, or no
usable credentials (nothing was written).
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from config.redact import FINGERPRINT_MIN_CHARS, fingerprint, hidden, looks_secret
from config.schema import AppConfig, SecretRef, parameter_kind
from doctor.aws import ACCESS_DENIED, BAD_CREDENTIALS, THROTTLED, Aws, error_code, explain
from doctor.checks.identity import whoami
from doctor.model import ClientSource
from tools.stage_file import stage_from

STORED, AWS_FAILED, REFUSED = 0, 1, 2
ID = "provided-secret-missing"
STANDARD_MAX_BYTES = 4096  # Parameter Store standard tier
ADVANCED_MAX_BYTES = 8192  # advanced tier: the largest value Parameter Store holds
DESCRIPTION = "provided setting, stored with make secret"
DEFAULT_KEY = "alias/aws/ssm"
SETTING_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,127}")


class Refused(Exception):
    """A refusal: one line ``[id] <path>: <what> — <fix>`` on stderr, exit code ``code``."""

    def __init__(self, line: str, code: int = REFUSED) -> None:
        super().__init__(line)
        self.line = line
        self.code = code


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.secret",
        description="Store the value of a {secret: provided} setting as the SecureString /<app>/<stage>/<NAME>. "
        "The value is typed at a prompt without echo (twice) or read from stdin, never taken from arguments.",
        epilog="exit codes: 0 stored, 1 AWS error, 2 usage/config/credentials (nothing written)",
    )
    p.add_argument("--stage", help="stage whose setting it is: reads config/stages/<stage>.yaml")
    p.add_argument("--config", metavar="PATH", help="stage file to read instead of config/stages/<stage>.yaml")
    p.add_argument("--name", required=True, help="the setting, e.g. STRIPE_API_KEY (declared {secret: provided})")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    aws: ClientSource | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the command; ``aws`` replaces the default boto3 session and ``stdin`` sys.stdin (tests)."""
    try:
        args, unexpected = parser().parse_known_args(argv)
    except SystemExit as stop:  # argparse already printed usage and the problem
        return STORED if not stop.code else REFUSED
    if unexpected:  # not echoed: a value typed on the command line is what they would be
        print(
            f"make secret: {len(unexpected)} unexpected argument(s), not shown — the value is typed at the prompt "
            "or piped on stdin, never passed as an argument (if one was the value, it is in your shell history "
            "now: rotate it)",
            file=sys.stderr,
        )
        return REFUSED
    config = stage_from(args, command="secret", what="cannot store a secret")
    if config is None:
        return REFUSED
    try:
        return _store(config, args.name, aws, stdin if stdin is not None else sys.stdin)
    except Refused as refused:
        print(refused.line, file=sys.stderr)
        return refused.code


def provided_setting(config: AppConfig, name: str) -> None:
    """Refuse ``name`` unless it is a ``{secret: provided}`` setting of the stage."""
    where = f"config/stages/{config.stage}.yaml"
    provided = [n for n, kind in config.parameter_settings.items() if kind == "provided"]
    if not name:
        raise Refused(
            f"[{ID}] settings.<name>: no NAME given — make secret STAGE={config.stage} NAME=<setting>; the stage's "
            f"{{secret: provided}} settings: {', '.join(provided) or 'none yet'}"
        )
    if not SETTING_NAME.fullmatch(name) or looks_secret("", name):
        # Never echo it: a value typed where the name belongs is the mistake this guards against.
        raise Refused(
            f"[{ID}] settings.<name>: {hidden(name)} is not a setting name — pass NAME=<UPPER_SNAKE_CASE setting>; "
            "the value is typed at the prompt or piped on stdin, never passed as an argument"
        )
    setting = config.settings.get(name)
    if setting is None:
        raise Refused(
            f"[{ID}] settings.{name}: not a setting of stage {config.stage} — add {name}: {{secret: provided}} "
            f"under settings: in {where}, then run make secret again"
        )
    if isinstance(setting, str):
        raise Refused(
            f"[{ID}] settings.{name}: a plain setting — a plain value lives in the stage file; for a value the "
            f"team supplies write {name}: {{secret: provided}} under settings: in {where}, then run make secret"
        )
    kind = parameter_kind(setting)
    if kind != "provided":
        shown = f"{{secret: {kind}}}" if isinstance(setting, SecretRef) else f"{{from: {kind}}}"
        raise Refused(
            f"[{ID}] settings.{name}: {shown} — the deploy manages this value; only {{secret: provided}} settings "
            "are stored with make secret"
        )


def _store(config: AppConfig, name: str, aws: ClientSource | None, stdin: TextIO) -> int:
    provided_setting(config, name)
    parameter = config.parameter_name(name)
    try:
        source = aws if aws is not None else Aws()
        identity = whoami(source, config.region)
    except Exception as error:  # no / expired credentials, unknown profile, no network: one line
        raise Refused(f"cannot store {parameter}: [local-credentials] {explain(error)}") from None
    account = config.account or f"{identity.account} (the caller's: the stage file names none)"
    print(
        f"==> stage {config.stage} of {config.app}: account {account}, region {config.region}\n"
        f"==> caller {identity.arn}\n"
        f"==> will write SecureString {parameter} (key {DEFAULT_KEY})",
        file=sys.stderr,
    )
    if config.account and config.account != identity.account:
        raise Refused(
            f"cannot store {parameter}: [region-mismatch] account: {identity.account} — the credentials are for "
            f"account {identity.account}, the stage file pins {config.account}; switch profile (AWS_PROFILE=... "
            "or aws sso login) to that account"
        )
    ssm = source.client("ssm", config.region)
    existing = _metadata(ssm, parameter)
    if existing:
        print(
            f"==> it exists: version {existing.get('Version', '?')}, {existing.get('Type')}, "
            f"{existing.get('Tier', 'Standard')} tier; the new value becomes the next version",
            file=sys.stderr,
        )
    else:
        print("==> it does not exist yet: creating it", file=sys.stderr)
    if existing and existing.get("Type") != "SecureString":
        raise Refused(
            f"[{ID}] settings.{name}: {parameter} exists as a {existing.get('Type')} (stored in plain text) — "
            f"delete it (aws ssm delete-parameter --name {parameter} --region {config.region}), rotate the value "
            "it held, then run make secret again"
        )

    value = read_value(name, stdin)
    size = len(value.encode("utf-8"))
    if size > ADVANCED_MAX_BYTES:
        raise Refused(
            f"[{ID}] settings.{name}: a value of {size} bytes — Parameter Store holds at most {ADVANCED_MAX_BYTES} "
            "bytes (advanced tier); nothing stored. Store a larger secret elsewhere (e.g. Secrets Manager, "
            "an encrypted S3 object) and put its reference in a plain setting"
        )
    # Advanced above 4 KiB; an advanced parameter can never go back to standard, so it stays advanced.
    tier = "Advanced" if size > STANDARD_MAX_BYTES or existing.get("Tier") == "Advanced" else "Standard"
    try:
        reply = ssm.put_parameter(
            Name=parameter,
            Value=value,
            Type="SecureString",
            Overwrite=True,
            Tier=tier,
            Description=DESCRIPTION,
        )
    except Exception as error:  # the message of a rejected call may quote parameters: code and name only
        raise Refused(f"cannot store {parameter}: {_failure(error, parameter)}", AWS_FAILED) from None
    version = reply.get("Version", "?")
    shown = (
        f"sha256 {fingerprint(value)}"
        if len(value) >= FINGERPRINT_MIN_CHARS
        else f"{len(value)} chars, no fingerprint for a value under {FINGERPRINT_MIN_CHARS} characters"
    )
    print(f"stored {parameter}: version {version}, SecureString ({DEFAULT_KEY}, {tier} tier), {shown}")
    for line in next_steps(config, name):
        print(line)
    return STORED


def read_value(name: str, stdin: TextIO) -> str:
    """The value: typed twice without echo when stdin is a terminal, else the whole of stdin minus one trailing
    newline. Refuses an empty value and two entries that differ."""
    if stdin.isatty():
        try:
            first = getpass.getpass(f"value of {name} (not shown): ")
            again = getpass.getpass(f"value of {name} again: ") if first else ""
        except (EOFError, KeyboardInterrupt):
            raise Refused(f"[{ID}] settings.{name}: interrupted — nothing stored") from None
        if not first:
            raise Refused(f"[{ID}] settings.{name}: an empty value — nothing stored; type the value at the prompt")
        if again != first:
            raise Refused(
                f"[{ID}] settings.{name}: the two entries differ — nothing stored; run make secret again "
                '(or pipe the value: printf %s "$VALUE" | make secret ...)'
            )
        return first
    raw = getattr(stdin, "buffer", None)  # the bytes, decoded as UTF-8 whatever the locale says
    try:
        value = raw.read().decode("utf-8") if raw is not None else stdin.read()
    except UnicodeDecodeError:
        raise Refused(f"[{ID}] settings.{name}: stdin is not UTF-8 text — nothing stored") from None
    if value.endswith("\r\n"):
        value = value[:-2]
    elif value.endswith("\n"):
        value = value[:-1]
    if not value:
        raise Refused(
            f"[{ID}] settings.{name}: an empty value on stdin — nothing stored; pipe the value "
            f'(printf %s "$VALUE" | make secret STAGE=... NAME={name}) or run it in a terminal to type it'
        )
    return value


def next_steps(config: AppConfig, name: str) -> list[str]:
    """What happens after the write: which services read it, who restarts them, how to check."""
    readers = [s for s in config.workloads if name in s.secrets]
    running = [s.name for s in readers if s.kind in ("web", "worker")]
    jobs = [s.name for s in readers if s.kind == "job"]
    if not readers:
        return [
            f"next: no service reads {name} yet (services.<name>.settings lists it, or no settings: list means all)",
        ]
    lines: list[str] = []
    if running:
        how = {
            "ecs": "ECS starts a new deployment",
            "eb": "Elastic Beanstalk redeploys its current version (web) and ECS a new deployment of its workers",
            "eks": "External Secrets syncs the Kubernetes Secret and Reloader restarts the pods",
        }
        ways = "; ".join(how[t] for t in config.targets if t in how) or "the stage has no target enabled"
        lines.append(
            f"next: {_names(running)} {'reads' if len(running) == 1 else 'read'} {name}; the stage's roll-out "
            f"restarts {'it' if len(running) == 1 else 'them'} automatically after the change ({ways})"
        )
    if jobs:
        lines.append(f"next: {_names(jobs)} {'reads' if len(jobs) == 1 else 'read'} it at the next run")
    if any(s.kind == "migrate" for s in readers):
        lines.append("next: the migration step reads it at the next deploy")
    lines.append(
        f"check: make doctor STAGE={config.stage} shows any service still running on the old version "
        "(secret-rollout-stale)"
    )
    return lines


def _names(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def _metadata(ssm: Any, parameter: str) -> dict[str, Any]:
    """The parameter's ``describe_parameters`` entry ({} when absent or not readable); its value is not read."""
    try:
        reply = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [parameter]}])
    except Exception:  # no ssm:DescribeParameters: the write still says what happened
        return {}
    found = [p for p in reply.get("Parameters", []) if p.get("Name") == parameter]
    return dict(found[0]) if found else {}


def _failure(error: BaseException, parameter: str) -> str:
    """One line for a failed put_parameter from the error code alone (an SDK message may echo the value)."""
    code = error_code(error)
    if not code:
        return f"{type(error).__name__} while calling PutParameter; nothing stored, re-run"
    if code in ACCESS_DENIED:
        hint = f"the caller may not ssm:PutParameter on {parameter} (and kms:Encrypt with {DEFAULT_KEY})"
    elif code in BAD_CREDENTIALS:
        hint = "credentials rejected: refresh them (aws sso login) and re-run"
    elif code in THROTTLED or code == "TooManyUpdates":
        hint = "too many requests; re-run in a minute"
    elif code == "ParameterLimitExceeded":
        hint = "the account's parameter quota is reached; delete unused parameters or raise the quota"
    elif code == "ParameterMaxVersionLimitExceeded":
        hint = "the oldest of its 100 versions has a label: remove it (aws ssm unlabel-parameter-version), re-run"
    else:
        hint = "nothing stored"
    return f"{code} on PutParameter — {hint}"


if __name__ == "__main__":
    sys.exit(main())
