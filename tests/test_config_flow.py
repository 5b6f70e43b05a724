"""Config flow, reauth, reconfigure, options and SIM subentries against the simulators over HTTP."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock, patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    CONF_API_TOKEN,
    CONF_NAME,
    CONF_PASSWORD,
    CONF_USERNAME,
    CONF_WEBHOOK_ID,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, UnknownHandler, section
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.iot_sms.api.errors import InvalidRequest
from custom_components.iot_sms.compat import device_subentry_id
from custom_components.iot_sms.const import (
    CONF_ADVANCED,
    CONF_API_MSISDN,
    CONF_BASE_URL,
    CONF_CALLBACK_SECRET,
    CONF_MSISDN,
    CONF_PROVIDER,
    CONF_TAG,
    DEFAULT_EMNIFY_URL,
    DEFAULT_ESEYE_URL,
    DOMAIN,
    PROVIDER_EMNIFY,
    PROVIDER_ESEYE,
    SUBENTRY_SIM,
)
from simulator.emnify import EmnifySimulator, SimServiceProfile
from simulator.eseye import EseyeSimulator
from tests.conftest import CALLBACK_SECRET, WEBHOOK_ID

STRINGS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "custom_components" / DOMAIN / "strings.json").read_text(
        encoding="utf-8"
    )
)
ESEYE_WEBHOOK_ID = "1e" * 32
SETUP_ENTRY = "custom_components.iot_sms.async_setup_entry"
CONFIG = ("config",)
OPTIONS = ("options",)
SUBENTRY = ("config_subentries", SUBENTRY_SIM)


# ---------------------------------------------------------------------------- helpers


def translated(result: Any, scope: tuple[str, ...]) -> Any:
    """Fail unless the user would see a translated step, error or abort reason."""
    strings = STRINGS
    for key in scope:
        strings = strings[key]
    if result["type"] in (FlowResultType.FORM, FlowResultType.MENU):
        assert result["step_id"] in strings["step"], result["step_id"]
        for error in (result.get("errors") or {}).values():
            assert error in strings["error"], error
    if result["type"] is FlowResultType.ABORT:
        assert result["reason"] in strings["abort"], result["reason"]
    return result


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def emnify_input(token: str, base_url: str) -> dict[str, Any]:
    return {CONF_API_TOKEN: token, CONF_ADVANCED: {CONF_BASE_URL: base_url}}


def eseye_input(
    sim: EseyeSimulator, password: str | None = None, base_url: str | None = None, **extra: str
) -> dict[str, Any]:
    return {
        CONF_USERNAME: sim.username,
        CONF_PASSWORD: sim.password if password is None else password,
        **extra,
        CONF_ADVANCED: {CONF_BASE_URL: sim.base_url if base_url is None else base_url},
    }


async def start_user_flow(hass: HomeAssistant, provider: str) -> Any:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": provider}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == provider
    return result


async def configure(hass: HomeAssistant, result: Any, user_input: dict[str, Any]) -> Any:
    return translated(
        await hass.config_entries.flow.async_configure(result["flow_id"], user_input), CONFIG
    )


async def options_configure(hass: HomeAssistant, result: Any, user_input: dict[str, Any]) -> Any:
    return translated(
        await hass.config_entries.options.async_configure(result["flow_id"], user_input), OPTIONS
    )


def form_prefill(result: Any) -> dict[str, Any]:
    """What the form shows in its fields before the user types: suggested values or defaults."""

    def walk(schema: Any) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for marker, value in schema.schema.items():
            if isinstance(value, section):
                shown[str(marker)] = walk(value.schema)
                continue
            suggested = (marker.description or {}).get("suggested_value")
            if suggested is not None:
                shown[str(marker)] = suggested
            elif callable(marker.default):
                shown[str(marker)] = marker.default()
        return shown

    return walk(result["data_schema"])


def profile_choices(result: Any) -> dict[str, str]:
    (validator,) = result["data_schema"].schema.values()
    return validator.options


def sim_callback(sim: EmnifySimulator, profile_id: int) -> tuple[str | None, str | None]:
    """(callback URL, signing secret) the simulated emnify has for a service profile."""
    profile = sim.service_profiles[profile_id]
    callback = sim.api_callbacks.get(profile.api_callback_id or -1)
    secret = sim.api_secrets.get(profile.api_secret_id or -1)
    return (callback.url if callback else None, secret.secret if secret else None)


def entry_device_names(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return sorted(device.name or "" for device in devices)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def eseye_entry(hass: HomeAssistant, eseye_sim: EseyeSimulator, hass_url: str) -> MockConfigEntry:
    """An Eseye account pointing at the simulator (not loaded)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Eseye ({eseye_sim.username})",
        unique_id=eseye_sim.username,
        data={
            CONF_PROVIDER: PROVIDER_ESEYE,
            CONF_USERNAME: eseye_sim.username,
            CONF_PASSWORD: eseye_sim.password,
            CONF_API_MSISDN: eseye_sim.api_msisdn,
            CONF_BASE_URL: eseye_sim.base_url,
            CONF_WEBHOOK_ID: ESEYE_WEBHOOK_ID,
        },
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def setup_eseye(hass: HomeAssistant, eseye_entry: MockConfigEntry) -> MockConfigEntry:
    """The Eseye entry, loaded."""
    assert await hass.config_entries.async_setup(eseye_entry.entry_id)
    await hass.async_block_till_done()
    return eseye_entry


@pytest.fixture
def profiles(emnify_sim: EmnifySimulator, emnify_endpoints: dict[str, int]) -> dict[str, int]:
    """Profile 1: already calls hass (emnify_entry). 2: calls another system. 3: no callback."""
    foreign = emnify_sim.add_endpoint("Foreign unit", service_profile_id=2).id
    emnify_sim.register_callback("https://other.example/cb", None, service_profile_id=2)
    emnify_sim.service_profiles[3] = SimServiceProfile(3, "Fresh profile")
    fresh = emnify_sim.add_endpoint("Fresh unit", service_profile_id=3).id
    return {"foreign": foreign, "fresh": fresh}


@pytest.fixture
async def setup_emnify_without_secret(
    hass: HomeAssistant,
    emnify_entry: MockConfigEntry,
    emnify_endpoints: dict[str, int],
    profiles: dict[str, int],
) -> MockConfigEntry:
    """The emnify entry before any callback was registered from Home Assistant, loaded."""
    data = {k: v for k, v in emnify_entry.data.items() if k != CONF_CALLBACK_SECRET}
    hass.config_entries.async_update_entry(emnify_entry, data=data)
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    return emnify_entry


# ---------------------------------------------------------------------------- user step


async def test_user_step_is_a_provider_menu(hass: HomeAssistant) -> None:
    result = translated(
        await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"}), CONFIG
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == [
        PROVIDER_EMNIFY,
        PROVIDER_ESEYE,
        "onence",
        "supersim_twilio",
        "supersim_kore",
    ]
    assert set(STRINGS["config"]["step"]["user"]["menu_options"]) == set(result["menu_options"])


async def test_forms_default_to_the_public_apis(hass: HomeAssistant) -> None:
    emnify = await start_user_flow(hass, PROVIDER_EMNIFY)
    filled = form_prefill(emnify)
    assert filled[CONF_ADVANCED][CONF_BASE_URL] == DEFAULT_EMNIFY_URL
    eseye = await start_user_flow(hass, PROVIDER_ESEYE)
    filled = form_prefill(eseye)
    assert filled[CONF_ADVANCED][CONF_BASE_URL] == DEFAULT_ESEYE_URL


# ---------------------------------------------------------------------------- emnify


async def test_emnify_creates_entry(hass: HomeAssistant, emnify_sim: EmnifySimulator) -> None:
    result = await start_user_flow(hass, PROVIDER_EMNIFY)
    with patch(SETUP_ENTRY, return_value=True) as setup_entry:
        result = await configure(
            hass, result, emnify_input(emnify_sim.application_token, f"{emnify_sim.base_url}/")
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == emnify_sim.org_name
    entry = result["result"]
    assert entry.unique_id == str(emnify_sim.org_id)
    assert entry.data == {
        CONF_PROVIDER: PROVIDER_EMNIFY,
        CONF_API_TOKEN: emnify_sim.application_token,
        CONF_BASE_URL: emnify_sim.base_url,  # the trailing slash of the input is gone
        CONF_WEBHOOK_ID: entry.data[CONF_WEBHOOK_ID],
    }
    assert re.fullmatch(r"[0-9a-f]{64}", entry.data[CONF_WEBHOOK_ID])
    assert len(setup_entry.mock_calls) == 1
    assert emnify_sim.auth_count >= 1


async def test_emnify_wrong_token_then_right_one(
    hass: HomeAssistant, emnify_sim: EmnifySimulator
) -> None:
    result = await start_user_flow(hass, PROVIDER_EMNIFY)
    result = await configure(hass, result, emnify_input("wrong-token", emnify_sim.base_url))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == PROVIDER_EMNIFY
    assert result["errors"] == {"base": "invalid_auth"}
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(
            hass, result, emnify_input(emnify_sim.application_token, emnify_sim.base_url)
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == str(emnify_sim.org_id)


async def test_emnify_retry_keeps_the_typed_url(
    hass: HomeAssistant, emnify_sim: EmnifySimulator
) -> None:
    """After an error the form shows the URL typed, and the retry goes there, not to emnify."""
    result = await start_user_flow(hass, PROVIDER_EMNIFY)
    result = await configure(hass, result, emnify_input("wrong-token", emnify_sim.base_url))
    assert result["errors"] == {"base": "invalid_auth"}
    # The token is a secret: never shown again.
    assert form_prefill(result) == {CONF_ADVANCED: {CONF_BASE_URL: emnify_sim.base_url}}
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(
            hass,
            result,
            {CONF_API_TOKEN: emnify_sim.application_token, **form_prefill(result)},
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_BASE_URL] == emnify_sim.base_url


async def test_eseye_wrong_password_keeps_the_form(
    hass: HomeAssistant, eseye_sim: EseyeSimulator
) -> None:
    result = await start_user_flow(hass, PROVIDER_ESEYE)
    result = await configure(
        hass, result, eseye_input(eseye_sim, password="wrong", api_msisdn="+44 7700 900000")
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert form_prefill(result) == {
        CONF_USERNAME: eseye_sim.username,
        CONF_API_MSISDN: "+44 7700 900000",
        CONF_ADVANCED: {CONF_BASE_URL: eseye_sim.base_url},
    }
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(
            hass, result, {**form_prefill(result), CONF_PASSWORD: eseye_sim.password}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_BASE_URL] == eseye_sim.base_url
    assert result["data"][CONF_API_MSISDN] == "447700900000"


async def test_a_bug_in_the_check_is_an_error_in_the_form(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception shows "unknown" in the form (no HTTP 500) and is logged."""
    result = await start_user_flow(hass, PROVIDER_EMNIFY)
    broken = MagicMock()
    broken.async_get_account = AsyncMock(side_effect=KeyError("esc.org"))
    with patch("custom_components.iot_sms.config_flow.create_client", return_value=broken):
        result = await configure(hass, result, emnify_input("token", emnify_sim.base_url))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert form_prefill(result) == {CONF_ADVANCED: {CONF_BASE_URL: emnify_sim.base_url}}
    assert "Unexpected error validating credentials" in caplog.text
    assert "KeyError" in caplog.text


async def test_emnify_unreachable(hass: HomeAssistant, socket_enabled: None) -> None:
    result = await start_user_flow(hass, PROVIDER_EMNIFY)
    result = await configure(hass, result, emnify_input("any-token", closed_port_url()))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_emnify_unexpected_error(hass: HomeAssistant, emnify_sim: EmnifySimulator) -> None:
    result = await start_user_flow(hass, PROVIDER_EMNIFY)
    broken = MagicMock()
    broken.async_get_account = AsyncMock(side_effect=InvalidRequest("HTTP 418: teapot"))
    with patch("custom_components.iot_sms.config_flow.create_client", return_value=broken):
        result = await configure(
            hass, result, emnify_input(emnify_sim.application_token, emnify_sim.base_url)
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert broken.async_get_account.await_count == 1
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(
            hass, result, emnify_input(emnify_sim.application_token, emnify_sim.base_url)
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_emnify_already_configured(hass: HomeAssistant, emnify_sim: EmnifySimulator) -> None:
    existing = MockConfigEntry(domain=DOMAIN, unique_id=str(emnify_sim.org_id), data={})
    existing.add_to_hass(hass)
    result = await start_user_flow(hass, PROVIDER_EMNIFY)
    with patch(SETUP_ENTRY, return_value=True) as setup_entry:
        result = await configure(
            hass, result, emnify_input(emnify_sim.application_token, emnify_sim.base_url)
        )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert setup_entry.mock_calls == []
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


# ---------------------------------------------------------------------------- eseye


async def test_eseye_creates_entry(hass: HomeAssistant, eseye_sim: EseyeSimulator) -> None:
    result = await start_user_flow(hass, PROVIDER_ESEYE)
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(
            hass,
            result,
            eseye_input(
                eseye_sim, base_url=f"{eseye_sim.base_url}/", **{CONF_API_MSISDN: "+44 7700 900000"}
            ),
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"Eseye ({eseye_sim.username})"
    entry = result["result"]
    assert entry.unique_id == eseye_sim.username
    assert entry.data == {
        CONF_PROVIDER: PROVIDER_ESEYE,
        CONF_USERNAME: eseye_sim.username,
        CONF_PASSWORD: eseye_sim.password,
        CONF_API_MSISDN: "447700900000",
        CONF_BASE_URL: eseye_sim.base_url,
        CONF_WEBHOOK_ID: entry.data[CONF_WEBHOOK_ID],
    }
    assert re.fullmatch(r"[0-9a-f]{64}", entry.data[CONF_WEBHOOK_ID])
    # The credentials were really checked with the simulator.
    assert [form[CONF_USERNAME] for form in eseye_sim.forms("/mtstatusapi/index/post")] == [
        eseye_sim.username
    ]


async def test_eseye_without_api_msisdn(hass: HomeAssistant, eseye_sim: EseyeSimulator) -> None:
    result = await start_user_flow(hass, PROVIDER_ESEYE)
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(hass, result, eseye_input(eseye_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert not result["result"].data.get(CONF_API_MSISDN)


async def test_eseye_invalid_api_msisdn(hass: HomeAssistant, eseye_sim: EseyeSimulator) -> None:
    result = await start_user_flow(hass, PROVIDER_ESEYE)
    result = await configure(hass, result, eseye_input(eseye_sim, **{CONF_API_MSISDN: "12ab"}))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_API_MSISDN: "invalid_msisdn"}
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(
            hass, result, eseye_input(eseye_sim, **{CONF_API_MSISDN: "0044 7700 900000"})
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].data[CONF_API_MSISDN] == "447700900000"


async def test_eseye_bad_password(hass: HomeAssistant, eseye_sim: EseyeSimulator) -> None:
    result = await start_user_flow(hass, PROVIDER_ESEYE)
    result = await configure(hass, result, eseye_input(eseye_sim, password="not-the-password"))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}


async def test_eseye_ip_not_allowed(hass: HomeAssistant, eseye_sim: EseyeSimulator) -> None:
    eseye_sim.allowed_ips = ["203.0.113.7"]
    result = await start_user_flow(hass, PROVIDER_ESEYE)
    result = await configure(hass, result, eseye_input(eseye_sim))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "ip_not_allowed"}
    eseye_sim.allowed_ips = ["127.0.0.1"]
    with patch(SETUP_ENTRY, return_value=True):
        result = await configure(hass, result, eseye_input(eseye_sim))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_eseye_unreachable(hass: HomeAssistant, eseye_sim: EseyeSimulator) -> None:
    result = await start_user_flow(hass, PROVIDER_ESEYE)
    result = await configure(hass, result, eseye_input(eseye_sim, base_url=closed_port_url()))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


# ---------------------------------------------------------------------------- reauth


async def test_emnify_reauth(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_entry: MockConfigEntry
) -> None:
    emnify_sim.application_token = "rotated-token"
    result = translated(await emnify_entry.start_reauth_flow(hass), CONFIG)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["title"] == emnify_entry.title
    result = await configure(hass, result, {CONF_API_TOKEN: "still-the-old-token"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(hass, result, {CONF_API_TOKEN: "rotated-token"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert emnify_entry.data[CONF_API_TOKEN] == "rotated-token"
    assert emnify_entry.data[CONF_WEBHOOK_ID] == WEBHOOK_ID
    assert emnify_entry.data[CONF_CALLBACK_SECRET] == CALLBACK_SECRET
    assert emnify_entry.state is ConfigEntryState.LOADED


async def test_emnify_reauth_other_account(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_entry: MockConfigEntry
) -> None:
    before = dict(emnify_entry.data)
    result = await emnify_entry.start_reauth_flow(hass)
    emnify_sim.org_id += 1  # the token now belongs to another organisation
    result = await configure(hass, result, {CONF_API_TOKEN: emnify_sim.application_token})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "account_mismatch"
    assert dict(emnify_entry.data) == before


async def test_eseye_reauth(
    hass: HomeAssistant, eseye_sim: EseyeSimulator, eseye_entry: MockConfigEntry
) -> None:
    eseye_sim.password = "rotated-password"
    result = translated(await eseye_entry.start_reauth_flow(hass), CONFIG)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert list(result["data_schema"].schema) == [CONF_PASSWORD]
    result = await configure(hass, result, {CONF_PASSWORD: "demo-password"})
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(hass, result, {CONF_PASSWORD: "rotated-password"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert eseye_entry.data[CONF_PASSWORD] == "rotated-password"
    assert eseye_entry.data[CONF_USERNAME] == eseye_sim.username
    assert eseye_entry.state is ConfigEntryState.LOADED


# ---------------------------------------------------------------------------- reconfigure


async def test_emnify_reconfigure(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, hass_url: str
) -> None:
    old_url = closed_port_url()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Old name",
        unique_id=str(emnify_sim.org_id),
        data={
            CONF_PROVIDER: PROVIDER_EMNIFY,
            CONF_API_TOKEN: "old-token",
            CONF_BASE_URL: old_url,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
            CONF_CALLBACK_SECRET: CALLBACK_SECRET,
        },
    )
    entry.add_to_hass(hass)
    result = translated(await entry.start_reconfigure_flow(hass), CONFIG)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == PROVIDER_EMNIFY
    filled = form_prefill(result)
    assert filled[CONF_ADVANCED][CONF_BASE_URL] == old_url
    result = await configure(hass, result, emnify_input("wrong-token", emnify_sim.base_url))
    assert result["step_id"] == PROVIDER_EMNIFY
    assert result["errors"] == {"base": "invalid_auth"}
    result = await configure(
        hass, result, emnify_input(emnify_sim.application_token, f"{emnify_sim.base_url}/")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data == {
        CONF_PROVIDER: PROVIDER_EMNIFY,
        CONF_API_TOKEN: emnify_sim.application_token,
        CONF_BASE_URL: emnify_sim.base_url,
        CONF_WEBHOOK_ID: WEBHOOK_ID,
        CONF_CALLBACK_SECRET: CALLBACK_SECRET,
    }
    assert entry.title == emnify_sim.org_name
    assert entry.state is ConfigEntryState.LOADED
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_emnify_reconfigure_other_account(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, emnify_entry: MockConfigEntry
) -> None:
    before = dict(emnify_entry.data)
    emnify_sim.org_id += 1
    result = await emnify_entry.start_reconfigure_flow(hass)
    result = await configure(
        hass, result, emnify_input(emnify_sim.application_token, emnify_sim.base_url)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "account_mismatch"
    assert dict(emnify_entry.data) == before


async def test_eseye_reconfigure(
    hass: HomeAssistant, eseye_sim: EseyeSimulator, eseye_entry: MockConfigEntry
) -> None:
    result = translated(await eseye_entry.start_reconfigure_flow(hass), CONFIG)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == PROVIDER_ESEYE
    filled = form_prefill(result)
    assert filled[CONF_USERNAME] == eseye_sim.username
    assert filled[CONF_ADVANCED][CONF_BASE_URL] == eseye_sim.base_url
    # The API MSISDN field is cleared: the entry must no longer have one.
    result = await configure(hass, result, eseye_input(eseye_sim))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert not eseye_entry.data.get(CONF_API_MSISDN)
    assert eseye_entry.data[CONF_WEBHOOK_ID] == ESEYE_WEBHOOK_ID
    assert eseye_entry.state is ConfigEntryState.LOADED


async def test_eseye_reconfigure_other_account(
    hass: HomeAssistant, eseye_sim: EseyeSimulator, eseye_entry: MockConfigEntry
) -> None:
    before = dict(eseye_entry.data)
    eseye_sim.username = "someone-else"
    result = await eseye_entry.start_reconfigure_flow(hass)
    result = await configure(hass, result, eseye_input(eseye_sim))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "account_mismatch"
    assert dict(eseye_entry.data) == before


# ---------------------------------------------------------------------------- emnify options


async def test_emnify_options_menu(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, hass_url: str
) -> None:
    result = translated(
        await hass.config_entries.options.async_init(setup_emnify.entry_id), OPTIONS
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "init"
    assert result["menu_options"] == ["settings", "callbacks"]
    assert result["description_placeholders"]["callback_url"] == (
        f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    )


async def test_emnify_options_tag_filter(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    setup_emnify: MockConfigEntry,
) -> None:
    hub = setup_emnify.title
    assert entry_device_names(hass, setup_emnify) == sorted(
        [hub, "Pump station", "Remote gateway", "Tracker"]
    )
    emnify_sim.endpoints[emnify_endpoints["online"]].tags = "pump,north"
    emnify_sim.endpoints[emnify_endpoints["echo"]].tags = "tracker"
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "settings"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "settings"
    result = await options_configure(hass, result, {CONF_TAG: " pump "})
    # Before anything is saved, the user learns what the filter keeps.
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm_tag"
    assert result["description_placeholders"] == {
        "tag": "pump",
        "kept": "1",
        "total": "3",
        "names": "Pump station",
    }
    assert entry_device_names(hass, setup_emnify) == sorted(
        [hub, "Pump station", "Remote gateway", "Tracker"]
    )
    result = await options_configure(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_emnify.options == {CONF_TAG: "pump"}
    assert setup_emnify.state is ConfigEntryState.LOADED
    assert entry_device_names(hass, setup_emnify) == sorted([hub, "Pump station"])


async def test_emnify_tag_filter_keeping_nothing_needs_a_yes(
    hass: HomeAssistant, setup_emnify: MockConfigEntry
) -> None:
    hub = setup_emnify.title
    everything = sorted([hub, "Pump station", "Remote gateway", "Tracker"])
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "settings"})
    result = await options_configure(hass, result, {CONF_TAG: "typo"})
    assert result["step_id"] == "confirm_tag"
    assert result["description_placeholders"]["kept"] == "0"
    assert result["description_placeholders"]["total"] == "3"
    # Submitting without the box ticked refuses, and nothing is removed.
    result = await options_configure(hass, result, {"confirm": False})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "confirm_empty_filter"}
    assert setup_emnify.options == {}
    assert entry_device_names(hass, setup_emnify) == everything
    result = await options_configure(hass, result, {"confirm": True})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_emnify.options == {CONF_TAG: "typo"}
    assert entry_device_names(hass, setup_emnify) == [hub]


async def test_emnify_tag_filter_cleared_keeps_everything(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, setup_emnify: MockConfigEntry
) -> None:
    hass.config_entries.async_update_entry(setup_emnify, options={CONF_TAG: "pump"})
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "settings"})
    # The current filter is in the field, to be edited rather than retyped.
    assert form_prefill(result) == {CONF_TAG: "pump"}
    result = await options_configure(hass, result, {CONF_TAG: ""})
    assert result["description_placeholders"]["kept"] == "3"
    result = await options_configure(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setup_emnify.options == {CONF_TAG: ""}


async def test_emnify_tag_filter_provider_unreachable(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, setup_emnify: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "settings"})
    emnify_sim.faults.server_errors = 10
    result = await options_configure(hass, result, {CONF_TAG: "pump"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"
    assert setup_emnify.options == {}


async def test_emnify_options_on_an_entry_that_is_not_loaded(
    hass: HomeAssistant, emnify_entry: MockConfigEntry, profiles: dict[str, int]
) -> None:
    """The options are reachable while the entry failed to set up (e.g. retrying)."""
    result = translated(
        await hass.config_entries.options.async_init(emnify_entry.entry_id), OPTIONS
    )
    assert result["menu_options"] == ["settings", "callbacks"]
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    assert result["type"] is FlowResultType.FORM
    assert set(profile_choices(result)) == {"1", "2", "3"}


async def test_emnify_callbacks_lists_profiles(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    profiles: dict[str, int],
    setup_emnify: MockConfigEntry,
    hass_url: str,
) -> None:
    own_url = f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "callbacks"
    # Labels are the profile names only; where each one points is said once, above them.
    assert result["description_placeholders"] == {
        "callback_url": own_url,
        "already_here": "Default Policy",
        "elsewhere": "Service Profile 2",
    }
    choices = profile_choices(result)
    assert choices == {"1": "Default Policy", "2": "Service Profile 2", "3": "Fresh profile"}
    assert form_prefill(result) == {"profiles": ["1"]}
    # Nothing chosen: the form asks again.
    result = await options_configure(hass, result, {"profiles": []})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "callbacks"
    assert result["errors"] == {"base": "no_profile_selected"}
    assert set(profile_choices(result)) == {"1", "2", "3"}


async def test_emnify_callbacks_fresh_profile_gets_a_new_secret(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    profiles: dict[str, int],
    setup_emnify_without_secret: MockConfigEntry,
    hass_url: str,
) -> None:
    entry = setup_emnify_without_secret
    own_url = f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    result = await options_configure(hass, result, {"profiles": ["3"]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    secret = entry.data[CONF_CALLBACK_SECRET]
    assert len(secret) >= 43
    assert sim_callback(emnify_sim, 3) == (own_url, secret)
    assert sim_callback(emnify_sim, 2)[0] == "https://other.example/cb"
    # The reloaded entry accepts what emnify now signs with the new secret.
    assert entry.state is ConfigEntryState.LOADED
    await emnify_sim.send_mo(profiles["fresh"], "HELLO")
    assert emnify_sim.callback_log[-1].url == own_url
    assert emnify_sim.callback_log[-1].status == 200


async def test_emnify_callbacks_keep_the_existing_secret(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    profiles: dict[str, int],
    setup_emnify: MockConfigEntry,
    hass_url: str,
) -> None:
    """Profile 1 already signs with the entry's secret: registering more must not break it."""
    own_url = f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    # Profile 1 already points at this entry: no confirmation is needed.
    result = await options_configure(hass, result, {"profiles": ["1", "3"]})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_emnify.data[CONF_CALLBACK_SECRET] == CALLBACK_SECRET
    assert sim_callback(emnify_sim, 1) == (own_url, CALLBACK_SECRET)
    assert sim_callback(emnify_sim, 3) == (own_url, CALLBACK_SECRET)


async def test_emnify_callbacks_overwrite_declined(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    profiles: dict[str, int],
    setup_emnify: MockConfigEntry,
    hass_url: str,
) -> None:
    before = {pid: sim_callback(emnify_sim, pid) for pid in (1, 2, 3)}
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    result = await options_configure(hass, result, {"profiles": ["2", "3"]})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm_overwrite"
    placeholders = result["description_placeholders"]
    assert "https://other.example/cb" in placeholders["old_urls"]
    assert placeholders["callback_url"] == f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    result = await options_configure(hass, result, {"confirm": False})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "overwrite_declined"
    assert {pid: sim_callback(emnify_sim, pid) for pid in (1, 2, 3)} == before


async def test_emnify_callbacks_overwrite_confirmed(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    profiles: dict[str, int],
    setup_emnify: MockConfigEntry,
    hass_url: str,
) -> None:
    own_url = f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    result = await options_configure(hass, result, {"profiles": ["2"]})
    assert result["step_id"] == "confirm_overwrite"
    result = await options_configure(hass, result, {"confirm": True})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert sim_callback(emnify_sim, 2) == (own_url, setup_emnify.data[CONF_CALLBACK_SECRET])
    assert sim_callback(emnify_sim, 3) == (None, None)


async def test_emnify_callbacks_provider_unreachable(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    profiles: dict[str, int],
    setup_emnify: MockConfigEntry,
) -> None:
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    emnify_sim.faults.path_filter = "/service_profile/"
    emnify_sim.faults.server_errors = 1
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"


async def test_emnify_callbacks_registration_fails(
    hass: HomeAssistant,
    emnify_sim: EmnifySimulator,
    profiles: dict[str, int],
    setup_emnify_without_secret: MockConfigEntry,
) -> None:
    entry = setup_emnify_without_secret
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    emnify_sim.faults.path_filter = "/api_secret"
    emnify_sim.faults.server_errors = 1
    result = await options_configure(hass, result, {"profiles": ["3"]})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"
    assert CONF_CALLBACK_SECRET not in entry.data
    assert sim_callback(emnify_sim, 3) == (None, None)


async def test_emnify_callbacks_without_url(
    hass: HomeAssistant, profiles: dict[str, int], setup_emnify: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(setup_emnify.entry_id)
    with patch("custom_components.iot_sms.config_flow.async_callback_url", return_value=None):
        result = await options_configure(hass, result, {"next_step_id": "callbacks"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "no_url"


# ---------------------------------------------------------------------------- eseye options


async def test_eseye_options_show_the_urls(
    hass: HomeAssistant, setup_eseye: MockConfigEntry, hass_url: str
) -> None:
    callback_url = f"{hass_url}/api/iot_sms/{ESEYE_WEBHOOK_ID}"
    result = translated(await hass.config_entries.options.async_init(setup_eseye.entry_id), OPTIONS)
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["urls"]
    result = await options_configure(hass, result, {"next_step_id": "urls"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "urls"
    assert result["description_placeholders"]["callback_url"] == callback_url
    assert ESEYE_WEBHOOK_ID in result["description_placeholders"]["webhook_url"]
    result = await options_configure(hass, result, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setup_eseye.options == {}


# ---------------------------------------------------------------------------- SIM subentries


async def test_eseye_sim_subentries(hass: HomeAssistant, setup_eseye: MockConfigEntry) -> None:
    entry = setup_eseye
    assert set(entry.supported_subentry_types) == {SUBENTRY_SIM}
    manager = hass.config_entries.subentries

    async def add(name: str, msisdn: str, result: Any = None) -> Any:
        if result is None:
            result = await manager.async_init(
                (entry.entry_id, SUBENTRY_SIM), context={"source": "user"}
            )
            assert result["type"] is FlowResultType.FORM
            assert result["step_id"] == "user"
        return translated(
            await manager.async_configure(
                result["flow_id"], {CONF_NAME: name, CONF_MSISDN: msisdn}
            ),
            SUBENTRY,
        )

    result = await add("Pump A", "+44 77OO 900001")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MSISDN: "invalid_msisdn"}
    # What was typed is still there, to be corrected rather than retyped.
    assert form_prefill(result) == {CONF_NAME: "Pump A", CONF_MSISDN: "+44 77OO 900001"}
    result = await add("Pump A", "+44 7700 900001", result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Pump A"
    assert result["data"] == {CONF_MSISDN: "447700900001"}
    await hass.async_block_till_done()

    (subentry,) = entry.subentries.values()
    assert subentry.title == "Pump A"
    assert subentry.data == {CONF_MSISDN: "447700900001"}
    assert entry.state is ConfigEntryState.LOADED
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    (sim_device,) = [device for device in devices if device.name == "Pump A"]
    assert device_subentry_id(sim_device, entry.entry_id) == subentry.subentry_id

    result = await add("Same SIM", "0044 7700 900001")
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MSISDN: "already_configured"}
    assert len(entry.subentries) == 1

    assert hass.config_entries.async_remove_subentry(entry, subentry.subentry_id)
    await hass.async_block_till_done()
    assert entry.subentries == {}
    assert entry.state is ConfigEntryState.LOADED
    assert "Pump A" not in entry_device_names(hass, entry)


async def test_emnify_has_no_subentries(hass: HomeAssistant, emnify_entry: MockConfigEntry) -> None:
    assert emnify_entry.supported_subentry_types == {}
    with pytest.raises(UnknownHandler):
        await hass.config_entries.subentries.async_init(
            (emnify_entry.entry_id, SUBENTRY_SIM), context={"source": "user"}
        )
