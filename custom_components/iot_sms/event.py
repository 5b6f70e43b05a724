"""Event entities: a device's replies, and replies from senders matching no endpoint."""

from __future__ import annotations

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import EndpointCoordinator, IotSmsConfigEntry
from .entity import IotSmsEntity, IotSmsHubEntity, async_add_endpoint_entities
from .inbound import ReceivedSms, signal_incoming

PARALLEL_UPDATES = 0
EVENT_MESSAGE_RECEIVED = "message_received"

INCOMING_DESCRIPTION = EventEntityDescription(
    key="incoming_sms", translation_key="incoming_sms", event_types=[EVENT_MESSAGE_RECEIVED]
)
UNKNOWN_SENDER_DESCRIPTION = EventEntityDescription(
    key="unknown_sender_sms",
    translation_key="unknown_sender_sms",
    event_types=[EVENT_MESSAGE_RECEIVED],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IotSmsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's unknown-sender entity and every endpoint's incoming SMS entity."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities([UnknownSenderEventEntity(coordinator, UNKNOWN_SENDER_DESCRIPTION)])
    async_add_endpoint_entities(
        entry,
        async_add_entities,
        lambda coordinator, endpoint_id: [
            IncomingSmsEventEntity(coordinator, endpoint_id, INCOMING_DESCRIPTION)
        ],
    )


class _IncomingMixin(EventEntity):
    """Fire the entity's event for each message the dispatcher hands it."""

    coordinator: EndpointCoordinator
    _signal_endpoint: str | None

    async def async_added_to_hass(self) -> None:
        """Subscribe once the entity exists."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_incoming(self.coordinator.config_entry.entry_id, self._signal_endpoint),
                self._handle_message,
            )
        )

    @callback
    def _handle_message(self, message: ReceivedSms) -> None:
        self._trigger_event(EVENT_MESSAGE_RECEIVED, message.as_event_data())
        self.async_write_ha_state()


class IncomingSmsEventEntity(_IncomingMixin, IotSmsEntity):
    """Fires when the endpoint sends an SMS."""

    def __init__(
        self,
        coordinator: EndpointCoordinator,
        endpoint_id: str,
        description: EventEntityDescription,
    ) -> None:
        """Listen to this endpoint's replies only."""
        super().__init__(coordinator, endpoint_id, description)
        self._signal_endpoint = endpoint_id


class UnknownSenderEventEntity(_IncomingMixin, IotSmsHubEntity):
    """Fires for SMS whose sender matches no known endpoint, so none is dropped."""

    _signal_endpoint: str | None = None
