"""emnify REST API v1 simulator: authentication, endpoints, SMS, service-profile callbacks.

Speaks the wire format of `shared/reference/emnify-api.md`, including the quirks recorded from
real traffic (string numbers, `endpoint_id` instead of `endpoint{}`, upper-case status
descriptions, 201 with an empty text/html body and a `Location`, empty 422 bodies, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
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

_LOGGER = logging.getLogger("simulator.emnify")

API = "/api/v1"
JWT_AUDIENCE = "/api/v1/authentication"
AUTH_FAILURES_BEFORE_BLOCK = 3
AUTH_BLOCK_SECONDS = 300
DEFAULT_VALIDITY = timedelta(hours=24)

STATUS_DESCRIPTIONS = {
    1: "DELIVERY ATTEMPT PENDING",
    2: "IN PROGRESS",
    3: "BUFFERED",
    4: "DELIVERED",
    5: "FAILED",
    6: "EXPIRED",
    7: "CANCELED",
}
FINAL_WITH_DLR = frozenset({4, 5, 6})
CANCELLABLE = frozenset({1, 3})
SMS_TYPES = {1: "MT", 2: "MO"}
SOURCE_ADDRESS_TYPES = {145: "International", 161: "National", 208: "Alphanumeric"}
ESME_INTERFACE_TYPES = {1: "RestAPI", 2: "SMPP"}
BEHAVIORS = frozenset({"online", "offline", "echo", "failing"})


def _rest_date(value: datetime | None) -> str | None:
    """Format a date like the REST API: 2022-08-04T01:45:24.000+0000."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}+0000"
    )


def _callback_date(value: datetime | None) -> str | None:
    """Format a date like the callbacks: 2021-10-29 07:13:34 (UTC, no zone)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _now() -> datetime:
    return datetime.now(UTC)


def _error(status: int, code: int, token: str, message: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"error_code": code, "error_token": token, "message": message, **extra}, status=status
    )


def _empty(status: int) -> web.Response:
    """An empty text/html answer, as emnify sends for 201 creations and some 422s."""
    return web.Response(status=status, body=b"", content_type="text/html", charset="UTF-8")


def _not_found(kind: str, ident: object) -> web.Response:
    return _error(404, 1401, "InvalidReference", f"{kind} with Id '{ident}' not found.")


def _bad_id(value: str) -> web.Response:
    return _error(400, 1000, "BadRequest", f"Invalid id '{value}'.")


@dataclass
class SimEndpoint:
    """One endpoint (device) of the simulated organisation."""

    id: int
    name: str
    behavior: str
    msisdn: str
    iccid: str
    imsi: str
    imei: str
    tags: str | None
    service_profile_id: int
    with_sim: bool
    created: datetime = field(default_factory=_now)

    @property
    def tag_list(self) -> list[str]:
        """The endpoint's tags as a list."""
        return [t.strip() for t in (self.tags or "").split(",") if t.strip()]


@dataclass
class SimSms:
    """One SMS stored by the simulator (MT sent by the API user, or MO sent by a device)."""

    id: int
    endpoint_id: int
    payload: str
    udh: str | None
    dcs: int | None
    source_address: str
    status_id: int
    expiry_date: datetime
    sms_type: int = 1
    source_address_type: int = 161
    dest_address: str | None = None
    submit_date: datetime = field(default_factory=_now)
    final_date: datetime | None = None


@dataclass
class SimServiceProfile:
    """A service profile (the owner of the SMS callback)."""

    id: int
    name: str
    api_callback_id: int | None = None
    api_secret_id: int | None = None
    esme_interface_type: int | None = None


@dataclass
class SimApiCallback:
    """A registered callback URL."""

    id: int
    url: str
    purpose: str
    created: datetime = field(default_factory=_now)


@dataclass
class SimApiSecret:
    """A registered callback signing key."""

    id: int
    purpose: str
    secret: str


class EmnifySimulator(BackgroundWork):
    """In-process emnify API. See simulator/README.md for the control API."""

    def __init__(
        self,
        application_token: str = "demo-application-token",  # noqa: S107
        org_id: int = 4711,
        org_name: str = "Demo Fleet",
        delivery_delay: float = 0.2,
    ) -> None:
        """Create an empty organisation with service profile 1 ("Default Policy")."""
        self.application_token = application_token
        self.org_id = org_id
        self.org_name = org_name
        self.delivery_delay = delivery_delay
        self.base_url: str | None = None
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.callback_log: list[CallbackAttempt] = []
        self.auth_count = 0
        # Which states PATCH a delivery report. emnify documents none; final states are the
        # inferred default, and non-final reports (IN PROGRESS, BUFFERED) must be survivable.
        self.report_statuses: frozenset[int] = FINAL_WITH_DLR
        # Report this status (and PATCH it, awaited) before answering the send: a report that
        # overtakes the send call's own answer.
        self.report_before_response: int | None = None
        self.endpoints: dict[int, SimEndpoint] = {}
        self.sms: dict[int, SimSms] = {}
        self.service_profiles: dict[int, SimServiceProfile] = {
            1: SimServiceProfile(1, "Default Policy")
        }
        self.api_callbacks: dict[int, SimApiCallback] = {}
        self.api_secrets: dict[int, SimApiSecret] = {}
        self._signing_key = secrets.token_hex(32)
        self._app_token_id = 1234
        self._issued: list[str] = []
        self._revoked: set[str] = set()
        self._auth_failures = 0
        self._auth_blocked_until = 0.0
        self._next_endpoint_id = 1
        self._next_sms_id = 19_649_276
        self._next_callback_id = 1
        self._next_secret_id = 1
        self._init_background()
        self._sms_tasks: dict[int, asyncio.Task[Any]] = {}
        # MO parts kept back by send_mo(hold=...): (endpoint id, callback body).
        self.held_mo: list[tuple[int, dict[str, Any]]] = []
        self.app = web.Application(
            middlewares=[
                fault_middleware(
                    self.faults,
                    self.requests,
                    rate_limit_body=lambda: _error(
                        429, 1105, "TooManyRequests", "Too many requests, slow down."
                    ),
                ),
                self._auth_middleware,
            ]
        )
        self._add_routes()

    # ------------------------------------------------------------------ control API

    def add_endpoint(
        self,
        name: str,
        behavior: str = "online",
        msisdn: str | None = None,
        tags: str | list[str] | tuple[str, ...] | None = None,
        service_profile_id: int = 1,
        with_sim: bool = True,
    ) -> SimEndpoint:
        """Add an endpoint; behavior decides what happens to SMS sent to it."""
        if behavior not in BEHAVIORS:
            raise ValueError(f"unknown behavior {behavior!r}")
        ident = self._next_endpoint_id
        self._next_endpoint_id += 1
        if service_profile_id not in self.service_profiles:
            self.service_profiles[service_profile_id] = SimServiceProfile(
                service_profile_id, f"Service Profile {service_profile_id}"
            )
        if isinstance(tags, list | tuple):
            tags = ",".join(tags)
        endpoint = SimEndpoint(
            id=ident,
            name=name,
            behavior=behavior,
            msisdn=msisdn or f"423663920{ident:06d}",
            iccid=f"8988303000{ident:09d}",
            imsi=f"295050901{ident:06d}",
            imei=f"35546311{ident:08d}",
            tags=tags,
            service_profile_id=service_profile_id,
            with_sim=with_sim,
        )
        self.endpoints[ident] = endpoint
        return endpoint

    def remove_endpoint(self, endpoint_id: int) -> None:
        """Delete an endpoint (its SMS paths answer 404 afterwards)."""
        self.endpoints.pop(endpoint_id, None)

    def expire_tokens(self) -> None:
        """Make every JWT issued so far answer 401 TokenExpired."""
        self._revoked.update(self._issued)

    def set_sms_status(self, sms_id: int, status_id: int) -> None:
        """Force an SMS into a state; stops its state machine; final states send a DLR."""
        self._stop_machine(sms_id)
        self._set_status(self.sms[sms_id], status_id)

    def register_callback(
        self, url: str, secret: str | None = None, service_profile_id: int = 1
    ) -> int:
        """Create an api_callback (and api_secret) and attach it to a profile; return its id."""
        callback = self._create_callback(url, "Simulator")
        profile = self.service_profiles.setdefault(
            service_profile_id,
            SimServiceProfile(service_profile_id, f"Service Profile {service_profile_id}"),
        )
        profile.api_callback_id = callback.id
        profile.api_secret_id = (
            self._create_secret("Simulator", secret).id if secret is not None else None
        )
        profile.esme_interface_type = 1
        return callback.id

    async def send_mo(
        self,
        endpoint_id: int,
        text: str,
        dest_address: str = "12345",
        parts: int = 1,
        duplicate: bool = False,
        reverse: bool = False,
        hold: Collection[int] = (),
    ) -> list[int]:
        """A device sends an SMS; POSTs it (one body per part) to the profile's callback.

        Returns the MO ids in part order. The SMS is also stored in the endpoint's SMS list.
        Callbacks are only sent for A2P destinations (<= 7 digits), as on the real platform.
        Parts whose number is in `hold` stay in the network until `release_mo()`, as parts
        of one SMS can arrive minutes apart.
        """
        endpoint = self.endpoints[endpoint_id]
        parts = max(1, parts)
        size = max(1, math.ceil(len(text) / parts))
        chunks = [text[i * size : (i + 1) * size] for i in range(parts)]
        now = _now()
        ids: list[int] = []
        bodies: list[dict[str, Any]] = []
        identifier: int | None = None
        for number, chunk in enumerate(chunks, start=1):
            sms = SimSms(
                id=self._new_sms_id(),
                endpoint_id=endpoint.id,
                payload=chunk,
                udh=None,
                dcs=0,
                source_address=endpoint.msisdn,
                status_id=4,
                expiry_date=now + DEFAULT_VALIDITY,
                sms_type=2,
                source_address_type=145,
                dest_address=dest_address,
                submit_date=now,
                final_date=now,
            )
            if identifier is None:
                identifier = sms.id
            self.sms[sms.id] = sms
            ids.append(sms.id)
            bodies.append(
                {
                    "id": sms.id,
                    "pid": 0,
                    "dcs": 0,
                    "source_address": endpoint.msisdn,
                    "dest_address": dest_address,
                    "endpoint": {"id": endpoint.id, "name": endpoint.name},
                    "organisation": {"id": self.org_id},
                    "multi_part_info": {
                        "partno": number,
                        "total": parts,
                        "identifier": identifier,
                    },
                    "submit_date": _callback_date(now),
                    "payload": chunk,
                }
            )
        _LOGGER.info("SMS from endpoint %s (%s): %r", endpoint.id, endpoint.name, text)
        if not (dest_address.isdigit() and len(dest_address) <= 7):  # not A2P: no callback
            return ids
        if reverse:
            bodies.reverse()
        for body in bodies:
            if body["multi_part_info"]["partno"] in hold:
                self.held_mo.append((endpoint.id, body))
                continue
            for _ in range(2 if duplicate else 1):
                await self._post_mo(endpoint, body)
        return ids

    async def release_mo(self) -> None:
        """Send the MO parts `send_mo(hold=...)` kept back, to the callback configured now."""
        held, self.held_mo = self.held_mo, []
        for endpoint_id, body in held:
            endpoint = self.endpoints.get(endpoint_id)
            if endpoint is not None:
                await self._post_mo(endpoint, body)

    async def _post_mo(self, endpoint: SimEndpoint, body: dict[str, Any]) -> None:
        target = self._callback_target(endpoint)
        if target is None:
            return
        url, headers_factory = target
        await send_callback(
            self._client_session(),
            self.callback_log,
            "POST",
            url,
            json_body=body,
            headers=headers_factory(),
            faults=self.faults,
        )

    async def close(self) -> None:
        """Cancel every timer and task, close the callback session."""
        await self._close_background()
        self._sms_tasks.clear()

    # ------------------------------------------------------------------ internals

    def _add_routes(self) -> None:
        r = self.app.router
        r.add_post(f"{API}/authenticate", self._authenticate)
        r.add_get(f"{API}/endpoint", self._list_endpoints)
        r.add_get(f"{API}/endpoint/{{endpoint_id}}", self._get_endpoint)
        r.add_get(f"{API}/endpoint/{{endpoint_id}}/sms", self._list_sms)
        r.add_post(f"{API}/endpoint/{{endpoint_id}}/sms", self._send_sms)
        r.add_get(f"{API}/endpoint/{{endpoint_id}}/sms/{{sms_id}}", self._get_sms)
        r.add_delete(f"{API}/endpoint/{{endpoint_id}}/sms/{{sms_id}}", self._cancel_sms)
        r.add_get(f"{API}/service_profile/{{profile_id}}", self._get_profile)
        r.add_patch(f"{API}/service_profile/{{profile_id}}", self._patch_profile)
        r.add_get(f"{API}/api_callback", self._list_callbacks)
        r.add_post(f"{API}/api_callback", self._post_callback)
        r.add_get(f"{API}/api_callback/{{callback_id}}", self._get_callback)
        r.add_delete(f"{API}/api_callback/{{callback_id}}", self._delete_callback)
        r.add_get(f"{API}/api_secret", self._list_secrets)
        r.add_post(f"{API}/api_secret", self._post_secret)
        r.add_delete(f"{API}/api_secret/{{secret_id}}", self._delete_secret)

    def _location(self, request: web.Request, path: str) -> str:
        base = self.base_url or str(request.url.origin())
        return f"{base.rstrip('/')}{path}"

    def _new_sms_id(self) -> int:
        ident = self._next_sms_id
        self._next_sms_id += 1
        return ident

    # -- authentication

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == f"{API}/authenticate":
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return web.json_response(
                {"message": "token contains an invalid number of segments"},
                status=401,
                headers={"x-amzn-ErrorType": "AccessDeniedException"},
            )
        if token in self._revoked:
            return _error(401, 1103, "TokenExpired", "Token has expired")
        try:
            jwt.decode(token, self._signing_key, algorithms=["HS384"], audience=JWT_AUDIENCE)
        except jwt.ExpiredSignatureError:
            return _error(401, 1103, "TokenExpired", "Token has expired")
        except jwt.InvalidTokenError:
            return _error(401, 1102, "InvalidToken", "Token is invalid")
        return await handler(request)

    async def _authenticate(self, request: web.Request) -> web.StreamResponse:
        if time.monotonic() < self._auth_blocked_until:
            return _error(
                429,
                1105,
                "TooManyRequests",
                "Too many failed authentication attempts, try again in 5 minutes.",
            )
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("application_token") != self.application_token:
            self._auth_failures += 1
            if self._auth_failures >= AUTH_FAILURES_BEFORE_BLOCK:
                self._auth_blocked_until = time.monotonic() + AUTH_BLOCK_SECONDS
                self._auth_failures = 0
            return web.Response(status=401)
        self._auth_failures = 0
        now = int(time.time())
        claims = {
            "aud": JWT_AUDIENCE,
            "esc.app": self._app_token_id,
            "api_key": secrets.token_hex(16),
            "esc.org": self.org_id,
            "esc.orgName": self.org_name,
            "iss": "https://cdn.emnify.net/api",
            "iat": now,
            "exp": now + int(self.faults.token_ttl),
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._signing_key, algorithm="HS384")
        self._issued.append(token)
        self.auth_count += 1
        return web.json_response({"auth_token": token})

    # -- endpoints

    def _endpoint_json(self, ep: SimEndpoint) -> dict[str, Any]:
        profile = self.service_profiles.get(ep.service_profile_id)
        data: dict[str, Any] = {
            "id": ep.id,
            "created": _rest_date(ep.created),
            "last_updated": _rest_date(ep.created),
            "name": ep.name,
            "tags": ep.tags,
            "ip_address": f"10.189.{ep.id // 256 % 256}.{ep.id % 256}",
            "imei": ep.imei,
            "imei_lock": False,
            "status": {"id": 0, "description": "Enabled"},
            "tariff_profile": {"id": 539766, "name": "Demo Tariff"},
            "service_profile": {
                "id": ep.service_profile_id,
                "name": profile.name if profile else "",
            },
            "ip_address_space": {"id": 14865},
        }
        if ep.with_sim:
            data["sim"] = {
                "id": 4_400_000 + ep.id,
                "iccid": ep.iccid,
                "iccid_with_luhn": ep.iccid + "7",
                "sim_profile_type_id": 1,
                "status": {"id": 1, "description": "Activated"},
                "imsi": ep.imsi,
                "msisdn": ep.msisdn,
            }
        return data

    def _matches(self, ep: SimEndpoint, criteria: list[tuple[str, str]]) -> bool:
        for key, value in criteria:
            if key == "tags" and value.lower() not in [t.lower() for t in ep.tag_list]:
                return False
            if key == "name" and value.lower() not in ep.name.lower():
                return False
            if key == "id" and value != str(ep.id):
                return False
            if key == "status" and value != "0":
                return False
        return True

    async def _list_endpoints(self, request: web.Request) -> web.StreamResponse:
        criteria: list[tuple[str, str]] = []
        for item in filter(None, request.query.get("q", "").split(",")):
            key, sep, value = item.partition(":")
            if not sep or key not in {"tags", "name", "id", "status"}:
                return _error(422, 1301, "InvalidQueryCriteria", f"Invalid query criteria '{item}'")
            criteria.append((key, value))
        try:
            per_page = int(request.query.get("per_page", "1000"))
        except ValueError:
            per_page = 1000
        per_page = 1000 if per_page < 1 else min(per_page, 1000)
        try:
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            page = 1
        matching = [ep for _, ep in sorted(self.endpoints.items()) if self._matches(ep, criteria)]
        total_pages = max(1, math.ceil(len(matching) / per_page))
        page = min(page, total_pages)
        chunk = matching[(page - 1) * per_page : page * per_page]
        headers = {
            "X-Total-Count": str(len(matching)),
            "X-Total-Pages": str(total_pages),
            "X-Current-Page": str(page),
            "X-Count-Per-Page": str(per_page),
        }
        return web.json_response([self._endpoint_json(ep) for ep in chunk], headers=headers)

    def _endpoint_or_error(self, raw: str) -> SimEndpoint | web.Response:
        if not raw.isdigit():
            return _bad_id(raw)
        endpoint = self.endpoints.get(int(raw))
        if endpoint is None:
            return _not_found("Endpoint", raw)
        return endpoint

    async def _get_endpoint(self, request: web.Request) -> web.StreamResponse:
        endpoint = self._endpoint_or_error(request.match_info["endpoint_id"])
        if isinstance(endpoint, web.Response):
            return endpoint
        return web.json_response(self._endpoint_json(endpoint))

    # -- SMS

    def _sms_json(self, sms: SimSms) -> dict[str, Any]:
        endpoint = self.endpoints.get(sms.endpoint_id)
        final = sms.status_id in FINAL_WITH_DLR
        return {
            "id": sms.id,
            "dlr_status_id": "4" if final else "1",
            "organisation_id": str(self.org_id),
            "endpoint_id": str(sms.endpoint_id),
            "sim_id": str(4_400_000 + sms.endpoint_id),
            "iccid": endpoint.iccid if endpoint else None,
            "msisdn": endpoint.msisdn if endpoint else None,
            "imsi": "",
            "msc": None,
            "called_party_prefix": None,
            "submit_date": _rest_date(sms.submit_date),
            "delivery_date": _rest_date(sms.submit_date),
            "expiry_date": _rest_date(sms.expiry_date),
            "final_date": _rest_date(sms.final_date),
            "retry_date": None,
            "last_delivery_attempt": _rest_date(sms.final_date or sms.submit_date),
            "retry_count": "0",
            "gsm_map_error": None,
            "dcs": str(sms.dcs or 0),
            "pid": "0",
            "udh": sms.udh or "",
            "payload": sms.payload,
            "source_address": sms.source_address,
            "registered_delivery": "0",
            "p2p_ext": 0,
            "smpp_bind_id": None,
            "smpp_dlr_bind_id": None,
            "status": {"description": STATUS_DESCRIPTIONS[sms.status_id], "id": sms.status_id},
            "sms_type": {"description": SMS_TYPES[sms.sms_type], "id": sms.sms_type},
            "source_address_type": {
                "description": SOURCE_ADDRESS_TYPES[sms.source_address_type],
                "id": sms.source_address_type,
            },
            "esme_interface_type": {"description": "RestAPI", "id": 1},
        }

    async def _list_sms(self, request: web.Request) -> web.StreamResponse:
        endpoint = self._endpoint_or_error(request.match_info["endpoint_id"])
        if isinstance(endpoint, web.Response):
            return endpoint
        items = sorted(
            (s for s in self.sms.values() if s.endpoint_id == endpoint.id),
            key=lambda s: s.id,
            reverse=True,
        )
        return web.json_response([self._sms_json(s) for s in items])

    def _sms_or_error(self, request: web.Request) -> SimSms | web.Response:
        endpoint = self._endpoint_or_error(request.match_info["endpoint_id"])
        if isinstance(endpoint, web.Response):
            return endpoint
        raw = request.match_info["sms_id"]
        if not raw.isdigit():
            return _bad_id(raw)
        sms = self.sms.get(int(raw))
        if sms is None or sms.endpoint_id != endpoint.id:
            return _not_found("SMS", raw)
        return sms

    async def _get_sms(self, request: web.Request) -> web.StreamResponse:
        sms = self._sms_or_error(request)
        if isinstance(sms, web.Response):
            return sms
        return web.json_response(self._sms_json(sms))

    async def _send_sms(self, request: web.Request) -> web.StreamResponse:
        endpoint = self._endpoint_or_error(request.match_info["endpoint_id"])
        if isinstance(endpoint, web.Response):
            return endpoint
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _empty(422)
        if not isinstance(body, dict):
            return _empty(422)
        payload = body.get("payload")
        if not isinstance(payload, str) or not payload:
            return _empty(422)
        udh = body.get("udh")
        dcs = body.get("dcs")
        source = body.get("source_address", "")
        source_type = body.get("source_address_type")
        if (
            (udh is not None and not _is_hex(udh))
            or (dcs is not None and dcs not in (0, 8))
            or not isinstance(source, str)
            or (source_type is not None and not _valid_type(source_type))
        ):
            return _empty(422)
        if not endpoint.with_sim:
            return _error(
                422, 1406, "NotAllowed", f"Endpoint with Id '{endpoint.id}' has no SIM assigned."
            )
        now = _now()
        expiry = now + DEFAULT_VALIDITY
        if body.get("expiry_date") is not None:
            try:
                expiry = datetime.fromisoformat(str(body["expiry_date"]))
            except ValueError:
                return _error(
                    422, 1403, "InvalidFormat", "expiry_date must be an ISO 8601 date-time"
                )
            if expiry.tzinfo is None:
                expiry = expiry.replace(tzinfo=UTC)
        if source_type is not None:
            address_type = source_type["id"]
        elif source and not source.lstrip("+").isdigit():
            address_type = 208
        elif source.startswith("+") or len(source) >= 8:
            address_type = 145
        else:
            address_type = 161
        sms = SimSms(
            id=self._new_sms_id(),
            endpoint_id=endpoint.id,
            payload=payload,
            udh=udh or None,
            dcs=dcs,
            source_address=source,
            status_id=1,
            expiry_date=expiry,
            source_address_type=address_type,
            submit_date=now,
        )
        self.sms[sms.id] = sms
        _LOGGER.info("SMS to endpoint %s (%s): %r", endpoint.id, endpoint.name, payload)
        if self.report_before_response is not None:
            sms.status_id = self.report_before_response
            if sms.status_id in FINAL_WITH_DLR:
                sms.final_date = now
            await self._send_dlr(sms)
        elif not self._closed:
            self._sms_tasks[sms.id] = self._spawn(self._run_machine(sms, endpoint.behavior))
        return web.Response(
            status=201,
            body=b"",
            content_type="text/html",
            charset="UTF-8",
            headers={
                "Location": self._location(request, f"{API}/endpoint/{endpoint.id}/sms/{sms.id}")
            },
        )

    async def _cancel_sms(self, request: web.Request) -> web.StreamResponse:
        sms = self._sms_or_error(request)
        if isinstance(sms, web.Response):
            return sms
        if sms.sms_type != 1 or sms.status_id not in CANCELLABLE:
            return _error(
                409,
                1406,
                "NotAllowed",
                f"SMS with Id '{sms.id}' cannot be canceled, status is "
                f"{STATUS_DESCRIPTIONS[sms.status_id]}.",
            )
        self._stop_machine(sms.id)
        sms.status_id = 7
        sms.final_date = None
        return web.Response(status=204)

    # -- state machine

    async def _run_machine(self, sms: SimSms, behavior: str) -> None:
        step = self.delivery_delay / 2
        await asyncio.sleep(step)
        if behavior == "offline":
            self._set_status(sms, 3)
            delay = max(0.0, (sms.expiry_date - _now()).total_seconds())
            loop = asyncio.get_running_loop()
            self._timers[sms.id] = loop.call_later(delay, self._expire, sms.id)
            return
        if behavior == "failing":
            await asyncio.sleep(step)
            self._set_status(sms, 5)
            return
        self._set_status(sms, 2)
        await asyncio.sleep(step)
        self._set_status(sms, 4)
        if behavior == "echo":
            address = sms.source_address
            if address.isdigit() and sms.source_address_type != 208:
                await self.send_mo(sms.endpoint_id, f"ECHO: {sms.payload}", dest_address=address)

    def _expire(self, sms_id: int) -> None:
        self._timers.pop(sms_id, None)
        sms = self.sms.get(sms_id)
        if sms is not None and sms.status_id in CANCELLABLE and not self._closed:
            self._set_status(sms, 6)

    def _stop_machine(self, sms_id: int) -> None:
        task = self._sms_tasks.pop(sms_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        timer = self._timers.pop(sms_id, None)
        if timer is not None:
            timer.cancel()

    def _set_status(self, sms: SimSms, status_id: int) -> None:
        if status_id not in STATUS_DESCRIPTIONS:
            raise ValueError(f"unknown status {status_id}")
        sms.status_id = status_id
        if status_id in FINAL_WITH_DLR:
            sms.final_date = _now()
            self._sms_tasks.pop(sms.id, None)
        elif status_id == 7:
            sms.final_date = None
        if status_id in self.report_statuses and sms.sms_type == 1 and not self._closed:
            # The report says the state it was made for, even if it arrives after a later one.
            self._spawn(self._send_dlr(sms, status_id))

    # -- callbacks

    def _callback_target(self, endpoint: SimEndpoint) -> tuple[str, Any] | None:
        """(url, headers factory) of the endpoint's profile callback, None if not configured."""
        profile = self.service_profiles.get(endpoint.service_profile_id)
        if profile is None or profile.esme_interface_type != 1:
            return None
        callback = self.api_callbacks.get(profile.api_callback_id or -1)
        if callback is None:
            return None
        secret = self.api_secrets.get(profile.api_secret_id or -1)

        def headers() -> dict[str, str]:
            if secret is None:
                return {}
            now = int(time.time())
            token = jwt.encode(
                {"iss": "https://cdn.emnify.net", "iat": now, "exp": now + 300},
                secret.secret,
                algorithm="HS384",
            )
            return {"Authorization": f"Bearer {token}"}

        return callback.url, headers

    async def _send_dlr(self, sms: SimSms, status_id: int | None = None) -> None:
        endpoint = self.endpoints.get(sms.endpoint_id)
        if endpoint is None:
            return
        target = self._callback_target(endpoint)
        if target is None:
            return
        url, headers = target
        status_id = sms.status_id if status_id is None else status_id
        body = {
            "id": sms.id,
            "status": {"id": status_id, "status": STATUS_DESCRIPTIONS[status_id]},
            "endpoint": {"id": endpoint.id, "name": endpoint.name},
            "organisation": {"id": self.org_id},
            "submit_date": _callback_date(sms.submit_date),
            "final_date": _callback_date(sms.final_date),
        }
        await send_callback(
            self._client_session(),
            self.callback_log,
            "PATCH",
            url,
            json_body=body,
            headers=headers(),
            faults=self.faults,
        )

    # -- service profiles, api_callback, api_secret

    def _create_callback(self, url: str, purpose: str) -> SimApiCallback:
        callback = SimApiCallback(self._next_callback_id, url, purpose)
        self._next_callback_id += 1
        self.api_callbacks[callback.id] = callback
        return callback

    def _create_secret(self, purpose: str, secret: str) -> SimApiSecret:
        item = SimApiSecret(self._next_secret_id, purpose, secret)
        self._next_secret_id += 1
        self.api_secrets[item.id] = item
        return item

    def _callback_json(self, callback: SimApiCallback) -> dict[str, Any]:
        return {
            "id": callback.id,
            "url": callback.url,
            "purpose": callback.purpose,
            "organisation_id": str(self.org_id),
            "created": _callback_date(callback.created),
        }

    def _secret_json(self, secret: SimApiSecret) -> dict[str, Any]:
        return {"id": secret.id, "purpose": secret.purpose, "organisation_id": str(self.org_id)}

    def _profile_or_error(self, raw: str) -> SimServiceProfile | web.Response:
        if not raw.isdigit():
            return _bad_id(raw)
        profile = self.service_profiles.get(int(raw))
        if profile is None:
            return _not_found("Service profile", raw)
        return profile

    async def _get_profile(self, request: web.Request) -> web.StreamResponse:
        profile = self._profile_or_error(request.match_info["profile_id"])
        if isinstance(profile, web.Response):
            return profile
        callback = self.api_callbacks.get(profile.api_callback_id or -1)
        secret = self.api_secrets.get(profile.api_secret_id or -1)
        esme = profile.esme_interface_type
        return web.json_response(
            {
                "id": profile.id,
                "name": profile.name,
                "description": None,
                "allowed_3g": True,
                "allowed_4g": True,
                "allowed_nb_iot": False,
                "apply_sms_quota": False,
                "sms_p2p_int": True,
                "sms_p2p_ext": False,
                "api_callback": self._callback_json(callback) if callback else None,
                "api_secret": self._secret_json(secret) if secret else None,
                "moc_callback": None,
                "esme_interface_type": (
                    {"id": esme, "description": ESME_INTERFACE_TYPES[esme]} if esme else None
                ),
            }
        )

    async def _patch_profile(self, request: web.Request) -> web.StreamResponse:
        profile = self._profile_or_error(request.match_info["profile_id"])
        if isinstance(profile, web.Response):
            return profile
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _empty(422)
        if not isinstance(body, dict):
            return _empty(422)
        errors: list[dict[str, Any]] = []
        updates: dict[str, int | None] = {}
        for key, table, label in (
            ("api_callback", self.api_callbacks, "Api callback"),
            ("api_secret", self.api_secrets, "Api secret"),
            ("esme_interface_type", ESME_INTERFACE_TYPES, "Esme interface type"),
        ):
            if key not in body:
                continue
            ref = body[key]
            ident = ref.get("id") if isinstance(ref, dict) else None
            if ref is not None and not isinstance(ref, dict):
                errors.append(_invalid_reference(label, ref))
            elif ident is None and key != "esme_interface_type":
                updates[key] = None
            elif not isinstance(ident, int) or ident not in table:
                errors.append(_invalid_reference(label, ident))
            else:
                updates[key] = ident
        if errors:
            return _error(
                422,
                1400,
                "InputValidationFailed",
                "Update service profile validation error",
                errors=errors,
            )
        if "api_callback" in updates:
            profile.api_callback_id = updates["api_callback"]
        if "api_secret" in updates:
            profile.api_secret_id = updates["api_secret"]
        if "esme_interface_type" in updates:
            profile.esme_interface_type = updates["esme_interface_type"]
        if isinstance(body.get("name"), str):
            profile.name = body["name"]
        return web.Response(status=204)

    async def _list_callbacks(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response([self._callback_json(c) for c in self.api_callbacks.values()])

    async def _get_callback(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["callback_id"]
        callback = self.api_callbacks.get(int(raw)) if raw.isdigit() else None
        if callback is None:
            return _not_found("Api callback", raw)
        return web.json_response(self._callback_json(callback))

    async def _delete_callback(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["callback_id"]
        if not raw.isdigit() or self.api_callbacks.pop(int(raw), None) is None:
            return _not_found("Api callback", raw)
        return web.Response(status=204)

    async def _post_callback(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _empty(422)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
            return _error(422, 1402, "Required", "url is required")
        callback = self._create_callback(body["url"], str(body.get("purpose") or ""))
        return _created(self._location(request, f"{API}/api_callback/{callback.id}"))

    async def _list_secrets(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response([self._secret_json(s) for s in self.api_secrets.values()])

    async def _delete_secret(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["secret_id"]
        if not raw.isdigit() or self.api_secrets.pop(int(raw), None) is None:
            return _not_found("Api secret", raw)
        return web.Response(status=204)

    async def _post_secret(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _empty(422)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("secret"), str)
            or not body["secret"]
        ):
            return _error(422, 1402, "Required", "secret is required")
        item = self._create_secret(str(body.get("purpose") or ""), body["secret"])
        return _created(self._location(request, f"{API}/api_secret/{item.id}"))


def _created(location: str) -> web.Response:
    response = _empty(201)
    response.headers["Location"] = location
    return response


def _invalid_reference(label: str, ident: object) -> dict[str, Any]:
    return {
        "error_code": 1401,
        "error_token": "InvalidReference",
        "message": f"{label} with Id '{ident}' not found.",
    }


def _is_hex(value: object) -> bool:
    if not isinstance(value, str) or len(value) % 2:
        return False
    with contextlib.suppress(ValueError):
        bytes.fromhex(value)
        return True
    return False


def _valid_type(value: object) -> bool:
    return isinstance(value, dict) and value.get("id") in SOURCE_ADDRESS_TYPES
