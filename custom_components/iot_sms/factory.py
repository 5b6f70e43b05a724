"""Builds the provider client for a config entry's data; the only place that knows both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import ClientSession
from homeassistant.const import CONF_API_TOKEN, CONF_PASSWORD, CONF_USERNAME

from .api.client import SmsClient
from .api.emnify import EmnifyClient
from .api.eseye import EseyeClient
from .const import (
    CONF_API_MSISDN,
    CONF_BASE_URL,
    CONF_CALLBACK_SECRET,
    CONF_PROVIDER,
    DEFAULT_EMNIFY_URL,
    DEFAULT_ESEYE_URL,
    PROVIDER_ESEYE,
)


def create_client(
    session: ClientSession, data: Mapping[str, Any], callback_url: str | None = None
) -> SmsClient:
    """Return the client for an entry's (or a flow's) data."""
    if data.get(CONF_PROVIDER) == PROVIDER_ESEYE:
        return EseyeClient(
            session,
            data[CONF_USERNAME],
            data[CONF_PASSWORD],
            data.get(CONF_BASE_URL) or DEFAULT_ESEYE_URL,
            callback_url=callback_url,
            api_msisdn=data.get(CONF_API_MSISDN) or None,
        )
    return EmnifyClient(
        session,
        data[CONF_API_TOKEN],
        data.get(CONF_BASE_URL) or DEFAULT_EMNIFY_URL,
        callback_secret=data.get(CONF_CALLBACK_SECRET) or None,
    )
