"""Benchmarks: poll cost, MO throughput, broadcast and per-provider request counts, as JSON.

Run through `scripts/bench --json bench.json`. Home Assistant runs in-process (the test
harness of pytest-homeassistant-custom-component, outside pytest) and is served on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import jwt  # noqa: E402
from aiohttp import web  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from homeassistant import loader  # noqa: E402
from homeassistant.components import webhook  # noqa: E402
from homeassistant.core import HomeAssistant  # noqa: E402
from homeassistant.core_config import async_process_ha_core_config  # noqa: E402
from homeassistant.helpers import device_registry as dr  # noqa: E402
from homeassistant.helpers import entity_registry as er  # noqa: E402
from homeassistant.setup import async_setup_component  # noqa: E402
from homeassistant.util import dt as dt_util  # noqa: E402
from pytest_homeassistant_custom_component.common import (  # noqa: E402
    MockConfigEntry,
    async_test_home_assistant,
)

import custom_components.iot_sms  # noqa: E402, F401
from custom_components.iot_sms.api.emnify import REQUEST_LIMIT, EmnifyClient  # noqa: E402
from custom_components.iot_sms.api.ratelimit import SlidingWindowLimiter  # noqa: E402
from custom_components.iot_sms.const import DOMAIN, EVENT_MESSAGE_RECEIVED  # noqa: E402
from scripts.bench_providers import bench_providers  # noqa: E402
from simulator.emnify import EmnifySimulator  # noqa: E402

WEBHOOK_ID = "be" * 32
SECRET = "bench-secret-0123456789abcdef0123456789"


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def _rss_mb() -> float:
    """Resident memory of this process (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _hass_with_entry(
    sim: EmnifySimulator, hass: HomeAssistant, figures: dict[str, Any]
) -> tuple[MockConfigEntry, str, TestServer]:
    hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
    for component in ("http", "webhook", "repairs", "notify", "event", "sensor", DOMAIN):
        assert await async_setup_component(hass, component, {})
    server = await _serve(hass.http.app)
    url = str(server.make_url("/")).rstrip("/")
    await async_process_ha_core_config(hass, {"internal_url": url})
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=sim.org_name,
        unique_id=str(sim.org_id),
        data={
            "provider": "emnify",
            "api_token": sim.application_token,
            "base_url": sim.base_url,
            "webhook_id": WEBHOOK_ID,
            "callback_secret": SECRET,
        },
    )
    entry.add_to_hass(hass)
    rss_before = _rss_mb()
    start = time.perf_counter()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    elapsed = time.perf_counter() - start
    entities = len(er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id))
    assert entities == 4 * len(sim.endpoints) + 2, entities
    figures["setup_endpoints"] = len(sim.endpoints)
    figures["setup_1000_endpoints_s"] = round(elapsed * 1000 / len(sim.endpoints), 2)
    figures["setup_1000_endpoints_target_s"] = 15
    figures["rss_mb_per_1000_endpoints"] = round(
        (_rss_mb() - rss_before) * 1000 / len(sim.endpoints), 1
    )
    return entry, url, server


async def bench_broadcast(
    hass: HomeAssistant, sim: EmnifySimulator, entry: MockConfigEntry, url: str
) -> dict[str, Any]:
    """One send_sms to 1,000 devices against 50 ms per request, at emnify's real limit.

    The sequential figure sends the same 1,000 one action call at a time, as a user without a
    fleet action would. Each run starts with a fresh 5-minute window (client and simulator):
    together they are 2,000 sends, more than emnify allows in one window. Devices deliver and
    report at once, so neither run waits behind polls of the other's messages.
    """
    sim.register_callback(f"{url}/api/iot_sms/{WEBHOOK_ID}", SECRET)
    sim.delivery_delay = 0.05
    for endpoint in sim.endpoints.values():
        endpoint.behavior = "online"
    for sms in list(sim.sms.values()):  # the poll benchmark's messages: settled by push
        sim.set_sms_status(sms.id, 4)
    await sim.wait_idle()
    await hass.async_block_till_done()
    registry = dr.async_get(hass)
    devices = [
        d.id
        for d in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if d.name and d.name.startswith("Unit ")
    ][:1000]
    client: EmnifyClient = entry.runtime_data.client  # type: ignore[assignment]

    def fresh_window() -> None:
        client.limiter = SlidingWindowLimiter(*REQUEST_LIMIT)
        sim.faults.window_stamps.clear()

    sim.faults.window_limit = (2000, 300.0)
    sim.faults.latency = 0.05
    rejected_before = sim.faults.window_rejections
    fresh_window()
    start = time.perf_counter()
    response = await hass.services.async_call(
        DOMAIN,
        "send_sms",
        {"device_id": devices, "message": "FW UPDATE"},
        blocking=True,
        return_response=True,
    )
    concurrent = time.perf_counter() - start
    assert response is not None
    sent = sum(1 for m in response["messages"] if m["message_id"])  # type: ignore[union-attr]
    fresh_window()
    start = time.perf_counter()
    for device in devices:
        await hass.services.async_call(
            DOMAIN, "send_sms", {"device_id": device, "message": "FW UPDATE"}, blocking=True
        )
    sequential = time.perf_counter() - start
    sim.faults.latency = 0.0
    return {
        "broadcast_devices": len(devices),
        "broadcast_sent": sent,
        "broadcast_added_latency_s": 0.05,
        "broadcast_1000_wall_s": round(concurrent, 2),
        "broadcast_1000_sequential_wall_s": round(sequential, 2),
        "broadcast_speedup": round(sequential / concurrent, 1),
        "broadcast_speedup_target": 10,
        "broadcast_429s": sim.faults.window_rejections - rejected_before,
    }


async def bench_poll(sim: EmnifySimulator, entry: MockConfigEntry) -> dict[str, Any]:
    """1,000 endpoints, 20 pending on 10: requests of one cycle; CPU of a 1,000-message cycle."""
    endpoints = [e.id for e in sim.endpoints.values() if e.behavior == "offline"]
    results: dict[str, Any] = {"poll_endpoints": len(sim.endpoints)}
    if True:
        tracker = entry.runtime_data.tracker
        client: EmnifyClient = entry.runtime_data.client  # type: ignore[assignment]
        parts = client.plan_message("STATUS?")

        async def track(endpoint_id: int, count: int) -> None:
            for _ in range(count):
                part_id = await client.async_send_part(str(endpoint_id), parts[0], _options())
                tracker.async_track(str(endpoint_id), [part_id], None)

        for endpoint_id in endpoints[:10]:
            await track(endpoint_id, 2)
        before = len(sim.requests)
        await tracker.async_poll(dt_util.utcnow() + timedelta(seconds=20))
        results["poll_requests_per_cycle"] = len(sim.requests) - before
        results["poll_pending_messages"] = tracker.pending_count

        for endpoint_id in endpoints[10:100]:
            await track(endpoint_id, 11)
        results["poll_cycle_tracked_messages"] = tracker.pending_count
        before = len(sim.requests)
        cpu, wall = time.process_time(), time.perf_counter()
        await tracker.async_poll(dt_util.utcnow() + timedelta(days=1, seconds=-1))
        results["poll_cycle_cpu_ms"] = round((time.process_time() - cpu) * 1000, 1)
        results["poll_cycle_wall_ms"] = round((time.perf_counter() - wall) * 1000, 1)
        results["poll_cycle_requests"] = len(sim.requests) - before
        results["note_poll_cycle"] = (
            "CPU time includes the in-process simulator answering the requests"
        )
    return results


def _options() -> Any:
    from custom_components.iot_sms.api.models import SendOptions

    return SendOptions()


async def _post_all(
    session: aiohttp.ClientSession,
    url: str,
    bodies: list[dict[str, Any]],
    headers: dict[str, str],
    concurrency: int,
) -> None:
    queue = iter(bodies)

    async def worker() -> None:
        for body in queue:
            async with session.post(url, json=body, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _timed_load(
    hass: HomeAssistant,
    event_type: str,
    url: str,
    bodies: list[dict[str, Any]],
    headers: dict[str, str],
    concurrency: int,
) -> float:
    seen = 0
    done = asyncio.Event()

    def count(_event: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == len(bodies):
            done.set()

    unsub = hass.bus.async_listen(event_type, count)
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        await _post_all(session, url, bodies, headers, concurrency)
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - start
    unsub()
    return elapsed


async def bench_mo(
    hass: HomeAssistant,
    sim: EmnifySimulator,
    url: str,
    messages: int,
    concurrency: int,
    rounds: int,
) -> dict[str, Any]:
    """MO callbacks over HTTP until the bus event fires; the same load on a bare webhook."""
    endpoints = [e for e in sim.endpoints.values() if e.behavior == "online"]
    if True:
        token = jwt.encode({"iat": int(time.time())}, SECRET, algorithm="HS384")
        headers = {"Authorization": f"Bearer {token}"}
        ours: list[float] = []
        bare: list[float] = []
        next_id = 1
        for _ in range(rounds):
            bodies = []
            for _n in range(messages):
                endpoint = endpoints[next_id % len(endpoints)]
                bodies.append(
                    {
                        "id": next_id,
                        "pid": 0,
                        "dcs": 0,
                        "source_address": endpoint.msisdn,
                        "dest_address": "12345",
                        "endpoint": {"id": endpoint.id, "name": endpoint.name},
                        "organisation": {"id": sim.org_id},
                        "multi_part_info": {"partno": 1, "total": 1, "identifier": next_id},
                        "submit_date": "2026-11-23 10:00:00",
                        "payload": f"TEMP {next_id}",
                    }
                )
                next_id += 1
            ours.append(
                await _timed_load(
                    hass,
                    EVENT_MESSAGE_RECEIVED,
                    f"{url}/api/iot_sms/{WEBHOOK_ID}",
                    bodies,
                    headers,
                    concurrency,
                )
            )
            bare.append(
                await _timed_load(
                    hass,
                    "bench_bare_event",
                    f"{url}/api/webhook/{'bare' * 16}",
                    bodies,
                    headers,
                    concurrency,
                )
            )
    best_ours, best_bare = min(ours), min(bare)
    return {
        "mo_messages": messages,
        "mo_concurrency": concurrency,
        "mo_rounds": rounds,
        "mo_seconds": round(best_ours, 3),
        "mo_per_second": round(messages / best_ours, 1),
        "bare_webhook_per_second": round(messages / best_bare, 1),
        "mo_cost_ratio": round(best_ours / best_bare, 3),
        "mo_cost_ratio_target": 1.5,
    }


async def main() -> None:
    """Run every benchmark and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    sim = EmnifySimulator(delivery_delay=3600)
    sim_server = await _serve(sim.app)
    sim.base_url = str(sim_server.make_url("")).rstrip("/")
    for n in range(1000):
        sim.add_endpoint(f"Unit {n}", "offline")
    for n in range(3):
        sim.add_endpoint(f"Tracker {n}", "online")
    async with async_test_home_assistant() as hass:

        async def bare_handler(
            hass: HomeAssistant, webhook_id: str, request: web.Request
        ) -> web.Response:
            hass.bus.async_fire("bench_bare_event", await request.json())
            return web.Response(text="OK")

        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
        assert await async_setup_component(hass, "webhook", {})
        webhook.async_register(hass, "bench", "bench", "bare" * 16, bare_handler)
        entry, url, server = await _hass_with_entry(sim, hass, figures)
        figures |= await bench_mo(hass, sim, url, args.messages, args.concurrency, args.rounds)
        figures |= await bench_poll(sim, entry)
        figures |= await bench_broadcast(hass, sim, entry, url)
        await hass.config_entries.async_unload(entry.entry_id)
        await server.close()
        await hass.async_stop(force=True)
    await sim.close()
    await sim_server.close()
    figures |= await bench_providers()
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
