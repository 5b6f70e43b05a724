"""Inbound callbacks: delivery reports and device replies -> parse -> dedupe -> dispatch."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now

from .api.client import SmsClient
from .api.errors import InvalidCallback, IotSmsError, SignatureError
from .api.models import (
    CallbackRequest,
    DeliveryReport,
    Endpoint,
    IncomingHint,
    IncomingMessage,
    MultipartInfo,
    PollHint,
)
from .const import DOMAIN, EVENT_MESSAGE_RECEIVED, LOGGER
from .devices import async_device_id
from .store import IotSmsStore
from .tracker import MessageTracker

MAX_BODY_BYTES = 64 * 1024
MULTIPART_TIMEOUT = timedelta(minutes=5)
# A reply overdue when the entry starts waits this long, so its entities are listening.
RESTORED_FLUSH_DELAY = timedelta(seconds=10)
# Rejected requests are logged at most once per interval: the Eseye URLs need no signature,
# and anyone who learns one could otherwise fill the log.
REJECTION_LOG_INTERVAL = 60.0
# Enough to recognise a provider's retries; older ids are long past any retry window.
SEEN_LIMIT = 2000
CALLBACK_PATH = "/api/iot_sms/{callback_id}"
UNKNOWN_SENDER = "unknown"


def callback_path(webhook_id: str) -> str:
    """Path of the integration's own callback view for one entry."""
    return CALLBACK_PATH.format(callback_id=webhook_id)


def async_callback_url(hass: HomeAssistant, webhook_id: str, *, external: bool) -> str | None:
    """Full callback URL, or None when Home Assistant knows no suitable base URL."""
    try:
        base = get_url(hass, allow_internal=not external, allow_cloud=False, prefer_external=True)
    except NoURLAvailableError:
        return None
    return f"{base}{callback_path(webhook_id)}"


def signal_incoming(entry_id: str, endpoint_id: str | None) -> str:
    """Dispatcher signal for replies of one endpoint (or of unknown senders)."""
    return f"{DOMAIN}_{entry_id}_incoming_{endpoint_id or UNKNOWN_SENDER}"


@dataclass(frozen=True, slots=True)
class ReceivedSms:
    """A complete incoming message as entities and events see it."""

    message_id: str
    sender: str
    recipient: str | None
    text: str
    received_at: datetime
    endpoint_id: str | None
    device_id: str | None
    incomplete: bool

    def as_event_data(self) -> dict[str, Any]:
        """Attributes shared by the event entity and the bus event."""
        return {
            "sender": self.sender,
            "text": self.text,
            "message_id": self.message_id,
            "received_at": self.received_at.isoformat(),
        }


type _PartialKey = tuple[str, str]


@dataclass(slots=True)
class _PartialMessage:
    """The parts of one multi-part reply received so far, keyed (sender, reference)."""

    sender: str
    reference: str
    total: int
    # When the first part arrived: the incomplete flush counts from here, across restarts.
    first_at: datetime
    parts: dict[int, IncomingMessage] = field(default_factory=dict)
    unsub: CALLBACK_TYPE | None = None

    @property
    def key(self) -> _PartialKey:
        return (self.sender, self.reference)

    def as_dict(self) -> dict[str, Any]:
        """What the store keeps of it."""
        return {
            "sender": self.sender,
            "reference": self.reference,
            "total": self.total,
            "first_at": self.first_at.isoformat(),
            "parts": [
                {
                    "number": number,
                    "message_id": part.message_id,
                    "text": part.text,
                    "received_at": part.received_at.isoformat(),
                    "recipient": part.recipient,
                    "endpoint_id": part.endpoint_id,
                }
                for number, part in sorted(self.parts.items())
            ],
        }

    @classmethod
    def from_dict(cls, raw: Any) -> _PartialMessage:
        """Rebuild a stored buffer; KeyError, TypeError or ValueError if it is damaged."""
        partial = cls(
            sender=str(raw["sender"]),
            reference=str(raw["reference"]),
            total=int(raw["total"]),
            first_at=datetime.fromisoformat(raw["first_at"]),
        )
        if partial.first_at.tzinfo is None:
            raise ValueError("naive timestamp")
        for item in raw["parts"]:
            number = int(item["number"])
            partial.parts[number] = IncomingMessage(
                message_id=str(item["message_id"]),
                sender=partial.sender,
                text=str(item["text"]),
                received_at=datetime.fromisoformat(item["received_at"]),
                recipient=_optional_str(item.get("recipient")),
                endpoint_id=_optional_str(item.get("endpoint_id")),
                multipart=MultipartInfo(partial.reference, number, partial.total),
            )
        if not partial.parts or len(partial.parts) >= partial.total:
            raise ValueError("not a partly received message")
        return partial


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


class _RejectionLog:
    """One warning per REJECTION_LOG_INTERVAL, then a count of the ones not logged."""

    def __init__(self) -> None:
        self._quiet_until: float | None = None
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if self._quiet_until is not None and now < self._quiet_until:
            self._suppressed += 1
            LOGGER.debug(message, *args)
            return
        self._quiet_until = now + REJECTION_LOG_INTERVAL
        if self._suppressed:
            LOGGER.warning(
                f"{message} (%s more rejected since the last such line, suppressed)",
                *args,
                self._suppressed,
            )
        else:
            LOGGER.warning(message, *args)
        self._suppressed = 0


async def _read_body(request: web.Request) -> bytes | None:
    """The whole body, or None once it is over MAX_BODY_BYTES (never reading further).

    One read returns only what has arrived so far: a body a proxy forwards in pieces, or
    chunked, needs reading to the end.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - size):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class InboundRouter:
    """Turns parsed callbacks of one entry into tracker updates, events and replies."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        client: SmsClient,
        tracker: MessageTracker,
        store: IotSmsStore,
        endpoint_lookup: Callable[[str], Endpoint | None],
        on_unknown_endpoint: Callable[[str], None],
    ) -> None:
        """Create a router; endpoint_lookup(key) returns a known Endpoint or None.

        on_unknown_endpoint(id) is told of provider endpoint ids that are not devices (yet).
        """
        self.hass = hass
        self._entry_id = entry_id
        self._client = client
        self._tracker = tracker
        self._store = store
        self._lookup = endpoint_lookup
        self._on_unknown_endpoint = on_unknown_endpoint
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._partial: dict[_PartialKey, _PartialMessage] = {}
        self._waiters: dict[str, list[asyncio.Future[ReceivedSms]]] = {}
        self._rejections = _RejectionLog()
        # Only provider ids: a message without one has nothing a retry could be known by.
        store.register("seen_inbound", lambda: list(self._seen))
        store.register(
            "partial_inbound",
            lambda: [partial.as_dict() for partial in self._partial.values()],
        )

    def async_restore(self, seen: Sequence[Any], partials: Any) -> None:
        """Remember ids already handled before a restart, so provider retries stay silent.

        Also takes back the replies whose remaining parts had not arrived yet: the parts
        still to come complete them, and the incomplete flush keeps counting from the first
        part's arrival.
        """
        for message_id in seen[-SEEN_LIMIT:]:
            self._seen[str(message_id)] = None
        now = dt_util.utcnow()
        for raw in partials if isinstance(partials, list) else []:
            try:
                buffered = _PartialMessage.from_dict(raw)
            except (KeyError, TypeError, ValueError, AttributeError):
                LOGGER.warning("Skipping a damaged stored part of an incoming message")
                continue
            self._partial[buffered.key] = buffered
            deadline = buffered.first_at + MULTIPART_TIMEOUT
            self._arm_flush(buffered, max(deadline - now, RESTORED_FLUSH_DELAY))

    async def async_shutdown(self) -> None:
        """Release waiting senders; partly received replies stay buffered for the store.

        Delivering them now would split a reply that a restart interrupts into two
        incomplete events; the entry's store (flushed on unload) keeps them instead.
        """
        for partial in self._partial.values():
            if partial.unsub:
                partial.unsub()
                partial.unsub = None
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._waiters.clear()

    # -- HTTP ----------------------------------------------------------------------------

    async def async_handle_request(self, request: web.Request) -> web.Response:
        """Verify, parse and apply one callback request; never raises."""
        try:
            return await self._async_handle(request)
        except Exception:  # noqa: BLE001 - top of an inbound handler: log, answer, never raise
            LOGGER.exception("Unexpected error handling an %s callback", DOMAIN)
            return web.Response(status=HTTPStatus.INTERNAL_SERVER_ERROR)

    async def _async_handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            self._rejections.warning("Rejected a callback body of %s bytes", request.content_length)
            return web.Response(status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body = await _read_body(request)
        if body is None:
            self._rejections.warning("Rejected a callback body over %s bytes", MAX_BODY_BYTES)
            return web.Response(status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        parsed = CallbackRequest(
            method=request.method,
            headers=request.headers,
            query=request.query,
            body=body,
            content_type=request.content_type,
            url=str(request.url),
        )
        try:
            items = self._client.parse_callback(parsed)
        except SignatureError:
            self._rejections.warning("Rejected a callback with a missing or wrong signature")
            return web.Response(status=HTTPStatus.UNAUTHORIZED)
        except InvalidCallback as err:
            self._rejections.warning("Rejected an invalid callback: %s", err)
            return web.Response(status=HTTPStatus.BAD_REQUEST)
        complete = True
        for item in items:
            if isinstance(item, DeliveryReport):
                self._apply_report(item)
            elif isinstance(item, PollHint):
                if not self._tracker.async_poll_soon(item.part_id):
                    LOGGER.debug("Ignored a status hint for an unknown message")
            elif isinstance(item, IncomingHint):
                complete = await self._async_fetch(item) and complete
            else:
                self.async_receive(item)
        if not complete:
            # The provider retries what was not acknowledged: nothing it named is lost.
            return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
        return web.Response(text="OK")

    async def _async_fetch(self, hint: IncomingHint) -> bool:
        """Read a message the callback only named; False if it could not be read now."""
        if hint.message_id in self._seen:
            LOGGER.debug("Ignored a duplicate incoming message")
            return True
        try:
            message = await self._client.async_fetch_incoming(hint)
        except IotSmsError as err:
            LOGGER.warning("Could not read an incoming SMS the provider announced: %s", err)
            return False
        if message is None:
            LOGGER.debug("The provider has no incoming message %s", hint.message_id)
        else:
            self.async_receive(message)
        return True

    def _apply_report(self, report: DeliveryReport) -> None:
        if report.status is None:
            LOGGER.warning("Delivery report with unknown status %r kept as-is", report.raw_status)
        if self._tracker.async_apply(report.part_id, report.status) is None:
            LOGGER.debug("Ignored a delivery report for an unknown message")

    # -- incoming messages ---------------------------------------------------------------

    @callback
    def async_receive(self, message: IncomingMessage) -> None:
        """Accept one MO message or part, once per provider message id.

        A message without an id (the parser leaves it empty) is never a duplicate: the
        same text twice is a device answering twice, so it gets an id of its own.
        """
        if not message.message_id:
            message = replace(message, message_id=ulid_now())
        elif message.message_id in self._seen:
            LOGGER.debug("Ignored a duplicate incoming message")
            return
        else:
            self._seen[message.message_id] = None
            while len(self._seen) > SEEN_LIMIT:
                self._seen.popitem(last=False)
            self._store.async_schedule_save()
        info = message.multipart
        if info is None or info.total <= 1:
            self._deliver(message, message.text, incomplete=False)
            return
        key = (message.sender, info.reference)
        partial = self._partial.get(key)
        if partial is None:
            partial = self._partial[key] = _PartialMessage(
                sender=message.sender,
                reference=info.reference,
                total=info.total,
                first_at=dt_util.utcnow(),
            )
            self._arm_flush(partial, MULTIPART_TIMEOUT)
        partial.parts[info.number] = message
        self._store.async_schedule_save()
        if len(partial.parts) >= partial.total:
            self._flush_partial(key)

    def _arm_flush(self, partial: _PartialMessage, delay: timedelta) -> None:
        key = partial.key
        # A @callback: a plain lambda would run in the executor and fire events off-loop.
        partial.unsub = async_call_later(
            self.hass, delay, callback(lambda _now: self._flush_partial(key))
        )

    @callback
    def _flush_partial(self, key: _PartialKey) -> None:
        partial = self._partial.pop(key, None)
        if partial is None:
            return
        self._store.async_schedule_save()
        if partial.unsub:
            partial.unsub()
        ordered = [partial.parts[number] for number in sorted(partial.parts)]
        text = "".join(part.text for part in ordered)
        incomplete = len(ordered) < partial.total
        if incomplete:
            LOGGER.warning(
                "Delivering an incomplete message: %s of %s parts arrived",
                len(ordered),
                partial.total,
            )
        self._deliver(ordered[0], text, incomplete=incomplete)

    def _deliver(self, message: IncomingMessage, text: str, *, incomplete: bool) -> None:
        endpoint = (self._lookup(message.endpoint_id) if message.endpoint_id else None) or (
            self._lookup(message.sender)
        )
        endpoint_id = endpoint.id if endpoint else None
        if endpoint is None and message.endpoint_id:
            self._on_unknown_endpoint(message.endpoint_id)
        received = ReceivedSms(
            message_id=message.message_id,
            sender=message.sender,
            recipient=message.recipient,
            text=text,
            received_at=message.received_at,
            endpoint_id=endpoint_id,
            device_id=async_device_id(self.hass, self._entry_id, endpoint_id)
            if endpoint_id
            else None,
            incomplete=incomplete,
        )
        self.hass.bus.async_fire(
            EVENT_MESSAGE_RECEIVED,
            {
                "config_entry_id": self._entry_id,
                "device_id": received.device_id,
                "endpoint_id": endpoint_id or message.endpoint_id,
                "recipient": message.recipient,
                "provider": self._client.provider,
                "incomplete": incomplete,
                **received.as_event_data(),
            },
        )
        async_dispatcher_send(self.hass, signal_incoming(self._entry_id, endpoint_id), received)
        if endpoint_id:
            for waiter in self._waiters.pop(endpoint_id, []):
                if not waiter.done():
                    waiter.set_result(received)

    # -- replies -------------------------------------------------------------------------

    def async_expect_reply(self, endpoint_id: str) -> asyncio.Future[ReceivedSms]:
        """Return a future for the next message from an endpoint (register before sending)."""
        future: asyncio.Future[ReceivedSms] = self.hass.loop.create_future()
        self._waiters.setdefault(endpoint_id, []).append(future)
        return future

    def async_forget_reply(self, endpoint_id: str, future: asyncio.Future[ReceivedSms]) -> None:
        """Stop waiting (timeout or failed send)."""
        waiters = self._waiters.get(endpoint_id, [])
        if future in waiters:
            waiters.remove(future)
        if not waiters:
            self._waiters.pop(endpoint_id, None)
        future.cancel()


class IotSmsCallbackView(HomeAssistantView):
    """emnify PATCHes delivery reports, which the webhook component cannot receive (405)."""

    url = CALLBACK_PATH
    name = "api:iot_sms:callback"
    requires_auth = False

    async def _dispatch(self, request: web.Request, callback_id: str) -> web.Response:
        hass = request.app[KEY_HASS]
        # Bytes: compare_digest refuses str that is not ASCII (TypeError, a 500). Lone
        # surrogates from undecodable escapes are kept rather than raising.
        presented = callback_id.encode("utf-8", "surrogatepass")
        for entry in hass.config_entries.async_entries(DOMAIN):
            expected = str(entry.data.get(CONF_WEBHOOK_ID, "")).encode("utf-8", "surrogatepass")
            if hmac.compare_digest(expected, presented):
                if entry.state is not ConfigEntryState.LOADED:
                    # Not ready (starting or reloading): a retry later loses nothing.
                    return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
                router: InboundRouter = entry.runtime_data.inbound
                return await router.async_handle_request(request)
        return web.Response(status=HTTPStatus.NOT_FOUND)

    async def get(self, request: web.Request, callback_id: str) -> web.Response:
        """Eseye receipts arrive as GET with a query string."""
        return await self._dispatch(request, callback_id)

    async def post(self, request: web.Request, callback_id: str) -> web.Response:
        """MO messages (both providers) and form receipts."""
        return await self._dispatch(request, callback_id)

    async def patch(self, request: web.Request, callback_id: str) -> web.Response:
        """Emnify delivery reports."""
        return await self._dispatch(request, callback_id)
