"""Nothing lost, duplicated or misreported when real traffic misbehaves (sends and statuses).

Each test makes the simulator produce the traffic that used to break the integration: polls
failing at the deadline, one target of a fleet send failing, reports that overtake the send call,
reports of earlier states arriving late.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.iot_sms.api.ratelimit import SlidingWindowLimiter
from custom_components.iot_sms.const import EVENT_DELIVERY_STATUS, EVENT_MESSAGE_RECEIVED
from simulator.emnify import EmnifySimulator
from tests.helpers import call_action, device_id
from tests.test_tracker import Clock, _statuses, send_buffered, send_first

STATUS = "sensor.{}_last_sms_status"


def _posts(sim: EmnifySimulator, endpoint_id: int) -> int:
    return sum(
        1
        for r in sim.requests
        if r.method == "POST" and r.path == f"/api/v1/endpoint/{endpoint_id}/sms"
    )


def _listings(sim: EmnifySimulator) -> int:
    return sum(1 for r in sim.requests if r.method == "GET" and r.path == "/api/v1/endpoint")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.mark.usefixtures("setup_emnify")
async def test_failed_polls_never_conclude_expired(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, clock: Clock, wait_for
) -> None:
    """At the deadline with the provider unreachable the status stays open; delivered wins."""
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent, sms_id = await send_buffered(hass, emnify_sim, wait_for, validity={"minutes": 5})
    emnify_sim.set_sms_status(sms_id, 4)  # delivered at the provider, nobody told us
    emnify_sim.faults.server_errors = 1_000
    emnify_sim.faults.path_filter = "/sms"

    for _ in range(12):  # well past validity plus grace
        await clock.advance(hass, timedelta(minutes=2))
    assert hass.states.get(STATUS.format("remote_gateway")).state != "expired"
    assert "expired" not in [status for _prev, status in _statuses(events, sent["message_id"])]

    emnify_sim.faults.server_errors = 0
    await clock.advance(hass, timedelta(minutes=16))
    assert hass.states.get(STATUS.format("remote_gateway")).state == "delivered"
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "0"


@pytest.mark.usefixtures("setup_emnify")
async def test_answered_polls_still_conclude_expired(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, clock: Clock, wait_for
) -> None:
    """Once the provider answers past the deadline without a final state, it is expired."""
    _sent, sms_id = await send_buffered(hass, emnify_sim, wait_for, validity={"minutes": 5})
    emnify_sim.set_sms_status(sms_id, 3)  # the simulator never expires it itself
    emnify_sim.faults.server_errors = 1_000
    emnify_sim.faults.path_filter = "/sms"
    for _ in range(12):
        await clock.advance(hass, timedelta(minutes=2))
    assert hass.states.get(STATUS.format("remote_gateway")).state == "queued"

    emnify_sim.faults.server_errors = 0
    await clock.advance(hass, timedelta(minutes=16))
    assert hass.states.get(STATUS.format("remote_gateway")).state == "expired"


async def test_fleet_send_reports_every_target(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
) -> None:
    """One target failing does not hide the SMS that went to the others, nor send them twice."""
    emnify_sim.faults.server_errors = 1
    emnify_sim.faults.path_filter = f"/endpoint/{emnify_endpoints['echo']}/sms"
    names = ["Pump station", "Tracker", "Remote gateway"]
    response = await call_action(
        hass,
        "send_sms",
        {"device_id": [device_id(hass, name) for name in names], "message": "STATUS?"},
    )
    by_device = {m["device_id"]: m for m in response["messages"]}
    assert set(by_device) == {device_id(hass, name) for name in names}
    failed = by_device[device_id(hass, "Tracker")]
    assert failed["error"] == "not_sent"  # a 5xx, and emnify provably does not have it
    assert failed["message_id"] is None
    for name in ("Pump station", "Remote gateway"):
        ok = by_device[device_id(hass, name)]
        assert ok["status"] == "queued"
        assert "error" not in ok
        assert int(ok["message_id"]) in emnify_sim.sms
    for key in ("online", "echo", "offline"):
        assert _posts(emnify_sim, emnify_endpoints[key]) == 1
    # Both SMS that went out are followed.
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "2"


async def test_fleet_send_raises_only_when_nothing_went_out(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
) -> None:
    """Every target failing is an error, as a single failing target always was."""
    emnify_sim.faults.server_errors = 100  # the sends and every lookup after them
    emnify_sim.faults.path_filter = "/sms"
    with pytest.raises(HomeAssistantError) as err:
        await call_action(
            hass,
            "send_sms",
            {
                "device_id": [device_id(hass, "Pump station"), device_id(hass, "Tracker")],
                "message": "STATUS?",
            },
        )
    assert err.value.translation_key == "delivery_unknown"
    assert _posts(emnify_sim, emnify_endpoints["online"]) == 1
    assert _posts(emnify_sim, emnify_endpoints["echo"]) == 1


async def test_fleet_send_checks_every_target_first(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
) -> None:
    """A bad target among good ones: refused before anything is sent."""
    with pytest.raises(HomeAssistantError):
        await call_action(
            hass,
            "send_sms",
            {"device_id": [device_id(hass, "Pump station"), "no-such-device"], "message": "GO"},
        )
    assert not [r for r in emnify_sim.requests if r.method == "POST" and "/sms" in r.path]


@pytest.mark.parametrize(("text", "parts"), [("REBOOT", 1), ("Z" * 300, 2)])
async def test_report_that_overtakes_the_send(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    text: str,
    parts: int,
) -> None:
    """A delivery report that arrives before the send call returns is not lost."""
    emnify_sim.report_before_response = 4
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent = await send_first(hass, "Pump station", text)
    await hass.async_block_till_done()
    assert sent["parts"] == parts
    # No poll has run (the first is 15 s away): the reports alone settled it.
    assert hass.states.get(STATUS.format("pump_station")).state == "delivered"
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "0"
    assert _statuses(events, sent["message_id"]) == [(None, "queued"), ("queued", "delivered")]


@pytest.mark.usefixtures("setup_emnify")
async def test_status_never_goes_backwards(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, wait_for
) -> None:
    """A late report of an earlier state (IN PROGRESS after BUFFERED) changes nothing."""
    emnify_sim.report_statuses = frozenset({2, 3, 4, 5, 6})
    emnify_sim.delivery_delay = 60  # the test drives the SMS by hand
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    sent = await send_first(hass, "Pump station", "PING")
    sms_id = int(sent["message_id"])

    emnify_sim.set_sms_status(sms_id, 3)
    await wait_for(lambda: hass.states.get(STATUS.format("pump_station")).state == "buffered")
    emnify_sim.set_sms_status(sms_id, 2)  # a stale "in progress" arrives after "buffered"
    emnify_sim.set_sms_status(sms_id, 3)  # and a repeated "buffered"
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert hass.states.get(STATUS.format("pump_station")).state == "buffered"

    emnify_sim.set_sms_status(sms_id, 4)
    await wait_for(lambda: hass.states.get(STATUS.format("pump_station")).state == "delivered")
    statuses: list[Any] = _statuses(events, sent["message_id"])
    assert statuses == [(None, "queued"), ("queued", "buffered"), ("buffered", "delivered")]


@pytest.mark.usefixtures("setup_emnify")
async def test_lost_answer_send_is_found_and_tracked(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_endpoints: dict[str, int], wait_for
) -> None:
    """The SMS reached emnify but the answer was lost: found, tracked, reported as sent."""
    emnify_sim.faults.lose_answers = 1
    emnify_sim.faults.path_filter = "/sms"
    sent = await send_first(hass, "Pump station", "REBOOT")
    assert sent["reconciled"] is True
    assert int(sent["message_id"]) in emnify_sim.sms
    assert _posts(emnify_sim, emnify_endpoints["online"]) == 1  # never resent
    await wait_for(lambda: hass.states.get(STATUS.format("pump_station")).state == "delivered")


@pytest.mark.usefixtures("setup_emnify")
async def test_lost_answer_finds_the_right_one_of_identical_texts(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_endpoints: dict[str, int]
) -> None:
    """A second identical command whose answer is lost is not mistaken for the first."""
    emnify_sim.delivery_delay = 60
    first = await send_first(hass, "Pump station", "REBOOT")
    emnify_sim.faults.lose_answers = 1
    emnify_sim.faults.path_filter = "/sms"
    second = await send_first(hass, "Pump station", "REBOOT")
    assert second["reconciled"] is True
    assert second["message_id"] != first["message_id"]
    assert int(second["message_id"]) in emnify_sim.sms
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "2"


@pytest.mark.usefixtures("setup_emnify")
async def test_send_that_provably_did_not_arrive_is_not_sent(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_endpoints: dict[str, int]
) -> None:
    """A 5xx without the SMS stored: the user is told it was not sent, so a retry is safe."""
    emnify_sim.faults.server_errors = 1
    emnify_sim.faults.path_filter = "/sms"
    with pytest.raises(HomeAssistantError) as err:
        await send_first(hass, "Pump station", "REBOOT")
    assert err.value.translation_key == "not_sent"
    assert _posts(emnify_sim, emnify_endpoints["online"]) == 1
    assert not emnify_sim.sms
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "0"


@pytest.mark.usefixtures("setup_emnify")
async def test_send_that_cannot_be_looked_up_stays_unknown(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When even the lookups fail, the user hears 'may have been sent', and a warning says why."""
    emnify_sim.faults.server_errors = 1 + 3 * 2  # the send, then every lookup (and its retry)
    emnify_sim.faults.path_filter = "/sms"
    with pytest.raises(HomeAssistantError) as err:
        await send_first(hass, "Pump station", "REBOOT")
    assert err.value.translation_key == "delivery_unknown"
    assert _posts(emnify_sim, emnify_endpoints["online"]) == 1
    assert "Could not find out whether an SMS" in caplog.text


async def test_fleet_send_stays_under_the_provider_limit(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_entry: MockConfigEntry
) -> None:
    """A command to a whole fleet goes out at the provider's pace: no request is refused."""
    names = [f"Unit {n:02}" for n in range(40)]
    for name in names:
        emnify_sim.add_endpoint(name, "online")
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    # The simulator's limit, scaled down from emnify's 2,000 per 5 minutes; the client keeps
    # the same one (as it keeps emnify's real one in production).
    emnify_sim.faults.window_limit = (15, 1.0)
    client = emnify_entry.runtime_data.client
    client.limiter = SlidingWindowLimiter(15, 1.0)
    response = await call_action(
        hass, "send_sms", {"device_id": [device_id(hass, n) for n in names], "message": "GO"}
    )
    assert len(response["messages"]) == len(names)
    assert all(m["message_id"] and "error" not in m for m in response["messages"])
    assert emnify_sim.faults.window_rejections == 0
    assert sum(1 for s in emnify_sim.sms.values() if s.payload == "GO") == len(names)


async def test_new_endpoint_becomes_a_device_when_it_replies(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_sim: EmnifySimulator, wait_for
) -> None:
    """A reply from an endpoint added at emnify after set-up brings its device within seconds."""
    registry = dr.async_get(hass)
    new = emnify_sim.add_endpoint("New pump", "online")
    events = async_capture_events(hass, EVENT_MESSAGE_RECEIVED)
    listings_before = _listings(emnify_sim)

    await emnify_sim.send_mo(new.id, "HELLO")
    await emnify_sim.send_mo(new.id, "HELLO AGAIN")  # a burst is one listing
    await wait_for(
        lambda: "New pump"
        in {d.name for d in dr.async_entries_for_config_entry(registry, setup_emnify.entry_id)}
    )
    assert [e.data["text"] for e in events] == ["HELLO", "HELLO AGAIN"]
    assert _listings(emnify_sim) == listings_before + 1

    await emnify_sim.send_mo(new.id, "THIRD")
    await wait_for(lambda: len(events) == 3)
    assert events[-1].data["device_id"] == device_id(hass, "New pump")
    assert hass.states.get("event.new_pump_incoming_sms").attributes["text"] == "THIRD"


async def test_filtered_out_endpoint_does_not_cause_a_listing_per_reply(
    hass: HomeAssistant,
    emnify_entry: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
) -> None:
    """An endpoint the tag filter leaves out is looked for once, not on every reply."""
    hass.config_entries.async_update_entry(emnify_entry, options={"tag": "fleet-a"})
    emnify_sim.endpoints[emnify_endpoints["online"]].tags = "fleet-a"
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    listings_before = _listings(emnify_sim)
    for n in range(5):
        await emnify_sim.send_mo(emnify_endpoints["echo"], f"NOISE {n}")
        await hass.async_block_till_done()
    assert _listings(emnify_sim) == listings_before + 1
