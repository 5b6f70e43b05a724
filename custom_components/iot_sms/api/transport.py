"""One HTTP exchange with a provider, and what its failures say about the request.

Every client talks to its provider through `exchange`: it holds the client's rate-limit slots
for the request, reads the whole body, and turns aiohttp's failures into the typed errors of
`errors.py` by what they prove:

- the connection never opened (`NeverConnected`): nothing reached the provider, so even a send
  is safe to repeat;
- the connection did not open in time: `ConnectionFailed`, nothing was sent either;
- no answer in time, or a connection that broke once open: a send may have been carried out
  (`DeliveryUnknown`, which is never retried, so a device never gets a command twice); a GET
  that broke (`ReadBroken`) is safe to repeat; anything else is `ConnectionFailed`.

Which of these a client repeats is its own retry rule; both special cases are
`ConnectionFailed`, so a client that repeats nothing needs no extra handling.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final

import aiohttp
from yarl import URL

from .errors import ConnectionFailed, DeliveryUnknown
from .values import as_float, utc

USER_AGENT: Final = "HomeAssistant-iot_sms"


@dataclass(frozen=True, slots=True)
class Peer:
    """Whom requests go to, as error texts name it."""

    label: str
    """The provider's name in error texts ("emnify", "1NCE", "Twilio", ...)."""
    unsure: str = "the SMS may have been sent"
    """What a send that got no answer may have done, said with DeliveryUnknown."""


@dataclass(frozen=True, slots=True)
class Response:
    """A provider's complete answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    label: str
    """Who answered, for error texts."""

    @property
    def ok(self) -> bool:
        """Whether the status is a success (2xx)."""
        return HTTPStatus.OK <= self.status < HTTPStatus.MULTIPLE_CHOICES

    def json(self) -> Any:
        """The decoded body; ConnectionFailed when it is no JSON (a proxy's page, a cut body)."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError) as err:
            raise ConnectionFailed(
                f"{self.label} answered HTTP {self.status} with a body that is not JSON"
            ) from err


class NeverConnected(ConnectionFailed):
    """The connection could not be opened: the request provably did not reach the provider."""


class ReadBroken(ConnectionFailed):
    """A read (GET) failed in transit; reads are safe to repeat."""


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    *,
    peer: Peer,
    timeouts: aiohttp.ClientTimeout,
    slots: Sequence[AbstractAsyncContextManager[object]] = (),
    send: bool = False,
    subject: str = "",
    params: Mapping[str, str] | None = None,
    json_body: Any = None,
    data: Mapping[str, str] | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    allow_redirects: bool = True,
) -> Response:
    """One request, holding `slots` (rate limiters, locks) until its answer is read.

    `send` marks a request that may act (an SMS, a cancel): failures after the connection
    opened are DeliveryUnknown. `subject` names the request in a timeout ("the
    authentication"). See the module doc for the mapping.
    """
    try:
        async with AsyncExitStack() as held:
            for slot in slots:
                await held.enter_async_context(slot)
            resp = await held.enter_async_context(
                session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=headers,
                    timeout=timeouts,
                    allow_redirects=allow_redirects,
                )
            )
            response = Response(resp.status, resp.headers, await resp.read(), peer.label)
    except aiohttp.ClientConnectorError as err:
        raise NeverConnected(f"cannot reach {peer.label}: {err}") from err
    except aiohttp.ConnectionTimeoutError as err:
        raise ConnectionFailed(f"{peer.label} did not accept the connection in time") from err
    except TimeoutError as err:
        answer = f"answer {subject}" if subject else "answer"
        late = f"{peer.label} did not {answer} in time"
        if send:
            raise DeliveryUnknown(f"{late}; {peer.unsure}") from err
        raise ConnectionFailed(late) from err
    except aiohttp.ClientError as err:
        if send:
            raise DeliveryUnknown(
                f"the connection to {peer.label} broke; {peer.unsure} ({err})"
            ) from err
        if method == "GET":
            raise ReadBroken(f"the connection to {peer.label} broke: {err}") from err
        raise ConnectionFailed(f"the connection to {peer.label} broke: {err}") from err
    return response


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, given as a number or an HTTP date (RFC 9110, 10.2.3).

    None when absent or unreadable (a negative number included); a date in the past is 0.
    """
    if not value or not value.strip():
        return None
    seconds = as_float(value)
    if seconds is not None:
        return seconds if seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return max(0.0, (utc(when) - datetime.now(UTC)).total_seconds())


def retry_delay(value: str | None, default: float, cap: float) -> float:
    """How long to wait before repeating a request refused with 429: Retry-After, capped."""
    seconds = retry_after(value)
    return min(default if seconds is None else seconds, cap)


async def repeat_after_429(
    attempt: Callable[[], Awaitable[Response]], *, default: float, cap: float
) -> Response:
    """`attempt`, made once more after a 429: a refusal, so nothing was done yet.

    The pause is Retry-After (else `default`), capped at `cap`; a second 429 is returned.
    """
    response = await attempt()
    if response.status != HTTPStatus.TOO_MANY_REQUESTS:
        return response
    await asyncio.sleep(retry_delay(response.headers.get("Retry-After"), default, cap))
    return await attempt()
