"""Shared test set-up: the integration runs in a real hass against the simulators over HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from homeassistant.const import CONF_API_TOKEN, CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.iot_sms  # noqa: F401  (must win over the plugin's custom_components)
from custom_components.iot_sms import messaging
from custom_components.iot_sms.const import (
    CONF_BASE_URL,
    CONF_CALLBACK_SECRET,
    CONF_PROVIDER,
    DOMAIN,
    PROVIDER_EMNIFY,
)
from simulator.emnify import EmnifySimulator
from tests.sim_fixtures import *  # noqa: F403
from tests.sim_fixtures_eseye import *  # noqa: F403
from tests.sim_fixtures_onence import *  # noqa: F403
from tests.sim_fixtures_supersim import *  # noqa: F403

pytest_plugins = "pytest_homeassistant_custom_component"

WEBHOOK_ID = "0f" * 32
CALLBACK_SECRET = "test-callback-secret-0123456789abcdef-0123456789abcdef"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load the integration from custom_components in every test."""


# How Home Assistant's frame helper reports a deprecated use by this integration.
OUR_USAGE_REPORT = "Detected that custom integration 'iot_sms'"


class UsageReports(logging.Handler):
    """Collects the frame helper's reports about this integration."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if OUR_USAGE_REPORT in message:
            self.reports.append(message)


@pytest.fixture(autouse=True)
def quick_reconcile(monkeypatch: pytest.MonkeyPatch) -> None:
    """A send whose answer was lost is looked up three times without waiting a minute."""
    monkeypatch.setattr(messaging, "RECONCILE_DELAYS", (0.0, 0.01, 0.01))


@pytest.fixture(autouse=True)
def no_usage_reports() -> Iterator[UsageReports]:
    """Fail any test during which Home Assistant reports a deprecated use by iot_sms.

    The frame helper reports each use once per process: the first test that makes it fails.
    """
    handler = UsageReports()
    logger = logging.getLogger("homeassistant.helpers.frame")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    if handler.reports:
        pytest.fail("Home Assistant reported a deprecated use:\n" + "\n".join(handler.reports))


@pytest.fixture
async def hass_url(hass: HomeAssistant, hass_client_no_auth: Any) -> str:
    """Serve hass over real HTTP on 127.0.0.1 and make that its internal URL.

    Every component that registers views is set up first: the test server freezes the router.
    """
    for component in (
        "http",
        "webhook",
        "diagnostics",
        "repairs",
        "websocket_api",
        "config",
        "notify",
        "event",
        "sensor",
        DOMAIN,
    ):
        assert await async_setup_component(hass, component, {})
    client = await hass_client_no_auth()
    url = str(client.make_url("/")).rstrip("/")
    await async_process_ha_core_config(hass, {"internal_url": url})
    return url


@pytest.fixture
def emnify_endpoints(emnify_sim: EmnifySimulator) -> dict[str, int]:
    """Three devices in the field: one delivers, one is offline, one answers every SMS."""
    return {
        "online": emnify_sim.add_endpoint("Pump station", "online").id,
        "offline": emnify_sim.add_endpoint("Remote gateway", "offline").id,
        "echo": emnify_sim.add_endpoint("Tracker", "echo").id,
    }


@pytest.fixture
def emnify_entry(
    hass: HomeAssistant, emnify_sim: EmnifySimulator, hass_url: str
) -> MockConfigEntry:
    """An emnify account pointing at the simulator, with a signed callback registered."""
    emnify_sim.register_callback(f"{hass_url}/api/iot_sms/{WEBHOOK_ID}", CALLBACK_SECRET)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=emnify_sim.org_name,
        unique_id=str(emnify_sim.org_id),
        data={
            CONF_PROVIDER: PROVIDER_EMNIFY,
            CONF_API_TOKEN: emnify_sim.application_token,
            CONF_BASE_URL: emnify_sim.base_url,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
            CONF_CALLBACK_SECRET: CALLBACK_SECRET,
        },
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
async def setup_emnify(
    hass: HomeAssistant, emnify_entry: MockConfigEntry, emnify_endpoints: dict[str, int]
) -> AsyncIterator[MockConfigEntry]:
    """The emnify entry, loaded."""
    assert await hass.config_entries.async_setup(emnify_entry.entry_id)
    await hass.async_block_till_done()
    return emnify_entry


@pytest.fixture
def wait_for() -> Callable[[Callable[[], bool]], Awaitable[None]]:
    """Wait (real time, bounded) until a condition about the system holds."""

    async def _wait(condition: Callable[[], bool], limit: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not condition():
            if loop.time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.02)

    return _wait
