"""Client for Eseye's SMS API (AnyNet Messaging Service).

Wire format (see ``reference/eseye-sms-api.md``): three form-encoded POST requests with the
credentials in the body, answered with HTTP 200 whatever happened. The body is ``OK!``,
``Error<N>: <desc>``, ``ERROR N \u2013 <desc>`` (en dash) or an XML ``<statusResponse>``; all
are parsed tolerantly. Eseye keeps no message ids of its own: the client creates a 32-hex
``message_id`` per SMS and uses it for status, cancel and delivery receipts. Callbacks
(receipts and MO SMS) are neither signed nor documented in detail, so
:meth:`EseyeClient.parse_callback` accepts GET and POST with query string, form or JSON fields.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import quote, unquote_to_bytes

import aiohttp

from . import bounded_json
from .encoding import decode_tpdu_text, split_separate, to_ucs2_hex
from .errors import (
    AuthError,
    CharacterSetError,
    ConnectionFailed,
    DeliveryUnknown,
    InvalidCallback,
    InvalidRequest,
    IotSmsError,
    IpNotAllowedError,
    MessageTooLong,
    NoCredit,
    NotCancellable,
    NotFound,
    RateLimited,
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
    OutgoingMessage,
    SendOptions,
    ServiceProfile,
    SmsStatus,
)
from .numbers import normalize_msisdn
from .transport import Peer, Response, exchange, repeat_after_429
from .values import header, printable, utc

# Separate SMS rather than concatenated ones, still up to 10 per text.
_CAPABILITIES = Capabilities(lists_endpoints=False)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://messaging.eseye.com"
PATH_SEND: Final = "/mtsmsapi/index/post"
PATH_STATUS: Final = "/mtstatusapi/index/post"
PATH_CANCEL: Final = "/mtcancelapi/index/post"

# Optional send fields a caller may pass through SendOptions.extra; anything else would be
# answered with error 519 (unknown parameter), so it is dropped instead.
_EXTRA_FIELDS: Final = frozenset({"pid", "esm", "Replace"})

ERR_IP_NOT_ALLOWED: Final = 510
ERR_TOO_LONG: Final = 525
ERR_AUTH: Final = 530
ERR_BAD_MESSAGE_ID: Final = 535
ERR_NO_CREDIT: Final = 570
ERR_CHARSET: Final = 580

# A write (a send or a cancel) that got no answer may have been carried out all the same.
_PEER: Final = Peer("Eseye", "the SMS may have been accepted")
_MAX_RATE_LIMIT_DELAY: Final = 5.0
# Sends whose outcome is unknown that are remembered for async_find_sent; only recent ones
# are ever looked up (right after the send).
_MAX_UNCONFIRMED: Final = 50

# "Error530: ...", "ERROR 530 \u2013 ...", "error 530 - ...", "ERROR 530: ..." (en/em dash too).
_ERROR_RE: Final = re.compile(
    r"^\s*error\s*(\d{3})\b\s*[:\u2013\u2014-]?\s*(.*)$", re.IGNORECASE | re.DOTALL
)
_OK_RE: Final = re.compile(r"^\s*ok!?\s*$", re.IGNORECASE)
_TAG_RE: Final = re.compile(r"<[^>]*>")
_XML_UNSAFE_RE: Final = re.compile(r"<!\s*(doctype|entity)", re.IGNORECASE)


def _element_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"<{name}\b[^>]*>(.*?)</{name}\s*>", re.IGNORECASE | re.DOTALL)


_STATUS_ELEMENT_RE: Final = _element_re("status")
_DESCRIPTION_ELEMENT_RE: Final = _element_re("description")
_MESSAGE_ID_ELEMENT_RE: Final = _element_re("message_id")

_STATUS_MAP: Final[dict[str, SmsStatus]] = {
    "queued": SmsStatus.QUEUED,
    "sent": SmsStatus.SENT,
    "mgmt": SmsStatus.SENT,
    "delivered": SmsStatus.DELIVERED,
    "blocked": SmsStatus.FAILED,
    "error": SmsStatus.FAILED,
    "failed": SmsStatus.FAILED,
    "cancelled": SmsStatus.CANCELED,
    "canceled": SmsStatus.CANCELED,
    "expired": SmsStatus.EXPIRED,
}

# Stands in for GSM characters Latin-1 cannot carry while planning (see plan_message).
_UCS2_PLACEHOLDER: Final = "\ue000"


@dataclass(frozen=True, slots=True)
class EseyeReply:
    """One parsed Eseye response body.

    kind "ok" is ``OK!``; "error" carries the error ``code`` and Eseye's ``description``;
    "status" is a ``<statusResponse>`` with the message ``status`` (raw, lower-cased).
    """

    kind: Literal["ok", "error", "status"]
    code: int | None = None
    status: str | None = None
    description: str = ""
    message_id: str | None = None


def map_status(raw: str) -> SmsStatus | None:
    """Map an Eseye status (status API, cancel API or receipt) to the contract's status."""
    return _STATUS_MAP.get(raw.strip().lower())


def _error_from_text(text: str) -> EseyeReply | None:
    match = _ERROR_RE.match(text)
    if match is None:
        return None
    return EseyeReply("error", code=int(match.group(1)), description=match.group(2).strip())


def _xml_fields(body: str) -> tuple[str | None, str, str | None] | None:
    """Return (status, description, message_id) of a statusResponse, or None."""
    if _XML_UNSAFE_RE.search(body):
        return None
    try:
        root = ET.fromstring(body)  # noqa: S314 - DOCTYPE/ENTITY refused above
    except ET.ParseError:
        # The documented examples are malformed XML; fall back to picking the elements.
        status_match = _STATUS_ELEMENT_RE.search(body)
        if status_match is None:
            return None
        description_match = _DESCRIPTION_ELEMENT_RE.search(body)
        id_match = _MESSAGE_ID_ELEMENT_RE.search(body)
        return (
            status_match.group(1).strip(),
            description_match.group(1).strip() if description_match else "",
            id_match.group(1).strip() if id_match else None,
        )
    status = root.findtext("status")
    if status is None:
        status = root.findtext(".//status")
    if status is None:
        return None
    description = root.findtext("description") or root.findtext(".//description") or ""
    message_id = root.findtext("message_id") or root.findtext(".//message_id")
    return status.strip(), description.strip(), message_id.strip() if message_id else None


def _parse_markup(text: str) -> EseyeReply | None:
    fields = _xml_fields(text)
    if fields is not None:
        status, description, message_id = fields
        error = _error_from_text(description) or _error_from_text(status or "")
        if error is not None:
            return error
        return EseyeReply(
            "status", status=(status or "").lower(), description=description, message_id=message_id
        )
    # An HTML page wrapping a plain reply.
    stripped = _TAG_RE.sub(" ", text).strip()
    if _XML_UNSAFE_RE.search(text) or not stripped:
        return None
    if _OK_RE.match(stripped):
        return EseyeReply("ok")
    return _error_from_text(stripped)


def parse_reply(body: str) -> EseyeReply | None:
    """Parse an Eseye response body tolerantly; None if it is none of the known shapes.

    An XML reply whose description carries an error code (``ERROR 530 - ...``) is an error;
    an XML ``<status>error</status>`` without a code is the message status "error".
    """
    text = body.strip().lstrip("\ufeff").strip()
    if not text:
        return None
    if _OK_RE.match(text):
        return EseyeReply("ok")
    if (error := _error_from_text(text)) is not None:
        return error
    if text.startswith("<"):
        return _parse_markup(text)
    return None


_ERROR_TYPES: Final[dict[int, type[InvalidRequest | AuthError]]] = {
    ERR_AUTH: AuthError,
    ERR_NO_CREDIT: NoCredit,
    ERR_CHARSET: CharacterSetError,
    ERR_TOO_LONG: MessageTooLong,
    ERR_BAD_MESSAGE_ID: NotFound,
}


def error_for(reply: EseyeReply) -> IotSmsError:
    """Return the typed error for an Eseye error reply (unlisted codes: InvalidRequest)."""
    code = reply.code
    message = f"Eseye error {code}: {reply.description}".rstrip(": ")
    if code == ERR_IP_NOT_ALLOWED:
        return IpNotAllowedError(
            f"{message}. Add Home Assistant's public IP address to the API allowlist in "
            "Infinity Classic (Settings > Messaging API), or turn the allowlist off"
        )
    return _ERROR_TYPES.get(code or 0, InvalidRequest)(message)


def _eseye_gsm7(text: str) -> bool:
    """Whether ``text`` can go through Eseye's ``text`` field (decoded there as Latin-1)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _form_value(value: str) -> str:
    # Eseye's backend decodes percent-escapes as Latin-1 bytes ("£" -> "%A3").
    try:
        return quote(value, safe="", encoding="latin-1")
    except UnicodeEncodeError:
        return quote(value, safe="", encoding="utf-8")


def encode_form(fields: Mapping[str, str]) -> str:
    """Percent-encode form fields as Latin-1 bytes, as Eseye's documentation does."""
    return "&".join(f"{_form_value(key)}={_form_value(value)}" for key, value in fields.items())


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_form(body: bytes) -> dict[str, str]:
    """Parse a form body; each value is UTF-8, or Latin-1 when it is not valid UTF-8."""
    fields: dict[str, str] = {}
    for pair in body.split(b"&"):
        if not pair.strip():
            continue
        key, sep, value = pair.partition(b"=")
        if not sep:
            continue
        name = _decode_text(unquote_to_bytes(key.replace(b"+", b" "))).strip()
        if name:
            fields[name] = _decode_text(unquote_to_bytes(value.replace(b"+", b" ")))
    return fields


def _parse_json(body: bytes) -> dict[str, str]:
    try:
        data = bounded_json.loads(_decode_text(body))
    except ValueError as err:
        raise InvalidCallback("callback body is not valid JSON") from err
    if not isinstance(data, dict):
        raise InvalidCallback("callback JSON is not an object")
    return {
        str(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in data.items()
        if value is not None
    }


def _body_fields(body: bytes, content_type: str) -> dict[str, str]:
    if not body.strip():
        return {}
    if "json" in content_type:
        return _parse_json(body)
    if "x-www-form-urlencoded" in content_type:
        return _parse_form(body)
    try:
        return _parse_json(body)
    except InvalidCallback:
        return _parse_form(body)


class EseyeClient:
    """An Eseye SMS API account (satisfies ``SmsClient``)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        username: str,
        password: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        callback_url: str | None = None,
        api_msisdn: str | None = None,
        request_timeout: float = 20,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Store the session and credentials; nothing is sent until a method is called."""
        self._session = session
        self._username = username
        self._password = password
        self._base_url = base_url.rstrip("/")
        self._callback_url = callback_url
        self._api_msisdn = api_msisdn
        self._timeout = aiohttp.ClientTimeout(
            total=request_timeout, connect=min(10.0, request_timeout)
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        # Seconds before the single retry of a read answered 429 (Retry-After wins, capped).
        self.rate_limit_delay = 1.0
        # (destination, part) -> message_ids of sends whose answer was lost, oldest first.
        self._unconfirmed: dict[tuple[str, MessagePart], list[str]] = {}

    @property
    def provider(self) -> str:
        """Short provider name."""
        return "eseye"

    @property
    def provider_name(self) -> str:
        """The provider's name as people write it (the hub device's manufacturer)."""
        return "Eseye"

    @property
    def capabilities(self) -> Capabilities:
        """The SMS API cannot list SIMs (the user adds them) nor register its own MO URL."""
        return _CAPABILITIES

    # --- transport -----------------------------------------------------------------------

    async def _request(self, path: str, fields: Mapping[str, str], *, write: bool) -> EseyeReply:
        """POST a form and return the parsed reply; Eseye errors are raised as typed errors.

        A write (sending or canceling an SMS) is never retried once it may have been carried
        out: anything after the connection was made that is no readable answer raises
        DeliveryUnknown. A 429 is a refusal, not an outcome, so any request is retried once
        after it (Retry-After, capped).
        """
        response = await repeat_after_429(
            partial(self._post, path, fields, write=write),
            default=self.rate_limit_delay,
            cap=_MAX_RATE_LIMIT_DELAY,
        )
        return self._interpret(response.status, _decode_text(response.body), write=write)

    async def _post(self, path: str, fields: Mapping[str, str], *, write: bool) -> Response:
        data = encode_form({"username": self._username, "password": self._password, **fields})
        return await exchange(
            self._session,
            "POST",
            f"{self._base_url}{path}",
            peer=_PEER,
            timeouts=self._timeout,
            send=write,
            data=data.encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        )

    def _interpret(self, status: int, body: str, *, write: bool) -> EseyeReply:
        reply = parse_reply(body)
        if reply is not None and reply.kind == "error":
            raise error_for(reply)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            if write:
                raise DeliveryUnknown(
                    f"Eseye answered HTTP {status}; the SMS may have been accepted"
                )
            raise ConnectionFailed(f"Eseye answered HTTP {status}: {printable(body)}")
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            raise RateLimited("Eseye answered 429 Too Many Requests")
        if reply is None:
            # An answer nobody can read (a proxy's page, a body cut off) says nothing about the
            # request: after a write it may well have been carried out, so it is no refusal.
            if write:
                raise DeliveryUnknown(
                    f"unreadable answer from Eseye (HTTP {status}): {printable(body) or 'empty'}"
                )
            raise ConnectionFailed(
                f"unexpected answer from Eseye (HTTP {status}): {printable(body)}"
            )
        return reply

    # --- account -------------------------------------------------------------------------

    async def async_get_account(self) -> AccountInfo:
        """Check the credentials with a status request for a random message id.

        Eseye has no "who am I" call: 530 means bad credentials, 510 a blocked IP, and any
        other Eseye answer (usually 535, unknown message id) means the account works.
        """
        fields = {"message_id": secrets.token_hex(16)}
        response = await self._post(PATH_STATUS, fields, write=False)
        status, body = response.status, _decode_text(response.body)
        reply = parse_reply(body) if status == HTTPStatus.OK else None
        if reply is None or reply.kind == "ok":  # a status request never answers OK!
            raise ConnectionFailed(
                f"no Eseye SMS API answer at {self._base_url} (HTTP {status}): {printable(body)}"
            )
        if reply.kind == "error" and reply.code in (ERR_AUTH, ERR_IP_NOT_ALLOWED):
            raise error_for(reply)
        return AccountInfo(unique_id=self._username, title=f"Eseye ({self._username})")

    async def async_list_endpoints(self, tag: str | None = None) -> list[Endpoint]:
        """Eseye's SMS API cannot list SIMs; the user adds them by hand."""
        return []

    async def async_list_service_profiles(self) -> list[ServiceProfile]:
        """Eseye has no service profiles."""
        return []

    async def async_register_callback(
        self,
        profile_id: str,
        url: str,
        secret: str,
    ) -> ServiceProfile:
        """Not supported: the MO POST URL is configured in Infinity Classic."""
        raise InvalidRequest(
            "not supported: Eseye's MO POST URL is set in Infinity Classic "
            "(Settings > Messaging API); receipts use a per-message receipt_url"
        )

    # --- sending -------------------------------------------------------------------------

    def plan_message(self, text: str) -> list[MessagePart]:
        """Split into separate SMS (no concatenation at Eseye), at most 10.

        A text is GSM-7 for Eseye only if every character is GSM basic and Latin-1 (Eseye
        decodes ``text`` as Latin-1, so Δ, Φ, Γ... cannot pass); otherwise it is UCS-2. To reuse
        ``split_separate`` for UCS-2, such characters are swapped for a non-GSM placeholder of
        the same UCS-2 cost while splitting, and the parts are cut from the original text.
        """
        if _eseye_gsm7(text):
            return split_separate(text)
        masked = "".join(char if _eseye_gsm7(char) else _UCS2_PLACEHOLDER for char in text)
        planned = split_separate(masked)
        parts: list[MessagePart] = []
        start = 0
        for part in planned:
            end = start + len(part.text)
            parts.append(MessagePart(text=text[start:end], encoding="ucs2"))
            start = end
        return parts

    async def async_send_part(
        self, endpoint_id: str, part: MessagePart, options: SendOptions
    ) -> str:
        """Send one SMS to a SIM MSISDN and return the message_id created for it.

        A ``gsm7`` part goes in ``text`` (unless it holds characters Latin-1 cannot carry,
        which go as UCS-2), a ``ucs2`` part as ``short_message`` hex with ``data_coding=8``.
        Only fields that are set are sent.
        """
        message_id = secrets.token_hex(16)
        fields: dict[str, str] = {
            "destination": normalize_msisdn(endpoint_id) or endpoint_id,
            "message_id": message_id,
        }
        if self._callback_url:
            fields["receipt_url"] = self._callback_url
        if part.encoding == "gsm7" and _eseye_gsm7(part.text):
            fields["text"] = part.text
        else:
            fields["short_message"] = to_ucs2_hex(part.text)
            fields["data_coding"] = "8"
        if options.sender:
            fields["source"] = options.sender
        if options.expires_at is not None:
            fields["expiry"] = utc(options.expires_at).strftime("%Y-%m-%d %H:%M:%S")
        for key, value in options.extra.items():
            if key in _EXTRA_FIELDS and value:
                fields[key] = value
            else:
                _LOGGER.debug("Dropping send option %s, which Eseye does not accept", key)
        try:
            reply = await self._request(PATH_SEND, fields, write=True)
        except DeliveryUnknown:
            self._remember_unconfirmed((fields["destination"], part), message_id)
            raise
        if reply.kind != "ok":
            # A statusResponse ([SPEC] shows one for MT); anything but a failure means accepted.
            mapped = map_status(reply.status or "")
            if mapped in (SmsStatus.FAILED, SmsStatus.CANCELED, SmsStatus.EXPIRED):
                raise InvalidRequest(f"Eseye refused the SMS: {reply.status} ({reply.description})")
        return message_id

    def _remember_unconfirmed(self, key: tuple[str, MessagePart], message_id: str) -> None:
        self._unconfirmed.setdefault(key, []).append(message_id)
        while len(self._unconfirmed) > _MAX_UNCONFIRMED:
            del self._unconfirmed[next(iter(self._unconfirmed))]

    async def async_find_sent(
        self,
        endpoint_id: str,
        part: MessagePart,
        sent_after: datetime,
        known: Collection[str],
    ) -> str | None:
        """Ask Eseye about the message_id a send whose answer was lost went out with.

        Eseye keeps the id the client made up, so a status request settles it (no need for
        ``sent_after``): a status means Eseye has the SMS, error 535 (unknown id) that it never
        got it.
        """
        key = (normalize_msisdn(endpoint_id) or endpoint_id, part)
        candidates = [i for i in self._unconfirmed.get(key, []) if i not in known]
        if not candidates:
            # Not sent by this client (or long forgotten): nothing proves it did not arrive.
            raise InvalidRequest("no send with an unknown outcome to look up")
        for message_id in reversed(candidates):
            try:
                await self._status(message_id)
            except NotFound:
                continue
            self._unconfirmed[key].remove(message_id)
            if not self._unconfirmed[key]:
                del self._unconfirmed[key]
            return message_id
        return None

    # --- tracking ------------------------------------------------------------------------

    async def _status(self, part_id: str) -> EseyeReply:
        reply = await self._request(PATH_STATUS, {"message_id": part_id}, write=False)
        if reply.kind != "status":
            raise InvalidRequest(f"Eseye's status answer has no status: {reply.kind}")
        return reply

    async def async_poll(self, endpoint_id: str, part_ids: Sequence[str]) -> list[OutgoingMessage]:
        """One status request per part (Eseye has no list); ids Eseye does not know are skipped."""
        result: list[OutgoingMessage] = []
        for part_id in part_ids:
            try:
                reply = await self._status(part_id)
            except NotFound:
                _LOGGER.debug("Eseye does not know message %s", part_id)
                continue
            raw = reply.status or ""
            result.append(
                OutgoingMessage(
                    part_id=part_id,
                    status=map_status(raw),
                    raw_status=raw,
                    endpoint_id=endpoint_id,
                )
            )
        return result

    async def async_cancel(self, endpoint_id: str, part_id: str) -> None:
        """Cancel, then ask for the status: only a canceled status counts as success.

        Eseye's cancel answer shows the state at the moment of cancellation (there is no
        documented "cancelled" value), so a status request tells whether it worked. That also
        settles a cancel whose answer was lost or unreadable: it may have been carried out.
        """
        try:
            try:
                await self._request(PATH_CANCEL, {"message_id": part_id}, write=True)
            except DeliveryUnknown as err:
                _LOGGER.debug("Cancel of %s may have reached Eseye (%s); asking", part_id, err)
            reply = await self._status(part_id)
        except NotFound as err:
            raise NotCancellable(f"Eseye does not know message {part_id}", None) from err
        raw = reply.status or ""
        mapped = map_status(raw)
        if mapped is SmsStatus.CANCELED:
            return
        shown = mapped.value if mapped is not None else raw
        raise NotCancellable(f"message {part_id} was not canceled; it is {shown}", shown)

    # --- callbacks -----------------------------------------------------------------------

    async def async_fetch_incoming(self, hint: IncomingHint) -> IncomingMessage | None:
        """Never needed: this provider's callbacks carry the whole message."""
        return None

    def parse_callback(self, request: CallbackRequest) -> list[CallbackItem]:
        """Parse a delivery receipt or an MO SMS (GET or POST; query, form or JSON).

        Eseye signs nothing (the webhook URL is the secret), so this never raises
        SignatureError; anything unrecognisable raises InvalidCallback.
        """
        if request.method.upper() not in ("GET", "POST", "PUT"):
            raise InvalidCallback(f"unexpected method {request.method}")
        content_type = (
            request.content_type or header(request.headers, "Content-Type") or ""
        ).lower()
        fields = {str(k).strip().lower(): str(v) for k, v in request.query.items()}
        fields.update((k.lower(), v) for k, v in _body_fields(request.body, content_type).items())
        now = self._clock()
        source = fields.get("source", "").strip()
        text = fields.get("text")
        binary = fields.get("binary", "").strip()
        if source and (text is not None or binary):
            return [self._incoming(fields, source, text, binary, now)]
        part_id = (fields.get("messageid") or fields.get("message_id") or "").strip()
        raw_status = (fields.get("status") or fields.get("statuscode") or "").strip()
        if part_id and raw_status and text is None and not binary and "source" not in fields:
            return [
                DeliveryReport(
                    part_id=part_id,
                    status=map_status(raw_status),
                    raw_status=raw_status,
                    final_at=now,
                )
            ]
        raise InvalidCallback("not an Eseye delivery receipt or MO SMS")

    def _incoming(
        self,
        fields: Mapping[str, str],
        source: str,
        text: str | None,
        binary: str,
        now: datetime,
    ) -> IncomingMessage:
        if not text and binary:
            try:
                text = decode_tpdu_text(binary)
            except ValueError as err:
                raise InvalidCallback(f"cannot decode the MO PDU: {err}") from err
        # Empty when Eseye sent none: a content hash would make a device's second "OK" look
        # like a retry of the first. The router gives such a message an id of its own.
        message_id = (fields.get("message_id") or fields.get("messageid") or "").strip()
        destination = fields.get("destination", "").strip() or self._api_msisdn
        return IncomingMessage(
            message_id=message_id,
            sender=source,
            text=text or "",
            received_at=now.astimezone(UTC),
            recipient=destination or None,
            endpoint_id=normalize_msisdn(source),
        )
