"""SuperSimClient (Twilio and KORE) against the Super SIM simulator over real HTTP on 127.0.0.1.

Expected values come from the reference (``shared/reference/supersim-sms-api.md``) or from the
simulator's state, never from the client: the signatures are computed here from the documented
algorithms, and the KORE test vector is the one KORE publishes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from homeassistant.const import CONF_WEBHOOK_ID
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.iot_sms.api import supersim
from custom_components.iot_sms.api.errors import (
    AuthError,
    CharacterSetError,
    ConnectionFailed,
    DeliveryUnknown,
    InvalidCallback,
    InvalidRequest,
    MessageTooLong,
    NotCancellable,
    NotFound,
    RateLimited,
    SignatureError,
)
from custom_components.iot_sms.api.models import (
    CallbackRequest,
    IncomingHint,
    IncomingMessage,
    MessagePart,
    PollHint,
    SendOptions,
    SmsStatus,
)
from custom_components.iot_sms.api.supersim import SuperSimClient
from simulator.supersim import Fleet, Sim, SuperSimSimulator
from tests.conftest import WEBHOOK_ID
from tests.provider_supersim import *  # noqa: F403  (fixtures: setup_supersim, supersim_provider)
from tests.provider_supersim import SUPERSIM_SIMS, SuperSimProvider

PART = MessagePart(text="STATUS?", encoding="gsm7")
FORM = "application/x-www-form-urlencoded"
# KORE's published example (validate-webhook-signatures).
KORE_VECTOR_SECRET = "12345"
KORE_VECTOR_URI = "https://testendpoint.com"
KORE_VECTOR_BODY = b"field1=value1&field2=value2"
KORE_VECTOR_SIGNATURE = "f562d3959f68b5a30fc7a63f8bbf40987f633575f4231ffceb4f76dd154ea3ce"
RECEIVED = "iot_sms_message_received"
DELIVERY = "iot_sms_delivery_status"
PUMP_STATUS = "sensor.pump_station_last_sms_status"
HOUR = 3600.0


def twilio_sign(token: str, url: str, params: dict[str, str] | None = None) -> str:
    """X-Twilio-Signature as Twilio's security page describes it."""
    data = url + "".join(k + v for k, v in sorted((params or {}).items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def kore_sign(secret: str, method: str, uri: str, body: bytes) -> str:
    """kore-signature as KORE's docs describe it (plain SHA-256, not HMAC)."""
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def callback(
    method: str = "POST",
    *,
    url: str = "https://ha.example/api/iot_sms/abc",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: bytes = b"",
    content_type: str = FORM,
) -> CallbackRequest:
    return CallbackRequest(method, headers or {}, query or {}, body, content_type, url)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@dataclass
class Received:
    """One request a local receiver got (what Home Assistant's view would see)."""

    method: str
    url: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    content_type: str

    def as_callback(self, **changes: Any) -> CallbackRequest:
        request = CallbackRequest(
            self.method, self.headers, self.query, self.body, self.content_type, self.url
        )
        return replace(request, **changes)


@dataclass
class Receiver:
    """A web server on 127.0.0.1 that records requests and answers as scripted."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give first, then 200
    replies: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(
        default_factory=dict
    )

    def url(self, path: str = "/callback") -> str:
        return f"{self.base_url}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(
            Received(
                request.method,
                str(request.url),
                dict(request.headers),
                dict(request.query),
                await request.read(),
                request.content_type,
            )
        )
        if request.path in self.replies:
            return await self.replies[request.path](request)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200, text="OK")


@pytest.fixture
async def receiver(socket_enabled: None) -> AsyncIterator[Receiver]:
    recorder = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    recorder.base_url = str(server.make_url("")).rstrip("/")
    try:
        yield recorder
    finally:
        await server.close()


@pytest.fixture
def twilio(
    supersim_sim: SuperSimSimulator, session: aiohttp.ClientSession, receiver: Receiver
) -> Callable[..., SuperSimClient]:
    def factory(**kwargs: Any) -> SuperSimClient:
        kwargs.setdefault("callback_url", receiver.url())
        return SuperSimClient.twilio(
            session,
            kwargs.pop("account_sid", supersim_sim.account_sid),
            kwargs.pop("auth_token", supersim_sim.auth_token),
            kwargs.pop("base_url", supersim_sim.base_url),
            **kwargs,
        )

    return factory


@pytest.fixture
def kore(
    kore_sim: SuperSimSimulator, session: aiohttp.ClientSession, receiver: Receiver
) -> Callable[..., SuperSimClient]:
    def factory(**kwargs: Any) -> SuperSimClient:
        kwargs.setdefault("callback_url", receiver.url())
        kwargs.setdefault("token_url", kore_sim.token_url)
        kwargs.setdefault("webhook_secret", kore_sim.webhook_secret)
        return SuperSimClient.kore(
            session,
            kwargs.pop("client_id", kore_sim.client_id),
            kwargs.pop("client_secret", kore_sim.client_secret),
            kwargs.pop("base_url", kore_sim.base_url),
            **kwargs,
        )

    return factory


def fleet_and_sim(
    sim: SuperSimSimulator, behavior: str = "online", url: str | None = None
) -> tuple[Fleet, Sim]:
    fleet = sim.add_fleet("Pumps", sms_commands_url=url)
    return fleet, sim.add_sim("Pump station", behavior, fleet=fleet)


def requests_to(sim: SuperSimSimulator, method: str, path: str) -> list[Any]:
    return [r for r in sim.requests if r.method == method and r.path == path]


def form_of(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode()))


async def wait_for_status(sim: SuperSimSimulator, sid: str, status: str) -> None:
    for _ in range(300):
        if sim.commands[sid].status == status:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"{sid} never reached {status}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- account and authentication


async def test_twilio_account_is_the_account_sid(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    client = twilio()

    account = await client.async_get_account()

    assert account.unique_id == supersim_sim.account_sid
    assert account.title == f"Super SIM ({supersim_sim.account_sid})"
    assert client.provider == "supersim"
    assert [r.path for r in supersim_sim.requests] == ["/v1/Sims"]


def test_capabilities_say_what_super_sim_cannot_do(twilio: Callable[..., SuperSimClient]) -> None:
    capabilities = twilio().capabilities

    assert capabilities.cancel is False  # no DELETE, no update [SPEC]
    assert capabilities.max_parts == 1  # no concatenation
    assert capabilities.max_single_chars == 160
    assert capabilities.validity is False  # always 24 hours [DOCS]
    assert capabilities.custom_sender is False  # always from 000 [DOCS]
    assert capabilities.lists_endpoints is True
    assert capabilities.registers_callbacks is True
    assert capabilities.statuses == {
        SmsStatus.QUEUED,
        SmsStatus.SENT,
        SmsStatus.DELIVERED,
        SmsStatus.FAILED,
    }


async def test_twilio_wrong_auth_token_is_auth_error(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    client = twilio(auth_token="0" * 32)

    with pytest.raises(AuthError, match="20003") as err:
        await client.async_get_account()

    assert "0" * 32 not in str(err.value)
    assert len(supersim_sim.requests) == 1  # an Auth Token is not renewed: no retry


async def test_kore_token_is_fetched_once_and_reused(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(kore_sim)
    client = kore()

    await asyncio.gather(*(client.async_get_account() for _ in range(5)))
    await client.async_list_endpoints()
    await client.async_send_part(sim.sid, PART, SendOptions())

    assert kore_sim.token_count == 1
    [token_request] = requests_to(kore_sim, "POST", kore_sim.token_path)
    assert form_of(token_request.body) == {
        "grant_type": "client_credentials",
        "client_id": kore_sim.client_id,
        "client_secret": kore_sim.client_secret,
    }


@pytest.mark.parametrize("as_string", [False, True])
async def test_kore_token_renewed_before_expires_in(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient], as_string: bool
) -> None:
    """expires_in is honoured whether KORE sends 7200 or "7200" (its docs show both)."""
    kore_sim.faults.token_ttl = 2 * HOUR
    kore_sim.expires_in_as_string = as_string
    now = [1000.0]
    client = kore(clock=lambda: now[0])

    await client.async_get_account()
    now[0] += 1.5 * HOUR  # longer than KORE's shortest lifetime, well within this one
    await client.async_get_account()
    assert kore_sim.token_count == 1

    now[0] += 0.5 * HOUR  # the token's lifetime is over
    await client.async_get_account()
    assert kore_sim.token_count == 2


async def test_kore_token_renewed_once_on_401(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(kore_sim)
    client = kore()
    await client.async_get_account()
    kore_sim.expire_tokens()

    sid = await client.async_send_part(sim.sid, PART, SendOptions())

    assert kore_sim.token_count == 2
    assert list(kore_sim.commands) == [sid]
    assert len(requests_to(kore_sim, "POST", "/v1/SmsCommands")) == 2  # refused, then sent


async def test_kore_second_401_is_auth_error(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient]
) -> None:
    kore_sim.faults.token_ttl = -1  # every token is expired when it is issued

    with pytest.raises(AuthError):
        await kore().async_get_account()

    assert kore_sim.token_count == 2
    assert len(requests_to(kore_sim, "GET", "/v1/Sims")) == 2


@pytest.mark.parametrize("error", ["invalid_client", "unauthorized_client"])
async def test_kore_bad_client_credentials(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient], error: str
) -> None:
    kore_sim.token_error = error
    client = kore(client_secret="not-the-secret")

    with pytest.raises(AuthError, match=error) as err:
        await client.async_get_account()

    assert "not-the-secret" not in str(err.value)
    assert requests_to(kore_sim, "GET", "/v1/Sims") == []


async def test_kore_token_endpoint_down_is_connection_failed(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient]
) -> None:
    kore_sim.faults.path_filter = kore_sim.token_path
    kore_sim.faults.server_errors = 1

    with pytest.raises(ConnectionFailed):
        await kore().async_get_account()
    with pytest.raises(ConnectionFailed):
        await kore(token_url=f"http://127.0.0.1:{free_port()}/token").async_get_account()


async def test_kore_token_answers_that_are_not_tokens(
    receiver: Receiver, kore: Callable[..., SuperSimClient]
) -> None:
    answers = iter(
        [
            web.json_response({"token_type": "Bearer", "expires_in": 3600}),
            web.Response(text="<html>maintenance</html>"),
            web.json_response({"code": 400, "message": "grant_type is required"}, status=400),
            web.json_response({"error": "invalid_grant"}, status=400),
        ]
    )

    async def token(_request: web.Request) -> web.StreamResponse:
        return next(answers)

    receiver.replies["/token"] = token
    client = kore(token_url=receiver.url("/token"))

    with pytest.raises(ConnectionFailed, match="without an access token"):
        await client.async_get_account()
    with pytest.raises(ConnectionFailed, match="not JSON"):
        await client.async_get_account()
    with pytest.raises(InvalidRequest, match="grant_type is required") as err:
        await client.async_get_account()
    assert not isinstance(err.value, AuthError)
    with pytest.raises(AuthError, match="invalid_grant"):
        await client.async_get_account()


@pytest.mark.parametrize("expires_in", ["soon", True, None, -5])
async def test_kore_token_without_usable_lifetime_lasts_an_hour(
    receiver: Receiver,
    kore_sim: SuperSimSimulator,
    kore: Callable[..., SuperSimClient],
    expires_in: Any,
) -> None:
    """No usable expires_in: KORE's shortest lifetime (1 hour) is assumed."""
    issued = []

    async def token(request: web.Request) -> web.StreamResponse:
        # Hand out a real simulator token, but with an unreadable lifetime.
        form = dict(await request.post())
        async with (
            aiohttp.ClientSession() as relay,
            relay.post(kore_sim.token_url, data=form) as resp,
        ):
            data = await resp.json()
        issued.append(data["access_token"])
        return web.json_response({**data, "expires_in": expires_in})

    receiver.replies["/token"] = token
    now = [0.0]
    client = kore(token_url=receiver.url("/token"), clock=lambda: now[0])

    await client.async_get_account()
    now[0] += 0.5 * HOUR
    await client.async_get_account()
    assert len(issued) == 1
    now[0] += 0.5 * HOUR
    await client.async_get_account()
    assert len(issued) == 2


async def test_kore_requests_refused_together_renew_the_token_once(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient]
) -> None:
    client = kore()
    await client.async_get_account()
    kore_sim.expire_tokens()

    await asyncio.gather(client.async_get_account(), client.async_list_endpoints())

    assert kore_sim.token_count == 2


async def test_kore_token_request_timeout(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient]
) -> None:
    kore_sim.faults.path_filter = kore_sim.token_path
    kore_sim.faults.latency = 0.5

    with pytest.raises(ConnectionFailed, match="in time"):
        await kore(request_timeout=0.2).async_get_account()


# ---------------------------------------------------------------- SIMs


async def test_list_endpoints_follows_next_page_url(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    fleet = supersim_sim.add_fleet("Meters")
    sims = [supersim_sim.add_sim(f"Meter {n}", fleet=fleet) for n in range(2500)]

    endpoints = await twilio().async_list_endpoints()

    assert [e.id for e in endpoints] == [s.sid for s in sims]
    assert [e.name for e in endpoints] == [s.unique_name for s in sims]
    assert {e.iccid for e in endpoints} == {s.iccid for s in sims}
    assert {e.service_profile_id for e in endpoints} == {fleet.sid}
    assert {e.msisdn for e in endpoints} == {None}  # Super SIMs have no number [DOCS]
    pages = requests_to(supersim_sim, "GET", "/v1/Sims")
    assert len(pages) == 3
    assert "PageToken" not in pages[0].query
    assert all(p.query.get("PageToken") for p in pages[1:])


async def test_endpoint_name_falls_back_to_the_iccid(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    unnamed = supersim_sim.add_sim("")

    [endpoint] = await twilio().async_list_endpoints(tag="ignored")

    assert endpoint.name == unnamed.iccid
    assert endpoint.service_profile_id is None


async def test_next_page_is_asked_of_the_configured_host(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    """The API names its canonical host in next_page_url; credentials never go anywhere else."""
    client = twilio()
    supersim_sim.base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for number in range(1001):
        supersim_sim.add_sim(f"Meter {number}")

    assert len(await client.async_list_endpoints()) == 1001
    assert len(requests_to(supersim_sim, "GET", "/v1/Sims")) == 2


async def test_unexpected_list_answers(
    receiver: Receiver, twilio: Callable[..., SuperSimClient]
) -> None:
    sid = "HS" + "a" * 32
    answers = iter(
        [
            # A next_page_url pointing at the page itself: read once, not forever.
            {
                "sims": [{"sid": sid}, {"sid": "junk"}, "junk"],
                "meta": {"next_page_url": "/v1/Sims"},
            },
            {"sims": [{"sid": sid}], "meta": {"next_page_url": "/v1/Sims"}},
            {"items": []},
            [],
        ]
    )

    async def sims(_request: web.Request) -> web.StreamResponse:
        return web.json_response(next(answers))

    receiver.replies["/v1/Sims"] = sims
    client = twilio(base_url=receiver.base_url)

    assert [e.id for e in await client.async_list_endpoints()] == [sid, sid]
    with pytest.raises(ConnectionFailed, match="without 'sims'"):
        await client.async_list_endpoints()
    with pytest.raises(ConnectionFailed, match="without 'sims'"):
        await client.async_list_endpoints()


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (403, {"code": 20003, "message": "Permission denied"}, AuthError, "Permission denied"),
        (404, {"code": 20404, "message": "Not here"}, NotFound, "Not here"),
        (500, {"message": "Internal"}, ConnectionFailed, "Internal"),
        (302, {}, ConnectionFailed, "HTTP 302"),
        (200, "not json", ConnectionFailed, "not JSON"),
        (400, ["junk"], InvalidRequest, "HTTP 400"),
        (502, "<html>Bad gateway</html>", ConnectionFailed, "server error"),
        (400, {"message": "x" * 500}, InvalidRequest, "x{200}…"),
    ],
)
async def test_read_errors_are_typed(
    receiver: Receiver,
    twilio: Callable[..., SuperSimClient],
    status: int,
    body: Any,
    error: type[Exception],
    text: str,
) -> None:
    async def sims(_request: web.Request) -> web.StreamResponse:
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status)

    receiver.replies["/v1/Sims"] = sims

    with pytest.raises(error, match=text):
        await twilio(base_url=receiver.base_url).async_list_endpoints()


async def test_unreachable_api_is_connection_failed(
    twilio: Callable[..., SuperSimClient],
) -> None:
    client = twilio(base_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(ConnectionFailed):
        await client.async_get_account()
    with pytest.raises(ConnectionFailed):  # never connected: not a maybe-sent command
        await client.async_send_part("HS" + "0" * 32, PART, SendOptions())


# ---------------------------------------------------------------- planning


def test_plan_message_one_sms_of_160_single_byte_characters(
    twilio: Callable[..., SuperSimClient],
) -> None:
    client = twilio()
    text = "SET RATE=60; MODE:A @ 12h $5 _ok_ (1/2) #3 'q' \"x\" %?!\n" * 2
    text += "x" * (160 - len(text))

    assert client.plan_message(text) == [MessagePart(text=text, encoding="gsm7", udh=None)]
    with pytest.raises(MessageTooLong):
        client.plan_message(text + "x")


@pytest.mark.parametrize("char", ["é", "£", "Δ", "€", "[", "~", "`", "\t", "✓", "😀"])
def test_plan_message_refuses_what_is_not_single_byte(
    twilio: Callable[..., SuperSimClient], char: str
) -> None:
    """Neither non-ASCII (two bytes in UTF-8) nor GSM-7 escapes (two septets) are sent."""
    with pytest.raises(CharacterSetError, match=f"U\\+{ord(char):04X}"):
        twilio().plan_message(f"TEMP 21{char}")


# ---------------------------------------------------------------- sending


async def test_send_creates_a_command_with_our_callback(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient], receiver: Receiver
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)

    sid = await twilio().async_send_part(sim.sid, PART, SendOptions())

    [post] = requests_to(supersim_sim, "POST", "/v1/SmsCommands")
    assert post.headers["Content-Type"].startswith(FORM)
    assert form_of(post.body) == {
        "Sim": sim.sid,
        "Payload": "STATUS?",
        "CallbackUrl": receiver.url(),
        "CallbackMethod": "POST",
    }
    command = supersim_sim.commands[sid]
    assert sid.startswith("HC")
    assert command.sim_sid == sim.sid
    assert command.direction == "to_sim"
    assert command.history[0] == "queued"


async def test_send_without_callback_url_sends_no_callback_fields(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)

    await twilio(callback_url=None).async_send_part(sim.sid, PART, SendOptions())

    [post] = requests_to(supersim_sim, "POST", "/v1/SmsCommands")
    assert form_of(post.body) == {"Sim": sim.sid, "Payload": "STATUS?"}


@pytest.mark.parametrize(
    ("part", "options", "error"),
    [
        (PART, SendOptions(sender="HomeAsst"), InvalidRequest),
        (PART, SendOptions(expires_at=datetime(2031, 1, 1, tzinfo=UTC)), InvalidRequest),
        (MessagePart("x" * 161, "gsm7"), SendOptions(), MessageTooLong),
        (MessagePart("Grüße", "gsm7"), SendOptions(), CharacterSetError),
        (MessagePart("hi", "ucs2"), SendOptions(), InvalidRequest),
        (MessagePart("hi", "gsm7", udh="050003010201"), SendOptions(), InvalidRequest),
    ],
)
async def test_send_refuses_what_super_sim_cannot_carry(
    supersim_sim: SuperSimSimulator,
    twilio: Callable[..., SuperSimClient],
    part: MessagePart,
    options: SendOptions,
    error: type[Exception],
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)

    with pytest.raises(error):
        await twilio().async_send_part(sim.sid, part, options)

    assert supersim_sim.requests == []


@pytest.mark.parametrize("error_format", ["legacy", "rfc9457"])
async def test_send_to_unknown_sim_reads_both_error_formats(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient], error_format: str
) -> None:
    supersim_sim.error_format = error_format
    unknown = "HS" + "0" * 32

    with pytest.raises(InvalidRequest, match=f"Sim {unknown} was not found") as err:
        await twilio().async_send_part(unknown, PART, SendOptions())

    assert "code 21211" in str(err.value)
    assert "HTTP 400" in str(err.value)
    assert not isinstance(err.value, NotFound)
    assert supersim_sim.commands == {}


async def test_send_to_a_fleet_without_sms_commands_is_refused(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    fleet = supersim_sim.add_fleet("Data only", sms_commands_enabled=False)
    sim = supersim_sim.add_sim("Router", fleet=fleet)

    with pytest.raises(InvalidRequest, match="not enabled"):
        await twilio().async_send_part(sim.sid, PART, SendOptions())


async def test_lost_answer_is_delivery_unknown_and_found_afterwards(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)
    client = twilio()
    supersim_sim.faults.path_filter = "/v1/SmsCommands"
    supersim_sim.faults.lose_answers = 1
    sent_after = datetime.now(UTC)

    with pytest.raises(DeliveryUnknown):
        await client.async_send_part(sim.sid, PART, SendOptions())

    [stored] = supersim_sim.commands  # it did reach the provider: a retry would send it twice
    assert len(requests_to(supersim_sim, "POST", "/v1/SmsCommands")) == 1
    assert await client.async_find_sent(sim.sid, PART, sent_after, known=set()) == stored
    assert await client.async_find_sent(sim.sid, PART, sent_after, known={stored}) is None
    other = MessagePart("REBOOT", "gsm7")
    assert await client.async_find_sent(sim.sid, other, sent_after, known=set()) is None
    later = sent_after + timedelta(hours=1)
    assert await client.async_find_sent(sim.sid, PART, later, known=set()) is None
    [lookup, *_] = requests_to(supersim_sim, "GET", "/v1/SmsCommands")
    assert lookup.query["Sim"] == sim.sid
    assert lookup.query["Direction"] == "to_sim"


async def test_find_sent_reads_every_page_and_takes_the_oldest_match(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)
    client = twilio()
    sent_after = datetime.now(UTC)
    first = await client.async_send_part(sim.sid, PART, SendOptions())
    for number in range(150):
        await client.async_send_part(sim.sid, MessagePart(f"N{number}", "gsm7"), SendOptions())
    second = await client.async_send_part(sim.sid, PART, SendOptions())
    await supersim_sim.send_mo(sim.sid, PART.text)  # a reply with the same text is no send
    before = len(supersim_sim.requests)

    assert await client.async_find_sent(sim.sid, PART, sent_after, known=set()) == first
    assert await client.async_find_sent(sim.sid, PART, sent_after, known={first}) == second
    assert await client.async_find_sent(sim.sid, PART, sent_after, {first, second}) is None
    lists = [r for r in supersim_sim.requests[before:] if r.path == "/v1/SmsCommands"]
    assert len(lists) == 6  # two pages, three times


async def test_find_sent_cannot_prove_absence_past_its_page_limit(
    supersim_sim: SuperSimSimulator,
    twilio: Callable[..., SuperSimClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supersim, "FIND_MAX_PAGES", 1)
    monkeypatch.setattr(supersim, "PAGE_SIZE", 2)
    _fleet, sim = fleet_and_sim(supersim_sim)
    client = twilio()
    for number in range(3):
        await client.async_send_part(sim.sid, MessagePart(f"N{number}", "gsm7"), SendOptions())

    with pytest.raises(ConnectionFailed, match="more than 1 pages"):
        await client.async_find_sent(sim.sid, PART, datetime.now(UTC), known=set())


async def test_send_server_error_is_not_retried(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)
    supersim_sim.faults.path_filter = "/v1/SmsCommands"
    supersim_sim.faults.server_errors = 1

    with pytest.raises(DeliveryUnknown, match="HTTP 500"):
        await twilio().async_send_part(sim.sid, PART, SendOptions())

    assert len(requests_to(supersim_sim, "POST", "/v1/SmsCommands")) == 1


async def test_send_timeout_is_not_retried(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)
    client = twilio(request_timeout=0.2)
    supersim_sim.faults.path_filter = "/v1/SmsCommands"
    supersim_sim.faults.latency = 0.5

    with pytest.raises(DeliveryUnknown, match="in time"):
        await client.async_send_part(sim.sid, PART, SendOptions())
    with pytest.raises(ConnectionFailed, match="in time"):
        await client.async_poll(sim.sid, ["HC" + "0" * 32])

    assert len(requests_to(supersim_sim, "POST", "/v1/SmsCommands")) == 1
    assert len(supersim_sim.commands) == 1


async def test_send_dropped_connection_is_not_retried(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)
    supersim_sim.faults.drop_after_read = 1

    with pytest.raises(DeliveryUnknown, match="broke"):
        await twilio().async_send_part(sim.sid, PART, SendOptions())

    assert len(requests_to(supersim_sim, "POST", "/v1/SmsCommands")) == 1
    assert supersim_sim.commands == {}  # not even handled, but the client cannot know that


async def test_read_dropped_twice_is_connection_failed(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    """aiohttp repeats an idempotent GET once on a dropped connection; twice is an outage."""
    supersim_sim.faults.drop_after_read = 2

    with pytest.raises(ConnectionFailed, match="broke"):
        await twilio().async_list_endpoints()


async def test_created_without_a_sid_is_delivery_unknown(
    receiver: Receiver, twilio: Callable[..., SuperSimClient]
) -> None:
    async def created(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=201, text="")

    receiver.replies["/v1/SmsCommands"] = created

    with pytest.raises(DeliveryUnknown, match="did not return its SID"):
        await twilio(base_url=receiver.base_url).async_send_part(
            "HS" + "0" * 32, PART, SendOptions()
        )


async def test_429_is_retried_once_after_retry_after(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    """A 429 "is never processed and is always safe to retry", even for a send."""
    _fleet, sim = fleet_and_sim(supersim_sim)
    supersim_sim.faults.path_filter = "/v1/SmsCommands"
    supersim_sim.faults.rate_limits = 1
    supersim_sim.retry_after = "0.05"

    sid = await twilio().async_send_part(sim.sid, PART, SendOptions())

    assert len(requests_to(supersim_sim, "POST", "/v1/SmsCommands")) == 2
    assert list(supersim_sim.commands) == [sid]


@pytest.mark.parametrize(
    "retry_after",
    [
        None,
        "later",
        "3600",
        format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True),
        "Wed, 01 Jan 2020 00:00:00 -0000",  # a date without a zone
    ],
)
async def test_429_retry_after_is_bounded(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient], retry_after: str | None
) -> None:
    """Missing, unreadable, huge or past: the retry still comes, within the client's bound."""
    supersim_sim.faults.path_filter = "/v1/Sims"
    supersim_sim.faults.rate_limits = 1
    supersim_sim.retry_after = retry_after

    await twilio(max_retry_after=0.01).async_list_endpoints()

    assert len(requests_to(supersim_sim, "GET", "/v1/Sims")) == 2


async def test_second_429_is_rate_limited(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)
    supersim_sim.faults.path_filter = "/v1/SmsCommands"
    supersim_sim.faults.rate_limits = 2
    supersim_sim.retry_after = "0"

    with pytest.raises(RateLimited, match="20429"):
        await twilio().async_send_part(sim.sid, PART, SendOptions())

    assert supersim_sim.commands == {}


async def test_requests_go_one_at_a_time(
    receiver: Receiver, twilio: Callable[..., SuperSimClient]
) -> None:
    """No limit is documented: the client never has two requests open at once."""
    open_now = peak = 0

    async def sims(_request: web.Request) -> web.StreamResponse:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        await asyncio.sleep(0.02)
        open_now -= 1
        return web.json_response({"sims": [], "meta": {"next_page_url": None}})

    receiver.replies["/v1/Sims"] = sims
    client = twilio(base_url=receiver.base_url)

    await asyncio.gather(*(client.async_get_account() for _ in range(4)))

    assert len(receiver.received) == 4
    assert peak == 1


# ---------------------------------------------------------------- polling and cancel


async def test_poll_one_command_reads_it_by_sid(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)
    client = twilio()
    sid = await client.async_send_part(sim.sid, PART, SendOptions())
    await supersim_sim.wait_idle()
    before = len(supersim_sim.requests)

    [message] = await client.async_poll(sim.sid, [sid])

    assert [(r.method, r.path) for r in supersim_sim.requests[before:]] == [
        ("GET", f"/v1/SmsCommands/{sid}")
    ]
    command = supersim_sim.commands[sid]
    assert message.part_id == sid
    assert message.status is SmsStatus.DELIVERED
    assert message.raw_status == "delivered"
    assert message.endpoint_id == sim.sid
    assert message.submitted_at == command.date_created.replace(microsecond=0)
    assert message.final_at == command.date_updated.replace(microsecond=0)
    # Attempts go on "for up to 24 hours" [DOCS].
    assert message.expires_at == message.submitted_at + timedelta(hours=24)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("queued", SmsStatus.QUEUED),
        ("sent", SmsStatus.SENT),
        ("delivered", SmsStatus.DELIVERED),
        ("failed", SmsStatus.FAILED),
        ("received", None),  # MO only, never an MT outcome
        ("undelivered", None),  # Public Beta: values may be added
    ],
)
async def test_poll_maps_statuses(
    supersim_sim: SuperSimSimulator,
    twilio: Callable[..., SuperSimClient],
    raw: str,
    expected: SmsStatus | None,
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim)
    supersim_sim.delivery_delay = 60
    client = twilio()
    sid = await client.async_send_part(sim.sid, PART, SendOptions())
    supersim_sim.set_status(sid, "queued")
    supersim_sim.commands[sid].status = raw

    [message] = await client.async_poll(sim.sid, [sid])

    assert message.status is expected
    assert message.raw_status == raw
    assert (message.final_at is not None) is (expected in (SmsStatus.DELIVERED, SmsStatus.FAILED))


async def test_poll_several_is_one_list_request(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    fleet, sim = fleet_and_sim(supersim_sim, behavior="offline")
    other = supersim_sim.add_sim("Other", fleet=fleet)
    client = twilio()
    ids = [await client.async_send_part(sim.sid, PART, SendOptions()) for _ in range(3)]
    elsewhere = await client.async_send_part(other.sid, PART, SendOptions())
    await supersim_sim.wait_idle()
    before = len(supersim_sim.requests)

    messages = await client.async_poll(sim.sid, [ids[0], ids[2], elsewhere, ids[0]])

    new = supersim_sim.requests[before:]
    assert [(r.method, r.path) for r in new] == [("GET", "/v1/SmsCommands")]
    assert new[0].query["Sim"] == sim.sid
    assert [m.part_id for m in messages] == [ids[0], ids[2]]
    assert {m.status for m in messages} == {SmsStatus.SENT}


async def test_poll_fetches_what_the_first_pages_do_not_cover(
    supersim_sim: SuperSimSimulator,
    twilio: Callable[..., SuperSimClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supersim, "POLL_LIST_PAGES", 1)
    monkeypatch.setattr(supersim, "PAGE_SIZE", 2)
    _fleet, sim = fleet_and_sim(supersim_sim, behavior="offline")
    client = twilio()
    ids = [await client.async_send_part(sim.sid, PART, SendOptions()) for _ in range(4)]
    await supersim_sim.wait_idle()
    before = len(supersim_sim.requests)

    messages = await client.async_poll(sim.sid, [ids[0], ids[3], "HC" + "0" * 32, "junk"])

    paths = [r.path for r in supersim_sim.requests[before:]]
    # The newest page has ids[3]; ids[0] and the unknown SID are read one by one.
    assert paths == [
        "/v1/SmsCommands",
        f"/v1/SmsCommands/{ids[0]}",
        f"/v1/SmsCommands/{'HC' + '0' * 32}",
    ]
    assert [m.part_id for m in messages] == [ids[0], ids[3]]


async def test_poll_nothing_or_unknown(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    client = twilio()

    assert await client.async_poll("HS" + "0" * 32, []) == []
    assert await client.async_poll("HS" + "0" * 32, ["HC" + "0" * 32]) == []


async def test_offline_sim_stays_sent_until_the_attempt_window_ends(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim, behavior="offline")
    supersim_sim.validity = 0.3
    client = twilio()
    sid = await client.async_send_part(sim.sid, PART, SendOptions())
    await wait_for_status(supersim_sim, sid, "sent")

    [message] = await client.async_poll(sim.sid, [sid])
    assert message.status is SmsStatus.SENT

    await wait_for_status(supersim_sim, sid, "failed")
    [message] = await client.async_poll(sim.sid, [sid])
    assert message.status is SmsStatus.FAILED  # no "expired" exists [SPEC]


async def test_poll_stops_reading_once_everything_is_found(
    supersim_sim: SuperSimSimulator,
    twilio: Callable[..., SuperSimClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supersim, "PAGE_SIZE", 2)
    _fleet, sim = fleet_and_sim(supersim_sim, behavior="offline")
    client = twilio()
    ids = [await client.async_send_part(sim.sid, PART, SendOptions()) for _ in range(5)]
    before = len(supersim_sim.requests)

    messages = await client.async_poll(sim.sid, [ids[4], ids[3]])

    assert [r.path for r in supersim_sim.requests[before:]] == ["/v1/SmsCommands"]
    assert [m.part_id for m in messages] == [ids[4], ids[3]]


async def test_poll_tolerates_odd_resources(
    receiver: Receiver, twilio: Callable[..., SuperSimClient]
) -> None:
    sim_sid, first, second = "HS" + "d" * 32, "HC" + "a" * 32, "HC" + "b" * 32

    async def listing(_request: web.Request) -> web.StreamResponse:
        commands = [
            {"sid": "junk", "status": "delivered"},
            {"sid": first, "status": "", "date_created": "yesterday", "sim_sid": sim_sid},
            {"sid": second, "status": " DELIVERED ", "date_created": "2026-01-02T03:04:05"},
        ]
        return web.json_response({"sms_commands": commands, "meta": {"next_page_url": None}})

    receiver.replies["/v1/SmsCommands"] = listing

    one, two = await twilio(base_url=receiver.base_url).async_poll(sim_sid, [first, second])

    assert (one.status, one.raw_status, one.submitted_at, one.expires_at) == (
        None,
        "unknown",
        None,
        None,
    )
    assert one.endpoint_id == sim_sid
    assert two.status is SmsStatus.DELIVERED
    assert two.raw_status == "DELIVERED"
    # The API's dates are UTC [SPEC]; one without a zone is read as UTC.
    assert two.submitted_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert two.final_at is None  # no date_updated
    assert two.endpoint_id is None


async def test_cancel_is_refused_without_asking(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim, behavior="offline")
    client = twilio()
    sid = await client.async_send_part(sim.sid, PART, SendOptions())
    before = len(supersim_sim.requests)

    with pytest.raises(NotCancellable, match="cannot be canceled"):
        await client.async_cancel(sim.sid, sid)

    assert len(supersim_sim.requests) == before
    # There is nothing to call anyway: the API has no DELETE.
    async with aiohttp.ClientSession() as raw:
        basic = base64.b64encode(f"{supersim_sim.account_sid}:{supersim_sim.auth_token}".encode())
        url = f"{supersim_sim.base_url}/v1/SmsCommands/{sid}"
        async with raw.delete(url, headers={"Authorization": f"Basic {basic.decode()}"}) as resp:
            assert resp.status == 405


async def test_simulator_lookups_and_filters_follow_the_spec(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    """Sim by SID or unique name, Iccid 0-1 results, Fleet filter, command filters [SPEC]."""
    fleet, sim = fleet_and_sim(supersim_sim, behavior="offline")
    loose = supersim_sim.add_sim("Loose")
    sid = await twilio().async_send_part(sim.unique_name, PART, SendOptions())  # by name
    mo = await supersim_sim.send_mo(sim.sid, "hi")
    basic = base64.b64encode(f"{supersim_sim.account_sid}:{supersim_sim.auth_token}".encode())
    headers = {"Authorization": f"Basic {basic.decode()}"}

    async def get(path: str, **query: str) -> Any:
        async with (
            aiohttp.ClientSession() as raw,
            raw.get(f"{supersim_sim.base_url}{path}", params=query, headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    assert (await get(f"/v1/Sims/{sim.unique_name}"))[1]["sid"] == sim.sid
    assert [s["sid"] for s in (await get("/v1/Sims", Iccid=loose.iccid))[1]["sims"]] == [loose.sid]
    assert [s["sid"] for s in (await get("/v1/Sims", Fleet=fleet.unique_name))[1]["sims"]] == [
        sim.sid
    ]
    assert (await get(f"/v1/Fleets/{fleet.sid}"))[1]["sms_commands_enabled"] is True
    commands = (await get("/v1/SmsCommands", Sim=sim.sid, Direction="from_sim"))[1]
    assert [c["sid"] for c in commands["sms_commands"]] == [mo]
    assert commands["meta"]["key"] == "sms_commands"
    received = (await get("/v1/SmsCommands", Status="received"))[1]["sms_commands"]
    assert [c["sid"] for c in received] == [mo]
    assert (await get(f"/v1/SmsCommands/{sid}"))[1]["sim_sid"] == sim.sid
    assert (await get("/v1/Sims", PageSize="0"))[0] == 400
    assert (await get("/v1/Sims/HS00"))[0] == 404


# ---------------------------------------------------------------- callbacks from the simulator


async def _status_callback(
    sim: SuperSimSimulator, client: SuperSimClient, receiver: Receiver
) -> tuple[str, Received]:
    _fleet, target = fleet_and_sim(sim)
    sid = await client.async_send_part(target.sid, PART, SendOptions())
    await sim.wait_idle()
    [received] = receiver.received
    return sid, received


@pytest.mark.parametrize(
    ("encoding", "method"), [("form", "POST"), ("query", "GET"), ("json", "POST")]
)
async def test_twilio_status_callback_is_a_poll_hint(
    supersim_sim: SuperSimSimulator,
    twilio: Callable[..., SuperSimClient],
    receiver: Receiver,
    encoding: str,
    method: str,
) -> None:
    supersim_sim.callback_encoding = encoding
    client = twilio()

    sid, received = await _status_callback(supersim_sim, client, receiver)

    assert received.method == method
    assert client.parse_callback(received.as_callback()) == [PollHint(sid)]
    # Twilio signs with the Auth Token; another account's token does not match.
    stranger = twilio(auth_token="f" * 32)
    with pytest.raises(SignatureError):
        stranger.parse_callback(received.as_callback())


@pytest.mark.parametrize("field_name", ["SmsCommandSid", "Sid", "sid"])
async def test_sid_only_callback_yields_both_hints(
    supersim_sim: SuperSimSimulator,
    twilio: Callable[..., SuperSimClient],
    receiver: Receiver,
    field_name: str,
) -> None:
    supersim_sim.callback_content = "sid"
    supersim_sim.callback_sid_field = field_name
    client = twilio()

    sid, received = await _status_callback(supersim_sim, client, receiver)

    assert form_of(received.body) == {field_name: sid}
    assert client.parse_callback(received.as_callback()) == [PollHint(sid), IncomingHint(sid)]
    # Reading it back settles what it was: an MT command is no incoming message.
    assert await client.async_fetch_incoming(IncomingHint(sid)) is None


async def test_twilio_mo_webhook_is_an_incoming_hint_and_fetches_the_message(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient], receiver: Receiver
) -> None:
    _fleet, sim = fleet_and_sim(supersim_sim, url=receiver.url("/mo"))
    client = twilio()

    sid = await supersim_sim.send_mo(sim.sid, "PRESSURE 2.4 BAR")

    [received] = receiver.received
    [hint] = client.parse_callback(received.as_callback())
    assert hint == IncomingHint(sid, endpoint_id=sim.sid)
    message = await client.async_fetch_incoming(hint)
    command = supersim_sim.commands[sid]
    assert message == IncomingMessage(
        message_id=sid,
        sender=sim.sid,
        text="PRESSURE 2.4 BAR",
        received_at=command.date_created.replace(microsecond=0),
        endpoint_id=sim.sid,
    )


@pytest.mark.parametrize("encoding", ["form", "query", "json"])
async def test_kore_callbacks_are_verified_with_the_webhook_secret(
    kore_sim: SuperSimSimulator,
    kore: Callable[..., SuperSimClient],
    receiver: Receiver,
    encoding: str,
) -> None:
    kore_sim.callback_encoding = encoding
    _fleet, sim = fleet_and_sim(kore_sim, url=receiver.url("/mo"))
    client = kore()

    sid = await kore_sim.send_mo(sim.sid, "hello")

    [received] = receiver.received
    assert received.headers["kore-idempotency-token"]
    assert client.parse_callback(received.as_callback()) == [IncomingHint(sid, sim.sid)]
    with pytest.raises(SignatureError, match="does not match"):
        kore(webhook_secret="another-secret").parse_callback(received.as_callback())
    unsigned = {k: v for k, v in received.headers.items() if k.lower() != "kore-signature"}
    with pytest.raises(SignatureError, match="no kore-signature"):
        client.parse_callback(received.as_callback(headers=unsigned))


async def test_kore_without_webhook_secret_accepts_the_empty_signature(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient], receiver: Receiver
) -> None:
    kore_sim.webhook_secret = None
    _fleet, sim = fleet_and_sim(kore_sim, url=receiver.url("/mo"))

    sid = await kore_sim.send_mo(sim.sid, "hello")

    [received] = receiver.received
    assert received.headers["kore-signature"] == ""
    assert kore(webhook_secret=None).parse_callback(received.as_callback()) == [
        IncomingHint(sid, sim.sid)
    ]
    with pytest.raises(SignatureError):  # a configured secret is never waived
        kore(webhook_secret="configured").parse_callback(received.as_callback())


async def test_redelivered_once_with_the_same_idempotency_token(
    kore_sim: SuperSimSimulator, kore: Callable[..., SuperSimClient], receiver: Receiver
) -> None:
    _fleet, sim = fleet_and_sim(kore_sim, url=receiver.url("/mo"))
    receiver.statuses = [503, 503]

    sid = await kore_sim.send_mo(sim.sid, "hello")

    first, second = receiver.received
    assert first.headers["kore-idempotency-token"] == second.headers["kore-idempotency-token"]
    assert first.body == second.body
    assert [a.status for a in kore_sim.callback_log] == [503, 503]
    assert kore().parse_callback(second.as_callback()) == [IncomingHint(sid, sim.sid)]


# ---------------------------------------------------------------- callbacks built by hand


def test_kore_published_test_vector(kore: Callable[..., SuperSimClient]) -> None:
    """KORE's example request passes the signature check (it names no SMS Command, though)."""
    client = kore(webhook_secret=KORE_VECTOR_SECRET)
    request = callback(
        url=KORE_VECTOR_URI,
        body=KORE_VECTOR_BODY,
        headers={"kore-signature": KORE_VECTOR_SIGNATURE},
    )

    with pytest.raises(InvalidCallback, match="no SMS Command SID") as err:
        client.parse_callback(request)
    assert not isinstance(err.value, SignatureError)
    upper = replace(request, headers={"Kore-Signature": KORE_VECTOR_SIGNATURE.upper()})
    with pytest.raises(InvalidCallback) as err:
        client.parse_callback(upper)
    assert not isinstance(err.value, SignatureError)
    tampered = replace(request, body=KORE_VECTOR_BODY + b"&field3=value3")
    with pytest.raises(SignatureError):
        client.parse_callback(tampered)
    assert kore_sign(KORE_VECTOR_SECRET, "POST", KORE_VECTOR_URI, KORE_VECTOR_BODY) == (
        KORE_VECTOR_SIGNATURE
    )


def test_kore_signature_ignores_the_query_string(kore: Callable[..., SuperSimClient]) -> None:
    sid = "HC" + "1" * 32
    body = f"SmsCommandSid={sid}&Status=delivered".encode()
    signature = kore_sign("s3cret", "POST", "https://ha.example/api/iot_sms/abc", body)
    request = callback(
        url="https://ha.example/api/iot_sms/abc?ref=1",
        body=body,
        headers={"kore-signature": signature},
    )

    assert kore(webhook_secret="s3cret").parse_callback(request) == [PollHint(sid)]


def test_twilio_signature_with_and_without_the_default_port(
    twilio: Callable[..., SuperSimClient],
) -> None:
    client = twilio(auth_token="t0ken", callback_url=None)
    sid = "HC" + "2" * 32
    params = {"SmsCommandSid": sid, "Status": "delivered", "Direction": "to_sim"}
    body = urlencode(params).encode()

    for signed_url, arrived_url in [
        ("https://ha.example/api/iot_sms/abc", "https://ha.example:443/api/iot_sms/abc"),
        ("https://ha.example:443/api/iot_sms/abc", "https://ha.example/api/iot_sms/abc"),
        ("http://ha.local:8123/api/iot_sms/abc", "http://ha.local:8123/api/iot_sms/abc"),
        ("http://ha.local:99999/api/iot_sms/abc", "http://ha.local:99999/api/iot_sms/abc"),
    ]:
        request = callback(
            url=arrived_url,
            body=body,
            headers={"X-Twilio-Signature": twilio_sign("t0ken", signed_url, params)},
        )
        assert client.parse_callback(request) == [PollHint(sid)]


def test_twilio_signature_of_the_url_we_registered_behind_a_proxy(
    twilio: Callable[..., SuperSimClient],
) -> None:
    """Behind a proxy the request arrives at another URL than the one Twilio called."""
    external = "https://ha.example.com/api/iot_sms/abc"
    client = twilio(auth_token="t0ken", callback_url=external)
    sid = "HC" + "3" * 32
    params = {"SmsCommandSid": sid, "Status": "failed"}
    request = callback(
        url="http://192.168.1.2:8123/api/iot_sms/abc",
        body=urlencode(params).encode(),
        headers={"X-Twilio-Signature": twilio_sign("t0ken", external, params)},
    )

    assert client.parse_callback(request) == [PollHint(sid)]
    with pytest.raises(SignatureError):
        twilio(auth_token="t0ken", callback_url=None).parse_callback(request)


def test_twilio_callback_without_a_url_cannot_be_verified(
    twilio: Callable[..., SuperSimClient],
) -> None:
    client = twilio(auth_token="t0ken", callback_url=None)
    params = {"SmsCommandSid": "HC" + "4" * 32}
    request = callback(
        url="",
        body=urlencode(params).encode(),
        headers={"X-Twilio-Signature": twilio_sign("t0ken", "https://ha.example/x", params)},
    )

    with pytest.raises(SignatureError):
        client.parse_callback(request)


def test_twilio_rejects_missing_wrong_or_unsigned_bodies(
    twilio: Callable[..., SuperSimClient],
) -> None:
    client = twilio(auth_token="t0ken", callback_url=None)
    url = "https://ha.example/api/iot_sms/abc"
    sid = "HC" + "4" * 32
    params = {"SmsCommandSid": sid}
    body = urlencode(params).encode()
    good = twilio_sign("t0ken", url, params)
    json_body = json.dumps({"sid": sid}).encode()
    hashed = f"{url}?bodySHA256={hashlib.sha256(json_body).hexdigest()}"

    with pytest.raises(SignatureError, match="no X-Twilio-Signature"):
        client.parse_callback(callback(url=url, body=body))
    with pytest.raises(SignatureError, match="does not match"):
        client.parse_callback(callback(url=url, body=body, headers={"X-Twilio-Signature": "x"}))
    forged = urlencode({"SmsCommandSid": "HC" + "5" * 32}).encode()
    with pytest.raises(SignatureError):  # another SID under the same signature
        client.parse_callback(callback(url=url, body=forged, headers={"X-Twilio-Signature": good}))
    with pytest.raises(SignatureError):  # a signature that is not even ASCII
        client.parse_callback(callback(url=url, body=body, headers={"X-Twilio-Signature": "ü"}))
    # JSON: the body is signed through bodySHA256 in the signed URL.
    signed_json = {"X-Twilio-Signature": twilio_sign("t0ken", hashed)}
    assert client.parse_callback(
        callback(url=hashed, body=json_body, headers=signed_json, content_type="application/json")
    ) == [PollHint(sid), IncomingHint(sid)]
    with pytest.raises(SignatureError, match="bodySHA256"):
        client.parse_callback(
            callback(
                url=hashed,
                body=json_body.replace(b"4", b"5"),
                headers=signed_json,
                content_type="application/json",
            )
        )
    with pytest.raises(SignatureError, match="not signed"):
        client.parse_callback(
            callback(
                url=url,
                body=json_body,
                headers={"X-Twilio-Signature": twilio_sign("t0ken", url)},
                content_type="application/json",
            )
        )


def _signed(client_token: str, url: str, **fields: str) -> CallbackRequest:
    return callback(
        url=url,
        body=urlencode(fields).encode(),
        headers={"X-Twilio-Signature": twilio_sign(client_token, url, fields)},
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"SMSCOMMANDSID": "HC" + "6" * 32, "status": "RECEIVED"}, "in"),
        ({"sms_command_sid": "HC" + "6" * 32, "status": "sent"}, "out"),
        ({"Sid": "HC" + "6" * 32, "sim_sid": "HS" + "7" * 32, "Direction": "from_sim"}, "in"),
        ({"sid": "HC" + "6" * 32, "Direction": "to_sim", "Status": "received"}, "out"),
        ({"sid": "HC" + "6" * 32, "Status": "whatever", "Sim": "not-a-sid"}, "both"),
    ],
)
def test_callback_fields_are_found_whatever_their_case(
    twilio: Callable[..., SuperSimClient], fields: dict[str, str], expected: str
) -> None:
    client = twilio(auth_token="t0ken", callback_url=None)
    url = "https://ha.example/api/iot_sms/abc"
    sid = "HC" + "6" * 32
    sim_sid = "HS" + "7" * 32 if "sim_sid" in fields else None

    items = client.parse_callback(_signed("t0ken", url, **fields))

    assert (
        items
        == {
            "in": [IncomingHint(sid, sim_sid)],
            "out": [PollHint(sid)],
            "both": [PollHint(sid), IncomingHint(sid)],
        }[expected]
    )


def test_get_callback_reads_the_signed_query(twilio: Callable[..., SuperSimClient]) -> None:
    client = twilio(auth_token="t0ken", callback_url=None)
    sid = "HC" + "8" * 32
    url = f"https://ha.example/api/iot_sms/abc?SmsCommandSid={sid}&Status=delivered"
    request = callback(
        "GET",
        url=url,
        query={"SmsCommandSid": sid, "Status": "delivered"},
        body=b"ignored=1",
        headers={"x-twilio-signature": twilio_sign("t0ken", url)},
    )

    assert client.parse_callback(request) == [PollHint(sid)]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (callback("PUT"), "unexpected method"),
        (callback(body=b"Status=delivered"), "no SMS Command SID"),
        (callback(body=b"SmsCommandSid=HC../../Fleets"), "no SMS Command SID"),
        (callback(body=b"SmsCommandSid=\xff\xfe"), "not a form"),
        (callback(body=b'{"sid": ', content_type="application/json"), "not valid JSON"),
        (callback(body=b"[1, 2]", content_type="application/json"), "not an object"),
        (callback(body=b"[" * 100 + b"]" * 100, content_type="application/json"), "JSON"),
        (callback(body=b"&".join(b"a=%d" % n for n in range(500))), "not a form"),
    ],
)
def test_invalid_callbacks(
    kore: Callable[..., SuperSimClient], request_: CallbackRequest, message: str
) -> None:
    with pytest.raises(InvalidCallback, match=message):
        kore(webhook_secret=None).parse_callback(request_)


def test_untyped_json_callback_is_sniffed(kore: Callable[..., SuperSimClient]) -> None:
    sid = "HC" + "9" * 32
    body = json.dumps({"sid": sid, "direction": "from_sim", "nested": {"x": 1}, "n": 5}).encode()

    items = kore(webhook_secret=None).parse_callback(callback(body=body, content_type=""))

    assert items == [IncomingHint(sid)]


async def test_fetch_incoming_refuses_what_is_not_an_mo(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    client = twilio()

    assert await client.async_fetch_incoming(IncomingHint("HC" + "0" * 32)) is None  # 404
    assert await client.async_fetch_incoming(IncomingHint("../Fleets")) is None
    assert [r.path for r in supersim_sim.requests] == [f"/v1/SmsCommands/HC{'0' * 32}"]


async def test_fetch_incoming_of_a_resource_without_direction_or_sim(
    receiver: Receiver, twilio: Callable[..., SuperSimClient]
) -> None:
    sid = "HC" + "a" * 32
    bodies = iter(
        [
            {"sid": sid, "status": "received", "payload": "hi", "sim_sid": "HS" + "b" * 32},
            {"sid": sid, "direction": "from_sim", "payload": "hi"},
            {"sid": sid, "direction": "from_sim", "sim_sid": "HS" + "b" * 32},
            [sid],
        ]
    )

    async def command(_request: web.Request) -> web.StreamResponse:
        return web.json_response(next(bodies))

    receiver.replies[f"/v1/SmsCommands/{sid}"] = command
    client = twilio(base_url=receiver.base_url)

    message = await client.async_fetch_incoming(IncomingHint(sid))
    assert message is not None
    assert message.sender == "HS" + "b" * 32
    assert message.received_at.tzinfo is UTC
    hinted = await client.async_fetch_incoming(IncomingHint(sid, endpoint_id="HS" + "c" * 32))
    assert hinted is not None
    assert hinted.sender == "HS" + "c" * 32
    with pytest.raises(ConnectionFailed, match="without its Sim or payload"):
        await client.async_fetch_incoming(IncomingHint(sid))
    with pytest.raises(ConnectionFailed, match="no object"):
        await client.async_fetch_incoming(IncomingHint(sid))


# ---------------------------------------------------------------- Fleets


async def test_fleets_are_the_service_profiles(
    supersim_sim: SuperSimSimulator,
    twilio: Callable[..., SuperSimClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pumps = supersim_sim.add_fleet("Pumps", sms_commands_url="https://old.example/mo")
    data_only = supersim_sim.add_fleet("Data only", sms_commands_enabled=False)
    nameless = supersim_sim.add_fleet("")

    with caplog.at_level(logging.WARNING):
        profiles = await twilio().async_list_service_profiles()

    assert [(p.id, p.name, p.callback_url) for p in profiles] == [
        (pumps.sid, "Pumps", "https://old.example/mo"),
        (data_only.sid, "Data only", None),
        (nameless.sid, nameless.sid, None),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Data only" in warnings[0]
    assert "disabled" in warnings[0]


async def test_register_callback_points_the_fleet_at_our_url(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient], receiver: Receiver
) -> None:
    fleet, sim = fleet_and_sim(supersim_sim, url="https://old.example/mo")
    client = twilio()
    url = receiver.url("/new-mo")

    profile = await client.async_register_callback(fleet.sid, url, "unused-secret")

    [update] = requests_to(supersim_sim, "POST", f"/v1/Fleets/{fleet.sid}")
    assert form_of(update.body) == {"SmsCommandsUrl": url, "SmsCommandsMethod": "POST"}
    assert (profile.id, profile.name, profile.callback_url) == (fleet.sid, "Pumps", url)
    assert supersim_sim.fleets[fleet.sid].sms_commands_url == url
    assert (await client.async_register_callback(fleet.sid, url, "unused")).callback_url == url
    sid = await supersim_sim.send_mo(sim.sid, "hello")
    [received] = receiver.received
    assert received.url == url
    # Signed for the URL we registered, even if a proxy delivers it somewhere else.
    moved = received.as_callback(url="http://10.0.0.2:8123/new-mo")
    assert client.parse_callback(moved) == [IncomingHint(sid, sim.sid)]


async def test_register_callback_on_unknown_or_no_fleet(
    supersim_sim: SuperSimSimulator, twilio: Callable[..., SuperSimClient]
) -> None:
    client = twilio()

    with pytest.raises(NotFound):
        await client.async_register_callback("HF" + "0" * 32, "https://ha.example/x", "s")
    with pytest.raises(InvalidRequest):
        await client.async_register_callback(" ", "https://ha.example/x", "s")


async def test_register_callback_answer_without_a_fleet(
    receiver: Receiver, twilio: Callable[..., SuperSimClient]
) -> None:
    async def fleet(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"unique_name": "no sid"})

    receiver.replies["/v1/Fleets/HF1"] = fleet

    with pytest.raises(ConnectionFailed, match="no Fleet"):
        await twilio(base_url=receiver.base_url).async_register_callback("HF1", "https://x", "s")


# ---------------------------------------------------------------- end to end in Home Assistant


async def test_e2e_notify_is_delivered_by_push(
    hass: HomeAssistant, supersim_provider: SuperSimProvider, wait_for: Any
) -> None:
    events = async_capture_events(hass, DELIVERY)

    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.pump_station_sms", "message": "REBOOT"},
        blocking=True,
    )
    [sid] = supersim_provider.reached("REBOOT")
    assert _state(hass, PUMP_STATUS) == "queued"
    await wait_for(lambda: _state(hass, PUMP_STATUS) == "delivered")

    assert [(e.data["previous_status"], e.data["status"]) for e in events] == [
        (None, "queued"),
        ("queued", "delivered"),
    ]
    assert events[-1].data["message_id"] == sid
    assert events[-1].data["provider"] == "supersim"
    # The signed status callback reached Home Assistant and was accepted.
    sim = supersim_provider.sim
    await sim.wait_idle()
    assert [a.status for a in sim.callback_log] == [200]
    assert sim.callback_log[0].url == f"{hass.config.internal_url}/api/iot_sms/{WEBHOOK_ID}"


async def test_e2e_echo_reply_fires_the_event(
    hass: HomeAssistant, supersim_provider: SuperSimProvider, wait_for: Any
) -> None:
    received = async_capture_events(hass, RECEIVED)

    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.tracker_sms", "message": "WHERE ARE YOU"},
        blocking=True,
    )
    await wait_for(lambda: len(received) == 1)
    await supersim_provider.wait_idle()
    await hass.async_block_till_done()

    [event] = received
    assert event.data["text"] == "ECHO: WHERE ARE YOU"
    assert event.data["sender"] == supersim_provider.msisdn("Tracker")
    assert event.data["endpoint_id"] == supersim_provider.addresses["Tracker"]
    assert event.data["device_id"] is not None
    assert event.data["provider"] == "supersim"
    assert _state(hass, "sensor.tracker_last_incoming_sms") == "ECHO: WHERE ARE YOU"


async def test_e2e_duplicate_and_sid_only_mo_is_one_event(
    hass: HomeAssistant, supersim_provider: SuperSimProvider
) -> None:
    supersim_provider.sim.callback_content = "sid"
    received = async_capture_events(hass, RECEIVED)

    pump = supersim_provider.addresses["Pump station"]
    sid = await supersim_provider.sim.send_mo(pump, "LEVEL 3", duplicate=True)
    await hass.async_block_till_done()

    assert [a.status for a in supersim_provider.sim.callback_log] == [200, 200]
    assert [(e.data["message_id"], e.data["text"]) for e in received] == [(sid, "LEVEL 3")]


async def test_e2e_unknown_sim_is_an_unknown_sender(
    hass: HomeAssistant, supersim_provider: SuperSimProvider
) -> None:
    received = async_capture_events(hass, RECEIVED)

    sender = await supersim_provider.stranger_sends("Who am I?")
    await hass.async_block_till_done()

    [event] = received
    assert event.data["sender"] == sender
    assert event.data["device_id"] is None


async def test_e2e_unsigned_or_forged_callbacks_get_401(
    hass: HomeAssistant,
    supersim_provider: SuperSimProvider,
    hass_client_no_auth: Any,
) -> None:
    sim = supersim_provider.sim
    sid = "HC" + "0" * 32
    client = await hass_client_no_auth()
    path = f"/api/iot_sms/{WEBHOOK_ID}"
    form = {"SmsCommandSid": sid, "Direction": "from_sim"}
    url = f"{hass.config.internal_url}{path}"

    unsigned = await client.post(path, data=form)
    forged = await client.post(
        path, data=form, headers={"X-Twilio-Signature": twilio_sign("f" * 32, url, form)}
    )
    signed = await client.post(
        path, data=form, headers={"X-Twilio-Signature": twilio_sign(sim.auth_token, url, form)}
    )

    assert unsigned.status == 401
    assert forged.status == 401
    assert signed.status == 200


@pytest.fixture
async def setup_kore(
    hass: HomeAssistant, kore_sim: SuperSimSimulator, hass_url: str
) -> MockConfigEntry:
    fleet = kore_sim.add_fleet("Fleet", sms_commands_url=f"{hass_url}/api/iot_sms/{WEBHOOK_ID}")
    for name, behavior in SUPERSIM_SIMS.items():
        kore_sim.add_sim(name, behavior, fleet=fleet)
    entry = MockConfigEntry(
        domain="iot_sms",
        title=f"Super SIM ({kore_sim.client_id})",
        unique_id=kore_sim.client_id,
        data={
            "provider": "supersim",
            "vendor": "kore",
            "client_id": kore_sim.client_id,
            "client_secret": kore_sim.client_secret,
            "base_url": kore_sim.base_url,
            "token_url": kore_sim.token_url,
            "webhook_secret": kore_sim.webhook_secret,
            CONF_WEBHOOK_ID: WEBHOOK_ID,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_e2e_kore_entry_delivers_and_receives(
    hass: HomeAssistant,
    setup_kore: MockConfigEntry,
    kore_sim: SuperSimSimulator,
    wait_for: Any,
    hass_client_no_auth: Any,
) -> None:
    received = async_capture_events(hass, RECEIVED)

    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.tracker_sms", "message": "PING"},
        blocking=True,
    )
    await wait_for(lambda: _state(hass, "sensor.tracker_last_sms_status") == "delivered")
    await wait_for(lambda: len(received) == 1)

    assert received[0].data["text"] == "ECHO: PING"
    assert kore_sim.token_count == 1
    assert {a.status for a in kore_sim.callback_log} == {200}
    # Without the webhook secret's signature, Home Assistant refuses the callback.
    client = await hass_client_no_auth()
    response = await client.post(
        f"/api/iot_sms/{WEBHOOK_ID}", data={"SmsCommandSid": next(iter(kore_sim.commands))}
    )
    assert response.status == 401


def _state(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.states.get(entity_id)
    return state.state if state else None
