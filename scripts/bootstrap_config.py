"""Create the Home Assistant development state under config/ (used by scripts/develop).

Uses Home Assistant's own code (auth manager, auth provider, storage classes, ConfigEntry) so the
files are exactly what the Home Assistant version that will run writes itself:

- owner user "Developer", login dev/dev (homeassistant auth provider, group system-admin);
- onboarding marked done, so the browser shows the login page and not the onboarding wizard;
- core config (name, location, metric, UTC, internal_url http://127.0.0.1:8123);
- one `iot_sms` config entry "Demo Fleet" pointing at the local emnify simulator;
- empty automations.yaml / scripts.yaml / scenes.yaml and the custom_components symlink;
- on versions that keep HTTP settings in storage (2026.11+): the configuration.yaml of the config
  directory is config/configuration.yaml without its `http:` block, and that block is migrated
  into storage and confirmed at once. Left to Home Assistant, the migration is a trial that
  reverts (and restarts Home Assistant) after 5 minutes unless someone confirms it.

Idempotent: a second run keeps what exists (users, ids, secrets). Prints the values the simulator
needs as KEY=value lines on stdout; everything else goes to stderr.

Run with the project's venv: `.venv/bin/python scripts/bootstrap_config.py config`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import secrets
import shutil
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

from homeassistant import runner
from homeassistant.auth import auth_manager_from_config
from homeassistant.auth.const import GROUP_ID_ADMIN
from homeassistant.auth.providers.homeassistant import HassAuthProvider
from homeassistant.components.onboarding import (
    STORAGE_KEY as ONBOARDING_STORAGE_KEY,
)
from homeassistant.components.onboarding import (
    STORAGE_VERSION as ONBOARDING_STORAGE_VERSION,
)
from homeassistant.components.onboarding import (
    OnboardingStorage,
)
from homeassistant.components.onboarding.const import STEPS
from homeassistant.config_entries import SOURCE_USER, ConfigEntry, ConfigEntryStore
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.util.yaml import parse_yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = REPO_ROOT / "config" / "configuration.yaml"
# The top-level `http:` key and its indented (or blank) lines.
HTTP_BLOCK = re.compile(r"^http:[^\n]*\n(?:(?:[ \t]+[^\n]*)?\n)*", re.MULTILINE)

USERNAME = "dev"
PASSWORD = "dev"  # the documented demo login of the local development instance
USER_DISPLAY_NAME = "Developer"

CORE_CONFIG: dict[str, Any] = {
    "location_name": "IoT SIM SMS development",
    "latitude": 52.52,
    "longitude": 13.405,
    "elevation": 34,
    "radius": 100,
    "unit_system": "metric",
    "time_zone": "UTC",
    "currency": "EUR",
    "country": "DE",
    "language": "en",
    "internal_url": "http://127.0.0.1:8123",
}

DOMAIN = "iot_sms"
ENTRY_UNIQUE_ID = "4711"
ENTRY_TITLE = "Demo Fleet"
ENTRY_DATA: dict[str, Any] = {
    "provider": "emnify",
    "api_token": "demo-application-token",
    "base_url": "http://127.0.0.1:8300",
}

_LOGGER = logging.getLogger("bootstrap_config")


async def ensure_core_config(hass: HomeAssistant) -> None:
    """Write .storage/core.config unless it exists; always make sure internal_url is set."""
    storage_file = Path(hass.config.path(".storage", "core.config"))
    if not storage_file.exists():
        await hass.config.async_update(**CORE_CONFIG)
        _LOGGER.info("core config written, internal_url %s", CORE_CONFIG["internal_url"])
        return
    await hass.config.async_load()
    if not hass.config.internal_url:
        await hass.config.async_update(internal_url=CORE_CONFIG["internal_url"])
        _LOGGER.info("internal_url set to %s", CORE_CONFIG["internal_url"])


async def ensure_owner(hass: HomeAssistant) -> None:
    """Create the owner user with the homeassistant auth provider (dev/dev) unless it exists."""
    # Newer auth stores check refresh tokens against the device registry while loading.
    if hasattr(dr, "async_setup"):
        dr.async_setup(hass)
    await dr.async_load(hass)
    hass.auth = await auth_manager_from_config(hass, [{"type": "homeassistant"}], [])
    provider = hass.auth.auth_providers[0]
    assert isinstance(provider, HassAuthProvider)
    await provider.async_initialize()
    assert provider.data is not None

    if not any(
        provider.data.normalize_username(entry["username"]) == USERNAME
        for entry in provider.data.users
    ):
        await provider.async_add_auth(USERNAME, PASSWORD)
        _LOGGER.info("login %s added to the homeassistant auth provider", USERNAME)

    credentials = await provider.async_get_or_create_credentials({"username": USERNAME})
    if not credentials.is_new:
        return
    user = await hass.auth.async_create_user(USER_DISPLAY_NAME, group_ids=[GROUP_ID_ADMIN])
    await hass.auth.async_link_user(user, credentials)
    if user.is_owner:
        _LOGGER.info("owner user %r created", USER_DISPLAY_NAME)
    else:
        _LOGGER.warning("user %r created, but another user already owns this instance", user.name)


async def ensure_onboarded(hass: HomeAssistant) -> None:
    """Mark every onboarding step done, so the frontend shows the login page."""
    store = OnboardingStorage(
        hass, ONBOARDING_STORAGE_VERSION, ONBOARDING_STORAGE_KEY, private=True
    )
    data: Any = await store.async_load() or {"done": []}
    missing = [step for step in STEPS if step not in data["done"]]
    if missing:
        data["done"].extend(missing)
        await store.async_save(data)
        _LOGGER.info("onboarding steps marked done: %s", ", ".join(missing))


async def ensure_config_entry(hass: HomeAssistant) -> dict[str, Any]:
    """Add the demo `iot_sms` config entry unless one with its unique id exists; return its data."""
    store = ConfigEntryStore(hass)
    stored = await store.async_load() or {"entries": []}
    entries: list[dict[str, Any]] = stored["entries"]

    for entry in entries:
        if entry["domain"] == DOMAIN and entry["unique_id"] == ENTRY_UNIQUE_ID:
            data: dict[str, Any] = entry["data"]
            if "webhook_id" in data and "callback_secret" in data:
                return data
            # An entry without the ids the simulator needs: add them, keep everything else.
            data.setdefault("webhook_id", secrets.token_hex(32))
            data.setdefault("callback_secret", secrets.token_urlsafe(48))
            await store.async_save(stored)
            _LOGGER.info("webhook id and callback secret added to config entry %r", entry["title"])
            return data

    new_entry = ConfigEntry(
        data={
            **ENTRY_DATA,
            "webhook_id": secrets.token_hex(32),
            "callback_secret": secrets.token_urlsafe(48),
        },
        discovery_keys=MappingProxyType({}),
        domain=DOMAIN,
        minor_version=1,
        options={},
        source=SOURCE_USER,
        subentries_data=None,
        title=ENTRY_TITLE,
        unique_id=ENTRY_UNIQUE_ID,
        version=1,
    )
    entries.append(new_entry.as_dict())
    await store.async_save(stored)
    _LOGGER.info("config entry %r (%s) created", ENTRY_TITLE, DOMAIN)
    return dict(new_entry.data)


async def ensure_http_settings(hass: HomeAssistant, config_dir: Path) -> None:
    """Where HTTP settings live in storage: derive configuration.yaml, store them confirmed."""
    try:
        from homeassistant.components.http import HTTP_SCHEMA
        from homeassistant.components.http.config import async_get_and_load_store
    except ImportError:
        return  # this version reads them from configuration.yaml
    if config_dir == TEMPLATE.parent:
        sys.exit(
            f"This Home Assistant keeps HTTP settings in storage: use another one than {config_dir}"
        )
    template = TEMPLATE.read_text(encoding="utf-8")
    match = HTTP_BLOCK.search(template)
    if match is None:
        sys.exit(f"{TEMPLATE} has no http: block")
    derived = template.replace(
        match.group(0),
        "# http: settings are in .storage/http (scripts/bootstrap_config.py put them there)\n\n",
    )
    target = config_dir / "configuration.yaml"
    if not target.exists() or target.read_text(encoding="utf-8") != derived:
        target.write_text(derived, encoding="utf-8")
        _LOGGER.info("%s written from %s without its http: block", target, TEMPLATE)

    store = await async_get_and_load_store(hass)
    if store.yaml_migration_done and store.pending is None:
        return
    await store.async_migrate_yaml(HTTP_SCHEMA(parse_yaml(match.group(0))["http"]))
    if store.pending is not None:
        await store.async_promote_pending()
    _LOGGER.info("HTTP settings stored and confirmed: %s", dict(parse_yaml(match.group(0))["http"]))


def ensure_files(config_dir: Path) -> None:
    """Create the YAML files configuration.yaml includes and link the integration."""
    for name, content in (("automations.yaml", "[]\n"), ("scripts.yaml", ""), ("scenes.yaml", "")):
        path = config_dir / name
        if not path.exists():
            path.write_text(content, encoding="utf-8")

    # The blueprints, as an import from their URL would put them (copies: the blueprint
    # loader does not descend into symlinked folders). Refreshed on every start.
    blueprints = config_dir / "blueprints" / "automation" / DOMAIN
    blueprints.mkdir(parents=True, exist_ok=True)
    for source in sorted((REPO_ROOT / "blueprints" / "automation" / DOMAIN).glob("*.yaml")):
        shutil.copyfile(source, blueprints / source.name)

    link = config_dir / "custom_components" / DOMAIN
    target = Path("..") / ".." / "custom_components" / DOMAIN
    if link.is_symlink() and Path(link.readlink()) == target:
        return
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        sys.exit(f"{link} exists and is not a symlink: remove it, scripts/develop links it")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


async def bootstrap(config_dir: Path) -> dict[str, Any]:
    """Create or complete the development state; return the config entry data."""
    (config_dir / ".storage").mkdir(parents=True, exist_ok=True)
    ensure_files(config_dir)

    hass = HomeAssistant(str(config_dir))
    try:
        await ensure_http_settings(hass, config_dir)
        await ensure_core_config(hass)
        await ensure_owner(hass)
        await ensure_onboarded(hass)
        data = await ensure_config_entry(hass)
    finally:
        # A regular shutdown flushes the stores that save with a delay (the auth store); it is a
        # no-op for an instance that never ran, so mark it running first.
        logging.getLogger("homeassistant.core").setLevel(logging.WARNING)
        hass.set_state(CoreState.running)
        await hass.async_stop()
    return data


def main() -> None:
    """Parse arguments, bootstrap, print KEY=value lines for scripts/develop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_dir", nargs="?", default=str(REPO_ROOT / "config"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="bootstrap: %(message)s", stream=sys.stderr)

    work = bootstrap(Path(args.config_dir).resolve())
    if hasattr(runner, "create_event_loop"):  # newer versions: no event loop policy any more
        data = asyncio.run(work, loop_factory=runner.create_event_loop)
    else:
        asyncio.set_event_loop_policy(runner.HassEventLoopPolicy(debug=False))
        data = asyncio.run(work)

    print(f"WEBHOOK_ID={data['webhook_id']}")
    print(f"CALLBACK_SECRET={data['callback_secret']}")
    print(f"EMNIFY_BASE_URL={data.get('base_url', ENTRY_DATA['base_url'])}")


if __name__ == "__main__":
    main()
