"""1NCE simulator fixture (imported by tests/conftest.py): real HTTP on 127.0.0.1."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestServer

from simulator.onence import OnenceSimulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["onence_sim"]


@pytest.fixture
async def onence_sim(socket_enabled: None) -> AsyncIterator[OnenceSimulator]:
    """A 1NCE simulator served on 127.0.0.1.

    `sim.base_url` is the server's origin; clients are configured with `sim.api_url`
    (`<base_url>/management-api`, like https://api.1nce.com/management-api). Demo credentials:
    "demo-api-user" / "demo-api-secret"; v1 and v2; delivery_delay 0.2 s. No SIMs are added;
    tests add their own with `sim.add_sim`.
    """
    sim = OnenceSimulator()
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    sim.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield sim
    finally:
        await sim.close()
        await server.close()
