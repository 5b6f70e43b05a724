"""Device triggers: SMS received / delivered / failed, usable from the automation editor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from simulator.emnify import EmnifySimulator


def _devices(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """Device ids by device name."""
    registry = dr.async_get(hass)
    return {d.name: d.id for d in dr.async_entries_for_config_entry(registry, entry.entry_id)}


async def _automations(hass: HomeAssistant, triggers: list[dict[str, Any]]) -> None:
    """One automation per trigger; each fires `test_fired` naming its trigger."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "alias": f"{trigger['type']} {index}",
                    "triggers": [{"platform": "device", "domain": "iot_sms", **trigger}],
                    "actions": [
                        {
                            "event": "test_fired",
                            "event_data": {
                                "automation": f"{trigger['type']} {index}",
                                "text": "{{ trigger.event.data.text | default('') }}",
                                "status": "{{ trigger.event.data.status | default('') }}",
                            },
                        }
                    ],
                }
                for index, trigger in enumerate(triggers)
            ]
        },
    )
    await hass.async_block_till_done()


@pytest.fixture
def fired(hass: HomeAssistant) -> list[Any]:
    return async_capture_events(hass, "test_fired")


async def test_triggers_listed_for_endpoints_and_hub(
    hass: HomeAssistant, setup_emnify: MockConfigEntry
) -> None:
    devices = _devices(hass, setup_emnify)
    found = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, list(devices.values())
    )
    for name in ("Pump station", "Remote gateway", "Tracker"):
        device_id = devices[name]
        # Entities' own triggers (sensor state etc.) are listed too; ours are domain iot_sms.
        triggers = [t for t in found[device_id] if t["domain"] == "iot_sms"]
        assert sorted(t["type"] for t in triggers) == [
            "sms_delivered",
            "sms_failed",
            "sms_received",
        ]
        for trigger in triggers:
            assert trigger["platform"] == "device"
            assert trigger["domain"] == "iot_sms"
            assert trigger["device_id"] == device_id
    hub_triggers = [t for t in found[devices["Demo Fleet"]] if t["domain"] == "iot_sms"]
    assert [t["type"] for t in hub_triggers] == ["sms_from_unknown_sender"]


async def test_trigger_capabilities(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, hass_ws_client: Any
) -> None:
    """What the automation editor asks for: a text field on "SMS received" only."""
    assert await async_setup_component(hass, "device_automation", {})
    device_id = _devices(hass, setup_emnify)["Pump station"]
    client = await hass_ws_client(hass)
    results = {}
    for kind in ("sms_received", "sms_delivered", "sms_failed"):
        await client.send_json_auto_id(
            {
                "type": "device_automation/trigger/capabilities",
                "trigger": {
                    "platform": "device",
                    "domain": "iot_sms",
                    "device_id": device_id,
                    "type": kind,
                },
            }
        )
        msg = await client.receive_json()
        assert msg["success"], msg
        results[kind] = msg["result"]
    # Newer Home Assistant versions add `required: False` to the serialised field.
    (text_field,) = results["sms_received"]["extra_fields"]
    assert text_field.pop("required", False) is False
    assert text_field == {"name": "text", "optional": True, "type": "string"}
    assert results["sms_delivered"].get("extra_fields", []) == []
    assert results["sms_failed"].get("extra_fields", []) == []


async def test_sms_received_with_text(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    fired: list[Any],
    wait_for: Callable[..., Any],
) -> None:
    devices = _devices(hass, setup_emnify)
    await _automations(
        hass,
        [
            {"device_id": devices["Pump station"], "type": "sms_received", "text": "alarm"},
            {"device_id": devices["Tracker"], "type": "sms_received"},
        ],
    )
    received = async_capture_events(hass, "iot_sms_message_received")

    await emnify_sim.send_mo(emnify_endpoints["online"], "ALARM on")
    await wait_for(lambda: len(received) == 1)
    await hass.async_block_till_done()
    assert [e.data for e in fired] == [
        {"automation": "sms_received 0", "text": "ALARM on", "status": ""}
    ]

    await emnify_sim.send_mo(emnify_endpoints["online"], "all good")
    await wait_for(lambda: len(received) == 2)
    await hass.async_block_till_done()
    assert len(fired) == 1

    # Another device's message fires only that device's trigger, whatever its text.
    await emnify_sim.send_mo(emnify_endpoints["echo"], "alarm here too")
    await wait_for(lambda: len(received) == 3)
    await hass.async_block_till_done()
    assert [e.data["automation"] for e in fired] == ["sms_received 0", "sms_received 1"]
    assert fired[1].data["text"] == "alarm here too"


async def test_sms_delivered_and_failed(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    fired: list[Any],
    wait_for: Callable[..., Any],
) -> None:
    devices = _devices(hass, setup_emnify)
    pump, gateway = devices["Pump station"], devices["Remote gateway"]
    await _automations(
        hass,
        [
            {"device_id": pump, "type": "sms_delivered"},
            {"device_id": pump, "type": "sms_failed"},
            {"device_id": gateway, "type": "sms_delivered"},
            {"device_id": gateway, "type": "sms_failed"},
        ],
    )

    await hass.services.async_call(
        "iot_sms", "send_sms", {"device_id": pump, "message": "REBOOT"}, blocking=True
    )
    await wait_for(lambda: len(fired) >= 1)
    await hass.async_block_till_done()
    assert [e.data for e in fired] == [
        {"automation": "sms_delivered 0", "text": "", "status": "delivered"}
    ]

    await hass.services.async_call(
        "iot_sms", "send_sms", {"device_id": gateway, "message": "STATUS?"}, blocking=True
    )
    sent = [s for s in emnify_sim.sms.values() if s.endpoint_id == emnify_endpoints["offline"]]
    assert len(sent) == 1
    await wait_for(lambda: sent[0].status_id == 3)  # buffered: the device is unreachable
    await hass.async_block_till_done()
    assert len(fired) == 1  # buffered is neither delivered nor failed

    emnify_sim.set_sms_status(sent[0].id, 6)  # the provider gives up: expired
    await wait_for(lambda: len(fired) >= 2)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert [e.data for e in fired] == [
        {"automation": "sms_delivered 0", "text": "", "status": "delivered"},
        {"automation": "sms_failed 3", "text": "", "status": "expired"},
    ]


async def test_sms_from_unknown_sender_on_the_hub(
    hass: HomeAssistant,
    emnify_entry: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    fired: list[Any],
    wait_for: Callable[..., Any],
) -> None:
    """The hub's trigger fires for a reply from a SIM the account does not show, only then."""
    # The tag filter keeps only the pump: the tracker's replies come from an unknown sender.
    hass.config_entries.async_update_entry(emnify_entry, options={"tag": "pumps"})
    emnify_sim.endpoints[emnify_endpoints["online"]].tags = "pumps"
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    devices = _devices(hass, emnify_entry)
    await _automations(
        hass,
        [
            {"device_id": devices["Demo Fleet"], "type": "sms_from_unknown_sender"},
            {"device_id": devices["Demo Fleet"], "type": "sms_from_unknown_sender", "text": "sos"},
        ],
    )
    received = async_capture_events(hass, "iot_sms_message_received")

    await emnify_sim.send_mo(emnify_endpoints["online"], "SOS from a known pump")
    await emnify_sim.send_mo(emnify_endpoints["echo"], "hello from nowhere")
    await emnify_sim.send_mo(emnify_endpoints["echo"], "SOS from nowhere")
    await wait_for(lambda: len(received) == 3)
    await hass.async_block_till_done()
    assert sorted((e.data["automation"], e.data["text"]) for e in fired) == sorted(
        [
            ("sms_from_unknown_sender 0", "hello from nowhere"),
            ("sms_from_unknown_sender 0", "SOS from nowhere"),
            ("sms_from_unknown_sender 1", "SOS from nowhere"),
        ]
    )
