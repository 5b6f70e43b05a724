"""Config flow: provider menu, credentials, reauth, reconfigure, options, Eseye SIM subentries."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from homeassistant.components.webhook import async_generate_id
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import (
    CONF_API_TOKEN,
    CONF_NAME,
    CONF_PASSWORD,
    CONF_USERNAME,
    CONF_WEBHOOK_ID,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .api.client import SmsClient
from .api.errors import (
    AuthError,
    ConnectionFailed,
    IotSmsError,
    IpNotAllowedError,
    RateLimited,
)
from .api.models import AccountInfo, ServiceProfile
from .api.numbers import normalize_msisdn
from .compat import vol
from .const import (
    CONF_ADVANCED,
    CONF_API_MSISDN,
    CONF_BASE_URL,
    CONF_CALLBACK_SECRET,
    CONF_MSISDN,
    CONF_PROVIDER,
    CONF_TAG,
    DEFAULT_EMNIFY_URL,
    DEFAULT_ESEYE_URL,
    DOMAIN,
    LOGGER,
    PROVIDER_EMNIFY,
    PROVIDER_ESEYE,
    SUBENTRY_SIM,
)
from .coordinator import IotSmsConfigEntry
from .factory import create_client
from .inbound import async_callback_url
from .webhook_urls import async_webhook_url

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
CONF_PROFILES = "profiles"
# Shorter numbers are short codes or endpoint ids, not a SIM's MSISDN.
MIN_MSISDN_DIGITS = 6


def _sim_msisdn(value: str) -> str | None:
    digits = normalize_msisdn(value)
    return digits if digits and len(digits) >= MIN_MSISDN_DIGITS else None


def _advanced(default_url: str) -> dict[vol.Marker, Any]:
    return {
        vol.Required(CONF_ADVANCED): section(
            vol.Schema({vol.Optional(CONF_BASE_URL, default=default_url): URL}),
            {"collapsed": True},
        )
    }


def _credentials_schema(provider: str, defaults: Mapping[str, Any]) -> vol.Schema:
    if provider == PROVIDER_ESEYE:
        fields: dict[vol.Marker, Any] = {
            vol.Required(CONF_USERNAME, default=defaults.get(CONF_USERNAME, "")): str,
            vol.Required(CONF_PASSWORD): PASSWORD,
            vol.Optional(
                CONF_API_MSISDN,
                description={"suggested_value": defaults.get(CONF_API_MSISDN)},
            ): str,
        }
        return vol.Schema(fields | _advanced(defaults.get(CONF_BASE_URL, DEFAULT_ESEYE_URL)))
    return vol.Schema(
        {vol.Required(CONF_API_TOKEN): PASSWORD}
        | _advanced(defaults.get(CONF_BASE_URL, DEFAULT_EMNIFY_URL))
    )


class IotSmsConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an emnify or Eseye account."""

    VERSION = 1
    MINOR_VERSION = 1

    async def _async_validate(
        self, data: Mapping[str, Any]
    ) -> tuple[AccountInfo | None, dict[str, str]]:
        client = create_client(async_get_clientsession(self.hass), data)
        try:
            return await client.async_get_account(), {}
        except AuthError:
            return None, {"base": "invalid_auth"}
        except IpNotAllowedError:
            return None, {"base": "ip_not_allowed"}
        except (ConnectionFailed, RateLimited) as err:
            LOGGER.debug("Connection check failed: %s", err)
            return None, {"base": "cannot_connect"}
        except IotSmsError as err:
            # The provider answered, but not in a way the check understands.
            LOGGER.warning("Unexpected answer validating credentials: %s", err)
            return None, {"base": "unknown"}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose the provider."""
        return self.async_show_menu(step_id="user", menu_options=[PROVIDER_EMNIFY, PROVIDER_ESEYE])

    async def async_step_emnify(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Emnify application token."""
        return await self._async_credentials_step(PROVIDER_EMNIFY, user_input)

    async def async_step_eseye(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Eseye SMS API credentials."""
        return await self._async_credentials_step(PROVIDER_ESEYE, user_input)

    async def _async_credentials_step(
        self, provider: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        reconfiguring = self.source == SOURCE_RECONFIGURE
        defaults: Mapping[str, Any] = self._get_reconfigure_entry().data if reconfiguring else {}
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {k: v for k, v in user_input.items() if k != CONF_ADVANCED and v != ""}
            data[CONF_PROVIDER] = provider
            data[CONF_BASE_URL] = user_input[CONF_ADVANCED][CONF_BASE_URL].rstrip("/")
            account: AccountInfo | None = None
            if CONF_API_MSISDN in data:
                data[CONF_API_MSISDN] = _sim_msisdn(data[CONF_API_MSISDN]) or ""
            if data.get(CONF_API_MSISDN) == "":
                errors[CONF_API_MSISDN] = "invalid_msisdn"
            else:
                account, errors = await self._async_validate(data)
            if account is not None:
                await self.async_set_unique_id(account.unique_id)
                if reconfiguring:
                    self._abort_if_unique_id_mismatch(reason="account_mismatch")
                    entry = self._get_reconfigure_entry()
                    # A cleared optional field is left out of the input: drop its old value.
                    kept = {k: v for k, v in entry.data.items() if k != CONF_API_MSISDN}
                    return self._async_update_and_finish(
                        entry, data=kept | data, title=account.title
                    )
                self._abort_if_unique_id_configured()
                data[CONF_WEBHOOK_ID] = async_generate_id()
                return self.async_create_entry(title=account.title, data=data)
        return self.async_show_form(
            step_id=provider,
            data_schema=_credentials_schema(provider, defaults),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change credentials or the base URL of an existing account."""
        provider = self._get_reconfigure_entry().data.get(CONF_PROVIDER, PROVIDER_EMNIFY)
        return await self._async_credentials_step(provider, None)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The token or password was rotated or revoked."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the new secret of the same account."""
        entry = self._get_reauth_entry()
        key = CONF_PASSWORD if entry.data.get(CONF_PROVIDER) == PROVIDER_ESEYE else CONF_API_TOKEN
        errors: dict[str, str] = {}
        if user_input is not None:
            account, errors = await self._async_validate({**entry.data, key: user_input[key]})
            if account is not None:
                await self.async_set_unique_id(account.unique_id)
                self._abort_if_unique_id_mismatch(reason="account_mismatch")
                return self._async_update_and_finish(
                    entry, data={**entry.data, key: user_input[key]}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(key): PASSWORD}),
            errors=errors,
            description_placeholders={"title": entry.title},
        )

    def _async_update_and_finish(
        self, entry: ConfigEntry, data: Mapping[str, Any], title: str | None = None
    ) -> ConfigFlowResult:
        """Store the new data and end the flow; a loaded entry's update listener reloads it.

        Home Assistant wants flows to leave the reload of an entry with an update listener to
        that listener. An entry that is not loaded (its set-up failed) has none: set it up here.
        """
        self.hass.config_entries.async_update_entry(
            entry, data=data, title=title if title is not None else entry.title
        )
        if entry.state is not ConfigEntryState.LOADED:
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        reason = (
            "reconfigure_successful" if self.source == SOURCE_RECONFIGURE else "reauth_successful"
        )
        return self.async_abort(reason=reason)

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> IotSmsOptionsFlow:
        """Options: tag filter and callback URLs."""
        return IotSmsOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """SIMs are added by hand only where the provider cannot list them (Eseye)."""
        if config_entry.data.get(CONF_PROVIDER) == PROVIDER_ESEYE:
            return {SUBENTRY_SIM: SimSubentryFlow}
        return {}


class SimSubentryFlow(ConfigSubentryFlow):
    """Add one SIM by name and MSISDN."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name and MSISDN of the SIM."""
        errors: dict[str, str] = {}
        if user_input is not None:
            msisdn = _sim_msisdn(user_input[CONF_MSISDN])
            if msisdn is None:
                errors[CONF_MSISDN] = "invalid_msisdn"
            elif any(sub.unique_id == msisdn for sub in self._get_entry().subentries.values()):
                errors[CONF_MSISDN] = "already_configured"
            else:
                return self.async_create_entry(
                    title=user_input[CONF_NAME], data={CONF_MSISDN: msisdn}, unique_id=msisdn
                )
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema({vol.Required(CONF_NAME): str, vol.Required(CONF_MSISDN): str}),
            errors=errors,
        )


class IotSmsOptionsFlow(OptionsFlow):
    """Tag filter, the URLs to give the provider, and callback registration."""

    _profiles: dict[str, ServiceProfile]
    _chosen: list[str]

    @property
    def _entry(self) -> IotSmsConfigEntry:
        return self.config_entry

    @property
    def _client(self) -> SmsClient:
        """The loaded entry's client; a fresh one while the entry is not loaded (e.g. retrying)."""
        if self._entry.state is ConfigEntryState.LOADED:
            return self._entry.runtime_data.client
        return create_client(async_get_clientsession(self.hass), self._entry.data)

    async def _urls(self) -> dict[str, str]:
        webhook_id = self._entry.data[CONF_WEBHOOK_ID]
        callback_url = async_callback_url(self.hass, webhook_id, external=False)
        webhook_url = await async_webhook_url(self.hass, webhook_id)
        return {
            "callback_url": callback_url or "-",
            "webhook_url": webhook_url or "-",
        }

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Menu."""
        options = (
            ["settings", "callbacks"] if self._client.capabilities.lists_endpoints else ["urls"]
        )
        return self.async_show_menu(
            step_id="init", menu_options=options, description_placeholders=await self._urls()
        )

    async def async_step_settings(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Only endpoints with this tag become devices."""
        if user_input is not None:
            return self.async_create_entry(
                data={**self._entry.options, CONF_TAG: user_input.get(CONF_TAG, "").strip()}
            )
        return self.async_show_form(
            step_id="settings",
            data_schema=vol.Schema(
                {
                    vol.Optional(
                        CONF_TAG,
                        description={"suggested_value": self._entry.options.get(CONF_TAG)},
                    ): str
                }
            ),
            description_placeholders=await self._urls(),
        )

    async def async_step_urls(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the URLs to give the provider (Eseye: configured by its support)."""
        if user_input is not None:
            return self.async_create_entry(data=dict(self._entry.options))
        return self.async_show_form(
            step_id="urls", data_schema=vol.Schema({}), description_placeholders=await self._urls()
        )

    async def async_step_callbacks(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the service profiles whose callback should point at Home Assistant."""
        client = self._client
        errors: dict[str, str] = {}
        url = async_callback_url(self.hass, self._entry.data[CONF_WEBHOOK_ID], external=False)
        if url is None:
            return self.async_abort(reason="no_url")
        if user_input is not None:
            self._chosen = user_input[CONF_PROFILES]
            if not self._chosen:
                errors["base"] = "no_profile_selected"
            elif self._foreign(url):
                return await self.async_step_confirm_overwrite()
            else:
                return await self._async_register(url)
        try:
            self._profiles = {p.id: p for p in await client.async_list_service_profiles()}
        except IotSmsError as err:
            LOGGER.debug("Listing service profiles failed: %s", err)
            return self.async_abort(reason="cannot_connect")
        choices = {
            profile.id: f"{profile.name} ({profile.callback_url or '-'})"
            for profile in self._profiles.values()
        }
        return self.async_show_form(
            step_id="callbacks",
            data_schema=vol.Schema({vol.Required(CONF_PROFILES): cv.multi_select(choices)}),
            errors=errors,
            description_placeholders={"callback_url": url},
        )

    def _foreign(self, url: str) -> list[ServiceProfile]:
        return [
            self._profiles[profile_id]
            for profile_id in self._chosen
            if self._profiles[profile_id].callback_url not in (None, url)
        ]

    async def async_step_confirm_overwrite(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A profile already sends its callbacks elsewhere: change it only when confirmed."""
        url = async_callback_url(self.hass, self._entry.data[CONF_WEBHOOK_ID], external=False)
        assert url is not None  # noqa: S101 - checked by the step before
        if user_input is not None:
            if user_input.get("confirm"):
                return await self._async_register(url)
            return self.async_abort(reason="overwrite_declined")
        old = ", ".join(f"{p.name}: {p.callback_url}" for p in self._foreign(url))
        return self.async_show_form(
            step_id="confirm_overwrite",
            data_schema=vol.Schema({vol.Required("confirm", default=False): bool}),
            description_placeholders={"old_urls": old, "callback_url": url},
        )

    async def _async_register(self, url: str) -> ConfigFlowResult:
        entry = self._entry
        secret = entry.data.get(CONF_CALLBACK_SECRET) or secrets.token_urlsafe(48)
        client = self._client
        try:
            for profile_id in self._chosen:
                await client.async_register_callback(profile_id, url, secret)
        except IotSmsError as err:
            LOGGER.debug("Registering the callback failed: %s", err)
            return self.async_abort(reason="cannot_connect")
        # A new secret reloads the entry (update listener): the client verifies with the secret
        # it was built with.
        self.hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_CALLBACK_SECRET: secret}
        )
        return self.async_create_entry(data=dict(entry.options))
