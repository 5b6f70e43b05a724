"""Logbook entries for replies: short, translated sentences.

Delivery changes get no entry of their own: the "Last SMS status" sensor already logs each
one, translated and with its icon, and a second entry per change only repeated it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.translation import (
    async_get_cached_translations,
    async_get_translations,
)

from .const import DOMAIN, EVENT_MESSAGE_RECEIVED

# The logbook has no translation keys of its own: the sentences live in strings.json.
CATEGORY = "logbook"
FALLBACK_LANGUAGE = "en"


async def async_load_sentences(hass: HomeAssistant) -> None:
    """Load the sentences once, so the describers (plain callbacks) can read them."""
    for language in {hass.config.language, FALLBACK_LANGUAGE}:
        await async_get_translations(hass, language, CATEGORY, {DOMAIN})


def _sentence(hass: HomeAssistant, key: str, **placeholders: str) -> str:
    for language in (hass.config.language, FALLBACK_LANGUAGE):
        strings = async_get_cached_translations(hass, language, CATEGORY, DOMAIN)
        if text := strings.get(f"component.{DOMAIN}.{CATEGORY}.{key}"):
            return text.format(**placeholders)
    return key


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe replies: from a device, or from a sender that is no device."""
    devices = dr.async_get(hass)
    entities = er.async_get(hass)

    def _device_name(data: Mapping[str, Any]) -> str | None:
        device = devices.async_get(data["device_id"]) if data.get("device_id") else None
        return (device.name_by_user or device.name) if device else None

    def _entity(data: Mapping[str, Any], translation_key: str) -> dict[str, str]:
        """Link the entry to the entity that shows the same thing: its icon, its history."""
        device_id = data.get("device_id")
        if device_id:
            found = next(
                (
                    e.entity_id
                    for e in er.async_entries_for_device(entities, device_id)
                    if e.translation_key == translation_key
                ),
                None,
            )
        else:
            entry = hass.config_entries.async_get_entry(data.get("config_entry_id", ""))
            found = (
                entities.async_get_entity_id(
                    "event", DOMAIN, f"{entry.unique_id}_{translation_key}"
                )
                if entry
                else None
            )
        return {LOGBOOK_ENTRY_ENTITY_ID: found} if found else {}

    @callback
    def describe_received(event: Event) -> dict[str, str]:
        data = event.data
        text = str(data.get("text", ""))
        if (name := _device_name(data)) is not None:
            return {
                LOGBOOK_ENTRY_NAME: name,
                LOGBOOK_ENTRY_MESSAGE: _sentence(hass, "reply", text=text),
            } | _entity(data, "incoming_sms")
        return {
            LOGBOOK_ENTRY_NAME: _sentence(hass, "unknown_sender"),
            LOGBOOK_ENTRY_MESSAGE: _sentence(
                hass, "from_unknown", sender=str(data.get("sender", "")), text=text
            ),
        } | _entity(data, "unknown_sender_sms")

    async_describe_event(DOMAIN, EVENT_MESSAGE_RECEIVED, describe_received)
