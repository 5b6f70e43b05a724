"""The send_sms and cancel_sms actions and the notify entity, over real HTTP to the simulator."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.iot_sms.const import DOMAIN
from simulator.emnify import EmnifySimulator
from tests.helpers import call_action, device_id


def _posts(sim: EmnifySimulator) -> list[Any]:
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith("/sms")]


@pytest.mark.usefixtures("setup_emnify")
async def test_notify_sends_to_the_endpoint(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_endpoints: dict[str, int]
) -> None:
    """notify.send_message puts the text on the wire for that endpoint, once."""
    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.pump_station_sms", "message": "REBOOT", "title": "ignored"},
        blocking=True,
    )
    sent = [s for s in emnify_sim.sms.values() if s.endpoint_id == emnify_endpoints["online"]]
    assert [s.payload for s in sent] == ["REBOOT"]
    assert sent[0].source_address == "12345"  # replies reach the callback only via a short code
    assert hass.states.get("notify.pump_station_sms").state != "unknown"


@pytest.mark.usefixtures("setup_emnify")
async def test_send_sms_response_and_options(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_endpoints: dict[str, int]
) -> None:
    """The action returns what it sent and passes sender and validity on."""
    response = await call_action(
        hass,
        "send_sms",
        {
            "device_id": [device_id(hass, "Pump station"), device_id(hass, "Tracker")],
            "message": "SET INTERVAL 60",
            "sender": "4711",
            "validity": {"hours": 2},
        },
    )
    assert response["reply"] is None
    assert [m["device_id"] for m in response["messages"]] == [
        device_id(hass, "Pump station"),
        device_id(hass, "Tracker"),
    ]
    for message in response["messages"]:
        assert message["parts"] == 1
        assert message["status"] == "queued"
        sms = emnify_sim.sms[int(message["message_id"])]
        assert sms.payload == "SET INTERVAL 60"
        assert sms.source_address == "4711"
        hours = (sms.expiry_date - sms.submit_date).total_seconds() / 3600
        assert 1.9 < hours < 2.1


@pytest.mark.usefixtures("setup_emnify")
async def test_send_to_an_ad_hoc_recipient(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
) -> None:
    """A recipient given by MSISDN is matched to its endpoint."""
    msisdn = emnify_sim.endpoints[emnify_endpoints["offline"]].msisdn
    response = await call_action(
        hass,
        "send_sms",
        {"config_entry_id": setup_emnify.entry_id, "recipient": f"+{msisdn}", "message": "HI"},
    )
    assert response["messages"][0]["device_id"] == device_id(hass, "Remote gateway")
    assert (
        emnify_sim.sms[int(response["messages"][0]["message_id"])].endpoint_id
        == (emnify_endpoints["offline"])
    )


@pytest.mark.usefixtures("setup_emnify")
async def test_ad_hoc_recipient_written_like_a_phone_number(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
) -> None:
    """00-prefix and separators, as people type numbers, still find the device."""
    msisdn = emnify_sim.endpoints[emnify_endpoints["echo"]].msisdn
    typed = f"00{msisdn[:3]} {msisdn[3:6]}-{msisdn[6:]}"
    response = await call_action(
        hass,
        "send_sms",
        {"config_entry_id": setup_emnify.entry_id, "recipient": typed, "message": "HI"},
    )
    assert response["messages"][0]["device_id"] == device_id(hass, "Tracker")


@pytest.mark.usefixtures("setup_emnify")
async def test_long_text_is_split(hass: HomeAssistant, emnify_sim: EmnifySimulator) -> None:
    """Text over one SMS goes out as concatenated parts with a shared reference."""
    response = await call_action(
        hass, "send_sms", {"device_id": device_id(hass, "Pump station"), "message": "x" * 400}
    )
    assert response["messages"][0]["parts"] == 3
    udhs = sorted(s.udh for s in emnify_sim.sms.values() if s.payload.startswith("x"))
    assert len({u[6:8] for u in udhs}) == 1
    assert [u[8:] for u in udhs] == ["0301", "0302", "0303"]


@pytest.mark.usefixtures("setup_emnify")
@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"message": "   "}, "empty_message"),
        ({"message": "x" * 1531}, "message_too_long"),
        ({"message": "€" * 766}, "message_too_long"),
    ],
)
async def test_bad_text_is_refused(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, data: dict[str, str], key: str
) -> None:
    """Empty or over-long text is refused before anything is sent."""
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "send_sms", {"device_id": device_id(hass, "Pump station"), **data})
    assert err.value.translation_key == key
    assert _posts(emnify_sim) == []


@pytest.mark.usefixtures("setup_emnify")
async def test_bad_targets_are_refused(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_sim: EmnifySimulator
) -> None:
    """Unknown devices, missing accounts and nonsense recipients are clear errors."""
    hub = device_id(hass, "Demo Fleet")
    cases = [
        ({"device_id": "not-a-device"}, "unknown_device"),
        ({"device_id": hub}, "unknown_device"),
        ({"recipient": "423663920000001"}, "recipient_needs_entry"),
        ({"config_entry_id": "nope", "recipient": "1"}, "unknown_entry"),
        ({"config_entry_id": setup_emnify.entry_id, "recipient": "bob"}, "invalid_recipient"),
    ]
    for target, key in cases:
        with pytest.raises(ServiceValidationError) as err:
            await call_action(hass, "send_sms", {"message": "HI", **target})
        assert err.value.translation_key == key, target
    assert _posts(emnify_sim) == []


async def test_entry_not_loaded(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_sim: EmnifySimulator
) -> None:
    """An unloaded account refuses to send."""
    device = device_id(hass, "Pump station")
    assert await hass.config_entries.async_unload(setup_emnify.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "send_sms", {"device_id": device, "message": "HI"})
    assert err.value.translation_key == "not_loaded"


@pytest.mark.usefixtures("setup_emnify")
async def test_server_error_on_send_is_never_retried(
    hass: HomeAssistant, emnify_sim: EmnifySimulator
) -> None:
    """A 5xx may mean the SMS went out: it is looked up, never resent; not there: not sent."""
    emnify_sim.faults.server_errors = 1
    emnify_sim.faults.path_filter = "/sms"
    with pytest.raises(HomeAssistantError) as err:
        await call_action(
            hass, "send_sms", {"device_id": device_id(hass, "Pump station"), "message": "GO"}
        )
    assert err.value.translation_key == "not_sent"
    assert len(_posts(emnify_sim)) == 1


@pytest.mark.usefixtures("setup_emnify")
async def test_rate_limit_is_reported(hass: HomeAssistant, emnify_sim: EmnifySimulator) -> None:
    """A provider that keeps answering 429 gives a translated error, after backing off."""
    setup_client = hass.config_entries.async_entries(DOMAIN)[0].runtime_data.client
    setup_client._backoff = (0.01, 0.01, 0.01)
    emnify_sim.faults.rate_limits = 10
    emnify_sim.faults.path_filter = "/sms"
    with pytest.raises(HomeAssistantError) as err:
        await call_action(
            hass, "send_sms", {"device_id": device_id(hass, "Pump station"), "message": "GO"}
        )
    assert err.value.translation_key == "rate_limited"


@pytest.mark.usefixtures("setup_emnify")
async def test_partial_multipart_send_keeps_the_sent_parts(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_sim: EmnifySimulator
) -> None:
    """When a later part fails, the parts already sent are still tracked and reported."""
    emnify_sim.faults.server_errors = 0
    original = setup_emnify.runtime_data.client.async_send_part
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            emnify_sim.faults.server_errors = 1
        return await original(*args, **kwargs)

    setup_emnify.runtime_data.client.async_send_part = flaky  # type: ignore[method-assign]
    response = await call_action(
        hass, "send_sms", {"device_id": device_id(hass, "Pump station"), "message": "y" * 300}
    )
    (message,) = response["messages"]
    assert message["error"] == "partially_sent"
    assert message["parts"] == 1
    assert int(message["message_id"]) in emnify_sim.sms
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "1"
    assert hass.states.get("sensor.pump_station_last_sms_status").attributes["parts"] == 1


@pytest.mark.usefixtures("setup_emnify")
async def test_cancel_buffered_message(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    wait_for,
) -> None:
    """A message waiting for an offline device can be canceled."""
    sent = await call_action(
        hass, "send_sms", {"device_id": device_id(hass, "Remote gateway"), "message": "OFF"}
    )
    message_id = sent["messages"][0]["message_id"]
    await wait_for(lambda: emnify_sim.sms[int(message_id)].status_id == 3)

    response = await call_action(
        hass, "cancel_sms", {"config_entry_id": setup_emnify.entry_id, "message_id": message_id}
    )
    assert response == {"canceled": [message_id], "not_cancellable": []}
    assert emnify_sim.sms[int(message_id)].status_id == 7
    assert hass.states.get("sensor.remote_gateway_last_sms_status").state == "canceled"


@pytest.mark.usefixtures("setup_emnify")
async def test_cancel_delivered_message_is_an_error(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, wait_for
) -> None:
    """Too late to cancel: an error that says why, never a silent success."""
    sent = await call_action(
        hass, "send_sms", {"device_id": device_id(hass, "Pump station"), "message": "GO"}
    )
    message_id = sent["messages"][0]["message_id"]
    await wait_for(
        lambda: hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"
    )
    with pytest.raises(HomeAssistantError) as err:
        await call_action(
            hass,
            "cancel_sms",
            {"config_entry_id": setup_emnify.entry_id, "message_id": message_id},
        )
    assert err.value.translation_key == "not_cancellable"
    assert err.value.translation_placeholders["reason"] == "delivered"


@pytest.mark.usefixtures("setup_emnify")
async def test_cancel_everything_pending_for_a_device(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, wait_for
) -> None:
    """device_id cancels every cancellable message to that endpoint."""
    device = device_id(hass, "Remote gateway")
    ids = [
        (await call_action(hass, "send_sms", {"device_id": device, "message": text}))["messages"][
            0
        ]["message_id"]
        for text in ("ONE", "TWO")
    ]
    await wait_for(lambda: all(emnify_sim.sms[int(i)].status_id == 3 for i in ids))
    response = await call_action(hass, "cancel_sms", {"device_id": device})
    assert sorted(response["canceled"]) == sorted(ids)
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "0"

    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "cancel_sms", {"device_id": device})
    assert err.value.translation_key == "nothing_to_cancel"


@pytest.mark.usefixtures("setup_emnify")
async def test_cancel_bad_input(hass: HomeAssistant, setup_emnify: MockConfigEntry) -> None:
    """Unknown messages and a message id without its account are refused."""
    with pytest.raises(ServiceValidationError) as err:
        await call_action(
            hass, "cancel_sms", {"config_entry_id": setup_emnify.entry_id, "message_id": "42"}
        )
    assert err.value.translation_key == "unknown_message"
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "cancel_sms", {"message_id": "42"})
    assert err.value.translation_key == "message_needs_entry"


@pytest.mark.usefixtures("setup_emnify")
@pytest.mark.parametrize("validity", [{"seconds": 30}, {"days": 8}])
async def test_validity_out_of_range_is_explained(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, validity: dict[str, int]
) -> None:
    """A validity under a minute or over a week: a translated error saying the range."""
    with pytest.raises(ServiceValidationError) as err:
        await call_action(
            hass,
            "send_sms",
            {"device_id": device_id(hass, "Pump station"), "message": "GO", "validity": validity},
        )
    assert err.value.translation_key == "validity_out_of_range"
    assert "between 1 minute and 7 days" in str(err.value)
    assert _posts(emnify_sim) == []


@pytest.mark.usefixtures("setup_emnify")
async def test_wait_for_reply_returns_the_status_of_now(hass: HomeAssistant) -> None:
    """The echo device is delivered before it answers: the response says delivered."""
    response = await call_action(
        hass,
        "send_sms",
        {"device_id": device_id(hass, "Tracker"), "message": "STATUS?", "wait_for_reply": 10},
    )
    assert response["reply"]["text"] == "ECHO: STATUS?"
    assert response["messages"][0]["status"] == "delivered"


@pytest.mark.usefixtures("setup_emnify")
async def test_empty_device_list_is_refused(
    hass: HomeAssistant, emnify_sim: EmnifySimulator
) -> None:
    """No device chosen: a translated error, not a server error."""
    with pytest.raises(ServiceValidationError) as err:
        await call_action(hass, "send_sms", {"device_id": [], "message": "GO"})
    assert err.value.translation_key == "no_target"
    assert _posts(emnify_sim) == []
