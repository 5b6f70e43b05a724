"""1NCE Management API client (OAuth client credentials, SIMs, SMS, SMS Forwarder callbacks).

Wire format, and which parts of it are only inferred: `shared/reference/1nce-sms-api.md`. No
Home Assistant imports; the aiohttp session is injected.

Base URL. It includes `/management-api` (`https://api.1nce.com/management-api`); a URL with no
path at all gets it appended, as 1NCE serves nothing at the host's root.

API version. 1NCE serves `/v1` and, on Platform 2.0 accounts, `/v2`, and retires v1 at the end
of 2026. The client asks `/v2/sims` once and falls back to v1 for good when that answers 404.

Retry rules. A send is repeated only when 1NCE provably did not act on it: the connection never
opened, the token was rejected (401, once, with a new token) or the rate limit refused it (429,
once, after a pause). Once the request may have been written, a timeout, a broken connection, a
redirect or a 5xx raises `DeliveryUnknown` and is never retried: a device must not get a
command twice.

Callbacks. The SMS Forwarder POSTs MO SMS and PATCHes delivery reports to one URL, unsigned. An
MO carries the whole message; a delivery report's shape is undocumented and anyone who knows the
URL could send one, so it only makes the integration re-read the SMS (`PollHint`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import quote, urlsplit

import aiohttp

from . import encoding
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
)
from .http_errors import ErrorTexts, error_kind, status_text
from .models import (
    AccountInfo,
    CallbackItem,
    CallbackRequest,
    Capabilities,
    Endpoint,
    IncomingHint,
    IncomingMessage,
    MessagePart,
    OutgoingMessage,
    PollHint,
    SendOptions,
    ServiceProfile,
    SmsStatus,
)
from .numbers import normalize_msisdn
from .ratelimit import SlidingWindowLimiter
from .sms_objects import (
    COMMON_STATUSES,
    DCS_UCS2,
    callback_objects,
    coded_status,
    data_coding,
    location_id,
    multipart,
)
from .transport import USER_AGENT, Peer, Response, exchange, repeat_after_429
from .values import as_float, as_id, as_int, as_str, json_object, parse_date, utc

_LOGGER = logging.getLogger(__name__)

_CAPABILITIES: Final = Capabilities(
    lists_endpoints=True,
    filters_by_tag=False,
    cancel=True,
    max_parts=10,
    validity=True,
    custom_sender=True,
    push_reports=True,
    registers_callbacks=False,
)

DEFAULT_BASE_URL: Final = "https://api.1nce.com/management-api"
API_PATH: Final = "/management-api"
# 1NCE ignores the sender ("not used by the 1NCE network"), but some devices need one.
DEFAULT_SOURCE_ADDRESS: Final = "1234567890"
TYPE_INTERNATIONAL: Final = 145
TYPE_ALPHANUMERIC: Final = 208
SMS_TYPE_MO: Final = 2
# The documented maximum page size of the SIM list and of the v1 SMS list.
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 1000
# Pages read forwards when 1NCE neither sorts nor says how many pages there are.
MAX_SMS_PAGES: Final = 10
# 1NCE allows 10 requests per second per account; half of it leaves room for the portal and
# other API users of the same account.
REQUEST_LIMIT: Final = (5, 1.0)
# The documented token lifetime, assumed when the answer gives none.
TOKEN_LIFETIME: Final = 3600.0
# Renew a token this long before it expires (or after half its lifetime, if that is shorter).
RENEW_MARGIN: Final = 300.0
RATE_LIMIT_DELAY: Final = 1.0
MAX_RATE_LIMIT_DELAY: Final = 5.0
# How far 1NCE's clock may be behind ours when a send is looked up in the SMS list.
SEND_CLOCK_SKEW: Final = timedelta(minutes=2)
# Ids this client got back for its own sends, which a lookup must never return again.
MAX_REMEMBERED_IDS: Final = 2000
# Sends answered 201 without an id that the SMS list did not show yet.
MAX_UNIDENTIFIED: Final = 50

PENDING: Final = 2
STATUS_MAP: Final[dict[int, SmsStatus]] = {
    # 1, 3 and 7 are not documented by 1NCE; the reference infers them from emnify's codes.
    1: SmsStatus.SENT,
    2: SmsStatus.QUEUED,  # PENDING; BUFFERED once a delivery attempt failed, see _status
    **COMMON_STATUSES,
}

_PEER: Final = Peer("1NCE")
_ERROR_TEXTS: Final = ErrorTexts.naming("1NCE")

# Four hex digits per UTF-16 code unit: how a UCS-2 payload may come as text (see _text).
_UCS2_HEX: Final = re.compile(r"(?:[0-9A-Fa-f]{4})+")


@dataclass(frozen=True, slots=True)
class _SmsWindow:
    """The SMS of one SIM that were read, and how much of the SIM's list they are."""

    items: list[dict[str, Any]]
    complete: bool
    """Every SMS of the SIM was read."""
    newest: list[dict[str, Any]]
    """The page at the newest end of the list ([] when it was not reached)."""

    def covers(self, earliest: datetime) -> bool:
        """Whether every SMS submitted since `earliest` is among the items."""
        if self.complete:
            return True
        # A page at the newest end that reaches back before `earliest` holds everything after.
        dates = (parse_date(item.get("submit_date")) for item in self.newest)
        return any(date is not None and date < earliest for date in dates)


class _BadRequest(InvalidRequest):
    """HTTP 400: 1NCE did not accept the request's parameters."""


class OnenceClient:
    """A 1NCE account, reached with Management API credentials (client id and secret)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        username: str,
        password: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        source_address: str = DEFAULT_SOURCE_ADDRESS,
        request_timeout: float = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Store the settings; nothing is sent before the first call."""
        self._session = session
        self._username = username
        self._password = password
        base = base_url.strip().rstrip("/")
        self._base_url = base if urlsplit(base).path else f"{base}{API_PATH}"
        self._source_address = source_address
        # A separate connect limit: a connection that never opened is not a maybe-sent SMS.
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, connect=request_timeout / 2)
        self._tokens = TokenCache(self._authenticate, margin=RENEW_MARGIN, clock=clock)
        self._version: int | None = None
        self._version_lock = asyncio.Lock()
        # Whether v1 accepts sort=-submit_date (the sort keys of the SMS list are undocumented).
        self._v1_sort = True
        self._issued: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._unidentified: OrderedDict[tuple[str, MessagePart], None] = OrderedDict()
        # Seconds before the single retry of a request answered 429 (Retry-After wins, capped).
        self.rate_limit_delay = RATE_LIMIT_DELAY
        self.limiter = SlidingWindowLimiter(*REQUEST_LIMIT)

    @property
    def provider(self) -> str:
        """Short provider name."""
        return "1nce"

    @property
    def provider_name(self) -> str:
        """The provider's name as people write it (the hub device's manufacturer)."""
        return "1NCE"

    @property
    def capabilities(self) -> Capabilities:
        """SIMs are listed from the account; the forwarder URL is set in the 1NCE Portal."""
        return _CAPABILITIES

    @property
    def api_version(self) -> int | None:
        """The Management API version in use (None until the first call found out)."""
        return self._version

    # ------------------------------------------------------------------ auth

    async def _authenticate(self) -> Grant:
        """POST /oauth/token with Basic credentials; there is no refresh token."""
        response = await self._refusable(
            "POST",
            "/oauth/token",
            json_body={"grant_type": "client_credentials"},
            authorization=_basic(self._username, self._password),
        )
        status = response.status
        # 1NCE answers bad credentials with 400 (BadCredentials, AuthValidationError).
        if status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise AuthError(_error_text(status, response.body, "1NCE rejected the credentials"))
        if status == HTTPStatus.NOT_FOUND:
            raise ConnectionFailed(
                f"no 1NCE Management API at {self._base_url} (the token request answered 404)"
            )
        if not response.ok:
            raise _error_for(status, response.body)
        data = response.json()
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise ConnectionFailed("1NCE answered the token request without a token")
        lifetime = as_float(data.get("expires_in"))
        if lifetime is None or lifetime <= 0:
            lifetime = TOKEN_LIFETIME
        return Grant(token.strip(), lifetime)

    # ------------------------------------------------------------------ transport

    async def _exchange(
        self,
        method: str,
        path: str,
        *,
        authorization: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        send: bool = False,
    ) -> Response:
        """One HTTP exchange through the rate limiter; transport failures become typed errors."""
        return await exchange(
            self._session,
            method,
            f"{self._base_url}{path}",
            peer=_PEER,
            timeouts=self._timeout,
            slots=(self.limiter.slot(),),
            send=send,
            params=params,
            json_body=json_body,
            headers={
                "Accept": "application/json",
                "Authorization": authorization,
                "User-Agent": USER_AGENT,
            },
            allow_redirects=False,
        )

    async def _refusable(self, method: str, path: str, **kwargs: Any) -> Response:
        """_exchange, repeated once after a 429 (Retry-After wins, capped)."""
        return await repeat_after_429(
            partial(self._exchange, method, path, **kwargs),
            default=self.rate_limit_delay,
            cap=MAX_RATE_LIMIT_DELAY,
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        send: bool = False,
    ) -> Response:
        """One API call with auth and the retry rules of the module doc; 2xx or a typed error."""

        async def attempt(token: str) -> Response:
            return await self._refusable(
                method,
                path,
                authorization=f"Bearer {token}",
                params=params,
                json_body=json_body,
                send=send,
            )

        response = await with_token(self._tokens, attempt)
        status = response.status
        if send and (
            status >= HTTPStatus.INTERNAL_SERVER_ERROR
            or HTTPStatus.MULTIPLE_CHOICES <= status < HTTPStatus.BAD_REQUEST
        ):
            raise DeliveryUnknown(
                _error_text(
                    status, response.body, "1NCE failed while sending; the SMS may have been sent"
                )
            )
        if not response.ok:
            raise _error_for(status, response.body)
        return response

    async def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return (await self._request("GET", path, params=params)).json()

    async def _api_version(self) -> int:
        """The version to use: v2 where the account has it (asked once), else v1."""
        if self._version is not None:
            return self._version
        async with self._version_lock:
            if self._version is None:
                try:
                    await self._request("GET", "/v2/sims", params={"page": "1", "pageSize": "1"})
                except NotFound:
                    _LOGGER.debug("This 1NCE account has no Management API v2; using v1")
                    self._version = 1
                else:
                    self._version = 2
            return self._version

    def _sim_path(self, version: int, iccid: str, *rest: str) -> str:
        segments = "".join(f"/{quote(part, safe='')}" for part in (iccid, *rest))
        return f"/v{version}/sims{segments}"

    # ------------------------------------------------------------------ account, SIMs

    async def async_get_account(self) -> AccountInfo:
        """Check the credentials (a token and one SIM list request); 1NCE has no account name."""
        probed_now = self._version is None
        version = await self._api_version()
        if not probed_now or version == 1:
            # The v2 probe is a SIM list request; after a fallback, v1 must answer too.
            await self._request("GET", f"/v{version}/sims", params={"page": "1", "pageSize": "1"})
        return AccountInfo(unique_id=self._username, title=f"1NCE ({self._username})")

    async def async_list_endpoints(self, tag: str | None = None) -> list[Endpoint]:
        """Return every SIM of the account (all pages), keyed by ICCID; tags do not exist."""
        version = await self._api_version()
        result: dict[str, Endpoint] = {}
        page = 1
        while True:
            response = await self._request(
                "GET", f"/v{version}/sims", params={"page": str(page), "pageSize": str(PAGE_SIZE)}
            )
            items = response.json()
            if not isinstance(items, list):
                raise ConnectionFailed("1NCE answered the SIM list with no list")
            for item in items:
                endpoint = _parse_sim(item)
                if endpoint is not None:
                    result.setdefault(endpoint.id, endpoint)
            total_pages = as_int(response.headers.get("X-Total-Pages"))
            if not items or _last_page(page, total_pages, len(items)) or page >= MAX_PAGES:
                return list(result.values())
            page += 1

    # ------------------------------------------------------------------ sending

    def plan_message(self, text: str) -> list[MessagePart]:
        """Split a text into SMS parts (UDH-concatenated, at most 10); raise MessageTooLong."""
        return encoding.segment(text, max_parts=self.capabilities.max_parts)

    def _send_body(self, part: MessagePart, options: SendOptions, version: int) -> dict[str, Any]:
        """The SMSMessage body: only fields of the spec, and `dcs` only where it matters.

        A single GSM-7 part goes like 1NCE's minimal example (no dcs); a UDH or UCS-2 needs the
        data coding spelled out for the SMSC to size the part.
        """
        sender = (options.sender or self._source_address).strip()
        numeric = sender.removeprefix("+")
        body: dict[str, Any] = {"payload": part.text}
        if numeric.isdigit():
            body["source_address"] = numeric
            body["source_address_type"] = {"id": TYPE_INTERNATIONAL}
        else:
            body["source_address"] = sender
            body["source_address_type"] = {"id": TYPE_ALPHANUMERIC}
        if (dcs := data_coding(part)) is not None:
            body["dcs"] = dcs
        if part.udh:
            body["udh"] = part.udh.upper()
        if options.expires_at is not None:
            body["expiry_date"] = _format_date(options.expires_at, version)
        for key in options.extra:
            _LOGGER.debug("Dropping send option %s, which 1NCE does not accept", key)
        return body

    async def async_send_part(
        self, endpoint_id: str, part: MessagePart, options: SendOptions
    ) -> str:
        """Send one part to a SIM (by ICCID) and return 1NCE's SMS id.

        v2 answers `{"id": "..."}`; v1 documents an empty 201, so its `Location` is read, and
        without one the SMS is looked up in the SIM's SMS list.
        """
        version = await self._api_version()
        body = self._send_body(part, options, version)
        sent_at = datetime.now(UTC)
        response = await self._request(
            "POST", self._sim_path(version, endpoint_id, "sms"), json_body=body, send=True
        )
        sms_id = _created_id(response)
        if sms_id is None:
            sms_id = await self._identify(endpoint_id, part, sent_at)
        self._remember(endpoint_id, sms_id)
        return sms_id

    async def _identify(self, endpoint_id: str, part: MessagePart, sent_at: datetime) -> str:
        """Find the id of a send 1NCE accepted (201) without naming it."""
        try:
            ident, _covered = await self._match(endpoint_id, part, sent_at, ())
        except IotSmsError as err:
            self._mark_unidentified(endpoint_id, part)
            raise DeliveryUnknown(
                f"1NCE accepted the SMS without its id, and its SMS list cannot be read ({err})"
            ) from err
        if ident is None:
            self._mark_unidentified(endpoint_id, part)
            raise DeliveryUnknown("1NCE accepted the SMS without its id, and does not list it yet")
        return ident

    def _mark_unidentified(self, endpoint_id: str, part: MessagePart) -> None:
        """Remember that 1NCE has this send: no later lookup may call it missing."""
        _add_bounded(self._unidentified, (endpoint_id, part), MAX_UNIDENTIFIED)

    def _remember(self, endpoint_id: str, sms_id: str) -> None:
        _add_bounded(self._issued, (endpoint_id, sms_id), MAX_REMEMBERED_IDS)

    async def async_find_sent(
        self,
        endpoint_id: str,
        part: MessagePart,
        sent_after: datetime,
        known: Collection[str],
    ) -> str | None:
        """Look a send up: its id if 1NCE has it, None only if the SMS list proves it does not.

        1NCE keeps no client reference, so the send is recognised by text and UDH among the
        SIM's MT SMS submitted since shortly before it that are not tracked already.
        """
        ident, covered = await self._match(endpoint_id, part, sent_after, known)
        if ident is not None:
            return ident
        if (endpoint_id, part) in self._unidentified:
            raise ConnectionFailed("1NCE accepted this SMS, but its SMS list does not show it")
        if covered:
            return None
        raise ConnectionFailed("1NCE's SMS list does not reach back to the send")

    async def _match(
        self,
        endpoint_id: str,
        part: MessagePart,
        sent_after: datetime,
        known: Collection[str],
    ) -> tuple[str | None, bool]:
        """(id of the send in the SIM's SMS list or None, whether the list read covers it)."""
        window = await self._recent_sms(endpoint_id)
        earliest = sent_after - SEND_CLOCK_SKEW
        excluded = set(known) | {sms for (sim, sms) in self._issued if sim == endpoint_id}
        matches: list[tuple[datetime, int, str]] = []
        for item in window.items:
            ident = as_id(item.get("id"))
            if ident is None or ident in excluded or _is_mo(item):
                continue
            udh = (as_str(item.get("udh")) or "").upper()
            if _text(item) != part.text or udh != (part.udh or "").upper():
                continue
            submitted = parse_date(item.get("submit_date"))
            if submitted is not None and submitted < earliest:
                continue
            undated = datetime.min.replace(tzinfo=UTC)
            matches.append((submitted or undated, as_int(ident) or 0, ident))
        if not matches:
            return None, window.covers(earliest)
        # The newest: an identical text before it is an earlier send nobody told us about.
        ident = max(matches)[2]
        self._unidentified.pop((endpoint_id, part), None)
        self._remember(endpoint_id, ident)
        return ident, True

    async def _sms_page(self, version: int, iccid: str, page: int) -> tuple[list[Any], int | None]:
        """One page of a SIM's SMS list and the number of pages (None if not said)."""
        params = {"page": str(page)}
        if version == 1:
            params["pageSize"] = str(PAGE_SIZE)
            if self._v1_sort:
                params["sort"] = "-submit_date"
        else:
            params["per_page"] = str(PAGE_SIZE)
        path = self._sim_path(version, iccid, "sms")
        try:
            response = await self._request("GET", path, params=params)
        except _BadRequest:
            if "sort" not in params:
                raise
            del params["sort"]
            response = await self._request("GET", path, params=params)
            _LOGGER.debug("1NCE does not sort the v1 SMS list by submit_date; reading it unsorted")
            self._v1_sort = False
        items = response.json()
        if not isinstance(items, list):
            raise ConnectionFailed("1NCE answered the SMS list with no list")
        return items, as_int(response.headers.get("X-Total-Pages"))

    async def _recent_sms(self, iccid: str) -> _SmsWindow:
        """The newest end of a SIM's SMS list: page 1 if sorted newest first, else the last."""
        version = await self._api_version()
        first, total = await self._sms_page(version, iccid, 1)
        first = [item for item in first if isinstance(item, dict)]
        if _last_page(1, total, len(first)):
            return _SmsWindow(first, complete=True, newest=first)
        if _newest_first(first):
            return _SmsWindow(first, complete=False, newest=first)
        if total is not None:
            last, _ = await self._sms_page(version, iccid, total)
            newest = [item for item in last if isinstance(item, dict)]
            return _SmsWindow(first + newest, complete=False, newest=newest)
        read = list(first)
        for page in range(2, MAX_SMS_PAGES + 1):
            items, _ = await self._sms_page(version, iccid, page)
            items = [item for item in items if isinstance(item, dict)]
            read.extend(items)
            if len(items) < PAGE_SIZE:
                return _SmsWindow(read, complete=True, newest=items)
        return _SmsWindow(read, complete=False, newest=[])

    # ------------------------------------------------------------------ tracking

    async def async_poll(self, endpoint_id: str, part_ids: Sequence[str]) -> list[OutgoingMessage]:
        """Return the state of the given parts: one GET for one part, the SMS list for more.

        Parts the list does not reach are read one by one; parts 1NCE does not know are left
        out. NotFound when the SIM itself is gone.
        """
        wanted = list(dict.fromkeys(str(part_id) for part_id in part_ids))
        if not wanted:
            return []
        version = await self._api_version()
        found: dict[str, OutgoingMessage] = {}
        if len(wanted) > 1:
            window = await self._recent_sms(endpoint_id)
            for item in window.items:
                message = parse_sms(item, endpoint_id)
                if message is not None and message.part_id in wanted:
                    found[message.part_id] = message
        for part_id in wanted:
            if part_id in found:
                continue
            try:
                item = await self._get_json(self._sim_path(version, endpoint_id, "sms", part_id))
            except NotFound:
                if len(wanted) == 1:
                    # Tell a vanished SMS from a vanished SIM (NotFound from here).
                    await self._request("GET", self._sim_path(version, endpoint_id))
                _LOGGER.debug("1NCE does not know SMS %s", part_id)
                continue
            message = parse_sms(item, endpoint_id)
            if message is not None:
                # Keyed as asked: whether v2's string send id is the SMS's id is undocumented.
                found[part_id] = replace(message, part_id=part_id)
        return [found[part_id] for part_id in wanted if part_id in found]

    async def async_cancel(self, endpoint_id: str, part_id: str) -> None:
        """DELETE the SMS, then read it back: only a canceled or vanished SMS is a success.

        1NCE documents neither a CANCELED status nor its answer for an SMS that is already
        final, and a DELETE whose answer was lost may have been carried out: the re-read
        decides every case.
        """
        version = await self._api_version()
        path = self._sim_path(version, endpoint_id, "sms", part_id)
        refused: IotSmsError | None = None
        try:
            await self._request("DELETE", path)
        except (InvalidRequest, ConnectionFailed) as err:
            refused = err
        try:
            item = await self._get_json(path)
        except NotFound:
            return  # 1NCE removes what it cancels
        message = parse_sms(item, endpoint_id)
        if message is not None and message.status is SmsStatus.CANCELED:
            return
        shown: str | None = None
        if message is not None:
            shown = message.status.value if message.status else message.raw_status
        if refused is not None:
            reason = f"1NCE did not cancel SMS {part_id} ({refused}); it is {shown or 'unknown'}"
        else:
            reason = f"1NCE accepted the cancel of SMS {part_id}, but it is {shown or 'unknown'}"
        raise NotCancellable(reason, shown)

    # ------------------------------------------------------------------ callbacks

    def parse_callback(self, request: CallbackRequest) -> list[CallbackItem]:
        """Parse an SMS Forwarder call: MO by POST, delivery report by PATCH (never signed)."""
        method = request.method.upper()
        if method not in ("POST", "PATCH"):
            raise InvalidCallback(f"the SMS Forwarder does not use {request.method}")
        items: list[CallbackItem] = []
        for obj in callback_objects(request.body):
            is_report = method == "PATCH" or (
                "payload" not in obj and ("status" in obj or "detail" in obj)
            )
            if is_report:
                items.extend(parse_delivery_report(obj))
            else:
                items.append(parse_incoming(obj))
        return items

    async def async_fetch_incoming(self, hint: IncomingHint) -> IncomingMessage | None:
        """Never needed: the SMS Forwarder sends the whole message."""
        return None

    async def async_list_service_profiles(self) -> list[ServiceProfile]:
        """1NCE has no callback groups: one SMS Forwarder URL per account."""
        return []

    async def async_register_callback(
        self, profile_id: str, url: str, secret: str
    ) -> ServiceProfile:
        """Not possible through the API: the SMS Forwarder URL is set in the 1NCE Portal."""
        raise InvalidRequest(
            "not supported: set the SMS Forwarder URL in the 1NCE Portal (SMS Forwarder)"
        )


def _basic(username: str, password: str) -> str:
    """An HTTP Basic header value (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _add_bounded[K](keys: OrderedDict[K, None], key: K, limit: int) -> None:
    """Add a key, forgetting the oldest ones beyond `limit`."""
    keys[key] = None
    while len(keys) > limit:
        keys.popitem(last=False)


# ---------------------------------------------------------------------- parsing helpers


def _format_date(value: datetime, version: int) -> str:
    """Like each version's spec example: v1 `…09.000+0000`, v2 RFC 3339 `…09.000+00:00`.

    Naive means UTC.
    """
    value = utc(value)
    text = f"{value.strftime('%Y-%m-%dT%H:%M:%S')}.{value.microsecond // 1000:03d}"
    return f"{text}+0000" if version == 1 else f"{text}+00:00"


def _last_page(page: int, total_pages: int | None, count: int) -> bool:
    """Whether a page is the last: by X-Total-Pages, or (without it) by being short."""
    if total_pages is not None:
        return page >= total_pages
    return count < PAGE_SIZE


def _newest_first(items: Sequence[Mapping[str, Any]]) -> bool:
    dates = [d for d in (parse_date(item.get("submit_date")) for item in items) if d is not None]
    return len(dates) >= 2 and dates[0] > dates[-1]  # noqa: PLR2004


def _is_mo(item: Mapping[str, Any]) -> bool:
    sms_type = item.get("sms_type")
    raw = sms_type.get("id") if isinstance(sms_type, dict) else sms_type
    return as_int(raw) == SMS_TYPE_MO


def _text(item: Mapping[str, Any]) -> str | None:
    """The text of an SMS object or MO body.

    How 1NCE writes a UCS-2 (dcs 8) payload is undocumented: text or hex. A UCS-2 message
    made only of hex digits cannot exist (a device sends such text as GSM-7), so an all-hex
    payload with dcs 8 is decoded.
    """
    payload = item.get("payload")
    if not isinstance(payload, str):
        return None
    if as_int(item.get("dcs")) == DCS_UCS2 and _UCS2_HEX.fullmatch(payload):
        try:
            return encoding.from_ucs2_hex(payload)
        except ValueError:
            return payload
    return payload


def _status(item: Mapping[str, Any]) -> tuple[SmsStatus | None, str]:
    """(status, raw text) of an SMS object: {id, description} (REST) or {id, status} (DLR)."""
    status_id, raw = coded_status(item.get("status"), ("description", "status"))
    mapped = STATUS_MAP.get(status_id) if status_id is not None else None
    if status_id == PENDING and (
        (as_int(item.get("retry_count")) or 0) > 0 or parse_date(item.get("last_delivery_attempt"))
    ):
        # Still pending after a delivery attempt: waiting for the device, as "buffered" means.
        mapped = SmsStatus.BUFFERED
    if not isinstance(raw, str) or not raw.strip():
        raw = str(status_id) if status_id is not None else "unknown"
    if mapped is None:
        _LOGGER.debug("Unknown 1NCE SMS status %s", raw)
    return mapped, raw.strip()


def parse_sms(item: Any, endpoint_id: str | None = None) -> OutgoingMessage | None:
    """Parse one SMS object of GET …/sms or …/sms/{id} (v1 or v2); None if it has no id."""
    if not isinstance(item, dict) or (ident := as_id(item.get("id"))) is None:
        return None
    status, raw = _status(item)
    endpoint = item.get("endpoint")
    iccid = as_str(item.get("iccid")) or (
        as_str(endpoint.get("name")) if isinstance(endpoint, dict) else None
    )
    return OutgoingMessage(
        part_id=ident,
        status=status,
        raw_status=raw,
        endpoint_id=iccid or endpoint_id,
        submitted_at=parse_date(item.get("submit_date")),
        final_at=parse_date(item.get("final_date")),
        expires_at=parse_date(item.get("expiry_date")),
    )


def _parse_sim(item: Any) -> Endpoint | None:
    """A SIM of the SIM list, keyed by its ICCID (19 digits, without Luhn)."""
    if not isinstance(item, dict) or (iccid := as_str(item.get("iccid"))) is None:
        return None
    msisdn = as_str(item.get("msisdn"))
    return Endpoint(
        id=iccid,
        name=as_str(item.get("label")) or iccid,
        msisdn=(normalize_msisdn(msisdn) or msisdn) if msisdn else None,
        iccid=iccid,
        imsi=as_str(item.get("imsi")),
        imei=as_str(item.get("imei")),
    )


def _created_id(response: Response) -> str | None:
    """The new SMS id: the v2 body's `id`, else the last segment of `Location`."""
    data = json_object(response.body)
    if data is not None and (ident := as_id(data.get("id"))) is not None:
        return ident
    return location_id(response.headers)


def parse_delivery_report(obj: Mapping[str, Any]) -> list[PollHint]:
    """A delivery report names an SMS to re-read; which of its two ids is the REST id is unknown.

    The Data Streamer's report carries a top-level `id` and `detail.sms.id`: both are hinted,
    and an id the integration does not track is ignored there.
    """
    detail = obj.get("detail")
    sms = detail.get("sms") if isinstance(detail, dict) else None
    candidates = (obj.get("id"), sms.get("id") if isinstance(sms, dict) else None)
    ids = list(dict.fromkeys(ident for ident in map(as_id, candidates) if ident is not None))
    if not ids:
        raise InvalidCallback("the delivery report names no SMS")
    return [PollHint(part_id=ident) for ident in ids]


def parse_incoming(obj: Mapping[str, Any]) -> IncomingMessage:
    """Parse an MO body in the documented shape or the real one (strings, `dest_address`)."""
    ident = as_id(obj.get("id"))
    text = _text(obj)
    sender = as_str(obj.get("source_address"))
    if ident is None:
        raise InvalidCallback("the incoming SMS has no id")
    if text is None:
        raise InvalidCallback("the incoming SMS has no text payload")
    if sender is None:
        raise InvalidCallback("the incoming SMS has no sender")
    endpoint = obj.get("endpoint")
    recipient = as_str(obj.get("destination_address")) or as_str(obj.get("dest_address"))
    return IncomingMessage(
        message_id=ident,
        sender=normalize_msisdn(sender) or sender,
        text=text,
        received_at=parse_date(obj.get("submit_date")) or datetime.now(UTC),
        recipient=recipient,
        endpoint_id=as_str(endpoint.get("name")) if isinstance(endpoint, dict) else None,
        multipart=multipart(obj.get("multi_part_info")),
    )


def _error_text(status: int, body: bytes, default: str) -> str:
    """Message and code of any 1NCE error body (v2 snake_case, auth camelCase, v1 empty)."""
    data = json_object(body) or {}
    message = as_str(data.get("message"))
    code = as_str(data.get("error_token")) or as_str(data.get("errorCode"))
    return status_text(status, message, code, default)


def _error_for(status: int, body: bytes) -> IotSmsError:
    """The typed error for a non-2xx answer (a first 401 and 429 are handled by the caller)."""
    kind, default = error_kind(status, _ERROR_TEXTS)
    if status == HTTPStatus.BAD_REQUEST:
        kind = _BadRequest  # told apart: the v1 SMS list refuses an unknown sort with 400
    return kind(_error_text(status, body, default))
