"""EseyeClient against the Eseye simulator over real HTTP on 127.0.0.1.

Expectations come from the Eseye reference (reference/eseye-sms-api.md), not from the client.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.iot_sms.api.errors import (
    AuthError,
    CharacterSetError,
    ConnectionFailed,
    DeliveryUnknown,
    InvalidCallback,
    InvalidRequest,
    IpNotAllowedError,
    MessageTooLong,
    NoCredit,
    NotCancellable,
    RateLimited,
    SignatureError,
)
from custom_components.iot_sms.api.eseye import (
    EseyeClient,
    encode_form,
    error_for,
    map_status,
    parse_reply,
)
from custom_components.iot_sms.api.models import (
    AccountInfo,
    CallbackRequest,
    DeliveryReport,
    IncomingMessage,
    MessagePart,
    SendOptions,
    SmsStatus,
)
from simulator.eseye import PATH_CANCEL, PATH_SEND, PATH_STATUS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from simulator.eseye import EseyeSimulator

ONLINE = "447700900001"
OFFLINE = "447700900002"
ECHO = "447700900003"
BLOCKED = "447700900004"
BROKE = "447700900005"
API_MSISDN = "447700900000"
NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
HEX32 = re.compile(r"[0-9a-f]{32}")
NO_OPTIONS = SendOptions()


def gsm(text: str) -> MessagePart:
    return MessagePart(text=text, encoding="gsm7")


def ucs2(text: str) -> MessagePart:
    return MessagePart(text=text, encoding="ucs2")


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    content_type: str
    headers: dict[str, str]

    def as_callback(self) -> CallbackRequest:
        return CallbackRequest(
            method=self.method,
            headers=self.headers,
            query=self.query,
            body=self.body,
            content_type=self.content_type,
        )


@dataclass
class Receiver:
    url: str
    received: list[Received]
    # What the receiver answers (tests that stand it in for a misbehaving Eseye change these).
    status: int = 200
    body: str = "OK"
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def sim(eseye_sim: EseyeSimulator) -> EseyeSimulator:
    eseye_sim.delivery_delay = 0.04
    eseye_sim.add_sim(ONLINE, "online")
    eseye_sim.add_sim(OFFLINE, "offline")
    eseye_sim.add_sim(ECHO, "echo")
    eseye_sim.add_sim(BLOCKED, "blocked")
    eseye_sim.add_sim(BROKE, "online", credit=False)
    return eseye_sim


@pytest.fixture
async def receiver(socket_enabled: None) -> AsyncIterator[Receiver]:
    """A tiny HTTP server standing in for Home Assistant's webhook (receipts and MO)."""
    received: list[Received] = []
    state = Receiver("", received)

    async def handle(request: web.Request) -> web.Response:
        received.append(
            Received(
                request.method,
                request.path,
                dict(request.query),
                await request.read(),
                request.content_type if request.body_exists else "",
                dict(request.headers),
            )
        )
        return web.Response(text=state.body, status=state.status, headers=state.headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        state.url = str(server.make_url("")).rstrip("/")
        yield state
    finally:
        await server.close()


def make_client(
    sim: EseyeSimulator,
    session: aiohttp.ClientSession,
    *,
    password: str = "demo-password",  # noqa: S107 - the simulator's demo account
    callback_url: str | None = None,
    base_url: str | None = None,
    request_timeout: float = 5,
) -> EseyeClient:
    client = EseyeClient(
        session,
        "demo",
        password,
        base_url or sim.base_url,
        callback_url=callback_url,
        api_msisdn=API_MSISDN,
        request_timeout=request_timeout,
        clock=lambda: NOW,
    )
    client.rate_limit_delay = 0.01
    return client


@pytest.fixture
def client(sim: EseyeSimulator, session: aiohttp.ClientSession) -> EseyeClient:
    return make_client(sim, session)


def requests_to(sim: EseyeSimulator, path: str) -> int:
    return sum(1 for r in sim.requests if r.path == path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- basics ------------------------------------------------------------------------------


async def test_identity_and_unsupported_features(client: EseyeClient) -> None:
    assert client.provider == "eseye"
    assert client.capabilities.lists_endpoints is False
    assert await client.async_list_endpoints() == []
    assert await client.async_list_endpoints("tag") == []
    assert await client.async_list_service_profiles() == []
    with pytest.raises(InvalidRequest, match="not supported"):
        await client.async_register_callback("1", "https://example.com/cb", "secret")


# --- sending -----------------------------------------------------------------------------


async def test_send_ok_stores_message_with_our_id_and_receipt_url(
    sim: EseyeSimulator, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    callback = f"{receiver.url}/receipt"
    client = make_client(sim, session, callback_url=callback)
    message_id = await client.async_send_part(ONLINE, gsm("Hello World"), NO_OPTIONS)
    assert HEX32.fullmatch(message_id)
    stored = sim.messages[message_id]
    assert stored.destination == ONLINE
    assert stored.text == "Hello World"
    assert stored.receipt_url == callback
    assert stored.form["text"] == "Hello World"
    # A fresh id per SMS.
    other = await client.async_send_part(ONLINE, gsm("Hello again"), NO_OPTIONS)
    assert other != message_id
    assert HEX32.fullmatch(other)


async def test_destination_is_normalised(sim: EseyeSimulator, client: EseyeClient) -> None:
    message_id = await client.async_send_part(f"+{ONLINE}", gsm("hi"), NO_OPTIONS)
    assert sim.messages[message_id].destination == ONLINE
    message_id = await client.async_send_part(f"00{ONLINE}", gsm("hi"), NO_OPTIONS)
    assert sim.messages[message_id].destination == ONLINE


async def test_only_set_fields_are_sent(
    sim: EseyeSimulator, session: aiohttp.ClientSession
) -> None:
    client = make_client(sim, session)
    await client.async_send_part(ONLINE, gsm("ping"), SendOptions(extra={"foo": "bar"}))
    form = sim.forms(PATH_SEND)[-1]
    assert set(form) == {"username", "password", "destination", "message_id", "text"}
    raw = sim.requests[-1].body
    assert b"foo" not in raw
    assert not re.search(rb"=(&|$)", raw), raw  # no empty field

    client = make_client(sim, session, callback_url="http://127.0.0.1:9/receipt?t=1")
    expires = datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    await client.async_send_part(
        ONLINE,
        gsm("ping"),
        SendOptions(sender="IOTHUB", expires_at=expires, extra={"pid": "0"}),
    )
    form = sim.forms(PATH_SEND)[-1]
    assert set(form) == {
        "username",
        "password",
        "destination",
        "message_id",
        "text",
        "receipt_url",
        "source",
        "expiry",
        "pid",
    }
    assert form["expiry"] == "2030-01-02 03:04:05"  # converted to UTC
    assert form["source"] == "IOTHUB"
    assert form["receipt_url"] == "http://127.0.0.1:9/receipt?t=1"
    assert sim.messages[form["message_id"]].expiry == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_ucs2_path_cjk_and_emoji(sim: EseyeSimulator, client: EseyeClient) -> None:
    message_id = await client.async_send_part(ONLINE, ucs2("你好"), NO_OPTIONS)
    form = sim.messages[message_id].form
    assert form["short_message"].upper() == "4F60597D"
    assert form["data_coding"] == "8"
    assert "text" not in form
    assert sim.messages[message_id].text == "你好"

    message_id = await client.async_send_part(ONLINE, ucs2("ok 😀"), NO_OPTIONS)
    form = sim.messages[message_id].form
    assert form["short_message"].upper() == "006F006B0020D83DDE00"
    assert sim.messages[message_id].text == "ok 😀"


async def test_latin1_text_arrives_intact(sim: EseyeSimulator, client: EseyeClient) -> None:
    parts = client.plan_message("£5 é")
    assert parts == [MessagePart(text="£5 é", encoding="gsm7")]
    message_id = await client.async_send_part(ONLINE, parts[0], NO_OPTIONS)
    raw = sim.requests[-1].body
    assert b"%A35" in raw.upper()
    assert b"%E9" in raw.upper()
    assert sim.messages[message_id].text == "£5 é"


async def test_gsm_basic_but_not_latin1_goes_ucs2(sim: EseyeSimulator, client: EseyeClient) -> None:
    assert client.plan_message("Δ=5") == [MessagePart(text="Δ=5", encoding="ucs2")]
    message_id = await client.async_send_part(ONLINE, client.plan_message("Δ=5")[0], NO_OPTIONS)
    form = sim.messages[message_id].form
    assert form["short_message"].upper() == "0394003D0035"
    assert form["data_coding"] == "8"
    assert sim.messages[message_id].text == "Δ=5"
    # A gsm7 part holding Δ cannot travel in `text` either.
    message_id = await client.async_send_part(ONLINE, gsm("ΦΓ"), NO_OPTIONS)
    assert sim.messages[message_id].form["short_message"].upper() == "03A60393"


async def test_long_text_is_split_into_separate_sms(
    sim: EseyeSimulator, client: EseyeClient
) -> None:
    text = " ".join(f"word{i:04d}" for i in range(60))  # 539 chars, 9 per word and space
    parts = client.plan_message(text)
    assert len(parts) == 4  # 17 whole words (153 chars) fit in 160
    assert [len(p.text) for p in parts[:3]] == [153, 153, 153]
    assert "".join(p.text for p in parts) == text
    assert all(p.encoding == "gsm7" and p.udh is None and len(p.text) <= 160 for p in parts)
    ids = [await client.async_send_part(ONLINE, part, NO_OPTIONS) for part in parts]
    assert len(set(ids)) == len(parts)
    assert [sim.messages[i].text for i in ids] == [p.text for p in parts]

    cjk = "你好 " * 50  # 150 chars, UCS-2
    parts = client.plan_message(cjk)
    assert len(parts) == 3
    assert "".join(p.text for p in parts) == cjk
    assert all(p.encoding == "ucs2" and len(p.text.encode("utf-16-be")) <= 140 for p in parts)
    ids = [await client.async_send_part(ONLINE, part, NO_OPTIONS) for part in parts]
    assert "".join(sim.messages[i].text for i in ids) == cjk

    greek = "ΔΔΔ " * 40  # 160 GSM basic chars, but UCS-2 for Eseye
    parts = client.plan_message(greek)
    assert len(parts) == 3
    assert "".join(p.text for p in parts) == greek
    assert all(p.encoding == "ucs2" and len(p.text) <= 70 for p in parts)
    assert all(p.text.endswith(" ") for p in parts)  # split at word boundaries


async def test_more_than_ten_parts_is_too_long(client: EseyeClient) -> None:
    with pytest.raises(MessageTooLong):
        client.plan_message("abcdefghi " * 170)  # 1700 chars > 10 x 160
    with pytest.raises(MessageTooLong):
        client.plan_message("Δ " * 400)  # 800 chars > 10 x 70


# --- error codes -------------------------------------------------------------------------


async def test_530_bad_credentials(sim: EseyeSimulator, session: aiohttp.ClientSession) -> None:
    good = make_client(sim, session)
    message_id = await good.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    bad = make_client(sim, session, password="wrong")
    with pytest.raises(AuthError):
        await bad.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    assert list(sim.messages) == [message_id]
    with pytest.raises(AuthError):  # status API: XML error
        await bad.async_poll(ONLINE, [message_id])
    with pytest.raises(AuthError):  # cancel API: plain "ERROR 530 - ..."
        await bad.async_cancel(ONLINE, message_id)
    with pytest.raises(AuthError):
        await bad.async_get_account()


async def test_510_ip_not_allowed(sim: EseyeSimulator, client: EseyeClient) -> None:
    sim.allowed_ips = ["10.1.2.3"]
    with pytest.raises(IpNotAllowedError, match="allowlist") as err:
        await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    assert "127.0.0.1" in str(err.value)
    with pytest.raises(IpNotAllowedError):
        await client.async_get_account()
    with pytest.raises(IpNotAllowedError):
        await client.async_poll(ONLINE, ["0" * 32])
    assert sim.messages == {}


async def test_570_no_credit(sim: EseyeSimulator, client: EseyeClient) -> None:
    with pytest.raises(NoCredit):
        await client.async_send_part(BROKE, gsm("hi"), NO_OPTIONS)
    assert sim.messages == {}


async def test_580_character_set(sim: EseyeSimulator, client: EseyeClient) -> None:
    # "[" is Latin-1 but only in the GSM extension table: Eseye's 7-bit text refuses it.
    with pytest.raises(CharacterSetError):
        await client.async_send_part(ONLINE, gsm("[x]"), NO_OPTIONS)
    assert sim.messages == {}


async def test_525_too_long(sim: EseyeSimulator, client: EseyeClient) -> None:
    with pytest.raises(MessageTooLong, match="525"):
        await client.async_send_part(ONLINE, gsm("a" * 161), NO_OPTIONS)
    with pytest.raises(MessageTooLong, match="525"):
        await client.async_send_part(ONLINE, ucs2("你" * 71), NO_OPTIONS)
    assert sim.messages == {}
    await client.async_send_part(ONLINE, gsm("a" * 160), NO_OPTIONS)
    await client.async_send_part(ONLINE, ucs2("你" * 70), NO_OPTIONS)
    assert len(sim.messages) == 2


async def test_555_unknown_msisdn_and_511_missing(client: EseyeClient) -> None:
    with pytest.raises(InvalidRequest, match="555") as err:
        await client.async_send_part("449999999999", gsm("hi"), NO_OPTIONS)
    assert type(err.value) is InvalidRequest
    with pytest.raises(InvalidRequest, match="511"):
        await client.async_send_part("", gsm("hi"), NO_OPTIONS)


async def test_519_and_526_from_the_simulator_parse_as_invalid_request(
    sim: EseyeSimulator, session: aiohttp.ClientSession
) -> None:
    """The client never sends these; feed the simulator's real answers to the parser."""
    base = {"username": "demo", "password": "demo-password", "destination": ONLINE}
    cases = {
        526: {**base, "text": "hi", "receipt_url": "http://127.0.0.1:9/"},
        511: {"username": "demo", "password": "demo-password", "text": "hi"},
        519: {**base, "text": "hi", "colour": "red"},
    }
    for code, form in cases.items():
        async with session.post(f"{sim.base_url}{PATH_SEND}", data=form) as resp:
            assert resp.status == 200
            body = await resp.text()
        reply = parse_reply(body)
        assert reply is not None
        assert reply.kind == "error"
        assert reply.code == code
        error = error_for(reply)
        assert type(error) is InvalidRequest
        assert str(code) in str(error)
    assert "colour" in body  # the last (519) answer names the unknown field


async def test_simulator_rejects_get_with_503(
    sim: EseyeSimulator, session: aiohttp.ClientSession
) -> None:
    for path in (PATH_SEND, PATH_STATUS, PATH_CANCEL):
        async with session.get(f"{sim.base_url}{path}") as resp:
            assert resp.status == 200
            body = await resp.text()
        assert body == "ERROR 503 \u2013 GET is not currently a supported method of this API"
        reply = parse_reply(body)
        assert reply is not None
        assert reply.code == 503


async def test_simulator_decodes_text_as_latin1(
    sim: EseyeSimulator, session: aiohttp.ClientSession
) -> None:
    """UTF-8 percent-encoding (what a naive client sends) arrives mangled and fails 580."""
    form = {"username": "demo", "password": "demo-password", "destination": ONLINE, "text": "é"}
    async with session.post(f"{sim.base_url}{PATH_SEND}", data=form) as resp:
        body = await resp.text()
    assert body.startswith("Error580:")


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ("Error530: API Requests authentication failed.", AuthError),
        ("ERROR 530 \u2013 API Requests authentication failed.", AuthError),
        ("error 530 - API Requests authentication failed.", AuthError),
        ("ERROR 510: API Requests from this IP Address (1.2.3.4) not allowed.", IpNotAllowedError),
        ("Error570: Destination MSISDN (447700900001) has no credit", NoCredit),
        ("ERROR 580 \u2013 Please use only GSM 03.38 basic 7 bit characters", CharacterSetError),
        ("Error525: Max message length of 160 chars exceeded", MessageTooLong),
        ("Error519: Unknown parameter: colour", InvalidRequest),
        ("ERROR 555 \u2013 Invalid MSISDN (123) supplied", InvalidRequest),
        (
            '<?xml version="1.0"?><statusResponse><status>error</status>'
            "<description>ERROR 530 \u2013 API Requests authentication failed.</description>"
            "</statusResponse>",
            AuthError,
        ),
        (
            "<statusResponse><status>error</status>"
            "<description>Error510: API Requests from this IP Address (1.2.3.4) are not allowed."
            "</description></statusResponse>",
            IpNotAllowedError,
        ),
        ("<html><body><p>Error570: no credit</p></body></html>", NoCredit),
    ],
)
def test_error_formats(body: str, error_type: type[Exception]) -> None:
    reply = parse_reply(body)
    assert reply is not None
    assert reply.kind == "error"
    assert type(error_for(reply)) is error_type


def test_reply_shapes() -> None:
    assert parse_reply("OK!")
    ok = parse_reply(" OK!\r\n")
    assert ok is not None
    assert ok.kind == "ok"
    html_ok = parse_reply("<html><body>OK!</body></html>")
    assert html_ok is not None
    assert html_ok.kind == "ok"
    status = parse_reply(
        "<statusResponse>\n  <status>delivered</status>\n"
        "  <description>Message delivered</description>\n</statusResponse>"
    )
    assert status is not None
    assert (status.kind, status.status, status.description) == (
        "status",
        "delivered",
        "Message delivered",
    )
    # The troubleshooting page prints malformed XML; a status "error" without a code is
    # the message's state, not an API error.
    broken = parse_reply("<statusResponse><status>error</status><description>An error occurred")
    assert broken is not None
    assert (broken.kind, broken.status) == ("status", "error")
    with_id = parse_reply(
        "<statusResponse><status>sent</status><message_id>abc</message_id></statusResponse>"
    )
    assert with_id is not None
    assert with_id.message_id == "abc"
    # Unknown shapes and unsafe XML.
    for body in (
        "",
        "Internal Server Error",
        '{"message": "Internal server error"}',
        '<!DOCTYPE x [<!ENTITY a "b">]><statusResponse><status>&a;</status></statusResponse>',
        "<html><body>Not here</body></html>",
        "<statusResponse><description>no status element",
        "<foo><bar>1</bar></foo>",
    ):
        assert parse_reply(body) is None, body


# --- status ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("queued", SmsStatus.QUEUED),
        ("sent", SmsStatus.SENT),
        ("mgmt", SmsStatus.SENT),
        ("delivered", SmsStatus.DELIVERED),
        ("blocked", SmsStatus.FAILED),
        ("error", SmsStatus.FAILED),
        ("failed", SmsStatus.FAILED),
        ("cancelled", SmsStatus.CANCELED),
        ("canceled", SmsStatus.CANCELED),
        ("expired", SmsStatus.EXPIRED),
        ("Delivered", SmsStatus.DELIVERED),
        ("rejected", None),
        ("", None),
    ],
)
def test_status_mapping(raw: str, expected: SmsStatus | None) -> None:
    assert map_status(raw) == expected


async def test_poll_maps_simulator_states(sim: EseyeSimulator, client: EseyeClient) -> None:
    sim.delivery_delay = 30
    ids = [await client.async_send_part(ONLINE, gsm(f"m{i}"), NO_OPTIONS) for i in range(5)]
    raws = ["queued", "mgmt", "sent", "blocked", "delivered"]
    for message_id, raw in zip(ids, raws, strict=True):
        if raw != "queued":
            sim.set_status(message_id, raw)
    before = requests_to(sim, PATH_STATUS)
    unknown = "f" * 32
    result = await client.async_poll(ONLINE, [*ids, unknown])
    assert requests_to(sim, PATH_STATUS) - before == 6  # one request per part
    assert [m.part_id for m in result] == ids  # the unknown id is skipped
    assert [m.raw_status for m in result] == raws
    assert [m.status for m in result] == [
        SmsStatus.QUEUED,
        SmsStatus.SENT,
        SmsStatus.SENT,
        SmsStatus.FAILED,
        SmsStatus.DELIVERED,
    ]
    assert all(m.endpoint_id == ONLINE for m in result)


async def test_state_machine_reaches_delivered_via_sent_or_mgmt(
    sim: EseyeSimulator, client: EseyeClient
) -> None:
    ids = [await client.async_send_part(ONLINE, gsm(f"m{i}"), NO_OPTIONS) for i in range(2)]
    await sim.wait_idle()
    result = await client.async_poll(ONLINE, ids)
    assert [m.status for m in result] == [SmsStatus.DELIVERED, SmsStatus.DELIVERED]
    middle = {sim.messages[i].history[0] for i in ids}
    assert middle == {"sent", "mgmt"}


async def test_poll_unknown_status_is_kept_raw(sim: EseyeSimulator, client: EseyeClient) -> None:
    sim.delivery_delay = 30
    message_id = await client.async_send_part(ONLINE, gsm("x"), NO_OPTIONS)
    sim.messages[message_id].status = "paused"
    [result] = await client.async_poll(ONLINE, [message_id])
    assert result.status is None
    assert result.raw_status == "paused"


# --- cancel ------------------------------------------------------------------------------


async def test_cancel_queued(sim: EseyeSimulator, client: EseyeClient) -> None:
    sim.delivery_delay = 30
    message_id = await client.async_send_part(ONLINE, gsm("stop"), NO_OPTIONS)
    await client.async_cancel(ONLINE, message_id)
    assert sim.messages[message_id].status == "cancelled"
    assert requests_to(sim, PATH_CANCEL) == 1
    assert requests_to(sim, PATH_STATUS) == 1  # confirmed with a status request
    [result] = await client.async_poll(ONLINE, [message_id])
    assert result.status == SmsStatus.CANCELED


async def test_cancel_delivered_is_not_cancellable(
    sim: EseyeSimulator, client: EseyeClient
) -> None:
    message_id = await client.async_send_part(ONLINE, gsm("done"), NO_OPTIONS)
    await sim.wait_idle()
    assert sim.messages[message_id].status == "delivered"
    with pytest.raises(NotCancellable) as err:
        await client.async_cancel(ONLINE, message_id)
    assert err.value.status == "delivered"
    assert sim.messages[message_id].status == "delivered"


async def test_cancel_blocked_and_unknown(sim: EseyeSimulator, client: EseyeClient) -> None:
    message_id = await client.async_send_part(BLOCKED, gsm("x"), NO_OPTIONS)
    with pytest.raises(NotCancellable) as err:
        await client.async_cancel(BLOCKED, message_id)
    assert err.value.status == "failed"
    with pytest.raises(NotCancellable) as err:
        await client.async_cancel(ONLINE, "e" * 32)
    assert err.value.status is None


# --- transport failures ------------------------------------------------------------------


async def test_no_retry_after_server_error(sim: EseyeSimulator, client: EseyeClient) -> None:
    sim.faults.server_errors = 1
    with pytest.raises(DeliveryUnknown):
        await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    assert requests_to(sim, PATH_SEND) == 1


async def test_no_retry_after_dropped_connection(sim: EseyeSimulator, client: EseyeClient) -> None:
    sim.faults.drop_after_read = 1
    with pytest.raises(DeliveryUnknown):
        await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    assert requests_to(sim, PATH_SEND) == 1


async def test_no_retry_after_timeout(sim: EseyeSimulator, session: aiohttp.ClientSession) -> None:
    client = make_client(sim, session, request_timeout=0.2)
    sim.faults.latency = 0.4
    with pytest.raises(DeliveryUnknown):
        await client.async_send_part(ONLINE, gsm("slow"), NO_OPTIONS)
    # The whole request reached the provider: that is why it must not be retried.
    assert requests_to(sim, PATH_SEND) == 1
    assert b"text=slow" in sim.requests[-1].body


async def test_send_rate_limited_is_retried_once(sim: EseyeSimulator, client: EseyeClient) -> None:
    """A 429 refused the send (nothing was carried out): one retry, then the error."""
    sim.faults.rate_limits = 1
    message_id = await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    assert list(sim.messages) == [message_id]
    assert requests_to(sim, PATH_SEND) == 2
    sim.faults.rate_limits = 2
    with pytest.raises(RateLimited):
        await client.async_send_part(ONLINE, gsm("again"), NO_OPTIONS)
    assert requests_to(sim, PATH_SEND) == 4
    assert len(sim.messages) == 1


async def test_read_failures(sim: EseyeSimulator, client: EseyeClient) -> None:
    sim.delivery_delay = 30
    message_id = await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    sim.faults.server_errors = 1
    with pytest.raises(ConnectionFailed):
        await client.async_poll(ONLINE, [message_id])
    sim.faults.drop_after_read = 1
    with pytest.raises(ConnectionFailed):
        await client.async_poll(ONLINE, [message_id])
    sim.faults.rate_limits = 1  # one 429, then the single retry succeeds
    [result] = await client.async_poll(ONLINE, [message_id])
    assert result.status == SmsStatus.QUEUED
    sim.faults.rate_limits = 2
    with pytest.raises(RateLimited):
        await client.async_poll(ONLINE, [message_id])


async def test_connection_refused(session: aiohttp.ClientSession, socket_enabled: None) -> None:
    client = EseyeClient(session, "demo", "pw", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionFailed) as err:
        await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    assert not isinstance(err.value, DeliveryUnknown)
    with pytest.raises(ConnectionFailed):
        await client.async_get_account()


async def test_unexpected_answers(session: aiohttp.ClientSession, receiver: Receiver) -> None:
    """Stand the receiver in for an Eseye that answers oddly."""
    client = EseyeClient(session, "demo", "pw", receiver.url)
    receiver.body = "<html><body>Maintenance</body></html>"
    # Unreadable is no refusal: the SMS may have gone out.
    with pytest.raises(DeliveryUnknown, match="Maintenance"):
        await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    with pytest.raises(ConnectionFailed, match="Maintenance"):
        await client.async_poll(ONLINE, ["a" * 32])
    receiver.body = "OK!"  # a status request must answer a statusResponse
    with pytest.raises(InvalidRequest):
        await client.async_poll(ONLINE, ["a" * 32])
    # [SPEC] shows an XML statusResponse for MT: a pending status means accepted,
    # a failed one means refused.
    receiver.body = "<statusResponse><status>sent</status></statusResponse>"
    assert HEX32.fullmatch(await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS))
    receiver.body = "<statusResponse><status>blocked</status></statusResponse>"
    with pytest.raises(InvalidRequest, match="blocked"):
        await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)
    # An Eseye error inside an HTTP 500 is still a definite refusal.
    receiver.status, receiver.body = 500, "Error570: no credit"
    with pytest.raises(NoCredit):
        await client.async_send_part(ONLINE, gsm("hi"), NO_OPTIONS)


@pytest.mark.parametrize("retry_after", ["0.01", "soon", "-1", ""])
async def test_rate_limit_retry_after(
    session: aiohttp.ClientSession, receiver: Receiver, retry_after: str
) -> None:
    client = EseyeClient(session, "demo", "pw", receiver.url)
    client.rate_limit_delay = 0.01
    receiver.status, receiver.body = 429, "Too Many Requests"
    receiver.headers = {"Retry-After": retry_after} if retry_after else {}
    with pytest.raises(RateLimited):
        await client.async_poll(ONLINE, ["a" * 32])
    assert len(receiver.received) == 2  # one retry for a read


async def test_naive_expiry_is_taken_as_utc(sim: EseyeSimulator, client: EseyeClient) -> None:
    message_id = await client.async_send_part(
        ONLINE,
        gsm("x"),
        SendOptions(expires_at=datetime(2031, 2, 3, 4, 5, 6)),  # noqa: DTZ001
    )
    assert sim.messages[message_id].form["expiry"] == "2031-02-03 04:05:06"


def test_form_encoding_is_latin1_with_utf8_fallback() -> None:
    assert encode_form({"text": "£5 é&x=1"}) == "text=%A35%20%E9%26x%3D1"
    # Not Latin-1 (a password, say): UTF-8 escapes rather than a crash.
    assert encode_form({"password": "p€"}) == "password=p%E2%82%AC"


# --- account -----------------------------------------------------------------------------


async def test_account_good_credentials(sim: EseyeSimulator, client: EseyeClient) -> None:
    assert await client.async_get_account() == AccountInfo(unique_id="demo", title="Eseye (demo)")
    assert requests_to(sim, PATH_STATUS) == 1
    assert requests_to(sim, PATH_SEND) == 0


async def test_account_against_a_non_eseye_server(
    session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    client = EseyeClient(session, "demo", "pw", receiver.url)  # answers "OK" to anything
    with pytest.raises(ConnectionFailed):
        await client.async_get_account()


async def test_account_server_error(sim: EseyeSimulator, client: EseyeClient) -> None:
    sim.faults.server_errors = 1
    with pytest.raises(ConnectionFailed):
        await client.async_get_account()


# --- callbacks ---------------------------------------------------------------------------


def callback(
    method: str = "POST",
    *,
    query: dict[str, str] | None = None,
    body: bytes = b"",
    content_type: str = "",
) -> CallbackRequest:
    headers = {"Content-Type": content_type} if content_type else {}
    return CallbackRequest(method, headers, query or {}, body, content_type)


FORM = "application/x-www-form-urlencoded"
MID = "9946e3025608c7106944658dfb1318a8"


def test_receipt_via_get_query(client: EseyeClient) -> None:
    query = {
        "messageid": MID,
        "referenceid": "3fd515e674835bb233538f9d218a31d9",
        "statuscode": "delivered",
        "status": "delivered",
    }
    assert client.parse_callback(callback("GET", query=query)) == [
        DeliveryReport(MID, SmsStatus.DELIVERED, raw_status="delivered", final_at=NOW)
    ]


def test_receipt_via_post_form_with_message_id(client: EseyeClient) -> None:
    body = f"message_id={MID}&referenceid=x&statuscode=error&status=failed".encode()
    [item] = client.parse_callback(callback(body=body, content_type=FORM))
    assert item == DeliveryReport(MID, SmsStatus.FAILED, "failed", NOW)


def test_receipt_via_json_and_statuscode_only(client: EseyeClient) -> None:
    body = json.dumps({"messageid": MID, "statuscode": "delivered"}).encode()
    [item] = client.parse_callback(callback(body=body, content_type="application/json"))
    assert item == DeliveryReport(MID, SmsStatus.DELIVERED, "delivered", NOW)


def test_receipt_query_and_body_are_merged(client: EseyeClient) -> None:
    # Token in the receipt_url's own query string, receipt fields in a body without type.
    body = f"messageid={MID}&status=delivered".encode()
    [item] = client.parse_callback(callback(query={"token": "abc"}, body=body))
    assert item == DeliveryReport(MID, SmsStatus.DELIVERED, "delivered", NOW)


@pytest.mark.parametrize(
    ("raw", "status"),
    [("rejected", None), ("expired", SmsStatus.EXPIRED), ("EXPIRED", SmsStatus.EXPIRED)],
)
def test_receipt_unknown_status_kept_raw(
    client: EseyeClient, raw: str, status: SmsStatus | None
) -> None:
    [item] = client.parse_callback(callback("GET", query={"messageid": MID, "status": raw}))
    assert isinstance(item, DeliveryReport)
    assert item.status == status
    assert item.raw_status == raw


def test_mo_form(client: EseyeClient) -> None:
    body = b"source=447700900001&destination=447700900000&message_id=abc123&text=Hello+%C3%A9%21"
    [item] = client.parse_callback(callback(body=body, content_type=FORM))
    assert item == IncomingMessage(
        message_id="abc123",
        sender="447700900001",
        text="Hello é!",
        received_at=NOW,
        recipient="447700900000",
        endpoint_id="447700900001",
    )


def test_mo_json(client: EseyeClient) -> None:
    body = json.dumps(
        {"source": "+447700900001", "destination": "447700900000", "messageid": "m1", "text": "Hi"}
    ).encode()
    [item] = client.parse_callback(callback(body=body, content_type="application/json"))
    assert isinstance(item, IncomingMessage)
    assert (item.message_id, item.sender, item.text) == ("m1", "+447700900001", "Hi")
    assert item.endpoint_id == "447700900001"


def test_mo_form_tolerates_junk_pairs(client: EseyeClient) -> None:
    body = b"&source=447700900001&junk&=x&text=a+b%2Bc&"
    [item] = client.parse_callback(callback(body=body, content_type=FORM))
    assert isinstance(item, IncomingMessage)
    assert item.text == "a b+c"


def test_mo_latin1_body(client: EseyeClient) -> None:
    body = b"source=447700900001&message_id=x1&text=Caf%E9+%A35"
    [item] = client.parse_callback(callback(body=body, content_type=FORM))
    assert isinstance(item, IncomingMessage)
    assert item.text == "Café £5"
    # Raw (unescaped) Latin-1 bytes too.
    [item] = client.parse_callback(callback(body=b"source=1&text=Caf\xe9", content_type=FORM))
    assert isinstance(item, IncomingMessage)
    assert item.text == "Café"


# Hand-written SMS-SUBMIT TPDUs (TS 23.040): first octet 01, MR 00, DA 12 digits
# international 447700900000, PID 00, DCS, UDL, UD.
PDU_HELLO_GSM7 = "0100" + "0C91447700090000" + "00" + "00" + "05" + "E8329BFD06"
PDU_NIHAO_UCS2 = "0100" + "0C91447700090000" + "00" + "08" + "04" + "4F60597D"


@pytest.mark.parametrize(("pdu", "text"), [(PDU_HELLO_GSM7, "hello"), (PDU_NIHAO_UCS2, "你好")])
def test_mo_binary_only_handwritten(client: EseyeClient, pdu: str, text: str) -> None:
    body = f"source=447700900001&destination=447700900000&message_id=b1&binary={pdu}".encode()
    [item] = client.parse_callback(callback(body=body, content_type=FORM))
    assert isinstance(item, IncomingMessage)
    assert item.text == text


def test_mo_without_id_has_no_id(client: EseyeClient) -> None:
    # No content hash: the same text twice is two replies, not a retry (the router gives
    # each its own id).
    body = b"source=447700900001&text=hi"
    [first] = client.parse_callback(callback(body=body, content_type=FORM))
    assert isinstance(first, IncomingMessage)
    assert first.message_id == ""
    assert first.text == "hi"
    assert first.recipient == API_MSISDN  # falls back to the configured API MSISDN


@pytest.mark.parametrize(
    "request_",
    [
        callback(),
        callback("GET"),
        callback(body=b"hello world", content_type="text/plain"),
        callback(body=b"[1, 2]", content_type="application/json"),
        callback(body=b"{not json", content_type="application/json"),
        callback(body=b"status=delivered", content_type=FORM),  # no id
        callback(body=f"messageid={MID}".encode(), content_type=FORM),  # no status
        callback(body=b"text=hi&destination=1", content_type=FORM),  # MO without source
        callback(body=b"source=1&binary=ZZ", content_type=FORM),
        callback(body=b"source=1&binary=0100", content_type=FORM),
        callback("DELETE", query={"messageid": MID, "status": "delivered"}),
    ],
)
def test_garbage_is_invalid_callback(client: EseyeClient, request_: CallbackRequest) -> None:
    with pytest.raises(InvalidCallback) as err:
        client.parse_callback(request_)
    assert not isinstance(err.value, SignatureError)


# --- end to end --------------------------------------------------------------------------


async def test_end_to_end_echo_sim(
    sim: EseyeSimulator, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sim.mo_post_url = f"{receiver.url}/mo"
    client = make_client(sim, session, callback_url=f"{receiver.url}/receipt?token=abc")
    [part] = client.plan_message("hi there £")
    message_id = await client.async_send_part(ECHO, part, NO_OPTIONS)
    await sim.wait_idle()

    receipts = [r for r in receiver.received if r.path == "/receipt"]
    mos = [r for r in receiver.received if r.path == "/mo"]
    assert len(receipts) == 1
    assert len(mos) == 1
    receipt = receipts[0]
    assert receipt.method == "GET"
    assert receipt.query["token"] == "abc"
    assert receipt.query["messageid"] == message_id
    assert receipt.query["status"] == "delivered"
    assert client.parse_callback(receipt.as_callback()) == [
        DeliveryReport(message_id, SmsStatus.DELIVERED, "delivered", NOW)
    ]

    mo = mos[0]
    assert mo.method == "POST"
    assert mo.content_type == FORM
    form = {k: v[0] for k, v in parse_qs(mo.body.decode()).items()}
    assert form["source"] == ECHO
    assert form["destination"] == API_MSISDN
    assert HEX32.fullmatch(form["message_id"])
    [incoming] = client.parse_callback(mo.as_callback())
    assert incoming == IncomingMessage(
        message_id=form["message_id"],
        sender=ECHO,
        text="ECHO: hi there £",
        received_at=NOW,
        recipient=API_MSISDN,
        endpoint_id=ECHO,
    )


async def test_receipt_post_and_failed_outcomes(
    sim: EseyeSimulator, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sim.receipt_method = "POST"
    client = make_client(sim, session, callback_url=f"{receiver.url}/r")
    past = datetime.now(UTC) - timedelta(minutes=1)
    offline_id = await client.async_send_part(OFFLINE, gsm("x"), SendOptions(expires_at=past))
    blocked_id = await client.async_send_part(BLOCKED, gsm("y"), NO_OPTIONS)
    await sim.wait_idle()
    assert all(r.method == "POST" and r.content_type == FORM for r in receiver.received)
    items = [item for r in receiver.received for item in client.parse_callback(r.as_callback())]
    assert len(items) == 2
    reports = {item.part_id: item for item in items if isinstance(item, DeliveryReport)}
    assert reports == {
        offline_id: DeliveryReport(offline_id, SmsStatus.FAILED, "failed", NOW),
        blocked_id: DeliveryReport(blocked_id, SmsStatus.FAILED, "failed", NOW),
    }
    polled = await client.async_poll(OFFLINE, [offline_id, blocked_id])
    assert [(m.raw_status, m.status) for m in polled] == [
        ("error", SmsStatus.FAILED),
        ("blocked", SmsStatus.FAILED),
    ]


async def test_offline_stays_sent_until_expiry(sim: EseyeSimulator, client: EseyeClient) -> None:
    message_id = await client.async_send_part(OFFLINE, gsm("x"), NO_OPTIONS)
    await sim.wait_idle()  # default expiry is 24 h away: not waited for
    [result] = await client.async_poll(OFFLINE, [message_id])
    assert result.raw_status in ("sent", "mgmt")
    assert result.status == SmsStatus.SENT


async def test_simulator_mo_binary_duplicate_and_arbitrary_receipt(
    sim: EseyeSimulator, session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    sim.mo_post_url = f"{receiver.url}/mo"
    client = make_client(sim, session, callback_url=f"{receiver.url}/r")
    await sim.send_mo(ONLINE, "Temp 21°C ok", binary_only=True)  # ° is not GSM: UCS-2 PDU
    await sim.send_mo(ONLINE, "status?", binary_only=True, duplicate=True)
    texts = []
    for r in receiver.received:
        assert b"text=" not in r.body
        [item] = client.parse_callback(r.as_callback())
        assert isinstance(item, IncomingMessage)
        texts.append((item.message_id, item.text))
    assert [t for _, t in texts] == ["Temp 21°C ok", "status?", "status?"]
    assert texts[1][0] == texts[2][0]  # a duplicate carries the same message_id

    receiver.received.clear()
    sim.delivery_delay = 30
    message_id = await client.async_send_part(ONLINE, gsm("z"), NO_OPTIONS)
    await sim.send_receipt(message_id, "expired")
    [item] = client.parse_callback(receiver.received[-1].as_callback())
    assert item == DeliveryReport(message_id, SmsStatus.EXPIRED, "expired", NOW)
