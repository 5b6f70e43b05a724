"""Sending: shared by the notify entities and the send_sms action."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util

from .api.errors import (
    AuthError,
    CharacterSetError,
    ConnectionFailed,
    DeliveryUnknown,
    IotSmsError,
    IpNotAllowedError,
    MessageTooLong,
    NoCredit,
    NotFound,
    NotSent,
    RateLimited,
)
from .api.models import MessagePart, SendOptions
from .const import DOMAIN, LOGGER
from .coordinator import IotSmsConfigEntry
from .tracker import TrackedMessage

# Seconds before each lookup of a send whose answer was lost: three lookups within a minute,
# the first at once. Not finding it is only concluded after all of them.
RECONCILE_DELAYS = (0.0, 20.0, 40.0)

_ERROR_KEYS: tuple[tuple[type[IotSmsError], str], ...] = (
    (DeliveryUnknown, "delivery_unknown"),
    (NotSent, "not_sent"),
    (AuthError, "auth_failed"),
    (IpNotAllowedError, "ip_not_allowed"),
    (RateLimited, "rate_limited"),
    (ConnectionFailed, "cannot_connect"),
    (NotFound, "endpoint_not_found"),
    (NoCredit, "no_credit"),
)


def user_error(entry: IotSmsConfigEntry, err: IotSmsError) -> HomeAssistantError:
    """Translate a client error into the error a user sees; bad credentials start reauth."""
    if isinstance(err, AuthError):
        entry.async_start_reauth(entry.runtime_data.coordinator.hass)
    key = next((key for kind, key in _ERROR_KEYS if isinstance(err, kind)), "provider_error")
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"error": str(err)},
    )


class PartiallySent(HomeAssistantError):
    """Some parts of a long text were accepted, then a part failed: the message is tracked."""

    def __init__(self, message: TrackedMessage, total: int, err: IotSmsError) -> None:
        """Carry the tracked message, so callers can report what did go out."""
        super().__init__(
            translation_domain=DOMAIN,
            translation_key="partially_sent",
            translation_placeholders={
                "sent": str(len(message.parts)),
                "total": str(total),
                "message_id": message.message_id,
                "error": str(err),
            },
        )
        self.message = message


def plan_sms(entry: IotSmsConfigEntry, text: str) -> list[MessagePart]:
    """Check a text and split it into the parts this entry's provider sends; sends nothing."""
    if not text.strip():
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="empty_message")
    client = entry.runtime_data.client
    try:
        return client.plan_message(text)
    except MessageTooLong as err:
        capabilities = client.capabilities
        if capabilities.max_parts == 1:
            # No concatenation: say so, rather than a part count that cannot be reached.
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="message_too_long_single",
                translation_placeholders={
                    "title": entry.title,
                    "max_chars": str(capabilities.max_single_chars),
                },
            ) from err
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="message_too_long",
            translation_placeholders={"max_parts": str(capabilities.max_parts)},
        ) from err
    except CharacterSetError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unsupported_characters",
            translation_placeholders={"title": entry.title, "error": str(err)},
        ) from err


def check_send_options(
    entry: IotSmsConfigEntry, *, sender: str | None, validity: timedelta | None
) -> None:
    """Refuse options this entry's provider cannot honour, before anything is sent."""
    capabilities = entry.runtime_data.client.capabilities
    if sender and not capabilities.custom_sender:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="sender_not_supported",
            translation_placeholders={"title": entry.title},
        )
    if validity is not None and not capabilities.validity:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="validity_not_supported",
            translation_placeholders={"title": entry.title},
        )


async def async_send_sms(
    entry: IotSmsConfigEntry,
    endpoint_id: str,
    text: str,
    *,
    sender: str | None = None,
    validity: timedelta | None = None,
) -> TrackedMessage:
    """Send a text (split into parts as needed) and start tracking it."""
    parts = plan_sms(entry, text)
    return await async_send_planned(entry, endpoint_id, parts, sender=sender, validity=validity)


async def async_send_planned(
    entry: IotSmsConfigEntry,
    endpoint_id: str,
    parts: list[MessagePart],
    *,
    sender: str | None = None,
    validity: timedelta | None = None,
) -> TrackedMessage:
    """Send parts planned by plan_sms and start tracking them."""
    data = entry.runtime_data
    expires_at = dt_util.utcnow() + validity if validity else None
    options = SendOptions(sender=sender, expires_at=expires_at)
    part_ids: list[str] = []
    reconciled = False
    for part in parts:
        sent_after = dt_util.utcnow()
        try:
            try:
                part_ids.append(await data.client.async_send_part(endpoint_id, part, options))
            except DeliveryUnknown as unknown:
                part_ids.append(
                    await _async_reconcile(entry, endpoint_id, part, sent_after, part_ids, unknown)
                )
                reconciled = True
        except IotSmsError as err:
            if not part_ids:
                raise user_error(entry, err) from err
            # Parts already accepted are real SMS on their way: keep following them.
            message = data.tracker.async_track(endpoint_id, part_ids, expires_at)
            raise PartiallySent(message, len(parts), err) from err
    message = data.tracker.async_track(endpoint_id, part_ids, expires_at)
    message.reconciled = reconciled
    return message


async def _async_reconcile(
    entry: IotSmsConfigEntry,
    endpoint_id: str,
    part: MessagePart,
    sent_after: datetime,
    sent_now: list[str],
    unknown: DeliveryUnknown,
) -> str:
    """Find out whether a send whose answer was lost reached the provider; never resend.

    Returns the part's id when the provider has it; raises NotSent when the provider answered
    every lookup without it, or the original DeliveryUnknown when it could not be asked.
    """
    data = entry.runtime_data
    known = {p.part_id for m in data.tracker.for_endpoint(endpoint_id) for p in m.parts}
    known.update(sent_now)
    answered = 0
    for delay in RECONCILE_DELAYS:
        await asyncio.sleep(delay)
        try:
            found = await data.client.async_find_sent(endpoint_id, part, sent_after, known)
        except IotSmsError as err:
            LOGGER.debug("Looking up an SMS whose send answer was lost failed: %s", err)
            continue
        if found is not None:
            LOGGER.info("An SMS whose send answer was lost reached the provider as %s", found)
            return found
        answered += 1
    if answered == len(RECONCILE_DELAYS):
        raise NotSent(f"the provider does not have the SMS ({unknown})") from unknown
    LOGGER.warning(
        "Could not find out whether an SMS to %s reached the provider: %s", endpoint_id, unknown
    )
    raise unknown
