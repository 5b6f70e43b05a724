"""Per-provider benchmark figures: provider requests per send, and per poll cycle.

Imported by scripts/bench.py. Each provider gets a fresh Home Assistant with one account of 20
SIMs on its simulator; the figures count the requests the simulator received, so they hold
for the wire, not for the integration's own idea of what it sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from homeassistant import loader
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import frame
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.iot_sms.const import DOMAIN
from simulator.emnify import EmnifySimulator
from simulator.eseye import EseyeSimulator
from simulator.onence import OnenceSimulator
from simulator.supersim import SuperSimSimulator

SIMS = 20
PENDING_ENDPOINTS = 10
PENDING_PER_ENDPOINT = 2
WEBHOOK_ID = "bf" * 32


@dataclass
class _Account:
    """A simulator with SIMs and the config entry data (and subentries) that reach it."""

    sim: Any
    app: web.Application
    entry: Callable[[str], MockConfigEntry]


def _emnify() -> _Account:
    sim = EmnifySimulator(delivery_delay=3600)
    for n in range(SIMS):
        sim.add_endpoint(f"Unit {n}", "offline")

    def entry(base: str) -> MockConfigEntry:
        sim.base_url = base
        return MockConfigEntry(
            domain=DOMAIN,
            title=sim.org_name,
            unique_id=str(sim.org_id),
            data={
                "provider": "emnify",
                "api_token": sim.application_token,
                "base_url": base,
                "webhook_id": WEBHOOK_ID,
            },
        )

    return _Account(sim, sim.app, entry)


def _eseye() -> _Account:
    sim = EseyeSimulator(delivery_delay=3600)
    numbers = [f"4477009{n:05d}" for n in range(SIMS)]
    for msisdn in numbers:
        sim.add_sim(msisdn, "offline")

    def entry(base: str) -> MockConfigEntry:
        sim.base_url = base
        return MockConfigEntry(
            domain=DOMAIN,
            title=f"Eseye ({sim.username})",
            unique_id=sim.username,
            data={
                "provider": "eseye",
                "username": sim.username,
                "password": sim.password,
                "base_url": base,
                "webhook_id": WEBHOOK_ID,
            },
            subentries_data=[
                {
                    "data": {"msisdn": msisdn},
                    "subentry_type": "sim",
                    "title": f"Unit {n}",
                    "unique_id": msisdn,
                }
                for n, msisdn in enumerate(numbers)
            ],
        )

    return _Account(sim, sim.app, entry)


def _onence() -> _Account:
    sim = OnenceSimulator(delivery_delay=3600)
    for n in range(SIMS):
        sim.add_sim(f"Unit {n}", "offline")

    def entry(base: str) -> MockConfigEntry:
        sim.base_url = base
        return MockConfigEntry(
            domain=DOMAIN,
            title=f"1NCE ({sim.username})",
            unique_id=sim.username,
            data={
                "provider": "1nce",
                "username": sim.username,
                "password": sim.password,
                "base_url": sim.api_url,
                "webhook_id": WEBHOOK_ID,
            },
        )

    return _Account(sim, sim.app, entry)


def _supersim() -> _Account:
    sim = SuperSimSimulator(delivery_delay=3600)
    fleet = sim.add_fleet("Bench fleet")
    for n in range(SIMS):
        sim.add_sim(f"Unit {n}", "offline", fleet=fleet)

    def entry(base: str) -> MockConfigEntry:
        sim.base_url = base
        return MockConfigEntry(
            domain=DOMAIN,
            title=f"Super SIM ({sim.account_sid})",
            unique_id=sim.account_sid,
            data={
                "provider": "supersim",
                "vendor": "twilio",
                "account_sid": sim.account_sid,
                "auth_token": sim.auth_token,
                "base_url": base,
                "webhook_id": WEBHOOK_ID,
            },
        )

    return _Account(sim, sim.app, entry)


ACCOUNTS: dict[str, Callable[[], _Account]] = {
    "emnify": _emnify,
    "eseye": _eseye,
    "1nce": _onence,
    "supersim": _supersim,
}


async def _send(hass: HomeAssistant, device_id: str) -> None:
    await hass.services.async_call(
        DOMAIN, "send_sms", {"device_id": device_id, "message": "STATUS?"}, blocking=True
    )


async def _bench_one(make: Callable[[], _Account]) -> dict[str, Any]:
    account = make()
    server = TestServer(account.app, host="127.0.0.1")
    await server.start_server()
    try:
        async with async_test_home_assistant() as hass:
            # The client session's resolver reports through the frame helper (as in tests).
            frame.async_setup(hass)
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            for component in ("http", "webhook", "repairs", "notify", "event", "sensor", DOMAIN):
                assert await async_setup_component(hass, component, {})
            entry = account.entry(str(server.make_url("")).rstrip("/"))
            entry.add_to_hass(hass)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            devices = sorted(
                (
                    d
                    for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
                    if d.name and d.name.startswith("Unit ")
                ),
                key=lambda d: d.name or "",
            )
            requests = account.sim.requests
            await _send(hass, devices[-1].id)  # warm-up: token, API version
            before = len(requests)
            sends = 10
            for device in devices[:sends]:
                await _send(hass, device.id)
            per_send = (len(requests) - before) / sends
            for device in devices[:PENDING_ENDPOINTS]:
                for _ in range(PENDING_PER_ENDPOINT - 1):
                    await _send(hass, device.id)
            tracker = entry.runtime_data.tracker
            pending = tracker.pending_count
            endpoints = len({m.endpoint_id for m in tracker.pending})
            before = len(requests)
            await tracker.async_poll(dt_util.utcnow() + timedelta(seconds=20))
            polled = len(requests) - before
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_stop(force=True)
    finally:
        await account.sim.close()
        await server.close()
    return {
        "requests_per_send": round(per_send, 2),
        "poll_requests_per_cycle": polled,
        "poll_pending_messages": pending,
        "poll_endpoints_with_pending": endpoints,
    }


async def bench_providers() -> dict[str, Any]:
    """The same load on every provider: requests per one-part send and per poll cycle."""
    return {f"provider_{name}": await _bench_one(make) for name, make in ACCOUNTS.items()}
