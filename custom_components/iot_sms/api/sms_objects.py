"""The SMS object of emnify's API, which 1NCE's Management API uses as well.

Both describe an SMS with the same fields: a ``status`` as ``{id, description|status}`` or a
bare id, ``multi_part_info`` on a concatenated MO part, ``dcs`` for the data coding, and
callbacks whose JSON body is one such object or a bulk array of them. What each provider does
with the fields (status ids, which ids exist) stays in its client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from . import bounded_json
from .errors import InvalidCallback
from .models import MessagePart, MultipartInfo, SmsStatus
from .values import as_id, as_int

DCS_GSM7: Final = 0
DCS_UCS2: Final = 8
# The status ids both APIs give the same meaning; 1 and 2 differ (see each client's map).
COMMON_STATUSES: Final[dict[int, SmsStatus]] = {
    3: SmsStatus.BUFFERED,
    4: SmsStatus.DELIVERED,
    5: SmsStatus.FAILED,
    6: SmsStatus.EXPIRED,
    7: SmsStatus.CANCELED,
}


def data_coding(part: MessagePart) -> int | None:
    """The ``dcs`` to send, or None where the default (a single GSM-7 part) is right.

    A UDH or a non-GSM alphabet needs the data coding spelled out for the SMSC to size the
    part; a single GSM-7 SMS goes like the providers' own examples, without it.
    """
    if part.encoding == "ucs2":
        return DCS_UCS2
    if part.udh:
        return DCS_GSM7
    return None


def location_id(headers: Mapping[str, str]) -> str | None:
    """The numeric id a ``Location`` header ends in (where a created SMS or object is named)."""
    tail = headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]
    return tail if tail.isdigit() else None


def coded_status(value: Any, text_keys: Sequence[str]) -> tuple[int | None, Any]:
    """(id, text) of a status given as ``{id, <text key>}`` (first key set wins) or a bare id.

    The text is returned as found (None for a bare id); the caller decides what is usable.
    """
    if not isinstance(value, dict):
        return as_int(value), None
    return as_int(value.get("id")), next((t for key in text_keys if (t := value.get(key))), None)


def multipart(info: Any) -> MultipartInfo | None:
    """The part of a concatenated MO SMS; None for a single SMS; InvalidCallback if garbled."""
    if not isinstance(info, dict) or (as_int(info.get("total")) or 1) <= 1:
        return None
    number, total = as_int(info.get("partno")), as_int(info.get("total"))
    reference = as_id(info.get("identifier"))
    if number is None or total is None or reference is None or not 1 <= number <= total:
        raise InvalidCallback("the incoming SMS has invalid multi-part information")
    return MultipartInfo(reference=reference, number=number, total=total)


def callback_objects(body: bytes) -> list[dict[str, Any]]:
    """The JSON objects of a callback body: one object, or each of a bulk array."""
    try:
        data = bounded_json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise InvalidCallback("the callback body is not JSON") from err
    objects = data if isinstance(data, list) else [data]
    if not all(isinstance(obj, dict) for obj in objects):
        raise InvalidCallback("the callback body is not a JSON object")
    return objects
