"""Device action "Send SMS": listed, described and run the way the automation editor does."""

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
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from simulator.emnify import EmnifySimulator
from tests.helpers import device_id

STRINGS = json.loads(
    (Path(__file__).parents[1] / "custom_components/iot_sms/strings.json").read_text()
)
# emnify's ids (reference: emnify-api.md): SMS status DELIVERED, SMS type MT (to the device).
DELIVERED = 4
MT = 1


def _english(key: str, placeholders: dict[str, str]) -> str:
    """An exception's text from en.json as Home Assistant shows it (without the final stop)."""
    text: str = STRINGS["exceptions"][key]["message"]
    for name, value in placeholders.items():
        text = text.replace(f"{{{name}}}", value)
    return text.rstrip(".")


def _action(hass: HomeAssistant, device: str, **fields: Any) -> dict[str, Any]:
    return {"domain": "iot_sms", "device_id": device_id(hass, device), "type": "send_sms", **fields}


async def _capabilities(hass: HomeAssistant, client: Any, action: dict[str, Any]) -> Any:
    """What the editor asks before it draws the action's fields."""
    await client.send_json_auto_id(
        {"type": "device_automation/action/capabilities", "action": action}
    )
    msg = await client.receive_json()
    assert msg["success"], msg
    return msg["result"]


async def _run_action(client: Any, action: dict[str, Any]) -> Any:
    """The editor's "Run action" on one action."""
    await client.send_json_auto_id({"type": "execute_script", "sequence": [action]})
    return await client.receive_json()


def _fields(capabilities: Any) -> dict[str, Any]:
    # Newer Home Assistant versions add `required: False` next to `optional: True`.
    return {field.pop("name"): field for field in capabilities["extra_fields"]}


async def _automation(hass: HomeAssistant, actions: list[dict[str, Any]]) -> None:
    """An automation sending on the event `send_now`, one device action per entry."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "alias": "Send from the editor",
                "triggers": [{"trigger": "event", "event_type": "send_now"}],
                "actions": actions,
            }
        },
    )
    await hass.async_block_till_done()


@pytest.fixture
async def ws_client(hass: HomeAssistant, hass_ws_client: Any) -> Any:
    assert await async_setup_component(hass, "device_automation", {})
    return await hass_ws_client(hass)


@pytest.mark.usefixtures("setup_emnify")
async def test_listed_on_endpoints_not_on_the_hub(hass: HomeAssistant) -> None:
    names = ("Pump station", "Remote gateway", "Tracker", "Demo Fleet")
    devices = {name: device_id(hass, name) for name in names}
    found = await async_get_device_automations(
        hass, DeviceAutomationType.ACTION, list(devices.values())
    )
    for name in ("Pump station", "Remote gateway", "Tracker"):
        # Home Assistant adds `metadata` to every listed automation.
        ours = [
            {key: value for key, value in a.items() if key != "metadata"}
            for a in found[devices[name]]
            if a["domain"] == "iot_sms"
        ]
        assert ours == [_action(hass, name)]
        for action in ours:
            assert STRINGS["device_automation"]["action_type"][action["type"]]
    assert [a for a in found[devices["Demo Fleet"]] if a["domain"] == "iot_sms"] == []


@pytest.mark.usefixtures("setup_emnify")
async def test_capabilities_offer_a_text_box_and_the_send_options(
    hass: HomeAssistant, ws_client: Any
) -> None:
    """emnify can set the sender and the validity: the editor offers both next to the text."""
    fields = _fields(await _capabilities(hass, ws_client, _action(hass, "Pump station")))
    assert fields["message"]["required"] is True
    assert fields["message"]["selector"]["text"]["multiline"] is True
    assert fields["sender"]["optional"] is True
    assert "text" in fields["sender"]["selector"]
    assert fields["validity"]["optional"] is True
    assert "duration" in fields["validity"]["selector"]
    for name in fields:
        assert STRINGS["device_automation"]["extra_fields"][name]
    # No fields where nothing can be sent: the hub, a device removed since.
    for device in (device_id(hass, "Demo Fleet"), "removed-device"):
        action = {"domain": "iot_sms", "device_id": device, "type": "send_sms"}
        assert (await _capabilities(hass, ws_client, action))["extra_fields"] == []


async def test_capabilities_follow_the_provider(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, ws_client: Any
) -> None:
    """A provider that cannot choose the sender or the validity (like Super SIM): text only."""
    client = setup_emnify.runtime_data.client
    client.capabilities = dataclasses.replace(
        client.capabilities, custom_sender=False, validity=False
    )
    fields = _fields(await _capabilities(hass, ws_client, _action(hass, "Pump station")))
    assert list(fields) == ["message"]


async def test_an_automation_sends_and_the_sms_is_delivered(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
) -> None:
    """The message template sees the trigger; sender and validity reach the provider."""
    await _automation(
        hass,
        [
            _action(hass, "Pump station", message="SET LEVEL {{ trigger.event.data.level }}"),
            _action(hass, "Tracker", message="PING", sender="4711", validity={"minutes": 30}),
        ],
    )
    hass.bus.async_fire("send_now", {"level": 7})

    def sent_to(endpoint: str) -> list[Any]:
        return [
            s
            for s in emnify_sim.sms.values()
            if s.endpoint_id == emnify_endpoints[endpoint] and s.sms_type == MT
        ]

    await wait_for(lambda: len(sent_to("online")) == len(sent_to("echo")) == 1)
    pump = sent_to("online")
    assert [s.payload for s in pump] == ["SET LEVEL 7"]
    (tracker,) = sent_to("echo")
    assert tracker.payload == "PING"
    assert tracker.source_address == "4711"
    minutes = (tracker.expiry_date - tracker.submit_date).total_seconds() / 60
    assert 29 < minutes < 31
    await wait_for(lambda: pump[0].status_id == DELIVERED)
    await wait_for(
        lambda: hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"
    )
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()


@pytest.mark.usefixtures("setup_emnify")
@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"message": ""}, "empty_message"),
        ({"message": "{{ '  ' }}"}, "empty_message"),
        ({"message": "GO", "validity": {"seconds": 30}}, "validity_out_of_range"),
    ],
)
async def test_run_action_shows_the_translated_error(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    ws_client: Any,
    fields: dict[str, Any],
    key: str,
) -> None:
    """What the editor shows for a bad action: the send_sms action's own words; nothing sent."""
    msg = await _run_action(ws_client, _action(hass, "Pump station", **fields))
    assert not msg["success"]
    assert msg["error"]["code"] == "service_validation_error"
    assert msg["error"]["translation_key"] == key
    placeholders = msg["error"].get("translation_placeholders") or {}
    assert msg["error"]["message"] == _english(key, placeholders)
    assert emnify_sim.sms == {}


@pytest.mark.usefixtures("setup_emnify")
async def test_run_action_sends(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    ws_client: Any,
) -> None:
    msg = await _run_action(ws_client, _action(hass, "Remote gateway", message="STATUS?"))
    assert msg["success"], msg
    assert [(s.endpoint_id, s.payload) for s in emnify_sim.sms.values()] == [
        (emnify_endpoints["offline"], "STATUS?")
    ]


@pytest.mark.usefixtures("setup_emnify")
@pytest.mark.parametrize(
    ("fields", "valid"),
    [
        ({"message": "GO {{ now().year }}", "sender": "4711", "validity": {"days": 1}}, True),
        ({}, False),
        ({"message": "GO", "sender": "not a sender!"}, False),
        ({"message": "GO", "validity": "soon"}, False),
        ({"message": "{{ unclosed"}, False),
    ],
)
async def test_config_check(
    hass: HomeAssistant, ws_client: Any, fields: dict[str, Any], valid: bool
) -> None:
    """The editor's check of a saved action: no message, a bad sender, validity or template."""
    await ws_client.send_json_auto_id(
        {"type": "validate_config", "actions": [_action(hass, "Pump station", **fields)]}
    )
    msg = await ws_client.receive_json()
    assert msg["success"], msg
    assert msg["result"]["actions"]["valid"] is valid, msg["result"]


async def test_account_not_loaded(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    ws_client: Any,
) -> None:
    """While the account is unloaded the editor still offers every field, and says why not."""
    assert await hass.config_entries.async_unload(setup_emnify.entry_id)
    await hass.async_block_till_done()
    fields = _fields(await _capabilities(hass, ws_client, _action(hass, "Pump station")))
    assert sorted(fields) == ["message", "sender", "validity"]
    msg = await _run_action(ws_client, _action(hass, "Pump station", message="GO"))
    assert msg["error"]["translation_key"] == "not_loaded"
    assert msg["error"]["message"] == _english("not_loaded", {"title": setup_emnify.title})
    assert emnify_sim.sms == {}
