"""Constants for the IoT SIM SMS integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "iot_sms"
LOGGER = logging.getLogger(__package__)

CONF_PROVIDER: Final = "provider"
PROVIDER_EMNIFY: Final = "emnify"
PROVIDER_ESEYE: Final = "eseye"
PROVIDER_1NCE: Final = "1nce"
PROVIDER_SUPERSIM: Final = "supersim"

# Super SIM is sold by Twilio and by KORE: one API, two hosts and two ways to authenticate.
CONF_VENDOR: Final = "vendor"
VENDOR_TWILIO: Final = "twilio"
VENDOR_KORE: Final = "kore"
CONF_ACCOUNT_SID: Final = "account_sid"
CONF_AUTH_TOKEN: Final = "auth_token"  # noqa: S105 - a key name
CONF_CLIENT_ID: Final = "client_id"
CONF_CLIENT_SECRET: Final = "client_secret"  # noqa: S105 - a key name
CONF_TOKEN_URL: Final = "token_url"  # noqa: S105 - a key name
CONF_WEBHOOK_SECRET: Final = "webhook_secret"  # noqa: S105 - a key name

CONF_BASE_URL: Final = "base_url"
CONF_API_MSISDN: Final = "api_msisdn"
CONF_CALLBACK_SECRET: Final = "callback_secret"  # noqa: S105 - a key name
CONF_TAG: Final = "tag"
CONF_MSISDN: Final = "msisdn"
CONF_ADVANCED: Final = "advanced"

SUBENTRY_SIM: Final = "sim"

DEFAULT_EMNIFY_URL: Final = "https://cdn.emnify.net"
DEFAULT_ESEYE_URL: Final = "https://messaging.eseye.com"
DEFAULT_1NCE_URL: Final = "https://api.1nce.com/management-api"
DEFAULT_TWILIO_SUPERSIM_URL: Final = "https://supersim.twilio.com"
DEFAULT_KORE_SUPERSIM_URL: Final = "https://supersim.api.korewireless.com"
DEFAULT_KORE_TOKEN_URL: Final = "https://api.korewireless.com/api-services/v1/auth/token"  # noqa: S105

# Where an emnify device must send its reply for it to reach the callback (A2P short code).
DEFAULT_SOURCE_ADDRESS: Final = "12345"

ENDPOINT_REFRESH_INTERVAL: Final = timedelta(minutes=15)
MAX_PARTS: Final = 10

EVENT_MESSAGE_RECEIVED: Final = "iot_sms_message_received"
EVENT_DELIVERY_STATUS: Final = "iot_sms_delivery_status"

ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_DEVICE_ID: Final = "device_id"
ATTR_RECIPIENT: Final = "recipient"
ATTR_MESSAGE: Final = "message"
ATTR_SENDER: Final = "sender"
ATTR_VALIDITY: Final = "validity"
ATTR_WAIT_FOR_REPLY: Final = "wait_for_reply"
ATTR_MESSAGE_ID: Final = "message_id"

SERVICE_SEND_SMS: Final = "send_sms"
SERVICE_CANCEL_SMS: Final = "cancel_sms"
