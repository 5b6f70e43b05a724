"""One behaviour, two providers: what a user sees is the same for emnify and Eseye.

The shared tests run once per provider against its simulator over real HTTP; the Eseye
specifics at the end cover what only Eseye's wire format has (GET/POST receipts, binary MO,
receipt statuses outside the documented two, status polling when receipts are lost).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_mock_service,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from simulator.eseye import EseyeSimulator
from tests.conftest import WEBHOOK_ID
from tests.provider_base import Provider
from tests.provider_fixtures import *  # noqa: F403  (fixtures: provider, setup_eseye)
from tests.provider_fixtures import ESEYE_SIMS
from tests.test_tracker import Clock

DELIVERY = "iot_sms_delivery_status"
RECEIVED = "iot_sms_message_received"
DEVICES = {
    "Pump station": "pump_station",
    "Remote gateway": "remote_gateway",
    "Tracker": "tracker",
}
PUMP_STATUS = "sensor.pump_station_last_sms_status"
GATEWAY_STATUS = "sensor.remote_gateway_last_sms_status"


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return next(d.id for d in devices if d.name == name)


def _state(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.states.get(entity_id)
    return state.state if state else None


async def _send(
    hass: HomeAssistant, entry: MockConfigEntry, device: str, message: str, **extra: Any
) -> dict[str, Any]:
    response = await hass.services.async_call(
        "iot_sms",
        "send_sms",
        {"device_id": _device_id(hass, entry, device), "message": message, **extra},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return response


def _history(events: list[Any], message_id: str) -> list[tuple[str | None, str]]:
    return [
        (e.data["previous_status"], e.data["status"])
        for e in events
        if e.data["message_id"] == message_id
    ]


async def _automation(hass: HomeAssistant, device_id: str, trigger_type: str) -> list[Any]:
    """An automation built in the editor from a device trigger; returns its runs."""
    calls = async_mock_service(hass, "test", f"run_{trigger_type}")
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "alias": trigger_type,
                    "triggers": [
                        {
                            "platform": "device",
                            "domain": "iot_sms",
                            "device_id": device_id,
                            "type": trigger_type,
                        }
                    ],
                    "actions": [{"action": f"test.run_{trigger_type}"}],
                }
            ]
        },
    )
    return calls


async def _cancel_is_not_supported(
    hass: HomeAssistant, provider: Provider, message_id: str
) -> None:
    """A provider that cannot cancel says so, by id and for a whole device."""
    for data in (
        {"config_entry_id": provider.entry.entry_id, "message_id": message_id},
        {"device_id": _device_id(hass, provider.entry, "Remote gateway")},
    ):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                "iot_sms", "cancel_sms", data, blocking=True, return_response=True
            )
        assert err.value.translation_key == "cancel_not_supported"
        assert err.value.translation_placeholders == {"title": provider.entry.title}


# --- shared behaviour ------------------------------------------------------------------------


async def test_devices_and_entities(hass: HomeAssistant, provider: Provider) -> None:
    """Same devices, same entity ids and the same device triggers, whichever provider."""
    registry = dr.async_get(hass)
    entities = er.async_get(hass)
    devices = dr.async_entries_for_config_entry(registry, provider.entry.entry_id)
    hub = next(d for d in devices if d.entry_type is dr.DeviceEntryType.SERVICE)
    assert hub.name == provider.entry.title
    assert hub.manufacturer == provider.manufacturer
    assert sorted(d.name for d in devices if d is not hub) == sorted(DEVICES)

    await async_setup_component(hass, "device_automation", {})
    for name, slug in DEVICES.items():
        device = next(d for d in devices if d.name == name)
        assert device.via_device_id == hub.id
        for entity_id in (
            f"notify.{slug}_sms",
            f"sensor.{slug}_last_sms_status",
            f"event.{slug}_incoming_sms",
            f"sensor.{slug}_last_incoming_sms",
        ):
            assert hass.states.get(entity_id) is not None, entity_id
            assert entities.async_get(entity_id).device_id == device.id, entity_id
        triggers = await async_get_device_automations(
            hass, DeviceAutomationType.TRIGGER, [device.id]
        )
        assert {t["type"] for t in triggers[device.id] if t["domain"] == "iot_sms"} == {
            "sms_received",
            "sms_delivered",
            "sms_failed",
        }
        for kind, expected in (
            (DeviceAutomationType.ACTION, {"send_sms"}),
            (DeviceAutomationType.CONDITION, {"last_status_is"}),
        ):
            found = await async_get_device_automations(hass, kind, [device.id])
            assert {a["type"] for a in found[device.id] if a["domain"] == "iot_sms"} == expected
    assert hass.states.get(PUMP_STATUS).attributes["options"] == list(provider.statuses)
    assert _state(hass, provider.pending_sensor) == "0"
    assert entities.async_get(provider.pending_sensor).device_id == hub.id
    assert entities.async_get(provider.unknown_sender_event).device_id == hub.id


async def test_diagnostics_hide_secrets_and_identifiers(
    hass: HomeAssistant, provider: Provider, hass_client: Any
) -> None:
    """Whatever the provider: no credential, webhook id, number or SIM identifier leaks."""
    await _send(hass, provider.entry, "Remote gateway", "SECRET TEXT 42")
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, provider.entry)
    text = json.dumps(diagnostics)
    assert diagnostics["provider"] == provider.name
    assert len(diagnostics["endpoints"]) == len(DEVICES)
    for key, value in provider.entry.data.items():
        if key not in ("provider", "vendor", "base_url", "token_url"):
            assert str(value) not in text, key
    endpoints = provider.entry.runtime_data.coordinator.data.values()
    identifiers = {v for e in endpoints for v in (e.msisdn, e.iccid, e.imsi, e.imei) if v}
    assert identifiers, "the provider reports no SIM identifiers: nothing was checked"
    for identifier in identifiers:
        assert identifier not in text
    assert "SECRET TEXT" not in text


async def test_lost_answer_is_found_never_resent(
    hass: HomeAssistant, provider: Provider, wait_for
) -> None:
    """The SMS reached the provider but its answer was lost: looked up, tracked, not resent."""
    provider.hold()
    provider.sim.faults.lose_answers = 1
    provider.sim.faults.path_filter = provider.send_path
    response = await _send(hass, provider.entry, "Pump station", "REBOOT")
    [sent] = response["messages"]
    assert sent["reconciled"] is True
    assert provider.reached("REBOOT") == [sent["message_id"]]
    assert _state(hass, provider.pending_sensor) == "1"
    provider.deliver(sent["message_id"])
    await wait_for(lambda: _state(hass, PUMP_STATUS) == "delivered")


async def test_notify_is_delivered(hass: HomeAssistant, provider: Provider, wait_for) -> None:
    """notify.send_message reaches the device; status goes queued -> delivered, with events."""
    events = async_capture_events(hass, DELIVERY)
    delivered = await _automation(
        hass, _device_id(hass, provider.entry, "Pump station"), "sms_delivered"
    )
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.pump_station_sms", "message": "REBOOT"},
        blocking=True,
    )
    [message_id] = provider.reached("REBOOT")
    state = hass.states.get(PUMP_STATUS)
    assert state.state == "queued"
    assert state.attributes["message_id"] == message_id
    assert state.attributes["parts"] == 1
    assert state.attributes["finalized_at"] is None
    assert _state(hass, provider.pending_sensor) == "1"

    await wait_for(lambda: _state(hass, PUMP_STATUS) == "delivered")

    assert _history(events, message_id) == [(None, "queued"), ("queued", "delivered")]
    last = events[-1].data
    assert last["final"] is True
    assert last["provider"] == provider.name
    assert last["device_id"] == _device_id(hass, provider.entry, "Pump station")
    assert last["config_entry_id"] == provider.entry.entry_id
    assert events[0].data["final"] is False
    assert hass.states.get(PUMP_STATUS).attributes["finalized_at"] is not None
    assert _state(hass, provider.pending_sensor) == "0"
    await hass.async_block_till_done()
    assert len(delivered) == 1


async def test_failure(hass: HomeAssistant, provider: Provider, wait_for) -> None:
    """The provider reports a failure: status failed, a final event, the failed trigger runs."""
    provider.hold()
    device_id = _device_id(hass, provider.entry, "Pump station")
    failed = await _automation(hass, device_id, "sms_failed")
    events = async_capture_events(hass, DELIVERY)
    response = await _send(hass, provider.entry, "Pump station", "SET INTERVAL 60")
    message_id = response["messages"][0]["message_id"]
    assert response["messages"][0]["status"] == "queued"

    provider.fail(message_id)
    await wait_for(lambda: _state(hass, PUMP_STATUS) == "failed")

    assert _history(events, message_id) == [(None, "queued"), ("queued", "failed")]
    assert events[-1].data["final"] is True
    assert events[-1].data["provider"] == provider.name
    assert events[-1].data["device_id"] == device_id
    assert _state(hass, provider.pending_sensor) == "0"
    await hass.async_block_till_done()
    assert len(failed) == 1


async def test_long_text_is_one_message(hass: HomeAssistant, provider: Provider, wait_for) -> None:
    """200 GSM characters: several SMS on the wire, one tracked message, delivered when all are."""
    provider.hold()
    events = async_capture_events(hass, DELIVERY)
    text = "L" * 200
    if not provider.splits_long_text:
        # Said plainly, never split behind the user's back into SMS the device cannot join.
        with pytest.raises(ServiceValidationError) as err:
            await _send(hass, provider.entry, "Pump station", text)
        assert err.value.translation_key == "message_too_long_single"
        assert err.value.translation_placeholders["max_chars"] == "160"
        assert provider.reached("L") == []
        assert _state(hass, provider.pending_sensor) == "0"
        return
    response = await _send(hass, provider.entry, "Pump station", text)
    [sent] = response["messages"]
    part_ids = provider.reached("L")
    assert sent["parts"] >= 2
    assert len(part_ids) == sent["parts"]
    assert sent["message_id"] == part_ids[0]
    state = hass.states.get(PUMP_STATUS)
    assert state.attributes["parts"] == sent["parts"]
    assert state.attributes["message_id"] == sent["message_id"]
    assert _state(hass, provider.pending_sensor) == "1"

    for part_id in part_ids[:-1]:
        provider.deliver(part_id)
    await wait_for(lambda: _state(hass, PUMP_STATUS) == "sent")
    await hass.async_block_till_done()
    assert _state(hass, PUMP_STATUS) == "sent"
    assert _state(hass, provider.pending_sensor) == "1"

    provider.deliver(part_ids[-1])
    await wait_for(lambda: _state(hass, PUMP_STATUS) == "delivered")
    assert _history(events, sent["message_id"]) == [
        (None, "queued"),
        ("queued", "sent"),
        ("sent", "delivered"),
    ]
    assert _state(hass, provider.pending_sensor) == "0"


async def test_cancel_pending_message(hass: HomeAssistant, provider: Provider, wait_for) -> None:
    """A message to the offline device can be canceled by its id."""
    events = async_capture_events(hass, DELIVERY)
    response = await _send(hass, provider.entry, "Remote gateway", "PING")
    message_id = response["messages"][0]["message_id"]
    # Let the provider hand it to the network first: it sits there waiting for the device.
    await provider.wait_idle()
    if not provider.cancels:
        await _cancel_is_not_supported(hass, provider, message_id)
        assert _state(hass, GATEWAY_STATUS) not in ("canceled", None)
        assert _state(hass, provider.pending_sensor) == "1"
        return

    result = await hass.services.async_call(
        "iot_sms",
        "cancel_sms",
        {"config_entry_id": provider.entry.entry_id, "message_id": message_id},
        blocking=True,
        return_response=True,
    )

    assert result["canceled"] == [message_id]
    assert result["not_cancellable"] == []
    assert _state(hass, GATEWAY_STATUS) == "canceled"
    assert _state(hass, provider.pending_sensor) == "0"
    assert events[-1].data["status"] == "canceled"
    assert events[-1].data["final"] is True
    assert provider.is_canceled_at_provider(message_id)


async def test_cancel_delivered_message_is_an_error(
    hass: HomeAssistant, provider: Provider, wait_for
) -> None:
    """Canceling what already arrived is refused with a reason, not a silent success."""
    response = await _send(hass, provider.entry, "Pump station", "PING")
    message_id = response["messages"][0]["message_id"]
    await wait_for(lambda: _state(hass, PUMP_STATUS) == "delivered")
    if not provider.cancels:
        await _cancel_is_not_supported(hass, provider, message_id)
        return

    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "iot_sms",
            "cancel_sms",
            {"config_entry_id": provider.entry.entry_id, "message_id": message_id},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "not_cancellable"
    assert err.value.translation_placeholders["message_id"] == message_id
    assert "delivered" in err.value.translation_placeholders["reason"]
    assert _state(hass, PUMP_STATUS) == "delivered"


async def test_device_reply(hass: HomeAssistant, provider: Provider, wait_for) -> None:
    """A device's SMS fires its event entity, updates its sensor and fires the bus event."""
    device_id = _device_id(hass, provider.entry, "Pump station")
    received = await _automation(hass, device_id, "sms_received")
    events = async_capture_events(hass, RECEIVED)

    await provider.device_sends("Pump station", "PRESSURE 2.4 BAR")
    await hass.async_block_till_done()

    state = hass.states.get("event.pump_station_incoming_sms")
    assert state.attributes["event_type"] == "message_received"
    assert state.attributes["text"] == "PRESSURE 2.4 BAR"
    assert state.attributes["sender"] == provider.msisdn("Pump station")
    assert state.attributes["message_id"]
    assert state.attributes["received_at"]
    last = hass.states.get("sensor.pump_station_last_incoming_sms")
    assert last.state == "PRESSURE 2.4 BAR"
    assert len(events) == 1
    assert events[0].data["device_id"] == device_id
    assert events[0].data["provider"] == provider.name
    assert events[0].data["text"] == "PRESSURE 2.4 BAR"
    assert events[0].data["config_entry_id"] == provider.entry.entry_id
    assert len(received) == 1
    # Nothing for the other devices or the unknown-sender entity.
    assert _state(hass, "event.tracker_incoming_sms") == "unknown"
    assert _state(hass, provider.unknown_sender_event) == "unknown"


async def test_unknown_sender(hass: HomeAssistant, provider: Provider) -> None:
    """An SMS from a number that is none of the devices lands on the hub's entity."""
    events = async_capture_events(hass, RECEIVED)

    sender = await provider.stranger_sends("Who am I?")
    await hass.async_block_till_done()

    state = hass.states.get(provider.unknown_sender_event)
    assert state.state != "unknown"
    assert state.attributes["event_type"] == "message_received"
    assert state.attributes["text"] == "Who am I?"
    assert state.attributes["sender"] == sender
    assert len(events) == 1
    assert events[0].data["device_id"] is None
    assert events[0].data["provider"] == provider.name
    for slug in DEVICES.values():
        assert _state(hass, f"event.{slug}_incoming_sms") == "unknown"


async def test_wait_for_reply(hass: HomeAssistant, provider: Provider) -> None:
    """send_sms with wait_for_reply returns what the device answered."""
    response = await _send(hass, provider.entry, "Tracker", "WHERE ARE YOU", wait_for_reply=5)

    assert response["reply"] is not None
    assert response["reply"]["text"] == "ECHO: WHERE ARE YOU"
    assert response["reply"]["device_id"] == _device_id(hass, provider.entry, "Tracker")
    assert _state(hass, "sensor.tracker_last_incoming_sms") == "ECHO: WHERE ARE YOU"


async def test_reload_keeps_pending_message(
    hass: HomeAssistant, provider: Provider, wait_for
) -> None:
    """Reloading the entry loses nothing: the pending message resolves afterwards."""
    response = await _send(hass, provider.entry, "Remote gateway", "PING")
    message_id = response["messages"][0]["message_id"]
    await provider.wait_idle()

    assert await hass.config_entries.async_reload(provider.entry.entry_id)
    await hass.async_block_till_done()
    assert _state(hass, provider.pending_sensor) == "1"
    state = hass.states.get(GATEWAY_STATUS)
    assert state.state in ("queued", "sent", "buffered")
    assert state.attributes["message_id"] == message_id

    events = async_capture_events(hass, DELIVERY)
    provider.deliver(message_id)  # the device came back online
    await wait_for(lambda: _state(hass, GATEWAY_STATUS) == "delivered")
    assert hass.states.get(GATEWAY_STATUS).attributes["message_id"] == message_id
    assert _state(hass, provider.pending_sensor) == "0"
    assert [e.data["status"] for e in events if e.data["message_id"] == message_id][-1] == (
        "delivered"
    )


# --- Eseye specifics ------------------------------------------------------------------------

PUMP_MSISDN = ESEYE_SIMS["Pump station"][0]
GATEWAY_MSISDN = ESEYE_SIMS["Remote gateway"][0]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_eseye_receipt_methods(
    hass: HomeAssistant, setup_eseye: MockConfigEntry, eseye_sim: EseyeSimulator, wait_for, method
) -> None:
    """Receipts as GET with a query string (the default) and as a form POST both resolve."""
    eseye_sim.receipt_method = method
    response = await _send(hass, setup_eseye, "Pump station", "PING")
    message_id = response["messages"][0]["message_id"]

    await wait_for(lambda: _state(hass, PUMP_STATUS) == "delivered")
    await eseye_sim.wait_idle()

    receipts = [a for a in eseye_sim.callback_log if message_id in a.url + a.body]
    assert [(a.method, a.status) for a in receipts] == [(method, 200)]
    # Push did it: nobody asked the status API about this message (set-up checks the account).
    assert not [
        r
        for r in eseye_sim.requests
        if r.path == "/mtstatusapi/index/post" and message_id.encode() in r.body
    ]


@pytest.mark.parametrize("text", ["STATUS OK; T=23.5", "Grüße Ωmega ✓ 42°"])
async def test_eseye_binary_mo(
    hass: HomeAssistant, setup_eseye: MockConfigEntry, eseye_sim: EseyeSimulator, text: str
) -> None:
    """An MO that only carries the PDU (`binary`) arrives with its decoded text."""
    events = async_capture_events(hass, RECEIVED)

    await eseye_sim.send_mo(PUMP_MSISDN, text, binary_only=True)
    await hass.async_block_till_done()

    assert eseye_sim.callback_log[-1].status == 200
    assert "binary=" in eseye_sim.callback_log[-1].body
    assert "text=" not in eseye_sim.callback_log[-1].body
    state = hass.states.get("event.pump_station_incoming_sms")
    assert state.attributes["text"] == text
    assert _state(hass, "sensor.pump_station_last_incoming_sms") == text
    assert [e.data["text"] for e in events] == [text]
    assert events[0].data["device_id"] == _device_id(hass, setup_eseye, "Pump station")


async def test_eseye_unknown_receipt_status(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    wait_for,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A receipt status Eseye never documented is logged, acknowledged and changes nothing."""
    events = async_capture_events(hass, DELIVERY)
    response = await _send(hass, setup_eseye, "Remote gateway", "PING")
    message_id = response["messages"][0]["message_id"]
    await eseye_sim.wait_idle()
    count = len(events)

    with caplog.at_level(logging.WARNING):
        await eseye_sim.send_receipt(message_id, "rejected")
        await hass.async_block_till_done()

    assert eseye_sim.callback_log[-1].status == 200
    assert any("rejected" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert _state(hass, GATEWAY_STATUS) == "queued"
    assert _state(hass, "sensor.eseye_demo_pending_sms") == "1"
    assert len(events) == count

    # The integration still works afterwards: a real receipt resolves the message.
    eseye_sim.set_status(message_id, "delivered")
    await wait_for(lambda: _state(hass, GATEWAY_STATUS) == "delivered")


async def test_eseye_receipt_for_unknown_message(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    hass_client_no_auth,
) -> None:
    """A receipt for a message this account never sent is acknowledged and ignored."""
    events = async_capture_events(hass, DELIVERY)
    client = await hass_client_no_auth()

    response = await client.get(
        f"/api/iot_sms/{WEBHOOK_ID}",
        params={
            "messageid": "0123456789abcdef0123456789abcdef",
            "referenceid": "fedcba9876543210fedcba9876543210",
            "statuscode": "delivered",
            "status": "delivered",
        },
    )
    await hass.async_block_till_done()

    assert response.status == 200
    assert events == []
    assert _state(hass, PUMP_STATUS) == "unknown"
    assert _state(hass, "sensor.eseye_demo_pending_sms") == "0"


async def test_eseye_poll_when_receipt_is_lost(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    clock: Clock,
    wait_for,
) -> None:
    """No receipt ever comes: the first status poll (after 15 s) finds the delivery."""
    eseye_sim.delivery_delay = 1.0  # time to lose the receipt before it is sent
    events = async_capture_events(hass, DELIVERY)
    response = await _send(hass, setup_eseye, "Pump station", "PING")
    message_id = response["messages"][0]["message_id"]
    eseye_sim.messages[message_id].receipt_url = None
    await wait_for(lambda: eseye_sim.messages[message_id].status == "delivered")
    await hass.async_block_till_done()
    assert _state(hass, PUMP_STATUS) == "queued"

    await clock.advance(hass, timedelta(seconds=16))

    assert _state(hass, PUMP_STATUS) == "delivered"
    assert _history(events, message_id) == [(None, "queued"), ("queued", "delivered")]
    assert _state(hass, "sensor.eseye_demo_pending_sms") == "0"
    assert [r for r in eseye_sim.requests if r.path == "/mtstatusapi/index/post"]
    await eseye_sim.wait_idle()
    assert not [a for a in eseye_sim.callback_log if message_id in a.url + a.body]
