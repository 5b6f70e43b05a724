"""One notify entity per endpoint: notify.send_message sends an SMS to it."""

from __future__ import annotations

from homeassistant.components.notify import NotifyEntity, NotifyEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import IotSmsConfigEntry
from .entity import IotSmsEntity, async_add_endpoint_entities
from .messaging import async_send_sms

# Sends go straight to the provider; the client serialises nothing, so no limit is needed.
PARALLEL_UPDATES = 0

SMS_DESCRIPTION = NotifyEntityDescription(key="sms", translation_key="sms")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IotSmsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the SMS notify entity of every endpoint."""
    async_add_endpoint_entities(
        entry,
        async_add_entities,
        lambda coordinator, endpoint_id: [
            IotSmsNotifyEntity(coordinator, endpoint_id, SMS_DESCRIPTION)
        ],
    )


class IotSmsNotifyEntity(IotSmsEntity, NotifyEntity):
    """Send an SMS to the endpoint."""

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Send the message; the title is not part of an SMS."""
        await async_send_sms(self.coordinator.config_entry, self.endpoint_id, message)
