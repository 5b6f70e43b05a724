"""Delivery status: every outgoing SMS is tracked until final, by push and poll, across restarts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    async_test_home_assistant,
)

from custom_components.iot_sms.api.models import SmsStatus
from custom_components.iot_sms.const import DOMAIN, EVENT_DELIVERY_STATUS
from custom_components.iot_sms.tracker import MAX_FINAL_MESSAGES
from simulator.emnify import EmnifySimulator
from tests.conftest import CALLBACK_SECRET, WEBHOOK_ID
from tests.helpers import device_id, send_sms


async def send_first(hass: HomeAssistant, device: str, message: str, **extra: Any) -> Any:
    """Send and return the response's (only) message."""
    return (await send_sms(hass, device, message, **extra))["messages"][0]


def _statuses(events: list[Any], message_id: str) -> list[tuple[str | None, str]]:
    return [
        (e.data["previous_status"], e.data["status"])
        for e in events
        if e.data["message_id"] == message_id
    ]


def _detach_push(sim: EmnifySimulator) -> None:
    """No callback on the profile: status can only come from polling."""
    sim.service_profiles[1].api_callback_id = None


async def send_buffered(
    hass: HomeAssistant, sim: EmnifySimulator, wait_for: Any, **extra: Any
) -> tuple[Any, int]:
    """Push detached, a PING to the offline gateway, buffered at emnify: (response, SMS id)."""
    _detach_push(sim)
    sent = await send_first(hass, "Remote gateway", "PING", **extra)
    sms_id = int(sent["message_id"])
    await wait_for(lambda: sim.sms[sms_id].status_id == 3)
    return sent, sms_id


class Clock:
    """Moves Home Assistant's timers forward without freezing real time.

    The simulators and HTTP run on real time; only the tracker's timers are fast-forwarded.
    """

    def __init__(self) -> None:
        self.now = dt_util.utcnow()

    async def advance(self, hass: HomeAssistant, delay: timedelta) -> None:
        self.now = max(self.now, dt_util.utcnow()) + delay
        async_fire_time_changed(hass, self.now)
        # Requests started by the timers finish before the next jump fires their timeouts.
        await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.mark.usefixtures("setup_emnify")
async def test_push_only(hass: HomeAssistant, emnify_sim: EmnifySimulator, wait_for) -> None:
    """A delivery report resolves the message without any poll."""
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent = await send_first(hass, "Pump station", "REBOOT")
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "1"

    await wait_for(
        lambda: hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"
    )

    assert _statuses(events, sent["message_id"]) == [(None, "queued"), ("queued", "delivered")]
    assert events[-1].data["final"] is True
    assert events[-1].data["provider"] == "emnify"
    assert events[-1].data["device_id"] == device_id(hass, "Pump station")
    state = hass.states.get("sensor.pump_station_last_sms_status")
    assert state.attributes["message_id"] == sent["message_id"]
    assert state.attributes["parts"] == 1
    assert state.attributes["finalized_at"] is not None
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "0"
    # Push alone did it: no SMS status was read from the API.
    assert not [r for r in emnify_sim.requests if r.method == "GET" and "/sms" in r.path]


@pytest.mark.usefixtures("setup_emnify")
async def test_poll_only(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, clock: Clock, wait_for
) -> None:
    """Without push, the first poll after 15 s finds the delivery."""
    _detach_push(emnify_sim)
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent = await send_first(hass, "Pump station", "REBOOT")
    sms_id = int(sent["message_id"])
    await wait_for(lambda: emnify_sim.sms[sms_id].status_id == 4)
    assert hass.states.get("sensor.pump_station_last_sms_status").state == "queued"

    await clock.advance(hass, timedelta(seconds=16))

    assert hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"
    assert _statuses(events, sent["message_id"]) == [(None, "queued"), ("queued", "delivered")]


@pytest.mark.usefixtures("setup_emnify")
async def test_buffered_then_expired_by_provider(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, clock: Clock, wait_for
) -> None:
    """An offline device: buffered from a poll, expired from the provider's report."""
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent = await send_first(hass, "Remote gateway", "SET INTERVAL 60")
    sms_id = int(sent["message_id"])
    await wait_for(lambda: emnify_sim.sms[sms_id].status_id == 3)
    await clock.advance(hass, timedelta(seconds=16))
    assert hass.states.get("sensor.remote_gateway_last_sms_status").state == "buffered"

    emnify_sim.set_sms_status(sms_id, 6)
    await wait_for(
        lambda: hass.states.get("sensor.remote_gateway_last_sms_status").state == "expired"
    )
    assert _statuses(events, sent["message_id"]) == [
        (None, "queued"),
        ("queued", "buffered"),
        ("buffered", "expired"),
    ]


@pytest.mark.usefixtures("setup_emnify")
async def test_push_and_poll_racing_fire_once(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, clock: Clock, wait_for
) -> None:
    """The report and a poll both say delivered: one event, not two."""
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent = await send_first(hass, "Pump station", "PING")
    sms_id = int(sent["message_id"])
    await wait_for(lambda: emnify_sim.sms[sms_id].status_id == 4)
    # The PATCH is on its way while the poll asks.
    await clock.advance(hass, timedelta(seconds=16))
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()

    delivered = [s for s in _statuses(events, sent["message_id"]) if s[1] == "delivered"]
    assert delivered == [("queued", "delivered")]


@pytest.mark.usefixtures("setup_emnify")
async def test_out_of_order_report_cannot_undo_final(
    hass: HomeAssistant, hass_client_no_auth, emnify_sim: EmnifySimulator, wait_for
) -> None:
    """A late 'buffered' report after 'delivered' changes nothing."""
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent = await send_first(hass, "Pump station", "PING")
    await wait_for(
        lambda: hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"
    )
    count = len(events)

    client = await hass_client_no_auth()
    token = jwt.encode({"iat": 0}, CALLBACK_SECRET, algorithm="HS384")
    response = await client.patch(
        f"/api/iot_sms/{WEBHOOK_ID}",
        json={"id": int(sent["message_id"]), "status": {"id": 3, "status": "BUFFERED"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 200
    await hass.async_block_till_done()
    assert hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"
    assert len(events) == count


@pytest.mark.usefixtures("setup_emnify")
async def test_multipart_is_one_message(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, clock: Clock, wait_for
) -> None:
    """Delivered only when every part is; sent while some are."""
    _detach_push(emnify_sim)
    emnify_sim.delivery_delay = 60  # the test drives the parts by hand
    sent = await send_first(hass, "Pump station", "A" * 200)
    assert sent["parts"] == 2
    part_ids = sorted(s.id for s in emnify_sim.sms.values() if s.payload.startswith("A"))
    assert len(part_ids) == 2

    emnify_sim.set_sms_status(part_ids[0], 4)
    emnify_sim.set_sms_status(part_ids[1], 2)
    await clock.advance(hass, timedelta(seconds=16))
    state = hass.states.get("sensor.pump_station_last_sms_status")
    assert state.state == "sent"
    assert state.attributes["parts"] == 2

    emnify_sim.set_sms_status(part_ids[1], 4)
    await clock.advance(hass, timedelta(seconds=31))
    assert hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"


@pytest.mark.usefixtures("setup_emnify")
async def test_multipart_fails_as_soon_as_one_part_fails(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, wait_for
) -> None:
    """One failed part fails the message even while the other is still on its way."""
    emnify_sim.delivery_delay = 60
    await send_first(hass, "Pump station", "B" * 200)
    part_ids = sorted(s.id for s in emnify_sim.sms.values() if s.payload.startswith("B"))
    emnify_sim.set_sms_status(part_ids[1], 5)
    await wait_for(lambda: hass.states.get("sensor.pump_station_last_sms_status").state == "failed")


@pytest.mark.usefixtures("setup_emnify")
async def test_expiry_without_any_report(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, clock: Clock, wait_for
) -> None:
    """The provider never says anything final: expired after validity plus grace."""
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent, sms_id = await send_buffered(hass, emnify_sim, wait_for, validity={"minutes": 5})
    emnify_sim.set_sms_status(sms_id, 3)  # stop the simulator from ever expiring it

    for _ in range(12):
        await clock.advance(hass, timedelta(minutes=2))
    assert hass.states.get("sensor.remote_gateway_last_sms_status").state == "expired"
    assert _statuses(events, sent["message_id"])[-1] == ("buffered", "expired")

    def sms_reads() -> int:
        return len([r for r in emnify_sim.requests if r.method == "GET" and "/sms" in r.path])

    polls_before = sms_reads()
    await clock.advance(hass, timedelta(minutes=30))
    assert sms_reads() == polls_before  # nothing pending, nothing asked


async def test_restart_keeps_tracking(
    hass: HomeAssistant,
    setup_emnify,
    emnify_sim: EmnifySimulator,
    clock: Clock,
    wait_for,
) -> None:
    """Reloading the entry loses nothing: the pending message resolves afterwards."""
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent = await send_first(hass, "Remote gateway", "PING")
    sms_id = int(sent["message_id"])
    await wait_for(lambda: emnify_sim.sms[sms_id].status_id == 3)

    assert await hass.config_entries.async_reload(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "1"
    # The first poll after a restart comes at once and sees the buffered state.
    await clock.advance(hass, timedelta(seconds=1))
    assert hass.states.get("sensor.remote_gateway_last_sms_status").state == "buffered"

    emnify_sim.set_sms_status(sms_id, 6)
    await wait_for(
        lambda: hass.states.get("sensor.remote_gateway_last_sms_status").state == "expired"
    )
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "0"
    assert [s for s in _statuses(events, sent["message_id"]) if s[1] == "expired"] == [
        ("buffered", "expired")
    ]


async def test_storage_bounds(
    hass: HomeAssistant, setup_emnify, hass_storage: dict[str, Any], clock: Clock
) -> None:
    """Final messages: 7 days and 1,000 at most; pending ones are always kept."""
    tracker = setup_emnify.runtime_data.tracker
    endpoint = next(iter(setup_emnify.runtime_data.coordinator.data))
    old = tracker.async_track(endpoint, ["old-1"], None)
    tracker.async_apply("old-1", SmsStatus.DELIVERED)
    old.finalized_at = dt_util.utcnow() - timedelta(days=8)
    tracker.async_track(endpoint, ["pending-1"], None)
    for index in range(MAX_FINAL_MESSAGES + 10):
        tracker.async_track(endpoint, [f"final-{index}"], None)
        tracker.async_apply(f"final-{index}", SmsStatus.DELIVERED)
    assert await hass.config_entries.async_unload(setup_emnify.entry_id)

    stored = hass_storage[f"{DOMAIN}.{setup_emnify.entry_id}"]["data"]["messages"]
    ids = {m["message_id"] for m in stored}
    assert "pending-1" in ids
    assert old.message_id not in ids
    assert len([m for m in stored if m["status"] == "delivered"]) == MAX_FINAL_MESSAGES
    assert "final-0" not in ids  # the oldest finals go first
    assert f"final-{MAX_FINAL_MESSAGES + 9}" in ids


async def test_fresh_hass_with_same_storage(
    hass: HomeAssistant,
    emnify_entry,
    emnify_endpoints,
    emnify_sim: EmnifySimulator,
    hass_storage: dict[str, Any],
    clock: Clock,
    wait_for,
) -> None:
    """Home Assistant stops with a message pending; a new instance resolves it by polling."""
    _detach_push(emnify_sim)
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    sent = await send_first(hass, "Remote gateway", "PING")
    sms_id = int(sent["message_id"])
    # Stop without unloading the entry: the batched write must still reach the disk.
    await emnify_entry.runtime_data.coordinator.async_shutdown()
    await hass.async_stop(force=True)

    assert hass_storage[f"{DOMAIN}.{emnify_entry.entry_id}"]["data"]["messages"]
    emnify_sim.set_sms_status(sms_id, 4)  # delivered while Home Assistant was down
    async with async_test_home_assistant() as hass2:
        hass2.data.pop(loader.DATA_CUSTOM_COMPONENTS)
        events = async_capture_events(hass2, EVENT_DELIVERY_STATUS)
        entry = MockConfigEntry(
            domain=DOMAIN,
            entry_id=emnify_entry.entry_id,
            unique_id=emnify_entry.unique_id,
            title=emnify_entry.title,
            data=dict(emnify_entry.data),
        )
        entry.add_to_hass(hass2)
        assert await hass2.config_entries.async_setup(entry.entry_id)
        # A restored pending message is polled at once, not after the usual back-off.
        await hass2.async_block_till_done(wait_background_tasks=True)
        assert hass2.states.get("sensor.remote_gateway_last_sms_status").state == "delivered"
        assert hass2.states.get("sensor.demo_fleet_pending_sms").state == "0"
        assert _statuses(events, sent["message_id"]) == [("queued", "delivered")]
        assert await hass2.config_entries.async_unload(entry.entry_id)
        await hass2.async_stop(force=True)


async def test_poll_cost_is_what_is_pending(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    emnify_entry,
    clock: Clock,
    wait_for,
) -> None:
    """1,000 endpoints, 20 pending messages on 10 of them: one cycle asks at most 10 times."""
    _detach_push(emnify_sim)
    endpoints = [emnify_sim.add_endpoint(f"Unit {n}", "offline").id for n in range(1000)]
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    assert len(emnify_entry.runtime_data.coordinator.data) == 1000
    for endpoint_id in endpoints[:10]:
        for text in ("A", "B"):
            await hass.services.async_call(
                DOMAIN,
                "send_sms",
                {
                    "config_entry_id": emnify_entry.entry_id,
                    "recipient": str(endpoint_id),
                    "message": text,
                },
                blocking=True,
            )
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "20"

    def sms_reads() -> int:
        return len([r for r in emnify_sim.requests if r.method == "GET" and "/sms" in r.path])

    before = sms_reads()
    await clock.advance(hass, timedelta(seconds=16))
    assert 0 < sms_reads() - before <= 10

    for sms in list(emnify_sim.sms.values()):
        emnify_sim.set_sms_status(sms.id, 6)
    await clock.advance(hass, timedelta(seconds=31))
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "0"

    before = sms_reads()
    await clock.advance(hass, timedelta(minutes=10))
    assert sms_reads() == before
