"""Run the emnify (and optionally Eseye) simulator as local HTTP servers with demo data.

    python -m simulator --port 8300 [--eseye-port 8301] [--host 127.0.0.1]
                        [--callback-url URL] [--callback-secret S] [--delivery-delay 3]

Used by scripts/develop. Stops cleanly on SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time

from aiohttp import web

from simulator.emnify import EmnifySimulator
from simulator.eseye import EseyeSimulator

_LOGGER = logging.getLogger("simulator")

DEMO_TOKEN = "demo-application-token"  # the documented demo credential
DEMO_ENDPOINTS = (
    ("Pump station", "online"),
    ("Remote gateway", "offline"),
    ("Tracker", "echo"),
)
ESEYE_USERNAME = "demo"
ESEYE_PASSWORD = "demo-password"
ESEYE_API_MSISDN = "447700900000"
DEMO_ESEYE_SIMS = (
    ("447700900001", "online"),
    ("447700900002", "offline"),
    ("447700900003", "echo"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Local emnify- and Eseye-compatible SMS API simulators with demo devices.",
    )
    parser.add_argument("--port", type=int, default=8300, help="emnify API port (default 8300)")
    parser.add_argument("--eseye-port", type=int, help="also serve the Eseye SMS API on this port")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument(
        "--callback-url",
        help="emnify callback URL (MO POST, delivery report PATCH) for service profile 1",
    )
    parser.add_argument("--callback-secret", help="HS384 secret that signs emnify callbacks")
    parser.add_argument(
        "--eseye-mo-url", help="Eseye account MO POST URL (where replies are posted)"
    )
    parser.add_argument(
        "--delivery-delay",
        type=float,
        default=3.0,
        help="seconds from submit to delivered for online devices (default 3)",
    )
    parser.add_argument("--token", default=DEMO_TOKEN, help="emnify application token accepted")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG")
    return parser.parse_args(argv)


async def start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port; return the runner to clean up."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run(args: argparse.Namespace) -> None:
    """Start the simulators, wait for SIGINT/SIGTERM, shut down."""
    runners: list[web.AppRunner] = []
    emnify = EmnifySimulator(
        application_token=args.token,
        org_id=4711,
        org_name="Demo Fleet",
        delivery_delay=args.delivery_delay,
    )
    # SMS ids must not repeat across runs: Home Assistant keeps the ids it has seen (to drop
    # duplicate callbacks) and tracks messages by id across restarts, while every run of the
    # simulator starts afresh. emnify's ids are unique for good, so continue from the clock.
    emnify._next_sms_id = int(time.time()) * 100  # noqa: SLF001 - no public seed parameter yet
    eseye: EseyeSimulator | None = None
    try:
        emnify.base_url = f"http://{args.host}:{args.port}"
        for name, behavior in DEMO_ENDPOINTS:
            endpoint = emnify.add_endpoint(name, behavior=behavior, service_profile_id=1)
            _LOGGER.info("emnify endpoint %s %r (%s)", endpoint.id, name, behavior)
        if args.callback_url:
            emnify.register_callback(args.callback_url, args.callback_secret)
            _LOGGER.info(
                "emnify callback for service profile 1: %s (%s)",
                args.callback_url,
                "signed" if args.callback_secret else "unsigned",
            )
        runners.append(await start_site(emnify.app, args.host, args.port))
        _LOGGER.info("emnify simulator listening on %s", emnify.base_url)

        if args.eseye_port:
            eseye = EseyeSimulator(
                username=ESEYE_USERNAME,
                password=ESEYE_PASSWORD,
                api_msisdn=ESEYE_API_MSISDN,
                delivery_delay=args.delivery_delay,
            )
            eseye.base_url = f"http://{args.host}:{args.eseye_port}"
            for msisdn, behavior in DEMO_ESEYE_SIMS:
                eseye.add_sim(msisdn, behavior=behavior)
                _LOGGER.info("Eseye SIM %s (%s)", msisdn, behavior)
            if args.eseye_mo_url:
                eseye.mo_post_url = args.eseye_mo_url
            runners.append(await start_site(eseye.app, args.host, args.eseye_port))
            _LOGGER.info(
                "Eseye simulator listening on http://%s:%s (username %s, password %s)",
                args.host,
                args.eseye_port,
                ESEYE_USERNAME,
                ESEYE_PASSWORD,
            )

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        _LOGGER.info("Stopping simulator")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        if eseye is not None:
            await eseye.close()
        await emnify.close()
        _LOGGER.info("Simulator stopped")


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m simulator`."""
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
