"""The hands a provider-parametrised test plays the provider and its devices with.

One subclass per provider (tests/provider_fixtures.py, provider_onence.py, provider_supersim.py)
says how its simulator does each thing; the shared tests use only these methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.iot_sms.api.models import Capabilities

# Long enough that a simulated device never gets further on its own during a test.
HOLD_DELAY = 60.0


@dataclass
class Provider(ABC):
    """A loaded account of one provider and the hands that play the provider and the devices.

    One subclass per provider says how its simulator does each thing; tests use only these.
    """

    name: str
    entry: MockConfigEntry
    sim: Any
    hub_slug: str
    addresses: dict[str, Any] = field(default_factory=dict)

    # What the provider's documentation says it can do (not what the client claims).
    statuses: ClassVar[tuple[str, ...]] = (
        "queued",
        "sent",
        "buffered",
        "delivered",
        "failed",
        "expired",
        "canceled",
    )
    splits_long_text: ClassVar[bool] = True
    cancels: ClassVar[bool] = True
    manufacturer: ClassVar[str]
    # Part of the path of the provider's send request (and not of its status lookups' paths
    # where they differ), for faults aimed at sends.
    send_path: ClassVar[str]

    @property
    def pending_sensor(self) -> str:
        return f"sensor.{self.hub_slug}_pending_sms"

    @property
    def unknown_sender_event(self) -> str:
        return f"event.{self.hub_slug}_incoming_sms_from_unknown_sender"

    @property
    def capabilities(self) -> Capabilities:
        """What the loaded client says it can do."""
        return self.entry.runtime_data.client.capabilities

    def hold(self) -> None:
        """Devices stop progressing by themselves: the test drives every status by hand."""
        self.sim.delivery_delay = HOLD_DELAY

    async def device_sends(self, name: str, text: str) -> None:
        """The device called `name` sends an SMS to the account."""
        await self.sim.send_mo(self.addresses[name], text)

    @abstractmethod
    def msisdn(self, name: str) -> str:
        """The sender address of the device called `name`, as the provider reports it."""

    @abstractmethod
    async def stranger_sends(self, text: str) -> str:
        """A SIM or number that is no device of this account sends an SMS; returns the sender."""

    @abstractmethod
    def deliver(self, message_id: str) -> None:
        """The provider reports the SMS (part) with this id delivered."""

    @abstractmethod
    def fail(self, message_id: str) -> None:
        """The provider reports the SMS (part) with this id failed."""

    @abstractmethod
    def reached(self, text: str) -> list[str]:
        """Ids of the SMS (parts) the provider accepted whose text starts with `text`, in order."""

    @abstractmethod
    def is_canceled_at_provider(self, message_id: str) -> bool:
        """Whether the provider itself holds the SMS (part) as canceled."""

    async def wait_idle(self) -> None:
        await self.sim.wait_idle()
