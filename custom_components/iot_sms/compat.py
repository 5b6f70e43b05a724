"""Differences between the Home Assistant versions the integration supports, in one place.

The minimum is 2025.4; the newest releases changed the device registry (since 2026.8 a device
belongs to exactly one config entry, and the lookups and `via_device` that assumed otherwise are
deprecated) and replaced voluptuous by probatio. Each difference is decided once, here, from what
the running version offers; nothing else in the integration looks at the version.

`mypy` checks one side of each `if` per version: `scripts/test` passes `--always-true` or
`--always-false` for `SINGLE_ENTRY_DEVICES` and `PROBATIO` to match the version it checks against.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.util import find_spec

from homeassistant.helpers import device_registry as dr

# Home Assistant 2026.8+: devices owned by one config entry, looked up per entry.
SINGLE_ENTRY_DEVICES = hasattr(dr.DeviceRegistry, "async_get_device_by_identifier")
# Newer releases validate with probatio and alias `voluptuous` to it at start-up; type-check
# (and import) the library the running version actually validates with.
PROBATIO = find_spec("probatio") is not None

if PROBATIO:
    import probatio as vol
else:
    import voluptuous as vol

__all__ = [
    "PROBATIO",
    "SINGLE_ENTRY_DEVICES",
    "device_by_id",
    "device_by_identifier",
    "device_entry_ids",
    "device_subentry_id",
    "remove_device",
    "via_device",
    "vol",
]


def device_by_id(registry: dr.DeviceRegistry, device_id: str) -> dr.DeviceEntry | None:
    """The device with this id; newer registries also hold child devices, which are not ours."""
    if SINGLE_ENTRY_DEVICES:
        return registry.async_get(device_id, include_child_devices=False)
    else:
        return registry.async_get(device_id)


def device_by_identifier(
    registry: dr.DeviceRegistry, identifier: tuple[str, str], entry_id: str
) -> dr.DeviceEntry | None:
    """The device of this config entry with this identifier."""
    if SINGLE_ENTRY_DEVICES:
        return registry.async_get_device_by_identifier(identifier, entry_id)
    else:
        device = registry.async_get_device(identifiers={identifier})
        return device if device is not None and entry_id in device.config_entries else None


def device_entry_ids(device: dr.DeviceEntry) -> Iterable[str]:
    """The config entries a device belongs to (exactly one on newer versions)."""
    if SINGLE_ENTRY_DEVICES:
        return (device.config_entry_id,)
    else:
        return device.config_entries


def device_subentry_id(device: dr.DeviceEntry, entry_id: str) -> str | None:
    """The config subentry of `entry_id` the device belongs to, if any."""
    if SINGLE_ENTRY_DEVICES:
        return device.config_subentry_id if device.config_entry_id == entry_id else None
    else:
        subentries = device.config_entries_subentries.get(entry_id, set())
        return next((subentry for subentry in subentries if subentry is not None), None)


def remove_device(registry: dr.DeviceRegistry, device: dr.DeviceEntry, entry_id: str) -> None:
    """Remove the entry's device (on older versions: the entry from a possibly shared device)."""
    if SINGLE_ENTRY_DEVICES:
        registry.async_remove_device(device.id)
    else:
        registry.async_update_device(device.id, remove_config_entry_id=entry_id)


def via_device(hub_device_id: str, hub_identifier: tuple[str, str]) -> dr.DeviceInfo:
    """The part of an endpoint's device info that places it under the account's hub."""
    if SINGLE_ENTRY_DEVICES:
        return dr.DeviceInfo(via_device_id=hub_device_id)
    else:
        return dr.DeviceInfo(via_device=hub_identifier)
