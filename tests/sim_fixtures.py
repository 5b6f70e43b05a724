"""Simulator fixtures (imported by tests/conftest.py): real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from simulator.emnify import EmnifySimulator

__all__ = ["emnify_sim"]


@pytest.fixture
async def emnify_sim(socket_enabled: None) -> AsyncIterator[EmnifySimulator]:
    """An emnify simulator served on 127.0.0.1; `sim.base_url` points at it."""
    sim = EmnifySimulator()
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    sim.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield sim
    finally:
        await sim.close()
        await server.close()
