"""Inbound: MO and delivery reports reach a real hass over HTTP, from the emnify simulator."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import Mock

import aiohttp
import jwt
import pytest
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from custom_components.iot_sms import _provider_is_nearby
from custom_components.iot_sms.const import CONF_BASE_URL, CONF_PROVIDER, DEFAULT_ESEYE_URL
from custom_components.iot_sms.logbook import async_describe_events
from simulator.emnify import EmnifySimulator
from tests.conftest import CALLBACK_SECRET, WEBHOOK_ID

PUMP_EVENT = "event.pump_station_incoming_sms"
PUMP_LAST = "sensor.pump_station_last_incoming_sms"
TRACKER_EVENT = "event.tracker_incoming_sms"
UNKNOWN_EVENT = "event.demo_fleet_incoming_sms_from_unknown_sender"
RECEIVED = "iot_sms_message_received"
DELIVERY = "iot_sms_delivery_status"
OVER_LIMIT = 64 * 1024 + 1

_ids = itertools.count(90_000_000)


def _signed(secret: str = CALLBACK_SECRET, algorithm: str = "HS384") -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode({}, secret, algorithm=algorithm)}"}


def _hs384_token(key: str) -> str:
    """An HS384 JWT with an empty payload, built by hand: newer PyJWT refuses an empty key."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS384", "typ": "JWT"}).encode())
    payload = b64(b"{}")
    signature = hmac.new(key.encode(), f"{head}.{payload}".encode(), hashlib.sha384).digest()
    return f"{head}.{payload}.{b64(signature)}"


def _mo(text: str, **fields: Any) -> dict[str, Any]:
    """An MO body shaped like the one in emnify's docs (fields override)."""
    ident = next(_ids)
    body: dict[str, Any] = {
        "id": ident,
        "pid": 0,
        "dcs": 0,
        "source_address": "423663920000099",
        "dest_address": "12345",
        "organisation": {"id": 11060},
        "multi_part_info": {"partno": 1, "total": 1, "identifier": ident},
        "submit_date": "2021-10-29 07:16:45",
        "payload": text,
    }
    body.update(fields)
    return body


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return next(d.id for d in devices if d.name == name)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def send(hass_url: str, http: aiohttp.ClientSession) -> Callable[..., Any]:
    """Send one request to the integration's callback view (or another path) and return status."""

    async def _send(
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        path: str = f"/api/iot_sms/{WEBHOOK_ID}",
        raw: bytes | None = None,
    ) -> int:
        data = raw if raw is not None else json.dumps(body).encode()
        async with http.request(
            method,
            f"{hass_url}{path}",
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as response:
            await response.read()
            return response.status

    return _send


# ---------------------------------------------------------------------- MO shapes


def _shape_documented(sim: EmnifySimulator, ep: int) -> dict[str, Any]:
    """The real payload from emnify's docs: string addresses, endpoint{id,name}."""
    endpoint = sim.endpoints[ep]
    return _mo(
        "Pump running, pressure 2.1 bar",
        source_address=endpoint.msisdn,
        dest_address="12345",
        endpoint={"id": ep, "name": endpoint.name},
    )


def _shape_numbers(sim: EmnifySimulator, ep: int) -> dict[str, Any]:
    """Older docs: addresses as numbers, organisation{id,name}, submit_date {}; no endpoint."""
    return _mo(
        "Tank level 80%",
        source_address=int(sim.endpoints[ep].msisdn),
        dest_address=12345678,
        organisation={"id": 11060, "name": "Demo Fleet"},
        submit_date={},
    )


def _shape_endpoint_id(sim: EmnifySimulator, ep: int) -> dict[str, Any]:
    """REST-style quirks: id and endpoint_id as strings, no multi_part_info."""
    body = _mo(
        "Door open",
        source_address=sim.endpoints[ep].msisdn,
        endpoint_id=str(ep),
        dest_address="12345",
    )
    body["id"] = str(body["id"])
    del body["multi_part_info"]
    return body


@pytest.mark.parametrize(
    ("shape", "recipient", "received_at"),
    [
        (_shape_documented, "12345", "2021-10-29T07:16:45+00:00"),
        (_shape_numbers, "12345678", None),
        (_shape_endpoint_id, "12345", "2021-10-29T07:16:45+00:00"),
    ],
    ids=["documented", "numbers-empty-date", "endpoint_id-string"],
)
async def test_mo_shapes(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    send: Callable[..., Any],
    shape: Callable[[EmnifySimulator, int], dict[str, Any]],
    recipient: str,
    received_at: str | None,
) -> None:
    events = async_capture_events(hass, RECEIVED)
    assert hass.states.get(PUMP_EVENT).state == "unknown"
    body = shape(emnify_sim, emnify_endpoints["online"])
    msisdn = emnify_sim.endpoints[emnify_endpoints["online"]].msisdn
    before = dt_util.utcnow()

    assert await send(body, headers=_signed()) == 200
    await hass.async_block_till_done()

    state = hass.states.get(PUMP_EVENT)
    assert state.state != "unknown"
    assert state.attributes["event_type"] == "message_received"
    assert state.attributes["sender"] == msisdn
    assert state.attributes["text"] == body["payload"]
    assert state.attributes["message_id"] == str(body["id"])
    assert hass.states.get(PUMP_LAST).state == body["payload"]
    # Nothing for the other devices or the unknown-sender entity.
    assert hass.states.get(TRACKER_EVENT).state == "unknown"
    assert hass.states.get(UNKNOWN_EVENT).state == "unknown"

    assert len(events) == 1
    data = events[0].data
    if received_at is None:  # no usable submit_date: the time it arrived
        stamp = datetime.fromisoformat(data["received_at"])
        assert before - timedelta(seconds=1) <= stamp <= dt_util.utcnow() + timedelta(seconds=1)
    else:
        assert data["received_at"] == received_at
    assert state.attributes["received_at"] == data["received_at"]
    assert {k: v for k, v in data.items() if k != "received_at"} == {
        "config_entry_id": setup_emnify.entry_id,
        "device_id": _device_id(hass, setup_emnify, "Pump station"),
        "endpoint_id": str(emnify_endpoints["online"]),
        "sender": msisdn,
        "recipient": recipient,
        "text": body["payload"],
        "message_id": str(body["id"]),
        "provider": "emnify",
        "incomplete": False,
    }


async def test_long_text_truncated_on_sensor_only(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    send: Callable[..., Any],
) -> None:
    events = async_capture_events(hass, RECEIVED)
    text = "".join(f"{i:04d}," for i in range(80))  # 400 characters
    body = _shape_documented(emnify_sim, emnify_endpoints["online"]) | {"payload": text}
    assert await send(body, headers=_signed()) == 200
    await hass.async_block_till_done()

    assert hass.states.get(PUMP_LAST).state == text[:255]
    assert len(hass.states.get(PUMP_LAST).state) == 255
    assert hass.states.get(PUMP_EVENT).attributes["text"] == text
    assert [e.data["text"] for e in events] == [text]


# ---------------------------------------------------------------------- simulator-driven MO


@pytest.mark.parametrize(
    ("text", "parts", "reverse"),
    [
        ("STATUS OK", 1, False),
        ("first part;second part;third part", 3, False),
        ("first part;second part;third part", 3, True),
    ],
    ids=["single", "multipart", "multipart-reversed"],
)
async def test_simulator_mo(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
    text: str,
    parts: int,
    reverse: bool,
) -> None:
    events = async_capture_events(hass, RECEIVED)
    ids = await emnify_sim.send_mo(emnify_endpoints["online"], text, parts=parts, reverse=reverse)
    assert len(ids) == parts
    await wait_for(lambda: len(events) >= 1)
    await hass.async_block_till_done()

    assert [e.data["text"] for e in events] == [text]
    assert events[0].data["message_id"] == str(ids[0])
    assert events[0].data["incomplete"] is False
    assert hass.states.get(PUMP_EVENT).attributes["text"] == text
    assert hass.states.get(PUMP_LAST).state == text
    assert [a.status for a in emnify_sim.callback_log] == [200] * parts


async def test_simulator_duplicate_fires_once(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
) -> None:
    events = async_capture_events(hass, RECEIVED)
    await emnify_sim.send_mo(emnify_endpoints["online"], "REBOOTED", duplicate=True)
    await wait_for(lambda: len(emnify_sim.callback_log) == 2)
    await hass.async_block_till_done()

    # The retry is acknowledged (else the provider keeps retrying) but not delivered again.
    assert [a.status for a in emnify_sim.callback_log] == [200, 200]
    assert [e.data["text"] for e in events] == ["REBOOTED"]


async def test_incomplete_multipart_delivered_after_timeout(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    send: Callable[..., Any],
) -> None:
    events = async_capture_events(hass, RECEIVED)
    endpoint = emnify_sim.endpoints[emnify_endpoints["online"]]
    reference = next(_ids)

    def part(number: int, text: str) -> dict[str, Any]:
        return _mo(
            text,
            source_address=endpoint.msisdn,
            endpoint={"id": endpoint.id, "name": endpoint.name},
            multi_part_info={"partno": number, "total": 3, "identifier": reference},
        )

    first, third = part(1, "AAA-"), part(3, "-CCC")
    assert await send(third, headers=_signed()) == 200
    assert await send(first, headers=_signed()) == 200
    await hass.async_block_till_done()
    assert events == []

    freezer.tick(timedelta(minutes=4))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert events == []  # still waiting for part 2

    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()

    assert len(events) == 1
    assert events[0].data["text"] == "AAA--CCC"
    assert events[0].data["incomplete"] is True
    assert events[0].data["message_id"] == str(first["id"])
    assert hass.states.get(PUMP_EVENT).attributes["text"] == "AAA--CCC"
    assert hass.states.get(PUMP_LAST).state == "AAA--CCC"
    assert hass.states.get(PUMP_LAST).attributes["incomplete"] is True

    # Delivered once: the timeout does not fire again.
    freezer.tick(timedelta(minutes=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(events) == 1


async def test_unknown_sender(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    send: Callable[..., Any],
) -> None:
    events = async_capture_events(hass, RECEIVED)
    body = _mo(
        "Who am I?",
        source_address="4915100000000",
        endpoint={"id": 999999, "name": "Not in this account"},
    )
    assert await send(body, headers=_signed()) == 200
    await hass.async_block_till_done()

    state = hass.states.get(UNKNOWN_EVENT)
    assert state.state != "unknown"
    assert state.attributes["event_type"] == "message_received"
    assert state.attributes["sender"] == "4915100000000"
    assert state.attributes["text"] == "Who am I?"
    assert hass.states.get(PUMP_EVENT).state == "unknown"
    assert len(events) == 1
    assert events[0].data["device_id"] is None
    assert events[0].data["sender"] == "4915100000000"
    assert events[0].data["config_entry_id"] == setup_emnify.entry_id


# ---------------------------------------------------------------------- rejected requests


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda _body: {"raw": b"{not json", "headers": _signed()}, 400),
        (lambda _body: {"raw": b"\xff\xfe\x00binary", "headers": _signed()}, 400),
        (lambda _body: {"body": [1, "x", None, [2]], "headers": _signed()}, 400),
        (lambda _body: {"body": {"hello": "world"}, "headers": _signed()}, 400),
        (
            lambda mo: {
                "raw": json.dumps(mo | {"payload": "x" * OVER_LIMIT}).encode(),
                "headers": _signed(),
            },
            413,
        ),
        (lambda mo: {"body": mo, "headers": _signed("another-secret")}, 401),
        (lambda mo: {"body": mo, "headers": _signed(algorithm="HS256") | {"X": "y"}}, 200),
        (lambda mo: {"body": mo, "headers": {}}, 401),
        (lambda mo: {"body": mo, "headers": {"Authorization": "Bearer "}}, 401),
        (lambda mo: {"body": mo, "headers": {"Authorization": CALLBACK_SECRET}}, 401),
        (
            lambda mo: {
                "body": mo,
                "headers": {"Authorization": f"Bearer {jwt.encode({}, None, algorithm='none')}"},
            },
            401,
        ),
    ],
    ids=[
        "bad-json",
        "binary",
        "array-of-garbage",
        "object-without-fields",
        "over-64KiB",
        "wrong-signature",
        "hs256-is-fine",
        "missing-signature",
        "empty-bearer",
        "secret-as-header",
        "alg-none",
    ],
)
async def test_rejected_requests(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    send: Callable[..., Any],
    make: Callable[[dict[str, Any]], dict[str, Any]],
    status: int,
) -> None:
    events = async_capture_events(hass, RECEIVED)
    request = make(_shape_documented(emnify_sim, emnify_endpoints["online"]))
    assert await send(request.get("body"), raw=request.get("raw"), headers=request["headers"]) == (
        status
    )
    await hass.async_block_till_done()
    if status == 200:  # the control case: a valid MO signed otherwise than HS384
        assert len(events) == 1
        return
    assert events == []
    assert hass.states.get(PUMP_EVENT).state == "unknown"
    assert hass.states.get(UNKNOWN_EVENT).state == "unknown"


async def test_oversized_chunked_body(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    hass_url: str,
    http: aiohttp.ClientSession,
) -> None:
    """Without a Content-Length the reader still stops at the bound."""
    events = async_capture_events(hass, RECEIVED)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    async with http.post(
        f"{hass_url}/api/iot_sms/{WEBHOOK_ID}", data=chunks(), headers=_signed()
    ) as response:
        assert response.status == 413
    assert events == []


async def test_unknown_webhook_id(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, send: Callable[..., Any]
) -> None:
    events = async_capture_events(hass, RECEIVED)
    for method in ("POST", "PATCH", "GET"):
        assert await send(_mo("hi"), headers=_signed(), method=method, path="/api/iot_sms/x") == (
            404
        )
        assert (
            await send(
                _mo("hi"), headers=_signed(), method=method, path=f"/api/iot_sms/{'0e' * 32}"
            )
            == 404
        )
    assert events == []


async def test_entry_not_loaded(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    send: Callable[..., Any],
) -> None:
    """While unloaded (reloading, starting) the view answers 503, not 2xx.

    Safe because a non-2xx tells the provider the message was not taken (it can retry, and
    polling reconciles delivery reports), and 503 reveals nothing a caller without the
    unguessable id could learn; nothing fires.
    """
    events = async_capture_events(hass, RECEIVED)
    assert await hass.config_entries.async_unload(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert setup_emnify.state is ConfigEntryState.NOT_LOADED

    body = _shape_documented(emnify_sim, emnify_endpoints["online"])
    assert await send(body, headers=_signed()) == 503
    assert await send({"id": 1, "status": {"id": 4}}, headers=_signed(), method="PATCH") == 503
    # The standard webhook is unregistered meanwhile; Home Assistant's webhook component
    # answers 200 for unknown ids (so as not to reveal them), so there the message is lost.
    # That is why the emnify callback URL is the integration's own view.
    assert await send(body, headers=_signed(), path=f"/api/webhook/{WEBHOOK_ID}") == 200
    assert events == []

    # Loaded again, the provider's retry of the same message is delivered.
    assert await hass.config_entries.async_setup(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert await send(body, headers=_signed()) == 200
    await hass.async_block_till_done()
    assert [e.data["text"] for e in events] == [body["payload"]]


async def test_delivery_report_for_unknown_message(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_endpoints: dict[str, int],
    send: Callable[..., Any],
) -> None:
    statuses = async_capture_events(hass, DELIVERY)
    received = async_capture_events(hass, RECEIVED)
    report = {
        "id": 46638644,
        "status": {"id": 4, "status": "DELIVERED"},
        "endpoint": {"id": emnify_endpoints["online"], "name": "Pump station"},
        "organisation": {"id": 11060},
        "submit_date": "2021-10-29 07:13:34",
        "final_date": "2021-10-29 07:13:36",
    }
    assert await send(report, headers=_signed(), method="PATCH") == 200
    await hass.async_block_till_done()
    assert statuses == []
    assert received == []
    assert hass.states.get("sensor.pump_station_last_sms_status").state == "unknown"


async def test_standard_webhook_delivers_mo(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    send: Callable[..., Any],
) -> None:
    events = async_capture_events(hass, RECEIVED)
    path = f"/api/webhook/{WEBHOOK_ID}"
    body = _shape_documented(emnify_sim, emnify_endpoints["online"])

    assert await send(body, path=path) == 401  # still verified when a secret is set
    assert events == []
    assert await send(body, headers=_signed(), path=path) == 200
    await hass.async_block_till_done()

    assert [e.data["text"] for e in events] == [body["payload"]]
    assert events[0].data["device_id"] == _device_id(hass, setup_emnify, "Pump station")
    assert hass.states.get(PUMP_EVENT).attributes["text"] == body["payload"]
    assert hass.states.get(PUMP_LAST).state == body["payload"]


# ---------------------------------------------------------------------- wait_for_reply


async def test_send_sms_wait_for_reply(hass: HomeAssistant, setup_emnify: MockConfigEntry) -> None:
    response = await hass.services.async_call(
        "iot_sms",
        "send_sms",
        {
            "device_id": _device_id(hass, setup_emnify, "Tracker"),
            "message": "WHERE ARE YOU?",
            "wait_for_reply": 5,
        },
        blocking=True,
        return_response=True,
    )
    assert response["reply"]["text"] == "ECHO: WHERE ARE YOU?"
    assert response["reply"]["device_id"] == _device_id(hass, setup_emnify, "Tracker")
    assert len(response["messages"]) == 1


async def test_send_sms_wait_for_reply_times_out(
    hass: HomeAssistant, setup_emnify: MockConfigEntry
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    response = await hass.services.async_call(
        "iot_sms",
        "send_sms",
        {
            "device_id": _device_id(hass, setup_emnify, "Remote gateway"),
            "message": "STATUS?",
            "wait_for_reply": 1,
        },
        blocking=True,
        return_response=True,
    )
    elapsed = loop.time() - start
    assert response["reply"] is None
    assert len(response["messages"]) == 1
    assert 0.9 <= elapsed < 4


# ---------------------------------------------------------------------- repair issue


async def test_no_repair_when_the_provider_is_on_this_network(
    hass: HomeAssistant, setup_emnify: MockConfigEntry
) -> None:
    """The demo's simulator (127.0.0.1) calls the internal URL: replies do arrive, no repair."""
    assert (
        ir.async_get(hass).async_get_issue("iot_sms", f"no_external_url_{setup_emnify.entry_id}")
        is None
    )


@pytest.mark.parametrize(
    ("base_url", "nearby"),
    [
        ("http://127.0.0.1:8300", True),
        ("http://192.168.1.20", True),
        ("http://[::1]:8300", True),
        ("http://localhost:8300", True),
        ("http://simulator:8300", True),
        ("http://sim.local", True),
        ("https://cdn.emnify.net", False),
        ("https://203.0.113.7", False),
        (None, False),
    ],
)
def test_which_providers_are_nearby(base_url: str | None, nearby: bool) -> None:
    assert _provider_is_nearby(base_url) is nearby


async def test_repair_while_a_provider_on_the_internet_cannot_call_back(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    """Eseye's real API and no external URL: a repair says replies cannot arrive, until one is."""
    # Eseye answers a status request for an unknown id with 535: the account works.
    aioclient_mock.post(
        f"{DEFAULT_ESEYE_URL}/mtstatusapi/index/post",
        text="Error535: Invalid message_id value supplied",
    )
    await async_process_ha_core_config(hass, {"internal_url": "http://192.168.1.5:8123"})
    entry = MockConfigEntry(
        domain="iot_sms",
        title="Eseye (fleet)",
        unique_id="fleet",
        data={
            CONF_PROVIDER: "eseye",
            CONF_USERNAME: "fleet",
            CONF_PASSWORD: "secret",
            CONF_BASE_URL: DEFAULT_ESEYE_URL,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registry = ir.async_get(hass)
    issue_id = f"no_external_url_{entry.entry_id}"
    issue = registry.async_get_issue("iot_sms", issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders == {"title": "Eseye (fleet)"}

    await async_process_ha_core_config(hass, {"external_url": "https://ha.example.com"})
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get_issue("iot_sms", issue_id) is None

    # Removing the entry leaves no repair behind either.
    await hass.config.async_update(external_url=None)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get_issue("iot_sms", issue_id) is not None
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get_issue("iot_sms", issue_id) is None


# ---------------------------------------------------------------------- logbook


async def test_logbook_describes_incoming_sms(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    send: Callable[..., Any],
) -> None:
    describers: dict[tuple[str, str], Callable[..., dict[str, str]]] = {}
    async_describe_events(
        hass, lambda domain, event, describe: describers.__setitem__((domain, event), describe)
    )
    # Delivery changes are logged by the status sensor itself; a second entry only repeated it.
    assert set(describers) == {("iot_sms", RECEIVED)}

    events = async_capture_events(hass, RECEIVED)
    assert (
        await send(_shape_documented(emnify_sim, emnify_endpoints["online"]), headers=_signed())
        == 200
    )
    assert await send(_mo("hello", source_address="4915100000000"), headers=_signed()) == 200
    await hass.async_block_till_done()

    describe = describers[("iot_sms", RECEIVED)]
    assert describe(events[0]) == {
        "name": "Pump station",
        "message": "Reply: Pump running, pressure 2.1 bar",
        "entity_id": PUMP_EVENT,
    }
    assert describe(events[1]) == {
        "name": "Unknown sender",
        "message": "SMS from 4915100000000: hello",
        "entity_id": UNKNOWN_EVENT,
    }


# ---------------------------------------------------------------------- property-based

_VALID_AUTH = _signed()["Authorization"]
_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Random objects never carry a payload, so none of them is a valid MO.
_objects = st.dictionaries(
    st.text(max_size=12).filter(lambda key: key != "payload"), _json, max_size=6
)
_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    _json.map(lambda value: json.dumps(value).encode()),
    _objects.map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=OVER_LIMIT, max_value=OVER_LIMIT + 5000).map(lambda n: b"{" * n),
)
_bad_auth = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.text(max_size=60).map(lambda t: f"Bearer {t}"),
    st.sampled_from(["another-secret", "", "x" * 40]).map(
        lambda key: f"Bearer {_hs384_token(key)}"
    ),
    st.just(f"Bearer {jwt.encode({}, None, algorithm='none')}"),
    st.just(f"Basic {CALLBACK_SECRET}"),
)


def _request(method: str, body: bytes, auth: str | None, content_type: str) -> Any:
    protocol = Mock(_reading_paused=False)
    payload = StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    if auth is not None:
        headers["Authorization"] = auth
    return make_mocked_request(
        method, f"/api/iot_sms/{WEBHOOK_ID}", headers=headers, payload=payload
    )


@settings(
    max_examples=150,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.data(),
    method=st.sampled_from(["POST", "PATCH", "GET", "PUT"]),
    content_type=st.sampled_from(["application/json", "text/plain", "", "x/y; charset=bogus"]),
)
async def test_arbitrary_requests_never_escape(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    data: st.DataObject,
    method: str,
    content_type: str,
) -> None:
    router = setup_emnify.runtime_data.inbound
    events: list[Any] = []
    unsub = hass.bus.async_listen(RECEIVED, events.append)
    endpoint = emnify_sim.endpoints[emnify_endpoints["online"]]
    kind = data.draw(st.sampled_from(["garbage-signed", "garbage-unsigned", "mo-unsigned", "mo"]))
    if kind.startswith("mo"):
        body = json.dumps(
            _mo(
                data.draw(st.text(max_size=300)),
                source_address=data.draw(st.sampled_from([endpoint.msisdn, "4915100000000"])),
                endpoint={"id": endpoint.id, "name": endpoint.name},
            )
        ).encode()
        method = "POST"
    else:
        body = data.draw(_bodies)
    auth = _VALID_AUTH if kind in ("mo", "garbage-signed") else data.draw(_bad_auth)

    try:
        response = await router.async_handle_request(_request(method, body, auth, content_type))
        await hass.async_block_till_done()
    finally:
        unsub()

    assert response.status in (200, 400, 401, 413)
    if len(body) > 64 * 1024:
        assert response.status == 413
    if kind == "mo":
        assert response.status == 200
        assert len(events) == 1
    else:
        assert events == []
        if auth != _VALID_AUTH:
            assert response.status != 200
