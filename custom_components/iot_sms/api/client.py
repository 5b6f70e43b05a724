"""The interface both provider clients satisfy; nothing above `api/` knows which one it has."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from .models import (
    AccountInfo,
    CallbackItem,
    CallbackRequest,
    Capabilities,
    Endpoint,
    IncomingHint,
    IncomingMessage,
    MessagePart,
    OutgoingMessage,
    SendOptions,
    ServiceProfile,
)


class SmsClient(Protocol):
    """An SMS provider account."""

    @property
    def provider(self) -> str:
        """Short provider name, reported in events and diagnostics."""
        ...

    @property
    def provider_name(self) -> str:
        """The provider's name as people write it (the hub device's manufacturer)."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this provider can do (cancel, concatenation, listing SIMs, push, ...)."""
        ...

    async def async_get_account(self) -> AccountInfo:
        """Validate the credentials and return the account's identity."""
        ...

    async def async_list_endpoints(self, tag: str | None = None) -> list[Endpoint]:
        """Return every endpoint on the account (all pages), optionally filtered by tag."""
        ...

    def plan_message(self, text: str) -> list[MessagePart]:
        """Split a text into the SMS parts that will be sent; raise MessageTooLong."""
        ...

    async def async_send_part(
        self, endpoint_id: str, part: MessagePart, options: SendOptions
    ) -> str:
        """Send one part and return its provider id; never retried once it may have arrived."""
        ...

    async def async_find_sent(
        self,
        endpoint_id: str,
        part: MessagePart,
        sent_after: datetime,
        known: Collection[str],
    ) -> str | None:
        """Look up a send whose outcome is unknown: its id, or None if provably not there.

        `known` are ids already tracked, which cannot be this send.
        """
        ...

    async def async_poll(self, endpoint_id: str, part_ids: Sequence[str]) -> list[OutgoingMessage]:
        """Return the current state of the given parts of one endpoint, as cheaply as possible."""
        ...

    async def async_cancel(self, endpoint_id: str, part_id: str) -> None:
        """Cancel one part; raise NotCancellable when the provider says it is too late."""
        ...

    def parse_callback(self, request: CallbackRequest) -> list[CallbackItem]:
        """Verify and parse an inbound callback; raise InvalidCallback or SignatureError."""
        ...

    async def async_fetch_incoming(self, hint: IncomingHint) -> IncomingMessage | None:
        """Read the incoming message a callback only named (None if the provider has none)."""
        ...

    async def async_list_service_profiles(self) -> list[ServiceProfile]:
        """Return the callback groups used by the account's endpoints ([] if none exist)."""
        ...

    async def async_register_callback(
        self, profile_id: str, url: str, secret: str
    ) -> ServiceProfile:
        """Point a service profile's callback at url, signed with secret."""
        ...
