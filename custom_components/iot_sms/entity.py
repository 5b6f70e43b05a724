"""Base entities: device info for endpoints and the hub, dynamic endpoint discovery."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .compat import via_device
from .coordinator import EndpointCoordinator, IotSmsConfigEntry
from .devices import endpoint_identifier, hub_identifier


class IotSmsEntity(CoordinatorEntity[EndpointCoordinator]):
    """An entity of one endpoint device."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: EndpointCoordinator, endpoint_id: str, description: EntityDescription
    ) -> None:
        """Attach the entity to the endpoint's device, under the account's hub."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        endpoint = coordinator.data[endpoint_id]
        self.entity_description = description
        self.endpoint_id = endpoint_id
        self._attr_unique_id = f"{entry.unique_id}_{endpoint_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={endpoint_identifier(entry.entry_id, endpoint_id)},
            name=endpoint.name,
            manufacturer=coordinator.client.provider_name,
            model="SIM endpoint",
            serial_number=endpoint.iccid,
        )
        self._attr_device_info.update(
            via_device(entry.runtime_data.hub_device_id, hub_identifier(entry.entry_id))
        )

    @property
    def available(self) -> bool:
        """An endpoint removed from the account is unavailable until its device is cleaned up."""
        return super().available and self.endpoint_id in self.coordinator.data


class IotSmsHubEntity(CoordinatorEntity[EndpointCoordinator]):
    """An entity of the account's hub device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: EndpointCoordinator, description: EntityDescription) -> None:
        """Attach the entity to the hub device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.unique_id}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={hub_identifier(entry.entry_id)})


@callback
def async_add_endpoint_entities(
    entry: IotSmsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: Callable[[EndpointCoordinator, str], Iterable[Entity]],
) -> None:
    """Add entities for every endpoint now and for endpoints that appear later."""
    coordinator = entry.runtime_data.coordinator
    known: set[str] = set()

    @callback
    def add_new() -> None:
        new = [endpoint_id for endpoint_id in coordinator.data if endpoint_id not in known]
        known.intersection_update(coordinator.data)
        for endpoint_id in new:
            known.add(endpoint_id)
            async_add_entities(
                factory(coordinator, endpoint_id),
                config_subentry_id=coordinator.subentry_ids.get(endpoint_id),
            )

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))
