"""``make logs STAGE=dev [SERVICE=worker] [SINCE=10m] [FOLLOW=1] [TARGET=ecs|eb|eks]``: a service's CloudWatch logs.

First, on stderr: the stage, its account and region, the caller, and the log group (and stream prefix) it reads;
credentials for another account than the stage file names are refused, as ``make deploy`` refuses them
(``doctor.gate``). Then, on stdout, the service's log events, oldest first, one line each:
``<timestamp UTC> <stream short name> <message>``.

Where the logs are: the compute stacks' output ``LogGroups`` (``{service name: log group name}`` on
``<app>-<stage>-ecs``, ``-eb``, ``-eks``). ``SERVICE`` defaults to the web service, ``TARGET`` to the first enabled
target that runs the service. On ECS (and the Fargate tasks of the EB stack) each service has its own group and its
streams are ``<service>/app/<task id>``; Elastic Beanstalk's web container writes to a group EB names itself, one
stream per instance; on EKS every pod writes to one group, ``fargate-kube.var.log.containers.<pod name>_...``, and a
service's pods are named after its Deployment / CronJob / Job (``<app>`` for web, ``<app>-<service>`` otherwise).

Nothing secret is printed: the stage's SecureString values (read once, when the caller may, and never shown),
``key=value`` / ``"key": "value"`` pairs whose key looks secret, ``Bearer`` tokens, URL passwords and well-known
key shapes (``config.redact``) are replaced by ``<hidden: N chars[, sha256 …]>``.

Exit codes: 0 done (FOLLOW: stopped with Ctrl-C), 1 AWS failed while reading, 2 stage file, service, target,
credentials, missing stack or log group (one line, no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from config import ConfigError, load_config
from config.kinds import SECRET_KINDS
from config.redact import CREDENTIAL_URL, SECRET_VALUE, hidden, looks_secret, show
from config.schema import AppConfig
from config.services import Service
from doctor.aws import Aws, error_code, explain
from doctor.checks.identity import describe_stack, whoami
from doctor.model import ClientSource

OK, FAILED, REFUSED = 0, 1, 2
TARGETS = ("ecs", "eb", "eks")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SINCE = re.compile(r"(\d{1,6})([smhd])")
DEFAULT_SINCE = "10m"
POLL_SECONDS = 2.0
EKS_STREAMS = "fargate-kube.var.log.containers."  # Fluent Bit's log_stream_prefix + the container log's tag
CONTAINER = "app"  # constructs.service_task.CONTAINER: ECS streams are <service>/app/<task id>
GET_PARAMETERS_BATCH = 10  # ssm:GetParameters takes at most 10 names
SHORT_VALUE = 8  # shorter known values are masked as whole words only (a 4-char value inside a word is chance)


class Refused(Exception):
    """One line on stderr and exit ``code``."""

    def __init__(self, line: str, code: int = REFUSED) -> None:
        super().__init__(line)
        self.line = line
        self.code = code


def refused(rule: str, path: str, text: str) -> Refused:
    return Refused(f"cannot read logs: [{rule}] {path}: {text}")


# ---------------------------------------------------------------------------------------------- what to read


def parse_since(text: str) -> int:
    """``30s``, ``10m``, ``2h``, ``1d`` in seconds."""
    match = SINCE.fullmatch(text.strip())
    if not match or int(match[1]) == 0:
        raise refused("config", "SINCE", f"{show(text)} — a positive number and a unit: 30s, 10m, 2h or 1d")
    return int(match[1]) * UNITS[match[2]]


def pick_service(config: AppConfig, name: str | None) -> Service:
    """The service called ``name`` (default: the web service)."""
    if not name:
        return config.web
    for service in config.workloads:
        if service.name == name:
            return service
    known = ", ".join(s.name for s in config.workloads)
    raise refused("config", "SERVICE", f"{show(name)} — not a service of stage {config.stage}; its services: {known}")


def pick_target(config: AppConfig, service: Service, target: str | None) -> str:
    """``target`` if enabled and running ``service``, else the first enabled target that runs it."""
    enabled = ", ".join(config.targets) or "none"
    if target:
        if target not in TARGETS:
            raise refused("config", "TARGET", f"{show(target)} — one of {', '.join(TARGETS)}")
        if target not in config.targets:
            raise refused("config", "TARGET", f"{target!r} — not enabled in stage {config.stage} (targets: {enabled})")
        if not service.runs_on(target):
            raise refused(
                "config", "TARGET", f"{target!r} — {service.kind} {service.name} runs on {service.target} only"
            )
        return target
    for candidate in config.targets:
        if service.runs_on(candidate):
            return candidate
    raise refused(
        "config", "targets", f"[{enabled}] — no enabled target runs {service.name}; add one to targets: and deploy"
    )


def deployment_name(config: AppConfig, service: Service) -> str:
    """The Kubernetes object a service's pods are named after (k8s/app_chart.py, k8s/service_chart.py)."""
    return config.app if service.is_web else f"{config.app}-{service.name}"


@dataclass(frozen=True)
class Streams:
    """Which streams of the group are the service's: a name prefix, minus other services' prefixes."""

    prefix: str | None = None
    exclude: tuple[str, ...] = ()

    def match(self, stream: str) -> bool:
        if self.prefix and not stream.startswith(self.prefix):
            return False
        return not any(stream.startswith(other) for other in self.exclude)

    def describe(self) -> str:
        return f", streams {self.prefix}*" if self.prefix else ""


def streams_of(config: AppConfig, service: Service, target: str) -> Streams:
    if target == "eks":
        # Web's pods are <app>-<hash>-<id>: that prefix also matches <app>-<worker>-..., which are excluded.
        others = tuple(
            f"{EKS_STREAMS}{deployment_name(config, s)}-"
            for s in config.workloads
            if s is not service and s.runs_on("eks") and not s.is_web
        )
        return Streams(f"{EKS_STREAMS}{deployment_name(config, service)}-", others if service.is_web else ())
    if target == "eb" and service.is_web:
        return Streams()  # the group of EB's web container log: one stream per instance
    return Streams(f"{service.name}/{CONTAINER}/")


def short_stream(stream: str) -> str:
    """The pod name (EKS), the task id's first 8 characters (ECS), else the stream's last path segment."""
    if stream.startswith(EKS_STREAMS):
        return stream[len(EKS_STREAMS) :].split("_", 1)[0]
    parts = stream.split("/")
    if len(parts) == 3 and parts[1] == CONTAINER:
        return parts[2][:8]
    return parts[-1]


def log_group_of(config: AppConfig, aws: ClientSource, service: Service, target: str) -> tuple[str, str]:
    """(stack name, log group) from the target stack's ``LogGroups`` output."""
    stack = config.stack_name(target)
    info = describe_stack(aws.client("cloudformation", config.region), stack)
    deploy = f"make deploy STAGE={config.stage}"
    if info is None:
        raise refused(
            "logs-missing",
            stack,
            f"not deployed in {config.region} — {target} is in targets but its stack is not: run {deploy}",
        )
    raw = info.outputs.get("LogGroups")
    try:
        groups = json.loads(raw) if raw else None
    except ValueError:
        groups = None
    if not isinstance(groups, dict):
        raise refused(
            "logs-missing",
            stack,
            f"{info.status}, without a LogGroups output — deployed by an older version of this repository; "
            f"run {deploy}",
        )
    group = groups.get(service.name)
    if not isinstance(group, str) or not group:
        raise refused(
            "logs-missing",
            f"{stack} LogGroups",
            f"no group for {service.name} (has: {', '.join(sorted(groups)) or 'none'}) — the deployed stack "
            f"predates this service; run {deploy}",
        )
    return stack, group


# ---------------------------------------------------------------------------------------------- masking


# key=value, key: value, "key": "value" (also as escaped JSON inside a JSON string).
PAIR = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<kq>\\?[\"']?)(?P<sep>\s*[=:]\s*)"
    r"(?:(?P<q>\\?[\"'])(?P<qvalue>(?!<hidden: )[^\"']*)(?P=q)|(?P<value>(?!<hidden: )[^\s\"',;&}\])\\]+))"
)
# Authorization header values; Basic only before something base64-like (a capital after the first letter, a digit,
# +, / or =), so "Basic authentication failed" stays readable.
BEARER = re.compile(
    r"\b(?P<scheme>[Bb]earer|[Bb]asic(?=\s+(?:[0-9+/=]|[A-Za-z][a-z]*[A-Z0-9+/=])))(?P<space>\s+)"
    r"(?P<value>[A-Za-z0-9._~+/=-]{8,})"
)
PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL)
TOKEN = re.compile(r"[^\s\"'`,;()\[\]{}<>=]+")
URL_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^/@\s:]*:)(?P<value>[^/@\s]+)(?P<at>@)", re.IGNORECASE)


class Masker:
    """Replaces every secret-looking part of a log line; ``known`` are values that must never show."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for value in known:
            if not value:
                continue
            values.add(value)
            password = URL_PASSWORD.match(value)
            if password:  # the password of a composed URL, on its own and URL-decoded/encoded
                values.update({password["value"], quote(password["value"], safe="")})
        ordered = sorted(values, key=len, reverse=True)
        self._long = [v for v in ordered if len(v) >= SHORT_VALUE]
        self._short = [re.compile(rf"(?<![\w-]){re.escape(v)}(?![\w-])") for v in ordered if len(v) < SHORT_VALUE]

    def __call__(self, text: str) -> str:
        for value in self._long:
            if value in text:
                text = text.replace(value, hidden(value))
        for pattern in self._short:
            text = pattern.sub(lambda m: hidden(m[0]), text)
        text = PEM.sub(lambda m: hidden(m[0]), text)
        text = PAIR.sub(_pair, text)
        text = BEARER.sub(lambda m: f"{m['scheme']}{m['space']}{hidden(m['value'])}", text)
        return TOKEN.sub(_token, text)


def _pair(match: re.Match[str]) -> str:
    key = re.sub(r"[-.]", "_", match["key"])
    quoted = match["q"] is not None
    value = match["qvalue"] if quoted else match["value"]
    if not value or not looks_secret(key, value):
        return match[0]
    shown = f"{match['q']}{hidden(value)}{match['q']}" if quoted else hidden(value)
    return f"{match['key']}{match['kq']}{match['sep']}{shown}"


def _token(match: re.Match[str]) -> str:
    token = match[0]
    password = URL_PASSWORD.match(token)
    if password and CREDENTIAL_URL.match(token):
        return f"{password['head']}{hidden(password['value'])}{password['at']}{token[password.end() :]}"
    core = token.rstrip(".:!?")  # the end of a sentence is not part of a key
    return hidden(core) + token[len(core) :] if SECRET_VALUE.search(core) else token


def secret_values(config: AppConfig, aws: ClientSource) -> tuple[list[str], str]:
    """The stage's SecureString values (to mask them), and a note for the banner. Never printed."""
    names = {
        config.parameter_name(name): name for name, kind in config.parameter_settings.items() if kind in SECRET_KINDS
    }
    if not names:
        return [], "secret-looking values (the stage has no SecureString settings)"
    ssm = aws.client("ssm", config.region)
    values: list[str] = []
    wanted = sorted(names)
    try:
        for start in range(0, len(wanted), GET_PARAMETERS_BATCH):
            reply = ssm.get_parameters(Names=wanted[start : start + GET_PARAMETERS_BATCH], WithDecryption=True)
            values += [str(p.get("Value", "")) for p in reply.get("Parameters", [])]
    except Exception as error:  # a reader of logs may lack ssm:GetParameters / kms:Decrypt: shape-based only
        code = error_code(error) or type(error).__name__
        return [], (
            f"secret-looking values only: the stage's SecureString values could not be read ({code}), so one "
            "logged without a secret-looking key or shape is not recognised"
        )
    return values, f"secret-looking values and the stage's {len(values)} SecureString value(s)"


# ---------------------------------------------------------------------------------------------- reading


def _timestamp(millis: int) -> str:
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def format_event(event: Mapping[str, Any], mask: Callable[[str], str]) -> str:
    message = str(event.get("message", "")).rstrip("\r\n").replace("\r", "")
    message = mask(message).replace("\n", "\\n")
    return f"{_timestamp(int(event['timestamp']))} {short_stream(str(event.get('logStreamName', '')))} {message}"


def fetch(logs: Any, group: str, streams: Streams, start_ms: int) -> Iterator[dict[str, Any]]:
    """Every event of the service's streams from ``start_ms`` on, oldest first within each page."""
    request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    if streams.prefix:
        request["logStreamNamePrefix"] = streams.prefix
    while True:
        reply = logs.filter_log_events(**request)
        page = [e for e in reply.get("events", []) if streams.match(str(e.get("logStreamName", "")))]
        yield from sorted(page, key=lambda e: (int(e["timestamp"]), int(e.get("ingestionTime", 0))))
        token = reply.get("nextToken")
        if not token or token == request.get("nextToken"):
            return
        request["nextToken"] = token


@dataclass
class Cursor:
    """The newest timestamp printed and the ids printed at it: polling from it repeats none."""

    millis: int
    seen: set[str]

    def new(self, event: Mapping[str, Any]) -> bool:
        millis, event_id = int(event["timestamp"]), str(event.get("eventId", ""))
        if millis < self.millis or (millis == self.millis and event_id in self.seen):
            return False
        if millis > self.millis:
            self.millis, self.seen = millis, set()
        self.seen.add(event_id)
        return True


def stream_events(
    logs: Any,
    group: str,
    streams: Streams,
    cursor: Cursor,
    mask: Callable[[str], str],
    out: Any,
) -> int:
    count = 0
    for event in fetch(logs, group, streams, cursor.millis):
        if cursor.new(event):
            print(format_event(event, mask), file=out, flush=True)
            count += 1
    return count


def missing_group(config: AppConfig, stack: str, group: str, target: str, service: Service) -> Refused:
    if target == "eb" and service.is_web:
        why = (
            "Elastic Beanstalk creates it when the environment first streams its container log: check the "
            f"environment's health (make doctor STAGE={config.stage})"
        )
    else:
        why = (
            f"named by {stack}'s LogGroups output: deleted outside CloudFormation? run make deploy STAGE={config.stage}"
        )
    return refused("logs-missing", group, f"no such log group in {config.region} — {why}")


# ---------------------------------------------------------------------------------------------- command


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.logs",
        description="Print a service's CloudWatch log events, oldest first, secrets masked.",
        epilog="exit codes: 0 done or stopped with Ctrl-C, 1 AWS error while reading, 2 config/credentials/missing",
    )
    p.add_argument("--stage", help="reads config/stages/<stage>.yaml")
    p.add_argument("--config", metavar="PATH", help="stage file to read instead of config/stages/<stage>.yaml")
    p.add_argument("--service", help="a service of the stage (default: the web service)")
    p.add_argument("--since", default=DEFAULT_SINCE, help="how far back: 30s, 10m, 2h, 1d (default 10m)")
    p.add_argument("--follow", action="store_true", help=f"keep polling every {POLL_SECONDS:g} s until Ctrl-C")
    p.add_argument("--target", help="ecs, eb or eks (default: the first enabled target that runs the service)")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    aws: ClientSource | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.time,
) -> int:
    """Run the command; ``aws``, ``sleep`` and ``now`` are replaced in tests."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:  # argparse printed usage and the problem
        return OK if not stop.code else REFUSED
    following = False
    try:
        since = parse_since(args.since)
        if not args.stage and not args.config:
            raise refused("config", "STAGE", "not set — make logs STAGE=<stage> (python -m tools.logs --stage NAME)")
        try:
            config = load_config(args.stage, path=args.config)
        except ConfigError as error:
            error.print("cannot read logs")
            return REFUSED
        service = pick_service(config, args.service)
        target = pick_target(config, service, args.target)
        source = aws if aws is not None else Aws()
        try:
            identity = whoami(source, config.region)
        except Exception as error:  # no / expired credentials, unknown profile, no network
            raise refused("local-credentials", "caller", explain(error)) from None
        account = config.account or f"{identity.account} (the caller's: the stage file names none)"
        print(
            f"==> stage {config.stage} of {config.app}: account {account}, region {config.region}\n"
            f"==> caller {identity.arn}",
            file=sys.stderr,
        )
        if config.account and config.account != identity.account:
            raise refused(
                "region-mismatch",
                "account",
                f"{identity.account} — the credentials are for account {identity.account}, the stage file pins "
                f"{config.account}; switch profile (AWS_PROFILE=... or aws sso login) to that account",
            )
        stack, group = log_group_of(config, source, service, target)
        streams = streams_of(config, service, target)
        known, masking = secret_values(config, source)
        following = bool(args.follow)
        print(
            f"==> {service.name} on {target}: log group {group} (stack {stack}){streams.describe()}, since "
            f"{args.since.strip()}{', following (Ctrl-C stops)' if following else ''}\n"
            f"==> masked: {masking}",
            file=sys.stderr,
        )
        logs = source.client("logs", config.region)
        cursor = Cursor(int((now() - since) * 1000), set())
        mask = Masker(known)
        try:
            count = stream_events(logs, group, streams, cursor, mask, sys.stdout)
            if not count and not following:
                print(f"==> no log events of {service.name} in the last {args.since.strip()}", file=sys.stderr)
            while following:
                sleep(POLL_SECONDS)
                stream_events(logs, group, streams, cursor, mask, sys.stdout)
        except Exception as error:
            if error_code(error) == "ResourceNotFoundException":
                raise missing_group(config, stack, group, target, service) from None
            raise Refused(f"cannot read logs of {group}: {explain(error)}", FAILED) from None
    except Refused as problem:
        print(problem.line, file=sys.stderr)
        return problem.code
    except KeyboardInterrupt:
        return OK if following else 130
    except BrokenPipeError:  # `make logs | head`: the reader left
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    return OK


if __name__ == "__main__":
    sys.exit(main())
