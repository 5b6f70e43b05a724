"""Sending: shared by the notify entities and the send_sms action."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util

from .api.errors import (
    AuthError,
    ConnectionFailed,
    DeliveryUnknown,
    IotSmsError,
    IpNotAllowedError,
    MessageTooLong,
    NoCredit,
    NotFound,
    RateLimited,
)
from .api.models import SendOptions
from .const import DOMAIN, MAX_PARTS
from .coordinator import IotSmsConfigEntry
from .tracker import TrackedMessage

_ERROR_KEYS: tuple[tuple[type[IotSmsError], str], ...] = (
    (DeliveryUnknown, "delivery_unknown"),
    (AuthError, "auth_failed"),
    (IpNotAllowedError, "ip_not_allowed"),
    (RateLimited, "rate_limited"),
    (ConnectionFailed, "cannot_connect"),
    (NotFound, "endpoint_not_found"),
    (NoCredit, "no_credit"),
)


def provider_error(entry: IotSmsConfigEntry, err: IotSmsError) -> HomeAssistantError:
    """Translate a client error into the error a user sees; bad credentials start reauth."""
    if isinstance(err, AuthError):
        entry.async_start_reauth(entry.runtime_data.coordinator.hass)
    key = next((key for kind, key in _ERROR_KEYS if isinstance(err, kind)), "provider_error")
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"error": str(err)},
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
    if not text.strip():
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="empty_message")
    data = entry.runtime_data
    try:
        parts = data.client.plan_message(text)
    except MessageTooLong as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="message_too_long",
            translation_placeholders={"max_parts": str(MAX_PARTS)},
        ) from err
    expires_at = dt_util.utcnow() + validity if validity else None
    options = SendOptions(sender=sender, expires_at=expires_at)
    part_ids: list[str] = []
    for part in parts:
        try:
            part_ids.append(await data.client.async_send_part(endpoint_id, part, options))
        except IotSmsError as err:
            if not part_ids:
                raise provider_error(entry, err) from err
            # Parts already accepted are real SMS on their way: keep following them.
            message = data.tracker.async_track(endpoint_id, part_ids, expires_at)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="partially_sent",
                translation_placeholders={
                    "sent": str(len(part_ids)),
                    "total": str(len(parts)),
                    "message_id": message.message_id,
                    "error": str(err),
                },
            ) from err
    return data.tracker.async_track(endpoint_id, part_ids, expires_at)
