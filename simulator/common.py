"""Fault injection, request log and callback sending shared by the provider simulators."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

_LOGGER = logging.getLogger("simulator")
CALLBACK_TIMEOUT = 10

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Faults:
    """Faults applied to incoming API requests (counters are consumed one per request).

    latency: seconds every matching answer is held back; the request is handled first, so a
    client that times out has nevertheless reached the provider (the realistic unknown case).
    server_errors / rate_limits: the next N matching requests are answered 500 / 429.
    drop_after_read: the next N matching requests have their body read, then the connection is
    closed without an answer (the request is NOT handled).
    lose_answers: the next N matching requests are handled (an SMS sent is stored), then the
    connection is closed without an answer: the client cannot know that it worked.
    token_ttl: lifetime of issued access tokens in seconds (for simulators that issue tokens).
    path_filter: faults apply only to request paths containing this string; None = every path.

    How the simulator writes the callbacks it sends (every callback, not only the next N):
    split_callbacks: a callback body goes out in this many TCP writes, `split_pause` seconds
    apart (0 or 1 = one write), as behind a reverse proxy or on a slow network.
    chunked_callbacks: callback bodies use Transfer-Encoding: chunked (one chunk per write)
    instead of a Content-Length.
    """

    latency: float = 0.0
    server_errors: int = 0
    rate_limits: int = 0
    drop_after_read: int = 0
    lose_answers: int = 0
    # (limit, window seconds): a provider's sliding-window request limit over every path;
    # requests over it are answered 429 and counted in `window_rejections`.
    window_limit: tuple[int, float] | None = None
    window_rejections: int = 0
    window_stamps: list[float] = field(default_factory=list, repr=False)
    token_ttl: float = 7 * 24 * 3600
    path_filter: str | None = None
    split_callbacks: int = 0
    split_pause: float = 0.05
    chunked_callbacks: bool = False

    def applies_to(self, path: str) -> bool:
        """Whether faults apply to a request path."""
        return self.path_filter is None or self.path_filter in path


@dataclass(frozen=True)
class RecordedRequest:
    """One request the simulator received (recorded before any fault is applied)."""

    method: str
    path: str
    query: Mapping[str, str]
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackAttempt:
    """One callback the simulator sent; status is None when the request failed."""

    method: str
    url: str
    status: int | None
    body: str
    error: str | None = None


def fault_middleware(
    faults: Faults,
    requests: list[RecordedRequest],
    *,
    rate_limit_body: Callable[[], web.StreamResponse] | None = None,
) -> Any:
    """Return an aiohttp middleware recording every request and applying `faults`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        requests.append(
            RecordedRequest(
                request.method,
                request.path,
                dict(request.query),
                body,
                {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            )
        )
        if faults.window_limit is not None:
            limit, window = faults.window_limit
            now = time.monotonic()
            stamps = faults.window_stamps
            stamps[:] = [stamp for stamp in stamps if stamp > now - window]
            if len(stamps) >= limit:
                faults.window_rejections += 1
                if rate_limit_body is not None:
                    return rate_limit_body()
                return web.json_response({"message": "Too Many Requests"}, status=429)
            stamps.append(now)
        if not faults.applies_to(request.path):
            return await handler(request)
        if faults.drop_after_read > 0:
            faults.drop_after_read -= 1
            if request.transport is not None:
                request.transport.close()
            # aiohttp fails to write this response and only logs the access; nothing is sent.
            return web.Response(status=500)
        response: web.StreamResponse
        if faults.server_errors > 0:
            faults.server_errors -= 1
            response = web.json_response({"message": "Internal server error"}, status=500)
        elif faults.rate_limits > 0:
            faults.rate_limits -= 1
            response = (
                rate_limit_body()
                if rate_limit_body is not None
                else web.json_response({"message": "Too Many Requests"}, status=429)
            )
        else:
            response = await handler(request)
            if faults.lose_answers > 0:
                faults.lose_answers -= 1
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)  # never written: the connection is gone
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        return response

    return middleware


def _split(body: bytes, pieces: int) -> list[bytes]:
    size = max(1, -(-len(body) // max(1, pieces)))
    return [body[start : start + size] for start in range(0, len(body), size)] or [b""]


async def _written_apart(pieces: list[bytes], pause: float) -> AsyncIterator[bytes]:
    """Yield the pieces with a pause between them: aiohttp writes each one on its own."""
    for number, piece in enumerate(pieces):
        if number:
            await asyncio.sleep(pause)
        yield piece


async def send_callback(
    session: aiohttp.ClientSession,
    log: list[CallbackAttempt],
    method: str,
    url: str,
    *,
    json_body: Any = None,
    data: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    faults: Faults | None = None,
) -> int | None:
    """Send one callback, record it in `log` and return the HTTP status (None on failure).

    With `faults.split_callbacks` / `faults.chunked_callbacks` the same body goes out in
    several writes and/or chunked. Never raises: a callback receiver that is down must not
    break the simulator.
    """
    if json_body is not None:
        body_text = json.dumps(json_body)
    elif data is not None:
        body_text = "&".join(f"{k}={v}" for k, v in data.items())
    else:
        body_text = ""
    request_headers = dict(headers or {})
    request_data: Any = data
    request_json: Any = json_body
    has_body = json_body is not None or data is not None
    if faults is not None and has_body and (faults.split_callbacks > 1 or faults.chunked_callbacks):
        if json_body is not None:
            raw = json.dumps(json_body).encode()
            request_headers.setdefault("Content-Type", "application/json")
        else:
            raw = urlencode(dict(data or {})).encode()
            request_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if not faults.chunked_callbacks:
            # A known length makes aiohttp write the pieces as they come, not chunked.
            request_headers["Content-Length"] = str(len(raw))
        request_data = _written_apart(_split(raw, faults.split_callbacks), faults.split_pause)
        request_json = None
    try:
        async with session.request(
            method,
            url,
            json=request_json,
            data=request_data,
            params=params,
            headers=request_headers,
            timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT),
        ) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as err:
        # A failing receiver is recorded, never raised.
        _LOGGER.info("Callback %s %s failed: %s", method, url, err)
        log.append(CallbackAttempt(method, url, None, body_text, repr(err)))
        return None
    _LOGGER.debug("Callback %s %s answered %s", method, url, status)
    log.append(CallbackAttempt(method, url, status, body_text))
    return status


class BackgroundWork:
    """What a simulator does beside answering requests: state steps, callbacks and expiries.

    `wait_idle` waits for the steps and callbacks, and for expiries due within its horizon;
    `_timers` (loop timers keyed by the simulator) are only cancelled on close.
    """

    def _init_background(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._expiry_tasks: dict[asyncio.Task[Any], float] = {}
        self._timers: dict[Any, asyncio.TimerHandle] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _spawn_expiry(
        self, coro: Coroutine[Any, Any, Any], delay: float, name: str | None = None
    ) -> asyncio.Task[Any]:
        loop = asyncio.get_running_loop()
        task = loop.create_task(coro, name=name)
        self._expiry_tasks[task] = loop.time() + delay
        task.add_done_callback(lambda t: self._expiry_tasks.pop(t, None))
        return task

    async def wait_idle(self, expiry_horizon: float = 5.0) -> None:
        """Wait for state steps and callbacks (and expiries due within `expiry_horizon` s)."""
        loop = asyncio.get_running_loop()
        while True:
            pending = {t for t in self._tasks if not t.done()}
            pending |= {
                t
                for t, due in self._expiry_tasks.items()
                if not t.done() and due - loop.time() <= expiry_horizon
            }
            if not pending:
                return
            await asyncio.wait(pending)

    async def _close_background(self) -> None:
        """Cancel every timer and task, close the callback session."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = [*self._tasks, *self._expiry_tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._expiry_tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
