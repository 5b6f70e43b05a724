"""1NCE Management API simulator: OAuth token, SIMs, SMS (v1 and v2), SMS Forwarder.

Speaks `shared/reference/1nce-sms-api.md` (section 8). What 1NCE documents is fixed:

* `POST /management-api/oauth/token` with Basic credentials and JSON
  `{"grant_type": "client_credentials"}`; a new token per call, old ones stay valid; bad
  credentials answer 400 `{"statusCode", "errorCode", "message"}` (camelCase), a non-JSON body
  400 `UnsupportedContentTypeError`. Every other path wants `Bearer <token>` (401, empty body).
* `/v1/sims` and `/v2/sims`: `page`/`pageSize` (1-100, default 10), `X-Total-*` headers, a bare
  JSON array. `/sims/{iccid}/sms`: v1 `page`/`pageSize` (max 100, default 10, `sort`), v2
  `page`/`per_page` (max 1000, default 20, no sort); MO SMS are listed too (`sms_type` 2).
* v1 SMS objects: `retry_count` and `msc` strings, `…000+0000` dates; v2: integers, `…000Z`
  dates, `endpoint {id, name}`. v1 errors have empty bodies, v2 `{error_code, error_token,
  message}`. v2 answers a send `201 {"id": "<string>"}`; v1 an empty 201.
* Undelivered SMS stay PENDING (2) for up to 24 h, then FAILED (5) as the portal shows it.
* The SMS Forwarder POSTs MO SMS and PATCHes delivery reports to one URL, unsigned, and repeats
  each until it is answered 200. An MO stays PENDING until the forwarder got a 200.
* 10 requests per second per account; more are answered 429.

What the reference marks [INFERRED] is a switch (default first):

* `versions` {1, 2} | {1}: the API versions the account has (a missing one answers 404).
* `v1_location` False | True: a v1 send's 201 carries `Location: …/sms/{id}`.
* `faults.token_ttl` (3600 s) and `reject_stale_tokens` True | False: tokens past their
  lifetime answer 401; `expire_tokens()` revokes every token issued so far.
* `paging_headers` True | False: the `X-Total-*` headers of every list.
* `v1_sort` "honoured" | "ignored" | "rejected": a v1 SMS list with `sort=-submit_date` comes
  newest first, in the default order (oldest first), or is answered 400.
* `pending_status` 2, `buffered_status` 2 (3): the status of an SMS waiting for its first
  attempt and after a failed one (with `retry_count` 1 and `last_delivery_attempt` set);
  `canceled_status` None (7): a canceled SMS is removed (404 afterwards), or kept with it;
  `expiry_status` 5 (6): what an SMS becomes when its validity ran out.
* `cancel_final_status` 400 (404, 409, 422): the answer to a DELETE of a final SMS.
* `dlr_id_field` "id" | "detail": which id of a delivery report is the REST SMS id (the other
  one is a number of the report's own); `dlr_statuses` the states reported (the final ones).
* `mo_variant` "documented" | "real": MO bodies as the forwarder docs list them (integers,
  `destination_address`, `organisiation`, ISO date) or as recorded from a real forwarder
  (strings, `dest_address`, `organisation`, `2018-11-06 08:40:10`).
* `mo_ucs2_payload` "text" | "hex": how a UCS-2 (dcs 8) MO payload is written.
* `forwarder_retry_delay` (0.1 s) and `forwarder_max_attempts` (10, the simulated 24 h).

SIM behaviours: "online" delivers after `delivery_delay`; "offline" stays pending (one failed
attempt after half of it) until the expiry date; "echo" delivers, then the SIM sends
`ECHO: <text>` as MO; "failing" fails after `delivery_delay`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .common import (
    BackgroundWork,
    CallbackAttempt,
    Faults,
    Handler,
    RecordedRequest,
    fault_middleware,
    send_callback,
)
from .eseye import GSM_CODES, GSM_EXTENSION

_LOGGER = logging.getLogger("simulator.onence")

API = "/management-api"
TOKEN_PATH = f"{API}/oauth/token"
DEFAULT_VALIDITY = timedelta(hours=24)
DOCUMENTED_RATE_LIMIT = (10, 1.0)

STATUS_DESCRIPTIONS = {
    1: "DISPATCHED",
    2: "PENDING",
    3: "BUFFERED",
    4: "DELIVERED",
    5: "FAILED",
    6: "EXPIRED",
    7: "CANCELED",
}
FINAL = frozenset({4, 5, 6})
SMS_TYPES = {1: "MT", 2: "MO"}
SOURCE_ADDRESS_TYPES = {145: "International", 161: "National", 208: "Alphanumeric"}
BEHAVIORS = frozenset({"online", "offline", "echo", "failing"})
SEND_FIELDS = frozenset(
    {"payload", "source_address", "source_address_type", "dcs", "udh", "expiry_date"}
)
DCS_VALUES = frozenset({0, 4, 8})
MAX_OCTETS = 140
ORGANISATION_ID = 103820


def _now() -> datetime:
    return datetime.now(UTC)


def _v1_date(value: datetime | None) -> str | None:
    """2018-03-09T07:59:09.000+0000, as in the v1 spec."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}+0000"
    )


def _v2_date(value: datetime | None) -> str | None:
    """2015-10-05T13:56:59.000Z."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}Z"
    )


def _forwarder_date(value: datetime) -> str:
    """2018-11-06 08:40:10 (UTC, no zone), as a real forwarder sent it."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _is_gsm(text: str) -> bool:
    return all(char in GSM_CODES or char in GSM_EXTENSION for char in text)


def _septets(text: str) -> int:
    return sum(2 if char in GSM_EXTENSION else 1 for char in text)


def _is_hex(value: object) -> bool:
    if not isinstance(value, str) or len(value) % 2:
        return False
    with contextlib.suppress(ValueError):
        bytes.fromhex(value)
        return all(char in "0123456789abcdefABCDEF" for char in value)
    return False


@dataclass
class SimCard:
    """One SIM of the simulated account."""

    iccid: str
    msisdn: str
    imsi: str
    imei: str
    label: str
    behavior: str
    endpoint_id: int
    status: str = "Enabled"
    activation_date: datetime = field(default_factory=_now)


@dataclass
class SimSms:
    """One SMS stored by the simulator (MT sent through the API, or MO sent by a SIM)."""

    id: int
    iccid: str
    payload: str
    udh: str | None
    dcs: int | None
    source_address: str
    source_address_type: int
    status_id: int
    expiry_date: datetime
    sms_type: int = 1
    submit_date: datetime = field(default_factory=_now)
    final_date: datetime | None = None
    delivery_date: datetime | None = None
    last_delivery_attempt: datetime | None = None
    retry_count: int = 0
    dest_address: str | None = None
    canceled: bool = False
    """Canceled through the API (removed from the API when `canceled_status` is None)."""


class OnenceSimulator(BackgroundWork):
    """In-process 1NCE Management API. See the module doc for behaviour and switches."""

    def __init__(
        self,
        username: str = "demo-api-user",
        password: str = "demo-api-secret",  # noqa: S107
        delivery_delay: float = 0.2,
    ) -> None:
        """Create an account without SIMs."""
        self.username = username
        self.password = password
        self.delivery_delay = delivery_delay
        self.base_url: str | None = None
        self.faults = Faults(token_ttl=3600.0, window_limit=DOCUMENTED_RATE_LIMIT)
        self.requests: list[RecordedRequest] = []
        # (monotonic arrival time, method, path) of every request, rejected ones included.
        self.arrivals: list[tuple[float, str, str]] = []
        self.callback_log: list[CallbackAttempt] = []
        self.token_count = 0
        # Switches for what 1NCE does not document (module doc).
        self.versions: frozenset[int] = frozenset({1, 2})
        self.v1_location = False
        self.reject_stale_tokens = True
        self.paging_headers = True
        self.v1_sort = "honoured"
        self.pending_status = 2
        self.buffered_status = 2
        self.canceled_status: int | None = None
        self.expiry_status = 5
        self.cancel_final_status = 400
        self.dlr_id_field = "id"
        self.dlr_statuses: frozenset[int] = FINAL
        self.mo_variant = "documented"
        self.mo_ucs2_payload = "text"
        self.forwarder_url: str | None = None
        self.forwarder_retry_delay = 0.1
        self.forwarder_max_attempts = 10
        # Forwarder calls given up after forwarder_max_attempts: (method, body).
        self.forwarder_failures: list[tuple[str, dict[str, Any]]] = []
        self.status_descriptions = dict(STATUS_DESCRIPTIONS)
        self.sims: dict[str, SimCard] = {}
        self.sms: dict[int, SimSms] = {}
        self._tokens: dict[str, float] = {}
        self._revoked: set[str] = set()
        self._forwarder_id = str(uuid.uuid4())
        self._next_sim = 1
        self._next_sms_id = 4_100_001
        self._init_background()
        self._sms_tasks: dict[int, asyncio.Task[Any]] = {}
        self.app = web.Application(
            middlewares=[
                self._arrival_middleware,
                fault_middleware(self.faults, self.requests),
                self._auth_middleware,
            ]
        )
        self._add_routes()

    @property
    def api_url(self) -> str:
        """What a client is configured with: the base URL plus `/management-api`."""
        if self.base_url is None:
            raise RuntimeError("base_url is set by whoever starts the server")
        return f"{self.base_url.rstrip('/')}{API}"

    # ------------------------------------------------------------------ control API

    def add_sim(self, label: str, behavior: str = "online", msisdn: str | None = None) -> SimCard:
        """Add a SIM; behavior decides what happens to SMS sent to it."""
        if behavior not in BEHAVIORS:
            raise ValueError(f"unknown behavior {behavior!r}")
        number = self._next_sim
        self._next_sim += 1
        sim = SimCard(
            iccid=f"89883030000{number:08d}",
            msisdn=msisdn or f"8822851000{number:05d}",
            imsi=f"9014051000{number:05d}",
            imei=f"86{number:014d}",
            label=label,
            behavior=behavior,
            endpoint_id=100_000_000 + number,
        )
        self.sims[sim.iccid] = sim
        return sim

    def remove_sim(self, iccid: str) -> None:
        """Take a SIM off the account (its paths answer 404 afterwards)."""
        self.sims.pop(iccid, None)

    def expire_tokens(self) -> None:
        """Make every token issued so far answer 401."""
        self._revoked.update(self._tokens)

    def set_sms_status(self, sms_id: int, status_id: int, description: str | None = None) -> None:
        """Force an SMS into a state; stops its state machine; reported states send a DLR.

        `description` names a status id 1NCE never documented (or renames one).
        """
        if description is not None:
            self.status_descriptions[status_id] = description
        self._stop_machine(sms_id)
        self._set_status(self.sms[sms_id], status_id)

    def add_sms(self, iccid: str, payload: str, *, age: timedelta, status_id: int = 4) -> SimSms:
        """Store an old MT SMS (history), submitted `age` ago."""
        submitted = _now() - age
        sms = SimSms(
            id=self._new_sms_id(),
            iccid=iccid,
            payload=payload,
            udh=None,
            dcs=None,
            source_address="1234567890",
            source_address_type=145,
            status_id=status_id,
            expiry_date=submitted + DEFAULT_VALIDITY,
            submit_date=submitted,
            final_date=submitted if status_id in FINAL else None,
        )
        self.sms[sms.id] = sms
        return sms

    async def send_mo(
        self,
        iccid: str,
        text: str,
        *,
        parts: int = 1,
        dest_address: str = "1234",
        duplicate: bool = False,
        reverse: bool = False,
    ) -> list[int]:
        """The SIM sends an SMS (in `parts` parts); each is POSTed to the forwarder.

        Returns the MO ids in part order. The first attempt of every body is awaited; retries
        (until a 200) run in the background. `duplicate` sends every body twice.
        """
        sim = self.sims[iccid]
        parts = max(1, parts)
        size = max(1, math.ceil(len(text) / parts))
        chunks = [text[i * size : (i + 1) * size] for i in range(parts)]
        now = _now()
        stored: list[SimSms] = []
        for chunk in chunks:
            sms = SimSms(
                id=self._new_sms_id(),
                iccid=iccid,
                payload=chunk,
                udh=None,
                dcs=0 if _is_gsm(chunk) else 8,
                source_address=sim.msisdn,
                source_address_type=145,
                status_id=2,
                expiry_date=now + DEFAULT_VALIDITY,
                sms_type=2,
                submit_date=now,
                dest_address=dest_address,
            )
            self.sms[sms.id] = sms
            stored.append(sms)
        _LOGGER.info("SMS from SIM %s (%s): %r", iccid, sim.label, text)
        bodies = [self._mo_body(sim, sms, number, stored) for number, sms in enumerate(stored, 1)]
        order = list(zip(stored, bodies, strict=True))
        if reverse:
            order.reverse()
        for sms, body in order:
            for _ in range(2 if duplicate else 1):
                await self._forward("POST", body, sms)
        return [sms.id for sms in stored]

    async def close(self) -> None:
        """Cancel every timer and task, close the forwarder's session."""
        await self._close_background()
        self._sms_tasks.clear()

    # ------------------------------------------------------------------ internals

    def _add_routes(self) -> None:
        r = self.app.router
        version = "/v{version:\\d+}"
        r.add_post(TOKEN_PATH, self._issue_token)
        r.add_get(f"{API}{version}/sims", self._list_sims)
        r.add_get(f"{API}{version}/sims/{{iccid}}", self._get_sim)
        r.add_get(f"{API}{version}/sims/{{iccid}}/sms", self._list_sms)
        r.add_post(f"{API}{version}/sims/{{iccid}}/sms", self._send_sms)
        r.add_get(f"{API}{version}/sims/{{iccid}}/sms/{{sms_id}}", self._get_sms)
        r.add_delete(f"{API}{version}/sims/{{iccid}}/sms/{{sms_id}}", self._cancel_sms)

    def _new_sms_id(self) -> int:
        ident = self._next_sms_id
        self._next_sms_id += 1
        return ident

    @web.middleware
    async def _arrival_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        self.arrivals.append((time.monotonic(), request.method, request.path))
        return await handler(request)

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == TOKEN_PATH or request.match_info.http_exception is not None:
            return await handler(request)  # the token call, or no such path (404)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token.strip())
        if (
            scheme.lower() != "bearer"
            or expiry is None
            or token.strip() in self._revoked
            or (self.reject_stale_tokens and time.monotonic() >= expiry)
        ):
            return web.Response(status=401)
        version = request.match_info.get("version")
        if version is not None and int(version) not in self.versions:
            return web.json_response({"message": "Not Found"}, status=404)
        return await handler(request)

    # -- token

    async def _issue_token(self, request: web.Request) -> web.StreamResponse:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep, password = "", "", ""
        if scheme.lower() != "basic" or not sep or not user or not password:
            missing = "username" if not user else "password"
            return _auth_error(
                "AuthValidationError",
                f"Auth header validation error: Missing attributes '{missing}'",
            )
        if request.content_type != "application/json":
            return _auth_error("UnsupportedContentTypeError", "Content-Type not supported")
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("grant_type") != "client_credentials":
            return _auth_error(
                "BodyValidationError",
                "Request body validation error: Missing attributes 'grant_type'",
            )
        if user != self.username:
            return _auth_error("BadCredentials", "User does not exist.")
        if password != self.password:
            return _auth_error("BadCredentials", "Incorrect username or password.")
        ttl = float(self.faults.token_ttl)
        token = "eyJ" + secrets.token_urlsafe(96)
        self._tokens[token] = time.monotonic() + ttl
        self.token_count += 1
        return web.json_response(
            {
                "status_code": 200,
                "access_token": token,
                "token_type": "bearer",
                "expires_in": int(ttl) if ttl.is_integer() else ttl,
                "userId": self.username,
                "scope": "all",
            }
        )

    # -- SIMs

    def _sim_json(self, sim: SimCard) -> dict[str, Any]:
        return {
            "iccid": sim.iccid,
            "iccid_with_luhn": sim.iccid + str(_luhn(sim.iccid)),
            "imsi": sim.imsi,
            "imsi_2": sim.imsi,
            "current_imsi": sim.imsi,
            "msisdn": sim.msisdn,
            "imei": sim.imei,
            "imei_lock": False,
            "status": sim.status,
            "activation_date": _v1_date(sim.activation_date),
            "ip_address": f"100.100.{sim.endpoint_id // 256 % 256}.{sim.endpoint_id % 256}",
            "current_quota": 500,
            "quota_status": {"id": 0, "description": "More than 20% available"},
            "current_quota_SMS": 250,
            "quota_status_SMS": {"id": 0, "description": "More than 20% available"},
            "label": sim.label,
        }

    def _page(
        self, request: web.Request, items: list[Any], size_key: str, default: int, maximum: int
    ) -> web.Response:
        """One page of a list, with the X-Total-* headers when they are switched on."""
        try:
            page = int(request.query.get("page", "1"))
            size = int(request.query.get(size_key, str(default)))
        except ValueError:
            return _fail(request, 400, "BadRequest", "page and page size must be integers")
        page = max(1, page)
        size = min(max(1, size), maximum)
        total_pages = max(1, math.ceil(len(items) / size))
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if self.paging_headers:
            headers = {
                "X-Count-Per-Page": str(size),
                "X-Current-Page": str(page),
                "X-Total-Count": str(len(items)),
                "X-Total-Pages": str(total_pages),
            }
        return web.json_response(chunk, headers=headers)

    async def _list_sims(self, request: web.Request) -> web.StreamResponse:
        items = [self._sim_json(sim) for sim in self.sims.values()]
        return self._page(request, items, "pageSize", 10, 100)

    def _sim_or_error(self, request: web.Request) -> SimCard | web.Response:
        sim = self.sims.get(request.match_info["iccid"])
        if sim is None:
            return _fail(request, 404, "NotFound", "SIM not found")
        return sim

    async def _get_sim(self, request: web.Request) -> web.StreamResponse:
        sim = self._sim_or_error(request)
        if isinstance(sim, web.Response):
            return sim
        return web.json_response(self._sim_json(sim))

    # -- SMS

    def _visible(self, sms: SimSms) -> bool:
        return not (sms.canceled and self.canceled_status is None)

    def _sms_json(self, sms: SimSms, version: int) -> dict[str, Any]:
        sim = self.sims.get(sms.iccid)
        date = _v1_date if version == 1 else _v2_date
        data: dict[str, Any] = {
            "id": sms.id,
            "submit_date": date(sms.submit_date),
            "delivery_date": date(sms.delivery_date),
            "expiry_date": date(sms.expiry_date),
            "final_date": date(sms.final_date),
            "retry_date": None,
            "last_delivery_attempt": date(sms.last_delivery_attempt),
            "retry_count": str(sms.retry_count) if version == 1 else sms.retry_count,
            "source_address": sms.source_address,
            "iccid": sms.iccid,
            "msisdn": sim.msisdn if sim else None,
            "imsi": sim.imsi if sim else None,
            "msc": "491600190000" if version == 1 else 491600190000,
            "udh": sms.udh or "",
            "payload": sms.payload,
            "dcs": sms.dcs or 0,
            "status": {
                "id": sms.status_id,
                "description": self.status_descriptions[sms.status_id],
            },
            "sms_type": {"id": sms.sms_type, "description": SMS_TYPES[sms.sms_type]},
            "source_address_type": {"id": sms.source_address_type},
        }
        if version == 2:
            data["source_address_type"]["description"] = SOURCE_ADDRESS_TYPES[
                sms.source_address_type
            ]
            data["gsm_map_error"] = None
            data["pid"] = 0
            data["endpoint"] = {"id": sim.endpoint_id if sim else None, "name": sms.iccid}
            data["sim_id"] = sim.endpoint_id + 7_000_000 if sim else None
        return data

    async def _list_sms(self, request: web.Request) -> web.StreamResponse:
        sim = self._sim_or_error(request)
        if isinstance(sim, web.Response):
            return sim
        version = _version(request)
        items = sorted(
            (s for s in self.sms.values() if s.iccid == sim.iccid and self._visible(s)),
            key=lambda s: (s.submit_date, s.id),
        )
        sort = request.query.get("sort")
        if version == 1 and sort is not None:
            if self.v1_sort == "rejected":
                return _fail(request, 400, "BadRequest", f"Invalid sort criteria '{sort}'")
            if self.v1_sort == "honoured" and sort == "-submit_date":
                items.reverse()
        body = [self._sms_json(s, version) for s in items]
        if version == 1:
            return self._page(request, body, "pageSize", 10, 100)
        return self._page(request, body, "per_page", 20, 1000)

    def _sms_or_error(self, request: web.Request) -> SimSms | web.Response:
        sim = self._sim_or_error(request)
        if isinstance(sim, web.Response):
            return sim
        raw = request.match_info["sms_id"]
        sms = self.sms.get(int(raw)) if raw.isdigit() else None
        if sms is None or sms.iccid != sim.iccid or not self._visible(sms):
            return _fail(request, 404, "NotFound", f"SMS {raw} not found")
        return sms

    async def _get_sms(self, request: web.Request) -> web.StreamResponse:
        sms = self._sms_or_error(request)
        if isinstance(sms, web.Response):
            return sms
        return web.json_response(self._sms_json(sms, _version(request)))

    def _invalid_send(self, body: Any) -> str | None:
        """Why a send body is refused (None if it is fine)."""
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        if unknown := sorted(set(body) - SEND_FIELDS):
            return f"unknown fields: {', '.join(unknown)}"
        payload, source = body.get("payload"), body.get("source_address")
        udh, dcs, source_type = body.get("udh"), body.get("dcs"), body.get("source_address_type")
        problem = None
        if not isinstance(payload, str) or not payload:
            problem = "payload is required"
        elif not isinstance(source, str) or not source:
            problem = "source_address is required"
        elif source_type is not None and (
            not isinstance(source_type, dict) or source_type.get("id") not in SOURCE_ADDRESS_TYPES
        ):
            problem = "source_address_type.id must be 145, 161 or 208"
        elif dcs is not None and dcs not in DCS_VALUES:
            problem = "dcs must be 0, 4 or 8"
        elif udh is not None and not _is_hex(udh):
            problem = "udh must be a hex string"
        return problem or _payload_problem(payload, udh, dcs)

    async def _send_sms(self, request: web.Request) -> web.StreamResponse:
        sim = self._sim_or_error(request)
        if isinstance(sim, web.Response):
            return sim
        version = _version(request)
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _fail(request, 400, "BadRequest", "the body is not JSON")
        if problem := self._invalid_send(body):
            return _fail(request, 400, "BadRequest", problem)
        now = _now()
        expiry = now + DEFAULT_VALIDITY
        if body.get("expiry_date") is not None:
            try:
                expiry = datetime.fromisoformat(str(body["expiry_date"]))
            except ValueError:
                return _fail(request, 400, "BadRequest", "expiry_date must be ISO 8601")
            if expiry.tzinfo is None:
                expiry = expiry.replace(tzinfo=UTC)
        source_type = body.get("source_address_type")
        sms = SimSms(
            id=self._new_sms_id(),
            iccid=sim.iccid,
            payload=body["payload"],
            udh=body.get("udh") or None,
            dcs=body.get("dcs"),
            source_address=body["source_address"],
            source_address_type=source_type["id"] if source_type else 161,
            status_id=self.pending_status,
            expiry_date=expiry,
            submit_date=now,
        )
        self.sms[sms.id] = sms
        _LOGGER.info("SMS to SIM %s (%s): %r", sim.iccid, sim.label, sms.payload)
        if not self._closed:
            self._sms_tasks[sms.id] = self._spawn(self._run_machine(sms, sim.behavior))
        if version == 2:
            return web.json_response({"id": str(sms.id)}, status=201)
        headers = {}
        if self.v1_location:
            headers["Location"] = f"{self.api_url}/v1/sims/{sim.iccid}/sms/{sms.id}"
        return web.Response(status=201, headers=headers)

    async def _cancel_sms(self, request: web.Request) -> web.StreamResponse:
        sms = self._sms_or_error(request)
        if isinstance(sms, web.Response):
            return sms
        if sms.sms_type != 1 or sms.status_id in FINAL or sms.canceled:
            status = self.cancel_final_status
            token = {400: "BadRequest", 404: "NotFound", 409: "Conflict"}.get(status, "NotAllowed")
            message = f"SMS {sms.id} cannot be canceled: {self.status_descriptions[sms.status_id]}"
            if status == 422:
                message = "The following SIMs are expired and cannot be modified via API"
            return _fail(request, status, token, message)
        self._stop_machine(sms.id)
        sms.canceled = True
        if self.canceled_status is not None:
            sms.status_id = self.canceled_status
        if _version(request) == 2:
            return web.json_response({"id": str(sms.id)})
        return web.Response(status=204)

    # -- state machine

    async def _run_machine(self, sms: SimSms, behavior: str) -> None:
        if behavior == "offline":
            await asyncio.sleep(self.delivery_delay / 2)
            sms.retry_count += 1
            sms.last_delivery_attempt = _now()
            self._set_status(sms, self.buffered_status)
            delay = max(0.0, (sms.expiry_date - _now()).total_seconds())
            loop = asyncio.get_running_loop()
            self._timers[sms.id] = loop.call_later(delay, self._expire, sms.id)
            return
        await asyncio.sleep(self.delivery_delay)
        if behavior == "failing":
            sms.last_delivery_attempt = _now()
            self._set_status(sms, 5)
            return
        sms.delivery_date = sms.last_delivery_attempt = _now()
        self._set_status(sms, 4)
        if behavior == "echo" and sms.iccid in self.sims:
            await self.send_mo(sms.iccid, f"ECHO: {sms.payload}")

    def _expire(self, sms_id: int) -> None:
        self._timers.pop(sms_id, None)
        sms = self.sms.get(sms_id)
        if sms is not None and sms.status_id not in FINAL and not sms.canceled:
            self._set_status(sms, self.expiry_status)

    def _stop_machine(self, sms_id: int) -> None:
        task = self._sms_tasks.pop(sms_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        timer = self._timers.pop(sms_id, None)
        if timer is not None:
            timer.cancel()

    def _set_status(self, sms: SimSms, status_id: int) -> None:
        if status_id not in self.status_descriptions:
            raise ValueError(f"unknown status {status_id}")
        sms.status_id = status_id
        if status_id in FINAL:
            sms.final_date = _now()
            self._sms_tasks.pop(sms.id, None)
        if status_id in self.dlr_statuses and sms.sms_type == 1 and not self._closed:
            # The report says the state it was made for, even if it arrives after a later one.
            self._spawn(self._forward("PATCH", self._dlr_body(sms, status_id)))

    # -- SMS Forwarder

    def _dlr_body(self, sms: SimSms, status_id: int) -> dict[str, Any]:
        """A delivery report shaped like the Data Streamer's (the forwarder's is undocumented)."""
        sim = self.sims.get(sms.iccid)
        own_number = 88_000_000 + sms.id
        rest_id, other_id = (
            (sms.id, str(551_734_281_731_000_000 + sms.id))
            if self.dlr_id_field == "id"
            else (own_number, str(sms.id))
        )
        return {
            "id": rest_id,
            "submit_date": _v2_date(sms.submit_date),
            "final_date": _v2_date(sms.final_date),
            "organisation": {"id": ORGANISATION_ID},
            "endpoint": {"id": sim.endpoint_id if sim else None, "name": sms.iccid},
            "status": {"status": self.status_descriptions[status_id], "id": status_id},
            "detail": {"sms": {"id": other_id}},
        }

    def _mo_body(
        self, sim: SimCard, sms: SimSms, number: int, parts: list[SimSms]
    ) -> dict[str, Any]:
        payload = sms.payload
        if sms.dcs == 8 and self.mo_ucs2_payload == "hex":
            payload = payload.encode("utf-16-be").hex().upper()
        identifier = parts[0].id
        if self.mo_variant == "real":
            return {
                "dcs": str(sms.dcs),
                "dest_address": sms.dest_address,
                "endpoint": {"id": str(sim.endpoint_id), "name": sim.iccid},
                "id": str(sms.id),
                "multi_part_info": {
                    "identifier": str(identifier),
                    "partno": number,
                    "total": len(parts),
                },
                "organisation": {"id": str(ORGANISATION_ID)},
                "payload": payload,
                "pid": "0",
                "smsforwarderId": self._forwarder_id,
                "source_address": sim.msisdn,
                "submit_date": _forwarder_date(sms.submit_date),
            }
        return {
            "id": sms.id,
            "payload": payload,
            "submit_date": _v2_date(sms.submit_date),
            "destination_address": sms.dest_address,
            "source_address": sim.msisdn,
            "dcs": sms.dcs,
            "endpoint": {"id": sim.endpoint_id, "name": sim.iccid},
            "organisiation": {"id": ORGANISATION_ID},
            "multi_part_info": {"identifier": identifier, "partno": number, "total": len(parts)},
        }

    async def _attempt(self, method: str, body: dict[str, Any]) -> bool:
        """One forwarder call; True when it was answered 200."""
        if self.forwarder_url is None or self._closed:
            return False
        status = await send_callback(
            self._client_session(),
            self.callback_log,
            method,
            self.forwarder_url,
            json_body=body,
            faults=self.faults,
        )
        return status == 200

    async def _forward(self, method: str, body: dict[str, Any], mo: SimSms | None = None) -> None:
        """Call the forwarder; repeat in the background until a 200 or the simulated 24 h."""
        if self.forwarder_url is None:
            return
        if await self._attempt(method, body):
            self._acknowledged(mo)
        elif not self._closed:
            self._spawn(self._retry(method, body, mo))

    async def _retry(self, method: str, body: dict[str, Any], mo: SimSms | None) -> None:
        for _ in range(self.forwarder_max_attempts - 1):
            await asyncio.sleep(self.forwarder_retry_delay)
            if await self._attempt(method, body):
                self._acknowledged(mo)
                return
        _LOGGER.warning("SMS Forwarder gave up on a %s after 24 h (simulated)", method)
        self.forwarder_failures.append((method, body))

    def _acknowledged(self, mo: SimSms | None) -> None:
        """An MO is final once the forwarder endpoint took it."""
        if mo is not None and mo.status_id not in FINAL:
            mo.status_id = 4
            mo.final_date = mo.delivery_date = _now()


def _version(request: web.Request) -> int:
    return int(request.match_info["version"])


def _auth_error(code: str, message: str) -> web.Response:
    return web.json_response({"statusCode": 400, "errorCode": code, "message": message}, status=400)


def _fail(request: web.Request, status: int, token: str, message: str) -> web.Response:
    """A v2 error body, or the empty body v1 documents."""
    if _version(request) == 1:
        return web.Response(status=status)
    codes = {400: 1000, 404: 1001, 409: 1002, 422: 1003}
    return web.json_response(
        {"error_code": codes.get(status, 1999), "error_token": token, "message": message},
        status=status,
    )


def _payload_problem(payload: str, udh: str | None, dcs: int | None) -> str | None:
    """Whether one SMS can carry the payload (140 octets less the UDH)."""
    room = MAX_OCTETS - (len(udh) // 2 if udh else 0)
    if dcs == 8:
        if len(payload.encode("utf-16-be")) > room:
            return "payload too long for one UCS-2 SMS"
        return None
    if dcs == 4:
        if not _is_hex(payload) or len(payload) // 2 > room:
            return "payload must be hex of at most one SMS"
        return None
    if not _is_gsm(payload):
        return "payload is not in the GSM 03.38 alphabet (use dcs 8)"
    if _septets(payload) > room * 8 // 7:
        return "payload too long for one GSM-7 SMS"
    return None


def _luhn(digits: str) -> int:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10
