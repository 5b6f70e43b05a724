"""Super SIM simulator fixtures (imported by tests/conftest.py): real HTTP on 127.0.0.1."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestServer

from simulator.supersim import KORE, TWILIO, SuperSimSimulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["kore_sim", "supersim_sim"]


async def _serve(vendor: str) -> AsyncIterator[SuperSimSimulator]:
    sim = SuperSimSimulator(vendor)
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    sim.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield sim
    finally:
        await sim.close()
        await server.close()


@pytest.fixture
async def supersim_sim(socket_enabled: None) -> AsyncIterator[SuperSimSimulator]:
    """Twilio's Super SIM API on 127.0.0.1: Basic auth with `sim.account_sid`/`sim.auth_token`.

    No Fleets or SIMs yet; tests add their own (`add_fleet`, `add_sim`).
    """
    async for sim in _serve(TWILIO):
        yield sim


@pytest.fixture
async def kore_sim(socket_enabled: None) -> AsyncIterator[SuperSimSimulator]:
    """KORE's Super SIM API and token endpoint (`sim.token_url`) on 127.0.0.1.

    Credentials `sim.client_id`/`sim.client_secret`; webhooks signed with `sim.webhook_secret`.
    """
    async for sim in _serve(KORE):
        yield sim
