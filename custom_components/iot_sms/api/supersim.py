"""Super SIM SMS Commands client: one API, served by Twilio and by KORE Wireless.

Wire format and what is confirmed or inferred: ``reference/supersim-sms-api.md``. The two vendors
differ only in how requests are authenticated (Twilio: HTTP Basic with the Auth Token; KORE:
OAuth2 client credentials, a cached Bearer token renewed once on 401) and how callbacks are
signed (Twilio: ``X-Twilio-Signature``; KORE: ``kore-signature``). Both are small strategy
objects chosen by the two constructors; the client itself never asks which vendor it talks to.

Retry rules. A send (``POST /v1/SmsCommands``) is retried only when it provably was not
processed: a 401 (the request was refused before anything happened; KORE renews the token
first) or a 429, which Twilio documents as "never processed and always safe to retry" (once,
after ``Retry-After``, bounded). A connection that never opened is ``ConnectionFailed``. Once
the request may have been written, a timeout, a dropped connection or a 5xx raises
``DeliveryUnknown`` and is never retried, so a device never gets a command twice.

Callbacks. Neither the per-command status callback nor the Fleet's SMS Commands webhook is
documented beyond its signature, so :meth:`SuperSimClient.parse_callback` takes only the
SmsCommand SID from it (form, query string or JSON) and returns hints: the status or the
message is always read back from the API.

No Home Assistant imports; the aiohttp session is injected.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import AsyncGenerator, Callable, Collection, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, Final, Literal, Protocol
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from . import bounded_json
from .bearer import Grant, TokenCache
from .encoding import GSM7_BASIC
from .errors import (
    AuthError,
    CharacterSetError,
    ConnectionFailed,
    DeliveryUnknown,
    InvalidCallback,
    InvalidRequest,
    IotSmsError,
    MessageTooLong,
    NotCancellable,
    NotFound,
    SignatureError,
)
from .http_errors import ErrorTexts, error_kind
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
from .transport import USER_AGENT, Peer, Response, exchange, retry_delay
from .values import as_float, header, json_object, parse_date, printable

_LOGGER = logging.getLogger(__name__)

PROVIDER: Final = "supersim"
MAX_PAYLOAD: Final = 160
# Characters that are one byte whichever way the payload travels (ASCII in the form body,
# GSM-7 on the air): the intersection of printable ASCII and the GSM 03.38 basic alphabet.
# Twilio documents "160 single-byte characters" and no encoding options at all.
SINGLE_BYTE_CHARS: Final = frozenset(
    char for char in GSM7_BASIC if char in "\n\r" or (char.isascii() and char.isprintable())
)
# Twilio keeps trying to deliver an SMS Command for up to 24 hours [DOCS].
ATTEMPT_WINDOW: Final = timedelta(hours=24)
# How far the provider's clock may be behind ours when an ambiguous send is looked up.
SEND_CLOCK_SKEW: Final = timedelta(minutes=2)
PAGE_SIZE: Final = 100
SIM_PAGE_SIZE: Final = 1000
MAX_PAGES: Final = 1000
# Pages of a SIM's commands read to prove that an ambiguous send is not there.
FIND_MAX_PAGES: Final = 20
# Pages of a SIM's commands read for a poll before the rest is fetched one by one.
POLL_LIST_PAGES: Final = 2
# Renew a KORE token this long before it expires (or after half its lifetime, if shorter).
TOKEN_RENEW_MARGIN: Final = 300.0
# KORE's shortest token lifetime, assumed when a token answer has no usable expires_in.
ASSUMED_TOKEN_LIFETIME: Final = 3600.0
DEFAULT_RETRY_AFTER: Final = 1.0
MAX_RETRY_AFTER: Final = 10.0
MAX_CALLBACK_FIELDS: Final = 200

SMS_COMMAND_SID_RE: Final = re.compile(r"HC[0-9a-fA-F]{32}")
SIM_SID_RE: Final = re.compile(r"HS[0-9a-fA-F]{32}")

STATUS_MAP: Final[dict[str, SmsStatus]] = {
    "queued": SmsStatus.QUEUED,
    "sent": SmsStatus.SENT,
    "delivered": SmsStatus.DELIVERED,
    "failed": SmsStatus.FAILED,
}
_MT_STATUSES: Final = frozenset(STATUS_MAP)
_MO_STATUS: Final = "received"
_TO_SIM: Final = "to_sim"
_FROM_SIM: Final = "from_sim"
# Token errors (RFC 6749 5.2) that mean the client credentials are wrong, not the request.
_CREDENTIAL_ERRORS: Final = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})
# Callback field names, compared without case, "_" or "-": SmsCommandSid, sms_command_sid ...
_SID_FIELDS: Final = ("smscommandsid", "sid")
_SIM_FIELDS: Final = ("simsid", "sim")
_STATUS_FIELDS: Final = ("status", "smscommandstatus")
_DIRECTION_FIELDS: Final = ("direction", "smscommanddirection")
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}

_CAPABILITIES: Final = Capabilities(
    lists_endpoints=True,
    filters_by_tag=False,
    cancel=False,
    max_parts=1,
    max_single_chars=MAX_PAYLOAD,
    validity=False,
    custom_sender=False,
    push_reports=True,
    registers_callbacks=True,
    statuses=frozenset({SmsStatus.QUEUED, SmsStatus.SENT, SmsStatus.DELIVERED, SmsStatus.FAILED}),
)

# The vendor's name comes first in every error text ("Twilio: not found (HTTP 404)").
_ERROR_TEXTS: Final = ErrorTexts(
    refused="access refused",
    rate_limited="too many requests",
    not_found="not found",
    server_error="server error",
    rejected="request rejected",
    unexpected="unexpected answer",
)


class _TooManyPages(ConnectionFailed):
    """A list went on for more pages than the caller is willing to read."""


# ---------------------------------------------------------------------- authentication


class _Auth(Protocol):
    """How API requests are authenticated."""

    @property
    def vendor(self) -> str:
        """Who serves the API, for error texts ("Twilio", "KORE")."""
        ...

    @property
    def identity(self) -> str:
        """The account SID or API client id: the entry's unique id."""
        ...

    async def authorization(self) -> str:
        """The Authorization header for the next request."""
        ...

    async def renew(self, rejected: str) -> bool:
        """Forget a rejected Authorization; True if a retry with a new one can succeed."""
        ...


class _BasicAuth:
    """Twilio: HTTP Basic with the Account SID and Auth Token, which never expire."""

    vendor = "Twilio"

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.identity = account_sid
        credentials = f"{account_sid}:{auth_token}".encode()
        self._header = f"Basic {base64.b64encode(credentials).decode('ascii')}"

    async def authorization(self) -> str:
        return self._header

    async def renew(self, rejected: str) -> bool:
        # A rejected Auth Token stays rejected: the user has to enter a new one.
        return False


class _ClientCredentials:
    """KORE: an OAuth2 client-credentials token, fetched once and cached until near expiry."""

    vendor = "KORE"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout: aiohttp.ClientTimeout,
        clock: Callable[[], float],
    ) -> None:
        self.identity = client_id
        self._session = session
        self._token_url = token_url
        self._client_secret = client_secret
        self._timeout = timeout
        self._tokens = TokenCache(self._fetch, margin=TOKEN_RENEW_MARGIN, clock=clock)

    async def authorization(self) -> str:
        return f"Bearer {await self._tokens.get()}"

    async def renew(self, rejected: str) -> bool:
        await self._tokens.forget(rejected.removeprefix("Bearer "))
        return True

    async def _fetch(self) -> Grant:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.identity,
            "client_secret": self._client_secret,
        }
        response = await exchange(
            self._session,
            "POST",
            self._token_url,
            peer=Peer(self.vendor),
            timeouts=self._timeout,
            subject="the token request",
            data=form,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            allow_redirects=False,
        )
        if not response.ok:
            raise _token_error(response)
        data = response.json()
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectionFailed("KORE answered the token request without an access token")
        lifetime = as_float(data.get("expires_in"))
        if lifetime is None or lifetime <= 0:
            lifetime = ASSUMED_TOKEN_LIFETIME
        return Grant(token, lifetime)


def _token_error(response: Response) -> IotSmsError:
    """The typed error of a refused token request (the secret is never part of it)."""
    text, code = _error_details(response.body)
    reason = _error_text("KORE", response.status, text, code, "the token request was refused")
    if response.status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN) or (
        response.status == HTTPStatus.BAD_REQUEST and code in _CREDENTIAL_ERRORS
    ):
        return AuthError(f"KORE rejected the API client credentials: {reason}")
    return _error_for("KORE", response)


# ---------------------------------------------------------------------- callback signatures


@dataclass(frozen=True, slots=True)
class _Body:
    """A callback body as parsed before anything in it is trusted."""

    kind: Literal["empty", "form", "json"]
    fields: Sequence[tuple[str, str]] = ()


class _Verifier(Protocol):
    """How callbacks are authenticated."""

    def verify(self, request: CallbackRequest, body: _Body, known_urls: Sequence[str]) -> None:
        """Raise SignatureError unless the request is signed by the provider."""
        ...


class _TwilioSignature:
    """``X-Twilio-Signature``: Base64(HMAC-SHA1(Auth Token, URL + sorted POST fields))."""

    def __init__(self, auth_token: str) -> None:
        self._key = auth_token.encode()

    def verify(self, request: CallbackRequest, body: _Body, known_urls: Sequence[str]) -> None:
        signature = _header(request.headers, "X-Twilio-Signature").strip()
        if not signature:
            raise SignatureError("the callback has no X-Twilio-Signature")
        query = parse_qs(urlsplit(request.url).query)
        params: Sequence[tuple[str, str]] = ()
        if "bodySHA256" in query:
            # JSON bodies: the URL is signed, and carries the hash of the body.
            digest = hashlib.sha256(request.body).hexdigest()
            if not _same(digest, query["bodySHA256"][0].lower()):
                raise SignatureError("the callback body does not match its bodySHA256")
        elif body.kind == "json":
            raise SignatureError("the JSON callback has no bodySHA256: its body is not signed")
        elif body.kind == "form":
            params = body.fields
        for url in _candidate_urls(request.url, known_urls, with_query=True):
            if _same(self._sign(url, params), signature):
                return
        raise SignatureError("the X-Twilio-Signature does not match the Auth Token")

    def _sign(self, url: str, params: Sequence[tuple[str, str]]) -> str:
        values: dict[str, list[str]] = {}
        for name, value in params:
            values.setdefault(name, []).append(value)
        signed = url + "".join(
            name + value for name in sorted(values) for value in sorted(values[name])
        )
        mac = hmac.new(self._key, signed.encode(), hashlib.sha1).digest()
        return base64.b64encode(mac).decode("ascii")


class _KoreSignature:
    """``kore-signature``: SHA-256 hex of secret + METHOD + URI without query + body.

    The query string is not covered, which is harmless here: a callback is only a hint, and
    what it names is read back from the API.
    """

    def __init__(self, secret: str | None) -> None:
        self._secret = secret.encode() if secret else None

    def verify(self, request: CallbackRequest, body: _Body, known_urls: Sequence[str]) -> None:
        if self._secret is None:
            # Without a webhook secret KORE sends an empty header: there is nothing to check.
            return
        signature = _header(request.headers, "kore-signature").strip().lower()
        if not signature:
            raise SignatureError("the callback has no kore-signature")
        method = request.method.upper().encode()
        for uri in _candidate_urls(request.url, known_urls, with_query=False):
            digest = hashlib.sha256(self._secret + method + uri.encode() + request.body)
            if _same(digest.hexdigest(), signature):
                return
        raise SignatureError("the kore-signature does not match the webhook secret")


def _same(expected: str, presented: str) -> bool:
    # Bytes: compare_digest refuses str that is not ASCII, and a header can be anything.
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogatepass"))


def _header(headers: Mapping[str, str], name: str) -> str:
    return header(headers, name) or ""


def _port_variants(url: str) -> list[str]:
    """The URL, and as Twilio's validator also tries it: without a port, or with the default."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [url]
    default = _DEFAULT_PORTS.get(parts.scheme)
    if port is not None:
        netloc = parts.netloc.rpartition(":")[0]
    elif default is not None and parts.netloc:
        netloc = f"{parts.netloc}:{default}"
    else:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=netloc))]


def _candidate_urls(url: str, known_urls: Sequence[str], *, with_query: bool) -> list[str]:
    """URLs the provider may have signed: as the request arrived, or as we registered it.

    Behind a reverse proxy Home Assistant may see another scheme or host than the provider
    called; the URLs this client handed to the provider are what it signed.
    """
    parts = urlsplit(url)
    query = f"?{parts.query}" if with_query and parts.query else ""
    # As it arrived, character for character: a signature covers the exact string.
    received = url if with_query else urlunsplit(parts._replace(query="", fragment=""))
    bases = [received]
    for known in known_urls:
        known_parts = urlsplit(known)
        bases.append(urlunsplit(known_parts._replace(query="", fragment="")) + query)
    candidates: list[str] = []
    for base in bases:
        for variant in _port_variants(base):
            if variant not in candidates:
                candidates.append(variant)
    return candidates


def _parse_body(request: CallbackRequest) -> _Body:
    """Read a callback body as form or JSON (the content type is not documented)."""
    if request.method.upper() == "GET" or not request.body.strip():
        return _Body("empty")
    content_type = (request.content_type or _header(request.headers, "Content-Type")).lower()
    is_form = "x-www-form-urlencoded" in content_type
    if "json" in content_type or (not is_form and request.body.lstrip().startswith(b"{")):
        try:
            data = bounded_json.loads(request.body)
        except (UnicodeDecodeError, ValueError) as err:
            raise InvalidCallback("the callback body is not valid JSON") from err
        if not isinstance(data, dict):
            raise InvalidCallback("the callback JSON is not an object")
        fields = [(str(k), v) for k, value in data.items() if (v := _scalar(value)) is not None]
        return _Body("json", fields)
    try:
        text = request.body.decode("utf-8")
        fields = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_CALLBACK_FIELDS)
    except (UnicodeDecodeError, ValueError) as err:
        raise InvalidCallback("the callback body is not a form") from err
    return _Body("form", fields)


def _scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _field_key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


# ---------------------------------------------------------------------- the client


class SuperSimClient:
    """A Super SIM account at Twilio or at KORE (satisfies ``SmsClient``)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth: _Auth,
        verifier: _Verifier,
        base_url: str,
        *,
        callback_url: str | None = None,
        request_timeout: float = 20,
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> None:
        """Use one of the vendor constructors, ``twilio`` or ``kore``."""
        self._session = session
        self._auth = auth
        self._verifier = verifier
        self._base_url = base_url.rstrip("/")
        self._callback_url = callback_url
        self._timeout = _timeout(request_timeout)
        self._peer = Peer(auth.vendor, "the SMS Command may have been created")
        self._max_retry_after = max_retry_after
        # No limit is documented: one request at a time per account, and 429s honoured.
        self._slot = asyncio.Lock()
        # URLs handed to the provider (status callbacks, Fleet webhooks): what it signs.
        self._known_urls: list[str] = [callback_url] if callback_url else []

    @classmethod
    def twilio(
        cls,
        session: aiohttp.ClientSession,
        account_sid: str,
        auth_token: str,
        base_url: str,
        *,
        callback_url: str | None = None,
        request_timeout: float = 20,
        max_retry_after: float = MAX_RETRY_AFTER,
    ) -> SuperSimClient:
        """A Twilio account: Basic auth with the Account SID and Auth Token."""
        return cls(
            session,
            _BasicAuth(account_sid, auth_token),
            _TwilioSignature(auth_token),
            base_url,
            callback_url=callback_url,
            request_timeout=request_timeout,
            max_retry_after=max_retry_after,
        )

    @classmethod
    def kore(
        cls,
        session: aiohttp.ClientSession,
        client_id: str,
        client_secret: str,
        base_url: str,
        *,
        token_url: str,
        webhook_secret: str | None = None,
        callback_url: str | None = None,
        request_timeout: float = 20,
        max_retry_after: float = MAX_RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> SuperSimClient:
        """A KORE account: an API client's OAuth2 token; callbacks checked with the secret."""
        auth = _ClientCredentials(
            session, token_url, client_id, client_secret, _timeout(request_timeout), clock
        )
        return cls(
            session,
            auth,
            _KoreSignature(webhook_secret),
            base_url,
            callback_url=callback_url,
            request_timeout=request_timeout,
            max_retry_after=max_retry_after,
        )

    @property
    def provider(self) -> str:
        """Short provider name."""
        return PROVIDER

    @property
    def provider_name(self) -> str:
        """The provider's name as people write it (the hub device's manufacturer)."""
        return "Super SIM"

    @property
    def capabilities(self) -> Capabilities:
        """One SMS of at most 160 single-byte characters, no cancel, no sender, no validity."""
        return _CAPABILITIES

    # ------------------------------------------------------------------ transport

    async def _request(
        self,
        method: str,
        target: str | URL,
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        write: bool = False,
    ) -> Response:
        """One API call with auth renewal and the retry rules of the module doc.

        Returns any 2xx response; raises a typed error for everything else.
        """
        renewed = retried = False
        while True:
            authorization = await self._auth.authorization()
            response = await exchange(
                self._session,
                method,
                target if isinstance(target, URL) else f"{self._base_url}{target}",
                peer=self._peer,
                timeouts=self._timeout,
                slots=(self._slot,),
                send=write,
                params=params,
                data=form,
                headers={
                    "Authorization": authorization,
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                },
                allow_redirects=False,
            )
            if (
                response.status == HTTPStatus.UNAUTHORIZED
                and not renewed
                and await self._auth.renew(authorization)
            ):
                renewed = True
                continue
            if response.status == HTTPStatus.TOO_MANY_REQUESTS and not retried:
                retried = True
                retry_after = response.headers.get("Retry-After")
                await asyncio.sleep(
                    retry_delay(retry_after, DEFAULT_RETRY_AFTER, self._max_retry_after)
                )
                continue
            if write and response.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                text, code = _error_details(response.body)
                raise DeliveryUnknown(
                    _error_text(
                        self._auth.vendor,
                        response.status,
                        text,
                        code,
                        "server error while sending; the SMS Command may have been created",
                    )
                )
            if not response.ok:
                raise _error_for(self._auth.vendor, response)
            return response

    async def _get_json(self, target: str | URL, params: Mapping[str, str] | None = None) -> Any:
        return (await self._request("GET", target, params=params)).json()

    async def _get_object(self, target: str, what: str) -> dict[str, Any]:
        data = await self._get_json(target)
        if not isinstance(data, dict):
            raise ConnectionFailed(f"{self._auth.vendor} answered the {what} with no object")
        return data

    async def _pages(
        self, path: str, key: str, params: Mapping[str, str], max_pages: int = MAX_PAGES
    ) -> AsyncGenerator[list[dict[str, Any]]]:
        """Yield the items of each page, following ``meta.next_page_url`` until it is null.

        The next page is always asked of our own base URL (only its path and query are taken):
        the credentials never go to a host the user did not configure.
        """
        target: str | URL = path
        query: Mapping[str, str] | None = params
        seen: set[str] = set()
        for _ in range(max_pages):
            data = await self._get_json(target, query)
            items = data.get(key) if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ConnectionFailed(f"{self._auth.vendor} answered the list without {key!r}")
            yield [item for item in items if isinstance(item, dict)]
            meta = data.get("meta")
            next_url = meta.get("next_page_url") if isinstance(meta, dict) else None
            if not isinstance(next_url, str) or not next_url.strip():
                return
            path_qs = URL(next_url.strip(), encoded=True).raw_path_qs
            if path_qs in seen:  # a list pointing back at a page already read would never end
                return
            seen.add(path_qs)
            target, query = URL(f"{self._base_url}{path_qs}", encoded=True), None
        raise _TooManyPages(f"{self._auth.vendor} lists more than {max_pages} pages of {key}")

    # ------------------------------------------------------------------ account, SIMs

    async def async_get_account(self) -> AccountInfo:
        """Validate the credentials with one SIM list call (KORE: the token comes first)."""
        await self._request("GET", "/v1/Sims", params={"PageSize": "1"})
        identity = self._auth.identity
        return AccountInfo(unique_id=identity, title=f"Super SIM ({identity})")

    async def async_list_endpoints(self, tag: str | None = None) -> list[Endpoint]:
        """Every Sim of the account (all pages); Super SIM has no tags to filter on."""
        endpoints: list[Endpoint] = []
        async with aclosing(
            self._pages("/v1/Sims", "sims", {"PageSize": str(SIM_PAGE_SIZE)})
        ) as pages:
            async for page in pages:
                endpoints.extend(e for item in page if (e := _parse_sim(item)) is not None)
        return endpoints

    # ------------------------------------------------------------------ sending

    def plan_message(self, text: str) -> list[MessagePart]:
        """One SMS Command: at most 160 single-byte characters, never split."""
        _check_payload(text)
        return [MessagePart(text=text, encoding="gsm7")]

    async def async_send_part(
        self, endpoint_id: str, part: MessagePart, options: SendOptions
    ) -> str:
        """Create an SMS Command for a Sim; return its SID (``HC…``)."""
        if part.udh or part.encoding != "gsm7":
            raise InvalidRequest("Super SIM SMS Commands are single SMS without a UDH")
        _check_payload(part.text)
        if options.sender:
            raise InvalidRequest("Super SIM SMS Commands always come from 000; no sender")
        if options.expires_at is not None:
            raise InvalidRequest("Super SIM SMS Commands are tried for 24 hours; no validity")
        form = {"Sim": endpoint_id, "Payload": part.text}
        if self._callback_url:
            form["CallbackUrl"] = self._callback_url
            form["CallbackMethod"] = "POST"
        response = await self._request("POST", "/v1/SmsCommands", form=form, write=True)
        data = json_object(response.body)
        sid = _sid(data.get("sid"), SMS_COMMAND_SID_RE) if data is not None else None
        if sid is None:
            raise DeliveryUnknown(
                f"{self._auth.vendor} accepted the SMS Command but did not return its SID"
            )
        _LOGGER.debug("SMS Command %s created for Sim %s", sid, endpoint_id)
        return sid

    async def async_find_sent(
        self,
        endpoint_id: str,
        part: MessagePart,
        sent_after: datetime,
        known: Collection[str],
    ) -> str | None:
        """Look an ambiguous send up among the Sim's commands: its SID, or None if absent.

        The provider keeps no client reference: the send is recognised by its payload among
        the Sim's MT commands created since shortly before it that are not tracked already.
        Absence is only concluded after every page was read.
        """
        earliest = sent_after - SEND_CLOCK_SKEW
        candidates: list[tuple[datetime, str]] = []
        params = {"Sim": endpoint_id, "Direction": _TO_SIM, "PageSize": str(PAGE_SIZE)}
        async with aclosing(
            self._pages("/v1/SmsCommands", "sms_commands", params, FIND_MAX_PAGES)
        ) as pages:
            async for page in pages:
                for item in page:
                    sid = _sid(item.get("sid"), SMS_COMMAND_SID_RE)
                    if (
                        sid is None
                        or sid in known
                        or item.get("payload") != part.text
                        or item.get("direction") not in (_TO_SIM, None)
                    ):
                        continue
                    created = parse_date(item.get("date_created"))
                    if created is None or created >= earliest:
                        candidates.append((created or sent_after, sid))
        # The oldest unknown match is the one closest after the send.
        return min(candidates)[1] if candidates else None

    # ------------------------------------------------------------------ tracking

    async def async_poll(self, endpoint_id: str, part_ids: Sequence[str]) -> list[OutgoingMessage]:
        """One fetch for one SID; for several, the Sim's list (then fetches for what it missed)."""
        wanted = list(dict.fromkeys(part_ids))
        if len(wanted) <= 1:
            return [m for sid in wanted if (m := await self._fetch_command(sid)) is not None]
        found: dict[str, OutgoingMessage] = {}
        exhausted = False
        params = {"Sim": endpoint_id, "Direction": _TO_SIM, "PageSize": str(PAGE_SIZE)}
        try:
            async with aclosing(
                self._pages("/v1/SmsCommands", "sms_commands", params, POLL_LIST_PAGES)
            ) as pages:
                async for page in pages:
                    for item in page:
                        message = parse_command(item)
                        if message is not None and message.part_id in wanted:
                            found[message.part_id] = message
                    if len(found) == len(wanted):
                        break
                else:
                    exhausted = True
        except _TooManyPages:
            pass
        if not exhausted:
            for sid in wanted:
                if sid not in found and (message := await self._fetch_command(sid)) is not None:
                    found[sid] = message
        return [found[sid] for sid in wanted if sid in found]

    async def _fetch_command(self, sid: str) -> OutgoingMessage | None:
        if _sid(sid, SMS_COMMAND_SID_RE) is None:
            return None
        try:
            data = await self._get_object(f"/v1/SmsCommands/{quote(sid, safe='')}", "SMS Command")
        except NotFound:
            return None
        return parse_command(data)

    async def async_cancel(self, endpoint_id: str, part_id: str) -> None:
        """SMS Commands have no cancel (no DELETE, no update): never asks the API."""
        raise NotCancellable("Super SIM SMS Commands cannot be canceled")

    # ------------------------------------------------------------------ callbacks

    def parse_callback(self, request: CallbackRequest) -> list[CallbackItem]:
        """Verify a status callback or a Fleet webhook and name the SMS Command it is about.

        Parameter names and content type are undocumented: form, query string and JSON are
        read, and only the SID (and the Sim SID, direction and status as hints) is taken.
        A callback that does not say which kind it is yields both hints: a status hint for
        an id nobody tracks is ignored, and a fetched MT command is no incoming message.
        """
        if request.method.upper() not in ("GET", "POST"):
            raise InvalidCallback(f"unexpected method {request.method}")
        body = _parse_body(request)
        self._verifier.verify(request, body, self._known_urls)
        fields = {_field_key(k): v.strip() for k, v in request.query.items()}
        fields.update((_field_key(k), v.strip()) for k, v in body.fields)
        sid = next((s for f in _SID_FIELDS if (s := _sid(fields.get(f), SMS_COMMAND_SID_RE))), None)
        if sid is None:
            raise InvalidCallback("the callback names no SMS Command SID")
        sim_sid = next((s for f in _SIM_FIELDS if (s := _sid(fields.get(f), SIM_SID_RE))), None)
        direction = next((fields[f].lower() for f in _DIRECTION_FIELDS if fields.get(f)), "")
        status = next((fields[f].lower() for f in _STATUS_FIELDS if fields.get(f)), "")
        incoming = direction == _FROM_SIM or (not direction and status == _MO_STATUS)
        outgoing = direction == _TO_SIM or (not direction and status in _MT_STATUSES)
        items: list[CallbackItem] = []
        if outgoing or not incoming:
            items.append(PollHint(sid))
        if incoming or not outgoing:
            items.append(IncomingHint(sid, endpoint_id=sim_sid))
        return items

    async def async_fetch_incoming(self, hint: IncomingHint) -> IncomingMessage | None:
        """Read the SMS Command a webhook named; None unless it is one from a SIM."""
        sid = _sid(hint.message_id, SMS_COMMAND_SID_RE)
        if sid is None:
            return None
        try:
            data = await self._get_object(f"/v1/SmsCommands/{sid}", "SMS Command")
        except NotFound:
            return None
        direction = data.get("direction")
        if direction != _FROM_SIM and not (direction is None and data.get("status") == _MO_STATUS):
            return None
        sim_sid = _sid(data.get("sim_sid"), SIM_SID_RE) or hint.endpoint_id
        payload = data.get("payload")
        if sim_sid is None or not isinstance(payload, str):
            raise ConnectionFailed(
                f"{self._auth.vendor} answered SMS Command {sid} without its Sim or payload"
            )
        return IncomingMessage(
            message_id=sid,
            sender=sim_sid,
            text=payload,
            received_at=parse_date(data.get("date_created")) or datetime.now(UTC),
            endpoint_id=sim_sid,
        )

    # ------------------------------------------------------------------ Fleets (MO webhook)

    async def async_list_service_profiles(self) -> list[ServiceProfile]:
        """The account's Fleets: each has one SMS Commands URL for its SIMs' MO."""
        profiles: list[ServiceProfile] = []
        async with aclosing(
            self._pages("/v1/Fleets", "fleets", {"PageSize": str(PAGE_SIZE)})
        ) as pages:
            async for page in pages:
                profiles.extend(p for item in page if (p := self._parse_fleet(item)) is not None)
        return profiles

    async def async_register_callback(
        self, profile_id: str, url: str, secret: str
    ) -> ServiceProfile:
        """Point a Fleet's SMS Commands webhook at url (signed by the provider, not by secret)."""
        if not profile_id.strip():
            raise InvalidRequest("no Fleet given")
        response = await self._request(
            "POST",
            f"/v1/Fleets/{quote(profile_id.strip(), safe='')}",
            form={"SmsCommandsUrl": url, "SmsCommandsMethod": "POST"},
        )
        if url not in self._known_urls:
            self._known_urls.append(url)
        profile = self._parse_fleet(response.json())
        if profile is None:
            raise ConnectionFailed(f"{self._auth.vendor} answered the Fleet update with no Fleet")
        return profile

    def _parse_fleet(self, item: Any) -> ServiceProfile | None:
        if not isinstance(item, dict) or not isinstance(sid := item.get("sid"), str) or not sid:
            return None
        name = item.get("unique_name")
        name = name if isinstance(name, str) and name else sid
        if item.get("sms_commands_enabled") is False:
            _LOGGER.warning(
                "Super SIM Fleet %s has SMS Commands disabled: its SIMs can neither receive "
                "nor send SMS Commands until it is enabled at %s",
                name,
                self._auth.vendor,
            )
        url = item.get("sms_commands_url")
        return ServiceProfile(
            id=sid, name=name, callback_url=url if isinstance(url, str) and url else None
        )


# ---------------------------------------------------------------------- parsing helpers


def _timeout(request_timeout: float) -> aiohttp.ClientTimeout:
    # A separate connect limit: a connection that never opened is not a maybe-sent SMS.
    return aiohttp.ClientTimeout(total=request_timeout, connect=min(10.0, request_timeout / 2))


def _check_payload(text: str) -> None:
    if len(text) > MAX_PAYLOAD:
        raise MessageTooLong(
            f"an SMS Command carries at most {MAX_PAYLOAD} characters; this text has {len(text)}"
        )
    outside = sorted({char for char in text if char not in SINGLE_BYTE_CHARS})
    if outside:
        shown = ", ".join(f"U+{ord(char):04X}" for char in outside[:5])
        raise CharacterSetError(
            "SMS Commands carry only single-byte characters (ASCII letters, digits and GSM-7 "
            f"punctuation); not {shown}"
        )


def _sid(value: Any, pattern: re.Pattern[str]) -> str | None:
    if isinstance(value, str) and pattern.fullmatch(value.strip()):
        return value.strip()
    return None


def _parse_sim(item: Mapping[str, Any]) -> Endpoint | None:
    sid = _sid(item.get("sid"), SIM_SID_RE)
    if sid is None:
        return None
    iccid = item.get("iccid") if isinstance(item.get("iccid"), str) else None
    name = item.get("unique_name")
    fleet = item.get("fleet_sid")
    return Endpoint(
        id=sid,
        name=name if isinstance(name, str) and name else iccid or sid,
        iccid=iccid or None,
        service_profile_id=fleet if isinstance(fleet, str) and fleet else None,
    )


def parse_command(item: Any) -> OutgoingMessage | None:
    """Parse one SmsCommand resource; None without a SID. Unknown statuses map to None."""
    if not isinstance(item, dict) or (sid := _sid(item.get("sid"), SMS_COMMAND_SID_RE)) is None:
        return None
    raw = item.get("status")
    raw = raw.strip() if isinstance(raw, str) and raw.strip() else "unknown"
    status = STATUS_MAP.get(raw.lower())
    created = parse_date(item.get("date_created"))
    return OutgoingMessage(
        part_id=sid,
        status=status,
        raw_status=raw,
        endpoint_id=_sid(item.get("sim_sid"), SIM_SID_RE),
        submitted_at=created,
        final_at=parse_date(item.get("date_updated")) if status and status.final else None,
        expires_at=created + ATTEMPT_WINDOW if created else None,
    )


def _error_details(body: bytes) -> tuple[str | None, str | None]:
    """(text, code) of an error body: RFC 9457, Twilio's legacy shape, or an OAuth2 error."""
    data = json_object(body)
    if data is None:
        return None, None
    text = next(
        (
            value
            for key in ("detail", "message", "error_description", "title")
            if isinstance(value := data.get(key), str) and value.strip()
        ),
        None,
    )
    code = next(
        (
            str(value)
            for key in ("code", "error")
            if isinstance(value := data.get(key), str | int) and not isinstance(value, bool)
        ),
        None,
    )
    return text, code


def _error_text(vendor: str, status: int, text: str | None, code: str | None, default: str) -> str:
    detail = f"code {code}, HTTP {status}" if code else f"HTTP {status}"
    return f"{vendor}: {printable(text or default)} ({detail})"


def _error_for(vendor: str, response: Response) -> IotSmsError:
    """The typed error of a non-2xx answer (a 401 or 429 already retried once)."""
    text, code = _error_details(response.body)
    kind, default = error_kind(response.status, _ERROR_TEXTS)
    return kind(_error_text(vendor, response.status, text, code, default))
