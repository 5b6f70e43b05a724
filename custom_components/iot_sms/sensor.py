"""Sensors: last SMS status and last incoming SMS per endpoint, pending count on the hub."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.models import SmsStatus
from .coordinator import EndpointCoordinator, IotSmsConfigEntry
from .entity import IotSmsEntity, IotSmsHubEntity, async_add_endpoint_entities
from .inbound import ReceivedSms, signal_incoming
from .tracker import TrackedMessage, signal_message_updated, signal_pending_changed

PARALLEL_UPDATES = 0
MAX_STATE_LENGTH = 255

LAST_STATUS_DESCRIPTION = SensorEntityDescription(
    key="last_sms_status",
    translation_key="last_sms_status",
    device_class=SensorDeviceClass.ENUM,
    options=[status.value for status in SmsStatus],
)
LAST_INCOMING_DESCRIPTION = SensorEntityDescription(
    key="last_incoming_sms", translation_key="last_incoming_sms"
)
# A unit, not only a state class: the automation editor's "value changes" device trigger
# needs one to offer its fields.
PENDING_DESCRIPTION = SensorEntityDescription(
    key="pending_sms",
    translation_key="pending_sms",
    native_unit_of_measurement="messages",
    state_class=SensorStateClass.MEASUREMENT,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IotSmsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub's pending counter and every endpoint's sensors."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities([PendingSmsSensor(coordinator, PENDING_DESCRIPTION)])
    async_add_endpoint_entities(
        entry,
        async_add_entities,
        lambda coordinator, endpoint_id: [
            LastSmsStatusSensor(coordinator, endpoint_id, LAST_STATUS_DESCRIPTION),
            LastIncomingSmsSensor(coordinator, endpoint_id, LAST_INCOMING_DESCRIPTION),
        ],
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class LastSmsStatusSensor(IotSmsEntity, RestoreSensor):
    """Delivery state of the most recent SMS sent to the endpoint."""

    def __init__(
        self,
        coordinator: EndpointCoordinator,
        endpoint_id: str,
        description: SensorEntityDescription,
    ) -> None:
        """Start empty; the tracker or the restored state fills it."""
        super().__init__(coordinator, endpoint_id, description)
        self._attr_extra_state_attributes: dict[str, Any] = {}

    async def async_added_to_hass(self) -> None:
        """Show the tracked message, else the state from before a restart."""
        await super().async_added_to_hass()
        message = self.coordinator.config_entry.runtime_data.tracker.last_for_endpoint(
            self.endpoint_id
        )
        if message is not None:
            self._show(message)
        elif (last := await self.async_get_last_state()) is not None and (
            last.state in self.options
        ):
            self._attr_native_value = last.state
            self._attr_extra_state_attributes = dict(last.attributes)
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_message_updated(self.coordinator.config_entry.entry_id, self.endpoint_id),
                self._handle_update,
            )
        )

    @property
    def options(self) -> list[str]:
        """The contract's states this provider can reach (no "canceled" where it cannot cancel)."""
        statuses = self.coordinator.client.capabilities.statuses
        if not self.coordinator.client.capabilities.cancel:
            statuses = statuses - {SmsStatus.CANCELED}
        return [status.value for status in SmsStatus if status in statuses]

    def _show(self, message: TrackedMessage) -> None:
        self._attr_native_value = message.status.value
        self._attr_extra_state_attributes = {
            "message_id": message.message_id,
            "submitted_at": _iso(message.submitted_at),
            "finalized_at": _iso(message.finalized_at),
            "parts": len(message.parts),
        }

    @callback
    def _handle_update(self, message: TrackedMessage) -> None:
        latest = self.coordinator.config_entry.runtime_data.tracker.last_for_endpoint(
            self.endpoint_id
        )
        if latest is message:
            self._show(message)
            self.async_write_ha_state()


class LastIncomingSmsSensor(IotSmsEntity, RestoreSensor):
    """Text of the last SMS the endpoint sent, for dashboards."""

    async def async_added_to_hass(self) -> None:
        """Restore the last text and subscribe to new ones."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None and (
            data := await self.async_get_last_sensor_data()
        ) is not None:
            self._attr_native_value = data.native_value
            self._attr_extra_state_attributes = dict(last.attributes)
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_incoming(self.coordinator.config_entry.entry_id, self.endpoint_id),
                self._handle_message,
            )
        )

    @callback
    def _handle_message(self, message: ReceivedSms) -> None:
        self._attr_native_value = message.text[:MAX_STATE_LENGTH]
        self._attr_extra_state_attributes = {
            "received_at": message.received_at.isoformat(),
            "sender": message.sender,
            "message_id": message.message_id,
            "incomplete": message.incomplete,
        }
        self.async_write_ha_state()


class PendingSmsSensor(IotSmsHubEntity, SensorEntity):
    """Outgoing messages of the account that are not final yet."""

    async def async_added_to_hass(self) -> None:
        """Subscribe to every tracker change."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_pending_changed(self.coordinator.config_entry.entry_id),
                self.async_write_ha_state,
            )
        )

    @property
    def native_value(self) -> int:
        """Count straight from the tracker, so it can never drift."""
        return self.coordinator.config_entry.runtime_data.tracker.pending_count
