"""A cached bearer token: fetched once for all concurrent callers, renewed before it expires.

emnify (a JWT from the application token), 1NCE and KORE (OAuth2 client credentials) hand out
tokens that last an hour or more; asking for one per request would spend the providers'
authentication limits, so each client keeps one here. `with_token` is the retry rule emnify
and 1NCE apply to every call made with one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

from .transport import NeverConnected, ReadBroken, Response


@dataclass(frozen=True, slots=True)
class Grant:
    """A token as the provider issued it."""

    token: str
    lifetime: float
    """Seconds from now until it expires (zero or less: it is already stale)."""


class TokenCache:
    """The current token, renewed `margin` before it expires (or after half its lifetime)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Grant]],
        *,
        margin: float,
        clock: Callable[[], float],
    ) -> None:
        """Fetch nothing yet: the first `get` does."""
        self._fetch = fetch
        self._margin = margin
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    def _valid(self) -> str | None:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        return None

    async def get(self) -> str:
        """A valid token; concurrent callers wait for the one fetch already under way."""
        token = self._valid()
        if token is None:
            async with self._lock:
                token = self._valid() or await self._renew()
        return token

    async def forget(self, stale: str) -> None:
        """Drop a token the provider rejected, unless another caller already replaced it."""
        async with self._lock:
            if self._token == stale:
                self._token = None

    async def _renew(self) -> str:
        grant = await self._fetch()
        lifetime = grant.lifetime
        # Not at the last moment: a request sent just before expiry would still be refused.
        self._renew_at = self._clock() + max(0.0, lifetime - self._margin, lifetime / 2)
        self._token = grant.token
        return grant.token


async def with_token(tokens: TokenCache, attempt: Callable[[str], Awaitable[Response]]) -> Response:
    """`attempt` with a valid token, repeated only where that provably cannot act twice.

    A 401 gets one renewal (the token was refused before anything happened); a connection
    that never opened, or a read that broke, gets one more try. Any other answer is
    returned, a second 401 included; everything else `attempt` raises propagates.
    """
    renewed = reconnected = False
    while True:
        token = await tokens.get()
        try:
            response = await attempt(token)
        except (NeverConnected, ReadBroken):
            if reconnected:
                raise
            reconnected = True
            continue
        if response.status == HTTPStatus.UNAUTHORIZED and not renewed:
            renewed = True
            await tokens.forget(token)
            continue
        return response
