"""Tolerant readers for the values in provider JSON.

Providers serialise numbers as JSON numbers or as decimal strings, ids as either, and leave
fields out, null or empty; each reader returns None for anything it cannot use instead of
raising, so one odd field never costs a whole answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

# Longest provider text put into an error a user reads.
SHOWN_LIMIT: Final = 200


def as_int(value: Any) -> int | None:
    """An int from an int or a decimal string; never from a bool or a float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def as_float(value: Any) -> float | None:
    """A float from a number or a numeric string; never from a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_id(value: Any) -> str | None:
    """An id as a string: ints and digit strings normalised, other strings kept (stripped)."""
    number = as_int(value)
    if number is not None:
        return str(number)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def as_str(value: Any, *, strip: bool = True) -> str | None:
    """A non-empty string (stripped unless told otherwise); JSON integers kept exactly."""
    if isinstance(value, str):
        text = value.strip() if strip else value
        return text or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def utc(value: datetime) -> datetime:
    """The same moment in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_date(value: Any) -> datetime | None:
    """An ISO 8601 date in UTC ("…T01:45:24.000+0000", "…Z", "2021-10-29 07:13:34").

    Naive dates are UTC; anything else (null, {}, garbage) gives None.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return utc(parsed)


def json_object(body: bytes) -> dict[str, Any] | None:
    """The JSON object of a body; None when it is empty, not JSON or not an object."""
    try:
        data = json.loads(body) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def printable(text: str, limit: int = SHOWN_LIMIT) -> str:
    """Provider text fit for an error a user reads: control characters as ?, cut at limit."""
    # Binary garbage in a body would only garble the message it ends up in.
    shown = "".join(char if char.isprintable() else "?" for char in text.strip())
    return shown if len(shown) <= limit else f"{shown[:limit]}…"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the case of its name (a plain dict is case-sensitive)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value
