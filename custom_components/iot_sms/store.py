"""Persistence of tracked messages, seen inbound ids and partly received replies.

One file per entry, so a restart loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .const import DOMAIN

STORAGE_VERSION = 1
# Batches the writes of a burst of status changes into one.
SAVE_DELAY = 5

type StoreData = dict[str, Any]


class IotSmsStore:
    """One storage file per config entry, written in batches."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Prepare the store; nothing is read until async_load."""
        self._store: Store[StoreData] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}", private=True, atomic_writes=True
        )
        self._sections: dict[str, Callable[[], Any]] = {}
        self._save_scheduled = False

    def register(self, section: str, dump: Callable[[], Any]) -> None:
        """Make dump() provide one section of the data written to disk."""
        self._sections[section] = dump

    async def async_load(self) -> StoreData:
        """Return the stored data, or an empty dict on first start."""
        return await self._store.async_load() or {}

    def _collect(self) -> StoreData:
        self._save_scheduled = False
        return {section: dump() for section, dump in self._sections.items()}

    def async_schedule_save(self) -> None:
        """Write within SAVE_DELAY of the first change; later changes ride along.

        Re-arming the delay on every change would postpone the write forever under a
        steady stream of messages, and costs a timer per callback.
        """
        if self._save_scheduled:
            return
        self._save_scheduled = True
        self._store.async_delay_save(self._collect, SAVE_DELAY)

    async def async_flush(self) -> None:
        """Write now (unload), replacing any pending delayed write."""
        await self._store.async_save(self._collect())

    async def async_remove(self) -> None:
        """Delete the file when the entry is removed."""
        await self._store.async_remove()
