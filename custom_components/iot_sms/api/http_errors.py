"""What a non-2xx HTTP answer means: which typed error it raises, and its text.

The REST clients read statuses the same way; only the words differ, so each client passes
its own `ErrorTexts` (the defaults used when the provider's body says nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from .errors import AuthError, ConnectionFailed, InvalidRequest, IotSmsError, NotFound, RateLimited


@dataclass(frozen=True, slots=True)
class ErrorTexts:
    """A client's default words for each kind of refusal."""

    refused: str
    """401 and 403: the credentials do not give access."""
    rate_limited: str
    not_found: str
    server_error: str
    rejected: str
    """Any other 4xx: the request itself was refused."""
    unexpected: str
    """Anything that is neither success nor an error status (1xx, 3xx)."""

    @classmethod
    def naming(cls, label: str) -> ErrorTexts:
        """The usual words, naming the provider: "emnify refused access", …."""
        return cls(
            refused=f"{label} refused access",
            rate_limited=f"{label} rate limit reached",
            not_found="not found",
            server_error=f"{label} server error",
            rejected=f"{label} rejected the request",
            unexpected=f"unexpected answer from {label}",
        )


def error_kind(status: int, texts: ErrorTexts) -> tuple[type[IotSmsError], str]:
    """The error type of a non-2xx status, and the default text to raise it with."""
    if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        return AuthError, texts.refused
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return RateLimited, texts.rate_limited
    if status == HTTPStatus.NOT_FOUND:
        return NotFound, texts.not_found
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return ConnectionFailed, texts.server_error
    if status >= HTTPStatus.BAD_REQUEST:
        return InvalidRequest, texts.rejected
    return ConnectionFailed, texts.unexpected


def status_text(status: int, message: str | None, code: str | None, default: str) -> str:
    """``message (code, HTTP status)``: the provider's words if it gave any, else default."""
    detail = f"{code}, HTTP {status}" if code else f"HTTP {status}"
    return f"{message or default} ({detail})"
