"""Outgoing message tracker: every sent SMS is followed until it is final, across restarts."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .api.client import SmsClient
from .api.errors import AuthError, IotSmsError, NotCancellable, NotFound
from .api.models import SmsStatus
from .const import DOMAIN, EVENT_DELIVERY_STATUS, LOGGER
from .devices import async_device_id
from .store import IotSmsStore

# Polling backs off per message: push normally resolves a message long before these add up.
POLL_BACKOFF = (
    timedelta(seconds=15),
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=5),
)
POLL_LATE = timedelta(minutes=15)
# Messages due this close together share a cycle: one request per endpoint covers them all.
POLL_COALESCE = timedelta(seconds=10)
EXPIRY_GRACE = timedelta(minutes=10)
# emnify's documented default validity; Eseye documents none, so the same is assumed.
DEFAULT_VALIDITY = timedelta(hours=24)
FINAL_RETENTION = timedelta(days=7)
MAX_FINAL_MESSAGES = 1000
# Endpoints polled at the same time; keeps a large fleet under the providers' rate limits.
POLL_CONCURRENCY = 4

# Reports for ids not tracked yet: a provider can report before the send call returns (or
# before the last part of a long text is accepted). Held briefly, then dropped.
EARLY_REPORT_HOLD = timedelta(minutes=2)
MAX_EARLY_REPORTS = 500

_ABORTING = (SmsStatus.FAILED, SmsStatus.EXPIRED, SmsStatus.CANCELED)
# Non-final states only move forward; a late report of an earlier state is ignored.
_PROGRESS = {SmsStatus.QUEUED: 0, SmsStatus.SENT: 1, SmsStatus.BUFFERED: 2}
_STATUS_VALUES = frozenset(status.value for status in SmsStatus)


def signal_message_updated(entry_id: str, endpoint_id: str) -> str:
    """Dispatcher signal sent with a TrackedMessage whenever its status changes."""
    return f"{DOMAIN}_{entry_id}_message_updated_{endpoint_id}"


def signal_pending_changed(entry_id: str) -> str:
    """Dispatcher signal sent whenever any tracked message changes."""
    return f"{DOMAIN}_{entry_id}_pending_changed"


def aggregate_status(statuses: Iterable[SmsStatus]) -> SmsStatus:
    """Combine the parts' states into the state of the whole message."""
    states = list(statuses)
    for aborting in _ABORTING:
        if aborting in states:
            return aborting
    if all(state is SmsStatus.DELIVERED for state in states):
        return SmsStatus.DELIVERED
    if SmsStatus.BUFFERED in states:
        return SmsStatus.BUFFERED
    if SmsStatus.SENT in states or SmsStatus.DELIVERED in states:
        return SmsStatus.SENT
    return SmsStatus.QUEUED


def _is_step_back(current: SmsStatus, new: SmsStatus) -> bool:
    """Whether going from current to new would move a non-final status backwards."""
    return not current.final and not new.final and _PROGRESS[new] < _PROGRESS[current]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: Any) -> datetime | None:
    return dt_util.parse_datetime(value) if isinstance(value, str) else None


@dataclass(slots=True)
class TrackedPart:
    """One SMS on the wire belonging to a tracked message."""

    part_id: str
    status: SmsStatus = SmsStatus.QUEUED


@dataclass(slots=True)
class TrackedMessage:
    """One message the user sent, however many parts it took."""

    message_id: str
    endpoint_id: str
    parts: list[TrackedPart]
    submitted_at: datetime
    expires_at: datetime
    next_poll: datetime
    status: SmsStatus = SmsStatus.QUEUED
    finalized_at: datetime | None = None
    polls: int = 0
    # Sent, although the send's own answer was lost: found at the provider afterwards.
    reconciled: bool = False

    @property
    def final(self) -> bool:
        """Whether the message reached a state that never changes again."""
        return self.status.final

    @property
    def poll_deadline(self) -> datetime:
        """After this, a message the provider never resolved is considered expired."""
        return self.expires_at + EXPIRY_GRACE

    def as_dict(self) -> dict[str, Any]:
        """Serialise for storage."""
        return {
            "message_id": self.message_id,
            "endpoint_id": self.endpoint_id,
            "parts": [{"id": part.part_id, "status": part.status.value} for part in self.parts],
            "submitted_at": _iso(self.submitted_at),
            "expires_at": _iso(self.expires_at),
            "next_poll": _iso(self.next_poll),
            "status": self.status.value,
            "finalized_at": _iso(self.finalized_at),
            "polls": self.polls,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrackedMessage:
        """Restore from storage; raises KeyError/ValueError on a damaged record."""
        submitted = _parse(data["submitted_at"]) or dt_util.utcnow()
        return cls(
            message_id=str(data["message_id"]),
            endpoint_id=str(data["endpoint_id"]),
            parts=[
                TrackedPart(str(part["id"]), SmsStatus(part["status"])) for part in data["parts"]
            ],
            submitted_at=submitted,
            expires_at=_parse(data["expires_at"]) or submitted + DEFAULT_VALIDITY,
            next_poll=_parse(data.get("next_poll")) or dt_util.utcnow(),
            status=SmsStatus(data["status"]),
            finalized_at=_parse(data.get("finalized_at")),
            polls=int(data.get("polls", 0)),
        )


@dataclass(slots=True)
class CancelResult:
    """What a cancel request achieved."""

    canceled: list[str] = field(default_factory=list)
    not_cancellable: dict[str, str] = field(default_factory=dict)


class MessageTracker:
    """Owns the state of outgoing messages; polls only what is pending."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        client: SmsClient,
        store: IotSmsStore,
        on_auth_failed: Callable[[], None],
    ) -> None:
        """Create an empty tracker; async_load restores what was stored."""
        self.hass = hass
        self._entry_id = entry_id
        self._client = client
        self._store = store
        self._on_auth_failed = on_auth_failed
        self._messages: dict[str, TrackedMessage] = {}
        self._by_part: dict[str, TrackedMessage] = {}
        self._last_by_endpoint: dict[str, TrackedMessage] = {}
        self._early: OrderedDict[str, tuple[SmsStatus, datetime]] = OrderedDict()
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._timer_at: datetime | None = None
        self._poll_lock = asyncio.Lock()
        self._job = HassJob(self._async_timer_fired, "iot_sms poll", cancel_on_shutdown=True)
        store.register("messages", self._dump)

    # -- state ---------------------------------------------------------------------------

    @property
    def pending(self) -> list[TrackedMessage]:
        """Messages not yet final."""
        return [message for message in self._messages.values() if not message.final]

    @property
    def pending_count(self) -> int:
        """Number of messages not yet final."""
        return sum(1 for message in self._messages.values() if not message.final)

    def get(self, message_id: str) -> TrackedMessage | None:
        """Return a tracked message by its id (the id of its first part)."""
        return self._messages.get(message_id)

    def last_for_endpoint(self, endpoint_id: str) -> TrackedMessage | None:
        """Return the most recently sent message to an endpoint."""
        return self._last_by_endpoint.get(endpoint_id)

    def for_endpoint(self, endpoint_id: str) -> list[TrackedMessage]:
        """Return every tracked message to an endpoint, oldest first."""
        return [m for m in self._messages.values() if m.endpoint_id == endpoint_id]

    def _index(self, message: TrackedMessage) -> None:
        self._messages[message.message_id] = message
        for part in message.parts:
            self._by_part[part.part_id] = message
        last = self._last_by_endpoint.get(message.endpoint_id)
        if last is None or message.submitted_at >= last.submitted_at:
            self._last_by_endpoint[message.endpoint_id] = message

    def _forget(self, message: TrackedMessage) -> None:
        self._messages.pop(message.message_id, None)
        for part in message.parts:
            self._by_part.pop(part.part_id, None)
        if self._last_by_endpoint.get(message.endpoint_id) is message:
            del self._last_by_endpoint[message.endpoint_id]
            remaining = self.for_endpoint(message.endpoint_id)
            if remaining:
                self._last_by_endpoint[message.endpoint_id] = max(
                    remaining, key=lambda m: m.submitted_at
                )

    # -- persistence ---------------------------------------------------------------------

    def _dump(self) -> list[dict[str, Any]]:
        self._prune()
        return [message.as_dict() for message in self._messages.values()]

    def _prune(self) -> None:
        """Bound storage: pending messages always stay, final ones for 7 days, 1,000 at most."""
        cutoff = dt_util.utcnow() - FINAL_RETENTION
        finals = sorted(
            (m for m in self._messages.values() if m.final),
            key=lambda m: m.finalized_at or m.submitted_at,
            reverse=True,
        )
        for index, message in enumerate(finals):
            if (
                index >= MAX_FINAL_MESSAGES
                or (message.finalized_at or message.submitted_at) < cutoff
            ):
                self._forget(message)

    def async_restore(self, stored: Sequence[Any]) -> None:
        """Load stored messages and resume polling the pending ones soon."""
        now = dt_util.utcnow()
        for raw in stored:
            try:
                message = TrackedMessage.from_dict(raw)
            except (KeyError, ValueError, TypeError):
                LOGGER.warning("Skipping a damaged stored message record")
                continue
            if not message.final:
                # Whatever happened while Home Assistant was down, ask right away.
                message.next_poll = now
            self._index(message)
        self._prune()
        self._schedule()

    async def async_shutdown(self) -> None:
        """Stop polling and write everything to disk."""
        self._cancel_timer()
        await self._store.async_flush()

    # -- changes -------------------------------------------------------------------------

    @callback
    def async_track(
        self,
        endpoint_id: str,
        part_ids: Sequence[str],
        expires_at: datetime | None,
    ) -> TrackedMessage:
        """Start tracking a message whose parts were accepted by the provider."""
        now = dt_util.utcnow()
        message = TrackedMessage(
            message_id=part_ids[0],
            endpoint_id=endpoint_id,
            parts=[TrackedPart(part_id) for part_id in part_ids],
            submitted_at=now,
            expires_at=expires_at or now + DEFAULT_VALIDITY,
            next_poll=now + POLL_BACKOFF[0],
        )
        self._index(message)
        self._notify(message, None)
        # Reports that overtook the send: applied together, so the message moves once.
        for part in message.parts:
            held = self._early.pop(part.part_id, None)
            if held is not None and held[1] > now - EARLY_REPORT_HOLD:
                part.status = held[0]
        self._update_aggregate(message)
        self._schedule()
        return message

    def _hold(self, part_id: str, status: SmsStatus) -> None:
        """Keep a report for an id that may be about to be tracked (bounded in time and size)."""
        now = dt_util.utcnow()
        while self._early and (
            len(self._early) >= MAX_EARLY_REPORTS
            or next(iter(self._early.values()))[1] <= now - EARLY_REPORT_HOLD
        ):
            self._early.popitem(last=False)
        held = self._early.get(part_id)
        if held is None or not (held[0].final or _is_step_back(held[0], status)):
            self._early[part_id] = (status, now)

    @callback
    def async_apply(self, part_id: str, status: SmsStatus | None) -> TrackedMessage | None:
        """Apply a status for one part, from push or poll; returns the message if known.

        A final part never changes again, so late or out-of-order reports cannot undo a
        delivery; the message fires an event only when its aggregated status changes.
        """
        message = self._by_part.get(part_id)
        if message is None or status is None:
            if message is None and status is not None:
                self._hold(part_id, status)
            return message
        part = next(p for p in message.parts if p.part_id == part_id)
        if part.status.final or part.status is status:
            return message
        if _is_step_back(part.status, status):
            LOGGER.debug("Ignored %s after %s for SMS %s", status, part.status, part_id)
            return message
        part.status = status
        self._update_aggregate(message)
        return message

    def _update_aggregate(self, message: TrackedMessage) -> None:
        new = aggregate_status(part.status for part in message.parts)
        if new is message.status or message.final or _is_step_back(message.status, new):
            return
        previous = message.status
        message.status = new
        if new.final:
            message.finalized_at = dt_util.utcnow()
        self._notify(message, previous)
        if new.final:
            self._schedule()

    def _notify(self, message: TrackedMessage, previous: SmsStatus | None) -> None:
        self.hass.bus.async_fire(
            EVENT_DELIVERY_STATUS,
            {
                "config_entry_id": self._entry_id,
                "device_id": async_device_id(self.hass, self._entry_id, message.endpoint_id),
                "message_id": message.message_id,
                "status": message.status.value,
                "previous_status": previous.value if previous else None,
                "final": message.final,
                "provider": self._client.provider,
            },
        )
        async_dispatcher_send(
            self.hass, signal_message_updated(self._entry_id, message.endpoint_id), message
        )
        async_dispatcher_send(self.hass, signal_pending_changed(self._entry_id))
        self._store.async_schedule_save()

    async def async_cancel(self, message: TrackedMessage) -> CancelResult:
        """Cancel every part not yet final; report what could not be canceled and why."""
        result = CancelResult()
        if message.final:
            result.not_cancellable[message.message_id] = message.status.value
            return result
        reasons: list[str] = []
        for part in message.parts:
            if part.status.final:
                continue
            try:
                await self._client.async_cancel(message.endpoint_id, part.part_id)
            except NotCancellable as err:
                reasons.append(err.status or str(err))
                if err.status in _STATUS_VALUES:
                    self.async_apply(part.part_id, SmsStatus(err.status))
                continue
            self.async_apply(part.part_id, SmsStatus.CANCELED)
        if message.status is SmsStatus.CANCELED:
            result.canceled.append(message.message_id)
        else:
            result.not_cancellable[message.message_id] = (
                reasons[0] if reasons else message.status.value
            )
        return result

    # -- polling -------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._unsub_timer:
            self._unsub_timer()
            self._unsub_timer = None
            self._timer_at = None

    def _schedule(self) -> None:
        """Arm one timer for the earliest due message; none at all when nothing is pending."""
        pending = self.pending
        if not pending:
            self._cancel_timer()
            return
        when = min(message.next_poll for message in pending)
        if self._timer_at == when:
            return
        self._cancel_timer()
        self._timer_at = when
        self._unsub_timer = async_track_point_in_utc_time(self.hass, self._job, when)

    async def _async_timer_fired(self, now: datetime) -> None:
        self._unsub_timer = None
        self._timer_at = None
        await self.async_poll(now)

    @property
    def _timed_out(self) -> SmsStatus:
        """What a message the provider never concluded becomes once its validity ran out."""
        if SmsStatus.EXPIRED in self._client.capabilities.statuses:
            return SmsStatus.EXPIRED
        return SmsStatus.FAILED

    @callback
    def async_poll_soon(self, part_id: str) -> bool:
        """Poll the message of this part now (a callback said it changed); False if unknown."""
        message = self._by_part.get(part_id)
        if message is None:
            return False
        if not message.final:
            message.next_poll = dt_util.utcnow()
            self.hass.async_create_background_task(self.async_poll(), "iot_sms poll soon")
        return True

    async def async_poll(self, now: datetime | None = None) -> None:
        """Run one poll cycle: at most one provider request per endpoint with due messages."""
        async with self._poll_lock:
            now = max(now, dt_util.utcnow()) if now else dt_util.utcnow()
            due = [m for m in self.pending if m.next_poll <= now + POLL_COALESCE]
            if due:
                await self._async_poll_due(due, now)
            self._schedule()

    async def _async_poll_due(self, due: list[TrackedMessage], now: datetime) -> None:
        by_endpoint: dict[str, list[str]] = defaultdict(list)
        for message in due:
            by_endpoint[message.endpoint_id].extend(
                part.part_id for part in message.parts if not part.status.final
            )
        semaphore = asyncio.Semaphore(POLL_CONCURRENCY)
        answered: set[str] = set()

        async def poll_endpoint(endpoint_id: str, part_ids: list[str]) -> None:
            async with semaphore:
                try:
                    results = await self._client.async_poll(endpoint_id, part_ids)
                except AuthError:
                    self._on_auth_failed()
                    return
                except NotFound:
                    # The provider does not know the endpoint (any more): that is an answer.
                    answered.add(endpoint_id)
                    return
                except IotSmsError as err:
                    LOGGER.debug("Polling endpoint %s failed: %s", endpoint_id, err)
                    return
            answered.add(endpoint_id)
            for result in results:
                self.async_apply(result.part_id, result.status)

        await asyncio.gather(*(poll_endpoint(e, ids) for e, ids in by_endpoint.items()))

        for message in due:
            if message.final:
                continue
            overdue = now >= message.poll_deadline
            if overdue and message.endpoint_id in answered:
                # The provider answered and still did not call it final after validity ran
                # out. Only an answer may conclude this: a failed poll says nothing.
                for part in message.parts:
                    if not part.status.final:
                        part.status = self._timed_out
                self._update_aggregate(message)
                continue
            step = POLL_BACKOFF[message.polls] if message.polls < len(POLL_BACKOFF) else POLL_LATE
            message.polls += 1
            message.next_poll = now + step if overdue else min(now + step, message.poll_deadline)
        self._store.async_schedule_save()
