"""The automation blueprints in blueprints/automation/iot_sms, run against the simulator."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.automation.helpers import async_get_blueprints
from homeassistant.components.blueprint import Blueprint
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.async_ import get_scheduled_timer_handles
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from custom_components.iot_sms import services as iot_sms_services
from custom_components.iot_sms.api.models import SmsStatus
from custom_components.iot_sms.const import DOMAIN
from simulator.emnify import DEFAULT_VALIDITY as EMNIFY_DEFAULT_VALIDITY
from simulator.emnify import EmnifySimulator, SimSms
from tests.helpers import device_id, send_sms
from tests.provider_base import Provider
from tests.provider_fixtures import *  # noqa: F403  (the provider fixture)

SOURCE = Path(__file__).parent.parent / "blueprints" / "automation" / "iot_sms"
RESEND = "resend_until_delivered.yaml"
NOTIFY = "notify_on_failure.yaml"
REPLY = "act_on_reply.yaml"
FILES = (RESEND, NOTIFY, REPLY)
REPO_URL = "https://github.com/iot-sim-sms/iot_sms/blob/main/blueprints/automation/iot_sms/"
# GitHub serves a file's raw text at raw.githubusercontent.com/<owner>/<repo>/<branch>/<path>.
RAW_URL = (
    "https://raw.githubusercontent.com/iot-sim-sms/iot_sms/main/blueprints/automation/iot_sms/"
)

# emnify status ids (shared/reference/emnify-api.md): 3 buffered, 4 delivered, 5 failed, 6 expired.
BUFFERED, DELIVERED, FAILED, EXPIRED = 3, 4, 5, 6
COMMAND_EVENT = "test_send_command"
REPORT_EVENT = "iot_sms_delivery_status"


@pytest.fixture(autouse=True)
def automation_errors(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """A blueprint whose templates or steps go wrong only logs it: fail the test instead.

    A test that expects an error puts a part of its text in the yielded list.
    """
    expected: list[str] = []
    yield expected
    problems = [
        record.getMessage()
        for record in caplog.get_records("call")
        if record.levelno >= logging.WARNING
        and record.name.startswith(
            (
                "homeassistant.components.automation",
                "homeassistant.helpers.script",
                "homeassistant.helpers.template",
                "homeassistant.components.blueprint",
            )
        )
        and not any(part in record.getMessage() for part in expected)
    ]
    assert not problems, problems


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A config dir of this test's own.

    The default one is the plugin's installed testing_config, shared by every test run (and
    already holding Home Assistant's example blueprints): nothing may be left behind there.
    """
    hass.config.config_dir = str(tmp_path)
    return tmp_path


@pytest.fixture
def blueprints(config_dir: Path) -> Path:
    """The project's blueprints, copied where the blueprint component looks for them."""
    target = config_dir / "blueprints" / "automation" / "iot_sms"
    target.mkdir(parents=True)
    for name in FILES:
        shutil.copy(SOURCE / name, target / name)
    return target


async def _use_blueprint(hass: HomeAssistant, name: str, inputs: dict[str, Any]) -> str:
    """Create one automation from the blueprint; return its entity id."""
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "alias": "From blueprint",
                    "use_blueprint": {"path": f"iot_sms/{name}", "input": inputs},
                }
            ]
        },
    )
    await hass.async_block_till_done()
    entity_id = "automation.from_blueprint"
    state = hass.states.get(entity_id)
    # An automation whose blueprint or inputs do not validate is created unavailable.
    assert state is not None
    assert state.state == "on", state
    return entity_id


def _runs(hass: HomeAssistant, entity_id: str) -> int:
    """How many runs of the automation are in progress."""
    state = hass.states.get(entity_id)
    assert state is not None
    return int(state.attributes["current"])


def _timer_due(hass: HomeAssistant, after: timedelta, by: timedelta) -> bool:
    """Whether something is scheduled to happen later than `after` but by `by` from now."""
    now = hass.loop.time()
    return any(
        not handle.cancelled() and after.total_seconds() < handle.when() - now <= by.total_seconds()
        for handle in get_scheduled_timer_handles(hass.loop)
    )


def _report_listeners(hass: HomeAssistant) -> int:
    """How many listeners wait for delivery reports on the bus."""
    return hass.bus.async_listeners().get(REPORT_EVENT, 0)


def _sent(sim: EmnifySimulator, endpoint_id: int, text: str | None = None) -> list[SimSms]:
    """SMS the simulator received for a device (mobile-terminated), oldest first."""
    return sorted(
        (
            sms
            for sms in sim.sms.values()
            if sms.endpoint_id == endpoint_id
            and sms.sms_type == 1
            and (text is None or sms.payload == text)
        ),
        key=lambda sms: sms.id,
    )


# ---------------------------------------------------------------- the files themselves


async def test_blueprints_load_with_the_automation_schema(
    hass: HomeAssistant, blueprints: Path
) -> None:
    """Every file is a valid automation blueprint, with the metadata an import needs."""
    loaded = await async_get_blueprints(hass).async_get_blueprints()
    assert set(loaded) == {f"iot_sms/{name}" for name in FILES}
    for path, blueprint in loaded.items():
        assert isinstance(blueprint, Blueprint), (path, blueprint)
        metadata = blueprint.metadata
        assert metadata["domain"] == "automation"
        assert metadata["name"]
        assert metadata["description"]
        assert metadata["source_url"] == REPO_URL + path.removeprefix("iot_sms/")
        assert metadata["homeassistant"]["min_version"] == "2025.4.0"
        assert blueprint.validate() is None  # this Home Assistant is recent enough
        for key, spec in blueprint.inputs.items():
            assert spec.get("name"), (path, key)
            assert spec.get("description"), (path, key)
            assert "selector" in spec, (path, key)


async def test_import_by_url(
    hass: HomeAssistant,
    config_dir: Path,
    hass_ws_client: Any,
    aioclient_mock: AiohttpClientMocker,
) -> None:
    """The import dialog fetches each blueprint from its source URL and saves it as is."""
    for name in FILES:
        aioclient_mock.get(RAW_URL + name, text=(SOURCE / name).read_text(encoding="utf-8"))
    assert await async_setup_component(hass, "automation", {})
    client = await hass_ws_client(hass)
    for name in FILES:
        url = REPO_URL + name
        await client.send_json_auto_id({"type": "blueprint/import", "url": url})
        msg = await client.receive_json()
        assert msg["success"], msg
        imported = msg["result"]
        assert imported["validation_errors"] is None
        assert imported["blueprint"]["metadata"]["source_url"] == url
        await client.send_json_auto_id(
            {
                "type": "blueprint/save",
                "domain": "automation",
                "path": imported["suggested_filename"],
                "yaml": imported["raw_data"],
                "source_url": url,
            }
        )
        msg = await client.receive_json()
        assert msg["success"], msg
        # Read back from disk with the automation schema, as an automation using it would.
        blueprints = async_get_blueprints(hass)
        await blueprints.async_reset_cache()
        saved = await blueprints.async_get_blueprint(f"{imported['suggested_filename']}.yaml")
        assert saved.metadata["source_url"] == url
        assert saved.name == imported["blueprint"]["metadata"]["name"]
    # The owner/name of the repository, as Home Assistant names imports from GitHub.
    assert sorted(p.name for p in (config_dir / "blueprints/automation/iot-sim-sms").iterdir()) == (
        sorted(FILES)
    )


async def test_device_inputs_offer_only_sim_devices(
    hass: HomeAssistant, blueprints: Path, setup_emnify: MockConfigEntry
) -> None:
    """The device filter matches the account's SIM devices, not its hub."""
    loaded = await async_get_blueprints(hass).async_get_blueprints()
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    ours = dr.async_entries_for_config_entry(devices, setup_emnify.entry_id)
    assert {d.name for d in ours} == {"Demo Fleet", "Pump station", "Remote gateway", "Tracker"}
    for path, blueprint in loaded.items():
        assert isinstance(blueprint, Blueprint)
        (selector,) = (
            spec["selector"]["device"]
            for spec in blueprint.inputs.values()
            if "device" in spec["selector"]
        )
        (device_filter,) = selector["filter"]
        (entity_filter,) = selector["entity"]
        assert device_filter == {"integration": "iot_sms"}

        def matches(device: dr.DeviceEntry, entity_filter: dict[str, Any] = entity_filter) -> bool:
            return any(
                entity.platform == entity_filter["integration"]
                and entity.domain in entity_filter["domain"]
                for entity in er.async_entries_for_device(entities, device.id)
            )

        assert {d.name for d in ours if matches(d)} == {
            "Pump station",
            "Remote gateway",
            "Tracker",
        }, path


# ---------------------------------------------------------------- resend until delivered


# The duration selector gives a mapping; YAML users may also write a time string or seconds.
@pytest.mark.parametrize(
    ("lifetime_inputs", "validity"),
    [
        ({"timeout": {"hours": 0, "minutes": 30, "seconds": 0}}, timedelta(minutes=30)),
        ({"timeout": "00:30:00"}, timedelta(minutes=30)),
        ({"timeout": 1800}, timedelta(minutes=30)),
        # Not sent: the provider's own lifetime applies.
        ({"timeout": 1800, "expire_at_provider": False}, EMNIFY_DEFAULT_VALIDITY),
    ],
    ids=["mapping", "string", "seconds", "provider_lifetime"],
)
async def test_resend_until_delivered_stops_when_delivered(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
    lifetime_inputs: dict[str, Any],
    validity: timedelta,
) -> None:
    """A failed command is sent again; once an attempt is delivered nothing more goes out."""
    gateway = emnify_endpoints["offline"]  # buffers until told otherwise
    automation = await _use_blueprint(
        hass,
        RESEND,
        {
            "trigger": [{"trigger": "event", "event_type": COMMAND_EVENT}],
            "device": device_id(hass, "Remote gateway"),
            "message": "REBOOT",
            **lifetime_inputs,
        },
    )
    assert _sent(emnify_sim, gateway) == []

    hass.bus.async_fire(COMMAND_EVENT)
    await wait_for(lambda: len(_sent(emnify_sim, gateway)) == 1)
    (first,) = _sent(emnify_sim, gateway)
    assert first.payload == "REBOOT"
    # Each attempt lives at the provider as long as the user gives it.
    assert abs(first.expiry_date - first.submit_date - validity) < timedelta(minutes=1)
    emnify_sim.set_sms_status(first.id, FAILED)

    await wait_for(lambda: len(_sent(emnify_sim, gateway)) == 2)
    second = _sent(emnify_sim, gateway)[1]
    assert second.payload == "REBOOT"
    assert _runs(hass, automation) == 1
    emnify_sim.set_sms_status(second.id, DELIVERED)

    await wait_for(lambda: _runs(hass, automation) == 0)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert [sms.payload for sms in _sent(emnify_sim, gateway)] == ["REBOOT", "REBOOT"]
    assert emnify_sim.sms[second.id].status_id == DELIVERED


@pytest.mark.parametrize(("attempts", "expected"), [(None, 3), (4, 4)])
async def test_resend_gives_up_after_the_attempts(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
    attempts: int | None,
    expected: int,
) -> None:
    """A command that fails or expires every time is sent N times (3 unless chosen), no more."""
    gateway = emnify_endpoints["offline"]
    inputs: dict[str, Any] = {
        "trigger": [{"trigger": "event", "event_type": COMMAND_EVENT}],
        "device": device_id(hass, "Remote gateway"),
        "message": "SET INTERVAL 60",
    }
    if attempts is not None:
        inputs["attempts"] = attempts
    automation = await _use_blueprint(hass, RESEND, inputs)

    hass.bus.async_fire(COMMAND_EVENT)
    for attempt in range(1, expected + 1):
        await wait_for(lambda attempt=attempt: len(_sent(emnify_sim, gateway)) == attempt)
        latest = _sent(emnify_sim, gateway)[-1]
        emnify_sim.set_sms_status(latest.id, FAILED if attempt % 2 else EXPIRED)

    await wait_for(lambda: _runs(hass, automation) == 0)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert [sms.payload for sms in _sent(emnify_sim, gateway)] == ["SET INTERVAL 60"] * expected


@pytest.mark.parametrize("status_sensor", [True, False], ids=["sensor", "sensor_disabled"])
@pytest.mark.parametrize(("status", "expected"), [(DELIVERED, 1), (FAILED, 3)])
async def test_resend_when_the_report_overtakes_the_send(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
    status: int,
    expected: int,
    status_sensor: bool,
) -> None:
    """A final report that arrives before the send's own answer is not waited for in vain."""
    if not status_sensor:
        # Users disable entities they do not look at; the automation must not rely on it.
        entities = er.async_get(hass)
        (sensor,) = (
            entity
            for entity in er.async_entries_for_device(entities, device_id(hass, "Pump station"))
            if entity.translation_key == "last_sms_status"
        )
        entities.async_update_entity(sensor.entity_id, disabled_by=er.RegistryEntryDisabler.USER)
        assert await hass.config_entries.async_reload(setup_emnify.entry_id)
        await hass.async_block_till_done()
        assert hass.states.get(sensor.entity_id) is None
    emnify_sim.report_before_response = status
    pump = emnify_endpoints["online"]
    automation = await _use_blueprint(
        hass,
        RESEND,
        {
            "trigger": [{"trigger": "event", "event_type": COMMAND_EVENT}],
            "device": device_id(hass, "Pump station"),
            "message": "STATUS?",
        },
    )
    hass.bus.async_fire(COMMAND_EVENT)
    await wait_for(lambda: len(_sent(emnify_sim, pump)) == expected)
    await wait_for(lambda: _runs(hass, automation) == 0)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert len(_sent(emnify_sim, pump)) == expected


async def test_resend_sees_a_report_handled_right_after_the_send(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
) -> None:
    """A report handled after the send answered, before the automation's next step, counts."""
    gateway = emnify_endpoints["offline"]
    tracker = setup_emnify.runtime_data.tracker

    async def send_then_report(call: ServiceCall) -> ServiceResponse:
        response = await iot_sms_services._async_send(call)
        assert response is not None
        for message in response["messages"]:
            # As a push report processed the moment the action answered "queued".
            hass.loop.call_soon(tracker.async_apply, message["message_id"], SmsStatus.FAILED)
        return response

    hass.services.async_register(
        DOMAIN,
        "send_sms",
        send_then_report,
        schema=iot_sms_services.SEND_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    automation = await _use_blueprint(
        hass,
        RESEND,
        {
            "trigger": [{"trigger": "event", "event_type": COMMAND_EVENT}],
            "device": device_id(hass, "Remote gateway"),
            "message": "REBOOT",
        },
    )
    hass.bus.async_fire(COMMAND_EVENT)
    await wait_for(lambda: len(_sent(emnify_sim, gateway)) == 3)
    await wait_for(lambda: _runs(hass, automation) == 0)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert len(_sent(emnify_sim, gateway)) == 3


async def test_resend_ignores_reports_of_other_messages(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
) -> None:
    """Another SMS to the device meanwhile, failing, is not an attempt; the command's is."""
    gateway = emnify_endpoints["offline"]
    automation = await _use_blueprint(
        hass,
        RESEND,
        {
            "trigger": [{"trigger": "event", "event_type": COMMAND_EVENT}],
            "device": device_id(hass, "Remote gateway"),
            "message": "REBOOT",
        },
    )
    reports = async_capture_events(hass, REPORT_EVENT)
    idle_listeners = _report_listeners(hass)
    hass.bus.async_fire(COMMAND_EVENT)
    await wait_for(lambda: len(_sent(emnify_sim, gateway, "REBOOT")) == 1)

    # The newer SMS is what the device's "Last SMS status" sensor shows from now on: the
    # automation listens for the command's own report instead.
    other = await send_sms(hass, "Remote gateway", "STATUS?")
    other_id = other["messages"][0]["message_id"]
    await wait_for(lambda: _report_listeners(hass) == idle_listeners + 1)
    (other_sms,) = _sent(emnify_sim, gateway, "STATUS?")
    emnify_sim.set_sms_status(other_sms.id, FAILED)
    await wait_for(
        lambda: any(e.data["message_id"] == other_id and e.data["final"] for e in reports)
    )
    await emnify_sim.wait_idle()
    await wait_for(lambda: _report_listeners(hass) == idle_listeners + 1)
    assert len(_sent(emnify_sim, gateway, "REBOOT")) == 1
    assert _runs(hass, automation) == 1

    (command,) = _sent(emnify_sim, gateway, "REBOOT")
    emnify_sim.set_sms_status(command.id, EXPIRED)
    await wait_for(lambda: len(_sent(emnify_sim, gateway, "REBOOT")) == 2)
    emnify_sim.set_sms_status(_sent(emnify_sim, gateway, "REBOOT")[1].id, DELIVERED)
    await wait_for(lambda: _runs(hass, automation) == 0)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert len(_sent(emnify_sim, gateway, "REBOOT")) == 2
    assert len(_sent(emnify_sim, gateway, "STATUS?")) == 1


async def test_resend_stops_when_no_report_comes(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
) -> None:
    """Without a final report the outcome is unknown: the command is not sent again."""
    gateway = emnify_endpoints["offline"]
    automation = await _use_blueprint(
        hass,
        RESEND,
        {
            "trigger": [{"trigger": "event", "event_type": COMMAND_EVENT}],
            "device": device_id(hass, "Remote gateway"),
            "message": "REBOOT",
            "timeout": {"hours": 0, "minutes": 1, "seconds": 0},
        },
    )
    hass.bus.async_fire(COMMAND_EVENT)
    await wait_for(lambda: len(_sent(emnify_sim, gateway)) == 1)
    (command,) = _sent(emnify_sim, gateway)
    # Held in the network with no expiry of its own: no report will ever come.
    emnify_sim.set_sms_status(command.id, BUFFERED)
    # The automation now waits for the attempt's minute plus 30 minutes for its report; other
    # timers of Home Assistant and aiohttp run every 15 minutes, hourly or daily.
    await wait_for(lambda: _timer_due(hass, timedelta(minutes=30), timedelta(minutes=31)))

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=2))
    await wait_for(lambda: _runs(hass, automation) == 0)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert len(_sent(emnify_sim, gateway)) == 1


async def test_resend_on_every_provider(
    hass: HomeAssistant, blueprints: Path, provider: Provider, wait_for: Callable[..., Any]
) -> None:
    """Each provider's failure report makes a resend; its delivery report ends the resends."""
    provider.hold()
    automation = await _use_blueprint(
        hass,
        RESEND,
        {
            "trigger": [{"trigger": "event", "event_type": COMMAND_EVENT}],
            "device": device_id(hass, "Pump station"),
            "message": "REBOOT",
            # Works whether or not the provider takes a validity.
            "expire_at_provider": False,
        },
    )
    hass.bus.async_fire(COMMAND_EVENT)
    await wait_for(lambda: len(provider.reached("REBOOT")) == 1)
    provider.fail(provider.reached("REBOOT")[0])
    await wait_for(lambda: len(provider.reached("REBOOT")) == 2)
    provider.deliver(provider.reached("REBOOT")[1])
    await wait_for(lambda: _runs(hass, automation) == 0)
    await hass.async_block_till_done()
    assert len(provider.reached("REBOOT")) == 2


async def test_resend_refused_where_the_validity_cannot_be_chosen(
    hass: HomeAssistant,
    blueprints: Path,
    supersim_provider: Provider,
    wait_for: Callable[..., Any],
    automation_errors: list[str],
) -> None:
    """Twilio Super SIM keeps trying for a fixed time: with the expiry on nothing is sent."""
    automation_errors.append("does not let the validity be chosen")
    automation = await _use_blueprint(
        hass,
        RESEND,
        {
            "trigger": [{"trigger": "event", "event_type": COMMAND_EVENT}],
            "device": device_id(hass, "Pump station"),
            "message": "REBOOT",
        },
    )
    hass.bus.async_fire(COMMAND_EVENT)
    await wait_for(lambda: _runs(hass, automation) == 0)
    await hass.async_block_till_done()
    assert supersim_provider.reached("REBOOT") == []


# ---------------------------------------------------------------- notify on failure


async def test_notify_on_failure(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
) -> None:
    """A failed or expired SMS to a chosen device notifies once; delivered ones do not."""
    notified = async_mock_service(hass, "notify", "mobile_app_phone")
    await _use_blueprint(
        hass,
        NOTIFY,
        {
            "devices": [device_id(hass, "Remote gateway"), device_id(hass, "Pump station")],
            "notify_action": "notify.mobile_app_phone",
        },
    )
    reports = async_capture_events(hass, REPORT_EVENT)

    def final_reports() -> list[str]:
        return [e.data["status"] for e in reports if e.data["final"]]

    # Delivered (the Pump station is online): nothing to tell.
    await send_sms(hass, "Pump station", "STATUS?")
    await wait_for(lambda: final_reports() == ["delivered"])
    await hass.async_block_till_done()
    assert notified == []

    # Failed on a chosen device: one notification naming the device and the status.
    await send_sms(hass, "Remote gateway", "REBOOT")
    emnify_sim.set_sms_status(_sent(emnify_sim, emnify_endpoints["offline"])[-1].id, FAILED)
    await wait_for(lambda: len(notified) == 1)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert len(notified) == 1
    assert "Remote gateway" in notified[0].data["message"]
    assert "failed" in notified[0].data["message"]
    assert notified[0].data["title"]

    # Failed on a device that was not chosen: nothing.
    emnify_sim.endpoints[emnify_endpoints["echo"]].behavior = "failing"
    await send_sms(hass, "Tracker", "REBOOT")
    await wait_for(lambda: final_reports()[-1:] == ["failed"] and len(final_reports()) == 3)
    await hass.async_block_till_done()
    assert len(notified) == 1

    # Expired on a chosen device.
    await send_sms(hass, "Remote gateway", "REBOOT")
    emnify_sim.set_sms_status(_sent(emnify_sim, emnify_endpoints["offline"])[-1].id, EXPIRED)
    await wait_for(lambda: len(notified) == 2)
    await emnify_sim.wait_idle()
    await hass.async_block_till_done()
    assert len(notified) == 2
    assert "Remote gateway" in notified[1].data["message"]
    assert "expired" in notified[1].data["message"]


async def test_notify_on_failure_on_every_provider(
    hass: HomeAssistant, blueprints: Path, provider: Provider, wait_for: Callable[..., Any]
) -> None:
    """Each provider's failure report notifies once, its delivery report does not."""
    provider.hold()
    notified = async_mock_service(hass, "notify", "mobile_app_phone")
    await _use_blueprint(
        hass,
        NOTIFY,
        {
            "devices": [device_id(hass, "Remote gateway")],
            "notify_action": "notify.mobile_app_phone",
        },
    )
    reports = async_capture_events(hass, REPORT_EVENT)
    delivered = (await send_sms(hass, "Remote gateway", "STATUS?"))["messages"][0]["message_id"]
    provider.deliver(provider.reached("STATUS?")[0])
    await wait_for(
        lambda: any(e.data["message_id"] == delivered and e.data["final"] for e in reports)
    )
    await hass.async_block_till_done()
    assert notified == []

    await send_sms(hass, "Remote gateway", "REBOOT")
    provider.fail(provider.reached("REBOOT")[0])
    await wait_for(lambda: len(notified) == 1)
    await hass.async_block_till_done()
    assert len(notified) == 1
    assert "Remote gateway" in notified[0].data["message"]
    assert "failed" in notified[0].data["message"]


# ---------------------------------------------------------------- act on a reply


async def _reply_automation(hass: HomeAssistant, phrase: str | None) -> list[Any]:
    inputs: dict[str, Any] = {
        "devices": [device_id(hass, "Tracker")],
        "actions": [
            {
                "event": "test_reply_action",
                "event_data": {"text": "{{ reply_text }}", "device": "{{ device_name }}"},
            }
        ],
    }
    if phrase is not None:
        inputs["phrase"] = phrase
    ran = async_capture_events(hass, "test_reply_action")
    await _use_blueprint(hass, REPLY, inputs)
    return ran


async def test_act_on_reply_with_phrase(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    emnify_sim: EmnifySimulator,
    emnify_endpoints: dict[str, int],
    wait_for: Callable[..., Any],
) -> None:
    """The actions run with the reply text when the reply contains the phrase, in any case."""
    ran = await _reply_automation(hass, "status")
    received = async_capture_events(hass, "iot_sms_message_received")

    # The Tracker echoes every SMS: "ECHO: <text>".
    await send_sms(hass, "Tracker", "STATUS?")
    await wait_for(lambda: len(ran) == 1)
    await hass.async_block_till_done()
    assert [e.data for e in ran] == [{"text": "ECHO: STATUS?", "device": "Tracker"}]

    # A reply without the phrase.
    await send_sms(hass, "Tracker", "PING")
    await wait_for(lambda: len(received) == 2)
    await hass.async_block_till_done()
    assert len(ran) == 1

    # The phrase, but from a device that was not chosen.
    await emnify_sim.send_mo(emnify_endpoints["online"], "Status OK")
    await wait_for(lambda: len(received) == 3)
    await hass.async_block_till_done()
    assert len(ran) == 1


async def test_act_on_every_reply_without_phrase(
    hass: HomeAssistant,
    blueprints: Path,
    setup_emnify: MockConfigEntry,
    wait_for: Callable[..., Any],
) -> None:
    """With the phrase left empty every reply of the device runs the actions."""
    ran = await _reply_automation(hass, None)
    await send_sms(hass, "Tracker", "PING")
    await wait_for(lambda: len(ran) == 1)
    await hass.async_block_till_done()
    assert [e.data for e in ran] == [{"text": "ECHO: PING", "device": "Tracker"}]


async def test_act_on_reply_on_every_provider(
    hass: HomeAssistant, blueprints: Path, provider: Provider, wait_for: Callable[..., Any]
) -> None:
    """Each provider's incoming SMS runs the actions when it contains the phrase."""
    ran = await _reply_automation(hass, "status")
    received = async_capture_events(hass, "iot_sms_message_received")
    await provider.device_sends("Tracker", "all good")
    await provider.device_sends("Pump station", "STATUS 1")
    await provider.device_sends("Tracker", "Status: pump on")
    await wait_for(lambda: len(ran) == 1)
    await wait_for(lambda: len(received) == 3)
    await hass.async_block_till_done()
    assert [e.data for e in ran] == [{"text": "Status: pump on", "device": "Tracker"}]
