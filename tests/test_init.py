"""Set-up, devices and entities, dynamic and stale devices, unload, diagnostics, translations."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_TOKEN, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.iot_sms.const import CONF_BASE_URL, DOMAIN
from simulator.emnify import EmnifySimulator

INTEGRATION = Path(__file__).parent.parent / "custom_components" / "iot_sms"


def _devices(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, dr.DeviceEntry]:
    registry = dr.async_get(hass)
    return {d.name: d for d in dr.async_entries_for_config_entry(registry, entry.entry_id)}


async def test_devices_and_entities(hass: HomeAssistant, setup_emnify: MockConfigEntry) -> None:
    """One device per endpoint under the account's hub, each with its four entities."""
    devices = _devices(hass, setup_emnify)
    assert set(devices) == {"Demo Fleet", "Pump station", "Remote gateway", "Tracker"}
    hub = devices["Demo Fleet"]
    for name in ("Pump station", "Remote gateway", "Tracker"):
        assert devices[name].via_device_id == hub.id
    entities = er.async_entries_for_device(er.async_get(hass), devices["Pump station"].id)
    assert sorted(e.entity_id for e in entities) == [
        "event.pump_station_incoming_sms",
        "notify.pump_station_sms",
        "sensor.pump_station_last_incoming_sms",
        "sensor.pump_station_last_sms_status",
    ]
    hub_entities = er.async_entries_for_device(er.async_get(hass), hub.id)
    assert sorted(e.entity_id for e in hub_entities) == [
        "event.demo_fleet_incoming_sms_from_unknown_sender",
        "sensor.demo_fleet_pending_sms",
    ]
    status = hass.states.get("sensor.pump_station_last_sms_status")
    assert status.attributes["options"] == [
        "queued",
        "sent",
        "buffered",
        "delivered",
        "failed",
        "expired",
        "canceled",
    ]
    pending = hass.states.get("sensor.demo_fleet_pending_sms")
    assert pending.state == "0"
    # The editor's "value changes" trigger for the hub needs a unit and a state class.
    assert pending.attributes["unit_of_measurement"] == "messages"
    assert pending.attributes["state_class"] == "measurement"


async def test_endpoints_appear_and_disappear(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_sim: EmnifySimulator
) -> None:
    """Endpoints added to or removed from the account follow at the next refresh."""
    new = emnify_sim.add_endpoint("Charger 7", "online")
    gone = next(e.id for e in emnify_sim.endpoints.values() if e.name == "Remote gateway")
    emnify_sim.remove_endpoint(gone)

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=16))
    await hass.async_block_till_done(wait_background_tasks=True)

    devices = _devices(hass, setup_emnify)
    assert "Charger 7" in devices
    assert "Remote gateway" not in devices
    assert hass.states.get("notify.charger_7_sms") is not None
    assert str(new.id) in setup_emnify.runtime_data.coordinator.data


async def test_tag_filter(
    hass: HomeAssistant,
    emnify_entry: MockConfigEntry,
    emnify_endpoints: dict[str, int],
    emnify_sim: EmnifySimulator,
) -> None:
    """With a tag in the options only tagged endpoints become devices."""
    emnify_sim.endpoints[emnify_endpoints["echo"]].tags = "pumps,field"
    hass.config_entries.async_update_entry(emnify_entry, options={"tag": "pumps"})
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    assert set(_devices(hass, emnify_entry)) == {"Demo Fleet", "Tracker"}


async def test_unload_and_reload(hass: HomeAssistant, setup_emnify: MockConfigEntry) -> None:
    """Unloading makes the entities unavailable; reloading brings them back."""
    assert await hass.config_entries.async_unload(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert setup_emnify.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get("notify.pump_station_sms").state == STATE_UNAVAILABLE

    assert await hass.config_entries.async_setup(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert setup_emnify.state is ConfigEntryState.LOADED
    assert hass.states.get("notify.pump_station_sms").state != STATE_UNAVAILABLE


async def test_bad_token_starts_reauth(
    hass: HomeAssistant, emnify_entry: MockConfigEntry, emnify_endpoints: dict[str, int]
) -> None:
    """A revoked token fails set-up and asks the user to sign in again."""
    hass.config_entries.async_update_entry(
        emnify_entry, data={**emnify_entry.data, CONF_API_TOKEN: "revoked"}
    )
    assert not await hass.config_entries.async_setup(emnify_entry.entry_id)
    assert emnify_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_unreachable_api_retries(
    hass: HomeAssistant, emnify_entry: MockConfigEntry, unused_tcp_port_factory
) -> None:
    """An unreachable API is retried later instead of failing for good."""
    hass.config_entries.async_update_entry(
        emnify_entry,
        data={**emnify_entry.data, CONF_BASE_URL: f"http://127.0.0.1:{unused_tcp_port_factory()}"},
    )
    assert not await hass.config_entries.async_setup(emnify_entry.entry_id)
    assert emnify_entry.state is ConfigEntryState.SETUP_RETRY


async def test_stale_device_can_be_removed_only_when_gone(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    hass_ws_client,
) -> None:
    """The user may delete a device only once its endpoint left the account."""
    device = _devices(hass, setup_emnify)["Pump station"]
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": setup_emnify.entry_id,
            "device_id": device.id,
        }
    )
    response = await client.receive_json()
    assert not response["success"]


async def test_diagnostics_redacts_secrets(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    hass_client,
    emnify_sim: EmnifySimulator,
) -> None:
    """Diagnostics never show the token, the secret, the callback URL or SIM identifiers."""
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_emnify)
    text = json.dumps(diagnostics)
    assert diagnostics["provider"] == "emnify"
    assert len(diagnostics["endpoints"]) == 3
    for secret in (
        emnify_sim.application_token,
        setup_emnify.data["callback_secret"],
        setup_emnify.data["webhook_id"],
    ):
        assert secret not in text
    for endpoint in emnify_sim.endpoints.values():
        assert endpoint.msisdn not in text
        assert endpoint.iccid not in text
        assert endpoint.imsi not in text
    assert diagnostics["callback_url"] == "**REDACTED**"


def test_every_translation_key_exists() -> None:
    """Every key raised or used in the code has an English text."""
    en = json.loads((INTEGRATION / "translations" / "en.json").read_text())
    strings = json.loads((INTEGRATION / "strings.json").read_text())
    assert en == strings
    source = "\n".join(p.read_text() for p in INTEGRATION.glob("*.py"))
    keys = set(re.findall(r'translation_key="([a-z_]+)"', source))
    keys |= set(re.findall(r'_validation_error\(\s*"([a-z_]+)"', source))
    keys |= set(re.findall(r'\(\w+, "([a-z_]+)"\),', source))
    assert keys, "the scan found nothing; the pattern is wrong"
    known = set(en["exceptions"]) | set(en["entity"]["sensor"]) | set(en["entity"]["event"])
    known |= set(en["entity"]["notify"]) | set(en["issues"]) | set(en["logbook"])
    known |= set(en["selector"])
    assert sorted(keys - known) == []
    for key, text in en["exceptions"].items():
        assert text["message"], key


@pytest.mark.parametrize("name", ["strings.json", "icons.json", "manifest.json"])
def test_json_files_are_valid(name: str) -> None:
    """Home Assistant refuses to load an integration with broken metadata."""
    data = json.loads((INTEGRATION / name).read_text())
    if name == "manifest.json":
        assert data["domain"] == DOMAIN
        assert data["dependencies"] == ["http", "webhook"]
        assert "quality_scale" not in data
