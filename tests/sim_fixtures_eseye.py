"""Eseye simulator fixture (imported by tests/conftest.py): real HTTP on 127.0.0.1."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestServer

from simulator.eseye import EseyeSimulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["eseye_sim"]


@pytest.fixture
async def eseye_sim(socket_enabled: None) -> AsyncIterator[EseyeSimulator]:
    """An Eseye simulator served on 127.0.0.1; `sim.base_url` points at it.

    Demo account: username "demo", password "demo-password", API MSISDN 447700900000,
    delivery_delay 0.2 s. No SIMs are added; tests add their own with `sim.add_sim`.
    """
    sim = EseyeSimulator()
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    sim.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield sim
    finally:
        await sim.close()
        await server.close()
