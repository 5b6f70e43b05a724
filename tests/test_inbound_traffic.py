"""Inbound traffic as it really arrives: split bodies, repeated texts, restarts, hostile URLs.

The simulators produce the traffic (bodies written in several TCP writes or chunked, Eseye MO
without a message id, parts of one SMS minutes apart); the integration runs in a real hass
and is reached over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import jwt
import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    async_test_home_assistant,
)
from yarl import URL

from custom_components.iot_sms.const import DOMAIN
from simulator.emnify import EmnifySimulator
from simulator.eseye import EseyeSimulator
from tests.conftest import CALLBACK_SECRET, WEBHOOK_ID
from tests.helpers import send_sms
from tests.provider_fixtures import *  # noqa: F403

RECEIVED = "iot_sms_message_received"
PUMP_EVENT = "event.pump_station_incoming_sms"
PUMP_LAST = "sensor.pump_station_last_incoming_sms"
PUMP_STATUS = "sensor.pump_station_last_sms_status"
PUMP_MSISDN = "447700900001"
CALLBACK_PATH = f"/api/iot_sms/{WEBHOOK_ID}"
MAX_BODY = 64 * 1024
# Far below the 64 KiB cap, far above what json's recursion survives.
DEEP = 20_000

type Waiter = Callable[..., Awaitable[None]]


def _signed() -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode({}, CALLBACK_SECRET, algorithm='HS384')}"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _request(
    http: aiohttp.ClientSession,
    url: str,
    *,
    method: str = "POST",
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> int:
    async with http.request(method, url, data=data, headers=headers or {}) as response:
        await response.read()
        return response.status


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Error records of any logger (aiohttp logs a handler's traceback as its own)."""
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Warning lines of the integration."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("custom_components.iot_sms")
    ]


# ---------------------------------------------------------------------- split bodies (3)

SPLITS = pytest.mark.parametrize(
    ("pieces", "chunked"),
    [(3, False), (2, True), (4, True)],
    ids=["3-writes-content-length", "chunked", "chunked-4-writes"],
)


@SPLITS
async def test_emnify_mo_and_report_split_across_writes(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Waiter,
    pieces: int,
    chunked: bool,
) -> None:
    """A reply (and a delivery report) whose body arrives in parts is heard, not answered 400."""
    emnify_sim.faults.split_callbacks = pieces
    emnify_sim.faults.chunked_callbacks = chunked
    events = async_capture_events(hass, RECEIVED)
    text = "PRESSURE 2.4 BAR, PUMP RUNNING, TANK 80%"

    await emnify_sim.send_mo(emnify_endpoints["online"], text)
    await wait_for(lambda: len(events) >= 1)
    await hass.async_block_till_done()

    assert [e.data["text"] for e in events] == [text]
    assert hass.states.get(PUMP_EVENT).attributes["text"] == text
    assert hass.states.get(PUMP_LAST).state == text

    await send_sms(hass, "Pump station", "STATUS?")
    await wait_for(lambda: any(a.method == "PATCH" for a in emnify_sim.callback_log))
    await emnify_sim.wait_idle()
    assert [(a.method, a.status) for a in emnify_sim.callback_log] == [
        ("POST", 200),
        ("PATCH", 200),
    ]


@SPLITS
async def test_eseye_mo_and_receipt_split_across_writes(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    wait_for: Waiter,
    pieces: int,
    chunked: bool,
) -> None:
    """The same for an Eseye MO form post and a POSTed receipt."""
    eseye_sim.faults.split_callbacks = pieces
    eseye_sim.faults.chunked_callbacks = chunked
    eseye_sim.receipt_method = "POST"
    events = async_capture_events(hass, RECEIVED)
    text = "OK PRESSURE 2.4 BAR TANK 80 PERCENT"

    await eseye_sim.send_mo(PUMP_MSISDN, text)
    await wait_for(lambda: len(events) >= 1)
    await hass.async_block_till_done()

    assert [e.data["text"] for e in events] == [text]
    assert hass.states.get(PUMP_EVENT).attributes["text"] == text

    eseye_sim.delivery_delay = 60  # only the pushed receipt can settle it
    await send_sms(hass, "Pump station", "PING")
    [message_id] = list(eseye_sim.messages)
    eseye_sim.set_status(message_id, "delivered")
    await wait_for(lambda: len(eseye_sim.callback_log) == 2)
    await wait_for(lambda: hass.states.get(PUMP_STATUS).state == "delivered")
    assert [(a.method, a.status) for a in eseye_sim.callback_log] == [
        ("POST", 200),
        ("POST", 200),
    ]


async def _dribble(body: bytes, pieces: int) -> AsyncIterator[bytes]:
    size = -(-len(body) // pieces)
    for start in range(0, len(body), size):
        yield body[start : start + size]
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "chunked"])
async def test_body_at_the_cap_in_pieces_is_accepted_one_over_is_413(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    hass_url: str,
    http: aiohttp.ClientSession,
    content_length: bool,
) -> None:
    """The cap is on the whole body, however it is cut: 64 KiB is read, one byte more is 413."""
    events = async_capture_events(hass, RECEIVED)
    endpoint = emnify_sim.endpoints[emnify_endpoints["online"]]
    mo: dict[str, Any] = {
        "id": 55_000_001,
        "source_address": endpoint.msisdn,
        "dest_address": "12345",
        "endpoint": {"id": endpoint.id, "name": endpoint.name},
        "submit_date": "2021-10-29 07:16:45",
        "payload": "",
    }
    mo["payload"] = "x" * (MAX_BODY - len(json.dumps(mo).encode()))
    at_cap = json.dumps(mo).encode()
    assert len(at_cap) == MAX_BODY
    over = at_cap[:-1] + b" }"

    async def post(body: bytes) -> int:
        headers = {"Content-Type": "application/json", **_signed()}
        if content_length:
            headers["Content-Length"] = str(len(body))
        return await _request(
            http, f"{hass_url}{CALLBACK_PATH}", data=_dribble(body, 16), headers=headers
        )

    assert await post(over) == 413
    await hass.async_block_till_done()
    assert events == []
    assert await post(at_cap) == 200
    await hass.async_block_till_done()
    assert [len(e.data["text"]) for e in events] == [len(mo["payload"])]


# ---------------------------------------------------------------------- repeated texts (4)


async def test_eseye_same_reply_twice_without_id_is_heard_twice(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
) -> None:
    """A device answering "OK" to two commands is heard twice, also after a reload."""
    events = async_capture_events(hass, RECEIVED)

    assert await eseye_sim.send_mo(PUMP_MSISDN, "OK", with_message_id=False) is None
    freezer.tick(timedelta(seconds=2))
    await eseye_sim.send_mo(PUMP_MSISDN, "OK", with_message_id=False)
    freezer.tick(timedelta(minutes=3))
    await eseye_sim.send_mo(PUMP_MSISDN, "OK", with_message_id=False)
    await hass.async_block_till_done()
    assert [e.data["text"] for e in events] == ["OK", "OK", "OK"]

    assert await hass.config_entries.async_reload(setup_eseye.entry_id)
    await hass.async_block_till_done()
    await eseye_sim.send_mo(PUMP_MSISDN, "OK", with_message_id=False)
    await hass.async_block_till_done()

    assert [e.data["text"] for e in events] == ["OK"] * 4
    # Each is its own message: an automation can tell them apart.
    assert len({e.data["message_id"] for e in events}) == 4
    assert all(e.data["message_id"] for e in events)
    assert [a.status for a in eseye_sim.callback_log] == [200] * 4


async def test_eseye_provider_retry_is_heard_once_even_after_reload(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
) -> None:
    """The same message id again is a retry of one message: acknowledged, not repeated."""
    events = async_capture_events(hass, RECEIVED)
    message_id = await eseye_sim.send_mo(PUMP_MSISDN, "OK", duplicate=True)
    await hass.async_block_till_done()
    assert [e.data["text"] for e in events] == ["OK"]

    assert await hass.config_entries.async_reload(setup_eseye.entry_id)
    await hass.async_block_till_done()
    await eseye_sim.send_mo(PUMP_MSISDN, "OK", message_id=message_id)
    await eseye_sim.send_mo(PUMP_MSISDN, "OK")  # a new message with the same text
    await hass.async_block_till_done()

    assert [e.data["text"] for e in events] == ["OK", "OK"]
    assert events[0].data["message_id"] == message_id
    assert events[1].data["message_id"] != message_id
    assert [a.status for a in eseye_sim.callback_log] == [200] * 4


# ---------------------------------------------------------------------- callback ids (8)


@pytest.mark.parametrize(
    "callback_id",
    ["%C3%A9", "%C3%A9" * 40, "%FF", "%ED%A0%80", "%00", "%E2%80%8B" + WEBHOOK_ID],
    ids=["e-acute", "long-non-ascii", "invalid-utf8", "surrogate", "nul", "zero-width+real"],
)
async def test_non_ascii_callback_id_is_404(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    hass_url: str,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    callback_id: str,
) -> None:
    """An id that cannot be ours is simply unknown: 404, no traceback in the log."""
    events = async_capture_events(hass, RECEIVED)
    url = f"{hass_url}/api/iot_sms/{callback_id}"
    with caplog.at_level(logging.DEBUG):
        for method in ("GET", "POST", "PATCH"):
            async with http.request(
                method, URL(url, encoded=True), data=b"{}", headers=_signed()
            ) as response:
                await response.read()
                assert response.status == 404, method
    assert _errors(caplog) == []
    assert "Traceback" not in caplog.text
    assert events == []
    # The real id still works.
    assert await _request(http, f"{hass_url}{CALLBACK_PATH}", data=b"{}", headers=_signed()) == 400


# ---------------------------------------------------------------------- restarts (10)


async def test_multipart_reply_survives_a_reload(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Waiter,
) -> None:
    """Part 1, reload, part 2: one complete message, nothing incomplete on the way."""
    events = async_capture_events(hass, RECEIVED)
    text = "LEVEL 1: OK; LEVEL 2: OK; LEVEL 3: LOW"
    ids = await emnify_sim.send_mo(emnify_endpoints["online"], text, parts=2, hold={2})
    await wait_for(lambda: len(emnify_sim.callback_log) == 1)
    await hass.async_block_till_done()
    assert events == []

    assert await hass.config_entries.async_reload(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert events == []  # unloading must not hand out half a message

    freezer.tick(timedelta(minutes=2))
    await emnify_sim.release_mo()
    await wait_for(lambda: len(events) >= 1)
    await hass.async_block_till_done()

    assert [(e.data["text"], e.data["incomplete"]) for e in events] == [(text, False)]
    assert events[0].data["message_id"] == str(ids[0])
    assert hass.states.get(PUMP_EVENT).attributes["text"] == text
    assert hass.states.get(PUMP_LAST).state == text

    # Nothing left behind to time out later.
    freezer.tick(timedelta(minutes=10))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(events) == 1


async def test_incomplete_flush_counts_from_first_part_across_reload(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Waiter,
) -> None:
    """The 5 minutes run from part 1's arrival, not from the reload."""
    events = async_capture_events(hass, RECEIVED)
    await emnify_sim.send_mo(emnify_endpoints["online"], "AAAABBBBCCCC", parts=3, hold={2, 3})
    await wait_for(lambda: len(emnify_sim.callback_log) == 1)
    await hass.async_block_till_done()

    freezer.tick(timedelta(minutes=3))
    assert await hass.config_entries.async_reload(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert events == []

    freezer.tick(timedelta(minutes=1, seconds=50))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert events == []  # 4:50 after part 1

    freezer.tick(timedelta(seconds=15))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert [(e.data["text"], e.data["incomplete"]) for e in events] == [("AAAA", True)]
    assert hass.states.get(PUMP_LAST).attributes["incomplete"] is True


async def test_multipart_reply_survives_a_restart(
    hass: HomeAssistant,
    emnify_entry: MockConfigEntry,
    emnify_endpoints: dict[str, int],
    emnify_sim: EmnifySimulator,
    aiohttp_client: Any,
    wait_for: Waiter,
) -> None:
    """Home Assistant stops between the parts; the new instance completes the message."""
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    text = "FIRST HALF / SECOND HALF"
    await emnify_sim.send_mo(emnify_endpoints["online"], text, parts=2, hold={2})
    await wait_for(lambda: len(emnify_sim.callback_log) == 1)
    # Stop without unloading: the batched write must still reach the disk.
    await emnify_entry.runtime_data.coordinator.async_shutdown()
    await hass.async_stop(force=True)

    async with async_test_home_assistant() as hass2:
        hass2.data.pop(loader.DATA_CUSTOM_COMPONENTS)
        events = async_capture_events(hass2, RECEIVED)
        for component in ("http", "webhook", "event", "sensor", "notify", DOMAIN):
            assert await async_setup_component(hass2, component, {})
        client = await aiohttp_client(hass2.http.app)
        url = str(client.make_url("/")).rstrip("/")
        await async_process_ha_core_config(hass2, {"internal_url": url})
        emnify_sim.register_callback(f"{url}{CALLBACK_PATH}", CALLBACK_SECRET)
        entry = MockConfigEntry(
            domain=DOMAIN,
            entry_id=emnify_entry.entry_id,
            unique_id=emnify_entry.unique_id,
            title=emnify_entry.title,
            data=dict(emnify_entry.data),
        )
        entry.add_to_hass(hass2)
        assert await hass2.config_entries.async_setup(entry.entry_id)
        await hass2.async_block_till_done()
        assert events == []

        await emnify_sim.release_mo()
        await wait_for(lambda: len(events) >= 1)
        await hass2.async_block_till_done()
        assert [(e.data["text"], e.data["incomplete"]) for e in events] == [(text, False)]
        assert hass2.states.get(PUMP_EVENT).attributes["text"] == text
        assert await hass2.config_entries.async_unload(entry.entry_id)
        await hass2.async_stop(force=True)
    assert [a.status for a in emnify_sim.callback_log] == [200, 200]


# ---------------------------------------------------------------------- hostile JSON (11)

NESTED_BODIES = pytest.mark.parametrize(
    "body",
    [
        b"[" * DEEP,
        b"[" * (DEEP // 2) + b"]" * (DEEP // 2),
        b'{"a":' * (DEEP // 2),
        b'{"source":"447700900001","text":' + b"[" * DEEP,
    ],
    ids=["arrays", "balanced-arrays", "objects", "inside-a-field"],
)


async def _flood(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> list[int]:
    return [
        await _request(http, url, data=body, headers={"Content-Type": content_type, **headers})
        for content_type in ("application/json", "text/plain", "") * 5
    ]


@NESTED_BODIES
async def test_deeply_nested_json_to_emnify_url(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    hass_url: str,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
) -> None:
    """400 for each, no traceback, one warning line for the whole flood; replies still work."""
    assert len(body) < MAX_BODY
    events = async_capture_events(hass, RECEIVED)
    with caplog.at_level(logging.WARNING):
        statuses = await _flood(http, f"{hass_url}{CALLBACK_PATH}", body, _signed())
        statuses += [
            await _request(
                http, f"{hass_url}{CALLBACK_PATH}", method="PATCH", data=body, headers=_signed()
            )
        ]
    assert statuses == [400] * 16
    assert _errors(caplog) == []
    assert "Traceback" not in caplog.text
    assert len(_warnings(caplog)) == 1

    await emnify_sim.send_mo(emnify_endpoints["online"], "STILL HERE")
    await hass.async_block_till_done()
    assert [e.data["text"] for e in events] == ["STILL HERE"]


@NESTED_BODIES
async def test_deeply_nested_json_to_eseye_url(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    hass_url: str,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
) -> None:
    """The Eseye URL needs no signature: anyone who knows it must not fill the log."""
    events = async_capture_events(hass, RECEIVED)
    with caplog.at_level(logging.WARNING):
        statuses = await _flood(http, f"{hass_url}{CALLBACK_PATH}", body, {})
        statuses += await _flood(http, f"{hass_url}/api/webhook/{WEBHOOK_ID}", body, {})
    assert statuses == [400] * 30
    assert _errors(caplog) == []
    assert "Traceback" not in caplog.text
    assert len(_warnings(caplog)) == 1

    await eseye_sim.send_mo(PUMP_MSISDN, "STILL HERE")
    await hass.async_block_till_done()
    assert [e.data["text"] for e in events] == ["STILL HERE"]


async def test_many_shallow_brackets_are_fine(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    hass_url: str,
    http: aiohttp.ClientSession,
) -> None:
    """The bound is on depth, not on the number of brackets: a bulk body of 30 MOs is heard."""
    events = async_capture_events(hass, RECEIVED)
    endpoint = emnify_sim.endpoints[emnify_endpoints["online"]]
    bulk = [
        {
            "id": 56_000_000 + number,
            "source_address": endpoint.msisdn,
            "dest_address": "12345",
            "endpoint": {"id": endpoint.id, "name": endpoint.name},
            "multi_part_info": {"partno": 1, "total": 1, "identifier": 56_000_000 + number},
            "submit_date": "2021-10-29 07:16:45",
            "payload": f"[{number}] {{ok}}",
        }
        for number in range(30)
    ]
    headers = {"Content-Type": "application/json", **_signed()}
    url = f"{hass_url}{CALLBACK_PATH}"
    assert await _request(http, url, data=json.dumps(bulk).encode(), headers=headers) == 200
    await hass.async_block_till_done()
    assert [e.data["text"] for e in events] == [f"[{number}] {{ok}}" for number in range(30)]


async def test_rejection_warnings_resume_with_a_count(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_eseye: MockConfigEntry,
    hass_url: str,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a quiet minute the next rejection is logged again, saying how many were hidden."""
    url = f"{hass_url}{CALLBACK_PATH}"
    headers = {"Content-Type": "application/json"}
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            assert await _request(http, url, data=b"[" * DEEP, headers=headers) == 400
        freezer.tick(timedelta(seconds=61))
        assert await _request(http, url, data=b"{broken", headers=headers) == 400
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    assert warnings[0] == "Rejected an invalid callback: callback body is not valid JSON"
    assert "4 more rejected" in warnings[1]


async def test_stored_parts_overdue_at_start_are_handed_out_damaged_ones_skipped(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emnify_entry: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Home Assistant was down past the 5 minutes: the part it kept arrives soon after start."""
    endpoint = emnify_sim.endpoints[emnify_endpoints["online"]]
    first_at = dt_util.utcnow() - timedelta(minutes=20)
    hass_storage[f"{DOMAIN}.{emnify_entry.entry_id}"] = {
        "version": 1,
        "key": f"{DOMAIN}.{emnify_entry.entry_id}",
        "data": {
            "seen_inbound": ["700"],
            "partial_inbound": [
                {"sender": endpoint.msisdn, "total": 2},
                {
                    "sender": endpoint.msisdn,
                    "reference": "700",
                    "total": 2,
                    "first_at": first_at.isoformat(),
                    "parts": [
                        {
                            "number": 1,
                            "message_id": "700",
                            "text": "BATTERY ",
                            "received_at": first_at.isoformat(),
                            "recipient": "12345",
                            "endpoint_id": str(endpoint.id),
                        }
                    ],
                },
            ],
        },
    }
    events = async_capture_events(hass, RECEIVED)
    with caplog.at_level(logging.WARNING):
        assert await hass.config_entries.async_setup(emnify_entry.entry_id)
        await hass.async_block_till_done()
    assert "damaged stored part" in caplog.text
    assert events == []

    freezer.tick(timedelta(seconds=11))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert [(e.data["text"], e.data["incomplete"]) for e in events] == [("BATTERY ", True)]
    assert events[0].data["message_id"] == "700"
    assert hass.states.get(PUMP_EVENT).attributes["text"] == "BATTERY "
