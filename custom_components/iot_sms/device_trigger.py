"""Device triggers for endpoint devices: SMS received, delivered, failed or expired."""

from __future__ import annotations

from typing import Any

from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.const import CONF_DEVICE_ID, CONF_DOMAIN, CONF_PLATFORM, CONF_TYPE
from homeassistant.core import CALLBACK_TYPE, Event, HassJob, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .api.models import SmsStatus
from .compat import device_by_id, device_entry_ids, vol
from .const import DOMAIN, EVENT_DELIVERY_STATUS, EVENT_MESSAGE_RECEIVED
from .devices import endpoint_id_from_device, hub_identifier

TRIGGER_RECEIVED = "sms_received"
TRIGGER_DELIVERED = "sms_delivered"
TRIGGER_FAILED = "sms_failed"
# On the account's hub: replies whose sender matches no SIM of the account.
TRIGGER_UNKNOWN_SENDER = "sms_from_unknown_sender"
CONF_TEXT = "text"

# Which bus event each trigger listens to, and which statuses count.
_TRIGGERS: dict[str, tuple[str, frozenset[str] | None]] = {
    TRIGGER_RECEIVED: (EVENT_MESSAGE_RECEIVED, None),
    TRIGGER_DELIVERED: (EVENT_DELIVERY_STATUS, frozenset({SmsStatus.DELIVERED.value})),
    TRIGGER_FAILED: (
        EVENT_DELIVERY_STATUS,
        frozenset({SmsStatus.FAILED.value, SmsStatus.EXPIRED.value}),
    ),
}

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend(
    {
        vol.Required(CONF_TYPE): vol.In([*_TRIGGERS, TRIGGER_UNKNOWN_SENDER]),
        vol.Optional(CONF_TEXT): str,
    }
)


def _is_endpoint(hass: HomeAssistant, device_id: str) -> bool:
    device = device_by_id(dr.async_get(hass), device_id)
    return device is not None and any(
        endpoint_id_from_device(entry_id, device) is not None
        for entry_id in device_entry_ids(device)
    )


def _hub_entry_id(hass: HomeAssistant, device_id: str) -> str | None:
    """The config entry whose hub this device is, or None."""
    device = device_by_id(dr.async_get(hass), device_id)
    if device is None:
        return None
    return next(
        (e for e in device_entry_ids(device) if hub_identifier(e) in device.identifiers), None
    )


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    """Offer the three SMS triggers on SIM devices, the unknown-sender one on the hub."""
    if _is_endpoint(hass, device_id):
        kinds: list[str] = list(_TRIGGERS)
    elif _hub_entry_id(hass, device_id) is not None:
        kinds = [TRIGGER_UNKNOWN_SENDER]
    else:
        return []
    return [
        {CONF_PLATFORM: "device", CONF_DOMAIN: DOMAIN, CONF_DEVICE_ID: device_id, CONF_TYPE: kind}
        for kind in kinds
    ]


async def async_get_trigger_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """Received SMS can be narrowed to texts containing a phrase."""
    if config[CONF_TYPE] in (TRIGGER_RECEIVED, TRIGGER_UNKNOWN_SENDER):
        return {"extra_fields": vol.Schema({vol.Optional(CONF_TEXT): str})}
    return {}


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Listen to the bus event behind the trigger, for this device (or hub's account) only."""
    device_id: str = config[CONF_DEVICE_ID]
    if config[CONF_TYPE] == TRIGGER_UNKNOWN_SENDER:
        event_type, statuses = EVENT_MESSAGE_RECEIVED, None
        # Unknown senders have no device: the hub stands for its account.
        wanted = {"device_id": None, "config_entry_id": _hub_entry_id(hass, device_id)}
    else:
        event_type, statuses = _TRIGGERS[config[CONF_TYPE]]
        wanted = {"device_id": device_id}
    text: str | None = config.get(CONF_TEXT)
    needle = text.casefold() if text else None
    job = HassJob(action, f"iot_sms device trigger {config[CONF_TYPE]}")
    trigger_data = trigger_info["trigger_data"]

    @callback
    def matches(event_data: dict[str, Any]) -> bool:
        if any(event_data.get(key) != value for key, value in wanted.items()):
            return False
        if statuses is not None and event_data.get("status") not in statuses:
            return False
        return needle is None or needle in str(event_data.get("text", "")).casefold()

    @callback
    def handle(event: Event[dict[str, Any]]) -> None:
        hass.async_run_hass_job(
            job,
            {
                "trigger": {
                    **trigger_data,
                    "platform": "device",
                    "domain": DOMAIN,
                    "device_id": device_id,
                    "type": config[CONF_TYPE],
                    "event": event,
                    "description": f"{config[CONF_TYPE]} on {device_id}",
                }
            },
            event.context,
        )

    return hass.bus.async_listen(event_type, handle, event_filter=matches)
