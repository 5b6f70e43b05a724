"""Diagnostics with every secret and subscriber identifier redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_API_TOKEN, CONF_PASSWORD, CONF_USERNAME, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant

from .api.numbers import normalize_msisdn
from .const import (
    CONF_ACCOUNT_SID,
    CONF_API_MSISDN,
    CONF_AUTH_TOKEN,
    CONF_CALLBACK_SECRET,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_WEBHOOK_SECRET,
)
from .coordinator import IotSmsConfigEntry
from .inbound import async_callback_url

TO_REDACT = {
    CONF_API_TOKEN,
    CONF_PASSWORD,
    CONF_USERNAME,
    CONF_WEBHOOK_ID,
    CONF_CALLBACK_SECRET,
    CONF_API_MSISDN,
    CONF_AUTH_TOKEN,
    CONF_ACCOUNT_SID,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_WEBHOOK_SECRET,
    "callback_url",
    "msisdn",
    "iccid",
    "imsi",
    "imei",
    "unique_id",
    "title",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: IotSmsConfigEntry
) -> dict[str, Any]:
    """Entry, endpoints and tracked messages; no secret, number or message text."""
    data = entry.runtime_data
    endpoints = data.coordinator.data.values()
    # Some providers address a SIM by its phone number or ICCID: such an id is as private as
    # that identifier. Anything else a message was sent to (an ad-hoc recipient) may be a
    # number too.
    shown_ids = {
        e.id
        for e in endpoints
        if e.id not in (e.iccid, e.imsi, e.imei)
        and (e.msisdn is None or normalize_msisdn(e.id) != e.msisdn)
    }
    return async_redact_data(
        {
            "entry": {
                "title": entry.title,
                "unique_id": entry.unique_id,
                "data": dict(entry.data),
                "options": dict(entry.options),
            },
            "provider": data.client.provider,
            "callback_url": async_callback_url(hass, entry.data[CONF_WEBHOOK_ID], external=False),
            "account_available": data.coordinator.last_update_success,
            "endpoints": [
                asdict(endpoint) | {"id": _shown(endpoint.id, shown_ids)} for endpoint in endpoints
            ],
            "pending_messages": data.tracker.pending_count,
            "messages": [
                message.as_dict() | {"endpoint_id": _shown(message.endpoint_id, shown_ids)}
                for message in data.tracker.pending
            ],
        },
        TO_REDACT,
    )


def _shown(endpoint_id: str, shown_ids: set[str]) -> str:
    return endpoint_id if endpoint_id in shown_ids else REDACTED
