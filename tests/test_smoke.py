"""Smoke: the emnify entry loads against the simulator and an SMS round trip works."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from custom_components.iot_sms.const import DOMAIN


async def test_devices_and_send(hass: HomeAssistant, setup_emnify, emnify_sim, emnify_endpoints, wait_for) -> None:
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), setup_emnify.entry_id)
    assert sorted(d.name for d in devices) == ["Demo Fleet", "Pump station", "Remote gateway", "Tracker"]
    states = [s.entity_id for s in hass.states.async_all()]
    print(states)
    await hass.services.async_call("notify", "send_message", {"entity_id": "notify.pump_station_sms", "message": "REBOOT"}, blocking=True)
    sent = [s for s in emnify_sim.sms.values() if s.endpoint_id == emnify_endpoints["online"]]
    assert [s.payload for s in sent] == ["REBOOT"]
    await wait_for(lambda: hass.states.get("sensor.pump_station_last_sms_status").state == "delivered")
    resp = await hass.services.async_call(DOMAIN, "send_sms", {"device_id": [d.id for d in devices if d.name == "Tracker"][0], "message": "STATUS?", "wait_for_reply": 5}, blocking=True, return_response=True)
    print(resp)
    assert resp["reply"]["text"] == "ECHO: STATUS?"
