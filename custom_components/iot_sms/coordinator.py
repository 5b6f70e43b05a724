"""Endpoint coordinator and the typed runtime data of a config entry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
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

# How often an account whose SIMs cannot be listed is checked (one status request, README:
# Configuration -> Eseye): an outage shows within minutes at 288 small requests a day.
ACCOUNT_CHECK_INTERVAL: Final = timedelta(minutes=5)
MAX_LOOKED_FOR: Final = 1000


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
    """Keeps the account's endpoints (one device each) up to date and the account checked.

    Where the provider can list endpoints, listing them is the check; otherwise the SIMs are
    the entry's subentries and a cheap account request is. Either way a failure makes every
    entity unavailable and is logged once, and the first success after it once more.
    """

    config_entry: IotSmsConfigEntry

    def __init__(self, hass: HomeAssistant, entry: IotSmsConfigEntry, client: SmsClient) -> None:
        """Refresh endpoints, or check the account, periodically."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=(
                ENDPOINT_REFRESH_INTERVAL
                if client.capabilities.lists_endpoints
                else ACCOUNT_CHECK_INTERVAL
            ),
        )
        self.client = client
        # Endpoints the user added by hand belong to a subentry; their entities must too.
        self.subentry_ids: dict[str, str] = {}
        # Unknown endpoint ids already looked for, and when: a filtered-out endpoint that keeps
        # sending must not turn every reply into a full listing.
        self._looked_for: dict[str, float] = {}

    @callback
    def async_endpoint_unknown(self, endpoint_id: str) -> None:
        """A callback named an endpoint that is no device yet: look for new endpoints now."""
        if not self.client.capabilities.lists_endpoints or endpoint_id in self.data:
            return
        now = time.monotonic()
        interval = ENDPOINT_REFRESH_INTERVAL.total_seconds()
        if self._looked_for.get(endpoint_id, -interval) > now - interval:
            return
        if len(self._looked_for) >= MAX_LOOKED_FOR:
            self._looked_for = {k: t for k, t in self._looked_for.items() if t > now - interval}
        self._looked_for[endpoint_id] = now
        # Debounced by the coordinator: a burst of replies from new endpoints is one listing.
        self.config_entry.async_create_background_task(
            self.hass, self.async_request_refresh(), "iot_sms endpoint discovery"
        )

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
        lists = self.client.capabilities.lists_endpoints
        try:
            if lists:
                endpoints = await self.client.async_list_endpoints(
                    self.config_entry.options.get(CONF_TAG) or None
                )
            else:
                # The SIMs are the user's subentries; one cheap request shows the account works.
                await self.client.async_get_account()
        except (AuthError, IpNotAllowedError) as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="auth_failed"
            ) from err
        except IotSmsError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed" if lists else "account_unavailable",
                translation_placeholders={"error": str(err)},
            ) from err
        if not lists:
            return self._subentry_endpoints()
        return {endpoint.id: endpoint for endpoint in endpoints}

    def _subentry_endpoints(self) -> dict[str, Endpoint]:
        """The SIMs the user added by hand, by MSISDN."""
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
