"""Super SIM SMS Commands client (placeholder until written)."""

from __future__ import annotations

from typing import Any


class SuperSimClient:
    """Placeholder: the Super SIM client is being written."""

    @classmethod
    def twilio(cls, *args: Any, **kwargs: Any) -> Any:
        """Accept the factory's arguments."""

    @classmethod
    def kore(cls, *args: Any, **kwargs: Any) -> Any:
        """Accept the factory's arguments."""
