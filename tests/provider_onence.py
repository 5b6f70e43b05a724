"""A loaded 1NCE account with the three demo devices, and the hands that drive its simulator.

For the provider-parametrised suite (tests/provider_fixtures.py, param "1nce"): `onence_provider`
is what the `provider` fixture returns for it. The SIMs are discovered from the account, so
`addresses` maps each device name to its ICCID (the endpoint id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, CONF_WEBHOOK_ID
from homeassistant.util import slugify
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.iot_sms.const import CONF_BASE_URL, CONF_PROVIDER, DOMAIN, PROVIDER_1NCE
from tests.conftest import WEBHOOK_ID
from tests.provider_base import Provider

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from simulator.onence import OnenceSimulator

# Star-imported by test modules: only the fixtures.
__all__ = ["onence_provider", "setup_onence"]

# Name -> behaviour of the SIMs on the account (their labels in the 1NCE Portal).
ONENCE_SIMS = {
    "Pump station": "online",
    "Remote gateway": "offline",
    "Tracker": "echo",
}
# 1NCE's status ids (reference §4): DELIVERED, FAILED.
DELIVERED = 4
FAILED = 5
MT = 1


class OnenceProvider(Provider):
    """The 1NCE simulator: devices are SIMs keyed by ICCID, SMS by 1NCE's numeric id."""

    send_path = "/sms"
    manufacturer = "1NCE"

    def msisdn(self, name: str) -> str:
        return self.sim.sims[self.addresses[name]].msisdn

    async def stranger_sends(self, text: str) -> str:
        # Added after setup: the integration has never heard of this SIM.
        stranger = self.sim.add_sim("Stranger", "online")
        await self.sim.send_mo(stranger.iccid, text)
        return stranger.msisdn

    def deliver(self, message_id: str) -> None:
        self.sim.set_sms_status(int(message_id), DELIVERED)

    def fail(self, message_id: str) -> None:
        self.sim.set_sms_status(int(message_id), FAILED)

    def reached(self, text: str) -> list[str]:
        return [
            str(sms.id)
            for sms in sorted(self.sim.sms.values(), key=lambda s: s.id)
            if sms.sms_type == MT and sms.payload.startswith(text)
        ]

    def is_canceled_at_provider(self, message_id: str) -> bool:
        return self.sim.sms[int(message_id)].canceled


@pytest.fixture
async def setup_onence(
    hass: HomeAssistant, onence_sim: OnenceSimulator, hass_url: str
) -> MockConfigEntry:
    """A 1NCE account on the simulator with three SIMs, its forwarder pointing at HA, loaded."""
    for label, behavior in ONENCE_SIMS.items():
        onence_sim.add_sim(label, behavior)
    # What the user sets as the SMS Forwarder URL in the 1NCE Portal (POST and PATCH).
    onence_sim.forwarder_url = f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"1NCE ({onence_sim.username})",
        unique_id=onence_sim.username,
        data={
            CONF_PROVIDER: PROVIDER_1NCE,
            CONF_USERNAME: onence_sim.username,
            CONF_PASSWORD: onence_sim.password,
            CONF_BASE_URL: onence_sim.api_url,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture
def onence_provider(request: pytest.FixtureRequest) -> OnenceProvider:
    """The loaded 1NCE account as a Provider (synchronous, like the `provider` fixture)."""
    entry: MockConfigEntry = request.getfixturevalue("setup_onence")
    sim: OnenceSimulator = request.getfixturevalue("onence_sim")
    return OnenceProvider(
        name=PROVIDER_1NCE,
        entry=entry,
        sim=sim,
        hub_slug=slugify(entry.title),
        addresses={card.label: card.iccid for card in sim.sims.values()},
    )
