"""The compatibility module on the Home Assistant version under test, and the environment itself.

The suite runs on the minimum (2025.4) and on the newest release a test harness pins; each test
here runs on both and so exercises the branch that version takes.
"""

from __future__ import annotations

import pytest
from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.frame import ReportBehavior, report_usage
from homeassistant.loader import async_get_integration
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.iot_sms import compat
from custom_components.iot_sms.const import DOMAIN
from custom_components.iot_sms.devices import endpoint_identifier, hub_identifier
from custom_components.iot_sms.factory import create_client
from simulator.emnify import EmnifySimulator
from tests.conftest import UsageReports


def test_device_model_follows_the_version() -> None:
    """Since 2026.8 a device belongs to exactly one config entry; before, to a set of them."""
    assert compat.SINGLE_ENTRY_DEVICES is (AwesomeVersion(ha_version) >= "2026.8.0")


def test_validation_errors_of_home_assistant_are_ours() -> None:
    """Schemas built with `compat.vol` raise and catch the errors Home Assistant's validators do."""
    with pytest.raises(compat.vol.Invalid):
        cv.positive_int(-1)
    schema = compat.vol.Schema({compat.vol.Required("n"): cv.positive_int})
    assert schema({"n": "3"}) == {"n": 3}
    with pytest.raises(compat.vol.Invalid):
        schema({"n": -1})


async def test_device_lookups(
    hass: HomeAssistant, setup_emnify: MockConfigEntry, emnify_endpoints: dict[str, int]
) -> None:
    """An endpoint's device is found by identifier and id within its own entry only."""
    registry = dr.async_get(hass)
    entry_id = setup_emnify.entry_id
    endpoint = str(emnify_endpoints["online"])
    device = compat.device_by_identifier(
        registry, endpoint_identifier(entry_id, endpoint), entry_id
    )
    assert device is not None
    assert device.name == "Pump station"
    assert compat.device_by_id(registry, device.id) == device
    assert compat.device_by_id(registry, "no-such-device") is None
    assert list(compat.device_entry_ids(device)) == [entry_id]
    assert compat.device_subentry_id(device, entry_id) is None  # emnify endpoints: no subentry

    other = MockConfigEntry(domain=DOMAIN, title="Other account")
    other.add_to_hass(hass)
    assert (
        compat.device_by_identifier(
            registry, endpoint_identifier(entry_id, endpoint), other.entry_id
        )
        is None
    )
    hub = compat.device_by_identifier(registry, hub_identifier(entry_id), entry_id)
    assert hub is not None
    assert device.via_device_id == hub.id


async def test_removed_device_is_gone(hass: HomeAssistant, setup_emnify: MockConfigEntry) -> None:
    """Removing an entry's device takes it out of the registry."""
    registry = dr.async_get(hass)
    entry_id = setup_emnify.entry_id
    device = next(
        d for d in dr.async_entries_for_config_entry(registry, entry_id) if d.name == "Tracker"
    )
    compat.remove_device(registry, device, entry_id)
    assert compat.device_by_id(registry, device.id) is None
    assert "Tracker" not in {d.name for d in dr.async_entries_for_config_entry(registry, entry_id)}


async def test_usage_reports_fail_the_suite(
    hass: HomeAssistant, no_usage_reports: UsageReports
) -> None:
    """What the frame helper logs for a deprecated use by iot_sms is caught (and would fail)."""
    await async_get_integration(hass, DOMAIN)
    report_usage(
        "uses something deprecated in a test",
        core_behavior=ReportBehavior.LOG,
        integration_domain=DOMAIN,
    )
    assert len(no_usage_reports.reports) == 1
    assert "uses something deprecated in a test" in no_usage_reports.reports[0]
    no_usage_reports.reports.clear()  # the report was this test's own


@pytest.mark.usefixtures("disable_mock_zeroconf_resolver", "mock_async_zeroconf")
async def test_integration_session_resolves_host_names(
    hass: HomeAssistant, emnify_sim: EmnifySimulator
) -> None:
    """The shared session the clients use resolves a name with Home Assistant's own resolver.

    The harness normally swaps that resolver out; here it is the real one (aiodns and the pycares
    this environment pins), as a user's Home Assistant has it.
    """
    base_url = emnify_sim.base_url.replace("127.0.0.1", "localhost")
    client = create_client(
        async_get_clientsession(hass),
        {"provider": "emnify", "api_token": emnify_sim.application_token, "base_url": base_url},
    )
    account = await client.async_get_account()
    assert account.title == emnify_sim.org_name
