"""What happens when things go wrong: provider errors while polling, shutdowns, damaged state."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import timedelta
from types import ModuleType
from typing import Any
from unittest.mock import AsyncMock, Mock, patch

import jwt
import pytest
from homeassistant import components
from homeassistant.const import CONF_API_TOKEN
from homeassistant.core import HomeAssistant, State
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    mock_restore_cache,
)

from custom_components.iot_sms.const import DOMAIN, EVENT_DELIVERY_STATUS, EVENT_MESSAGE_RECEIVED
from custom_components.iot_sms.webhook_urls import async_remove_cloudhook, async_webhook_url
from simulator.emnify import EmnifySimulator
from tests.conftest import CALLBACK_SECRET, WEBHOOK_ID
from tests.helpers import send_sms


async def _advance(hass: HomeAssistant, seconds: float) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
    await hass.async_block_till_done(wait_background_tasks=True)


def _signed() -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode({}, CALLBACK_SECRET, algorithm='HS384')}"}


@pytest.mark.usefixtures("setup_emnify")
async def test_poll_failure_is_retried_later(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, wait_for
) -> None:
    """A 5xx while polling loses nothing: the next cycle resolves the message."""
    emnify_sim.service_profiles[1].api_callback_id = None
    sent = await send_sms(hass, "Pump station", "PING")
    sms_id = int(sent["messages"][0]["message_id"])
    await wait_for(lambda: emnify_sim.sms[sms_id].status_id == 4)
    emnify_sim.faults.server_errors = 5
    emnify_sim.faults.path_filter = "/sms/"
    await _advance(hass, 16)
    assert hass.states.get("sensor.pump_station_last_sms_status").state == "queued"

    emnify_sim.faults.server_errors = 0
    await _advance(hass, 50)
    assert hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"


async def test_revoked_token_while_polling_asks_for_reauth(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_sim: EmnifySimulator, wait_for
) -> None:
    """The token is revoked while a message is pending: the user is asked to sign in again."""
    sent = await send_sms(hass, "Remote gateway", "PING")
    sms_id = int(sent["messages"][0]["message_id"])
    await wait_for(lambda: emnify_sim.sms[sms_id].status_id == 3)
    emnify_sim.application_token = "rotated"
    emnify_sim.expire_tokens()
    await _advance(hass, 16)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "1"


async def test_send_with_revoked_token_asks_for_reauth(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_sim: EmnifySimulator
) -> None:
    """A send rejected for credentials says so and starts reauthentication."""
    emnify_sim.application_token = "rotated"
    emnify_sim.expire_tokens()
    with pytest.raises(Exception) as err:
        await send_sms(hass, "Pump station", "PING")
    assert getattr(err.value, "translation_key", None) == "auth_failed"
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


@pytest.mark.usefixtures("setup_emnify")
async def test_cancel_of_a_message_already_delivered_unnoticed(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_sim: EmnifySimulator, wait_for
) -> None:
    """The provider delivered before we heard of it: cancel says so and the status catches up."""
    emnify_sim.service_profiles[1].api_callback_id = None
    sent = await send_sms(hass, "Pump station", "PING")
    message_id = sent["messages"][0]["message_id"]
    await wait_for(lambda: emnify_sim.sms[int(message_id)].status_id == 4)
    assert hass.states.get("sensor.pump_station_last_sms_status").state == "queued"

    with pytest.raises(Exception) as err:
        await hass.services.async_call(
            DOMAIN,
            "cancel_sms",
            {"config_entry_id": setup_emnify.entry_id, "message_id": message_id},
            blocking=True,
            return_response=True,
        )
    assert getattr(err.value, "translation_key", None) == "not_cancellable"
    assert err.value.translation_placeholders["reason"] == "delivered"
    assert hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"


async def test_unload_releases_waiting_senders_and_buffered_parts(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    hass_client_no_auth,
    emnify_endpoints: dict[str, int],
) -> None:
    """Unloading answers a pending wait_for_reply with no reply and keeps partial MO.

    The part stays stored for the entry's next start (tests/test_inbound_traffic.py): handing
    it out now would split the reply into two incomplete events.
    """
    received = async_capture_events(hass, EVENT_MESSAGE_RECEIVED)
    waiting = hass.async_create_task(
        send_sms(hass, "Remote gateway", "STATUS?", wait_for_reply={"seconds": 30})
    )
    await asyncio.sleep(0.2)
    client = await hass_client_no_auth()
    response = await client.post(
        f"/api/iot_sms/{WEBHOOK_ID}",
        json={
            "id": 1,
            "source_address": "99",
            "dest_address": "12345",
            "endpoint": {"id": emnify_endpoints["echo"]},
            "multi_part_info": {"partno": 1, "total": 2, "identifier": 77},
            "payload": "first half ",
        },
        headers=_signed(),
    )
    assert response.status == 200
    assert received == []

    assert await hass.config_entries.async_unload(setup_emnify.entry_id)
    result = await asyncio.wait_for(waiting, 5)
    assert result["reply"] is None
    await hass.async_block_till_done()
    assert received == []


@pytest.mark.usefixtures("setup_emnify")
async def test_unexpected_error_answers_500(hass: HomeAssistant, hass_client_no_auth) -> None:
    """A bug in handling never escapes into the web server; the provider sees a 500 and retries."""
    client = await hass_client_no_auth()
    with patch(
        "custom_components.iot_sms.tracker.MessageTracker.async_apply",
        side_effect=RuntimeError("boom"),
    ):
        response = await client.patch(
            f"/api/iot_sms/{WEBHOOK_ID}",
            json={"id": 5, "status": {"id": 4, "status": "DELIVERED"}},
            headers=_signed(),
        )
    assert response.status == 500


@pytest.mark.usefixtures("setup_emnify")
async def test_report_with_unknown_status_is_kept_out(
    hass: HomeAssistant, hass_client_no_auth, caplog: pytest.LogCaptureFixture, wait_for
) -> None:
    """A status id the contract does not know is logged and changes nothing."""
    sent = await send_sms(hass, "Remote gateway", "PING")
    message_id = sent["messages"][0]["message_id"]
    events = async_capture_events(hass, EVENT_DELIVERY_STATUS)
    client = await hass_client_no_auth()
    response = await client.patch(
        f"/api/iot_sms/{WEBHOOK_ID}",
        json={"id": int(message_id), "status": {"id": 42, "status": "QUANTUM"}},
        headers=_signed(),
    )
    assert response.status == 200
    await hass.async_block_till_done()
    assert events == []
    assert "QUANTUM" in caplog.text


async def test_damaged_storage_is_skipped(
    hass: HomeAssistant,
    emnify_entry: MockConfigEntry,
    emnify_endpoints: dict[str, int],
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A damaged record does not stop set-up; the good ones are tracked."""
    now = dt_util.utcnow()
    hass_storage[f"{DOMAIN}.{emnify_entry.entry_id}"] = {
        "version": 1,
        "key": f"{DOMAIN}.{emnify_entry.entry_id}",
        "data": {
            "messages": [
                {"message_id": "broken"},
                {
                    "message_id": "1",
                    "endpoint_id": str(emnify_endpoints["offline"]),
                    "parts": [{"id": "1", "status": "buffered"}],
                    "submitted_at": (now - timedelta(days=1)).isoformat(),
                    "expires_at": (now + timedelta(days=1)).isoformat(),
                    "status": "buffered",
                },
                {
                    "message_id": "2",
                    "endpoint_id": str(emnify_endpoints["offline"]),
                    "parts": [{"id": "2", "status": "delivered"}],
                    "submitted_at": now.isoformat(),
                    "expires_at": now.isoformat(),
                    "status": "delivered",
                    "finalized_at": (now - timedelta(days=8)).isoformat(),
                },
            ],
            "seen_inbound": ["10", "11"],
        },
    }
    with caplog.at_level(logging.WARNING):
        assert await hass.config_entries.async_setup(emnify_entry.entry_id)
        await hass.async_block_till_done()
    assert "damaged stored message" in caplog.text
    assert hass.states.get("sensor.demo_fleet_pending_sms").state == "1"
    # The newer final message was past retention: the older pending one is the last now.
    state = hass.states.get("sensor.remote_gateway_last_sms_status")
    assert state.state == "buffered"
    assert state.attributes["message_id"] == "1"


async def test_status_sensor_restores_without_tracked_message(
    hass: HomeAssistant, emnify_entry: MockConfigEntry, emnify_endpoints: dict[str, int]
) -> None:
    """Pruned from the tracker, the last status still shows what it was before the restart."""
    mock_restore_cache(
        hass,
        [
            State(
                "sensor.pump_station_last_sms_status",
                "delivered",
                {"message_id": "123", "parts": 1},
            )
        ],
    )
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get("sensor.pump_station_last_sms_status")
    assert state.state == "delivered"
    assert state.attributes["message_id"] == "123"


async def test_removing_the_entry_deletes_its_data(
    hass: HomeAssistant,
    setup_emnify: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """Removal leaves no stored messages behind."""
    await send_sms(hass, "Remote gateway", "PING")
    assert await hass.config_entries.async_unload(setup_emnify.entry_id)
    assert f"{DOMAIN}.{setup_emnify.entry_id}" in hass_storage

    await hass.config_entries.async_remove(setup_emnify.entry_id)
    await hass.async_block_till_done()
    assert f"{DOMAIN}.{setup_emnify.entry_id}" not in hass_storage


async def test_cloudhook_when_nabu_casa_is_active(hass: HomeAssistant) -> None:
    """With Home Assistant Cloud, the webhook URL is a cloudhook, and removal deletes it."""
    # A stand-in for the cloud component: the real one needs packages (turbojpeg, ...) that a
    # Home Assistant with cloud has and the test environment of newer versions does not.
    cloud = ModuleType("homeassistant.components.cloud")
    cloud.async_active_subscription = Mock(return_value=True)  # type: ignore[attr-defined]
    create = cloud.async_get_or_create_cloudhook = AsyncMock(  # type: ignore[attr-defined]
        return_value="https://hooks.nabu.casa/abc"
    )
    delete = cloud.async_delete_cloudhook = AsyncMock()  # type: ignore[attr-defined]
    hass.config.components.add("cloud")
    with (
        patch.dict(sys.modules, {"homeassistant.components.cloud": cloud}),
        patch.object(components, "cloud", cloud, create=True),
    ):
        assert await async_webhook_url(hass, WEBHOOK_ID) == "https://hooks.nabu.casa/abc"
        await async_remove_cloudhook(hass, WEBHOOK_ID)
    create.assert_called_once_with(hass, WEBHOOK_ID)
    delete.assert_called_once_with(hass, WEBHOOK_ID)


async def test_no_webhook_url_without_any_base_url(hass: HomeAssistant) -> None:
    """Without internal or external URL there is nothing to show, and no cloudhook to delete."""
    assert await async_webhook_url(hass, WEBHOOK_ID) is None
    await async_remove_cloudhook(hass, WEBHOOK_ID)  # nothing to do, nothing raised


async def test_token_in_entry_is_not_logged(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """Secrets never reach the log, even at debug level."""
    with caplog.at_level(logging.DEBUG, logger="custom_components.iot_sms"):
        await send_sms(hass, "Pump station", "PING")
        assert await hass.config_entries.async_reload(setup_emnify.entry_id)
        await hass.async_block_till_done()
    assert setup_emnify.data[CONF_API_TOKEN] not in caplog.text
    assert CALLBACK_SECRET not in caplog.text
