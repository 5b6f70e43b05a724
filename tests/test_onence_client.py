"""OnenceClient against the 1NCE simulator over real HTTP on 127.0.0.1.

Expected values come from the reference (`shared/reference/1nce-sms-api.md`) and from what the
simulator stored or received, never from the client's own constants.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.iot_sms.api import onence
from custom_components.iot_sms.api.errors import (
    AuthError,
    ConnectionFailed,
    DeliveryUnknown,
    InvalidCallback,
    InvalidRequest,
    NotCancellable,
    NotFound,
    RateLimited,
)
from custom_components.iot_sms.api.models import (
    CallbackRequest,
    IncomingHint,
    IncomingMessage,
    MessagePart,
    MultipartInfo,
    PollHint,
    SendOptions,
    SmsStatus,
)
from custom_components.iot_sms.api.onence import OnenceClient, parse_sms
from simulator.onence import OnenceSimulator
from tests.provider_onence import *  # noqa: F403  (fixtures: setup_onence, onence_provider)
from tests.provider_onence import OnenceProvider

PART = MessagePart(text="STATUS?", encoding="gsm7")
TOKEN_PATH = "/management-api/oauth/token"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def make_client(
    onence_sim: OnenceSimulator, session: aiohttp.ClientSession
) -> Callable[..., OnenceClient]:
    def factory(**kwargs: Any) -> OnenceClient:
        username = kwargs.pop("username", onence_sim.username)
        password = kwargs.pop("password", onence_sim.password)
        base_url = kwargs.pop("base_url", onence_sim.api_url)
        client = OnenceClient(session, username, password, base_url, **kwargs)
        client.rate_limit_delay = 0.01
        return client

    return factory


@pytest.fixture
def client(make_client: Callable[..., OnenceClient]) -> OnenceClient:
    return make_client()


def calls(sim: OnenceSimulator, method: str, path_part: str) -> list[Any]:
    return [r for r in sim.requests if r.method == method and path_part in r.path]


def sms_posts(sim: OnenceSimulator) -> list[Any]:
    return [r for r in calls(sim, "POST", "/sms") if r.path.endswith("/sms")]


def sms_lists(sim: OnenceSimulator) -> list[Any]:
    return [r for r in calls(sim, "GET", "/sms") if r.path.endswith("/sms")]


async def wait_for_status(sim: OnenceSimulator, sms_id: int, status_id: int) -> None:
    for _ in range(300):
        if sim.sms[sms_id].status_id == status_id:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"SMS {sms_id} never reached status {status_id}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# ---------------------------------------------------------------- account and authentication


async def test_account_is_the_api_user(onence_sim: OnenceSimulator, client: OnenceClient):
    account = await client.async_get_account()

    assert account.unique_id == onence_sim.username
    assert account.title == f"1NCE ({onence_sim.username})"
    assert client.provider == "1nce"
    assert client.capabilities.lists_endpoints is True
    assert client.capabilities.registers_callbacks is False
    assert client.capabilities.statuses == frozenset(SmsStatus)
    # One token (Basic credentials, JSON client_credentials), then one SIM list request.
    assert [(r.method, r.path) for r in onence_sim.requests] == [
        ("POST", TOKEN_PATH),
        ("GET", "/management-api/v2/sims"),
    ]
    token_request = onence_sim.requests[0]
    assert json.loads(token_request.body) == {"grant_type": "client_credentials"}
    assert token_request.headers["Content-Type"].startswith("application/json")
    assert onence_sim.token_count == 1


async def test_one_token_for_many_calls(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")

    await client.async_list_endpoints()
    ids = await asyncio.gather(
        *(client.async_send_part(sim.iccid, PART, SendOptions()) for _ in range(4))
    )
    await client.async_poll(sim.iccid, ids)
    await client.async_get_account()

    assert len(onence_sim.sms) == 4
    assert onence_sim.token_count == 1
    assert len(calls(onence_sim, "POST", TOKEN_PATH)) == 1


async def test_token_renewed_shortly_before_it_expires(
    onence_sim: OnenceSimulator, make_client: Callable[..., OnenceClient]
):
    now = [1000.0]
    client = make_client(clock=lambda: now[0])
    await client.async_list_endpoints()
    lifetime = onence_sim.faults.token_ttl  # the documented 3600 s

    now[0] += lifetime * 0.9  # still well within the token's lifetime
    await client.async_list_endpoints()
    assert onence_sim.token_count == 1

    now[0] += lifetime * 0.09  # 36 s before expiry: renewed before 1NCE would refuse it
    await client.async_list_endpoints()
    assert onence_sim.token_count == 2


async def test_concurrent_calls_after_expiry_renew_once(
    onence_sim: OnenceSimulator, make_client: Callable[..., OnenceClient]
):
    now = [1000.0]
    client = make_client(clock=lambda: now[0])
    await client.async_list_endpoints()
    now[0] += onence_sim.faults.token_ttl  # the token's lifetime is over

    await asyncio.gather(*(client.async_list_endpoints() for _ in range(3)))

    assert onence_sim.token_count == 2


async def test_short_lived_token_is_renewed_without_a_401(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    onence_sim.faults.token_ttl = 0.4
    await client.async_list_endpoints()
    await asyncio.sleep(0.45)  # the simulator now refuses the first token

    await client.async_list_endpoints()

    assert onence_sim.token_count == 2
    # No request was refused and repeated: one probe plus two listings.
    assert len(calls(onence_sim, "GET", "/sims")) == 3


async def test_rejected_token_is_renewed_once(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")
    await client.async_list_endpoints()
    onence_sim.expire_tokens()

    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())

    assert onence_sim.token_count == 2
    assert list(onence_sim.sms) == [int(sms_id)]
    assert len(sms_posts(onence_sim)) == 2  # refused with 401 (not sent), then sent


async def test_concurrent_401s_share_one_renewal(onence_sim: OnenceSimulator, client: OnenceClient):
    onence_sim.add_sim("Pump")
    await client.async_list_endpoints()
    onence_sim.expire_tokens()

    results = await asyncio.gather(*(client.async_list_endpoints() for _ in range(3)))

    assert [[e.name for e in r] for r in results] == [["Pump"]] * 3
    assert onence_sim.token_count == 2


async def test_second_401_is_an_auth_error(onence_sim: OnenceSimulator, client: OnenceClient):
    onence_sim.faults.token_ttl = 0  # every token is stale when it is issued

    with pytest.raises(AuthError, match="HTTP 401"):
        await client.async_get_account()

    assert len(calls(onence_sim, "GET", "/sims")) == 2
    assert onence_sim.token_count == 2


@pytest.mark.parametrize(
    ("username", "password", "error_code"),
    [
        ("nobody", "demo-api-secret", "BadCredentials"),
        ("demo-api-user", "wrong-secret", "BadCredentials"),
        ("demo-api-user", "", "AuthValidationError"),
    ],
)
async def test_bad_credentials_are_an_auth_error(
    onence_sim: OnenceSimulator,
    make_client: Callable[..., OnenceClient],
    username: str,
    password: str,
    error_code: str,
):
    client = make_client(username=username, password=password)

    with pytest.raises(AuthError, match=error_code) as err:
        await client.async_get_account()

    assert "HTTP 400" in str(err.value)  # 1NCE answers bad credentials with 400, not 401
    assert "wrong-secret" not in str(err.value)
    assert onence_sim.token_count == 0
    assert calls(onence_sim, "GET", "/sims") == []


async def test_token_server_error_is_not_bad_credentials(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    onence_sim.faults.path_filter = "/oauth/token"
    onence_sim.faults.server_errors = 1

    with pytest.raises(ConnectionFailed, match="HTTP 500") as err:
        await client.async_get_account()

    assert not isinstance(err.value, AuthError)
    assert (await client.async_get_account()).unique_id == onence_sim.username


async def test_token_429_is_retried_once(onence_sim: OnenceSimulator, client: OnenceClient):
    onence_sim.faults.path_filter = "/oauth/token"
    onence_sim.faults.rate_limits = 1

    await client.async_get_account()

    assert len(calls(onence_sim, "POST", TOKEN_PATH)) == 2
    assert onence_sim.token_count == 1


async def test_host_without_path_gets_management_api(
    onence_sim: OnenceSimulator, make_client: Callable[..., OnenceClient]
):
    assert onence_sim.base_url is not None
    client = make_client(base_url=onence_sim.base_url + "/")

    await client.async_get_account()

    assert onence_sim.requests[0].path == TOKEN_PATH


async def test_wrong_path_is_cannot_connect(
    onence_sim: OnenceSimulator, make_client: Callable[..., OnenceClient]
):
    client = make_client(base_url=f"{onence_sim.base_url}/api")

    with pytest.raises(ConnectionFailed, match="no 1NCE Management API") as err:
        await client.async_get_account()

    assert not isinstance(err.value, AuthError)


async def test_unreachable_host_is_connection_failed(
    onence_sim: OnenceSimulator, make_client: Callable[..., OnenceClient]
):
    client = make_client(base_url=f"http://127.0.0.1:{free_port()}/management-api")

    with pytest.raises(ConnectionFailed):
        await client.async_get_account()


async def test_concurrent_first_calls_share_token_and_probe(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    onence_sim.add_sim("Pump")

    await asyncio.gather(*(client.async_list_endpoints() for _ in range(3)))

    assert onence_sim.token_count == 1
    probes = [r for r in calls(onence_sim, "GET", "/v2/sims") if r.query["pageSize"] == "1"]
    assert len(probes) == 1


# ---------------------------------------------------------------- API version


async def test_v2_is_used_where_the_account_has_it(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    sim = onence_sim.add_sim("Pump")

    await client.async_get_account()
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    await client.async_list_endpoints()

    assert client.api_version == 2
    assert [r.path for r in sms_posts(onence_sim)] == [f"/management-api/v2/sims/{sim.iccid}/sms"]
    assert list(onence_sim.sms) == [int(sms_id)]
    assert not calls(onence_sim, "GET", "/v1/")


async def test_v1_fallback_is_detected_once(onence_sim: OnenceSimulator, client: OnenceClient):
    onence_sim.versions = frozenset({1})
    onence_sim.v1_location = True
    sim = onence_sim.add_sim("Pump")

    await client.async_get_account()
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    (polled,) = await client.async_poll(sim.iccid, [sms_id])

    assert client.api_version == 1
    assert [(r.method, r.path) for r in onence_sim.requests] == [
        ("POST", TOKEN_PATH),
        ("GET", "/management-api/v2/sims"),  # 404: the account has no v2
        ("GET", "/management-api/v1/sims"),
        ("POST", f"/management-api/v1/sims/{sim.iccid}/sms"),
        ("GET", f"/management-api/v1/sims/{sim.iccid}/sms/{sms_id}"),
    ]
    assert list(onence_sim.sms) == [int(sms_id)]
    assert polled.status is SmsStatus.QUEUED  # PENDING
    assert polled.raw_status == "PENDING"


async def test_v1_send_without_location_is_found_in_the_list(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    onence_sim.versions = frozenset({1})
    sim = onence_sim.add_sim("Pump")
    for number in range(150):  # more than a page of history, all older than the send
        onence_sim.add_sms(sim.iccid, PART.text, age=timedelta(hours=1, minutes=number))

    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    again = await client.async_send_part(sim.iccid, PART, SendOptions())

    newest = max(onence_sim.sms)
    assert sms_id == str(newest - 1)
    assert again == str(newest)  # the same text again: not the id already returned
    (listing, *_) = sms_lists(onence_sim)
    assert listing.query["sort"] == "-submit_date"
    assert listing.query["page"] == "1"


async def test_v1_send_without_location_is_the_newest_match(
    onence_sim: OnenceSimulator, make_client: Callable[..., OnenceClient]
):
    onence_sim.versions = frozenset({1})
    sim = onence_sim.add_sim("Pump")
    # The same text a minute earlier, by a client that is gone (Home Assistant restarted).
    earlier = await make_client().async_send_part(sim.iccid, PART, SendOptions())

    ours = await make_client().async_send_part(sim.iccid, PART, SendOptions())

    assert ours == str(max(onence_sim.sms))
    assert ours != earlier


@pytest.mark.parametrize("headers", [True, False])
async def test_v1_unsorted_list_is_read_from_its_newest_end(
    onence_sim: OnenceSimulator, client: OnenceClient, headers: bool
):
    onence_sim.versions = frozenset({1})
    onence_sim.v1_sort = "ignored"
    onence_sim.paging_headers = headers
    sim = onence_sim.add_sim("Pump")
    for number in range(250):
        onence_sim.add_sms(sim.iccid, PART.text, age=timedelta(hours=1, minutes=number))

    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())

    assert sms_id == str(max(onence_sim.sms))
    pages = [r.query["page"] for r in sms_lists(onence_sim)]
    # With X-Total-Pages the last page is read at once; without, pages until a short one.
    assert pages == (["1", "3"] if headers else ["1", "2", "3"])


async def test_v1_sort_refused_is_dropped_for_good(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    onence_sim.versions = frozenset({1})
    onence_sim.v1_sort = "rejected"
    sim = onence_sim.add_sim("Pump")

    first = await client.async_send_part(sim.iccid, PART, SendOptions())
    second = await client.async_send_part(sim.iccid, MessagePart("PING", "gsm7"), SendOptions())

    assert [first, second] == [str(i) for i in sorted(onence_sim.sms)]
    assert ["sort" in r.query for r in sms_lists(onence_sim)] == [True, False, False]


# ---------------------------------------------------------------- SIM list


@pytest.mark.parametrize("headers", [True, False])
async def test_every_page_of_sims(onence_sim: OnenceSimulator, client: OnenceClient, headers: bool):
    onence_sim.paging_headers = headers
    for number in range(250):
        onence_sim.add_sim(f"Meter {number}")

    endpoints = await client.async_list_endpoints()

    assert {e.name for e in endpoints} == {f"Meter {n}" for n in range(250)}
    assert {e.id for e in endpoints} == set(onence_sim.sims)
    listings = [r for r in calls(onence_sim, "GET", "/v2/sims") if r.query["pageSize"] != "1"]
    assert [r.query["page"] for r in listings] == ["1", "2", "3"]
    assert {r.query["pageSize"] for r in listings} == {"100"}  # the documented maximum


async def test_full_last_page_without_headers(onence_sim: OnenceSimulator, client: OnenceClient):
    onence_sim.paging_headers = False
    for number in range(200):
        onence_sim.add_sim(f"Meter {number}")

    endpoints = await client.async_list_endpoints()

    assert len(endpoints) == 200
    listings = [r for r in calls(onence_sim, "GET", "/v2/sims") if r.query["pageSize"] != "1"]
    assert [r.query["page"] for r in listings] == ["1", "2", "3"]  # the third one is empty


async def test_sim_fields(onence_sim: OnenceSimulator, client: OnenceClient):
    labelled = onence_sim.add_sim("Pump station")
    unlabelled = onence_sim.add_sim("")

    pump, other = await client.async_list_endpoints()

    assert pump.id == pump.iccid == labelled.iccid
    assert len(pump.id) == 19  # ICCID without the Luhn digit
    assert pump.name == "Pump station"
    assert pump.msisdn == labelled.msisdn
    assert pump.imsi == labelled.imsi
    assert pump.imei == labelled.imei
    assert other.name == unlabelled.iccid


# ---------------------------------------------------------------- sending


async def test_send_gsm7(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")

    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())

    stored = onence_sim.sms[int(sms_id)]
    assert stored.iccid == sim.iccid
    assert stored.payload == "STATUS?"
    assert stored.udh is None
    assert stored.dcs is None
    # Only spec fields, a numeric sender of type 145 (International).
    assert json.loads(sms_posts(onence_sim)[0].body) == {
        "payload": "STATUS?",
        "source_address": stored.source_address,
        "source_address_type": {"id": 145},
    }
    assert stored.source_address.isdigit()


async def test_send_concatenated_gsm7(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")
    text = "0123456789" * 20  # 200 GSM-7 characters: two parts of at most 153

    parts = client.plan_message(text)
    ids = [await client.async_send_part(sim.iccid, p, SendOptions()) for p in parts]

    stored = [onence_sim.sms[int(i)] for i in ids]
    assert "".join(s.payload for s in stored) == text
    assert all(len(s.payload) <= 153 for s in stored)
    udhs = [s.udh or "" for s in stored]
    assert [u[:6] for u in udhs] == ["050003", "050003"]
    assert udhs[0][6:8] == udhs[1][6:8]  # one reference
    assert [u[8:] for u in udhs] == ["0201", "0202"]
    assert [s.dcs for s in stored] == [0, 0]


async def test_send_ucs2(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")

    (part,) = client.plan_message("Temperatur 21 °C ✓")
    sms_id = await client.async_send_part(sim.iccid, part, SendOptions())

    stored = onence_sim.sms[int(sms_id)]
    assert stored.dcs == 8
    assert stored.payload == "Temperatur 21 °C ✓"
    assert stored.udh is None


async def test_send_concatenated_ucs2(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")
    text = "Δ✓ Grüße " * 12  # 108 characters, not GSM-7: two UCS-2 parts of at most 67

    parts = client.plan_message(text)
    ids = [await client.async_send_part(sim.iccid, p, SendOptions()) for p in parts]

    stored = [onence_sim.sms[int(i)] for i in ids]
    assert "".join(s.payload for s in stored) == text
    assert all(len(s.payload) <= 67 for s in stored)
    assert [s.dcs for s in stored] == [8, 8]
    assert [(s.udh or "")[8:] for s in stored] == ["0201", "0202"]


async def test_too_long_text_is_refused_before_sending(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    with pytest.raises(InvalidRequest):
        client.plan_message("x" * 153 * 10 + "y")


@pytest.mark.parametrize(
    ("sender", "source_address", "type_id"),
    [("HomeAsst", "HomeAsst", 208), ("+491701234567", "491701234567", 145)],
)
async def test_send_with_sender_and_expiry(
    onence_sim: OnenceSimulator,
    client: OnenceClient,
    sender: str,
    source_address: str,
    type_id: int,
):
    sim = onence_sim.add_sim("Pump")
    expires = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)

    sms_id = await client.async_send_part(
        sim.iccid, PART, SendOptions(sender=sender, expires_at=expires, extra={"pid": "1"})
    )

    stored = onence_sim.sms[int(sms_id)]
    assert stored.source_address == source_address
    assert stored.source_address_type == type_id
    assert stored.expiry_date == expires
    body = json.loads(sms_posts(onence_sim)[0].body)
    assert body["expiry_date"] == "2031-05-06T07:08:09.000+00:00"  # v2: RFC 3339
    assert "pid" not in body


async def test_v1_expiry_is_in_the_v1_format(onence_sim: OnenceSimulator, client: OnenceClient):
    onence_sim.versions = frozenset({1})
    onence_sim.v1_location = True
    sim = onence_sim.add_sim("Pump")
    naive = datetime(2031, 5, 6, 7, 8, 9)  # noqa: DTZ001 - naive means UTC

    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions(expires_at=naive))

    body = json.loads(sms_posts(onence_sim)[0].body)
    assert body["expiry_date"] == "2031-05-06T07:08:09.000+0000"
    assert onence_sim.sms[int(sms_id)].expiry_date == naive.replace(tzinfo=UTC)


async def test_send_429_is_retried_once(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")
    await client.async_list_endpoints()
    onence_sim.faults.path_filter = "/sms"
    onence_sim.faults.rate_limits = 1

    await client.async_send_part(sim.iccid, PART, SendOptions())

    assert len(sms_posts(onence_sim)) == 2
    assert len(onence_sim.sms) == 1


async def test_send_429_twice_is_rate_limited(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")
    await client.async_list_endpoints()
    onence_sim.faults.path_filter = "/sms"
    onence_sim.faults.rate_limits = 2

    with pytest.raises(RateLimited):
        await client.async_send_part(sim.iccid, PART, SendOptions())

    assert len(sms_posts(onence_sim)) == 2
    assert onence_sim.sms == {}


async def test_lost_answer_is_unknown_then_found(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")
    await client.async_list_endpoints()
    onence_sim.faults.path_filter = "/sms"
    onence_sim.faults.lose_answers = 1
    sent_after = datetime.now(UTC)

    with pytest.raises(DeliveryUnknown):
        await client.async_send_part(sim.iccid, PART, SendOptions())

    assert len(sms_posts(onence_sim)) == 1  # never repeated
    (stored,) = onence_sim.sms.values()
    found = await client.async_find_sent(sim.iccid, PART, sent_after, known=())
    assert found == str(stored.id)
    # Once tracked, it is no longer a candidate: the list proves there is no other.
    assert await client.async_find_sent(sim.iccid, PART, sent_after, known={found}) is None


async def test_server_error_is_unknown_and_provably_not_sent(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    sim = onence_sim.add_sim("Pump")
    await client.async_list_endpoints()
    onence_sim.faults.path_filter = "/sms"
    onence_sim.faults.server_errors = 1
    sent_after = datetime.now(UTC)

    with pytest.raises(DeliveryUnknown, match="HTTP 500"):
        await client.async_send_part(sim.iccid, PART, SendOptions())

    assert len(sms_posts(onence_sim)) == 1
    assert onence_sim.sms == {}
    onence_sim.faults.path_filter = None
    assert await client.async_find_sent(sim.iccid, PART, sent_after, known=()) is None


async def test_timeout_is_unknown_and_not_repeated(
    onence_sim: OnenceSimulator, make_client: Callable[..., OnenceClient]
):
    sim = onence_sim.add_sim("Pump")
    client = make_client(request_timeout=0.3)
    await client.async_list_endpoints()
    onence_sim.faults.path_filter = "/sms"
    onence_sim.faults.latency = 0.6

    with pytest.raises(DeliveryUnknown, match="did not answer in time"):
        await client.async_send_part(sim.iccid, PART, SendOptions())

    assert len(sms_posts(onence_sim)) == 1
    assert len(onence_sim.sms) == 1  # it did reach 1NCE: a retry would have sent it twice


async def test_dropped_connection_is_unknown(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")
    await client.async_list_endpoints()
    onence_sim.faults.path_filter = "/sms"
    onence_sim.faults.drop_after_read = 1

    with pytest.raises(DeliveryUnknown, match="connection to 1NCE broke"):
        await client.async_send_part(sim.iccid, PART, SendOptions())

    assert len(sms_posts(onence_sim)) == 1


async def test_send_that_cannot_connect_is_not_unknown(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    sim = onence_sim.add_sim("Pump")
    await client.async_list_endpoints()
    client._base_url = f"http://127.0.0.1:{free_port()}/management-api"

    with pytest.raises(ConnectionFailed) as err:
        await client.async_send_part(sim.iccid, PART, SendOptions())

    assert not isinstance(err.value, DeliveryUnknown)


@pytest.fixture
def unresponsive_port(socket_enabled: None) -> Any:
    """A port on 127.0.0.1 whose accept queue is full: a new connection never opens."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port: int = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


async def test_send_that_cannot_connect_in_time_is_not_unknown(
    onence_sim: OnenceSimulator,
    make_client: Callable[..., OnenceClient],
    unresponsive_port: int,
):
    sim = onence_sim.add_sim("Pump")
    client = make_client(request_timeout=0.4)
    await client.async_list_endpoints()
    client._base_url = f"http://127.0.0.1:{unresponsive_port}/management-api"

    # Not DeliveryUnknown: the request was never written, so the SMS cannot have been sent.
    with pytest.raises(ConnectionFailed, match="did not accept the connection") as err:
        await client.async_send_part(sim.iccid, PART, SendOptions())

    assert not isinstance(err.value, DeliveryUnknown)


async def test_only_recent_ids_are_remembered(
    onence_sim: OnenceSimulator, client: OnenceClient, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(onence, "MAX_REMEMBERED_IDS", 1)
    sim = onence_sim.add_sim("Pump")
    sent_after = datetime.now(UTC)

    first = await client.async_send_part(sim.iccid, PART, SendOptions())
    await client.async_send_part(sim.iccid, PART, SendOptions())

    # The older id is forgotten (the tracker's `known` covers it), the newer one is not.
    assert await client.async_find_sent(sim.iccid, PART, sent_after, known=()) == first


async def test_find_sent_cannot_tell_when_the_list_does_not_reach_back(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    sim = onence_sim.add_sim("Pump")
    for _ in range(150):  # more recent SMS than one page, none of them this send
        onence_sim.add_sms(sim.iccid, "other", age=timedelta(seconds=1))

    with pytest.raises(ConnectionFailed, match="does not reach back"):
        await client.async_find_sent(sim.iccid, PART, datetime.now(UTC), known=())


async def test_find_sent_skips_replies_and_old_sms(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    sim = onence_sim.add_sim("Pump")
    onence_sim.add_sms(sim.iccid, PART.text, age=timedelta(hours=2))  # an earlier send
    await onence_sim.send_mo(sim.iccid, PART.text)  # the device said the same

    assert await client.async_find_sent(sim.iccid, PART, datetime.now(UTC), known=()) is None


async def test_unknown_sim_is_not_found(onence_sim: OnenceSimulator, client: OnenceClient):
    with pytest.raises(NotFound):
        await client.async_send_part("8988303000099999999", PART, SendOptions())


async def test_refused_send_is_invalid_request(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")

    # A part the planner would never make: more than one SMS carries.
    with pytest.raises(InvalidRequest, match="too long") as err:
        await client.async_send_part(sim.iccid, MessagePart("x" * 161, "gsm7"), SendOptions())

    assert not isinstance(err.value, NotFound)
    assert onence_sim.sms == {}


# ---------------------------------------------------------------- polling


async def test_poll_one_part_is_one_get(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    await onence_sim.wait_idle()
    before = len(onence_sim.requests)

    (message,) = await client.async_poll(sim.iccid, [sms_id])

    new = onence_sim.requests[before:]
    assert [(r.method, r.path) for r in new] == [
        ("GET", f"/management-api/v2/sims/{sim.iccid}/sms/{sms_id}")
    ]
    stored = onence_sim.sms[int(sms_id)]
    assert message.part_id == sms_id
    assert message.status is SmsStatus.DELIVERED
    assert message.raw_status == "DELIVERED"
    assert message.endpoint_id == sim.iccid
    assert message.submitted_at == stored.submit_date.replace(
        microsecond=stored.submit_date.microsecond // 1000 * 1000
    )
    assert message.final_at is not None
    assert message.expires_at is not None


async def test_poll_several_parts_is_one_list(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Remote", behavior="offline")
    ids = [await client.async_send_part(sim.iccid, PART, SendOptions()) for _ in range(3)]
    await onence_sim.send_mo(sim.iccid, "hello")
    before = len(onence_sim.requests)

    messages = await client.async_poll(sim.iccid, ids[:2])

    new = onence_sim.requests[before:]
    assert [(r.method, r.path) for r in new] == [
        ("GET", f"/management-api/v2/sims/{sim.iccid}/sms")
    ]
    assert new[0].query["per_page"] == "100"  # v2's page size parameter
    assert [m.part_id for m in messages] == ids[:2]


async def test_poll_reads_parts_the_list_does_not_reach(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    sim = onence_sim.add_sim("Pump", behavior="offline")
    ids = [await client.async_send_part(sim.iccid, PART, SendOptions()) for _ in range(2)]
    for _ in range(250):  # newer traffic pushes the parts off both ends' pages
        onence_sim.add_sms(sim.iccid, "other", age=timedelta(0))
    # Make the parts the middle of the list (oldest first): neither page 1 nor the last.
    for number in range(120):
        onence_sim.add_sms(sim.iccid, "old", age=timedelta(days=1, minutes=number))
    before = len(onence_sim.requests)

    messages = await client.async_poll(sim.iccid, ids)

    new = onence_sim.requests[before:]
    assert [m.part_id for m in messages] == ids
    assert [r.path.rsplit("/", 1)[-1] for r in new] == ["sms", "sms", *ids]


@pytest.mark.parametrize(
    ("status_id", "expected", "raw"),
    [
        (1, SmsStatus.SENT, "DISPATCHED"),
        (2, SmsStatus.QUEUED, "PENDING"),
        (3, SmsStatus.BUFFERED, "BUFFERED"),
        (4, SmsStatus.DELIVERED, "DELIVERED"),
        (5, SmsStatus.FAILED, "FAILED"),
        (6, SmsStatus.EXPIRED, "EXPIRED"),
        (7, SmsStatus.CANCELED, "CANCELED"),
        (9, None, "QUARANTINED"),
    ],
)
async def test_poll_status_ids(
    onence_sim: OnenceSimulator,
    client: OnenceClient,
    status_id: int,
    expected: SmsStatus | None,
    raw: str,
):
    onence_sim.delivery_delay = 60  # the test drives the status
    sim = onence_sim.add_sim("Pump")
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    onence_sim.set_sms_status(int(sms_id), status_id, description=raw)

    (message,) = await client.async_poll(sim.iccid, [sms_id])

    assert message.status is expected
    assert message.raw_status == raw


@pytest.mark.parametrize("version", [1, 2])
async def test_pending_after_an_attempt_is_buffered(
    onence_sim: OnenceSimulator, client: OnenceClient, version: int
):
    onence_sim.versions = frozenset({version})
    onence_sim.v1_location = True
    sim = onence_sim.add_sim("Remote gateway", behavior="offline")
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    await onence_sim.wait_idle()  # one delivery attempt failed; still PENDING

    (message,) = await client.async_poll(sim.iccid, [sms_id])
    raw = (await _raw_sms(onence_sim, sim.iccid, sms_id, version))["retry_count"]

    assert onence_sim.sms[int(sms_id)].status_id == 2
    assert raw == ("1" if version == 1 else 1)  # a string in v1, an integer in v2
    assert message.status is SmsStatus.BUFFERED
    assert message.raw_status == "PENDING"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("expiry_status", "buffered_status", "expected"),
    [(5, 2, SmsStatus.FAILED), (6, 3, SmsStatus.EXPIRED)],
)
async def test_validity_running_out(
    onence_sim: OnenceSimulator,
    client: OnenceClient,
    expiry_status: int,
    buffered_status: int,
    expected: SmsStatus,
):
    """An SMS the device never took ends FAILED (as 1NCE's portal shows it) or EXPIRED."""
    onence_sim.expiry_status = expiry_status
    onence_sim.buffered_status = buffered_status
    sim = onence_sim.add_sim("Remote gateway", behavior="offline")
    expires = datetime.now(UTC) + timedelta(seconds=1)
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions(expires_at=expires))
    await onence_sim.wait_idle()

    (waiting,) = await client.async_poll(sim.iccid, [sms_id])
    await wait_for_status(onence_sim, int(sms_id), expiry_status)
    (final,) = await client.async_poll(sim.iccid, [sms_id])

    assert waiting.status is SmsStatus.BUFFERED
    assert final.status is expected
    assert final.final_at is not None


async def _raw_sms(sim: OnenceSimulator, iccid: str, sms_id: str, version: int) -> Any:
    async with aiohttp.ClientSession() as raw:
        async with raw.post(
            f"{sim.api_url}/oauth/token",
            json={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + _b64(f"{sim.username}:{sim.password}")},
        ) as resp:
            token = (await resp.json())["access_token"]
        async with raw.get(
            f"{sim.api_url}/v{version}/sims/{iccid}/sms/{sms_id}",
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            return await resp.json()


async def test_poll_unknown_part_and_unknown_sim(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump")

    assert await client.async_poll(sim.iccid, ["123"]) == []
    assert await client.async_poll(sim.iccid, ["123", "456"]) == []
    assert await client.async_poll(sim.iccid, []) == []
    with pytest.raises(NotFound):
        await client.async_poll("8988303000099999999", ["123"])
    with pytest.raises(NotFound):
        await client.async_poll("8988303000099999999", ["123", "456"])


def test_parse_sms_dates_and_quirks():
    v1 = {
        "id": 1,
        "submit_date": "2018-03-09T07:59:09.000+0000",
        "final_date": "2015-10-05T13:56:59.000Z",
        "expiry_date": "2018-11-06 08:40:10",
        "retry_count": "0",
        "status": {"id": "4", "description": "DELIVERED"},
        "iccid": 8988303000123456789,
    }
    v2 = {
        "id": "2",
        "submit_date": "2024-12-15T16:55:31Z",
        "last_delivery_attempt": "2024-12-15T16:55:35Z",
        "retry_count": 0,
        "status": {"id": 2, "description": "PENDING"},
        "endpoint": {"id": 100001494, "name": "8988228530100000216"},
    }

    first, second = parse_sms(v1), parse_sms(v2)

    assert first is not None
    assert second is not None
    assert first.submitted_at == datetime(2018, 3, 9, 7, 59, 9, tzinfo=UTC)
    assert first.final_at == datetime(2015, 10, 5, 13, 56, 59, tzinfo=UTC)
    assert first.expires_at == datetime(2018, 11, 6, 8, 40, 10, tzinfo=UTC)  # no zone: UTC
    assert first.endpoint_id == "8988303000123456789"  # a JSON number, kept exactly
    assert second.part_id == "2"
    assert second.endpoint_id == "8988228530100000216"
    assert second.status is SmsStatus.BUFFERED  # pending, but an attempt was made
    assert parse_sms({"status": {"id": 4}}) is None
    assert parse_sms({"id": True, "status": {"id": 4}}) is None
    assert parse_sms({"id": 3, "status": 6, "submit_date": "garbage"}) == parse_sms(
        {"id": "3", "status": {"id": 6}}
    )


# ---------------------------------------------------------------- cancel


@pytest.mark.parametrize("canceled_status", [None, 7])
async def test_cancel_pending(
    onence_sim: OnenceSimulator, client: OnenceClient, canceled_status: int | None
):
    onence_sim.canceled_status = canceled_status
    sim = onence_sim.add_sim("Remote gateway", behavior="offline")
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    await onence_sim.wait_idle()

    await client.async_cancel(sim.iccid, sms_id)

    assert onence_sim.sms[int(sms_id)].canceled
    assert calls(onence_sim, "DELETE", f"/sms/{sms_id}")
    # Read back after the DELETE: gone (404) or CANCELED.
    new = [(r.method, r.path.rsplit("/", 1)[-1]) for r in onence_sim.requests[-2:]]
    assert new == [("DELETE", sms_id), ("GET", sms_id)]


@pytest.mark.parametrize("answer", [400, 404, 409, 422])
async def test_cancel_delivered_says_why(
    onence_sim: OnenceSimulator, client: OnenceClient, answer: int
):
    onence_sim.cancel_final_status = answer
    sim = onence_sim.add_sim("Pump")
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    await onence_sim.wait_idle()

    with pytest.raises(NotCancellable) as err:
        await client.async_cancel(sim.iccid, sms_id)

    assert err.value.status == "delivered"
    assert f"HTTP {answer}" in str(err.value)
    assert onence_sim.sms[int(sms_id)].status_id == 4


async def test_cancel_failed_says_why(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Broken", behavior="failing")
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    await onence_sim.wait_idle()

    with pytest.raises(NotCancellable) as err:
        await client.async_cancel(sim.iccid, sms_id)

    assert err.value.status == "failed"


async def test_cancel_whose_answer_was_lost_is_checked(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    sim = onence_sim.add_sim("Remote gateway", behavior="offline")
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    onence_sim.faults.path_filter = f"/sms/{sms_id}"
    onence_sim.faults.lose_answers = 1

    await client.async_cancel(sim.iccid, sms_id)

    # Carried out although its answer was lost; the read back (404: gone) says so.
    assert onence_sim.sms[int(sms_id)].canceled
    assert calls(onence_sim, "GET", f"/sms/{sms_id}")


# ---------------------------------------------------------------- SMS Forwarder callbacks


class Forwarder:
    """An HTTP receiver for the SMS Forwarder: records requests, answers `answers` then 200."""

    def __init__(self) -> None:
        self.received: list[CallbackRequest] = []
        self.answers: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(
            CallbackRequest(
                method=request.method,
                headers=dict(request.headers),
                query=dict(request.query),
                body=await request.read(),
                content_type=request.content_type,
            )
        )
        return web.Response(status=self.answers.pop(0) if self.answers else 200)


@pytest.fixture
async def forwarder(socket_enabled: None, onence_sim: OnenceSimulator) -> AsyncIterator[Forwarder]:
    """A receiver set as the simulator's SMS Forwarder URL (as in the 1NCE Portal)."""
    receiver = Forwarder()
    app = web.Application()
    app.router.add_route("*", "/forwarder", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    onence_sim.forwarder_url = str(server.make_url("/forwarder"))
    onence_sim.forwarder_retry_delay = 0.01
    try:
        yield receiver
    finally:
        await server.close()


def request_of(method: str, body: Any = None, raw: bytes | None = None) -> CallbackRequest:
    return CallbackRequest(
        method=method,
        headers={},
        query={},
        body=raw if raw is not None else json.dumps(body).encode(),
        content_type="application/json",
    )


@pytest.mark.parametrize("variant", ["documented", "real"])
async def test_mo_variants(
    onence_sim: OnenceSimulator,
    client: OnenceClient,
    forwarder: Forwarder,
    variant: str,
):
    onence_sim.mo_variant = variant
    sim = onence_sim.add_sim("Pump")

    (mo_id,) = await onence_sim.send_mo(sim.iccid, "PRESSURE 2.4 BAR", dest_address="1234")

    (request,) = forwarder.received
    assert request.method == "POST"
    assert "Authorization" not in request.headers  # the forwarder signs nothing
    (item,) = client.parse_callback(request)
    submitted = onence_sim.sms[mo_id].submit_date
    # The documented variant carries milliseconds, the real one whole seconds.
    precision = 1000 if variant == "documented" else 1_000_000
    assert item == IncomingMessage(
        message_id=str(mo_id),
        sender=sim.msisdn,
        text="PRESSURE 2.4 BAR",
        received_at=submitted.replace(microsecond=submitted.microsecond // precision * precision),
        recipient="1234",
        endpoint_id=sim.iccid,
        multipart=None,
    )
    body = json.loads(request.body)
    assert ("dest_address" in body) == (variant == "real")
    assert isinstance(body["id"], str) == (variant == "real")


@pytest.mark.parametrize("payload", ["text", "hex"])
async def test_mo_ucs2_payload(
    onence_sim: OnenceSimulator,
    client: OnenceClient,
    forwarder: Forwarder,
    payload: str,
):
    onence_sim.mo_ucs2_payload = payload
    sim = onence_sim.add_sim("Pump")

    await onence_sim.send_mo(sim.iccid, "Grüße Ωmega ✓ 42°")

    (item,) = client.parse_callback(forwarder.received[0])
    assert isinstance(item, IncomingMessage)
    assert item.text == "Grüße Ωmega ✓ 42°"


async def test_multipart_mo_with_duplicates(
    onence_sim: OnenceSimulator, client: OnenceClient, forwarder: Forwarder
):
    onence_sim.mo_variant = "real"
    sim = onence_sim.add_sim("Pump")

    ids = await onence_sim.send_mo(sim.iccid, "abcdefghi", parts=3, reverse=True, duplicate=True)

    items = [client.parse_callback(r)[0] for r in forwarder.received]
    assert len(items) == 6  # every part twice, last part first
    messages = [i for i in items if isinstance(i, IncomingMessage)]
    assert [m.text for m in messages] == ["ghi", "ghi", "def", "def", "abc", "abc"]
    assert [m.message_id for m in messages[::2]] == [str(i) for i in reversed(ids)]
    assert {m.multipart for m in messages} == {
        MultipartInfo(reference=str(ids[0]), number=n, total=3) for n in (1, 2, 3)
    }


async def test_forwarder_repeats_until_200(
    onence_sim: OnenceSimulator, client: OnenceClient, forwarder: Forwarder
):
    forwarder.answers.extend([500, 503])
    sim = onence_sim.add_sim("Pump")

    (mo_id,) = await onence_sim.send_mo(sim.iccid, "hello")
    await onence_sim.wait_idle()

    assert [a.status for a in onence_sim.callback_log] == [500, 503, 200]
    # The same message every time: the integration drops the repeats by id.
    assert len({client.parse_callback(r)[0] for r in forwarder.received}) == 1
    # An MO is only final once the forwarder endpoint took it.
    assert onence_sim.sms[mo_id].status_id == 4


async def test_forwarder_gives_up_after_a_day(onence_sim: OnenceSimulator, forwarder: Forwarder):
    forwarder.answers.extend([500] * 20)
    onence_sim.forwarder_max_attempts = 3
    sim = onence_sim.add_sim("Pump")

    (mo_id,) = await onence_sim.send_mo(sim.iccid, "hello")
    await onence_sim.wait_idle()

    assert len(forwarder.received) == 3
    assert [method for method, _ in onence_sim.forwarder_failures] == ["POST"]
    assert onence_sim.sms[mo_id].status_id == 2  # never acknowledged: still PENDING


@pytest.mark.parametrize("id_field", ["id", "detail"])
async def test_delivery_report_is_a_poll_hint(
    onence_sim: OnenceSimulator,
    client: OnenceClient,
    forwarder: Forwarder,
    id_field: str,
):
    onence_sim.dlr_id_field = id_field
    sim = onence_sim.add_sim("Pump")

    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    await onence_sim.wait_idle()

    (report,) = forwarder.received
    assert report.method == "PATCH"
    hints = client.parse_callback(report)
    assert PollHint(part_id=sms_id) in hints
    assert all(isinstance(h, PollHint) for h in hints)
    assert len(hints) == 2  # both ids of the report: which one is the SMS is undocumented
    (polled,) = await client.async_poll(sim.iccid, [sms_id])
    assert polled.status is SmsStatus.DELIVERED


def test_parse_callback_shapes(client: OnenceClient):
    documented = {
        "id": 12934,
        "payload": "hi",
        "submit_date": "2024-12-15T16:55:31Z",
        "destination_address": "1234",
        "source_address": "+882285100001075",
        "dcs": 0,
        "endpoint": {"id": 8778667, "name": "8988280666000001075"},
        "organisiation": {"id": 5136},
    }
    no_endpoint = {"id": "5", "payload": "x", "source_address": 882285100001075}
    # dcs 8 with hex that is no UTF-16 (a lone surrogate): kept as it came.
    odd_ucs2 = {"id": 6, "payload": "D800", "dcs": 8, "source_address": "1"}
    dlr_by_post = {"id": 7, "status": {"status": "DELIVERED", "id": 4}}

    (first,) = client.parse_callback(request_of("POST", documented))
    (second,) = client.parse_callback(request_of("POST", no_endpoint))
    (third,) = client.parse_callback(request_of("POST", odd_ucs2))
    nested = {"detail": {"sms": {"id": "551734281731175386"}}}
    reports = client.parse_callback(request_of("POST", [dlr_by_post, nested]))
    bulk = client.parse_callback(request_of("PATCH", [{"id": 1}, {"id": "1"}]))

    assert isinstance(first, IncomingMessage)
    assert first.sender == "882285100001075"
    assert first.received_at == datetime(2024, 12, 15, 16, 55, 31, tzinfo=UTC)
    assert isinstance(second, IncomingMessage)
    assert second.endpoint_id is None
    assert second.sender == "882285100001075"
    assert second.recipient is None
    assert isinstance(third, IncomingMessage)
    assert third.text == "D800"
    assert reports == [PollHint("7"), PollHint("551734281731175386")]
    assert bulk == [PollHint("1"), PollHint("1")]


@pytest.mark.parametrize(
    ("method", "raw"),
    [
        ("POST", b"{not json"),
        ("POST", b"\xff\xfe"),
        ("POST", b"42"),
        ("POST", b"[1, 2]"),
        ("POST", b"[" * 100 + b"]" * 100),
        ("POST", json.dumps({"payload": "x", "source_address": "1"}).encode()),
        ("POST", json.dumps({"id": 1, "source_address": "1"}).encode()),
        ("POST", json.dumps({"id": 1, "payload": 5, "source_address": "1"}).encode()),
        ("POST", json.dumps({"id": 1, "payload": "x"}).encode()),
        (
            "POST",
            json.dumps(
                {
                    "id": 1,
                    "payload": "x",
                    "source_address": "1",
                    "multi_part_info": {"identifier": 1, "partno": 3, "total": 2},
                }
            ).encode(),
        ),
        ("PATCH", json.dumps({"status": {"id": 4}}).encode()),
        ("PATCH", json.dumps({"id": None, "detail": {"sms": {"id": ""}}}).encode()),
        ("GET", b""),
        ("PUT", json.dumps({"id": 1}).encode()),
    ],
)
def test_parse_callback_rejects_garbage(client: OnenceClient, method: str, raw: bytes):
    with pytest.raises(InvalidCallback):
        client.parse_callback(request_of(method, raw=raw))


async def test_nothing_to_register_or_fetch(client: OnenceClient):
    assert await client.async_list_service_profiles() == []
    assert await client.async_fetch_incoming(IncomingHint(message_id="1")) is None
    with pytest.raises(InvalidRequest, match="1NCE Portal"):
        await client.async_register_callback("1", "https://ha.example/api/iot_sms/x", "s")


# ---------------------------------------------------------------- pacing


async def test_requests_never_exceed_the_pace(onence_sim: OnenceSimulator, client: OnenceClient):
    sim = onence_sim.add_sim("Pump", behavior="offline")
    await client.async_get_account()
    start = len(onence_sim.arrivals)

    ids = await asyncio.gather(
        *(client.async_send_part(sim.iccid, PART, SendOptions()) for _ in range(6))
    )
    await asyncio.gather(*(client.async_poll(sim.iccid, [i]) for i in ids))

    arrivals = [stamp for stamp, _method, _path in onence_sim.arrivals[start:]]
    assert len(arrivals) == 12
    assert onence_sim.faults.window_rejections == 0  # 1NCE's own 10 per second
    # Never more than 5 in any second, sends and polls together.
    assert all(
        later - earlier >= 1.0 for earlier, later in zip(arrivals, arrivals[5:], strict=False)
    )


# ---------------------------------------------------------------- odd answers (hand-written)


type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reply(status: int, body: Any = b"", headers: dict[str, str] | None = None) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(status=status, body=raw, headers=headers)

    return handle


TOKEN_OK = reply(200, {"access_token": "tok", "expires_in": "3600"})


class FakeOnence:
    """Hand-written 1NCE answers on 127.0.0.1, for replies the simulator never gives."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.servers: list[TestServer] = []

    async def client(
        self, routes: dict[tuple[str, str], Handler], token: Handler = TOKEN_OK
    ) -> OnenceClient:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.seen.append((request.method, request.path, dict(request.query)))
            return await handler(request)

        app = web.Application(middlewares=[record])
        app.router.add_post(TOKEN_PATH, token)
        for (method, path), handler in routes.items():
            app.router.add_route(method, f"/management-api{path}", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.servers.append(server)
        client = OnenceClient(self.session, "u", "p", str(server.make_url("/management-api")))
        client.rate_limit_delay = 0.01
        return client

    def requests(self, method: str, path: str) -> list[dict[str, str]]:
        return [q for m, p, q in self.seen if m == method and p == f"/management-api{path}"]


@pytest.fixture
async def fake(socket_enabled: None, session: aiohttp.ClientSession) -> AsyncIterator[FakeOnence]:
    fake_onence = FakeOnence(session)
    try:
        yield fake_onence
    finally:
        for server in fake_onence.servers:
            await server.close()


V2_SIMS = ("GET", "/v2/sims")
V2_SEND = ("POST", "/v2/sims/8988303000000000001/sms")
V2_LIST = ("GET", "/v2/sims/8988303000000000001/sms")
V2_SMS = ("GET", "/v2/sims/8988303000000000001/sms/5")
V2_DELETE = ("DELETE", "/v2/sims/8988303000000000001/sms/5")
ICCID = "8988303000000000001"


@pytest.mark.parametrize(
    "token",
    [
        reply(200, b"<html>login</html>"),
        reply(200, [1]),
        reply(200, {"access_token": ""}),
        reply(200, {"token": "x"}),
    ],
    ids=["html", "list", "empty", "no-key"],
)
async def test_token_answer_without_a_token(fake: FakeOnence, token: Handler):
    client = await fake.client({V2_SIMS: reply(200, [])}, token=token)

    with pytest.raises(ConnectionFailed) as err:
        await client.async_get_account()

    assert not isinstance(err.value, AuthError)
    assert fake.requests(*V2_SIMS) == []


@pytest.mark.parametrize("lifetime", [None, "soon", True, -5])
async def test_token_without_lifetime_lasts_the_documented_hour(fake: FakeOnence, lifetime: Any):
    client = await fake.client(
        {V2_SIMS: reply(200, [])},
        token=reply(200, {"access_token": "tok", "expires_in": lifetime}),
    )

    await client.async_get_account()
    await client.async_list_endpoints()

    assert len(fake.requests("POST", "/oauth/token")) == 1


async def test_data_403_is_an_auth_error(fake: FakeOnence):
    client = await fake.client({V2_SIMS: reply(403)})

    with pytest.raises(AuthError, match="HTTP 403"):
        await client.async_get_account()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (reply(200, b"<html>captive portal</html>"), "not JSON"),
        (reply(200, {"items": []}), "SIM list with no list"),
        (reply(502, b"<html>Bad Gateway</html>"), r"^1NCE server error \(HTTP 502\)$"),
        (reply(302, b"", {"Location": "/elsewhere"}), r"unexpected answer from 1NCE \(HTTP 302"),
    ],
    ids=["html-200", "object", "html-502", "redirect"],
)
async def test_sim_list_odd_answers(fake: FakeOnence, answer: Handler, message: str):
    client = await fake.client({V2_SIMS: answer})
    client._version = 2

    with pytest.raises(ConnectionFailed, match=message):
        await client.async_list_endpoints()


async def test_sim_list_quirks(fake: FakeOnence):
    items = [
        {"label": "no iccid"},
        "junk",
        {"iccid": 8988303000000000001, "label": None, "msisdn": "+882285100000018"},
        {"iccid": "8988303000000000001", "label": "Duplicate"},
        {"iccid": 8.988303e18},
    ]
    client = await fake.client({V2_SIMS: reply(200, items)})

    (endpoint,) = await client.async_list_endpoints()

    assert endpoint.id == "8988303000000000001"
    assert endpoint.name == "8988303000000000001"
    assert endpoint.msisdn == "882285100000018"
    assert endpoint.imsi is None


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (reply(201, {"id": "551734281731175386"}), "551734281731175386"),
        (reply(201, {"id": 77}), "77"),
        (reply(201, {"id": "a1b2-c3"}), "a1b2-c3"),
        (reply(201, b"", {"Location": "https://x/v2/sims/1/sms/555/"}), "555"),
        (reply(201, b"<html></html>", {"Location": "https://x/v2/sims/1/sms/556"}), "556"),
    ],
    ids=["string-id", "number-id", "opaque-id", "location", "html-location"],
)
async def test_send_reads_the_id(fake: FakeOnence, answer: Handler, expected: str):
    client = await fake.client({V2_SEND: answer, V2_SIMS: reply(200, [])})

    assert await client.async_send_part(ICCID, PART, SendOptions()) == expected
    assert len(fake.requests(*V2_SEND)) == 1


async def test_send_accepted_without_id_is_never_called_not_sent(fake: FakeOnence):
    client = await fake.client(
        {V2_SEND: reply(201, {"id": None}), V2_SIMS: reply(200, []), V2_LIST: reply(200, [])}
    )
    sent_after = datetime.now(UTC)

    with pytest.raises(DeliveryUnknown, match="without its id"):
        await client.async_send_part(ICCID, PART, SendOptions())
    # The list is empty, but 1NCE said 201: "not there" would make the layer above resend.
    with pytest.raises(ConnectionFailed, match="does not show it"):
        await client.async_find_sent(ICCID, PART, sent_after, known=())

    assert len(fake.requests(*V2_SEND)) == 1


async def test_only_recent_unidentified_sends_are_remembered(
    fake: FakeOnence, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(onence, "MAX_UNIDENTIFIED", 1)
    client = await fake.client(
        {V2_SEND: reply(201, b""), V2_SIMS: reply(200, []), V2_LIST: reply(200, [])}
    )
    other = MessagePart("PING", "gsm7")
    sent_after = datetime.now(UTC)
    for part in (PART, other):
        with pytest.raises(DeliveryUnknown):
            await client.async_send_part(ICCID, part, SendOptions())

    assert await client.async_find_sent(ICCID, PART, sent_after, known=()) is None
    with pytest.raises(ConnectionFailed, match="does not show it"):
        await client.async_find_sent(ICCID, other, sent_after, known=())


async def test_send_accepted_without_id_and_unreadable_list(fake: FakeOnence):
    client = await fake.client(
        {V2_SEND: reply(201, b""), V2_SIMS: reply(200, []), V2_LIST: reply(500)}
    )

    with pytest.raises(DeliveryUnknown, match="cannot be read"):
        await client.async_send_part(ICCID, PART, SendOptions())


@pytest.mark.parametrize("status", [307, 504])
async def test_send_redirect_or_gateway_error_is_unknown(fake: FakeOnence, status: int):
    client = await fake.client(
        {V2_SEND: reply(status, b"", {"Location": "http:///x"}), V2_SIMS: reply(200, [])}
    )

    with pytest.raises(DeliveryUnknown, match="may have been sent"):
        await client.async_send_part(ICCID, PART, SendOptions())

    assert len(fake.requests(*V2_SEND)) == 1


async def test_send_429_waits_as_told(fake: FakeOnence):
    answers = [
        reply(429, {"message": "slow down"}, {"Retry-After": "0.05"}),
        reply(201, {"id": "9"}),
    ]

    async def handle(request: web.Request) -> web.StreamResponse:
        return await answers.pop(0)(request)

    client = await fake.client({V2_SEND: handle, V2_SIMS: reply(200, [])})
    client.rate_limit_delay = 30  # Retry-After wins

    assert await asyncio.wait_for(client.async_send_part(ICCID, PART, SendOptions()), 5) == "9"


async def test_v2_error_body_is_in_the_message(fake: FakeOnence):
    body = {"error_code": 1000, "error_token": "BadRequest", "message": "payload is invalid"}
    client = await fake.client({V2_SEND: reply(422, body), V2_SIMS: reply(200, [])})

    with pytest.raises(InvalidRequest, match=r"payload is invalid \(BadRequest, HTTP 422\)"):
        await client.async_send_part(ICCID, PART, SendOptions())


async def test_sms_list_refused_is_invalid_request(fake: FakeOnence):
    client = await fake.client({V2_LIST: reply(400), V2_SIMS: reply(200, [])})

    with pytest.raises(InvalidRequest, match="HTTP 400"):
        await client.async_poll(ICCID, ["1", "2"])

    assert len(fake.requests(*V2_LIST)) == 1  # v2 has no sort to drop: nothing to retry


async def test_sms_list_that_is_no_list(fake: FakeOnence):
    client = await fake.client({V2_LIST: reply(200, {"id": 1}), V2_SIMS: reply(200, [])})

    with pytest.raises(ConnectionFailed, match="SMS list with no list"):
        await client.async_poll(ICCID, ["1", "2"])


async def test_sms_list_beyond_the_pages_read(fake: FakeOnence):
    """No headers, oldest first, ten full pages: the newest end is never reached."""
    old = "2020-01-01T00:00:00.000Z"

    async def page(request: web.Request) -> web.StreamResponse:
        number = int(request.query["page"])
        base = number * 1000
        items = [{"id": base + i, "submit_date": old, "payload": "x"} for i in range(100)]
        items[-1]["submit_date"] = "2020-01-02T00:00:00.000Z"
        return web.json_response(items)

    client = await fake.client({V2_LIST: page, V2_SIMS: reply(200, [])})

    with pytest.raises(ConnectionFailed, match="does not reach back"):
        await client.async_find_sent(ICCID, PART, datetime.now(UTC), known=())

    assert len(fake.requests(*V2_LIST)) == 10


async def test_poll_keys_a_part_as_asked(fake: FakeOnence):
    item = {"id": 8891889, "status": {"id": 4, "description": "DELIVERED"}}
    client = await fake.client({V2_SMS: reply(200, item), V2_SIMS: reply(200, [])})

    (message,) = await client.async_poll(ICCID, ["5"])

    assert message.part_id == "5"
    assert message.status is SmsStatus.DELIVERED


async def test_poll_skips_an_answer_that_is_no_sms(fake: FakeOnence):
    client = await fake.client({V2_SMS: reply(200, ["junk"]), V2_SIMS: reply(200, [])})

    assert await client.async_poll(ICCID, ["5"]) == []


@pytest.mark.parametrize(
    ("reread", "status"),
    [
        (reply(200, {"id": 5, "status": {"id": 2, "description": "PENDING"}}), "queued"),
        (reply(200, {"id": 5, "status": {"id": 9, "description": "ODD"}}), "ODD"),
        (reply(200, b"[]"), None),
    ],
    ids=["still-pending", "unknown-status", "no-object"],
)
async def test_cancel_accepted_but_not_canceled(fake: FakeOnence, reread: Handler, status: Any):
    client = await fake.client(
        {V2_DELETE: reply(200, {"id": "5"}), V2_SMS: reread, V2_SIMS: reply(200, [])}
    )

    with pytest.raises(NotCancellable, match="accepted the cancel") as err:
        await client.async_cancel(ICCID, "5")

    assert err.value.status == status


async def test_read_is_retried_once_after_a_broken_connection(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    onence_sim.add_sim("Pump")
    await client.async_get_account()
    onence_sim.faults.path_filter = "/sims"
    # aiohttp itself repeats an idempotent request once; the second break reaches the client.
    onence_sim.faults.drop_after_read = 2

    assert [e.name for e in await client.async_list_endpoints()] == ["Pump"]


async def test_read_gives_up_when_the_retry_breaks_too(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    await client.async_get_account()
    onence_sim.faults.path_filter = "/sims"
    onence_sim.faults.drop_after_read = 10

    with pytest.raises(ConnectionFailed, match="connection to 1NCE broke"):
        await client.async_list_endpoints()


async def test_read_timeout_is_connection_failed(
    onence_sim: OnenceSimulator, make_client: Callable[..., OnenceClient]
):
    client = make_client(request_timeout=0.3)
    await client.async_get_account()
    onence_sim.faults.path_filter = "/sims"
    onence_sim.faults.latency = 0.6

    with pytest.raises(ConnectionFailed, match="did not answer in time"):
        await client.async_list_endpoints()


async def test_broken_delete_is_settled_by_the_reread(
    onence_sim: OnenceSimulator, client: OnenceClient
):
    onence_sim.delivery_delay = 60  # stays PENDING without an attempt
    sim = onence_sim.add_sim("Remote gateway", behavior="offline")
    sms_id = await client.async_send_part(sim.iccid, PART, SendOptions())
    onence_sim.faults.path_filter = f"/sms/{sms_id}"
    # The DELETE never reaches the handler (nor aiohttp's own repeat of it).
    onence_sim.faults.drop_after_read = 2

    with pytest.raises(NotCancellable, match="did not cancel") as err:
        await client.async_cancel(sim.iccid, sms_id)

    assert err.value.status == "queued"
    assert not onence_sim.sms[int(sms_id)].canceled


# ---------------------------------------------------------------- through Home Assistant


async def test_home_assistant_sends_and_receives_through_1nce(
    hass: HomeAssistant, onence_provider: OnenceProvider, wait_for: Any
):
    """notify reaches the device and is delivered (PATCH report -> poll); echo fires an event."""
    delivery = async_capture_events(hass, "iot_sms_delivery_status")
    received = async_capture_events(hass, "iot_sms_message_received")
    entry: MockConfigEntry = onence_provider.entry

    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.pump_station_sms", "message": "REBOOT"},
        blocking=True,
    )
    [message_id] = onence_provider.reached("REBOOT")
    await wait_for(
        lambda: hass.states.get("sensor.pump_station_last_sms_status").state == "delivered"
    )

    assert [(e.data["message_id"], e.data["status"]) for e in delivery] == [
        (message_id, "queued"),
        (message_id, "delivered"),
    ]
    assert delivery[-1].data["provider"] == "1nce"
    patches = [a for a in onence_provider.sim.callback_log if a.method == "PATCH"]
    assert [a.status for a in patches] == [200]  # the PATCH report reached HA's view

    await hass.services.async_call(
        "notify",
        "send_message",
        {"entity_id": "notify.tracker_sms", "message": "WHERE ARE YOU"},
        blocking=True,
    )
    await wait_for(lambda: len(received) == 1)
    pending = f"sensor.{onence_provider.hub_slug}_pending_sms"
    await wait_for(lambda: hass.states.get(pending).state == "0")

    event = received[0].data
    tracker = onence_provider.addresses["Tracker"]
    assert event["text"] == "ECHO: WHERE ARE YOU"
    assert event["endpoint_id"] == tracker
    assert event["sender"] == onence_provider.msisdn("Tracker")
    assert event["provider"] == "1nce"
    assert event["config_entry_id"] == entry.entry_id
    assert event["device_id"] is not None
    assert hass.states.get("sensor.tracker_last_incoming_sms").state == "ECHO: WHERE ARE YOU"
