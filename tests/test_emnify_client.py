"""EmnifyClient against the emnify simulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.iot_sms.api.emnify import EmnifyClient, parse_sms
from custom_components.iot_sms.api.errors import (
    AuthError,
    ConnectionFailed,
    DeliveryUnknown,
    InvalidCallback,
    InvalidRequest,
    NotCancellable,
    NotFound,
    RateLimited,
    SignatureError,
)
from custom_components.iot_sms.api.models import (
    CallbackRequest,
    DeliveryReport,
    IncomingMessage,
    MessagePart,
    MultipartInfo,
    SendOptions,
    SmsStatus,
)
from simulator.emnify import EmnifySimulator

TOKEN = "demo-application-token"
FAST = (0.01, 0.01, 0.01)
PART = MessagePart(text="STATUS?", encoding="gsm7")
WEEK = 7 * 24 * 3600


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def make_client(
    emnify_sim: EmnifySimulator, session: aiohttp.ClientSession
) -> Callable[..., EmnifyClient]:
    def factory(**kwargs: Any) -> EmnifyClient:
        kwargs.setdefault("backoff", FAST)
        token = kwargs.pop("token", TOKEN)
        assert emnify_sim.base_url is not None
        return EmnifyClient(session, token, emnify_sim.base_url, **kwargs)

    return factory


@pytest.fixture
def client(make_client: Callable[..., EmnifyClient]) -> EmnifyClient:
    return make_client()


def calls(sim: EmnifySimulator, method: str, path_part: str) -> list[Any]:
    return [r for r in sim.requests if r.method == method and path_part in r.path]


def sms_posts(sim: EmnifySimulator) -> list[Any]:
    return [r for r in calls(sim, "POST", "/sms") if r.path.endswith("/sms")]


async def wait_for_status(sim: EmnifySimulator, sms_id: int, status_id: int) -> None:
    for _ in range(200):
        if sim.sms[sms_id].status_id == status_id:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"SMS {sms_id} never reached status {status_id}")


# ---------------------------------------------------------------- account, endpoints, auth


async def test_account_names_the_organisation(emnify_sim: EmnifySimulator, client: EmnifyClient):
    account = await client.async_get_account()

    assert account.unique_id == "4711"
    assert account.title == "Demo Fleet"
    assert client.provider == "emnify"
    assert client.capabilities.lists_endpoints is True


async def test_list_endpoints_reads_every_page(emnify_sim: EmnifySimulator, client: EmnifyClient):
    for number in range(2500):
        emnify_sim.add_endpoint(f"Meter {number}")

    endpoints = await client.async_list_endpoints()

    assert len(endpoints) == 2500
    assert {e.name for e in endpoints} == {f"Meter {n}" for n in range(2500)}
    pages = [r.query["page"] for r in calls(emnify_sim, "GET", "/api/v1/endpoint")]
    assert pages == ["1", "2", "3"]
    assert all(r.query["per_page"] == "1000" for r in calls(emnify_sim, "GET", "/endpoint"))


async def test_list_endpoints_by_tag_and_fields(emnify_sim: EmnifySimulator, client: EmnifyClient):
    emnify_sim.add_endpoint("Pump 1", msisdn="423663920000001", tags="pump, north")
    emnify_sim.add_endpoint("Pump 2", tags="pump", with_sim=False, service_profile_id=7)
    emnify_sim.add_endpoint("Gateway", tags=None)
    emnify_sim.add_endpoint("Spare", tags="")

    pumps = await client.async_list_endpoints(tag="pump")
    everything = await client.async_list_endpoints()

    assert [e.name for e in pumps] == ["Pump 1", "Pump 2"]
    assert calls(emnify_sim, "GET", "/endpoint")[0].query["q"] == "tags:pump"
    first, second = pumps
    assert first.msisdn == "423663920000001"
    assert first.tags == ("pump", "north")
    assert first.iccid is not None
    assert first.imsi is not None
    assert first.service_profile_id == "1"
    assert first.service_profile_name == "Default Policy"
    assert second.msisdn is None  # no SIM assigned: emnify omits "sim"
    assert second.service_profile_id == "7"
    assert [e.tags for e in everything[2:]] == [(), ()]


async def test_token_is_reused_across_calls(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Pump")

    await asyncio.gather(
        *(client.async_send_part(str(ep.id), PART, SendOptions()) for _ in range(5))
    )
    await client.async_send_part(str(ep.id), PART, SendOptions())
    await client.async_list_endpoints()

    assert len(emnify_sim.sms) == 6
    assert emnify_sim.auth_count == 1


async def test_token_renewed_an_hour_before_expiry(
    emnify_sim: EmnifySimulator, make_client: Callable[..., EmnifyClient]
):
    now = [time.time()]
    client = make_client(clock=lambda: now[0])

    await client.async_list_endpoints()
    now[0] += WEEK - 2 * 3600  # two hours before exp: still fine
    await client.async_list_endpoints()
    assert emnify_sim.auth_count == 1

    now[0] += 3600 + 60  # within the last hour before exp
    await client.async_list_endpoints()
    assert emnify_sim.auth_count == 2


async def test_401_renews_once_and_retries(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Pump")
    await client.async_list_endpoints()
    emnify_sim.expire_tokens()

    sms_id = await client.async_send_part(str(ep.id), PART, SendOptions())

    assert emnify_sim.auth_count == 2
    assert list(emnify_sim.sms) == [int(sms_id)]


async def test_second_401_is_an_auth_error(emnify_sim: EmnifySimulator, client: EmnifyClient):
    emnify_sim.faults.token_ttl = -60  # every issued JWT is already expired

    with pytest.raises(AuthError, match="TokenExpired"):
        await client.async_list_endpoints()

    assert len(calls(emnify_sim, "GET", "/endpoint")) == 2


async def test_gateway_401_without_bearer_is_rejected(emnify_sim: EmnifySimulator):
    assert emnify_sim.base_url is not None
    async with (
        aiohttp.ClientSession() as raw,
        raw.get(f"{emnify_sim.base_url}/api/v1/endpoint") as resp,
    ):
        assert resp.status == 401
        assert resp.headers["x-amzn-ErrorType"] == "AccessDeniedException"
        assert (await resp.json())["message"] == "token contains an invalid number of segments"


async def test_bad_application_token(
    emnify_sim: EmnifySimulator, make_client: Callable[..., EmnifyClient]
):
    client = make_client(token="wrong-token")

    with pytest.raises(AuthError) as err:
        await client.async_get_account()

    assert "wrong-token" not in str(err.value)
    assert emnify_sim.auth_count == 0
    assert calls(emnify_sim, "GET", "/endpoint") == []


async def test_three_failed_authentications_block(
    emnify_sim: EmnifySimulator, make_client: Callable[..., EmnifyClient]
):
    bad = make_client(token="wrong-token")
    for _ in range(3):
        with pytest.raises(AuthError):
            await bad.async_get_account()

    with pytest.raises(RateLimited, match="TooManyRequests"):
        await bad.async_get_account()
    with pytest.raises(RateLimited):  # even the right token is blocked for 5 minutes
        await make_client().async_get_account()


async def test_reads_back_off_on_429(emnify_sim: EmnifySimulator, client: EmnifyClient):
    emnify_sim.add_endpoint("Pump")
    emnify_sim.faults.path_filter = "/endpoint"
    emnify_sim.faults.rate_limits = 2

    endpoints = await client.async_list_endpoints()

    assert [e.name for e in endpoints] == ["Pump"]
    assert len(calls(emnify_sim, "GET", "/endpoint")) == 3


async def test_reads_give_up_after_backoff(emnify_sim: EmnifySimulator, client: EmnifyClient):
    emnify_sim.faults.path_filter = "/endpoint"
    emnify_sim.faults.rate_limits = 10

    with pytest.raises(RateLimited):
        await client.async_list_endpoints()

    assert len(calls(emnify_sim, "GET", "/endpoint")) == 4  # first try + 3 back-offs


async def test_read_server_error_is_connection_failed(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    emnify_sim.faults.path_filter = "/endpoint"
    emnify_sim.faults.server_errors = 1

    with pytest.raises(ConnectionFailed, match="500"):
        await client.async_list_endpoints()


async def test_read_retried_once_after_dropped_connection(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    emnify_sim.add_endpoint("Pump")
    emnify_sim.faults.path_filter = "/endpoint"
    emnify_sim.faults.drop_after_read = 1

    assert [e.name for e in await client.async_list_endpoints()] == ["Pump"]


# ---------------------------------------------------------------- sending


async def test_send_returns_location_id_and_stores_the_sms(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    ep = emnify_sim.add_endpoint("Pump")

    sms_id = await client.async_send_part(str(ep.id), PART, SendOptions())

    stored = emnify_sim.sms[int(sms_id)]
    assert stored.endpoint_id == ep.id
    assert stored.payload == "STATUS?"
    assert stored.source_address == "12345"  # A2P short code: replies reach the callback
    assert stored.udh is None
    assert stored.dcs is None
    assert json.loads(sms_posts(emnify_sim)[0].body) == {
        "payload": "STATUS?",
        "source_address": "12345",
    }


async def test_send_with_alphanumeric_sender_and_expiry(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    ep = emnify_sim.add_endpoint("Pump")
    expires = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)

    sms_id = await client.async_send_part(
        str(ep.id), PART, SendOptions(sender="HomeAsst", expires_at=expires)
    )

    stored = emnify_sim.sms[int(sms_id)]
    assert stored.source_address == "HomeAsst"
    assert stored.source_address_type == 208
    assert stored.expiry_date == expires
    body = json.loads(sms_posts(emnify_sim)[0].body)
    assert body["source_address_type"] == {"id": 208}
    assert body["expiry_date"] == "2031-05-06T07:08:09.000+0000"


async def test_send_without_default_sender(
    emnify_sim: EmnifySimulator, make_client: Callable[..., EmnifyClient]
):
    ep = emnify_sim.add_endpoint("Pump")
    client = make_client(source_address=None)

    sms_id = await client.async_send_part(str(ep.id), PART, SendOptions())

    assert emnify_sim.sms[int(sms_id)].source_address == ""
    assert "source_address" not in json.loads(sms_posts(emnify_sim)[0].body)


async def test_multipart_message_carries_udh_on_every_part(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    ep = emnify_sim.add_endpoint("Pump")
    text = "0123456789" * 20  # 200 GSM-7 characters: two parts of at most 153

    parts = client.plan_message(text)
    ids = [await client.async_send_part(str(ep.id), p, SendOptions()) for p in parts]

    stored = [emnify_sim.sms[int(i)] for i in ids]
    assert len(stored) == 2
    assert "".join(s.payload for s in stored) == text
    assert all(len(s.payload) <= 153 for s in stored)
    assert [s.udh[-4:] for s in stored if s.udh] == ["0201", "0202"]
    assert stored[0].udh is not None
    assert stored[1].udh is not None
    assert stored[0].udh[:8] == stored[1].udh[:8]
    assert stored[0].udh.startswith("050003")
    assert [s.dcs for s in stored] == [0, 0]


async def test_ucs2_message_sets_dcs_8(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Pump")

    (part,) = client.plan_message("Temperatur 21 °C ✓")
    sms_id = await client.async_send_part(str(ep.id), part, SendOptions())

    assert emnify_sim.sms[int(sms_id)].dcs == 8
    assert emnify_sim.sms[int(sms_id)].payload == "Temperatur 21 °C ✓"


async def test_send_retried_after_429_is_sent_once(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    ep = emnify_sim.add_endpoint("Pump")
    await client.async_list_endpoints()
    emnify_sim.faults.path_filter = "/sms"
    emnify_sim.faults.rate_limits = 1

    await client.async_send_part(str(ep.id), PART, SendOptions())

    assert len(sms_posts(emnify_sim)) == 2
    assert len(emnify_sim.sms) == 1


async def test_send_not_retried_after_server_error(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    ep = emnify_sim.add_endpoint("Pump")
    emnify_sim.faults.path_filter = "/sms"
    emnify_sim.faults.server_errors = 1

    with pytest.raises(DeliveryUnknown):
        await client.async_send_part(str(ep.id), PART, SendOptions())

    assert len(sms_posts(emnify_sim)) == 1


async def test_send_not_retried_after_timeout(
    emnify_sim: EmnifySimulator, make_client: Callable[..., EmnifyClient]
):
    ep = emnify_sim.add_endpoint("Pump")
    client = make_client(request_timeout=0.2)
    await client.async_list_endpoints()
    emnify_sim.faults.path_filter = "/sms"
    emnify_sim.faults.latency = 0.4

    with pytest.raises(DeliveryUnknown):
        await client.async_send_part(str(ep.id), PART, SendOptions())

    assert len(sms_posts(emnify_sim)) == 1
    await asyncio.sleep(0.3)
    assert len(emnify_sim.sms) == 1  # it did reach emnify: a retry would have sent it twice


async def test_send_not_retried_after_dropped_connection(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    ep = emnify_sim.add_endpoint("Pump")
    emnify_sim.faults.path_filter = "/sms"
    emnify_sim.faults.drop_after_read = 1

    with pytest.raises(DeliveryUnknown):
        await client.async_send_part(str(ep.id), PART, SendOptions())

    assert len(sms_posts(emnify_sim)) == 1


async def test_send_to_unreachable_host_is_connection_failed(
    emnify_sim: EmnifySimulator, session: aiohttp.ClientSession
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = EmnifyClient(session, TOKEN, f"http://127.0.0.1:{port}")

    with pytest.raises(ConnectionFailed):
        await client.async_send_part("1", PART, SendOptions())


async def test_send_connection_refused_after_auth_is_not_unknown(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    await client.async_list_endpoints()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client._base_url = f"http://127.0.0.1:{port}"

    with pytest.raises(ConnectionFailed):
        await client.async_send_part("1", PART, SendOptions())


async def test_empty_payload_is_invalid_request(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Pump")

    with pytest.raises(InvalidRequest, match="HTTP 422") as err:
        await client.async_send_part(str(ep.id), MessagePart("", "gsm7"), SendOptions())

    assert not isinstance(err.value, NotFound)
    assert emnify_sim.sms == {}


async def test_unknown_endpoint_is_not_found(emnify_sim: EmnifySimulator, client: EmnifyClient):
    with pytest.raises(NotFound, match="Endpoint with Id '999' not found"):
        await client.async_send_part("999", PART, SendOptions())
    with pytest.raises(InvalidRequest, match="BadRequest") as err:
        await client.async_send_part("abc", PART, SendOptions())
    assert not isinstance(err.value, NotFound)


# ---------------------------------------------------------------- cancel and poll


async def test_cancel_buffered_sms(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Remote gateway", behavior="offline")
    sms_id = await client.async_send_part(str(ep.id), PART, SendOptions())
    await wait_for_status(emnify_sim, int(sms_id), 3)

    await client.async_cancel(str(ep.id), sms_id)

    assert emnify_sim.sms[int(sms_id)].status_id == 7
    (polled,) = await client.async_poll(str(ep.id), [sms_id])
    assert polled.status is SmsStatus.CANCELED
    assert polled.final_at is None


async def test_cancel_delivered_sms_says_why(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Pump", behavior="online")
    sms_id = await client.async_send_part(str(ep.id), PART, SendOptions())
    await emnify_sim.wait_idle()

    with pytest.raises(NotCancellable) as err:
        await client.async_cancel(str(ep.id), sms_id)

    assert err.value.status == "delivered"
    assert "cannot be canceled" in str(err.value)
    assert emnify_sim.sms[int(sms_id)].status_id == 4


async def test_poll_one_id_reads_that_sms(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Pump")
    sms_id = await client.async_send_part(str(ep.id), PART, SendOptions())
    await emnify_sim.wait_idle()
    before = len(emnify_sim.requests)

    (message,) = await client.async_poll(str(ep.id), [sms_id])

    new = emnify_sim.requests[before:]
    assert [(r.method, r.path) for r in new] == [("GET", f"/api/v1/endpoint/{ep.id}/sms/{sms_id}")]
    assert message.part_id == sms_id
    assert message.status is SmsStatus.DELIVERED
    assert message.raw_status == "DELIVERED"
    assert message.endpoint_id == str(ep.id)
    assert message.final_at is not None
    assert message.submitted_at is not None
    assert message.expires_at is not None
    assert message.expires_at - message.submitted_at == timedelta(hours=24)


async def test_poll_several_ids_is_one_list_request(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    ep = emnify_sim.add_endpoint("Remote", behavior="offline")
    ids = [await client.async_send_part(str(ep.id), PART, SendOptions()) for _ in range(3)]
    await emnify_sim.send_mo(ep.id, "hello")
    before = len(emnify_sim.requests)

    messages = await client.async_poll(str(ep.id), ids[:2])

    new = emnify_sim.requests[before:]
    assert [(r.method, r.path) for r in new] == [("GET", f"/api/v1/endpoint/{ep.id}/sms")]
    assert sorted(m.part_id for m in messages) == sorted(ids[:2])


async def test_poll_unknown_id_returns_nothing(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Pump")

    assert await client.async_poll(str(ep.id), ["123"]) == []
    assert await client.async_poll(str(ep.id), []) == []


def test_parse_sms_real_quirks():
    real = {
        "id": 19649318,
        "dlr_status_id": "4",
        "organisation_id": "13886",
        "endpoint_id": "11379224",
        "submit_date": "2022-08-04T01:45:24.000+0000",
        "expiry_date": "2022-08-05T01:45:24.000+0000",
        "final_date": "2022-08-05T01:45:28.000+0000",
        "retry_count": "0",
        "dcs": "0",
        "status": {"description": "EXPIRED", "id": 6},
    }

    message = parse_sms(real)

    assert message is not None
    assert message.part_id == "19649318"
    assert message.endpoint_id == "11379224"
    assert message.status is SmsStatus.EXPIRED
    assert message.raw_status == "EXPIRED"
    assert message.submitted_at == datetime(2022, 8, 4, 1, 45, 24, tzinfo=UTC)
    assert message.final_at == datetime(2022, 8, 5, 1, 45, 28, tzinfo=UTC)


def test_parse_sms_documented_shape_and_other_dates():
    documented = {
        "id": "77",
        "endpoint": {"id": 5, "name": "Pump"},
        "submit_date": "2022-03-27T23:20:49.298Z",
        "final_date": "2021-10-29 07:13:34",
        "expiry_date": {},
        "status": {"id": "3", "description": "Buffered"},
    }

    message = parse_sms(documented)

    assert message is not None
    assert message.part_id == "77"
    assert message.endpoint_id == "5"
    assert message.status is SmsStatus.BUFFERED
    assert message.raw_status == "Buffered"
    assert message.submitted_at == datetime(2022, 3, 27, 23, 20, 49, 298000, tzinfo=UTC)
    assert message.final_at == datetime(2021, 10, 29, 7, 13, 34, tzinfo=UTC)
    assert message.expires_at is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"id": 1, "description": "DELIVERY ATTEMPT PENDING"}, SmsStatus.QUEUED),
        ({"id": 2, "description": "IN PROGRESS"}, SmsStatus.SENT),
        ({"id": 3, "description": "BUFFERED"}, SmsStatus.BUFFERED),
        ({"id": "4", "description": "Delivered"}, SmsStatus.DELIVERED),
        ({"id": 5, "description": "FAILED"}, SmsStatus.FAILED),
        ({"id": 6, "description": "EXPIRED"}, SmsStatus.EXPIRED),
        ({"id": 7, "description": "CANCELED"}, SmsStatus.CANCELED),
    ],
)
def test_parse_sms_status_ids(status: dict[str, Any], expected: SmsStatus):
    message = parse_sms({"id": 1, "status": status, "final_date": None})

    assert message is not None
    assert message.status is expected
    assert message.final_at is None


def test_parse_sms_unknown_status_is_kept_raw():
    message = parse_sms({"id": 1, "status": {"id": 42, "description": "QUARANTINED"}})

    assert message is not None
    assert message.status is None
    assert message.raw_status == "QUARANTINED"
    assert parse_sms({"status": {"id": 4}}) is None


# ---------------------------------------------------------------- callbacks

MO_REFERENCE = {
    "id": 46638782,
    "pid": 0,
    "dcs": 0,
    "source_address": "423663920766251",
    "dest_address": "12345",
    "endpoint": {"id": 10830095, "name": "Chargepoint Berlin"},
    "organisation": {"id": 11060},
    "multi_part_info": {"partno": 1, "total": 1, "identifier": 46638782},
    "submit_date": "2021-10-29 07:16:45",
    "payload": "This is a message send from the device",
}
DLR_REFERENCE = {
    "id": 46638644,
    "status": {"id": 4, "status": "DELIVERED"},
    "endpoint": {"id": 10830095, "name": "Chargepoint Berlin"},
    "organisation": {"id": 11060},
    "submit_date": "2021-10-29 07:13:34",
    "final_date": "2021-10-29 07:13:36",
}


def callback(
    method: str, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> CallbackRequest:
    return CallbackRequest(
        method=method,
        headers=headers or {},
        query={},
        body=raw if raw is not None else json.dumps(body).encode(),
        content_type="application/json",
    )


def signed(secret: str, algorithm: str = "HS384") -> dict[str, str]:
    token = jwt.encode({"iat": int(time.time())}, secret, algorithm=algorithm)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def offline_client(session: aiohttp.ClientSession) -> EmnifyClient:
    return EmnifyClient(session, TOKEN, "http://127.0.0.1:9")


@pytest.fixture
def secret_client(session: aiohttp.ClientSession) -> EmnifyClient:
    return EmnifyClient(session, TOKEN, "http://127.0.0.1:9", callback_secret="s3cret-key")


def test_parse_mo_reference(offline_client: EmnifyClient):
    (item,) = offline_client.parse_callback(callback("POST", MO_REFERENCE))

    assert item == IncomingMessage(
        message_id="46638782",
        sender="423663920766251",
        text="This is a message send from the device",
        received_at=datetime(2021, 10, 29, 7, 16, 45, tzinfo=UTC),
        recipient="12345",
        endpoint_id="10830095",
        multipart=None,
    )


def test_parse_mo_old_docs_shape(offline_client: EmnifyClient):
    old = {
        "id": "99",
        "source_address": 432311234,
        "dest_address": 12345678,
        "organisation": {"id": 1, "name": "Org"},
        "submit_date": {},
        "payload": "hi",
    }
    before = datetime.now(UTC)

    (item,) = offline_client.parse_callback(callback("POST", old))

    assert isinstance(item, IncomingMessage)
    assert item.message_id == "99"
    assert item.sender == "432311234"
    assert item.recipient == "12345678"
    assert item.endpoint_id is None
    assert before <= item.received_at <= datetime.now(UTC)


def test_parse_mo_multipart(offline_client: EmnifyClient):
    part = {**MO_REFERENCE, "multi_part_info": {"partno": "2", "total": "3", "identifier": 777}}

    (item,) = offline_client.parse_callback(callback("POST", part))

    assert isinstance(item, IncomingMessage)
    assert item.multipart == MultipartInfo(reference="777", number=2, total=3)


def test_parse_dlr_status_and_description(offline_client: EmnifyClient):
    described = {**DLR_REFERENCE, "id": "5", "status": {"id": "5", "description": "Failed"}}

    first = offline_client.parse_callback(callback("PATCH", DLR_REFERENCE))
    second = offline_client.parse_callback(callback("PATCH", described))

    assert first == [
        DeliveryReport(
            part_id="46638644",
            status=SmsStatus.DELIVERED,
            raw_status="DELIVERED",
            final_at=datetime(2021, 10, 29, 7, 13, 36, tzinfo=UTC),
        )
    ]
    assert second == [
        DeliveryReport(
            part_id="5",
            status=SmsStatus.FAILED,
            raw_status="Failed",
            final_at=datetime(2021, 10, 29, 7, 13, 36, tzinfo=UTC),
        )
    ]


def test_parse_bulk_array(offline_client: EmnifyClient):
    second = {**MO_REFERENCE, "id": 2, "payload": "two"}

    items = offline_client.parse_callback(callback("POST", [MO_REFERENCE, second]))

    assert [i.text for i in items if isinstance(i, IncomingMessage)] == [
        "This is a message send from the device",
        "two",
    ]


def test_parse_ignores_content_type(offline_client: EmnifyClient):
    request = CallbackRequest(
        method="PATCH",
        headers={},
        query={},
        body=json.dumps(DLR_REFERENCE).encode(),
        content_type="text/plain",
    )

    (item,) = offline_client.parse_callback(request)

    assert isinstance(item, DeliveryReport)
    assert item.status is SmsStatus.DELIVERED


@pytest.mark.parametrize(
    ("method", "raw"),
    [
        ("POST", b"{not json"),
        ("POST", b"\xff\xfe"),
        ("POST", b"42"),
        ("POST", b"[1, 2]"),
        ("POST", json.dumps({**MO_REFERENCE, "id": None}).encode()),
        ("POST", json.dumps({k: v for k, v in MO_REFERENCE.items() if k != "payload"}).encode()),
        ("POST", json.dumps({**MO_REFERENCE, "payload": 12}).encode()),
        ("POST", json.dumps({**MO_REFERENCE, "source_address": None}).encode()),
        (
            "POST",
            json.dumps({**MO_REFERENCE, "multi_part_info": {"total": 2, "partno": 3}}).encode(),
        ),
        ("PATCH", json.dumps({"status": {"id": 4}}).encode()),
        ("PATCH", json.dumps({"id": 4}).encode()),
    ],
)
def test_parse_rejects_malformed(offline_client: EmnifyClient, method: str, raw: bytes):
    with pytest.raises(InvalidCallback) as err:
        offline_client.parse_callback(callback(method, None, raw=raw))

    assert not isinstance(err.value, SignatureError)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_signature_accepted(secret_client: EmnifyClient, algorithm: str):
    request = callback("PATCH", DLR_REFERENCE, signed("s3cret-key", algorithm))

    (item,) = secret_client.parse_callback(request)

    assert isinstance(item, DeliveryReport)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        signed("wrong-key"),
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer not-a-jwt"},
        {
            "Authorization": "Bearer "
            + jwt.encode({"exp": int(time.time()) - 3600}, "s3cret-key", algorithm="HS384")
        },
    ],
)
def test_signature_rejected(secret_client: EmnifyClient, headers: dict[str, str]):
    with pytest.raises(SignatureError):
        secret_client.parse_callback(callback("POST", MO_REFERENCE, headers))


@pytest.mark.parametrize("headers", [{}, signed("anything"), {"authorization": "Bearer x"}])
def test_no_secret_configured_accepts_any(offline_client: EmnifyClient, headers: dict[str, str]):
    (item,) = offline_client.parse_callback(callback("POST", MO_REFERENCE, headers))

    assert isinstance(item, IncomingMessage)


# ---------------------------------------------------------------- webhooks end to end


@pytest.fixture
async def receiver(socket_enabled: None) -> AsyncIterator[tuple[str, list[CallbackRequest]]]:
    received: list[CallbackRequest] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(
            CallbackRequest(
                method=request.method,
                headers=dict(request.headers),
                query=dict(request.query),
                body=await request.read(),
                content_type=request.content_type,
            )
        )
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/hook", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/hook")), received
    finally:
        await server.close()


async def test_register_callback_and_receive_signed_dlr_and_reply(
    emnify_sim: EmnifySimulator,
    make_client: Callable[..., EmnifyClient],
    receiver: tuple[str, list[CallbackRequest]],
):
    url, received = receiver
    client = make_client(callback_secret="hook-secret")
    tracker = emnify_sim.add_endpoint("Tracker", behavior="echo")

    profile = await client.async_register_callback("1", url, "hook-secret")
    sms_id = await client.async_send_part(str(tracker.id), PART, SendOptions())
    await emnify_sim.wait_idle()

    assert profile.callback_url == url
    assert profile.secret_id is not None
    assert sorted(r.method for r in received) == ["PATCH", "POST"]
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in received)
    patch = next(r for r in received if r.method == "PATCH")
    post = next(r for r in received if r.method == "POST")
    (dlr,) = client.parse_callback(patch)
    assert dlr == DeliveryReport(
        part_id=sms_id,
        status=SmsStatus.DELIVERED,
        raw_status="DELIVERED",
        final_at=dlr.final_at,
    )
    assert dlr.final_at is not None
    (reply,) = client.parse_callback(post)
    assert isinstance(reply, IncomingMessage)
    assert reply.text == "ECHO: STATUS?"
    assert reply.recipient == "12345"
    assert reply.sender == tracker.msisdn
    assert reply.endpoint_id == str(tracker.id)
    with pytest.raises(SignatureError):
        make_client(callback_secret="other").parse_callback(patch)


async def test_failing_endpoint_reports_failure(
    emnify_sim: EmnifySimulator,
    client: EmnifyClient,
    receiver: tuple[str, list[CallbackRequest]],
):
    url, received = receiver
    emnify_sim.register_callback(url)
    ep = emnify_sim.add_endpoint("Broken", behavior="failing")

    sms_id = await client.async_send_part(str(ep.id), PART, SendOptions())
    await emnify_sim.wait_idle()

    assert "Authorization" not in received[0].headers  # no api_secret: unsigned
    assert client.parse_callback(received[0])[0].status is SmsStatus.FAILED
    assert client.parse_callback(received[0])[0].part_id == sms_id
    assert emnify_sim.callback_log[0].status == 200


async def test_multipart_reply_arrives_in_parts(
    emnify_sim: EmnifySimulator,
    client: EmnifyClient,
    receiver: tuple[str, list[CallbackRequest]],
):
    url, received = receiver
    emnify_sim.register_callback(url, secret="k")
    ep = emnify_sim.add_endpoint("Pump")

    ids = await emnify_sim.send_mo(ep.id, "abcdefgh", parts=2, reverse=True, duplicate=True)

    items = [client.parse_callback(r)[0] for r in received]
    assert len(items) == 4
    assert all(isinstance(i, IncomingMessage) for i in items)
    texts = [i.text for i in items if isinstance(i, IncomingMessage)]
    assert texts == ["efgh", "efgh", "abcd", "abcd"]
    parts = {i.multipart for i in items if isinstance(i, IncomingMessage)}
    assert {(p.number, p.total) for p in parts if p} == {(1, 2), (2, 2)}
    assert len({p.reference for p in parts if p}) == 1
    assert len(ids) == 2


async def test_service_profiles_and_callback_reuse(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    emnify_sim.add_endpoint("Pump", service_profile_id=1)
    emnify_sim.add_endpoint("Gateway", service_profile_id=2)
    emnify_sim.add_endpoint("Pump 2", service_profile_id=1)

    before = await client.async_list_service_profiles()
    await client.async_register_callback("2", "https://ha.example/api/iot_sms/x", "one")
    await client.async_register_callback("1", "https://ha.example/api/iot_sms/x", "two")
    after = {p.id: p for p in await client.async_list_service_profiles()}

    assert [(p.id, p.name, p.callback_url) for p in before] == [
        ("1", "Default Policy", None),
        ("2", "Service Profile 2", None),
    ]
    assert after["1"].callback_url == after["2"].callback_url == "https://ha.example/api/iot_sms/x"
    assert after["1"].callback_id == after["2"].callback_id
    assert len(emnify_sim.api_callbacks) == 1
    assert after["1"].secret_id != after["2"].secret_id
    patch = json.loads(calls(emnify_sim, "PATCH", "/service_profile/1")[0].body)
    assert patch["esme_interface_type"] == {"id": 1}


async def test_register_callback_on_unknown_profile(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    with pytest.raises(NotFound):
        await client.async_register_callback("99", "https://ha.example/hook", "s")


# ---------------------------------------------------------------- authentication edge cases


async def test_authentication_timeout_is_connection_failed(
    emnify_sim: EmnifySimulator, make_client: Callable[..., EmnifyClient]
):
    client = make_client(request_timeout=0.2)
    emnify_sim.faults.path_filter = "/authenticate"
    emnify_sim.faults.latency = 0.4

    with pytest.raises(ConnectionFailed, match="authentication in time"):
        await client.async_get_account()

    assert calls(emnify_sim, "GET", "/endpoint") == []


async def test_authentication_server_error_is_transient(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    emnify_sim.faults.path_filter = "/authenticate"
    emnify_sim.faults.server_errors = 1

    with pytest.raises(ConnectionFailed, match=r"HTTP 500") as err:
        await client.async_get_account()

    assert not isinstance(err.value, AuthError)  # the config flow must not say "bad token"
    assert (await client.async_get_account()).unique_id == "4711"


async def test_concurrent_401s_authenticate_once(emnify_sim: EmnifySimulator, client: EmnifyClient):
    emnify_sim.add_endpoint("Pump")
    await client.async_list_endpoints()
    emnify_sim.expire_tokens()

    results = await asyncio.gather(*(client.async_list_endpoints() for _ in range(3)))

    assert [[e.name for e in r] for r in results] == [["Pump"]] * 3
    assert emnify_sim.auth_count == 2  # one renewal shared by the three rejected calls


# ---------------------------------------------------------------- transport edge cases


@pytest.fixture
def unresponsive_port(socket_enabled: None) -> Iterator[int]:
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
    emnify_sim: EmnifySimulator, make_client: Callable[..., EmnifyClient], unresponsive_port: int
):
    client = make_client(request_timeout=0.4)
    await client.async_list_endpoints()
    client._base_url = f"http://127.0.0.1:{unresponsive_port}"

    # Not DeliveryUnknown: the request was never written, so the SMS cannot have been sent.
    with pytest.raises(ConnectionFailed, match="did not accept the connection"):
        await client.async_send_part("1", PART, SendOptions())


async def test_read_timeout_is_connection_failed_and_not_retried(
    emnify_sim: EmnifySimulator, make_client: Callable[..., EmnifyClient]
):
    client = make_client(request_timeout=0.2)
    await client.async_get_account()
    emnify_sim.faults.path_filter = "/endpoint"
    emnify_sim.faults.latency = 0.4
    before = len(calls(emnify_sim, "GET", "/endpoint"))

    with pytest.raises(ConnectionFailed, match="did not answer in time"):
        await client.async_list_endpoints()

    assert len(calls(emnify_sim, "GET", "/endpoint")) == before + 1


async def test_read_retried_after_connection_breaks_twice(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    emnify_sim.add_endpoint("Pump")
    emnify_sim.faults.path_filter = "/endpoint"
    # aiohttp itself repeats an idempotent request once; the second break reaches the client.
    emnify_sim.faults.drop_after_read = 2

    assert [e.name for e in await client.async_list_endpoints()] == ["Pump"]
    assert len(calls(emnify_sim, "GET", "/endpoint")) == 3


async def test_read_gives_up_when_the_retry_breaks_too(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    emnify_sim.add_endpoint("Pump")
    emnify_sim.faults.path_filter = "/endpoint"
    emnify_sim.faults.drop_after_read = 10

    with pytest.raises(ConnectionFailed, match="connection to emnify broke"):
        await client.async_list_endpoints()

    assert len(calls(emnify_sim, "GET", "/endpoint")) == 4  # 2 tries x aiohttp's own repeat


async def test_broken_write_that_is_not_a_send_is_not_retried(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    emnify_sim.faults.path_filter = "/api_secret"
    emnify_sim.faults.drop_after_read = 1

    with pytest.raises(ConnectionFailed, match="connection to emnify broke") as err:
        await client.async_register_callback("1", "https://ha.example/hook", "s")

    assert not isinstance(err.value, DeliveryUnknown)
    assert len(calls(emnify_sim, "POST", "/api_secret")) == 1
    assert emnify_sim.api_secrets == {}
    assert calls(emnify_sim, "PATCH", "/service_profile") == []


async def test_send_with_naive_expiry_is_utc(emnify_sim: EmnifySimulator, client: EmnifyClient):
    ep = emnify_sim.add_endpoint("Pump")

    sms_id = await client.async_send_part(
        str(ep.id),
        PART,
        SendOptions(expires_at=datetime(2031, 5, 6, 7, 8, 9)),  # noqa: DTZ001
    )

    assert emnify_sim.sms[int(sms_id)].expiry_date == datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert json.loads(sms_posts(emnify_sim)[0].body)["expiry_date"] == (
        "2031-05-06T07:08:09.000+0000"
    )


async def test_cancel_unknown_sms_is_not_cancellable_without_status(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    ep = emnify_sim.add_endpoint("Pump")

    with pytest.raises(NotCancellable, match="SMS with Id '123' not found") as err:
        await client.async_cancel(str(ep.id), "123")

    assert err.value.status is None
    assert len(calls(emnify_sim, "DELETE", "/sms/123")) == 1
    assert len(calls(emnify_sim, "GET", "/sms/123")) == 1


async def test_register_callback_does_not_reuse_another_url(
    emnify_sim: EmnifySimulator, client: EmnifyClient
):
    other = emnify_sim.register_callback("https://other.example/hook", service_profile_id=2)

    profile = await client.async_register_callback("1", "https://ha.example/hook", "s")

    assert profile.callback_url == "https://ha.example/hook"
    assert profile.callback_id != str(other)
    assert len(emnify_sim.api_callbacks) == 2
    assert emnify_sim.api_callbacks[other].url == "https://other.example/hook"


# ---------------------------------------------------------------- answers the simulator never gives

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAKE_CLAIMS: dict[str, Any] = {"esc.org": 99, "esc.orgName": "Fake Org"}


def reply(status: int = 200, body: Any = b"", headers: dict[str, str] | None = None) -> Handler:
    """A handler answering a fixed status and body (bytes as is, anything else as JSON)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(status=status, body=raw, headers=headers)

    return handle


class FakeEmnify:
    """Hand-written emnify answers on 127.0.0.1, for replies the simulator cannot express."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.seen: list[tuple[str, str, bytes]] = []
        self.servers: list[TestServer] = []

    async def client(
        self,
        routes: dict[tuple[str, str], Handler],
        *,
        claims: dict[str, Any] | None = None,
        auth: Handler | None = None,
    ) -> EmnifyClient:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.seen.append((request.method, request.path, await request.read()))
            return await handler(request)

        token = jwt.encode(
            {**(FAKE_CLAIMS if claims is None else claims), "exp": int(time.time()) + WEEK},
            "fake-signing-key",
            algorithm="HS256",
        )
        app = web.Application(middlewares=[record])
        app.router.add_post("/api/v1/authenticate", auth or reply(200, {"auth_token": token}))
        for (method, path), handler in routes.items():
            app.router.add_route(method, path, handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self.servers.append(server)
        return EmnifyClient(self.session, TOKEN, str(server.make_url("")), backoff=FAST)

    def requests(self, method: str, path: str) -> list[bytes]:
        return [body for m, p, body in self.seen if m == method and p == path]


@pytest.fixture
async def fake(socket_enabled: None, session: aiohttp.ClientSession) -> AsyncIterator[FakeEmnify]:
    fake_emnify = FakeEmnify(session)
    try:
        yield fake_emnify
    finally:
        for server in fake_emnify.servers:
            await server.close()


ENDPOINTS = ("GET", "/api/v1/endpoint")


@pytest.mark.parametrize(
    "answer",
    [
        reply(200, b"<html>login</html>"),
        reply(200, b"\xff\xfe"),
        reply(200, b"[]"),
        reply(200, {"token": "x"}),
        reply(200, {"auth_token": "not-a-jwt"}),
        reply(200, {"auth_token": 42}),
        reply(200, {"auth_token": "e30.W10.c2ln"}),  # {} header, [] claims: not an object
    ],
    ids=["html", "binary", "list", "no-key", "not-jwt", "number", "list-claims"],
)
async def test_authentication_answer_without_token(fake: FakeEmnify, answer: Handler):
    client = await fake.client({ENDPOINTS: reply(200, [])}, auth=answer)

    with pytest.raises(ConnectionFailed, match="authentication without a token") as err:
        await client.async_get_account()

    assert not isinstance(err.value, AuthError)
    assert fake.requests(*ENDPOINTS) == []


async def test_account_title_falls_back_to_the_organisation_id(fake: FakeEmnify):
    client = await fake.client({ENDPOINTS: reply(200, [])}, claims={"esc.org": 99})

    account = await client.async_get_account()

    assert account.unique_id == "99"
    assert account.title == "emnify 99"


async def test_account_token_without_organisation_is_auth_error(fake: FakeEmnify):
    client = await fake.client({ENDPOINTS: reply(200, [])}, claims={"esc.orgName": "Nobody"})

    with pytest.raises(AuthError, match="without an organisation"):
        await client.async_get_account()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (reply(200, b"<html>captive portal</html>"), "HTTP 200 with a body that is not JSON"),
        (reply(200, {"items": []}), "endpoint list with no list"),
        (reply(502, b"<html>Bad Gateway</html>"), r"^emnify server error \(HTTP 502\)$"),
        (reply(300, b""), r"^unexpected answer from emnify \(HTTP 300\)$"),
        (reply(302, b"moved"), r"^unexpected answer from emnify \(HTTP 302\)$"),
    ],
    ids=["html-200", "object", "html-502", "300", "302-without-location"],
)
async def test_endpoint_list_odd_answers(fake: FakeEmnify, answer: Handler, message: str):
    client = await fake.client({ENDPOINTS: answer})

    with pytest.raises(ConnectionFailed, match=message):
        await client.async_list_endpoints()

    assert len(fake.requests(*ENDPOINTS)) == 1


async def test_endpoint_list_skips_items_without_id(fake: FakeEmnify):
    items = [{"name": "no id"}, "junk", {"id": None}, {"id": "7", "name": "Pump"}]
    client = await fake.client({ENDPOINTS: reply(200, items)})  # no X-Total-Pages: one page

    endpoints = await client.async_list_endpoints()

    assert [(e.id, e.name) for e in endpoints] == [("7", "Pump")]
    assert len(fake.requests(*ENDPOINTS)) == 1


SEND = ("POST", "/api/v1/endpoint/7/sms")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (reply(201, b"", {"Location": "http://x/api/v1/endpoint/7/sms/555/"}), "555"),
        (reply(201, {"id": 77}), "77"),
        (reply(201, {"id": "78"}, {"Location": "http://x/api/v1/endpoint/7/sms/"}), "78"),
        (reply(201, b""), None),
        (reply(201, b"<html></html>"), None),
        (reply(201, {"id": "n/a"}), None),
        (reply(201, [77]), None),
    ],
    ids=["trailing-slash", "body-id", "body-string-id", "empty", "html", "bad-id", "list"],
)
async def test_send_reads_the_id_or_says_it_is_unknown(
    fake: FakeEmnify, answer: Handler, expected: str | None
):
    client = await fake.client({SEND: answer})

    if expected is None:
        with pytest.raises(DeliveryUnknown, match="did not return its id"):
            await client.async_send_part("7", PART, SendOptions())
    else:
        assert await client.async_send_part("7", PART, SendOptions()) == expected
    assert len(fake.requests(*SEND)) == 1


@pytest.mark.parametrize("location", ["http:///elsewhere", "ftp://127.0.0.1/elsewhere"])
async def test_send_redirected_to_an_unusable_address_is_unknown(fake: FakeEmnify, location: str):
    client = await fake.client({SEND: reply(307, b"", {"Location": location})})

    # emnify has read the POST before redirecting: the SMS may exist, so it is not repeated.
    with pytest.raises(DeliveryUnknown, match="may have been sent"):
        await client.async_send_part("7", PART, SendOptions())

    assert len(fake.requests(*SEND)) == 1


async def test_poll_list_answer_that_is_no_list(fake: FakeEmnify):
    client = await fake.client({("GET", "/api/v1/endpoint/7/sms"): reply(200, {"id": 1})})

    with pytest.raises(ConnectionFailed, match="SMS list with no list"):
        await client.async_poll("7", ["1", "2"])


async def test_service_profiles_skip_endpoints_without_profile(fake: FakeEmnify):
    endpoints = [
        {"id": 1, "name": "No profile"},
        {"id": 2, "name": "Null profile", "service_profile": None},
        {"id": 3, "name": "Pump", "service_profile": {"id": 5, "name": "Pumps"}},
    ]
    client = await fake.client(
        {
            ENDPOINTS: reply(200, endpoints),
            ("GET", "/api/v1/service_profile/5"): reply(200, {"id": 5, "api_callback": None}),
        }
    )

    profiles = await client.async_list_service_profiles()

    assert [(p.id, p.name, p.callback_url) for p in profiles] == [("5", "Pumps", None)]
    assert [p for m, p, _ in fake.seen if "/service_profile/" in p] == ["/api/v1/service_profile/5"]


async def test_service_profile_that_is_no_object(fake: FakeEmnify):
    client = await fake.client(
        {
            ENDPOINTS: reply(200, [{"id": 3, "service_profile": {"id": 5}}]),
            ("GET", "/api/v1/service_profile/5"): reply(200, [{"id": 5}]),
        }
    )

    with pytest.raises(ConnectionFailed, match="service profile with no object"):
        await client.async_list_service_profiles()


HOOK = "https://ha.example/hook"
CALLBACKS = "/api/v1/api_callback"
SECRETS = "/api/v1/api_secret"
PROFILE = "/api/v1/service_profile/1"
PROFILE_JSON = {"id": 1, "name": "Default", "api_callback": {"id": 12, "url": HOOK}}


async def test_register_callback_finds_a_new_callback_without_location(fake: FakeEmnify):
    created: list[dict[str, Any]] = []

    async def list_callbacks(_request: web.Request) -> web.Response:
        return web.json_response(created)

    async def create_callback(request: web.Request) -> web.Response:
        created.append({"id": 12, **await request.json()})
        return web.Response(status=201)  # no Location

    client = await fake.client(
        {
            ("GET", CALLBACKS): list_callbacks,
            ("POST", CALLBACKS): create_callback,
            ("POST", SECRETS): reply(201, b"", {"Location": f"http://x{SECRETS}/34"}),
            ("PATCH", PROFILE): reply(204),
            ("GET", PROFILE): reply(200, {**PROFILE_JSON, "api_secret": {"id": 34}}),
        }
    )

    profile = await client.async_register_callback("1", HOOK, "s")

    (patch,) = fake.requests("PATCH", PROFILE)
    assert json.loads(patch)["api_callback"] == {"id": 12}
    assert json.loads(patch)["api_secret"] == {"id": 34}
    assert (profile.callback_id, profile.secret_id) == ("12", "34")


@pytest.mark.parametrize(
    ("callback_list", "callback_answer", "secret_answer", "message"),
    [
        (
            [{"id": 3, "url": "https://other.example"}, "junk"],
            reply(201),
            reply(201, b"", {"Location": f"http://x{SECRETS}/34"}),
            "created the callback but did not return its id",
        ),
        (
            {"items": []},  # not a list: nothing to reuse
            reply(201),
            reply(201, b"", {"Location": f"http://x{SECRETS}/34"}),
            "created the callback but did not return its id",
        ),
        (
            [],
            reply(201, b"", {"Location": f"http://x{CALLBACKS}/12"}),
            reply(201, b"", {"Location": f"http://x{SECRETS}/"}),
            "created the signing secret but did not return its id",
        ),
    ],
    ids=["callback-not-listed", "callback-list-no-list", "secret-without-location"],
)
async def test_register_callback_without_ids_stops_before_patching(
    fake: FakeEmnify,
    callback_list: Any,
    callback_answer: Handler,
    secret_answer: Handler,
    message: str,
):
    client = await fake.client(
        {
            ("GET", CALLBACKS): reply(200, callback_list),
            ("POST", CALLBACKS): callback_answer,
            ("POST", SECRETS): secret_answer,
            ("PATCH", PROFILE): reply(204),
        }
    )

    with pytest.raises(ConnectionFailed, match=message):
        await client.async_register_callback("1", HOOK, "s")

    assert len(fake.requests("POST", CALLBACKS)) == 1
    assert fake.requests("PATCH", PROFILE) == []


async def test_nested_validation_errors_are_in_the_message(fake: FakeEmnify):
    error = {
        "error_code": 1400,
        "error_token": "InputValidationFailed",
        "message": "Update service profile validation error",
        "errors": [
            {"error_code": 1401, "message": "Api callback with Id '12' not found."},
            {"error_code": 1401},
            "junk",
            {"message": "Api secret with Id '34' not found."},
        ],
    }
    client = await fake.client(
        {
            ("GET", CALLBACKS): reply(200, [{"id": 12, "url": HOOK}]),
            ("POST", SECRETS): reply(201, b"", {"Location": f"http://x{SECRETS}/34"}),
            ("PATCH", PROFILE): reply(422, error),
        }
    )

    with pytest.raises(InvalidRequest) as err:
        await client.async_register_callback("1", HOOK, "s")

    assert str(err.value) == (
        "Update service profile validation error: Api callback with Id '12' not found.; "
        "Api secret with Id '34' not found. (InputValidationFailed, HTTP 422)"
    )


# ---------------------------------------------------------------- parsing quirks


def test_parse_sms_odd_ids_and_dates():
    named = parse_sms({"id": " sms-7 ", "submit_date": "yesterday", "final_date": "   "})

    assert parse_sms({"id": True, "status": {"id": 4}}) is None  # a boolean is no id
    assert named is not None
    assert named.part_id == "sms-7"
    assert named.submitted_at is None
    assert named.final_at is None
    assert named.status is None
    assert named.raw_status == "unknown"


@pytest.mark.parametrize(
    ("status", "expected", "raw"),
    [
        (4, SmsStatus.DELIVERED, "4"),
        ("5", SmsStatus.FAILED, "5"),
        ({"id": 6}, SmsStatus.EXPIRED, "6"),
        ({"id": 4, "status": ""}, SmsStatus.DELIVERED, "4"),
        ({"id": True, "description": "ODD"}, None, "ODD"),
        ("pending", None, "unknown"),
    ],
)
def test_parse_dlr_bare_and_partial_statuses(
    offline_client: EmnifyClient, status: Any, expected: SmsStatus | None, raw: str
):
    (item,) = offline_client.parse_callback(callback("PATCH", {"id": 9, "status": status}))

    assert item == DeliveryReport(part_id="9", status=expected, raw_status=raw, final_at=None)


# ---------------------------------------------------------------- callback signatures by hand

NOW = 1_700_000_000.0
KEY = b"s3cret-key"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(
    header: bytes | str,
    payload: bytes | str,
    *,
    key: bytes = KEY,
    digest: Any = hashlib.sha256,
    signature: str | None = None,
) -> str:
    """An Authorization header with a JWT built by hand (segments given raw or encoded)."""
    head = header if isinstance(header, str) else b64url(header)
    body = payload if isinstance(payload, str) else b64url(payload)
    if signature is None:
        mac = hmac.new(key, f"{head}.{body}".encode(), digest).digest()
        signature = b64url(mac)
    return f"Bearer {head}.{body}.{signature}"


HS256 = b'{"alg":"HS256","typ":"JWT"}'


@pytest.fixture
def clocked_client(session: aiohttp.ClientSession) -> EmnifyClient:
    return EmnifyClient(
        session, TOKEN, "http://127.0.0.1:9", callback_secret=KEY.decode(), clock=lambda: NOW
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": forge(HS256, b'{"iat":1}')},
        {"authorization": forge(HS256, b"{}")},  # plain dict, lower-case key
        {"AUTHORIZATION": forge(b'{"alg":"HS512"}', b"{}", digest=hashlib.sha512)},
        {"Authorization": "  bearer " + forge(HS256, b"{}").split(" ")[1]},
        {"Authorization": forge(HS256, json.dumps({"exp": NOW - 299}).encode())},
        {"Authorization": forge(HS256, json.dumps({"nbf": NOW + 299}).encode())},
        {"Authorization": forge(HS256, b'{"exp":"soon","nbf":null}')},
    ],
    ids=["hs256", "lower-case", "upper-case", "scheme-case", "exp-leeway", "nbf-leeway", "odd"],
)
def test_hand_made_signature_accepted(clocked_client: EmnifyClient, headers: dict[str, str]):
    (item,) = clocked_client.parse_callback(callback("POST", MO_REFERENCE, headers))

    assert isinstance(item, IncomingMessage)


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (forge(HS256, json.dumps({"exp": NOW - 301}).encode()), "has expired"),
        (forge(HS256, json.dumps({"nbf": NOW + 301}).encode()), "not valid yet"),
        (forge(HS256, b"{}", key=b"other-key"), "does not match"),
        (forge(HS256, b"{}", signature=b64url(b"x" * 32)), "does not match"),
        (forge(b'{"alg":"none"}', b"{}", signature=""), "malformed"),
        (forge(b'{"alg":"none"}', b"{}"), "malformed"),  # even with a valid HMAC
        (forge(b'{"alg":"RS256"}', b"{}"), "malformed"),
        (forge(b'{"typ":"JWT"}', b"{}"), "malformed"),
        (forge(b'{"alg":["HS256"]}', b"{}"), "malformed"),
        (forge(b'["HS256"]', b"{}"), "malformed"),
        (forge(b"not json", b"{}"), "malformed"),
        (forge("A", b"{}"), "malformed"),  # one base64 character cannot be decoded
        (forge(HS256, b"{}", signature="abcde"), "malformed"),
        (forge(HS256, "é30"), "malformed"),
        (forge(HS256, b"{not json"), "malformed"),
        (forge(HS256, b"[1, 2]"), "malformed"),  # claims must be a JSON object
        (forge(HS256, b"42"), "malformed"),
        ("Bearer " + b64url(HS256) + "." + b64url(b"{}"), "malformed"),
        (forge(HS256, b"{}") + ".extra", "malformed"),
        ("Bearer   ", "no bearer token"),
        ("", "no bearer token"),
    ],
    ids=[
        "expired",
        "future-nbf",
        "wrong-key",
        "wrong-signature",
        "alg-none",
        "alg-none-signed",
        "alg-rs256",
        "alg-missing",
        "alg-list",
        "header-list",
        "header-not-json",
        "bad-base64",
        "bad-signature-base64",
        "non-ascii",
        "claims-not-json",
        "claims-list",
        "claims-number",
        "two-segments",
        "four-segments",
        "empty-bearer",
        "empty-header",
    ],
)
def test_hand_made_signature_rejected(
    clocked_client: EmnifyClient, authorization: str, message: str
):
    headers = {"authorization": authorization}

    with pytest.raises(SignatureError, match=message):
        clocked_client.parse_callback(callback("POST", MO_REFERENCE, headers))
