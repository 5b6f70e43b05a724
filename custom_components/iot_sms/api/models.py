"""Provider-neutral models every client returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal


class SmsStatus(StrEnum):
    """Delivery state of an outgoing SMS, as the contract names it."""

    QUEUED = "queued"
    SENT = "sent"
    BUFFERED = "buffered"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        """Whether no further change can happen."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {SmsStatus.DELIVERED, SmsStatus.FAILED, SmsStatus.EXPIRED, SmsStatus.CANCELED}
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do. The layers above ask this, never the provider's name."""

    lists_endpoints: bool = True
    """SIMs are discovered from the account; otherwise the user adds them by hand."""
    filters_by_tag: bool = False
    """async_list_endpoints(tag=...) filters on a provider-side tag."""
    cancel: bool = True
    """async_cancel can withdraw an SMS that is not yet delivered."""
    max_parts: int = 10
    """Parts a text may be split into; 1 means no concatenation."""
    max_single_chars: int = 160
    """Characters one SMS part carries at most (GSM-7), for the error text."""
    validity: bool = True
    """The sender may choose how long the provider keeps trying (SendOptions.expires_at)."""
    custom_sender: bool = True
    """The sender may choose the source address (SendOptions.sender)."""
    push_reports: bool = True
    """The provider pushes delivery reports or replies to the integration's URL."""
    registers_callbacks: bool = False
    """async_list_service_profiles/async_register_callback can point the provider at our URL."""
    statuses: frozenset[SmsStatus] = frozenset(SmsStatus)
    """Statuses this provider can report; an expiry it cannot report shows as failed."""


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Who the credentials belong to."""

    unique_id: str
    title: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One SIM endpoint (a device in the field)."""

    id: str
    name: str
    msisdn: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    imei: str | None = None
    tags: tuple[str, ...] = ()
    service_profile_id: str | None = None
    service_profile_name: str | None = None


@dataclass(frozen=True, slots=True)
class MessagePart:
    """One SMS on the wire, as planned by a client before sending."""

    text: str
    encoding: Literal["gsm7", "ucs2"]
    udh: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """The provider's view of one sent SMS part."""

    part_id: str
    status: SmsStatus | None
    raw_status: str
    endpoint_id: str | None = None
    submitted_at: datetime | None = None
    final_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A pushed status update for one sent SMS part."""

    part_id: str
    status: SmsStatus | None
    raw_status: str
    final_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MultipartInfo:
    """Concatenation data of one part of an incoming message."""

    reference: str
    number: int
    total: int


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A mobile-originated SMS (or one part of it)."""

    message_id: str
    sender: str
    text: str
    received_at: datetime
    recipient: str | None = None
    endpoint_id: str | None = None
    multipart: MultipartInfo | None = None


@dataclass(frozen=True, slots=True)
class ServiceProfile:
    """A provider-side group of endpoints sharing one callback (emnify service profile)."""

    id: str
    name: str
    callback_url: str | None = None
    callback_id: str | None = None
    secret_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """An inbound HTTP request, reduced to what parsers need (no aiohttp types)."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    content_type: str = ""
    url: str = ""
    """The URL as the provider called it (scheme, host, path, query), for URL-signed callbacks."""


@dataclass(frozen=True, slots=True)
class PollHint:
    """A callback that only says a sent part changed, without a status to trust: poll it now."""

    part_id: str


@dataclass(frozen=True, slots=True)
class IncomingHint:
    """A callback that names a new incoming message without its content: fetch it.

    `message_id` is the provider's id (for deduplication before anything is fetched).
    """

    message_id: str
    endpoint_id: str | None = None


type CallbackItem = DeliveryReport | IncomingMessage | PollHint | IncomingHint


@dataclass(frozen=True, slots=True)
class SendOptions:
    """Per-send options; unset fields are not sent to the provider."""

    sender: str | None = None
    expires_at: datetime | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
