"""Mapping between provider endpoints and Home Assistant devices."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .compat import device_by_identifier
from .const import DOMAIN


def hub_identifier(entry_id: str) -> tuple[str, str]:
    """Device identifier of an account's hub."""
    return (DOMAIN, entry_id)


def endpoint_identifier(entry_id: str, endpoint_id: str) -> tuple[str, str]:
    """Device identifier of one endpoint; the entry id keeps two accounts apart."""
    return (DOMAIN, f"{entry_id}_{endpoint_id}")


def endpoint_id_from_device(entry_id: str, device: dr.DeviceEntry) -> str | None:
    """Return the endpoint id a device stands for, or None for the hub or foreign devices."""
    prefix = f"{entry_id}_"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            return identifier.removeprefix(prefix)
    return None


def async_device_id(hass: HomeAssistant, entry_id: str, endpoint_id: str) -> str | None:
    """Return the device id of an endpoint, if the device exists."""
    device = device_by_identifier(
        dr.async_get(hass), endpoint_identifier(entry_id, endpoint_id), entry_id
    )
    return device.id if device else None
