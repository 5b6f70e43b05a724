"""Phone numbers as both providers expect them: international digits, no + or 00."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")
_MAX_DIGITS = 15  # E.164


def normalize_msisdn(value: str) -> str | None:
    """Return international digits without ``+``/``00`` and separators, None if not a number."""
    digits = _SEPARATORS.sub("", value)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    return digits if digits.isdigit() and len(digits) <= _MAX_DIGITS else None
