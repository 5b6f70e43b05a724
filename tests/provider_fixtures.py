"""One loaded account per provider, with the same three devices, and hands to drive it.

Imported by tests/test_providers.py. `provider` is parametrised over emnify and Eseye; only the
simulator the parameter needs is started (request.getfixturevalue).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, CONF_WEBHOOK_ID
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.iot_sms.const import CONF_BASE_URL, CONF_PROVIDER, DOMAIN
from tests.conftest import WEBHOOK_ID
from tests.provider_base import Provider
from tests.provider_onence import onence_provider, setup_onence
from tests.provider_supersim import setup_supersim, supersim_provider

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from simulator.emnify import EmnifySimulator
    from simulator.eseye import EseyeSimulator

# Star-imported by the test module: only the fixtures.
__all__ = [
    "onence_provider",
    "provider",
    "setup_eseye",
    "setup_onence",
    "setup_supersim",
    "supersim_provider",
]

# Name -> (MSISDN, behaviour): what the user typed into "Add SIM", and how the SIM behaves.
ESEYE_SIMS = {
    "Pump station": ("447700900001", "online"),
    "Remote gateway": ("447700900002", "offline"),
    "Tracker": ("447700900003", "echo"),
}
# A number that belongs to no SIM of the account.
STRANGER_MSISDN = "447700900099"
# emnify's SMS status id for "canceled".
EMNIFY_CANCELED = 7


class EmnifyProvider(Provider):
    manufacturer = "emnify"
    send_path = "/sms"

    def msisdn(self, name: str) -> str:
        return self.sim.endpoints[self.addresses[name]].msisdn

    async def stranger_sends(self, text: str) -> str:
        # Added after setup: the integration has never heard of this endpoint.
        endpoint = self.sim.add_endpoint("Stranger", "online")
        await self.sim.send_mo(endpoint.id, text)
        return endpoint.msisdn

    def deliver(self, message_id: str) -> None:
        self.sim.set_sms_status(int(message_id), 4)

    def fail(self, message_id: str) -> None:
        self.sim.set_sms_status(int(message_id), 5)

    def reached(self, text: str) -> list[str]:
        return [
            str(sms.id)
            for sms in sorted(self.sim.sms.values(), key=lambda s: s.id)
            if sms.sms_type == 1 and sms.payload.startswith(text)
        ]

    def is_canceled_at_provider(self, message_id: str) -> bool:
        return self.sim.sms[int(message_id)].status_id == EMNIFY_CANCELED


class EseyeProvider(Provider):
    manufacturer = "Eseye"
    send_path = "/mtsmsapi/"

    def msisdn(self, name: str) -> str:
        return self.addresses[name]

    async def stranger_sends(self, text: str) -> str:
        await self.sim.send_mo(STRANGER_MSISDN, text)
        return STRANGER_MSISDN

    def deliver(self, message_id: str) -> None:
        self.sim.set_status(message_id, "delivered")

    def fail(self, message_id: str) -> None:
        self.sim.set_status(message_id, "blocked")

    def reached(self, text: str) -> list[str]:
        return [m.message_id for m in self.sim.messages.values() if m.text.startswith(text)]

    def is_canceled_at_provider(self, message_id: str) -> bool:
        return self.sim.messages[message_id].status == "cancelled"


@pytest.fixture
async def setup_eseye(
    hass: HomeAssistant, eseye_sim: EseyeSimulator, hass_url: str
) -> MockConfigEntry:
    """An Eseye account on the simulator with three SIMs added as subentries, loaded."""
    callback_url = f"{hass_url}/api/iot_sms/{WEBHOOK_ID}"
    for msisdn, behavior in ESEYE_SIMS.values():
        eseye_sim.add_sim(msisdn, behavior)
    # What the user configures in Infinity Classic as the account's MO POST URL.
    eseye_sim.mo_post_url = callback_url
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Eseye ({eseye_sim.username})",
        unique_id=eseye_sim.username,
        data={
            CONF_PROVIDER: "eseye",
            CONF_USERNAME: eseye_sim.username,
            CONF_PASSWORD: eseye_sim.password,
            CONF_BASE_URL: eseye_sim.base_url,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
        },
        subentries_data=[
            {
                "data": {"msisdn": msisdn},
                "subentry_type": "sim",
                "title": name,
                "unique_id": msisdn,
            }
            for name, (msisdn, _behavior) in ESEYE_SIMS.items()
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.fixture(params=["emnify", "eseye", "1nce", "supersim"])
def provider(request: pytest.FixtureRequest) -> Provider:
    """A loaded account of each provider with "Pump station", "Remote gateway" and "Tracker".

    Synchronous on purpose: async fixtures can be requested by name only from outside the loop.
    """
    if request.param == "emnify":
        entry: MockConfigEntry = request.getfixturevalue("setup_emnify")
        sim: EmnifySimulator = request.getfixturevalue("emnify_sim")
        endpoints: dict[str, int] = request.getfixturevalue("emnify_endpoints")
        return EmnifyProvider(
            name="emnify",
            entry=entry,
            sim=sim,
            hub_slug="demo_fleet",
            addresses={
                "Pump station": endpoints["online"],
                "Remote gateway": endpoints["offline"],
                "Tracker": endpoints["echo"],
            },
        )
    if request.param == "1nce":
        return request.getfixturevalue("onence_provider")  # type: ignore[no-any-return]
    if request.param == "supersim":
        return request.getfixturevalue("supersim_provider")  # type: ignore[no-any-return]
    entry = request.getfixturevalue("setup_eseye")
    return EseyeProvider(
        name="eseye",
        entry=entry,
        sim=request.getfixturevalue("eseye_sim"),
        hub_slug="eseye_demo",
        addresses={name: msisdn for name, (msisdn, _b) in ESEYE_SIMS.items()},
    )
