"""Device action for endpoint devices: send an SMS, through the iot_sms.send_sms action."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_DEVICE_ID, CONF_DOMAIN, CONF_TYPE
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import selector
from homeassistant.helpers.template import Template
from homeassistant.helpers.typing import ConfigType, TemplateVarsType

from .api.models import Capabilities
from .compat import device_by_id, device_entry_ids, vol
from .const import ATTR_MESSAGE, ATTR_SENDER, ATTR_VALIDITY, DOMAIN, SERVICE_SEND_SMS
from .coordinator import IotSmsConfigEntry
from .devices import endpoint_id_from_device
from .services import SENDER_SCHEMA

ACTION_SEND_SMS = "send_sms"

# `wait_for_reply` is left out: its only effect is the action's response, which a device
# action cannot hand back. The message is a template, so a reply can quote the trigger.
ACTION_SCHEMA = cv.DEVICE_ACTION_BASE_SCHEMA.extend(
    {
        vol.Required(CONF_TYPE): ACTION_SEND_SMS,
        vol.Required(ATTR_MESSAGE): cv.template,
        vol.Optional(ATTR_SENDER): SENDER_SCHEMA,
        # The range is checked by the send_sms action, for the same translated error.
        vol.Optional(ATTR_VALIDITY): cv.time_period,
    }
)


def endpoint_entry_id(hass: HomeAssistant, device_id: str) -> str | None:
    """The config entry whose endpoint this device is, or None (the hub, foreign devices)."""
    device = device_by_id(dr.async_get(hass), device_id)
    if device is None:
        return None
    return next(
        (e for e in device_entry_ids(device) if endpoint_id_from_device(e, device) is not None),
        None,
    )


def device_capabilities(hass: HomeAssistant, entry_id: str) -> Capabilities:
    """What the device's provider can do; everything while the account is not loaded."""
    entry: IotSmsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.state is not ConfigEntryState.LOADED:
        # Unknown until it loads: offer every field, the action explains what does not apply.
        return Capabilities()
    return entry.runtime_data.client.capabilities


async def async_get_actions(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    """Offer "Send SMS" on SIM devices; the hub has no number to send to."""
    if endpoint_entry_id(hass, device_id) is None:
        return []
    return [{CONF_DOMAIN: DOMAIN, CONF_DEVICE_ID: device_id, CONF_TYPE: ACTION_SEND_SMS}]


async def async_get_action_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """The message, and the options the device's provider supports."""
    entry_id = endpoint_entry_id(hass, config[CONF_DEVICE_ID])
    if entry_id is None:
        return {}
    capabilities = device_capabilities(hass, entry_id)
    fields: dict[Any, Any] = {
        vol.Required(ATTR_MESSAGE): selector.TextSelector(
            selector.TextSelectorConfig(multiline=True)
        )
    }
    if capabilities.custom_sender:
        fields[vol.Optional(ATTR_SENDER)] = selector.TextSelector()
    if capabilities.validity:
        fields[vol.Optional(ATTR_VALIDITY)] = selector.DurationSelector(
            selector.DurationSelectorConfig(enable_day=True)
        )
    return {"extra_fields": vol.Schema(fields)}


async def async_call_action_from_config(
    hass: HomeAssistant,
    config: ConfigType,
    variables: TemplateVarsType,
    context: Context | None,
) -> None:
    """Send through the action, so the editor's "Run action" reports its validation errors."""
    message: Template = config[ATTR_MESSAGE]
    data: dict[str, Any] = {
        CONF_DEVICE_ID: config[CONF_DEVICE_ID],
        ATTR_MESSAGE: str(message.async_render(variables, parse_result=False)),
    }
    data.update({key: config[key] for key in (ATTR_SENDER, ATTR_VALIDITY) if key in config})
    await hass.services.async_call(DOMAIN, SERVICE_SEND_SMS, data, blocking=True, context=context)
