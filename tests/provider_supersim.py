"""Super SIM (Twilio) hands for the provider-parametrised suite, and its loaded account.

Like the other providers: "Pump station" (online), "Remote gateway" (offline) and "Tracker"
(echo), here SIMs of one Fleet whose SMS Commands URL is the integration's callback URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.util import slugify
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.iot_sms.const import (
    CONF_ACCOUNT_SID,
    CONF_AUTH_TOKEN,
    CONF_BASE_URL,
    CONF_PROVIDER,
    CONF_VENDOR,
    DOMAIN,
)
from tests.conftest import WEBHOOK_ID
from tests.provider_base import Provider

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from simulator.supersim import SuperSimSimulator

# Star-imported by test modules: only the fixtures.
__all__ = ["setup_supersim", "supersim_provider"]

SUPERSIM_SIMS = {
    "Pump station": "online",
    "Remote gateway": "offline",
    "Tracker": "echo",
}
FLEET_NAME = "Home Assistant fleet"


class SuperSimProvider(Provider):
    """Super SIM has no MSISDNs: a device is known, and reported, by its Sim SID.

    From the reference: one SMS of at most 160 single-byte characters, no cancel, and only the
    statuses queued, sent, delivered and failed (failed also covers the 24-hour window).
    """

    send_path = "/SmsCommands"
    manufacturer = "Super SIM"
    statuses = ("queued", "sent", "delivered", "failed")
    splits_long_text = False
    cancels = False

    def msisdn(self, name: str) -> str:
        return self.addresses[name]

    async def stranger_sends(self, text: str) -> str:
        # A SIM put into the Fleet after set-up: the integration has never listed it.
        fleet = next(iter(self.sim.fleets.values()))
        stranger = self.sim.add_sim("Stranger", "online", fleet=fleet)
        await self.sim.send_mo(stranger.sid, text)
        return stranger.sid

    def deliver(self, message_id: str) -> None:
        self.sim.set_status(message_id, "delivered")

    def fail(self, message_id: str) -> None:
        self.sim.set_status(message_id, "failed")

    def reached(self, text: str) -> list[str]:
        return [c.sid for c in self.sim.mt_commands() if c.payload.startswith(text)]

    def is_canceled_at_provider(self, message_id: str) -> bool:
        # SMS Commands have no canceled state.
        return False


@pytest.fixture
async def setup_supersim(
    hass: HomeAssistant, supersim_sim: SuperSimSimulator, hass_url: str
) -> MockConfigEntry:
    """A Twilio Super SIM account on the simulator with the three SIMs in one Fleet, loaded."""
    fleet = supersim_sim.add_fleet(
        FLEET_NAME, sms_commands_url=f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    )
    for name, behavior in SUPERSIM_SIMS.items():
        supersim_sim.add_sim(name, behavior, fleet=fleet)
    account_sid = supersim_sim.account_sid
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Super SIM ({account_sid})",
        unique_id=account_sid,
        data={
            CONF_PROVIDER: "supersim",
            CONF_VENDOR: "twilio",
            CONF_ACCOUNT_SID: account_sid,
            CONF_AUTH_TOKEN: supersim_sim.auth_token,
            CONF_BASE_URL: supersim_sim.base_url,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
def supersim_provider(request: pytest.FixtureRequest) -> SuperSimProvider:
    """The loaded Super SIM account and its hands (synchronous: see provider_fixtures)."""
    entry: MockConfigEntry = request.getfixturevalue("setup_supersim")
    sim: SuperSimSimulator = request.getfixturevalue("supersim_sim")
    return SuperSimProvider(
        name="supersim",
        entry=entry,
        sim=sim,
        hub_slug=slugify(entry.title),
        addresses={s.unique_name: s.sid for s in sim.sims.values()},
    )
