"""boto3 for the doctor: one session (the caller's default chain), adaptive retries, one-line errors."""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped, unused-ignore]
from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]
from botocore.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
    TokenRetrievalError,
    UnknownServiceError,
)

# Adaptive mode retries throttling with backoff and rate-limits the client; a check still catches what is left.
RETRIES = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="doctor",
)

ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "AuthorizationErrorException",
        "UnauthorizedAccess",
        "Forbidden",
    }
)
BAD_CREDENTIALS = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "RequestExpired",
        "AuthFailure",
        "InvalidSignatureException",
    }
)
THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ThrottledException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)


class Aws:
    """Clients for one caller, cached per (service, region), all with ``RETRIES``."""

    def __init__(self, session: Any | None = None) -> None:
        self.session = session if session is not None else boto3.session.Session()
        self._clients: dict[tuple[str, str], Any] = {}

    @property
    def default_region(self) -> str | None:
        region = self.session.region_name
        return str(region) if region else None

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.session.client(service, region_name=region, config=RETRIES)
        return self._clients[key]


def error_code(error: BaseException) -> str:
    """The AWS error code of a ``ClientError`` ('' for anything else)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def explain(error: BaseException) -> str:
    """One line for a failed AWS call: what happened and what to do, never a traceback."""
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found (env vars, ~/.aws, SSO, instance role); run `aws sso login` "
            "or set AWS_PROFILE, then check with `aws sts get-caller-identity`"
        )
    if isinstance(error, TokenRetrievalError):
        return f"SSO token could not be refreshed ({error.kwargs.get('provider', 'sso')}); run `aws sso login`"
    if isinstance(error, NoRegionError):
        return "no region: pass --region or set region in the stage file"
    if isinstance(error, EndpointConnectionError):
        return (
            f"cannot reach {error.kwargs.get('endpoint_url', 'the endpoint')}: unknown region for this "
            "service, no network, or a proxy in the way"
        )
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        return f"AWS did not answer in time ({error.kwargs.get('endpoint_url', '?')}); re-run later"
    if isinstance(error, UnknownServiceError):
        return f"botocore does not know this service: {error}; upgrade boto3"
    if isinstance(error, ClientError):
        code = error_code(error)
        operation = error.operation_name
        message = str(error.response.get("Error", {}).get("Message", "")).splitlines()[0:1]
        text = message[0] if message else ""
        if code in ACCESS_DENIED:
            return f"access denied for {operation}: the caller lacks this read permission ({text})"
        if code in BAD_CREDENTIALS:
            return f"credentials rejected ({code}): expired or invalid; refresh them (`aws sso login`) and re-run"
        if code in THROTTLED:
            return f"throttled by AWS on {operation} even after retries with backoff; re-run in a minute"
        return f"{operation} failed: {code}: {text}".rstrip(": ")
    if isinstance(error, BotoCoreError):
        return f"AWS SDK error: {str(error).splitlines()[0]}"
    return f"unexpected {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
