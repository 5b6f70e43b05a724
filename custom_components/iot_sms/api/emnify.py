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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
import jwt

from . import bounded_json, encoding
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
    MultipartInfo,
    OutgoingMessage,
    SendOptions,
    ServiceProfile,
    SmsStatus,
)
from .ratelimit import SlidingWindowLimiter

DEFAULT_BASE_URL: Final = "https://cdn.emnify.net"
DEFAULT_SOURCE_ADDRESS: Final = "12345"
USER_AGENT: Final = "HomeAssistant-iot_sms"
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
DCS_GSM7: Final = 0
DCS_UCS2: Final = 8

STATUS_MAP: Final[dict[int, SmsStatus]] = {
    1: SmsStatus.QUEUED,  # DELIVERY ATTEMPT PENDING
    2: SmsStatus.SENT,  # IN PROGRESS
    3: SmsStatus.BUFFERED,
    4: SmsStatus.DELIVERED,
    5: SmsStatus.FAILED,
    6: SmsStatus.EXPIRED,
    7: SmsStatus.CANCELED,
}

_HTTP_UNAUTHORIZED: Final = 401
_HTTP_FORBIDDEN: Final = 403
_HTTP_NOT_FOUND: Final = 404
_HTTP_TOO_MANY: Final = 429
_HTTP_SERVER_ERROR: Final = 500
_HTTP_CLIENT_ERROR: Final = 400
_HTTP_OK_MAX: Final = 299
_HTTP_OK_MIN: Final = 200


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError) as err:
            raise ConnectionFailed(
                f"emnify answered HTTP {self.status} with a body that is not JSON"
            ) from err


class _NotSent(ConnectionFailed):
    """The connection could not be opened: the request provably did not reach emnify."""


class _ReadBroken(ConnectionFailed):
    """A read (GET) failed in transit; reads are safe to repeat."""


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
        self._jwt: str | None = None
        self._renew_at = 0.0
        self._claims: dict[str, Any] = {}
        self._auth_lock = asyncio.Lock()
        self.limiter = SlidingWindowLimiter(*REQUEST_LIMIT)
        self._auth_limiter = SlidingWindowLimiter(*AUTH_LIMIT)

    # ------------------------------------------------------------------ auth

    async def _token(self) -> str:
        """Return a valid JWT, authenticating once for all concurrent callers."""
        if self._jwt is not None and self._clock() < self._renew_at:
            return self._jwt
        async with self._auth_lock:
            if self._jwt is None or self._clock() >= self._renew_at:
                return await self._authenticate()
            return self._jwt

    async def _renew(self, stale: str) -> None:
        """Replace a JWT the API rejected, unless another caller already did."""
        async with self._auth_lock:
            if self._jwt == stale:
                self._jwt = None
                await self._authenticate()

    async def _authenticate(self) -> str:
        url = f"{self._base_url}/api/v1/authenticate"
        try:
            async with (
                self._auth_limiter.slot(),
                self.limiter.slot(),
                self._session.post(
                    url,
                    json={"application_token": self._app_token},
                    headers={"User-Agent": USER_AGENT},
                    timeout=self._timeout,
                ) as resp,
            ):
                status, body = resp.status, await resp.read()
        except TimeoutError as err:
            raise ConnectionFailed("emnify did not answer the authentication in time") from err
        except aiohttp.ClientError as err:
            raise ConnectionFailed(f"cannot reach emnify: {err}") from err
        if status == _HTTP_UNAUTHORIZED:
            raise AuthError("emnify rejected the application token")
        if status == _HTTP_TOO_MANY:
            raise RateLimited(
                _error_text(status, body, "too many authentication attempts, wait 5 minutes")
            )
        if not _HTTP_OK_MIN <= status <= _HTTP_OK_MAX:
            raise _error_for(status, body)
        try:
            data = json.loads(body)
            # jwt.decode rejects anything but a str/bytes token with a JSON-object payload.
            token: str = data["auth_token"]
            claims = jwt.decode(token, options={"verify_signature": False})
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, jwt.InvalidTokenError) as err:
            raise ConnectionFailed("emnify answered the authentication without a token") from err
        now = self._clock()
        exp = claims.get("exp")
        lifetime = float(exp) - now if isinstance(exp, int | float) else ASSUMED_LIFETIME
        self._renew_at = now + max(0.0, lifetime - RENEW_MARGIN, lifetime / 2)
        self._jwt = token
        self._claims = claims
        return token

    # ------------------------------------------------------------------ transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        send: bool = False,
    ) -> _Response:
        """Send one API call with auth, back-off and the retry rules of the module doc.

        Returns any 2xx response; raises a typed error for everything else.
        """
        renewed = reconnected = False
        attempt = 0
        while True:
            token = await self._token()
            try:
                response = await self._send_once(method, path, token, params, json_body, send)
            except (_NotSent, _ReadBroken):
                # Nothing was sent, or a read broke: one more try is harmless.
                if reconnected:
                    raise
                reconnected = True
                continue
            if response.status == _HTTP_UNAUTHORIZED and not renewed:
                renewed = True
                await self._renew(token)
                continue
            if response.status == _HTTP_TOO_MANY and attempt < len(self._backoff):
                await asyncio.sleep(self._backoff[attempt])
                attempt += 1
                continue
            if send and response.status >= _HTTP_SERVER_ERROR:
                raise DeliveryUnknown(
                    _error_text(
                        response.status,
                        response.body,
                        "emnify failed while sending; the SMS may have been sent",
                    )
                )
            if not _HTTP_OK_MIN <= response.status <= _HTTP_OK_MAX:
                raise _error_for(response.status, response.body)
            return response

    async def _send_once(
        self,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        send: bool,
    ) -> _Response:
        """One HTTP exchange; transport failures become typed errors (see the module doc)."""
        try:
            async with (
                self.limiter.slot(),
                self._session.request(
                    method,
                    f"{self._base_url}{path}",
                    params=params,
                    json=json_body,
                    headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
                    timeout=self._timeout,
                ) as resp,
            ):
                return _Response(resp.status, resp.headers, await resp.read())
        except aiohttp.ClientConnectorError as err:
            raise _NotSent(f"cannot reach emnify: {err}") from err
        except aiohttp.ConnectionTimeoutError as err:
            raise ConnectionFailed("emnify did not accept the connection in time") from err
        except TimeoutError as err:
            if send:
                raise DeliveryUnknown(
                    "emnify did not answer in time; the SMS may have been sent"
                ) from err
            raise ConnectionFailed("emnify did not answer in time") from err
        except aiohttp.ClientError as err:
            if send:
                raise DeliveryUnknown(
                    f"the connection to emnify broke; the SMS may have been sent ({err})"
                ) from err
            if method == "GET":
                raise _ReadBroken(f"the connection to emnify broke: {err}") from err
            raise ConnectionFailed(f"the connection to emnify broke: {err}") from err

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
            total_pages = _as_int(response.headers.get("X-Total-Pages")) or 1
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
        if part.encoding == "ucs2":
            body["dcs"] = DCS_UCS2
        elif part.udh:
            body["dcs"] = DCS_GSM7
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
        location = response.headers.get("Location", "")
        sms_id = location.rstrip("/").rsplit("/", 1)[-1]
        if sms_id.isdigit():
            return sms_id
        if response.body.strip():
            try:
                data = json.loads(response.body)
            except (UnicodeDecodeError, ValueError):
                data = None
            if isinstance(data, dict) and _as_int(data.get("id")) is not None:
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
            if not isinstance(item, dict) or (ident := _as_id(item.get("id"))) is None:
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
        try:
            data = bounded_json.loads(request.body)
        except (UnicodeDecodeError, ValueError) as err:
            raise InvalidCallback("the callback body is not JSON") from err
        objects = data if isinstance(data, list) else [data]
        if not all(isinstance(obj, dict) for obj in objects):
            raise InvalidCallback("the callback body is not a JSON object")
        method = request.method.upper()
        items: list[CallbackItem] = []
        for obj in objects:
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
            callback_id = _as_id(callback.get("id"))
        if isinstance(secret, dict):
            secret_id = _as_id(secret.get("id"))
        return ServiceProfile(
            id=_as_id(data.get("id")) or str(profile_id),
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
            callback_id = _location_id(response) or await self._find_callback(url)
            if callback_id is None:
                raise ConnectionFailed("emnify created the callback but did not return its id")
        response = await self._request(
            "POST", "/api/v1/api_secret", json_body={"purpose": PURPOSE, "secret": secret}
        )
        secret_id = _location_id(response)
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
                    return _as_id(item.get("id"))
        return None


# ---------------------------------------------------------------------- parsing helpers


def _as_int(value: Any) -> int | None:
    """An int from an int or a decimal string (emnify serialises numbers both ways)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _as_id(value: Any) -> str | None:
    number = _as_int(value)
    if number is not None:
        return str(number)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _as_str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def parse_date(value: Any) -> datetime | None:
    """Parse any emnify date ("…T01:45:24.000+0000", "…Z", "2021-10-29 07:13:34"); UTC if naive.

    Anything else (null, {}, garbage) gives None.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _format_date(value: datetime) -> str:
    """Format like emnify's own dates: 2022-08-05T01:45:24.000+0000 (naive = UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _status(value: Any) -> tuple[SmsStatus | None, str]:
    """Map an emnify status ({id, description|status} or a bare id) to (status, raw text)."""
    if isinstance(value, dict):
        status_id = _as_int(value.get("id"))
        raw = value.get("status") or value.get("description")
    else:
        status_id = _as_int(value)
        raw = None
    mapped = STATUS_MAP.get(status_id) if status_id is not None else None
    if not isinstance(raw, str) or not raw:
        raw = str(status_id) if status_id is not None else "unknown"
    return mapped, raw


def _endpoint_ref(data: Mapping[str, Any]) -> str | None:
    endpoint = data.get("endpoint")
    if isinstance(endpoint, dict) and (ident := _as_id(endpoint.get("id"))) is not None:
        return ident
    return _as_id(data.get("endpoint_id"))


def _parse_endpoint(item: Any) -> Endpoint | None:
    if not isinstance(item, dict) or (ident := _as_id(item.get("id"))) is None:
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
        service_profile_id=_as_id(profile.get("id")),
        service_profile_name=_as_str(profile.get("name")),
    )


def parse_sms(item: Any) -> OutgoingMessage | None:
    """Parse one SMS object from GET …/sms or …/sms/{id}; None if it has no id."""
    if not isinstance(item, dict) or (ident := _as_id(item.get("id"))) is None:
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
    ident = _as_id(obj.get("id"))
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
    ident = _as_id(obj.get("id"))
    payload = obj.get("payload")
    sender = _as_str(obj.get("source_address"))
    if ident is None:
        raise InvalidCallback("the incoming SMS has no id")
    if not isinstance(payload, str):
        raise InvalidCallback("the incoming SMS has no text payload")
    if sender is None:
        raise InvalidCallback("the incoming SMS has no sender")
    multipart = None
    info = obj.get("multi_part_info")
    if isinstance(info, dict) and (_as_int(info.get("total")) or 1) > 1:
        number, total = _as_int(info.get("partno")), _as_int(info.get("total"))
        reference = _as_id(info.get("identifier"))
        if number is None or total is None or reference is None or not 1 <= number <= total:
            raise InvalidCallback("the incoming SMS has invalid multi-part information")
        multipart = MultipartInfo(reference=reference, number=number, total=total)
    return IncomingMessage(
        message_id=ident,
        sender=sender,
        text=payload,
        received_at=parse_date(obj.get("submit_date")) or datetime.now(UTC),
        recipient=_as_str(obj.get("dest_address")),
        endpoint_id=_endpoint_ref(obj),
        multipart=multipart,
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
    header = headers.get("Authorization") or next(
        (v for k, v in headers.items() if k.lower() == "authorization"), None
    )
    if header is None:
        raise SignatureError("the callback is not signed")
    scheme, _, token = header.strip().partition(" ")
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


def _location_id(response: _Response) -> str | None:
    ident = response.headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]
    return ident if ident.isdigit() else None


def _error_details(body: bytes) -> tuple[str | None, str | None]:
    """(message, error_token) of an emnify error body, including nested errors[]."""
    try:
        data = json.loads(body) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(data, dict):
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
    detail = f"{token}, HTTP {status}" if token else f"HTTP {status}"
    return f"{message or default} ({detail})"


def _error_for(status: int, body: bytes) -> IotSmsError:
    """The typed error for a non-2xx answer (401 and 429 are handled by the caller)."""
    if status in (_HTTP_UNAUTHORIZED, _HTTP_FORBIDDEN):
        return AuthError(_error_text(status, body, "emnify refused access"))
    if status == _HTTP_TOO_MANY:
        return RateLimited(_error_text(status, body, "emnify rate limit reached"))
    if status == _HTTP_NOT_FOUND:
        return NotFound(_error_text(status, body, "not found"))
    if status >= _HTTP_SERVER_ERROR:
        return ConnectionFailed(_error_text(status, body, "emnify server error"))
    if status >= _HTTP_CLIENT_ERROR:
        return InvalidRequest(_error_text(status, body, "emnify rejected the request"))
    return ConnectionFailed(_error_text(status, body, "unexpected answer from emnify"))
