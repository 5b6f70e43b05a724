"""1NCE Management API client (placeholder until written)."""

from __future__ import annotations

from typing import Any


class OnenceClient:
    """Placeholder: the 1NCE client is being written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Accept the factory's arguments."""
