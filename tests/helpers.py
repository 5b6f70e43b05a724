"""Small helpers the test modules share."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.iot_sms.const import DOMAIN


def device_id(hass: HomeAssistant, name: str) -> str:
    """Device id of the device with this name (endpoint names are unique in the tests)."""
    registry = dr.async_get(hass)
    return next(
        device.id
        for entry in hass.config_entries.async_entries(DOMAIN)
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.name == name
    )


async def call_action(hass: HomeAssistant, service: str, data: dict[str, Any]) -> Any:
    """Call an iot_sms action and return its response."""
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def send_sms(hass: HomeAssistant, device: str, message: str, **extra: Any) -> Any:
    """iot_sms.send_sms to one device by name; returns the whole response."""
    return await call_action(
        hass, "send_sms", {"device_id": device_id(hass, device), "message": message, **extra}
    )
