"""Run the emnify (and optionally Eseye) simulator as local HTTP servers with demo data.

    python -m simulator --port 8300 [--eseye-port 8301] [--onence-port 8302]
                        [--supersim-port 8303] [--host 127.0.0.1]
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
from collections.abc import Awaitable, Callable

from aiohttp import web

from simulator.emnify import EmnifySimulator
from simulator.eseye import EseyeSimulator
from simulator.onence import OnenceSimulator
from simulator.supersim import SuperSimSimulator

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
ONENCE_USERNAME = "demo-api-user"
ONENCE_PASSWORD = "demo-api-secret"
SUPERSIM_ACCOUNT_SID = "AC" + "de" * 16
SUPERSIM_AUTH_TOKEN = "demo-auth-token-" + "0" * 16


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
    parser.add_argument("--onence-port", type=int, help="also serve the 1NCE API on this port")
    parser.add_argument(
        "--onence-forwarder-url", help="1NCE SMS Forwarder URL (replies POST, reports PATCH)"
    )
    parser.add_argument(
        "--supersim-port", type=int, help="also serve the Super SIM (Twilio) API on this port"
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
    closers: list[Callable[[], Awaitable[None]]] = []
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

        if args.onence_port:
            onence = OnenceSimulator(
                ONENCE_USERNAME, ONENCE_PASSWORD, delivery_delay=args.delivery_delay
            )
            onence._next_sms_id = int(time.time()) * 100  # noqa: SLF001 - as for emnify above
            onence.base_url = f"http://{args.host}:{args.onence_port}"
            for name, behavior in DEMO_ENDPOINTS:
                onence.add_sim(name, behavior)
            onence.forwarder_url = args.onence_forwarder_url
            closers.append(onence.close)
            runners.append(await start_site(onence.app, args.host, args.onence_port))
            _LOGGER.info(
                "1NCE simulator listening on %s (username %s, password %s)",
                onence.api_url,
                ONENCE_USERNAME,
                ONENCE_PASSWORD,
            )

        if args.supersim_port:
            supersim = SuperSimSimulator(
                account_sid=SUPERSIM_ACCOUNT_SID,
                auth_token=SUPERSIM_AUTH_TOKEN,
                delivery_delay=args.delivery_delay,
            )
            supersim.base_url = f"http://{args.host}:{args.supersim_port}"
            fleet = supersim.add_fleet("Demo fleet")
            for name, behavior in DEMO_ENDPOINTS:
                supersim.add_sim(name, behavior, fleet=fleet)
            closers.append(supersim.close)
            runners.append(await start_site(supersim.app, args.host, args.supersim_port))
            _LOGGER.info(
                "Super SIM simulator listening on %s (Account SID %s, Auth Token %s)",
                supersim.base_url,
                SUPERSIM_ACCOUNT_SID,
                SUPERSIM_AUTH_TOKEN,
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
        for close in closers:
            await close()
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
