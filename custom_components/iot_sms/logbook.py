"""Readable logbook entries for incoming SMS and delivery changes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN, EVENT_DELIVERY_STATUS, EVENT_MESSAGE_RECEIVED


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the integration's bus events."""
    registry = dr.async_get(hass)

    def _name(data: Mapping[str, Any]) -> str:
        device = registry.async_get(data["device_id"]) if data.get("device_id") else None
        return (device.name_by_user or device.name or "SMS") if device else "Unknown sender"

    @callback
    def describe_received(event: Event) -> dict[str, str]:
        return {
            LOGBOOK_ENTRY_NAME: _name(event.data),
            LOGBOOK_ENTRY_MESSAGE: f'sent an SMS: "{event.data.get("text", "")}"',
        }

    @callback
    def describe_status(event: Event) -> dict[str, str]:
        return {
            LOGBOOK_ENTRY_NAME: _name(event.data),
            LOGBOOK_ENTRY_MESSAGE: (
                f"SMS {event.data.get('message_id')} is {event.data.get('status')}"
            ),
        }

    async_describe_event(DOMAIN, EVENT_MESSAGE_RECEIVED, describe_received)
    async_describe_event(DOMAIN, EVENT_DELIVERY_STATUS, describe_status)
