"""Device conditions: an endpoint's last SMS status, SMS pending on the hub, in automations."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.iot_sms.api.models import SmsStatus
from simulator.emnify import EmnifySimulator
from tests.helpers import device_id

STRINGS = json.loads(
    (Path(__file__).parents[1] / "custom_components/iot_sms/strings.json").read_text()
)
# The contract's statuses, in its order (DESIGN.md, "Last SMS status").
STATUSES = ["queued", "sent", "buffered", "delivered", "failed", "expired", "canceled"]
# emnify's SMS status ids (reference: emnify-api.md).
BUFFERED, DELIVERED = 3, 4
GATEWAY_STATUS = "sensor.remote_gateway_last_sms_status"
PENDING = "sensor.demo_fleet_pending_sms"


def _condition(hass: HomeAssistant, device: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "condition": "device",
        "domain": "iot_sms",
        "device_id": device_id(hass, device),
        "type": kind,
        **fields,
    }


async def _automations(hass: HomeAssistant, conditions: dict[str, dict[str, Any]]) -> None:
    """One automation per condition, run by the event `check`; each fires `test_fired`."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "alias": alias,
                    "triggers": [{"trigger": "event", "event_type": "check"}],
                    "conditions": [condition],
                    "actions": [{"event": "test_fired", "event_data": {"automation": alias}}],
                }
                for alias, condition in conditions.items()
            ]
        },
    )
    await hass.async_block_till_done()


@pytest.fixture
def ran(hass: HomeAssistant) -> Callable[[], Any]:
    """Fire `check` and tell which automations passed their condition."""
    fired = async_capture_events(hass, "test_fired")

    async def check() -> list[str]:
        fired.clear()
        hass.bus.async_fire("check")
        await hass.async_block_till_done()
        return sorted(event.data["automation"] for event in fired)

    return check


async def _capabilities(client: Any, condition: dict[str, Any]) -> Any:
    await client.send_json_auto_id(
        {"type": "device_automation/condition/capabilities", "condition": condition}
    )
    msg = await client.receive_json()
    assert msg["success"], msg
    return msg["result"]


@pytest.fixture
async def ws_client(hass: HomeAssistant, hass_ws_client: Any) -> Any:
    assert await async_setup_component(hass, "device_automation", {})
    return await hass_ws_client(hass)


@pytest.mark.usefixtures("setup_emnify")
async def test_listed_on_the_right_devices(hass: HomeAssistant) -> None:
    names = ("Pump station", "Remote gateway", "Tracker", "Demo Fleet")
    devices = {name: device_id(hass, name) for name in names}
    found = await async_get_device_automations(
        hass, DeviceAutomationType.CONDITION, list(devices.values())
    )
    # The sensors' own conditions (state, value) are listed too; ours are domain iot_sms.
    ours = {
        name: [c["type"] for c in found[devices[name]] if c["domain"] == "iot_sms"]
        for name in names
    }
    assert ours == {
        "Pump station": ["last_status_is"],
        "Remote gateway": ["last_status_is"],
        "Tracker": ["last_status_is"],
        "Demo Fleet": ["pending_above"],
    }
    for conditions in found.values():
        for condition in conditions:
            if condition["domain"] == "iot_sms":
                assert condition["condition"] == "device"
                assert STRINGS["device_automation"]["condition_type"][condition["type"]]


async def test_not_listed_without_the_sensor(
    hass: HomeAssistant, setup_emnify: MockConfigEntry
) -> None:
    """A disabled sensor cannot be read: its condition is not offered."""
    registry = er.async_get(hass)
    registry.async_update_entity(GATEWAY_STATUS, disabled_by=er.RegistryEntryDisabler.USER)
    gateway = device_id(hass, "Remote gateway")
    found = await async_get_device_automations(hass, DeviceAutomationType.CONDITION, [gateway])
    assert [c for c in found[gateway] if c["domain"] == "iot_sms"] == []


@pytest.mark.usefixtures("setup_emnify")
async def test_capabilities(hass: HomeAssistant, ws_client: Any) -> None:
    """A status picked from the contract's statuses; a count of at least 0."""
    status = await _capabilities(ws_client, _condition(hass, "Pump station", "last_status_is"))
    (field,) = status["extra_fields"]
    assert field["name"] == "status"
    assert field["required"] is True
    assert field["selector"]["select"]["options"] == STATUSES
    above = await _capabilities(ws_client, _condition(hass, "Demo Fleet", "pending_above"))
    (field,) = above["extra_fields"]
    assert field["name"] == "above"
    assert field["required"] is True
    assert field["selector"]["number"]["min"] == 0
    for name in ("status", "above"):
        assert STRINGS["device_automation"]["extra_fields"][name]
    # The hub has no last status (the editor never asks, but must not fail).
    hub = await _capabilities(ws_client, _condition(hass, "Demo Fleet", "last_status_is"))
    assert hub.get("extra_fields", []) == []


async def test_status_choice_follows_the_provider(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, ws_client: Any
) -> None:
    """A provider reporting fewer statuses (like Super SIM) offers only those."""
    client = setup_emnify.runtime_data.client
    reported = {SmsStatus.QUEUED, SmsStatus.SENT, SmsStatus.DELIVERED, SmsStatus.FAILED}
    client.capabilities = dataclasses.replace(client.capabilities, statuses=frozenset(reported))
    status = await _capabilities(ws_client, _condition(hass, "Pump station", "last_status_is"))
    assert status["extra_fields"][0]["selector"]["select"]["options"] == [
        "queued",
        "sent",
        "delivered",
        "failed",
    ]


@pytest.mark.usefixtures("setup_emnify")
@pytest.mark.parametrize(
    ("kind", "fields", "valid"),
    [
        ("last_status_is", {"status": "delivered"}, True),
        ("pending_above", {"above": 0}, True),
        ("pending_above", {"above": "2"}, True),
        ("last_status_is", {}, False),
        ("last_status_is", {"status": "read"}, False),
        ("pending_above", {}, False),
        ("pending_above", {"above": -1}, False),
        ("pending_above", {"above": "many"}, False),
        ("is_on", {}, False),
    ],
)
async def test_config_check(
    hass: HomeAssistant, ws_client: Any, kind: str, fields: dict[str, Any], valid: bool
) -> None:
    """The editor's check of a saved condition: the field its type needs, in range."""
    device = "Demo Fleet" if kind == "pending_above" else "Pump station"
    await ws_client.send_json_auto_id(
        {"type": "validate_config", "conditions": [_condition(hass, device, kind, **fields)]}
    )
    msg = await ws_client.receive_json()
    assert msg["success"], msg
    assert msg["result"]["conditions"]["valid"] is valid, msg["result"]


async def test_last_status_is(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    ran: Callable[[], Any],
    wait_for: Callable[..., Any],
) -> None:
    """The automation runs only once the gateway's SMS is delivered; before, while buffered."""
    await _automations(
        hass,
        {
            status: _condition(hass, "Remote gateway", "last_status_is", status=status)
            for status in ("buffered", "delivered")
        },
    )
    assert await ran() == []  # nothing sent yet: no status at all

    # The provider reports every state by push, so "buffered" shows without polling.
    emnify_sim.report_statuses = frozenset({BUFFERED, DELIVERED})
    await hass.services.async_call(
        "iot_sms",
        "send_sms",
        {"device_id": device_id(hass, "Remote gateway"), "message": "STATUS?"},
        blocking=True,
    )
    (sms,) = emnify_sim.sms.values()
    await wait_for(lambda: sms.status_id == BUFFERED)
    await wait_for(lambda: hass.states.get(GATEWAY_STATUS).state == "buffered")
    assert await ran() == ["buffered"]

    emnify_sim.set_sms_status(sms.id, DELIVERED)  # the device came back
    await wait_for(lambda: hass.states.get(GATEWAY_STATUS).state == "delivered")
    assert await ran() == ["delivered"]

    # A renamed sensor is still the device's sensor.
    er.async_get(hass).async_update_entity(GATEWAY_STATUS, new_entity_id="sensor.gateway_sms")
    await hass.async_block_till_done()
    assert await ran() == ["delivered"]
    await emnify_sim.wait_idle()


async def test_pending_above(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    ran: Callable[[], Any],
    wait_for: Callable[..., Any],
) -> None:
    """True while the offline gateway's SMS is pending, false once it is canceled."""
    hub = "Demo Fleet"
    await _automations(
        hass,
        {
            "above 0": _condition(hass, hub, "pending_above", above=0),
            "above 1": _condition(hass, hub, "pending_above", above=1),
        },
    )
    assert hass.states.get(PENDING).state == "0"
    assert await ran() == []

    gateway = device_id(hass, "Remote gateway")
    await hass.services.async_call(
        "iot_sms", "send_sms", {"device_id": gateway, "message": "STATUS?"}, blocking=True
    )
    (sms,) = emnify_sim.sms.values()
    await wait_for(lambda: sms.status_id == BUFFERED)
    assert hass.states.get(PENDING).state == "1"
    assert await ran() == ["above 0"]

    await hass.services.async_call("iot_sms", "cancel_sms", {"device_id": gateway}, blocking=True)
    await wait_for(lambda: hass.states.get(PENDING).state == "0")
    assert hass.states.get(GATEWAY_STATUS).state == "canceled"
    assert await ran() == []

    # Unloaded, the sensor is unavailable: no count to compare, the condition does not hold.
    assert await hass.config_entries.async_unload(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(PENDING).state == "unavailable"
    assert await ran() == []
