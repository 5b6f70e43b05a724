"""emnify REST API v1 client (application-token auth, SMS, service-profile callbacks).

Wire format and quirks: `shared/reference/emnify-api.md`. No Home Assistant imports; the
aiohttp session is injected.

Retry rules. A send (`POST /endpoint/{id}/sms`) is retried only when emnify provably did not
act on it: the connection could not be opened, the gateway rejected the token (401) or the
rate limit rejected the request (429). Once the request may have been written, a timeout, a
dropped connection or a 5xx raises `DeliveryUnknown` and is never retried, so a device never
gets a command twice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Final

import aiohttp
import jwt

from . import bounded_json, encoding
from .bearer import Grant, TokenCache, with_token
from .errors import (
    AuthError,
    ConnectionFailed,
    DeliveryUnknown,
    InvalidCallback,
    InvalidRequest,
    IotSmsError,
    NotCancellable,
    NotFound,
    RateLimited,
    SignatureError,
)
from .http_errors import ErrorTexts, error_kind, status_text
from .models import (
    AccountInfo,
    CallbackItem,
    CallbackRequest,
    Capabilities,
    DeliveryReport,
    Endpoint,
    IncomingHint,
    IncomingMessage,
    MessagePart,
    OutgoingMessage,
    SendOptions,
    ServiceProfile,
    SmsStatus,
)
from .ratelimit import SlidingWindowLimiter
from .sms_objects import (
    COMMON_STATUSES,
    callback_objects,
    coded_status,
    data_coding,
    location_id,
    multipart,
)
from .transport import USER_AGENT, Peer, Response, exchange
from .values import as_id, as_int, as_str, header, json_object, parse_date, utc

DEFAULT_BASE_URL: Final = "https://cdn.emnify.net"
DEFAULT_SOURCE_ADDRESS: Final = "12345"
# `purpose` of the api_callback and api_secret this integration creates.
PURPOSE: Final = "Home Assistant iot_sms"
PER_PAGE: Final = 1000
MAX_PAGES: Final = 1000
# Renew the JWT this long before its `exp` (or after half its lifetime, if that is shorter).
RENEW_MARGIN: Final = 3600.0
# Lifetime assumed for a JWT without `exp` (emnify's application-token JWTs last 7 days).
ASSUMED_LIFETIME: Final = 2 * RENEW_MARGIN
# Allowed clock skew when verifying callback JWTs.
CALLBACK_LEEWAY: Final = 300
_HMAC_DIGESTS: Final = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
ALPHANUMERIC_TYPE: Final = 208
MO_TYPE: Final = 2
# emnify's documented limits: 2,000 requests per IP per 5 minutes, of which /authenticate at
# most 100. Kept a little under, as other software on the same IP may use the API too.
REQUEST_LIMIT: Final = (1800, 300.0)
AUTH_LIMIT: Final = (90, 300.0)
# How far emnify's clock may be behind ours when an ambiguous send is looked up.
SEND_CLOCK_SKEW: Final = timedelta(minutes=2)

STATUS_MAP: Final[dict[int, SmsStatus]] = {
    1: SmsStatus.QUEUED,  # DELIVERY ATTEMPT PENDING
    2: SmsStatus.SENT,  # IN PROGRESS
    **COMMON_STATUSES,
}
_PEER: Final = Peer("emnify")
_ERROR_TEXTS: Final = ErrorTexts.naming("emnify")


class EmnifyClient:
    """An emnify organisation, reached with an application token."""

    provider = "emnify"
    provider_name = "emnify"
    capabilities = Capabilities(filters_by_tag=True, registers_callbacks=True)

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        callback_secret: str | None = None,
        source_address: str | None = DEFAULT_SOURCE_ADDRESS,
        request_timeout: float = 20,
        backoff: Sequence[float] = (1.0, 2.0, 4.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Store the settings; nothing is sent before the first call."""
        self._session = session
        self._app_token = token
        self._base_url = base_url.rstrip("/")
        self._callback_secret = callback_secret
        self._source_address = source_address
        # A separate connect limit: a connection that never opened is not a maybe-sent SMS.
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, connect=request_timeout / 2)
        self._backoff = tuple(backoff)
        self._clock = clock
        self._claims: dict[str, Any] = {}
        self._tokens = TokenCache(self._authenticate, margin=RENEW_MARGIN, clock=clock)
        self.limiter = SlidingWindowLimiter(*REQUEST_LIMIT)
        self._auth_limiter = SlidingWindowLimiter(*AUTH_LIMIT)

    # ------------------------------------------------------------------ auth

    async def _authenticate(self) -> Grant:
        """Exchange the application token for a JWT (its claims name the organisation)."""
        response = await exchange(
            self._session,
            "POST",
            f"{self._base_url}/api/v1/authenticate",
            peer=_PEER,
            timeouts=self._timeout,
            slots=(self._auth_limiter.slot(), self.limiter.slot()),
            subject="the authentication",
            json_body={"application_token": self._app_token},
            headers={"User-Agent": USER_AGENT},
        )
        status, body = response.status, response.body
        if status == HTTPStatus.UNAUTHORIZED:
            raise AuthError("emnify rejected the application token")
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            raise RateLimited(
                _error_text(status, body, "too many authentication attempts, wait 5 minutes")
            )
        if not response.ok:
            raise _error_for(status, body)
        try:
            data = json.loads(body)
            # jwt.decode rejects anything but a str/bytes token with a JSON-object payload.
            token: str = data["auth_token"]
            claims = jwt.decode(token, options={"verify_signature": False})
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, jwt.InvalidTokenError) as err:
            raise ConnectionFailed("emnify answered the authentication without a token") from err
        exp = claims.get("exp")
        lifetime = float(exp) - self._clock() if isinstance(exp, int | float) else ASSUMED_LIFETIME
        self._claims = claims
        return Grant(token, lifetime)

    # ------------------------------------------------------------------ transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        send: bool = False,
    ) -> Response:
        """Send one API call with auth, back-off and the retry rules of the module doc.

        Returns any 2xx response; raises a typed error for everything else.
        """
        backoff = iter(self._backoff)  # one back-off schedule per call, renewals included

        async def attempt(token: str) -> Response:
            while True:
                response = await exchange(
                    self._session,
                    method,
                    f"{self._base_url}{path}",
                    peer=_PEER,
                    timeouts=self._timeout,
                    slots=(self.limiter.slot(),),
                    send=send,
                    params=params,
                    json_body=json_body,
                    headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
                )
                too_many = response.status == HTTPStatus.TOO_MANY_REQUESTS
                if not too_many or (delay := next(backoff, None)) is None:
                    return response
                await asyncio.sleep(delay)

        response = await with_token(self._tokens, attempt)
        if send and response.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise DeliveryUnknown(
                _error_text(
                    response.status,
                    response.body,
                    "emnify failed while sending; the SMS may have been sent",
                )
            )
        if not response.ok:
            raise _error_for(response.status, response.body)
        return response

    async def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return (await self._request("GET", path, params=params)).json()

    # ------------------------------------------------------------------ account, endpoints

    async def async_get_account(self) -> AccountInfo:
        """Validate the token (authenticate + one cheap read) and name the organisation."""
        await self._request("GET", "/api/v1/endpoint", params={"per_page": "1"})
        org = self._claims.get("esc.org")
        if org is None:
            raise AuthError("emnify issued a token without an organisation")
        name = self._claims.get("esc.orgName")
        return AccountInfo(unique_id=str(org), title=str(name) if name else f"emnify {org}")

    async def async_list_endpoints(self, tag: str | None = None) -> list[Endpoint]:
        """Return every endpoint (all pages), optionally only those with a tag."""
        result: list[Endpoint] = []
        page = 1
        while True:
            params = {"page": str(page), "per_page": str(PER_PAGE)}
            if tag:
                params["q"] = f"tags:{tag}"
            response = await self._request("GET", "/api/v1/endpoint", params=params)
            items = response.json()
            if not isinstance(items, list):
                raise ConnectionFailed("emnify answered the endpoint list with no list")
            result.extend(ep for item in items if (ep := _parse_endpoint(item)) is not None)
            total_pages = as_int(response.headers.get("X-Total-Pages")) or 1
            if page >= min(total_pages, MAX_PAGES):
                return result
            page += 1

    # ------------------------------------------------------------------ SMS

    def plan_message(self, text: str) -> list[MessagePart]:
        """Split a text into SMS parts (UDH-concatenated); raise MessageTooLong."""
        return encoding.segment(text)

    async def async_send_part(
        self, endpoint_id: str, part: MessagePart, options: SendOptions
    ) -> str:
        """Send one part; return emnify's SMS id (the last segment of `Location`).

        `dcs` is sent only for UCS-2 (8) and for concatenated GSM-7 parts (0): a single GSM-7
        SMS is sent exactly like emnify's own examples (payload only), while a UDH or a
        non-GSM alphabet needs the data coding spelled out for the SMSC to size the part.
        """
        body: dict[str, Any] = {"payload": part.text}
        if part.udh:
            body["udh"] = part.udh
        if (dcs := data_coding(part)) is not None:
            body["dcs"] = dcs
        sender = options.sender or self._source_address
        if sender:
            body["source_address"] = sender
            if not sender.removeprefix("+").isdigit():
                body["source_address_type"] = {"id": ALPHANUMERIC_TYPE}
        if options.expires_at is not None:
            body["expiry_date"] = _format_date(options.expires_at)
        response = await self._request(
            "POST", f"/api/v1/endpoint/{endpoint_id}/sms", json_body=body, send=True
        )
        sms_id = location_id(response.headers)
        if sms_id is not None:
            return sms_id
        data = json_object(response.body)
        if data is not None and as_int(data.get("id")) is not None:
            return str(data["id"])
        raise DeliveryUnknown("emnify accepted the SMS but did not return its id")

    async def async_find_sent(
        self,
        endpoint_id: str,
        part: MessagePart,
        sent_after: datetime,
        known: Collection[str],
    ) -> str | None:
        """Look an ambiguous send up: its id if emnify has it, None if it provably does not.

        emnify keeps no client reference, so the send is recognised by text and UDH among the
        endpoint's MT SMS submitted since shortly before it that are not tracked already.
        """
        items = await self._get_json(f"/api/v1/endpoint/{endpoint_id}/sms")
        if not isinstance(items, list):
            raise ConnectionFailed("emnify answered the SMS list with no list")
        earliest = sent_after - SEND_CLOCK_SKEW
        for item in items:
            if not isinstance(item, dict) or (ident := as_id(item.get("id"))) is None:
                continue
            sms_type = item.get("sms_type")
            if ident in known or (isinstance(sms_type, dict) and sms_type.get("id") == MO_TYPE):
                continue
            udh = _as_str(item.get("udh")) or ""
            if item.get("payload") != part.text or udh.upper() != (part.udh or "").upper():
                continue
            submitted = parse_date(item.get("submit_date"))
            if submitted is None or submitted >= earliest:
                return ident
        return None

    async def async_poll(self, endpoint_id: str, part_ids: Sequence[str]) -> list[OutgoingMessage]:
        """Return the state of the given parts with one request (single GET or the list)."""
        wanted = {str(i) for i in part_ids}
        if not wanted:
            return []
        base = f"/api/v1/endpoint/{endpoint_id}/sms"
        if len(wanted) == 1:
            try:
                item = await self._get_json(f"{base}/{next(iter(wanted))}")
            except NotFound:
                return []
            items = [item]
        else:
            items = await self._get_json(base)
            if not isinstance(items, list):
                raise ConnectionFailed("emnify answered the SMS list with no list")
        result = []
        for item in items:
            message = parse_sms(item)
            if message is not None and message.part_id in wanted:
                result.append(message)
        return result

    async def async_cancel(self, endpoint_id: str, part_id: str) -> None:
        """Cancel a buffered part; raise NotCancellable with its status when too late."""
        path = f"/api/v1/endpoint/{endpoint_id}/sms/{part_id}"
        try:
            await self._request("DELETE", path)
        except InvalidRequest as err:
            status: str | None = None
            try:
                message = parse_sms(await self._get_json(path))
            except IotSmsError:
                message = None
            if message is not None:
                status = message.status.value if message.status else message.raw_status
            reason = f"{err} (status: {status})" if status else str(err)
            raise NotCancellable(reason, status) from err

    # ------------------------------------------------------------------ callbacks

    async def async_fetch_incoming(self, hint: IncomingHint) -> IncomingMessage | None:
        """Never needed: this provider's callbacks carry the whole message."""
        return None

    def parse_callback(self, request: CallbackRequest) -> list[CallbackItem]:
        """Verify (if a secret is set) and parse an MO POST or a DLR PATCH (or a bulk array)."""
        if self._callback_secret:
            _verify_signature(request.headers, self._callback_secret.encode(), self._clock())
        method = request.method.upper()
        items: list[CallbackItem] = []
        for obj in callback_objects(request.body):
            is_dlr = method == "PATCH" or (
                method != "POST" and "payload" not in obj and "status" in obj
            )
            items.append(parse_delivery_report(obj) if is_dlr else parse_incoming(obj))
        return items

    async def async_list_service_profiles(self) -> list[ServiceProfile]:
        """Return the service profiles the account's endpoints use, with their callbacks."""
        ids: dict[str, str] = {}
        for endpoint in await self.async_list_endpoints():
            if endpoint.service_profile_id is not None:
                ids.setdefault(endpoint.service_profile_id, endpoint.service_profile_name or "")
        return [await self._get_profile(pid, name) for pid, name in ids.items()]

    async def _get_profile(self, profile_id: str, fallback_name: str = "") -> ServiceProfile:
        data = await self._get_json(f"/api/v1/service_profile/{profile_id}")
        if not isinstance(data, dict):
            raise ConnectionFailed("emnify answered the service profile with no object")
        callback = data.get("api_callback")
        secret = data.get("api_secret")
        callback_url = callback_id = secret_id = None
        if isinstance(callback, dict):
            callback_url = _as_str(callback.get("url"))
            callback_id = as_id(callback.get("id"))
        if isinstance(secret, dict):
            secret_id = as_id(secret.get("id"))
        return ServiceProfile(
            id=as_id(data.get("id")) or str(profile_id),
            name=_as_str(data.get("name")) or fallback_name,
            callback_url=callback_url,
            callback_id=callback_id,
            secret_id=secret_id,
        )

    async def async_register_callback(
        self, profile_id: str, url: str, secret: str
    ) -> ServiceProfile:
        """Point a profile's SMS webhook at url (reusing an api_callback), signed with secret."""
        callback_id = await self._find_callback(url)
        if callback_id is None:
            response = await self._request(
                "POST", "/api/v1/api_callback", json_body={"url": url, "purpose": PURPOSE}
            )
            callback_id = location_id(response.headers) or await self._find_callback(url)
            if callback_id is None:
                raise ConnectionFailed("emnify created the callback but did not return its id")
        response = await self._request(
            "POST", "/api/v1/api_secret", json_body={"purpose": PURPOSE, "secret": secret}
        )
        secret_id = location_id(response.headers)
        if secret_id is None:
            raise ConnectionFailed("emnify created the signing secret but did not return its id")
        await self._request(
            "PATCH",
            f"/api/v1/service_profile/{profile_id}",
            json_body={
                "api_callback": {"id": int(callback_id)},
                "api_secret": {"id": int(secret_id)},
                "esme_interface_type": {"id": 1},
            },
        )
        return await self._get_profile(profile_id)

    async def _find_callback(self, url: str) -> str | None:
        items = await self._get_json("/api/v1/api_callback")
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("url") == url:
                    return as_id(item.get("id"))
        return None


# ---------------------------------------------------------------------- parsing helpers


def _as_str(value: Any) -> str | None:
    # emnify's strings are kept exactly as sent, spaces and all.
    return as_str(value, strip=False)


def _format_date(value: datetime) -> str:
    """Format like emnify's own dates: 2022-08-05T01:45:24.000+0000 (naive = UTC)."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _status(value: Any) -> tuple[SmsStatus | None, str]:
    """Map an emnify status ({id, description|status} or a bare id) to (status, raw text)."""
    status_id, raw = coded_status(value, ("status", "description"))
    mapped = STATUS_MAP.get(status_id) if status_id is not None else None
    if not isinstance(raw, str) or not raw:
        raw = str(status_id) if status_id is not None else "unknown"
    return mapped, raw


def _endpoint_ref(data: Mapping[str, Any]) -> str | None:
    endpoint = data.get("endpoint")
    if isinstance(endpoint, dict) and (ident := as_id(endpoint.get("id"))) is not None:
        return ident
    return as_id(data.get("endpoint_id"))


def _parse_endpoint(item: Any) -> Endpoint | None:
    if not isinstance(item, dict) or (ident := as_id(item.get("id"))) is None:
        return None
    sim = item.get("sim")
    sim = sim if isinstance(sim, dict) else {}  # absent, or null, without a SIM
    profile = item.get("service_profile")
    profile = profile if isinstance(profile, dict) else {}
    tags = item.get("tags")
    tag_list = (
        tuple(t.strip() for t in tags.split(",") if t.strip()) if isinstance(tags, str) else ()
    )
    return Endpoint(
        id=ident,
        name=_as_str(item.get("name")) or ident,
        msisdn=_as_str(sim.get("msisdn")),
        iccid=_as_str(sim.get("iccid")),
        imsi=_as_str(sim.get("imsi")),
        imei=_as_str(item.get("imei")),
        tags=tag_list,
        service_profile_id=as_id(profile.get("id")),
        service_profile_name=_as_str(profile.get("name")),
    )


def parse_sms(item: Any) -> OutgoingMessage | None:
    """Parse one SMS object from GET …/sms or …/sms/{id}; None if it has no id."""
    if not isinstance(item, dict) or (ident := as_id(item.get("id"))) is None:
        return None
    status, raw = _status(item.get("status"))
    return OutgoingMessage(
        part_id=ident,
        status=status,
        raw_status=raw,
        endpoint_id=_endpoint_ref(item),
        submitted_at=parse_date(item.get("submit_date")),
        final_at=parse_date(item.get("final_date")),
        expires_at=parse_date(item.get("expiry_date")),
    )


def parse_delivery_report(obj: Mapping[str, Any]) -> DeliveryReport:
    """Parse a DLR PATCH body; raise InvalidCallback if it has no id or status."""
    ident = as_id(obj.get("id"))
    if ident is None:
        raise InvalidCallback("the delivery report has no SMS id")
    if not isinstance(obj.get("status"), dict | int | str):
        raise InvalidCallback("the delivery report has no status")
    status, raw = _status(obj["status"])
    return DeliveryReport(
        part_id=ident, status=status, raw_status=raw, final_at=parse_date(obj.get("final_date"))
    )


def parse_incoming(obj: Mapping[str, Any]) -> IncomingMessage:
    """Parse an MO POST body; raise InvalidCallback if required fields are missing."""
    ident = as_id(obj.get("id"))
    payload = obj.get("payload")
    sender = _as_str(obj.get("source_address"))
    if ident is None:
        raise InvalidCallback("the incoming SMS has no id")
    if not isinstance(payload, str):
        raise InvalidCallback("the incoming SMS has no text payload")
    if sender is None:
        raise InvalidCallback("the incoming SMS has no sender")
    return IncomingMessage(
        message_id=ident,
        sender=sender,
        text=payload,
        received_at=parse_date(obj.get("submit_date")) or datetime.now(UTC),
        recipient=_as_str(obj.get("dest_address")),
        endpoint_id=_endpoint_ref(obj),
        multipart=multipart(obj.get("multi_part_info")),
    )


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _verify_signature(headers: Mapping[str, str], secret: bytes, now: float) -> None:
    """Check an HS256/384/512 JWT made with the profile's api_secret.

    Done by hand rather than with PyJWT: this runs for every callback, and the generic
    decoder costs more than the rest of the callback's parsing. Only HMAC algorithms are
    accepted (never "none"), the signature is compared in constant time, and exp/nbf are
    honoured when present; emnify documents no other claims.
    """
    authorization = header(headers, "Authorization")
    if authorization is None:
        raise SignatureError("the callback is not signed")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureError("the callback has no bearer token")
    try:
        head, payload, signature = token.strip().split(".")
        # The header is decoded before the signature is checked: bounded like a body.
        digest = _HMAC_DIGESTS[bounded_json.loads(_b64url(head))["alg"]]
        expected = hmac.new(secret, f"{head}.{payload}".encode("ascii"), digest).digest()
        valid = hmac.compare_digest(expected, _b64url(signature))
        claims = bounded_json.loads(_b64url(payload)) if valid else None
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise SignatureError("the callback signature is malformed") from err
    if not valid:
        raise SignatureError("the callback signature does not match the secret")
    if not isinstance(claims, dict):  # RFC 7519: the claims set is a JSON object
        raise SignatureError("the callback signature is malformed")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if isinstance(exp, int | float) and exp + CALLBACK_LEEWAY < now:
        raise SignatureError("the callback token has expired")
    if isinstance(nbf, int | float) and nbf - CALLBACK_LEEWAY > now:
        raise SignatureError("the callback token is not valid yet")


def _error_details(body: bytes) -> tuple[str | None, str | None]:
    """(message, error_token) of an emnify error body, including nested errors[]."""
    data = json_object(body)
    if data is None:
        return None, None
    message = data.get("message") if isinstance(data.get("message"), str) else None
    token = data.get("error_token") if isinstance(data.get("error_token"), str) else None
    nested = [
        e["message"]
        for e in data.get("errors") or []
        if isinstance(e, dict) and isinstance(e.get("message"), str)
    ]
    if nested:
        message = f"{message or 'invalid request'}: {'; '.join(nested)}"
    return message, token


def _error_text(status: int, body: bytes, default: str) -> str:
    message, token = _error_details(body)
    return status_text(status, message, token, default)


def _error_for(status: int, body: bytes) -> IotSmsError:
    """The typed error for a non-2xx answer (401 and 429 are handled by the caller)."""
    kind, default = error_kind(status, _ERROR_TEXTS)
    return kind(_error_text(status, body, default))
