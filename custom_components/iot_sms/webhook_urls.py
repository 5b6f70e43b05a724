"""The standard webhook URL: the one that can be a Nabu Casa cloudhook."""

from __future__ import annotations

from types import ModuleType

from homeassistant.components import webhook
from homeassistant.core import HomeAssistant
from homeassistant.helpers.network import NoURLAvailableError


def _active_cloud(hass: HomeAssistant) -> ModuleType | None:
    """The cloud component when Home Assistant Cloud is subscribed, else None."""
    if "cloud" not in hass.config.components:
        return None
    # Imported only when cloud is loaded: it pulls in camera and much more.
    from homeassistant.components import cloud

    return cloud if cloud.async_active_subscription(hass) else None


async def async_webhook_url(hass: HomeAssistant, webhook_id: str) -> str | None:
    """Cloudhook when Nabu Casa is active (reachable without remote UI), else the plain URL."""
    if cloud := _active_cloud(hass):
        url: str = await cloud.async_get_or_create_cloudhook(hass, webhook_id)
        return url
    try:
        return webhook.async_generate_url(hass, webhook_id)
    except NoURLAvailableError:
        return None


async def async_remove_cloudhook(hass: HomeAssistant, webhook_id: str) -> None:
    """Delete the cloudhook of a removed entry, if one was created."""
    if cloud := _active_cloud(hass):
        await cloud.async_delete_cloudhook(hass, webhook_id)
