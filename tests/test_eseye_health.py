"""An Eseye account's health as the user sees it: answers that cannot be read, set-up, outages.

Everything runs against the Eseye simulator over real HTTP. The simulator's `garble` switch
handles a request as usual and then answers with something that is not Eseye's (a proxy's
HTML page, JSON cut off mid-answer, a body compressed without saying so, nothing at all):
the SMS did go out, only its answer was lost (or, with `handled=False`, it never got there).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, CONF_WEBHOOK_ID, STATE_UNAVAILABLE
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.iot_sms import messaging
from custom_components.iot_sms.api.errors import DeliveryUnknown, InvalidRequest
from custom_components.iot_sms.api.eseye import EseyeClient
from custom_components.iot_sms.api.models import MessagePart, SendOptions
from custom_components.iot_sms.const import CONF_BASE_URL, CONF_PROVIDER, DOMAIN
from simulator.eseye import (
    GARBLED_EMPTY,
    GARBLED_GZIP,
    GARBLED_HTML,
    GARBLED_JSON,
    PATH_CANCEL,
    PATH_SEND,
    PATH_STATUS,
)
from tests.conftest import WEBHOOK_ID
from tests.provider_fixtures import *  # noqa: F403  (fixture: setup_eseye)
from tests.provider_fixtures import ESEYE_SIMS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from homeassistant.core import HomeAssistant

    from simulator.emnify import EmnifySimulator
    from simulator.eseye import EseyeSimulator

# README, Configuration -> Eseye: "at set-up and then every 5 minutes ... one status request".
CHECK_INTERVAL = timedelta(minutes=5)
PUMP = ESEYE_SIMS["Pump station"][0]
# A SIM of the account that the user never added: reached as an ad-hoc recipient.
AD_HOC = "447700900042"
ENTITIES = (
    "notify.pump_station_sms",
    "sensor.pump_station_last_sms_status",
    "event.pump_station_incoming_sms",
    "sensor.pump_station_last_incoming_sms",
    "sensor.eseye_demo_pending_sms",
    "event.eseye_demo_incoming_sms_from_unknown_sender",
)

type WaitFor = Callable[..., Awaitable[None]]


def _requests_to(sim: EseyeSimulator, path: str) -> int:
    return sum(1 for r in sim.requests if r.path == path)


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return next(d.id for d in devices if d.name == name)


async def _send(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "send_sms", data, blocking=True, return_response=True
    )
    assert response is not None
    return response


def _eseye_entry(hass: HomeAssistant, sim: EseyeSimulator, **data: str) -> MockConfigEntry:
    """The account as the user configured it, with the three SIMs; not set up yet."""
    for msisdn, behavior in ESEYE_SIMS.values():
        sim.add_sim(msisdn, behavior)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Eseye ({sim.username})",
        unique_id=sim.username,
        data={
            CONF_PROVIDER: "eseye",
            CONF_USERNAME: sim.username,
            CONF_PASSWORD: sim.password,
            CONF_BASE_URL: sim.base_url,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
            **data,
        },
        subentries_data=[
            {"data": {"msisdn": msisdn}, "subentry_type": "sim", "title": name, "unique_id": msisdn}
            for name, (msisdn, _behavior) in ESEYE_SIMS.items()
        ],
    )
    entry.add_to_hass(hass)
    return entry


async def _next_check(hass: HomeAssistant) -> None:
    """Let the periodic account check come due (plus a second for the coordinator's jitter)."""
    async_fire_time_changed(hass, dt_util.utcnow() + CHECK_INTERVAL + timedelta(seconds=1))
    # The check runs as a background task of the entry.
    await hass.async_block_till_done(wait_background_tasks=True)


def _unavailable(hass: HomeAssistant) -> bool:
    return all(hass.states.get(entity_id).state == STATE_UNAVAILABLE for entity_id in ENTITIES)


def _available(hass: HomeAssistant) -> bool:
    return all(hass.states.get(entity_id).state != STATE_UNAVAILABLE for entity_id in ENTITIES)


def _our_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("custom_components.iot_sms") and r.levelno >= level
    ]


# --- defect 7: an answer that cannot be read is "outcome unknown", never "rejected" ----------


@pytest.mark.parametrize(
    "body",
    [GARBLED_HTML, GARBLED_JSON, GARBLED_GZIP, GARBLED_EMPTY],
    ids=["html", "truncated_json", "gzip", "empty"],
)
async def test_unreadable_send_answer_is_looked_up_not_rejected(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    wait_for: WaitFor,
    body: str,
) -> None:
    """The SMS went out but its answer is garbage: Eseye is asked, the SMS is followed."""
    eseye_sim.garble(PATH_SEND, body)
    response = await _send(
        hass, {"device_id": _device_id(hass, setup_eseye, "Pump station"), "message": "REBOOT"}
    )
    # Exactly one SMS reached Eseye and it was not sent again: the device reboots once.
    [at_eseye] = eseye_sim.messages.values()
    assert (at_eseye.destination, at_eseye.text) == (PUMP, "REBOOT")
    assert _requests_to(eseye_sim, PATH_SEND) == 1
    [message] = response["messages"]
    assert message["message_id"] == at_eseye.message_id
    assert message["reconciled"] is True
    assert "error" not in message
    await wait_for(
        lambda: hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"
    )


async def test_unreadable_send_answer_that_cannot_be_checked_is_delivery_unknown(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Garbage, and Eseye cannot be asked either: the user learns it may have been sent."""
    monkeypatch.setattr(messaging, "RECONCILE_DELAYS", (0.0, 0.01, 0.01))
    eseye_sim.garble(PATH_SEND, GARBLED_HTML)
    eseye_sim.faults.path_filter = PATH_STATUS
    eseye_sim.faults.server_errors = 100
    with pytest.raises(HomeAssistantError) as err:
        await _send(
            hass,
            {"device_id": _device_id(hass, setup_eseye, "Pump station"), "message": "REBOOT"},
        )
    assert err.value.translation_key == "delivery_unknown"
    assert [(m.destination, m.text) for m in eseye_sim.messages.values()] == [(PUMP, "REBOOT")]
    assert _requests_to(eseye_sim, PATH_SEND) == 1


async def test_unreadable_answer_to_a_send_eseye_never_got_is_not_sent(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy answered garbage by itself: Eseye says it has no such SMS, so none went out."""
    monkeypatch.setattr(messaging, "RECONCILE_DELAYS", (0.0, 0.01, 0.01))
    eseye_sim.garble(PATH_SEND, GARBLED_HTML, handled=False)
    with pytest.raises(HomeAssistantError) as err:
        await _send(
            hass,
            {"device_id": _device_id(hass, setup_eseye, "Pump station"), "message": "REBOOT"},
        )
    assert err.value.translation_key == "not_sent"
    assert eseye_sim.messages == {}
    assert _requests_to(eseye_sim, PATH_SEND) == 1


async def test_lookup_never_concludes_not_sent_without_asking(eseye_sim: EseyeSimulator) -> None:
    """Only a send this client made (and recently) can be looked up; anything else stays unknown."""
    eseye_sim.add_sim(PUMP)
    async with aiohttp.ClientSession() as session:
        client = EseyeClient(session, eseye_sim.username, eseye_sim.password, eseye_sim.base_url)
        eseye_sim.garble(PATH_SEND, GARBLED_EMPTY, count=51)
        parts = [MessagePart(text=f"SET SLOT {n}", encoding="gsm7") for n in range(51)]
        for part in parts:
            with pytest.raises(DeliveryUnknown):
                await client.async_send_part(PUMP, part, SendOptions())
        since = dt_util.utcnow() - timedelta(minutes=1)
        # The oldest was forgotten: a lookup cannot prove it absent, so it is no "not sent".
        with pytest.raises(InvalidRequest):
            await client.async_find_sent(PUMP, parts[0], since, ())
        found = await client.async_find_sent(f"+{PUMP}", parts[-1], since, ())
        assert found is not None
        assert eseye_sim.messages[found].text == "SET SLOT 50"


async def test_unreadable_cancel_answer_is_settled_by_the_status(
    hass: HomeAssistant, setup_eseye: MockConfigEntry, eseye_sim: EseyeSimulator
) -> None:
    """A cancel whose answer is garbage did cancel: the status says so, and so does the user's."""
    device_id = _device_id(hass, setup_eseye, "Remote gateway")
    sent = await _send(hass, {"device_id": device_id, "message": "SET INTERVAL 60"})
    message_id = sent["messages"][0]["message_id"]
    eseye_sim.garble(PATH_CANCEL, GARBLED_HTML)

    response = await hass.services.async_call(
        DOMAIN, "cancel_sms", {"device_id": device_id}, blocking=True, return_response=True
    )

    assert response == {"canceled": [message_id], "not_cancellable": []}
    [sim_message] = eseye_sim.messages.values()
    assert sim_message.status == "cancelled"
    assert _requests_to(eseye_sim, PATH_CANCEL) == 1
    assert hass.states.get("sensor.remote_gateway_last_sms_status").state == "canceled"


# --- defect 9: the account is checked at set-up and periodically ------------------------------


async def test_wrong_password_at_setup_starts_reauth(
    hass: HomeAssistant, eseye_sim: EseyeSimulator, hass_url: str
) -> None:
    """A password changed in Infinity Classic: the entry does not load and asks for the new one."""
    entry = _eseye_entry(hass, eseye_sim, **{CONF_PASSWORD: "old-password"})
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
    assert [flow["context"]["entry_id"] for flow in flows] == [entry.entry_id]


async def test_unreachable_at_setup_retries(
    hass: HomeAssistant, eseye_sim: EseyeSimulator, hass_url: str, unused_tcp_port_factory: Any
) -> None:
    """Eseye cannot be reached: set-up is retried later, no reauth is asked for."""
    entry = _eseye_entry(
        hass, eseye_sim, **{CONF_BASE_URL: f"http://127.0.0.1:{unused_tcp_port_factory()}"}
    )
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_server_errors_at_setup_retry(
    hass: HomeAssistant, eseye_sim: EseyeSimulator, hass_url: str
) -> None:
    """Eseye answers with server errors: set-up is retried later, no reauth is asked for."""
    entry = _eseye_entry(hass, eseye_sim)
    eseye_sim.faults.server_errors = 1
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


@pytest.mark.parametrize("fault", ["server_errors", "drop_after_read"])
async def test_outage_is_shown_and_logged_once(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    caplog: pytest.LogCaptureFixture,
    wait_for: WaitFor,
    fault: str,
) -> None:
    """Eseye goes down: entities unavailable, one warning; back up: available, one info line."""
    caplog.set_level(logging.INFO)
    assert _available(hass)
    checks_before = _requests_to(eseye_sim, PATH_STATUS)

    setattr(eseye_sim.faults, fault, 1000)
    caplog.clear()
    for _ in range(3):  # the outage lasts several checks
        await _next_check(hass)
        await wait_for(lambda: _unavailable(hass))
    # One cheap status request per check, nothing else.
    assert _requests_to(eseye_sim, PATH_STATUS) - checks_before == 3
    assert _requests_to(eseye_sim, PATH_SEND) == 0
    problems = _our_records(caplog, logging.WARNING)
    assert len(problems) == 1, [r.getMessage() for r in problems]
    assert "unavailable" in problems[0].getMessage()
    assert eseye_sim.password not in caplog.text

    setattr(eseye_sim.faults, fault, 0)
    caplog.clear()
    await _next_check(hass)
    await wait_for(lambda: _available(hass))
    await _next_check(hass)
    assert _our_records(caplog, logging.WARNING) == []
    recovered = [r for r in _our_records(caplog, logging.INFO) if r.levelno == logging.INFO]
    assert len(recovered) == 1, [r.getMessage() for r in recovered]
    assert setup_eseye.state is ConfigEntryState.LOADED
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_password_changed_later_starts_reauth(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    wait_for: WaitFor,
) -> None:
    """The password is rotated while running: the next check asks the user to re-authenticate."""
    eseye_sim.password = "rotated-password"
    await _next_check(hass)
    await wait_for(lambda: _unavailable(hass))
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


# --- defect 9: diagnostics show no phone number ----------------------------------------------


async def test_eseye_diagnostics_contain_no_msisdn(
    hass: HomeAssistant,
    setup_eseye: MockConfigEntry,
    eseye_sim: EseyeSimulator,
    hass_client: Any,
) -> None:
    """Eseye addresses SIMs by phone number; none of them may end up in an attached file."""
    eseye_sim.add_sim(AD_HOC, "offline")
    await _send(
        hass,
        {"device_id": _device_id(hass, setup_eseye, "Remote gateway"), "message": "STATUS?"},
    )
    await _send(
        hass,
        {"config_entry_id": setup_eseye.entry_id, "recipient": f"+{AD_HOC}", "message": "PING"},
    )

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_eseye)

    text = json.dumps(diagnostics)
    for msisdn in [*(m for m, _b in ESEYE_SIMS.values()), AD_HOC, eseye_sim.api_msisdn]:
        assert msisdn not in text, msisdn
    # Still useful: the SIMs (by name) and the two pending messages are there.
    assert sorted(e["name"] for e in diagnostics["endpoints"]) == sorted(ESEYE_SIMS)
    assert diagnostics["pending_messages"] == 2
    assert len(diagnostics["messages"]) == 2


async def test_emnify_diagnostics_keep_endpoint_ids(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    hass_client: Any,
) -> None:
    """emnify's endpoint ids are no phone numbers: they stay, so a report can name the SIM."""
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_emnify)
    assert sorted(e["id"] for e in diagnostics["endpoints"]) == sorted(
        str(endpoint_id) for endpoint_id in emnify_sim.endpoints
    )
    text = json.dumps(diagnostics)
    for endpoint in emnify_sim.endpoints.values():
        assert endpoint.msisdn not in text
