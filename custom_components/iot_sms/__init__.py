"""IoT SIM SMS: send SMS to cellular IoT devices, know they arrived, react to replies."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from ipaddress import ip_address
from typing import Any

from aiohttp import web
from aiohttp.hdrs import METH_GET, METH_POST, METH_PUT
from homeassistant.components import webhook
from homeassistant.const import CONF_WEBHOOK_ID, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType
from homeassistant.util.network import is_local
from yarl import URL

from .compat import remove_device
from .const import CONF_BASE_URL, DOMAIN
from .coordinator import EndpointCoordinator, IotSmsConfigEntry, IotSmsData
from .devices import endpoint_id_from_device, hub_identifier
from .factory import create_client
from .inbound import InboundRouter, IotSmsCallbackView, async_callback_url
from .logbook import async_load_sentences
from .services import async_setup_services
from .store import IotSmsStore
from .tracker import MessageTracker
from .webhook_urls import async_remove_cloudhook

PLATFORMS = [Platform.EVENT, Platform.NOTIFY, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the callback view once for all entries."""
    async_setup_services(hass)
    hass.http.register_view(IotSmsCallbackView())
    await async_load_sentences(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: IotSmsConfigEntry) -> bool:
    """Set up one provider account."""
    webhook_id: str = entry.data[CONF_WEBHOOK_ID]
    client = create_client(
        async_get_clientsession(hass),
        entry.data,
        async_callback_url(hass, webhook_id, external=False),
    )
    coordinator = EndpointCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()

    store = IotSmsStore(hass, entry.entry_id)
    tracker = MessageTracker(
        hass, entry.entry_id, client, store, on_auth_failed=lambda: entry.async_start_reauth(hass)
    )
    inbound = InboundRouter(
        hass,
        entry.entry_id,
        client,
        tracker,
        store,
        coordinator.find,
        coordinator.async_endpoint_unknown,
    )
    stored = await store.async_load()
    tracker.async_restore(stored.get("messages", []))
    inbound.async_restore(stored.get("seen_inbound", []), stored.get("partial_inbound", []))
    hub = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={hub_identifier(entry.entry_id)},
        name=entry.title,
        manufacturer=client.provider_name,
        model="SMS account",
        entry_type=dr.DeviceEntryType.SERVICE,
    )
    entry.runtime_data = IotSmsData(client, coordinator, tracker, inbound, hub.id)
    _async_remove_stale_devices(hass, entry)
    entry.async_on_unload(
        coordinator.async_add_listener(lambda: _async_remove_stale_devices(hass, entry))
    )

    async def handle_webhook(
        hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        return await inbound.async_handle_request(request)

    # A standard webhook too: it can be a Nabu Casa cloudhook, which the own view cannot.
    webhook.async_register(
        hass,
        DOMAIN,
        entry.title,
        webhook_id,
        handle_webhook,
        local_only=False,
        allowed_methods=(METH_GET, METH_POST, METH_PUT),
    )
    entry.async_on_unload(lambda: webhook.async_unregister(hass, webhook_id))
    _async_check_reachable(hass, entry)

    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_reload_on_change(entry)))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: IotSmsConfigEntry) -> bool:
    """Unload an entry; tracked messages are written to disk first."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.inbound.async_shutdown()
        await entry.runtime_data.tracker.async_shutdown()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: IotSmsConfigEntry) -> None:
    """Delete the entry's stored messages and its repair issue."""
    await IotSmsStore(hass, entry.entry_id).async_remove()
    await async_remove_cloudhook(hass, entry.data[CONF_WEBHOOK_ID])
    ir.async_delete_issue(hass, DOMAIN, _issue_id(entry))


def _async_reload_on_change(
    entry: IotSmsConfigEntry,
) -> Callable[[HomeAssistant, IotSmsConfigEntry], Coroutine[Any, Any, None]]:
    """Reload when what the entry was loaded with changes: data, options or SIM subentries.

    The only place that reloads: flows that change the entry (reauth, reconfigure, options,
    callback registration, SIMs) update it and leave the reload to this listener. A title
    change alone needs no reload.
    """
    loaded_with = _loaded_with(entry)

    async def _async_reload(hass: HomeAssistant, entry: IotSmsConfigEntry) -> None:
        if _loaded_with(entry) != loaded_with:
            hass.config_entries.async_schedule_reload(entry.entry_id)

    return _async_reload


def _loaded_with(entry: IotSmsConfigEntry) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    return dict(entry.data), dict(entry.options), set(entry.subentries)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: IotSmsConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing an endpoint device only once the endpoint is gone from the account."""
    endpoint_id = endpoint_id_from_device(entry.entry_id, device)
    return endpoint_id is not None and endpoint_id not in entry.runtime_data.coordinator.data


@callback
def _async_remove_stale_devices(hass: HomeAssistant, entry: IotSmsConfigEntry) -> None:
    current = entry.runtime_data.coordinator.data
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        endpoint_id = endpoint_id_from_device(entry.entry_id, device)
        if endpoint_id is not None and endpoint_id not in current:
            remove_device(registry, device, entry.entry_id)


def _issue_id(entry: IotSmsConfigEntry) -> str:
    return f"no_external_url_{entry.entry_id}"


def _provider_is_nearby(base_url: str | None) -> bool:
    """Whether the provider's API runs on this host or network (a simulator, a test system).

    Such a provider can call Home Assistant's internal URL; one on the internet cannot.
    """
    host = URL(base_url).host if base_url else None
    if not host:
        return False
    try:
        return is_local(ip_address(host))
    except ValueError:
        # A name: "localhost", a single label or mDNS name only resolve on the local network.
        return host == "localhost" or "." not in host or host.endswith((".local", ".lan"))


@callback
def _async_check_reachable(hass: HomeAssistant, entry: IotSmsConfigEntry) -> None:
    """Raise a repair issue while the provider cannot call Home Assistant back.

    Not while Home Assistant has an external URL, nor for a provider on this network (it can
    use the internal URL), nor for one that pushes nothing.
    """
    if (
        not entry.runtime_data.client.capabilities.push_reports
        or async_callback_url(hass, entry.data[CONF_WEBHOOK_ID], external=True)
        or _provider_is_nearby(entry.data.get(CONF_BASE_URL))
    ):
        ir.async_delete_issue(hass, DOMAIN, _issue_id(entry))
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        _issue_id(entry),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="no_external_url",
        translation_placeholders={"title": entry.title},
    )
