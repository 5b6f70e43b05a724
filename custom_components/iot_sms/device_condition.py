"""Device conditions: an endpoint's last SMS status, the number of SMS pending on the hub."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.sensor import DOMAIN as SENSOR_DOMAIN
from homeassistant.const import CONF_ABOVE, CONF_CONDITION, CONF_DEVICE_ID, CONF_DOMAIN, CONF_TYPE
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import selector
from homeassistant.helpers.condition import ConditionCheckerType
from homeassistant.helpers.typing import ConfigType, TemplateVarsType

from .api.models import SmsStatus
from .compat import vol
from .const import DOMAIN
from .device_action import device_capabilities, endpoint_entry_id
from .sensor import LAST_STATUS_DESCRIPTION, PENDING_DESCRIPTION

CONDITION_LAST_STATUS = "last_status_is"
CONDITION_PENDING_ABOVE = "pending_above"
CONF_STATUS = "status"

# Each condition reads the sensor the user sees, so the two can never disagree.
_SENSORS: dict[str, str | None] = {
    CONDITION_LAST_STATUS: LAST_STATUS_DESCRIPTION.translation_key,
    CONDITION_PENDING_ABOVE: PENDING_DESCRIPTION.translation_key,
}

CONDITION_SCHEMA = cv.key_value_schemas(
    CONF_TYPE,
    {
        CONDITION_LAST_STATUS: cv.DEVICE_CONDITION_BASE_SCHEMA.extend(
            {
                vol.Required(CONF_TYPE): CONDITION_LAST_STATUS,
                vol.Required(CONF_STATUS): vol.In([status.value for status in SmsStatus]),
            }
        ),
        CONDITION_PENDING_ABOVE: cv.DEVICE_CONDITION_BASE_SCHEMA.extend(
            {
                vol.Required(CONF_TYPE): CONDITION_PENDING_ABOVE,
                vol.Required(CONF_ABOVE): vol.All(vol.Coerce(float), vol.Range(min=0)),
            }
        ),
    },
)


def _sensor_entity_id(hass: HomeAssistant, device_id: str, condition_type: str) -> str | None:
    """The device's enabled sensor behind this condition, looked up now (it may be renamed)."""
    return next(
        (
            entity.entity_id
            for entity in er.async_entries_for_device(er.async_get(hass), device_id)
            if entity.platform == DOMAIN
            and entity.domain == SENSOR_DOMAIN
            and entity.translation_key == _SENSORS[condition_type]
        ),
        None,
    )


async def async_get_conditions(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    """Offer each condition on the devices that have its sensor: endpoints and hubs."""
    return [
        {
            CONF_CONDITION: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: condition_type,
        }
        for condition_type in _SENSORS
        if _sensor_entity_id(hass, device_id, condition_type) is not None
    ]


async def async_get_condition_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """A status to compare with (those the provider reports), or a count to exceed."""
    if config[CONF_TYPE] == CONDITION_PENDING_ABOVE:
        field: dict[Any, Any] = {
            vol.Required(CONF_ABOVE): selector.NumberSelector(
                selector.NumberSelectorConfig(min=0, step=1, mode=selector.NumberSelectorMode.BOX)
            )
        }
        return {"extra_fields": vol.Schema(field)}
    entry_id = endpoint_entry_id(hass, config[CONF_DEVICE_ID])
    if entry_id is None:
        return {}
    reported = device_capabilities(hass, entry_id).statuses
    field = {
        vol.Required(CONF_STATUS): selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=[status.value for status in SmsStatus if status in reported],
                mode=selector.SelectSelectorMode.DROPDOWN,
                translation_key="sms_status",
            )
        )
    }
    return {"extra_fields": vol.Schema(field)}


@callback
def async_condition_from_config(hass: HomeAssistant, config: ConfigType) -> ConditionCheckerType:
    """Compare the sensor's current state; unknown or unavailable never matches."""
    device_id: str = config[CONF_DEVICE_ID]
    condition_type: str = config[CONF_TYPE]
    matches: Callable[[str], bool]
    if condition_type == CONDITION_LAST_STATUS:
        wanted: str = config[CONF_STATUS]

        def matches(state: str) -> bool:
            return state == wanted

    else:
        above: float = config[CONF_ABOVE]

        def matches(state: str) -> bool:
            try:
                return float(state) > above
            except ValueError:
                return False

    @callback
    def check(hass: HomeAssistant, variables: TemplateVarsType = None) -> bool:
        entity_id = _sensor_entity_id(hass, device_id, condition_type)
        state = hass.states.get(entity_id) if entity_id else None
        return state is not None and matches(state.state)

    return check
