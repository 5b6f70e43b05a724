"""The iot_sms.send_sms and iot_sms.cancel_sms actions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr

from .api.errors import IotSmsError
from .api.models import MessagePart
from .api.numbers import normalize_msisdn
from .compat import device_by_id, device_entry_ids, vol
from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DEVICE_ID,
    ATTR_MESSAGE,
    ATTR_MESSAGE_ID,
    ATTR_RECIPIENT,
    ATTR_SENDER,
    ATTR_VALIDITY,
    ATTR_WAIT_FOR_REPLY,
    DOMAIN,
    SERVICE_CANCEL_SMS,
    SERVICE_SEND_SMS,
)
from .coordinator import IotSmsConfigEntry
from .devices import async_device_id, endpoint_id_from_device
from .inbound import ReceivedSms
from .messaging import (
    PartiallySent,
    async_send_planned,
    check_send_options,
    plan_sms,
    user_error,
)
from .tracker import CancelResult, TrackedMessage

MAX_WAIT = timedelta(hours=1)
MIN_VALIDITY = timedelta(minutes=1)
MAX_VALIDITY = timedelta(days=7)
# Sends in flight at once for a fleet command; the clients pace requests to provider limits.
SEND_CONCURRENCY = 16
# A numeric sender (short code or MSISDN) or an alphanumeric one of up to 11 characters.
SENDER_SCHEMA = vol.All(cv.string, vol.Match(r"^(\+?[0-9]{1,15}|[A-Za-z0-9 ]{1,11})$"))

SEND_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
            vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
            vol.Optional(ATTR_RECIPIENT): cv.string,
            vol.Required(ATTR_MESSAGE): cv.string,
            vol.Optional(ATTR_SENDER): SENDER_SCHEMA,
            # The range is checked in the action, for an error that says it in words.
            vol.Optional(ATTR_VALIDITY): cv.time_period,
            vol.Optional(ATTR_WAIT_FOR_REPLY): vol.All(
                cv.time_period, vol.Range(min=timedelta(seconds=1), max=MAX_WAIT)
            ),
        }
    ),
    cv.has_at_least_one_key(ATTR_DEVICE_ID, ATTR_RECIPIENT),
)
CANCEL_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
            vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
            vol.Optional(ATTR_MESSAGE_ID): cv.string,
        }
    ),
    cv.has_at_least_one_key(ATTR_DEVICE_ID, ATTR_MESSAGE_ID),
)


@dataclass(frozen=True, slots=True)
class _Target:
    entry: IotSmsConfigEntry
    endpoint_id: str


def _validation_error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _loaded_entry(hass: HomeAssistant, entry_id: str) -> IotSmsConfigEntry:
    entry: IotSmsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise _validation_error("unknown_entry", entry_id=entry_id)
    if entry.state is not ConfigEntryState.LOADED:
        raise _validation_error("not_loaded", title=entry.title)
    return entry


def _targets_from_devices(hass: HomeAssistant, device_ids: list[str]) -> list[_Target]:
    registry = dr.async_get(hass)
    targets = []
    for device_id in device_ids:
        device = device_by_id(registry, device_id)
        found = (
            [
                (entry_id, endpoint_id)
                for entry_id in device_entry_ids(device)
                if (endpoint_id := endpoint_id_from_device(entry_id, device)) is not None
            ]
            if device
            else []
        )
        if not found:
            raise _validation_error("unknown_device", device_id=device_id)
        entry_id, endpoint_id = found[0]
        targets.append(_Target(_loaded_entry(hass, entry_id), endpoint_id))
    return targets


def _send_targets(hass: HomeAssistant, data: dict[str, Any]) -> list[_Target]:
    if ATTR_DEVICE_ID in data:
        return _targets_from_devices(hass, data[ATTR_DEVICE_ID])
    if ATTR_CONFIG_ENTRY_ID not in data:
        raise _validation_error("recipient_needs_entry")
    entry = _loaded_entry(hass, data[ATTR_CONFIG_ENTRY_ID])
    recipient: str = data[ATTR_RECIPIENT].strip()
    endpoint = entry.runtime_data.coordinator.find(recipient)
    if endpoint is not None:
        return [_Target(entry, endpoint.id)]
    digits = normalize_msisdn(recipient)
    if digits is None:
        raise _validation_error("invalid_recipient", recipient=recipient)
    return [_Target(entry, digits)]


def _message_response(hass: HomeAssistant, target: _Target, message: TrackedMessage) -> Any:
    return {
        "device_id": async_device_id(hass, target.entry.entry_id, target.endpoint_id),
        "message_id": message.message_id,
        "parts": len(message.parts),
        "status": message.status.value,
        "reconciled": message.reconciled,
    }


def _reply_response(reply: ReceivedSms) -> Any:
    return {
        "text": reply.text,
        "received_at": reply.received_at.isoformat(),
        "message_id": reply.message_id,
        "sender": reply.sender,
        "device_id": reply.device_id,
    }


def _failed_response(hass: HomeAssistant, target: _Target, err: HomeAssistantError | None) -> Any:
    return {
        "device_id": async_device_id(hass, target.entry.entry_id, target.endpoint_id),
        "message_id": None,
        "parts": 0,
        "status": None,
        "error": err.translation_key if err else None,
    }


async def _async_send(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    targets = _send_targets(hass, call.data)
    if not targets:  # an empty device list
        raise _validation_error("no_target")
    # Everything that can be checked is checked for every target before anything is sent.
    plans = [plan_sms(target.entry, call.data[ATTR_MESSAGE]) for target in targets]
    validity: timedelta | None = call.data.get(ATTR_VALIDITY)
    if validity is not None and not MIN_VALIDITY <= validity <= MAX_VALIDITY:
        raise _validation_error(
            "validity_out_of_range",
            minimum=str(int(MIN_VALIDITY.total_seconds() // 60)),
            maximum=str(MAX_VALIDITY.days),
        )
    for target in targets:
        check_send_options(target.entry, sender=call.data.get(ATTR_SENDER), validity=validity)
    wait: timedelta | None = call.data.get(ATTR_WAIT_FOR_REPLY)
    # Listen before sending: a fast device can answer before the send call returns. The
    # routers are kept here because an unload during the wait drops the entry's runtime data.
    waiters = [
        (router, t.endpoint_id, router.async_expect_reply(t.endpoint_id))
        for t in targets
        if wait and (router := t.entry.runtime_data.inbound)
    ]
    try:
        # One failing target must not hide what went out to the others (a retry of the whole
        # call would send those twice): every target is tried and reported. A fleet goes out
        # a few at a time; each client keeps its provider's request limit.
        semaphore = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(
            target: _Target, parts: list[MessagePart]
        ) -> tuple[HomeAssistantError | None, TrackedMessage | None]:
            async with semaphore:
                try:
                    return None, await async_send_planned(
                        target.entry,
                        target.endpoint_id,
                        parts,
                        sender=call.data.get(ATTR_SENDER),
                        validity=validity,
                    )
                except PartiallySent as err:
                    return err, err.message
                except HomeAssistantError as err:
                    return err, None

        results = await asyncio.gather(
            *(send(target, parts) for target, parts in zip(targets, plans, strict=True))
        )
        if all(message is None for _err, message in results):
            raise next(err for err, _message in results if err is not None)
        reply = await _async_first_reply([w for _r, _e, w in waiters], wait) if wait else None
    finally:
        for router, endpoint_id, waiter in waiters:
            router.async_forget_reply(endpoint_id, waiter)
    # Built now, not when each send returned: after a wait the status is what it is now.
    messages = [
        _send_response(hass, target, err, message)
        for target, (err, message) in zip(targets, results, strict=True)
    ]
    return {"messages": messages, "reply": _reply_response(reply) if reply else None}


def _send_response(
    hass: HomeAssistant,
    target: _Target,
    err: HomeAssistantError | None,
    message: TrackedMessage | None,
) -> Any:
    if message is None:
        return _failed_response(hass, target, err)
    response = _message_response(hass, target, message)
    return response if err is None else response | {"error": err.translation_key}


async def _async_first_reply(
    waiters: list[asyncio.Future[ReceivedSms]], wait: timedelta
) -> ReceivedSms | None:
    done, _pending = await asyncio.wait(
        waiters, timeout=wait.total_seconds(), return_when=asyncio.FIRST_COMPLETED
    )
    return next((f.result() for f in done if not f.cancelled()), None)


def _cancel_candidates(hass: HomeAssistant, data: dict[str, Any]) -> list[_Target]:
    if ATTR_DEVICE_ID in data:
        return _targets_from_devices(hass, data[ATTR_DEVICE_ID])
    if ATTR_CONFIG_ENTRY_ID not in data:
        raise _validation_error("message_needs_entry")
    entry = _loaded_entry(hass, data[ATTR_CONFIG_ENTRY_ID])
    message = entry.runtime_data.tracker.get(data[ATTR_MESSAGE_ID])
    if message is None:
        raise _validation_error("unknown_message", message_id=data[ATTR_MESSAGE_ID])
    return [_Target(entry, message.endpoint_id)]


async def _async_cancel(call: ServiceCall) -> ServiceResponse:
    result = CancelResult()
    targets = _cancel_candidates(call.hass, call.data)
    if cannot := next(
        (t for t in targets if not t.entry.runtime_data.client.capabilities.cancel), None
    ):
        raise _validation_error("cancel_not_supported", title=cannot.entry.title)
    for target in targets:
        tracker = target.entry.runtime_data.tracker
        if ATTR_MESSAGE_ID in call.data:
            selected = [m for m in [tracker.get(call.data[ATTR_MESSAGE_ID])] if m]
        else:
            selected = [m for m in tracker.for_endpoint(target.endpoint_id) if not m.final]
        for message in selected:
            try:
                outcome = await tracker.async_cancel(message)
            except IotSmsError as err:
                raise user_error(target.entry, err) from err
            result.canceled.extend(outcome.canceled)
            result.not_cancellable.update(outcome.not_cancellable)
    if not result.canceled:
        if not result.not_cancellable:
            raise _validation_error("nothing_to_cancel")
        message_id, reason = next(iter(result.not_cancellable.items()))
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="not_cancellable",
            translation_placeholders={"message_id": message_id, "reason": reason},
        )
    return {
        "canceled": list[Any](result.canceled),
        "not_cancellable": [
            {"message_id": message_id, "reason": reason}
            for message_id, reason in result.not_cancellable.items()
        ],
    }


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions once, for every entry of the integration."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_SEND_SMS,
        _async_send,
        schema=SEND_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CANCEL_SMS,
        _async_cancel,
        schema=CANCEL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
