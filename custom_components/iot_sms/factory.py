"""Builds the provider client for a config entry's data; the only place that knows them all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import ClientSession
from homeassistant.const import CONF_API_TOKEN, CONF_PASSWORD, CONF_USERNAME

from .api.client import SmsClient
from .api.emnify import EmnifyClient
from .api.eseye import EseyeClient
from .api.onence import OnenceClient
from .api.supersim import SuperSimClient
from .const import (
    CONF_ACCOUNT_SID,
    CONF_API_MSISDN,
    CONF_AUTH_TOKEN,
    CONF_BASE_URL,
    CONF_CALLBACK_SECRET,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_PROVIDER,
    CONF_TOKEN_URL,
    CONF_VENDOR,
    CONF_WEBHOOK_SECRET,
    DEFAULT_1NCE_URL,
    DEFAULT_EMNIFY_URL,
    DEFAULT_ESEYE_URL,
    DEFAULT_KORE_SUPERSIM_URL,
    DEFAULT_KORE_TOKEN_URL,
    DEFAULT_TWILIO_SUPERSIM_URL,
    PROVIDER_1NCE,
    PROVIDER_ESEYE,
    PROVIDER_SUPERSIM,
    VENDOR_KORE,
)


def create_client(
    session: ClientSession, data: Mapping[str, Any], callback_url: str | None = None
) -> SmsClient:
    """Return the client for an entry's (or a flow's) data."""
    provider = data.get(CONF_PROVIDER)
    if provider == PROVIDER_ESEYE:
        return EseyeClient(
            session,
            data[CONF_USERNAME],
            data[CONF_PASSWORD],
            data.get(CONF_BASE_URL) or DEFAULT_ESEYE_URL,
            callback_url=callback_url,
            api_msisdn=data.get(CONF_API_MSISDN) or None,
        )
    if provider == PROVIDER_1NCE:
        return OnenceClient(
            session,
            data[CONF_USERNAME],
            data[CONF_PASSWORD],
            data.get(CONF_BASE_URL) or DEFAULT_1NCE_URL,
        )
    if provider == PROVIDER_SUPERSIM:
        if data.get(CONF_VENDOR) == VENDOR_KORE:
            return SuperSimClient.kore(
                session,
                data[CONF_CLIENT_ID],
                data[CONF_CLIENT_SECRET],
                data.get(CONF_BASE_URL) or DEFAULT_KORE_SUPERSIM_URL,
                token_url=data.get(CONF_TOKEN_URL) or DEFAULT_KORE_TOKEN_URL,
                webhook_secret=data.get(CONF_WEBHOOK_SECRET) or None,
                callback_url=callback_url,
            )
        return SuperSimClient.twilio(
            session,
            data[CONF_ACCOUNT_SID],
            data[CONF_AUTH_TOKEN],
            data.get(CONF_BASE_URL) or DEFAULT_TWILIO_SUPERSIM_URL,
            callback_url=callback_url,
        )
    return EmnifyClient(
        session,
        data[CONF_API_TOKEN],
        data.get(CONF_BASE_URL) or DEFAULT_EMNIFY_URL,
        callback_secret=data.get(CONF_CALLBACK_SECRET) or None,
    )
