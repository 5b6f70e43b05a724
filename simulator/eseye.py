"""Eseye SMS API simulator (AnyNet Messaging Service), see ``reference/eseye-sms-api.md``.

Realism notes (documented behaviour, plus the inferences the reference marks [INFERRED]):

* Three endpoints, POST only, form-encoded, credentials in the body. Every answer is HTTP 200
  with a text body. ``mtsmsapi`` answers ``OK!`` or ``Error<N>: <desc>`` (text/html);
  ``mtstatusapi`` answers ``<statusResponse>`` XML, its errors as XML whose description is
  ``ERROR N \u2013 <desc>``; ``mtcancelapi`` answers XML, its errors as plain
  ``ERROR N \u2013 <desc>`` (\u2013 = en dash, as the troubleshooting page prints it).
  So clients meet all three documented error styles.
* The body is decoded like a PHP backend would: percent-escapes become bytes and the bytes are
  read as Latin-1, so UTF-8 text arrives mangled and then fails the GSM 03.38 check (580).
* States: queued -> sent (every second message reports ``mgmt`` instead) -> delivered after
  ``delivery_delay`` ("online"/"echo" SIMs). "offline": stays sent until ``expiry`` (UTC,
  default 24 h), then status ``error`` and a ``failed`` receipt. "blocked": ``blocked`` at
  once and a ``failed`` receipt. A canceled message reports ``cancelled`` ("Message
  cancelled"): Eseye documents no value for it, so this one is inferred. Canceling sends no
  receipt (receipts only know delivered/failed).
* Receipts go to the message's ``receipt_url``: GET with ``messageid``, ``referenceid``,
  ``statuscode`` (the internal status: delivered, error, blocked) and ``status``
  (delivered|failed) in the query string, or the same as a form POST when
  ``receipt_method == "POST"``.
* MO SMS (echo SIMs, ``send_mo``) are form POSTs to ``mo_post_url`` with ``source``,
  ``destination`` (the API MSISDN), ``message_id`` and ``text`` or ``binary`` (hex of an
  SMS-SUBMIT TPDU, encoded here independently of the integration's code).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes, urlencode
from xml.sax.saxutils import escape

from aiohttp import web

from .common import (
    BackgroundWork,
    CallbackAttempt,
    Faults,
    RecordedRequest,
    fault_middleware,
    send_callback,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

_LOGGER = logging.getLogger("simulator.eseye")
EN_DASH = "\u2013"

PATH_SEND = "/mtsmsapi/index/post"
PATH_STATUS = "/mtstatusapi/index/post"
PATH_CANCEL = "/mtcancelapi/index/post"

SEND_FIELDS = frozenset(
    {
        "username",
        "password",
        "destination",
        "text",
        "short_message",
        "message_id",
        "receipt_url",
        "source",
        "mode",
        "expiry",
        "data_coding",
        "pid",
        "esm",
        "Replace",
    }
)
QUERY_FIELDS = frozenset({"username", "password", "message_id"})

DESCRIPTIONS = {
    "queued": "Not delivered yet, message awaiting routing",
    "sent": "Message queued on network",
    "mgmt": "Message queued on network",
    "delivered": "Message delivered",
    "blocked": "Message blocked by rule",
    "error": "Message expired before delivery",
    "cancelled": "Message cancelled",
}
FINAL_STATES = frozenset({"delivered", "blocked", "error", "cancelled"})
CANCELLABLE = frozenset({"queued", "sent", "mgmt"})

# GSM 03.38 default alphabet by septet value (0x1B = escape, not a character).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM_CODES = {char: code for code, char in enumerate(GSM_BASIC) if code != 0x1B}
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D}
GSM_EXTENSION |= {"]": 0x3E, "|": 0x40, "€": 0x65}


class EseyeError(Exception):
    """An Eseye API error (code + description)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description


@dataclass
class SimSim:
    msisdn: str
    behavior: str = "online"
    credit: bool = True


@dataclass
class SimMessage:
    message_id: str
    destination: str
    text: str
    form: dict[str, str]
    receipt_url: str | None = None
    source: str | None = None
    data_coding: str | None = None
    short_message: str | None = None
    expiry: datetime | None = None
    status: str = "queued"
    reference_id: str = field(default_factory=lambda: secrets.token_hex(16))
    submitted_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    history: list[str] = field(default_factory=list)


def parse_latin1_form(body: bytes) -> list[tuple[str, str]]:
    """Decode a form body like PHP would: percent-escapes to bytes, bytes as Latin-1."""
    pairs: list[tuple[str, str]] = []
    for chunk in body.split(b"&"):
        if not chunk:
            continue
        key, _, value = chunk.partition(b"=")
        pairs.append(
            (
                unquote_to_bytes(key.replace(b"+", b" ")).decode("latin-1"),
                unquote_to_bytes(value.replace(b"+", b" ")).decode("latin-1"),
            )
        )
    return pairs


def encode_address(msisdn: str) -> bytes:
    digits = "".join(c for c in msisdn if c.isdigit())
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return bytes([len(digits), 0x91]) + bytes.fromhex(swapped)


def pack_septets(septets: list[int]) -> bytes:
    out = bytearray()
    acc = 0
    nbits = 0
    for septet in septets:
        acc |= septet << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def submit_tpdu(destination: str, text: str) -> str:
    """Encode an SMS-SUBMIT TPDU (no SMSC prefix, no validity period) as upper-case hex."""
    septets: list[int] = []
    gsm = True
    for char in text:
        if char in GSM_CODES:
            septets.append(GSM_CODES[char])
        elif char in GSM_EXTENSION:
            septets += [0x1B, GSM_EXTENSION[char]]
        else:
            gsm = False
            break
    if gsm:
        if len(septets) > 160:
            raise ValueError("text too long for one SMS")
        dcs, udl, user_data = 0x00, len(septets), pack_septets(septets)
    else:
        user_data = text.encode("utf-16-be")
        if len(user_data) > 140:
            raise ValueError("text too long for one SMS")
        dcs, udl = 0x08, len(user_data)
    message_reference = secrets.randbelow(256)
    tpdu = (
        bytes([0x01, message_reference])
        + encode_address(destination)
        + bytes([0x00, dcs, udl])
        + user_data
    )
    return tpdu.hex().upper()


# Answers that are none of Eseye's documented shapes (see EseyeSimulator.garble): what a proxy
# or load balancer in front of the API, or a backend dying while it answers, sends back.
GARBLED_HTML = (
    "<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
    "<h1>Service Unavailable</h1><p>The server is temporarily unable to service your request "
    "due to maintenance downtime or capacity problems.</p></body></html>"
)
GARBLED_JSON = '{"status": "OK", "message_id": "2554f63f1e5d'  # cut off mid-answer
# "OK!" compressed by a proxy that forgot the Content-Encoding header.
GARBLED_GZIP = gzip.compress(b"OK!", mtime=0)
GARBLED_EMPTY = ""


def _xml(status: str, description: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<statusResponse><status>{escape(status)}</status>"
        f"<description>{escape(description)}</description></statusResponse>"
    )


class EseyeSimulator(BackgroundWork):
    """In-process Eseye SMS API; see the module docstring and ``simulator/README.md``."""

    def __init__(
        self,
        username: str = "demo",
        password: str = "demo-password",  # noqa: S107 - demo account
        api_msisdn: str = "447700900000",
        delivery_delay: float = 0.2,
        allowed_ips: list[str] | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.api_msisdn = api_msisdn
        self.delivery_delay = delivery_delay
        self.allowed_ips = allowed_ips
        self.sims: dict[str, SimSim] = {}
        self.messages: dict[str, SimMessage] = {}
        self.mo_post_url: str | None = None
        self.receipt_method = "GET"
        self.requests: list[RecordedRequest] = []
        self.callback_log: list[CallbackAttempt] = []
        self.faults = Faults()
        self.base_url = ""
        self._init_background()
        self._mgmt = itertools.cycle((False, True))
        # path -> (status, body, content type, handled) of the next answers to replace.
        self._garbled: dict[str, list[tuple[int, bytes, str, bool]]] = {}
        self.app = web.Application(
            middlewares=[fault_middleware(self.faults, self.requests), self._garble_middleware]
        )
        self.app.router.add_route("*", PATH_SEND, self._handle_send)
        self.app.router.add_route("*", PATH_STATUS, self._handle_status)
        self.app.router.add_route("*", PATH_CANCEL, self._handle_cancel)

    # --- control API ------------------------------------------------------------------------

    def add_sim(self, msisdn: str, behavior: str = "online", credit: bool = True) -> SimSim:
        if behavior not in ("online", "offline", "echo", "blocked"):
            raise ValueError(f"unknown behavior {behavior}")
        sim = SimSim(msisdn, behavior, credit)
        self.sims[msisdn] = sim
        return sim

    def forms(self, path: str = PATH_SEND) -> list[dict[str, str]]:
        """The decoded form of every recorded POST to `path` (as the server decoded it)."""
        return [
            dict(parse_latin1_form(r.body))
            for r in self.requests
            if r.path == path and r.method == "POST"
        ]

    def garble(
        self,
        path: str = PATH_SEND,
        body: str | bytes = GARBLED_HTML,
        *,
        count: int = 1,
        status: int = 200,
        content_type: str = "text/html",
        handled: bool = True,
    ) -> None:
        """Answer the next `count` requests to `path` with `body` instead of Eseye's answer.

        By default the request is handled first, exactly as without the fault: a send is stored
        and delivered, a cancel cancels; only the answer is lost, as behind a failing proxy.
        With `handled=False` the request never reaches "Eseye" (a proxy answering by itself).
        """
        raw = body.encode("latin-1") if isinstance(body, str) else body
        self._garbled.setdefault(path, []).extend([(status, raw, content_type, handled)] * count)

    def set_status(self, message_id: str, status: str) -> None:
        """Drive a message by hand (a final status sends the receipt, like the state machine)."""
        message = self.messages[message_id]
        self._set(message, status)

    async def send_mo(
        self,
        msisdn: str,
        text: str,
        binary_only: bool = False,
        duplicate: bool = False,
        *,
        with_message_id: bool = True,
        message_id: str | None = None,
    ) -> str | None:
        """POST an MO SMS from `msisdn` to `mo_post_url`; returns its message_id.

        `duplicate` posts it twice (a retry). `with_message_id=False` leaves the field out
        (the MO page only says the fields "may include" it): returns None then. A given
        `message_id` re-sends under that id, as a retry long after the first attempt would.
        """
        if not self.mo_post_url:
            raise RuntimeError("mo_post_url is not set")
        form = {"source": msisdn, "destination": self.api_msisdn}
        if with_message_id:
            message_id = message_id or secrets.token_hex(16)
            form["message_id"] = message_id
        else:
            message_id = None
        if binary_only:
            form["binary"] = submit_tpdu(self.api_msisdn, text)
        else:
            form["text"] = text
        for _ in range(2 if duplicate else 1):
            await send_callback(
                self._client_session(),
                self.callback_log,
                "POST",
                self.mo_post_url,
                data=form,
                faults=self.faults,
            )
        return message_id

    async def send_receipt(self, message_id: str, status: str, method: str = "GET") -> None:
        """Send a receipt with an arbitrary status (e.g. "expired", "rejected")."""
        message = self.messages.get(message_id)
        url = message.receipt_url if message else None
        if not url:
            raise RuntimeError(f"message {message_id} has no receipt_url")
        reference = message.reference_id if message else secrets.token_hex(16)
        await self._post_receipt(url, message_id, reference, status, status, method)

    async def close(self) -> None:
        """Cancel every task, close the callback session."""
        await self._close_background()

    # --- HTTP handlers ------------------------------------------------------------------

    @web.middleware
    async def _garble_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        pending = self._garbled.get(request.path)
        if not pending:
            return await handler(request)
        status, body, content_type, handled = pending.pop(0)
        if handled:
            await handler(request)
        _LOGGER.info("Eseye answer to %s replaced by %d garbled bytes", request.path, len(body))
        return web.Response(status=status, body=body, content_type=content_type)

    async def _handle_send(self, request: web.Request) -> web.Response:
        try:
            form = await self._common_checks(request, SEND_FIELDS)
            message = self._accept(form)
        except EseyeError as err:
            body = f"Error{err.code}: {err.description}"
            if err.code == 503:  # the troubleshooting page's style
                body = f"ERROR {err.code} {EN_DASH} {err.description}"
            return web.Response(text=body, content_type="text/html")
        self.messages[message.message_id] = message
        if self.sims[message.destination].behavior == "blocked":
            self._set(message, "blocked")
        else:
            self._spawn(self._run(message))
        _LOGGER.info(
            "Eseye SMS %s to %s: %r (receipt_url=%s)",
            message.message_id,
            message.destination,
            message.text,
            message.receipt_url,
        )
        return web.Response(text="OK!", content_type="text/html")

    async def _handle_status(self, request: web.Request) -> web.Response:
        try:
            form = await self._common_checks(request, QUERY_FIELDS)
            message = self._lookup(form)
        except EseyeError as err:
            if err.code == 503:
                return web.Response(
                    text=f"ERROR {err.code} {EN_DASH} {err.description}", content_type="text/html"
                )
            body = _xml("error", f"ERROR {err.code} {EN_DASH} {err.description}")
            return web.Response(text=body, content_type="application/xml")
        return web.Response(
            text=_xml(message.status, DESCRIPTIONS.get(message.status, "")),
            content_type="application/xml",
        )

    async def _handle_cancel(self, request: web.Request) -> web.Response:
        try:
            form = await self._common_checks(request, QUERY_FIELDS)
            message = self._lookup(form)
        except EseyeError as err:
            return web.Response(
                text=f"ERROR {err.code} {EN_DASH} {err.description}", content_type="text/html"
            )
        shown = message.status
        if shown in CANCELLABLE:
            self._set(message, "cancelled")
            _LOGGER.info("Eseye SMS %s cancelled (was %s)", message.message_id, shown)
        return web.Response(
            text=_xml(shown, DESCRIPTIONS.get(shown, "")), content_type="application/xml"
        )

    async def _common_checks(self, request: web.Request, allowed: frozenset[str]) -> dict[str, str]:
        if request.method != "POST":
            raise EseyeError(
                503, f"{request.method} is not currently a supported method of this API"
            )
        if self.allowed_ips is not None and request.remote not in self.allowed_ips:
            raise EseyeError(
                510, f"API Requests from this IP Address ({request.remote}) are not allowed."
            )
        form = dict(parse_latin1_form(await request.read()))
        for name in ("username", "password"):
            if not form.get(name):
                raise EseyeError(511, f"{name} is required.")
        if form["username"] != self.username or form["password"] != self.password:
            raise EseyeError(530, "API Requests authentication failed.")
        for name in form:
            if name not in allowed:
                raise EseyeError(519, f"Unknown parameter: {name}")
        return form

    def _lookup(self, form: Mapping[str, str]) -> SimMessage:
        message = self.messages.get(form.get("message_id", ""))
        if message is None:
            raise EseyeError(535, "Invalid message_id value supplied")
        return message

    def _accept(self, form: dict[str, str]) -> SimMessage:
        destination = form.get("destination", "")
        if not destination:
            raise EseyeError(511, "destination is required.")
        text = form.get("text", "")
        short_message = form.get("short_message", "")
        if not text and not short_message:
            raise EseyeError(511, "text is required.")
        message_id = form.get("message_id", "")
        receipt_url = form.get("receipt_url", "")
        if receipt_url and not message_id:
            raise EseyeError(526, "message_id must be supplied for delivery receipt")
        if receipt_url and not receipt_url.startswith(("http://", "https://")):
            raise EseyeError(533, "Invalid receipt_url value supplied")
        if message_id and (message_id in self.messages or len(message_id) > 64):
            raise EseyeError(535, "Invalid message_id value supplied")
        mode = form.get("mode", "")
        if mode not in ("", "7", "8"):
            raise EseyeError(520, f"Mode '{mode}' is not valid")
        sim = self.sims.get(destination)
        if sim is None:
            raise EseyeError(555, f"Invalid MSISDN ({destination}) supplied")
        if not sim.credit:
            raise EseyeError(570, f"Destination MSISDN ({destination}) has no credit")
        expiry = self._expiry(form.get("expiry", ""))
        data_coding = form.get("data_coding") or None
        if text:  # text wins over short_message
            if mode == "8":
                if len(text) > 140:
                    raise EseyeError(525, "Max message length of 140 chars exceeded")
            else:
                if any(char not in GSM_CODES for char in text):
                    raise EseyeError(
                        580,
                        "Please use only GSM 03.38 basic 7 bit characters, or specify 8 bit mode",
                    )
                if len(text) > 160:
                    raise EseyeError(525, "Max message length of 160 chars exceeded")
            decoded, short_message, data_coding = text, "", None
        else:
            decoded = self._decode_short_message(short_message, data_coding or "0")
        return SimMessage(
            message_id=message_id or f"anonymous-{secrets.token_hex(8)}",
            destination=destination,
            text=decoded,
            form=form,
            receipt_url=receipt_url or None,
            source=form.get("source") or None,
            data_coding=data_coding,
            short_message=short_message or None,
            expiry=expiry,
        )

    @staticmethod
    def _decode_short_message(hexstr: str, data_coding: str) -> str:
        try:
            data = bytes.fromhex(hexstr)
        except ValueError:
            raise EseyeError(555, "Invalid Input Provided") from None
        if data_coding == "8":
            if len(data) % 2:
                raise EseyeError(555, "Invalid Input Provided")
            if len(data) > 140:
                raise EseyeError(525, "Max message length of 70 chars exceeded")
            try:
                return data.decode("utf-16-be")
            except UnicodeDecodeError:
                raise EseyeError(555, "Invalid Input Provided") from None
        if data_coding.upper() in ("0", "4", "F6"):
            limit = 160 if data_coding == "0" else 140
            if len(data) > limit:
                raise EseyeError(525, f"Max message length of {limit} chars exceeded")
            return data.decode("latin-1")
        raise EseyeError(555, "Invalid Input Provided")

    @staticmethod
    def _expiry(value: str) -> datetime | None:
        if not value:
            return None
        try:
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise EseyeError(555, "Invalid Input Provided") from None

    # --- state machine ------------------------------------------------------------------

    async def _run(self, message: SimMessage) -> None:
        behavior = self.sims[message.destination].behavior
        await asyncio.sleep(self.delivery_delay / 2)
        if message.status != "queued":
            return
        self._set(message, "mgmt" if next(self._mgmt) else "sent")
        if behavior == "offline":
            expiry = message.expiry or message.submitted_at + timedelta(hours=24)
            delay = max(0.0, (expiry - datetime.now(UTC)).total_seconds())
            self._spawn_expiry(self._expire(message, delay), delay)
            return
        await asyncio.sleep(self.delivery_delay / 2)
        if message.status not in ("sent", "mgmt"):
            return
        self._set(message, "delivered")
        if behavior == "echo" and self.mo_post_url:
            self._spawn(self.send_mo(message.destination, f"ECHO: {message.text}"))

    async def _expire(self, message: SimMessage, delay: float) -> None:
        await asyncio.sleep(delay)
        if message.status in ("sent", "mgmt", "queued"):
            self._set(message, "error")

    def _set(self, message: SimMessage, status: str) -> None:
        message.history.append(status)
        message.status = status
        if status in FINAL_STATES and status != "cancelled" and message.receipt_url:
            outcome = "delivered" if status == "delivered" else "failed"
            self._spawn(
                self._post_receipt(
                    message.receipt_url,
                    message.message_id,
                    message.reference_id,
                    status,
                    outcome,
                    self.receipt_method,
                )
            )

    async def _post_receipt(
        self, url: str, message_id: str, reference: str, statuscode: str, status: str, method: str
    ) -> None:
        fields = {
            "messageid": message_id,
            "referenceid": reference,
            "statuscode": statuscode,
            "status": status,
        }
        if method.upper() == "POST":
            await send_callback(
                self._client_session(),
                self.callback_log,
                "POST",
                url,
                data=fields,
                faults=self.faults,
            )
            return
        target = f"{url}{'&' if '?' in url else '?'}{urlencode(fields)}"
        await send_callback(self._client_session(), self.callback_log, "GET", target)
