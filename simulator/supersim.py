"""Super SIM SMS Commands simulator (Twilio and KORE), see ``reference/supersim-sms-api.md``.

One app, two vendors (``vendor="twilio"`` or ``"kore"``), the resource model of §8:

* Twilio: HTTP Basic ``AccountSid:AuthToken`` on every route, 401 with the legacy error body
  (``{"code": 20003, "message": "Authenticate", ...}``). KORE: ``POST <token_path>`` (form,
  ``grant_type=client_credentials``) issues Bearer tokens with ``expires_in`` (a number, or a
  numeric string with ``expires_in_as_string``) that expire after ``faults.token_ttl``; bad
  credentials answer 401 ``{"error": "invalid_client", ...}`` (``token_error`` switches it).
* ``GET /v1/Sims`` (Status, Fleet, Iccid filters; PageSize/PageToken; ``meta.next_page_url``),
  ``GET /v1/Sims/{Sid}``, ``GET /v1/Fleets`` and ``GET|POST /v1/Fleets/{Sid}`` (form update of
  ``SmsCommandsUrl``/``SmsCommandsMethod``/``UniqueName``).
* ``POST /v1/SmsCommands`` (form: Sim, Payload, CallbackUrl, CallbackMethod) -> 201; Payload over
  160 characters, an unknown Sim or a Fleet without SMS Commands -> 400. ``GET /v1/SmsCommands``
  (Sim, Status, Direction filters, newest first) and ``GET /v1/SmsCommands/{Sid}``. There is no
  DELETE (405), as at the real API.
* States: queued -> sent -> delivered (online, echo) | failed (failing); offline SIMs stay sent
  until the 24 h attempt window (``validity``) ends, then failed. echo SIMs answer every
  delivered command with ``ECHO: <payload>`` as MO.
* Status callbacks to each command's CallbackUrl for the states in ``callback_statuses``, and
  MO webhooks to the Fleet's ``sms_commands_url``; signed with ``X-Twilio-Signature`` (Twilio)
  or ``kore-signature`` + ``kore-idempotency-token`` (KORE), redelivered once on a non-2xx.

Inferred behaviour, all switchable (documented nowhere): the callback parameters
(``callback_content`` "full" PascalCase fields or "sid" only, ``callback_sid_field``), their
encoding (``callback_encoding``: the command's CallbackMethod, or "form" / "query" / "json"),
which states call back, duplicate deliveries, and the error body format (``error_format``
"legacy" or "rfc9457").
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web
from yarl import URL

from .common import (
    BackgroundWork,
    CallbackAttempt,
    Faults,
    Handler,
    RecordedRequest,
    fault_middleware,
    send_callback,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_LOGGER = logging.getLogger("simulator.supersim")

TWILIO = "twilio"
KORE = "kore"
KORE_TOKEN_PATH = "/api-services/v1/auth/token"
MAX_PAYLOAD = 160
VALIDITY = 24 * 3600.0
BEHAVIORS = frozenset({"online", "offline", "echo", "failing"})
STATUSES = frozenset({"queued", "sent", "delivered", "received", "failed"})
FINAL = frozenset({"delivered", "failed", "received"})
CALLBACK_ENCODINGS = frozenset({"form", "query", "json"})
ERRORS_URL = "https://www.twilio.com/docs/errors"

# Twilio error codes; which ones the SMS Commands API really uses is not documented.
CODE_AUTHENTICATE = 20003
CODE_NOT_FOUND = 20404
CODE_TOO_MANY = 20429
CODE_INVALID = 21211


def new_sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def _now() -> datetime:
    return datetime.now(UTC)


def _date(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature: Base64(HMAC-SHA1(token, URL + name/value pairs sorted by name))."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    mac = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode("ascii")


def kore_signature(secret: str, method: str, url: str, body: bytes) -> str:
    """kore-signature: SHA-256 hex of secret + METHOD + URI (no query, no fragment) + body."""
    parts = urlsplit(url)
    uri = urlunsplit(parts._replace(query="", fragment=""))
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


@dataclass
class Fleet:
    """A Fleet: the SIMs' settings, among them the SMS Commands webhook (MO)."""

    sid: str
    unique_name: str
    sms_commands_enabled: bool = True
    sms_commands_url: str | None = None
    sms_commands_method: str = "POST"
    date_created: datetime = field(default_factory=_now)
    date_updated: datetime = field(default_factory=_now)


@dataclass
class Sim:
    """A Super SIM (no MSISDN: it is addressed by its SID or unique name)."""

    sid: str
    unique_name: str
    iccid: str
    behavior: str
    fleet_sid: str | None
    status: str = "active"
    date_created: datetime = field(default_factory=_now)


@dataclass
class SmsCommand:
    """One SMS Command, to a SIM (MT) or from one (MO)."""

    sid: str
    sim_sid: str
    payload: str
    direction: str
    status: str
    seq: int
    callback_url: str | None = None
    callback_method: str = "POST"
    date_created: datetime = field(default_factory=_now)
    date_updated: datetime = field(default_factory=_now)
    history: list[str] = field(default_factory=list)


class SuperSimSimulator(BackgroundWork):
    """In-process Super SIM API of Twilio or KORE; see the module docstring."""

    def __init__(
        self,
        vendor: str = TWILIO,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        webhook_secret: str | None = None,
        token_path: str = KORE_TOKEN_PATH,
        delivery_delay: float = 0.2,
    ) -> None:
        if vendor not in (TWILIO, KORE):
            raise ValueError(f"unknown vendor {vendor!r}")
        self.vendor = vendor
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.client_id = client_id or f"kore-client-{secrets.token_hex(8)}"
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        # KORE signs webhooks with it; None: the account has none (an empty header is sent).
        self.webhook_secret = (webhook_secret or secrets.token_hex(16)) if vendor == KORE else None
        self.token_path = token_path
        self.delivery_delay = delivery_delay
        self.validity = VALIDITY
        self.base_url = ""
        self.faults = Faults()
        self.faults.token_ttl = 3600  # KORE's shortest token lifetime
        self.requests: list[RecordedRequest] = []
        self.callback_log: list[CallbackAttempt] = []
        # --- switches for what the documentation leaves open
        self.expires_in_as_string = False
        self.token_error = "invalid_client"
        self.error_format = "legacy"
        self.retry_after: str | None = "1"
        self.callback_encoding: str | None = None
        self.callback_content = "full"
        self.callback_sid_field = "SmsCommandSid"
        self.callback_statuses: frozenset[str] = frozenset({"delivered", "failed"})
        self.duplicate_callbacks = False
        self.redeliver_on_error = True
        self.page_size_default = 50
        # --- state
        self.fleets: dict[str, Fleet] = {}
        self.sims: dict[str, Sim] = {}
        self.commands: dict[str, SmsCommand] = {}
        self.token_count = 0
        self._tokens: dict[str, float] = {}
        self._seq = itertools.count(1)
        self._iccids = itertools.count(1)
        self._init_background()
        self._machines: dict[str, asyncio.Task[Any]] = {}
        self.app = web.Application(
            middlewares=[
                fault_middleware(self.faults, self.requests, rate_limit_body=self._too_many),
                self._auth_middleware,
            ]
        )
        self._add_routes()

    # ------------------------------------------------------------------ control API

    @property
    def token_url(self) -> str:
        """KORE's token endpoint (served by this app, like the API)."""
        return f"{self.base_url}{self.token_path}"

    def add_fleet(
        self,
        name: str,
        *,
        sms_commands_enabled: bool = True,
        sms_commands_url: str | None = None,
        sms_commands_method: str = "POST",
    ) -> Fleet:
        fleet = Fleet(
            new_sid("HF"), name, sms_commands_enabled, sms_commands_url, sms_commands_method
        )
        self.fleets[fleet.sid] = fleet
        return fleet

    def add_sim(self, name: str, behavior: str = "online", fleet: Fleet | None = None) -> Sim:
        """Add a SIM; without a Fleet it can exchange no SMS Commands."""
        if behavior not in BEHAVIORS:
            raise ValueError(f"unknown behavior {behavior!r}")
        sim = Sim(
            sid=new_sid("HS"),
            unique_name=name,
            iccid=f"8988307{next(self._iccids):012d}",
            behavior=behavior,
            fleet_sid=fleet.sid if fleet else None,
        )
        self.sims[sim.sid] = sim
        return sim

    def expire_tokens(self) -> None:
        """Every KORE token issued so far answers 401 from now on."""
        self._tokens.clear()

    def set_status(self, sid: str, status: str) -> None:
        """Drive a command by hand (stops its state machine; calls back like the machine)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self._stop(sid)
        self._set(self.commands[sid], status)

    def mt_commands(self) -> list[SmsCommand]:
        """Commands sent to SIMs, oldest first."""
        return sorted(
            (c for c in self.commands.values() if c.direction == "to_sim"), key=lambda c: c.seq
        )

    async def send_mo(self, sim_sid: str, text: str, *, duplicate: bool = False) -> str:
        """A SIM sends an SMS Command: stored as from_sim/received, then the Fleet's webhook.

        Returns the command's SID. `duplicate` delivers the webhook twice (same event).
        """
        sim = self.sims[sim_sid]
        fleet = self.fleets.get(sim.fleet_sid or "")
        if fleet is None or not fleet.sms_commands_enabled:
            raise RuntimeError(f"Sim {sim_sid} is in no Fleet with SMS Commands enabled")
        command = SmsCommand(
            sid=new_sid("HC"),
            sim_sid=sim.sid,
            payload=text[:MAX_PAYLOAD],
            direction="from_sim",
            status="received",
            seq=next(self._seq),
            history=["received"],
        )
        self.commands[command.sid] = command
        _LOGGER.info("SMS Command %s from %s (%s): %r", command.sid, sim.sid, sim.unique_name, text)
        if fleet.sms_commands_url:
            await self._webhook(
                fleet.sms_commands_url, fleet.sms_commands_method, command, duplicate=duplicate
            )
        return command.sid

    async def close(self) -> None:
        """Cancel every task, close the webhook session."""
        await self._close_background()
        self._machines.clear()

    # ------------------------------------------------------------------ HTTP plumbing

    def _add_routes(self) -> None:
        r = self.app.router
        if self.vendor == KORE:
            r.add_post(self.token_path, self._handle_token)
        r.add_get("/v1/Sims", self._list_sims)
        r.add_get("/v1/Sims/{sid}", self._get_sim)
        r.add_get("/v1/Fleets", self._list_fleets)
        r.add_get("/v1/Fleets/{sid}", self._get_fleet)
        r.add_post("/v1/Fleets/{sid}", self._update_fleet)
        r.add_post("/v1/SmsCommands", self._create_command)
        r.add_get("/v1/SmsCommands", self._list_commands)
        r.add_get("/v1/SmsCommands/{sid}", self._get_command)

    def _base(self, request: web.Request) -> str:
        return self.base_url or str(request.url.origin())

    def _error(
        self, status: int, code: int, message: str, request: web.Request | None = None
    ) -> web.Response:
        """An error body in the configured format: Twilio's legacy one or RFC 9457."""
        if self.error_format == "rfc9457":
            body: dict[str, Any] = {
                "type": f"{ERRORS_URL}/{code}",
                "title": message,
                "status": status,
                "code": code,
                "detail": message,
                "instance": request.path if request is not None else None,
            }
            return web.json_response(body, status=status, content_type="application/problem+json")
        body = {"code": code, "message": message, "more_info": f"{ERRORS_URL}/{code}"}
        return web.json_response({**body, "status": status}, status=status)

    def _too_many(self) -> web.StreamResponse:
        response = self._error(
            429, CODE_TOO_MANY, "Too many concurrent requests, please retry later"
        )
        if self.retry_after is not None:
            response.headers["Retry-After"] = self.retry_after
        return response

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.vendor == KORE and request.path == self.token_path:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if self.vendor == TWILIO:
            expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
            valid = scheme.lower() == "basic" and hmac.compare_digest(
                credentials.strip().encode(), expected.encode()
            )
        else:
            expiry = self._tokens.get(credentials.strip())
            valid = scheme.lower() == "bearer" and expiry is not None and time.monotonic() < expiry
        if not valid:
            response = self._error(401, CODE_AUTHENTICATE, "Authenticate", request)
            if self.vendor == TWILIO:
                response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        return await handler(request)

    async def _handle_token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"code": 400, "message": "unsupported grant_type"}, status=400)
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return web.json_response(
                {
                    "error": self.token_error,
                    "error_description": "Invalid client or Invalid client credentials",
                },
                status=401,
            )
        token = secrets.token_urlsafe(32)
        ttl = self.faults.token_ttl
        self._tokens[token] = time.monotonic() + ttl
        self.token_count += 1
        expires_in: int | str = int(ttl)
        if self.expires_in_as_string:
            expires_in = str(int(ttl))
        return web.json_response(
            {
                "access_token": token,
                "expires_in": expires_in,
                "token_type": "Bearer",
                "scope": "supersim",
            }
        )

    def _page(
        self, request: web.Request, items: list[Any], key: str, render: Callable[[Any], Any]
    ) -> web.StreamResponse:
        """One page of a list; PageToken "PA<sid>" starts after that item, "PB<sid>" before."""
        try:
            size = int(request.query.get("PageSize", self.page_size_default))
            page = int(request.query.get("Page", "0"))
        except ValueError:
            return self._error(400, CODE_INVALID, "PageSize and Page must be integers", request)
        if not 1 <= size <= 1000:
            return self._error(400, CODE_INVALID, "PageSize must be between 1 and 1000", request)
        sids = [item.sid for item in items]
        token = request.query.get("PageToken", "")
        start = 0
        if token:
            if token[:2] not in ("PA", "PB") or token[2:] not in sids:
                return self._error(400, CODE_INVALID, "Invalid PageToken", request)
            index = sids.index(token[2:])
            start = index + 1 if token.startswith("PA") else max(0, index - size)
        chunk = items[start : start + size]
        filters = {
            k: v for k, v in request.query.items() if k not in ("PageSize", "Page", "PageToken")
        }

        def url(number: int, page_token: str | None) -> str:
            query = {**filters, "PageSize": str(size), "Page": str(number)}
            if page_token:
                query["PageToken"] = page_token
            return f"{self._base(request)}{request.path}?{urlencode(query)}"

        has_next = start + size < len(items) and chunk
        meta = {
            "page": page,
            "page_size": size,
            "first_page_url": url(0, None),
            "previous_page_url": url(page - 1, f"PB{chunk[0].sid}") if start and chunk else None,
            "url": url(page, token or None),
            "next_page_url": url(page + 1, f"PA{chunk[-1].sid}") if has_next else None,
            "key": key,
        }
        return web.json_response({key: [render(item) for item in chunk], "meta": meta})

    # ------------------------------------------------------------------ Sims and Fleets

    def _find_sim(self, ref: str) -> Sim | None:
        return self.sims.get(ref) or next(
            (s for s in self.sims.values() if s.unique_name == ref), None
        )

    def _find_fleet(self, ref: str) -> Fleet | None:
        return self.fleets.get(ref) or next(
            (f for f in self.fleets.values() if f.unique_name == ref), None
        )

    def _sim_json(self, sim: Sim) -> dict[str, Any]:
        base = self.base_url or "https://supersim.twilio.com"
        return {
            "sid": sim.sid,
            "account_sid": self.account_sid,
            "unique_name": sim.unique_name,
            "status": sim.status,
            "fleet_sid": sim.fleet_sid,
            "iccid": sim.iccid,
            "date_created": _date(sim.date_created),
            "date_updated": _date(sim.date_created),
            "url": f"{base}/v1/Sims/{sim.sid}",
            "links": {
                "billing_periods": f"{base}/v1/Sims/{sim.sid}/BillingPeriods",
                "sim_ip_addresses": f"{base}/v1/Sims/{sim.sid}/IpAddresses",
            },
        }

    def _fleet_json(self, fleet: Fleet) -> dict[str, Any]:
        base = self.base_url or "https://supersim.twilio.com"
        return {
            "account_sid": self.account_sid,
            "sid": fleet.sid,
            "unique_name": fleet.unique_name,
            "data_enabled": True,
            "data_limit": 1000,
            "data_metering": "payg",
            "date_created": _date(fleet.date_created),
            "date_updated": _date(fleet.date_updated),
            "sms_commands_enabled": fleet.sms_commands_enabled,
            "sms_commands_url": fleet.sms_commands_url,
            "sms_commands_method": fleet.sms_commands_method,
            "network_access_profile_sid": "HA" + "0" * 32,
            "ip_commands_url": None,
            "ip_commands_method": "POST",
            "url": f"{base}/v1/Fleets/{fleet.sid}",
        }

    async def _list_sims(self, request: web.Request) -> web.StreamResponse:
        sims = list(self.sims.values())
        if status := request.query.get("Status"):
            sims = [s for s in sims if s.status == status]
        if fleet_ref := request.query.get("Fleet"):
            fleet = self._find_fleet(fleet_ref)
            sims = [s for s in sims if fleet is not None and s.fleet_sid == fleet.sid]
        if iccid := request.query.get("Iccid"):
            sims = [s for s in sims if s.iccid == iccid][:1]
        return self._page(request, sims, "sims", self._sim_json)

    async def _get_sim(self, request: web.Request) -> web.StreamResponse:
        sim = self._find_sim(request.match_info["sid"])
        if sim is None:
            return self._not_found(request)
        return web.json_response(self._sim_json(sim))

    async def _list_fleets(self, request: web.Request) -> web.StreamResponse:
        return self._page(request, list(self.fleets.values()), "fleets", self._fleet_json)

    async def _get_fleet(self, request: web.Request) -> web.StreamResponse:
        fleet = self._find_fleet(request.match_info["sid"])
        if fleet is None:
            return self._not_found(request)
        return web.json_response(self._fleet_json(fleet))

    async def _update_fleet(self, request: web.Request) -> web.StreamResponse:
        fleet = self._find_fleet(request.match_info["sid"])
        if fleet is None:
            return self._not_found(request)
        form = await request.post()
        method = str(form.get("SmsCommandsMethod", fleet.sms_commands_method)).upper()
        if method not in ("GET", "POST"):
            return self._error(400, CODE_INVALID, "SmsCommandsMethod must be GET or POST", request)
        if "SmsCommandsEnabled" in form:  # only settable when the Fleet is created
            return self._error(400, CODE_INVALID, "Unknown parameter SmsCommandsEnabled", request)
        if "SmsCommandsUrl" in form:
            url = str(form["SmsCommandsUrl"])
            if url and not url.startswith(("http://", "https://")):
                return self._error(400, CODE_INVALID, "SmsCommandsUrl is not a URL", request)
            fleet.sms_commands_url = url or None
        if "UniqueName" in form:
            fleet.unique_name = str(form["UniqueName"])
        fleet.sms_commands_method = method
        fleet.date_updated = _now()
        return web.json_response(self._fleet_json(fleet))

    def _not_found(self, request: web.Request) -> web.StreamResponse:
        return self._error(
            404,
            CODE_NOT_FOUND,
            f"The requested resource {request.path} was not found",
            request,
        )

    # ------------------------------------------------------------------ SMS Commands

    def _command_json(self, command: SmsCommand) -> dict[str, Any]:
        base = self.base_url or "https://supersim.twilio.com"
        return {
            "sid": command.sid,
            "account_sid": self.account_sid,
            "sim_sid": command.sim_sid,
            "payload": command.payload,
            "status": command.status,
            "direction": command.direction,
            "date_created": _date(command.date_created),
            "date_updated": _date(command.date_updated),
            "url": f"{base}/v1/SmsCommands/{command.sid}",
        }

    async def _create_command(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        sim_ref = str(form.get("Sim", ""))
        payload = str(form.get("Payload", ""))
        if not sim_ref:
            return self._error(400, CODE_INVALID, "Missing required parameter Sim", request)
        if not payload:
            return self._error(400, CODE_INVALID, "Missing required parameter Payload", request)
        if len(payload) > MAX_PAYLOAD:
            return self._error(400, CODE_INVALID, "Payload must be at most 160 characters", request)
        sim = self._find_sim(sim_ref)
        if sim is None:
            return self._error(400, CODE_INVALID, f"Sim {sim_ref} was not found", request)
        fleet = self.fleets.get(sim.fleet_sid or "")
        if fleet is None or not fleet.sms_commands_enabled:
            return self._error(
                400, CODE_INVALID, "SMS Commands are not enabled for the Sim's Fleet", request
            )
        method = str(form.get("CallbackMethod", "POST")).upper()
        if method not in ("GET", "POST"):
            return self._error(400, CODE_INVALID, "CallbackMethod must be GET or POST", request)
        callback_url = str(form.get("CallbackUrl", "")) or None
        if callback_url and not callback_url.startswith(("http://", "https://")):
            return self._error(400, CODE_INVALID, "CallbackUrl is not a URL", request)
        command = SmsCommand(
            sid=new_sid("HC"),
            sim_sid=sim.sid,
            payload=payload,
            direction="to_sim",
            status="queued",
            seq=next(self._seq),
            callback_url=callback_url,
            callback_method=method,
            history=["queued"],
        )
        self.commands[command.sid] = command
        self._machines[command.sid] = self._spawn(self._run(command, sim.behavior))
        _LOGGER.info(
            "SMS Command %s to %s (%s): %r", command.sid, sim.sid, sim.unique_name, payload
        )
        return web.json_response(self._command_json(command), status=201)

    async def _list_commands(self, request: web.Request) -> web.StreamResponse:
        commands = sorted(self.commands.values(), key=lambda c: c.seq, reverse=True)
        if sim_ref := request.query.get("Sim"):
            sim = self._find_sim(sim_ref)
            commands = [c for c in commands if sim is not None and c.sim_sid == sim.sid]
        if status := request.query.get("Status"):
            commands = [c for c in commands if c.status == status]
        if direction := request.query.get("Direction"):
            commands = [c for c in commands if c.direction == direction]
        return self._page(request, commands, "sms_commands", self._command_json)

    async def _get_command(self, request: web.Request) -> web.StreamResponse:
        command = self.commands.get(request.match_info["sid"])
        if command is None:
            return self._not_found(request)
        return web.json_response(self._command_json(command))

    # ------------------------------------------------------------------ state machine

    def _stop(self, sid: str) -> None:
        task = self._machines.pop(sid, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        for expiry, _due in list(self._expiry_tasks.items()):
            if expiry.get_name() == f"expire {sid}":
                expiry.cancel()

    async def _run(self, command: SmsCommand, behavior: str) -> None:
        await asyncio.sleep(self.delivery_delay / 2)
        if command.status != "queued":
            return
        self._set(command, "sent")
        if behavior == "offline":
            elapsed = (_now() - command.date_created).total_seconds()
            delay = max(0.0, self.validity - elapsed)
            self._spawn_expiry(self._expire(command, delay), delay, name=f"expire {command.sid}")
            return
        await asyncio.sleep(self.delivery_delay / 2)
        if command.status != "sent":
            return
        if behavior == "failing":
            self._set(command, "failed")
            return
        self._set(command, "delivered")
        if behavior == "echo":
            await self.send_mo(command.sim_sid, f"ECHO: {command.payload}")

    async def _expire(self, command: SmsCommand, delay: float) -> None:
        await asyncio.sleep(delay)
        if command.status in ("queued", "sent"):
            self._set(command, "failed")

    def _set(self, command: SmsCommand, status: str) -> None:
        command.status = status
        command.date_updated = _now()
        command.history.append(status)
        if status in FINAL:
            self._machines.pop(command.sid, None)
        if (
            command.direction == "to_sim"
            and command.callback_url
            and status in self.callback_statuses
        ):
            self._spawn(
                self._webhook(command.callback_url, command.callback_method, command, status=status)
            )

    # ------------------------------------------------------------------ webhooks

    def _fields(self, command: SmsCommand, status: str) -> dict[str, str]:
        if self.callback_content == "sid":
            return {self.callback_sid_field: command.sid}
        sim = self.sims.get(command.sim_sid)
        return {
            "AccountSid": self.account_sid,
            self.callback_sid_field: command.sid,
            "SimSid": command.sim_sid,
            "SimUniqueName": sim.unique_name if sim else "",
            "Status": status,
            "Direction": command.direction,
            "Payload": command.payload,
            "DateCreated": _date(command.date_created),
        }

    def _json_body(self, command: SmsCommand, status: str) -> dict[str, Any]:
        if self.callback_content == "sid":
            return {self.callback_sid_field: command.sid}
        return {**self._command_json(command), "status": status}

    async def _webhook(
        self,
        url: str,
        method: str,
        command: SmsCommand,
        *,
        status: str | None = None,
        duplicate: bool = False,
    ) -> None:
        """Deliver one event (status callback or MO webhook), signed; redelivered on failure."""
        status = status or command.status
        encoding = self.callback_encoding or ("query" if method.upper() == "GET" else "form")
        if encoding not in CALLBACK_ENCODINGS:
            raise ValueError(f"unknown callback encoding {encoding!r}")
        event = str(uuid.uuid4())  # unchanged on redelivery: KORE's dedupe key
        for _ in range(2 if duplicate or self.duplicate_callbacks else 1):
            answer = await self._deliver(encoding, url, command, status, event)
            if self.redeliver_on_error and (answer is None or not 200 <= answer < 300):
                await self._deliver(encoding, url, command, status, event)

    async def _deliver(
        self, encoding: str, url: str, command: SmsCommand, status: str, event: str
    ) -> int | None:
        fields = self._fields(command, status)
        separator = "&" if "?" in url else "?"
        if encoding == "query":
            method, target = "GET", f"{url}{separator}{urlencode(fields)}"
            body, signed_params = b"", {}
        elif encoding == "json":
            raw = json.dumps(self._json_body(command, status))
            body = raw.encode()
            method, signed_params = "POST", {}
            target = url
            if self.vendor == TWILIO:  # the body is signed through its hash in the URL
                target = f"{url}{separator}bodySHA256={hashlib.sha256(body).hexdigest()}"
        else:
            method, target = "POST", url
            body, signed_params = urlencode(fields).encode(), fields
        # Signed as it goes on the wire: aiohttp (yarl) normalises escapes such as %3A first.
        target = str(URL(target))
        headers = self._signature_headers(method, target, signed_params, body, event)
        if encoding == "json":
            return await send_callback(
                self._client_session(),
                self.callback_log,
                method,
                target,
                json_body=json.loads(body),
                headers=headers,
                faults=self.faults,
            )
        return await send_callback(
            self._client_session(),
            self.callback_log,
            method,
            target,
            data=fields if method == "POST" else None,
            headers=headers,
            faults=self.faults,
        )

    def _signature_headers(
        self, method: str, url: str, params: Mapping[str, str], body: bytes, event: str
    ) -> dict[str, str]:
        if self.vendor == TWILIO:
            return {
                "X-Twilio-Signature": twilio_signature(self.auth_token, url, params),
                "I-Twilio-Idempotency-Token": event,
                "User-Agent": "TwilioProxy/1.1",
            }
        secret = self.webhook_secret
        return {
            "kore-signature": kore_signature(secret, method, url, body) if secret else "",
            "kore-idempotency-token": event,
            "user-agent": "KoreProxy/1.1",
            "date": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
