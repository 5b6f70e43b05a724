"""Every translation says everything the English strings say, with the same placeholders."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

import pytest

INTEGRATION = Path(__file__).parents[1] / "custom_components" / "iot_sms"
STRINGS = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))
TRANSLATIONS = sorted(
    p.stem for p in (INTEGRATION / "translations").glob("*.json") if p.stem != "en"
)
# Home Assistant's own references ("[%key:...%]") are resolved by the frontend, not translated.
REFERENCE = re.compile(r"\[%key:[^%]+%\]")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def test_there_is_a_german_translation() -> None:
    """emnify is a German company; many fleet operators read German."""
    assert "de" in TRANSLATIONS


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_translation_is_complete(language: str) -> None:
    english = _flatten(STRINGS)
    translated = _flatten(
        json.loads((INTEGRATION / "translations" / f"{language}.json").read_text("utf-8"))
    )
    assert sorted(english.keys() - translated.keys()) == [], "missing"
    assert sorted(translated.keys() - english.keys()) == [], "not in strings.json"
    for key, text in english.items():
        assert translated[key].strip(), key
        assert _placeholders(translated[key]) == _placeholders(text), key
        assert REFERENCE.findall(translated[key]) == REFERENCE.findall(text), key
