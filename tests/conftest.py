"""Shared test set-up."""

from __future__ import annotations

import custom_components.iot_sms  # noqa: F401

import pytest

from tests.sim_fixtures import *  # noqa: F403
from tests.sim_fixtures_eseye import *  # noqa: F403

pytest_plugins = "pytest_homeassistant_custom_component"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load the integration from custom_components in every test."""
