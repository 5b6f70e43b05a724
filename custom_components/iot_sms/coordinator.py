"""Endpoint coordinator and the typed runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api.errors import AuthError, IotSmsError, IpNotAllowedError
from .api.models import Endpoint
from .api.numbers import normalize_msisdn
from .const import (
    CONF_MSISDN,
    CONF_TAG,
    DOMAIN,
    ENDPOINT_REFRESH_INTERVAL,
    LOGGER,
    SUBENTRY_SIM,
)

if TYPE_CHECKING:
    from .api.client import SmsClient
    from .inbound import InboundRouter
    from .tracker import MessageTracker


@dataclass(slots=True)
class IotSmsData:
    """Everything a loaded entry owns."""

    client: SmsClient
    coordinator: EndpointCoordinator
    tracker: MessageTracker
    inbound: InboundRouter
    hub_device_id: str


type IotSmsConfigEntry = ConfigEntry[IotSmsData]


class EndpointCoordinator(DataUpdateCoordinator[dict[str, Endpoint]]):
    """Keeps the account's endpoints (one device each) up to date."""

    config_entry: IotSmsConfigEntry

    def __init__(self, hass: HomeAssistant, entry: IotSmsConfigEntry, client: SmsClient) -> None:
        """Refresh endpoints periodically where the provider can list them."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=ENDPOINT_REFRESH_INTERVAL if client.lists_endpoints else None,
        )
        self.client = client
        # Endpoints the user added by hand belong to a subentry; their entities must too.
        self.subentry_ids: dict[str, str] = {}

    def find(self, key: str) -> Endpoint | None:
        """Find an endpoint by id or MSISDN (with or without + / 00)."""
        if key in self.data:
            return self.data[key]
        digits = normalize_msisdn(key)
        return next(
            (e for e in self.data.values() if digits and e.msisdn == digits),
            None,
        )

    async def _async_update_data(self) -> dict[str, Endpoint]:
        if not self.client.lists_endpoints:
            sims = [
                sub
                for sub in self.config_entry.subentries.values()
                if sub.subentry_type == SUBENTRY_SIM
            ]
            self.subentry_ids = {sub.data[CONF_MSISDN]: sub.subentry_id for sub in sims}
            return {
                sub.data[CONF_MSISDN]: Endpoint(
                    id=sub.data[CONF_MSISDN], name=sub.title, msisdn=sub.data[CONF_MSISDN]
                )
                for sub in sims
            }
        try:
            endpoints = await self.client.async_list_endpoints(
                self.config_entry.options.get(CONF_TAG) or None
            )
        except (AuthError, IpNotAllowedError) as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        except IotSmsError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        return {endpoint.id: endpoint for endpoint in endpoints}
