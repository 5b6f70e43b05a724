"""Config and options flows of 1NCE and Super SIM (Twilio, KORE), against their simulators."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.iot_sms.const import (
    CONF_ACCOUNT_SID,
    CONF_ADVANCED,
    CONF_AUTH_TOKEN,
    CONF_BASE_URL,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_PROVIDER,
    CONF_TOKEN_URL,
    CONF_VENDOR,
    CONF_WEBHOOK_SECRET,
    DEFAULT_1NCE_URL,
    DEFAULT_KORE_SUPERSIM_URL,
    DEFAULT_KORE_TOKEN_URL,
    DEFAULT_TWILIO_SUPERSIM_URL,
    DOMAIN,
)
from simulator.onence import OnenceSimulator
from simulator.supersim import SuperSimSimulator
from tests.conftest import WEBHOOK_ID
from tests.provider_fixtures import *  # noqa: F403  (setup_onence, setup_supersim)
from tests.test_config_flow import (
    SETUP_ENTRY,
    configure,
    form_prefill,
    options_configure,
    profile_choices,
    start_user_flow,
)


async def test_forms_default_to_the_public_apis(hass: HomeAssistant) -> None:
    onence = await start_user_flow(hass, "onence")
    assert form_prefill(onence) == {CONF_ADVANCED: {CONF_BASE_URL: DEFAULT_1NCE_URL}}
    twilio = await start_user_flow(hass, "supersim_twilio")
    assert form_prefill(twilio) == {CONF_ADVANCED: {CONF_BASE_URL: DEFAULT_TWILIO_SUPERSIM_URL}}
    kore = await start_user_flow(hass, "supersim_kore")
    assert form_prefill(kore) == {
        CONF_ADVANCED: {
            CONF_BASE_URL: DEFAULT_KORE_SUPERSIM_URL,
            CONF_TOKEN_URL: DEFAULT_KORE_TOKEN_URL,
        }
    }


async def test_onence_wrong_secret_then_right_one(
    hass: HomeAssistant, onence_sim: OnenceSimulator
) -> None:
    result = await start_user_flow(hass, "onence")
    typed = {
        CONF_USERNAME: onence_sim.username,
        CONF_PASSWORD: "wrong",
        CONF_ADVANCED: {CONF_BASE_URL: f"{onence_sim.api_url}/"},
    }
    result = await configure(hass, result, typed)
    assert result["errors"] == {"base": "invalid_auth"}
    assert form_prefill(result) == {
        CONF_USERNAME: onence_sim.username,
        CONF_ADVANCED: {CONF_BASE_URL: f"{onence_sim.api_url}/"},
    }
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(
            hass, result, {**form_prefill(result), CONF_PASSWORD: onence_sim.password}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"1NCE ({onence_sim.username})"
    assert result["result"].unique_id == onence_sim.username
    data = dict(result["data"])
    assert data.pop(CONF_WEBHOOK_ID)
    assert data == {
        CONF_PROVIDER: "1nce",
        CONF_USERNAME: onence_sim.username,
        CONF_PASSWORD: onence_sim.password,
        CONF_BASE_URL: onence_sim.api_url,
    }


async def test_twilio_creates_entry(hass: HomeAssistant, supersim_sim: SuperSimSimulator) -> None:
    result = await start_user_flow(hass, "supersim_twilio")
    typed = {
        CONF_ACCOUNT_SID: supersim_sim.account_sid,
        CONF_AUTH_TOKEN: "0" * 32,
        CONF_ADVANCED: {CONF_BASE_URL: supersim_sim.base_url},
    }
    result = await configure(hass, result, typed)
    assert result["errors"] == {"base": "invalid_auth"}
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(hass, result, {**typed, CONF_AUTH_TOKEN: supersim_sim.auth_token})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == supersim_sim.account_sid
    assert result["data"][CONF_PROVIDER] == "supersim"
    assert result["data"][CONF_VENDOR] == "twilio"
    assert result["data"][CONF_AUTH_TOKEN] == supersim_sim.auth_token
    # The same account twice is refused.
    result = await start_user_flow(hass, "supersim_twilio")
    result = await configure(hass, result, {**typed, CONF_AUTH_TOKEN: supersim_sim.auth_token})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_kore_creates_a_loaded_entry(
    hass: HomeAssistant, kore_sim: SuperSimSimulator, hass_url: str
) -> None:
    fleet = kore_sim.add_fleet("Field units")
    kore_sim.add_sim("Pump station", "online", fleet=fleet)
    result = await start_user_flow(hass, "supersim_kore")
    result = await configure(
        hass,
        result,
        {
            CONF_CLIENT_ID: kore_sim.client_id,
            CONF_CLIENT_SECRET: kore_sim.client_secret,
            CONF_WEBHOOK_SECRET: kore_sim.webhook_secret,
            CONF_ADVANCED: {CONF_BASE_URL: kore_sim.base_url, CONF_TOKEN_URL: kore_sim.token_url},
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.unique_id == kore_sim.client_id
    assert entry.data[CONF_VENDOR] == "kore"
    assert entry.data[CONF_TOKEN_URL] == kore_sim.token_url
    assert entry.data[CONF_WEBHOOK_SECRET] == kore_sim.webhook_secret
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.pump_station_last_sms_status") is not None


async def test_kore_reconfigure_and_reauth(
    hass: HomeAssistant, kore_sim: SuperSimSimulator, hass_url: str
) -> None:
    kore_sim.add_fleet("Field units")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Super SIM ({kore_sim.client_id})",
        unique_id=kore_sim.client_id,
        data={
            CONF_PROVIDER: "supersim",
            CONF_VENDOR: "kore",
            CONF_CLIENT_ID: kore_sim.client_id,
            CONF_CLIENT_SECRET: kore_sim.client_secret,
            CONF_WEBHOOK_SECRET: kore_sim.webhook_secret,
            CONF_BASE_URL: kore_sim.base_url,
            CONF_TOKEN_URL: kore_sim.token_url,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "supersim_kore"
    # Secrets are never shown again; the rest is there to be edited.
    assert form_prefill(result) == {
        CONF_CLIENT_ID: kore_sim.client_id,
        CONF_ADVANCED: {CONF_BASE_URL: kore_sim.base_url, CONF_TOKEN_URL: kore_sim.token_url},
    }
    result = await configure(
        hass, result, {**form_prefill(result), CONF_CLIENT_SECRET: kore_sim.client_secret}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    # The webhook secret was left empty: the entry no longer has one.
    assert CONF_WEBHOOK_SECRET not in entry.data
    assert entry.state is ConfigEntryState.LOADED

    kore_sim.client_secret = "rotated-secret"
    result = await entry.start_reauth_flow(hass)
    assert list(result["data_schema"].schema) == [CONF_CLIENT_SECRET]
    result = await configure(hass, result, {CONF_CLIENT_SECRET: "rotated-secret"})
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_CLIENT_SECRET] == "rotated-secret"
    assert entry.data[CONF_VENDOR] == "kore"
    assert entry.state is ConfigEntryState.LOADED


async def test_onence_reauth(
    hass: HomeAssistant, onence_sim: OnenceSimulator, setup_onence: MockConfigEntry
) -> None:
    onence_sim.password = "rotated"
    result = await setup_onence.start_reauth_flow(hass)
    assert list(result["data_schema"].schema) == [CONF_PASSWORD]
    result = await configure(hass, result, {CONF_PASSWORD: "still-wrong"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(hass, result, {CONF_PASSWORD: "rotated"})
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert setup_onence.data[CONF_PASSWORD] == "rotated"
    assert setup_onence.state is ConfigEntryState.LOADED


async def test_onence_options_show_the_forwarder_url(
    hass: HomeAssistant, setup_onence: MockConfigEntry, hass_url: str
) -> None:
    result = await hass.config_entries.options.async_init(setup_onence.entry_id)
    assert result["menu_options"] == ["urls"]
    result = await options_configure(hass, result, {"next_step_id": "urls"})
    assert result["description_placeholders"]["callback_url"] == (
        f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    )


async def test_supersim_options_point_fleets_at_home_assistant(
    hass: HomeAssistant, supersim_provider: Any, hass_url: str
) -> None:
    """Set the Fleet's SMS Commands URL from the options; one set elsewhere needs a yes."""
    entry = supersim_provider.entry
    sim: SuperSimSimulator = supersim_provider.sim
    own_url = f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    (ours,) = sim.fleets.values()
    other = sim.add_fleet("Other system", sms_commands_url="https://other.example/sms")
    fresh = sim.add_fleet("New units")

    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["menu_options"] == ["callbacks"]
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    assert profile_choices(result) == {
        ours.sid: ours.unique_name,
        other.sid: "Other system",
        fresh.sid: "New units",
    }
    assert result["description_placeholders"]["already_here"] == ours.unique_name
    assert result["description_placeholders"]["elsewhere"] == "Other system"

    result = await options_configure(hass, result, {"profiles": [fresh.sid, other.sid]})
    assert result["step_id"] == "confirm_overwrite"
    assert "https://other.example/sms" in result["description_placeholders"]["old_urls"]
    result = await options_configure(hass, result, {"confirm": False})
    assert result["reason"] == "overwrite_declined"
    assert other.sms_commands_url == "https://other.example/sms"
    assert fresh.sms_commands_url is None

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    result = await options_configure(hass, result, {"profiles": [fresh.sid, other.sid]})
    result = await options_configure(hass, result, {"confirm": True})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert fresh.sms_commands_url == own_url
    assert other.sms_commands_url == own_url
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize("step", ["onence", "supersim_twilio", "supersim_kore"])
async def test_unreachable_api(hass: HomeAssistant, step: str, socket_enabled: None) -> None:
    from tests.test_config_flow import closed_port_url

    url = closed_port_url()
    secrets = {
        "onence": {CONF_USERNAME: "u", CONF_PASSWORD: "p"},
        "supersim_twilio": {CONF_ACCOUNT_SID: "AC" + "0" * 32, CONF_AUTH_TOKEN: "t"},
        "supersim_kore": {CONF_CLIENT_ID: "c", CONF_CLIENT_SECRET: "s"},
    }[step]
    advanced = {CONF_BASE_URL: url} | ({CONF_TOKEN_URL: f"{url}/token"} if "kore" in step else {})
    result = await start_user_flow(hass, step)
    result = await configure(hass, result, {**secrets, CONF_ADVANCED: advanced})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
