"""Config flow: provider menu, credentials, reauth, reconfigure, options, Eseye SIM subentries."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
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
from .api.models import AccountInfo, Endpoint, ServiceProfile
from .api.numbers import normalize_msisdn
from .compat import vol
from .const import (
    CONF_ACCOUNT_SID,
    CONF_ADVANCED,
    CONF_API_MSISDN,
    CONF_AUTH_TOKEN,
    CONF_BASE_URL,
    CONF_CALLBACK_SECRET,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_MSISDN,
    CONF_PROVIDER,
    CONF_TAG,
    CONF_TOKEN_URL,
    CONF_VENDOR,
    CONF_WEBHOOK_SECRET,
    DEFAULT_1NCE_URL,
    DEFAULT_EMNIFY_URL,
    DEFAULT_ESEYE_URL,
    DEFAULT_KORE_SUPERSIM_URL,
    DEFAULT_KORE_TOKEN_URL,
    DEFAULT_TWILIO_SUPERSIM_URL,
    DOMAIN,
    LOGGER,
    PROVIDER_1NCE,
    PROVIDER_EMNIFY,
    PROVIDER_ESEYE,
    PROVIDER_SUPERSIM,
    SUBENTRY_SIM,
    VENDOR_KORE,
    VENDOR_TWILIO,
)
from .coordinator import IotSmsConfigEntry
from .factory import create_client
from .inbound import async_callback_url
from .webhook_urls import async_webhook_url

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
CONF_PROFILES = "profiles"
CONF_CONFIRM = "confirm"
# The filter's confirmation names at most this many of the endpoints it keeps.
MAX_NAMES_SHOWN = 10
# Shorter numbers are short codes or endpoint ids, not a SIM's MSISDN.
MIN_MSISDN_DIGITS = 6


def _sim_msisdn(value: str) -> str | None:
    digits = normalize_msisdn(value)
    return digits if digits and len(digits) >= MIN_MSISDN_DIGITS else None


@dataclass(frozen=True, slots=True)
class _CredentialsForm:
    """What one provider's credentials step asks for, and how its answers are stored."""

    provider: str
    required: tuple[str, ...]
    secrets: frozenset[str]
    """Fields typed as passwords: never shown again, and what reauth asks for."""
    advanced: Mapping[str, str]
    """Advanced fields and their defaults (API base URL, token URL)."""
    optional: tuple[str, ...] = ()
    fixed: Mapping[str, str] = field(default_factory=dict)
    """Stored with the entry's data, e.g. which vendor's Super SIM API."""

    def schema(self) -> vol.Schema:
        fields: dict[vol.Marker, Any] = {
            vol.Required(key): PASSWORD if key in self.secrets else str for key in self.required
        }
        fields |= {
            vol.Optional(key): PASSWORD if key in self.secrets else str for key in self.optional
        }
        fields[vol.Required(CONF_ADVANCED)] = section(
            vol.Schema({vol.Optional(key): URL for key in self.advanced}), {"collapsed": True}
        )
        return vol.Schema(fields)

    def shown_again(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What the form shows when it comes back: everything typed except secrets."""
        shown = {k: v for k, v in values.items() if k not in self.secrets and k != CONF_ADVANCED}
        advanced = values.get(CONF_ADVANCED, values)
        shown[CONF_ADVANCED] = {key: advanced.get(key) or url for key, url in self.advanced.items()}
        return shown

    def data(self, user_input: Mapping[str, Any]) -> dict[str, Any]:
        """The entry's data for a submitted form (advanced fields flattened, blanks dropped)."""
        data = {k: v for k, v in user_input.items() if k != CONF_ADVANCED and v != ""}
        advanced = user_input.get(CONF_ADVANCED, {})
        for key, default in self.advanced.items():
            data[key] = (advanced.get(key) or default).strip().rstrip("/")
        return {**data, **self.fixed, CONF_PROVIDER: self.provider}


# One credentials step per menu entry; the step id is the menu option.
FORMS: dict[str, _CredentialsForm] = {
    PROVIDER_EMNIFY: _CredentialsForm(
        PROVIDER_EMNIFY,
        required=(CONF_API_TOKEN,),
        secrets=frozenset({CONF_API_TOKEN}),
        advanced={CONF_BASE_URL: DEFAULT_EMNIFY_URL},
    ),
    PROVIDER_ESEYE: _CredentialsForm(
        PROVIDER_ESEYE,
        required=(CONF_USERNAME, CONF_PASSWORD),
        optional=(CONF_API_MSISDN,),
        secrets=frozenset({CONF_PASSWORD}),
        advanced={CONF_BASE_URL: DEFAULT_ESEYE_URL},
    ),
    "onence": _CredentialsForm(
        PROVIDER_1NCE,
        required=(CONF_USERNAME, CONF_PASSWORD),
        secrets=frozenset({CONF_PASSWORD}),
        advanced={CONF_BASE_URL: DEFAULT_1NCE_URL},
    ),
    "supersim_twilio": _CredentialsForm(
        PROVIDER_SUPERSIM,
        required=(CONF_ACCOUNT_SID, CONF_AUTH_TOKEN),
        secrets=frozenset({CONF_AUTH_TOKEN}),
        advanced={CONF_BASE_URL: DEFAULT_TWILIO_SUPERSIM_URL},
        fixed={CONF_VENDOR: VENDOR_TWILIO},
    ),
    "supersim_kore": _CredentialsForm(
        PROVIDER_SUPERSIM,
        required=(CONF_CLIENT_ID, CONF_CLIENT_SECRET),
        optional=(CONF_WEBHOOK_SECRET,),
        secrets=frozenset({CONF_CLIENT_SECRET, CONF_WEBHOOK_SECRET}),
        advanced={CONF_BASE_URL: DEFAULT_KORE_SUPERSIM_URL, CONF_TOKEN_URL: DEFAULT_KORE_TOKEN_URL},
        fixed={CONF_VENDOR: VENDOR_KORE},
    ),
}


def _form_of(data: Mapping[str, Any]) -> tuple[str, _CredentialsForm]:
    """The credentials step an existing entry was created with."""
    provider = data.get(CONF_PROVIDER, PROVIDER_EMNIFY)
    return next(
        (step, form)
        for step, form in FORMS.items()
        if form.provider == provider and all(data.get(k) == v for k, v in form.fixed.items())
    )


class IotSmsConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an account of one of the supported providers."""

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
        except Exception:  # noqa: BLE001 - a bug must show as an error in the form, not a 500
            LOGGER.exception("Unexpected error validating credentials")
            return None, {"base": "unknown"}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose the provider."""
        return self.async_show_menu(step_id="user", menu_options=list(FORMS))

    async def async_step_emnify(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Emnify application token."""
        return await self._async_credentials_step(PROVIDER_EMNIFY, user_input)

    async def async_step_eseye(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Eseye SMS API credentials."""
        return await self._async_credentials_step(PROVIDER_ESEYE, user_input)

    async def async_step_onence(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """1NCE Management API user."""
        return await self._async_credentials_step("onence", user_input)

    async def async_step_supersim_twilio(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Super SIM through Twilio: Account SID and Auth Token."""
        return await self._async_credentials_step("supersim_twilio", user_input)

    async def async_step_supersim_kore(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Super SIM through KORE: API client id and secret."""
        return await self._async_credentials_step("supersim_kore", user_input)

    async def _async_credentials_step(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        form = FORMS[step_id]
        reconfiguring = self.source == SOURCE_RECONFIGURE
        errors: dict[str, str] = {}
        shown: Mapping[str, Any] = self._get_reconfigure_entry().data if reconfiguring else {}
        if user_input is not None:
            shown = user_input
            data = form.data(user_input)
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
                    kept = {k: v for k, v in entry.data.items() if k not in form.optional}
                    return self._async_update_and_finish(
                        entry, data=kept | data, title=account.title
                    )
                self._abort_if_unique_id_configured()
                data[CONF_WEBHOOK_ID] = async_generate_id()
                return self.async_create_entry(title=account.title, data=data)
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(form.schema(), form.shown_again(shown)),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change credentials or the base URL of an existing account."""
        step_id, _form = _form_of(self._get_reconfigure_entry().data)
        return await self._async_credentials_step(step_id, None)

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The token or password was rotated or revoked."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the new secret of the same account."""
        entry = self._get_reauth_entry()
        _step_id, form = _form_of(entry.data)
        keys = [key for key in form.required if key in form.secrets]
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**entry.data, **{key: user_input[key] for key in keys}}
            account, errors = await self._async_validate(data)
            if account is not None:
                await self.async_set_unique_id(account.unique_id)
                self._abort_if_unique_id_mismatch(reason="account_mismatch")
                return self._async_update_and_finish(entry, data=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(key): PASSWORD for key in keys}),
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
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema({vol.Required(CONF_NAME): str, vol.Required(CONF_MSISDN): str}),
                user_input,
            ),
            errors=errors,
        )


class IotSmsOptionsFlow(OptionsFlow):
    """Tag filter, the URLs to give the provider, and callback registration."""

    _profiles: dict[str, ServiceProfile]
    _chosen: list[str]
    _tag: str
    _kept: list[Endpoint]
    _total: int

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
        """Menu of what this provider lets the user set."""
        capabilities = self._client.capabilities
        options = []
        if capabilities.filters_by_tag:
            options.append("settings")
        if capabilities.registers_callbacks:
            options.append("callbacks")
        elif capabilities.push_reports:
            options.append("urls")
        return self.async_show_menu(
            step_id="init", menu_options=options, description_placeholders=await self._urls()
        )

    async def async_step_settings(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Only endpoints with this tag become devices."""
        if user_input is not None:
            self._tag = user_input.get(CONF_TAG, "").strip()
            return await self.async_step_confirm_tag()
        return self.async_show_form(
            step_id="settings",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema({vol.Optional(CONF_TAG): str}), self._entry.options
            ),
            description_placeholders=await self._urls(),
        )

    async def async_step_confirm_tag(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Say what the filter keeps before saving it; a filter keeping nothing needs a yes."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if self._kept or user_input.get(CONF_CONFIRM):
                return self.async_create_entry(data={**self._entry.options, CONF_TAG: self._tag})
            errors["base"] = "confirm_empty_filter"
        else:
            try:
                everything = await self._client.async_list_endpoints()
                self._kept = (
                    await self._client.async_list_endpoints(self._tag) if self._tag else everything
                )
            except IotSmsError as err:
                LOGGER.debug("Listing endpoints for the filter failed: %s", err)
                return self.async_abort(reason="cannot_connect")
            self._total = len(everything)
        schema = vol.Schema({} if self._kept else {vol.Optional(CONF_CONFIRM, default=False): bool})
        return self.async_show_form(
            step_id="confirm_tag",
            data_schema=schema,
            errors=errors,
            description_placeholders={
                "tag": self._tag or "-",
                "kept": str(len(self._kept)),
                "total": str(self._total),
                "names": ", ".join(sorted(e.name for e in self._kept)[:MAX_NAMES_SHOWN]) or "-",
            },
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
        # Labels stay short (a URL in every label overflows the dialog): which ones already
        # call this URL, and which call another, is said once in the description.
        choices = {profile.id: profile.name for profile in self._profiles.values()}
        chosen = (
            self._chosen
            if user_input is not None
            else [p.id for p in self._profiles.values() if p.callback_url == url]
        )
        here = [p.name for p in self._profiles.values() if p.callback_url == url]
        elsewhere = [p.name for p in self._profiles.values() if p.callback_url not in (None, url)]
        return self.async_show_form(
            step_id="callbacks",
            data_schema=vol.Schema(
                {vol.Required(CONF_PROFILES, default=chosen): cv.multi_select(choices)}
            ),
            errors=errors,
            description_placeholders={
                "callback_url": url,
                "already_here": ", ".join(here) or "-",
                "elsewhere": ", ".join(elsewhere) or "-",
            },
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
