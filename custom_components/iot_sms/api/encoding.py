"""SMS text encoding: GSM 03.38 alphabet, UCS-2, message segmentation and TPDU decoding.

Standard library only, so the provider clients and the simulator can share it.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final, Literal

from .errors import MessageTooLong
from .models import MessagePart

if TYPE_CHECKING:
    from collections.abc import Callable

type Encoding = Literal["gsm7", "ucs2"]
type _Alphabet = Literal["gsm7", "8bit", "ucs2"]

_ESC: Final = 0x1B

# GSM 03.38 default alphabet, indexed by septet value; 0x1B is the escape to the
# extension table and is not a character of its own.
_GSM7_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION_TABLE: Final[dict[int, str]] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
_GSM7_CODE: Final[dict[str, int]] = {
    char: code for code, char in enumerate(_GSM7_TABLE) if code != _ESC
}
_GSM7_EXTENSION_CODE: Final[dict[str, int]] = {
    char: code for code, char in _GSM7_EXTENSION_TABLE.items()
}

GSM7_BASIC: Final[frozenset[str]] = frozenset(_GSM7_CODE)
GSM7_EXTENSION: Final[frozenset[str]] = frozenset(_GSM7_EXTENSION_CODE)

GSM7_SINGLE_LIMIT: Final = 160
GSM7_PART_LIMIT: Final = 153
UCS2_SINGLE_LIMIT: Final = 70
UCS2_PART_LIMIT: Final = 67
DEFAULT_MAX_PARTS: Final = 10
# The concatenation IE carries total and part number in one octet each.
_MAX_PARTS_LIMIT: Final = 255
_MAX_REFERENCE: Final = 255

_BMP_LIMIT: Final = 0x10000
# Whitespace that is meant to hold words together, so it is no place to split.
_NON_BREAKING: Final = frozenset("\u00a0\u2007\u202f")

# TPDU constants from 3GPP TS 23.040 and TS 23.038.
_MTI_MASK: Final = 0x03
_MTI_DELIVER: Final = 0x00
_MTI_SUBMIT: Final = 0x01
_UDHI: Final = 0x40
_VPF_SHIFT: Final = 3
_VP_LENGTHS: Final[dict[int, int]] = {0b00: 0, 0b10: 1, 0b01: 7, 0b11: 7}
_SCTS_LENGTH: Final = 7
_MAX_ADDRESS_DIGITS: Final = 20
_TOA_RESERVED_BIT: Final = 0x80
_MAX_UDL_SEPTETS: Final = 160
_MAX_UDL_OCTETS: Final = 140
_DCS_COMPRESSED: Final = 0x20
_DCS_GENERAL_GROUPS: Final = 0x07
_DCS_GENERAL_ALPHABETS: Final[dict[int, _Alphabet]] = {
    0b00: "gsm7",
    0b01: "8bit",
    0b10: "ucs2",
    # Reserved; TS 23.038 tells receivers to assume the default alphabet.
    0b11: "gsm7",
}
_DCS_GROUP_ALPHABETS: Final[dict[int, _Alphabet]] = {
    0xC: "gsm7",
    0xD: "gsm7",
    0xE: "ucs2",
}
_DCS_DATA_CODING_GROUP: Final = 0xF
_DCS_DATA_CODING_8BIT: Final = 0x04


def is_gsm7_basic(text: str) -> bool:
    """Return whether every character is in the GSM 03.38 default alphabet."""
    return all(char in GSM7_BASIC for char in text)


def is_gsm7(text: str) -> bool:
    """Return whether the text can be sent as GSM-7, the extension table included."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def _gsm7_cost(char: str) -> int:
    if char in GSM7_BASIC:
        return 1
    if char in GSM7_EXTENSION:
        return 2
    raise ValueError(f"character {char!r} is not in the GSM 7-bit alphabet")


def _ucs2_cost(char: str) -> int:
    return 2 if ord(char) >= _BMP_LIMIT else 1


def _basic_cost(_char: str) -> int:
    return 1


def gsm7_length(text: str) -> int:
    """Count the septets the text needs in GSM-7.

    Args:
        text: Text made of GSM 03.38 characters.

    Returns:
        The septet count; extension-table characters count two (escape + code).

    Raises:
        ValueError: A character is not in the GSM 7-bit alphabet.
    """
    return sum(_gsm7_cost(char) for char in text)


def ucs2_length(text: str) -> int:
    """Count the UTF-16 code units the text needs; characters outside the BMP count two."""
    return sum(_ucs2_cost(char) for char in text)


def detect_encoding(text: str) -> Encoding:
    """Pick GSM-7 when the whole text fits its alphabet, UCS-2 otherwise."""
    return "gsm7" if is_gsm7(text) else "ucs2"


def _check_max_parts(max_parts: int) -> None:
    if not 1 <= max_parts <= _MAX_PARTS_LIMIT:
        raise ValueError(f"max_parts must be between 1 and {_MAX_PARTS_LIMIT}")


def _too_long(max_parts: int) -> MessageTooLong:
    return MessageTooLong(f"text needs more than {max_parts} SMS parts")


def _fill_parts(text: str, limit: int, cost: Callable[[str], int], max_parts: int) -> list[str]:
    # Working on whole code points keeps extension characters (two septets) and
    # astral characters (a surrogate pair) inside one part.
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        char_cost = cost(char)
        if used + char_cost > limit:
            parts.append("".join(current))
            # Stop at once instead of planning parts that will never be sent.
            if len(parts) == max_parts:
                raise _too_long(max_parts)
            current = []
            used = 0
        current.append(char)
        used += char_cost
    parts.append("".join(current))
    return parts


def segment(
    text: str, *, max_parts: int = DEFAULT_MAX_PARTS, reference: int | None = None
) -> list[MessagePart]:
    """Plan a concatenated SMS (emnify): parts with an 8-bit reference UDH.

    GSM-7 carries 160 septets in one SMS, or 153 per part once a UDH is needed;
    UCS-2 carries 70 code units, or 67 per part. Parts are filled greedily and
    never split an extension character or a surrogate pair.

    Args:
        text: The whole message.
        max_parts: The most parts the message may take.
        reference: Concatenation reference (0-255) shared by all parts; random if None.

    Returns:
        The parts in order; joining their texts gives back ``text``. A single part
        has no UDH; multiple parts carry ``050003RRTTNN`` in upper-case hex.

    Raises:
        MessageTooLong: The text needs more than ``max_parts`` parts.
        ValueError: ``max_parts`` or ``reference`` is out of range.
    """
    _check_max_parts(max_parts)
    if reference is not None and not 0 <= reference <= _MAX_REFERENCE:
        raise ValueError(f"reference must be between 0 and {_MAX_REFERENCE}")
    encoding = detect_encoding(text)
    cost: Callable[[str], int]
    if encoding == "gsm7":
        cost, single_limit, part_limit = _gsm7_cost, GSM7_SINGLE_LIMIT, GSM7_PART_LIMIT
    else:
        cost, single_limit, part_limit = _ucs2_cost, UCS2_SINGLE_LIMIT, UCS2_PART_LIMIT
    if sum(cost(char) for char in text) <= single_limit:
        return [MessagePart(text=text, encoding=encoding, udh=None)]
    texts = _fill_parts(text, part_limit, cost, max_parts)
    ref = secrets.randbelow(_MAX_REFERENCE + 1) if reference is None else reference
    total = len(texts)
    return [
        MessagePart(text=part, encoding=encoding, udh=f"050003{ref:02X}{total:02X}{number:02X}")
        for number, part in enumerate(texts, start=1)
    ]


def _is_break(char: str) -> bool:
    return char.isspace() and char not in _NON_BREAKING


def split_separate(text: str, *, max_parts: int = DEFAULT_MAX_PARTS) -> list[MessagePart]:
    """Split a text into separate SMS without concatenation headers (Eseye).

    Eseye's ``text`` takes only the GSM default alphabet, so the whole message is
    ``gsm7`` if every character is in it (160 per SMS) and ``ucs2`` otherwise
    (70 UTF-16 code units per SMS). Each part ends just after the last
    whitespace character that fits; nothing is stripped, so a part may end with
    whitespace and ``"".join(part.text for part in parts) == text``. A word that
    does not fit a whole SMS is split hard at the limit (so the next part may
    then start with whitespace). Non-breaking spaces are not split at.

    Args:
        text: The whole message.
        max_parts: The most SMS the message may take.

    Returns:
        The parts in order, all with the same encoding and no UDH.

    Raises:
        MessageTooLong: The text needs more than ``max_parts`` SMS.
        ValueError: ``max_parts`` is out of range.
    """
    _check_max_parts(max_parts)
    cost: Callable[[str], int]
    if is_gsm7_basic(text):
        encoding: Encoding = "gsm7"
        cost, limit = _basic_cost, GSM7_SINGLE_LIMIT
    else:
        encoding = "ucs2"
        cost, limit = _ucs2_cost, UCS2_SINGLE_LIMIT
    parts: list[str] = []
    start = 0
    while True:
        end = start
        used = 0
        while end < len(text) and used + cost(text[end]) <= limit:
            used += cost(text[end])
            end += 1
        if end == len(text):
            parts.append(text[start:])
            break
        cut = end
        for index in range(end - 1, start - 1, -1):
            if _is_break(text[index]):
                cut = index + 1
                break
        parts.append(text[start:cut])
        if len(parts) == max_parts:
            raise _too_long(max_parts)
        start = cut
    return [MessagePart(text=part, encoding=encoding, udh=None) for part in parts]


def _hex_to_bytes(hexstr: str) -> bytes:
    # bytes.fromhex would also accept inner whitespace; wire hex never has any.
    if len(hexstr) % 2 or any(char not in "0123456789abcdefABCDEF" for char in hexstr):
        raise ValueError("not an even-length hexadecimal string")
    return bytes.fromhex(hexstr)


def to_ucs2_hex(text: str) -> str:
    """Encode text as upper-case hex of UTF-16-BE (what providers call UCS-2 hex).

    Raises:
        ValueError: The text holds a lone surrogate, which UTF-16 cannot carry.
    """
    return text.encode("utf-16-be").hex().upper()


def from_ucs2_hex(hexstr: str) -> str:
    """Decode hex of UTF-16-BE back to text.

    Args:
        hexstr: Hexadecimal digits, four per code unit, either case.

    Returns:
        The decoded text.

    Raises:
        ValueError: The hex is malformed, not whole code units, or a surrogate is unpaired.
    """
    data = _hex_to_bytes(hexstr)
    return _decode_utf16(data)


def _decode_utf16(data: bytes) -> str:
    if len(data) % 2:
        raise ValueError("UCS-2 data has an odd number of octets")
    try:
        return data.decode("utf-16-be")
    except UnicodeDecodeError as err:
        raise ValueError(f"invalid UTF-16 data: {err.reason}") from err


def encode_gsm7_packed(text: str) -> bytes:
    """Pack text into GSM 7-bit septets, least significant bit first (TS 23.038 6.1.2.1).

    Args:
        text: Text in the GSM 7-bit alphabet; extension characters become ESC + code.

    Returns:
        The packed octets; unused high bits of the last octet are zero.

    Raises:
        ValueError: A character is not in the GSM 7-bit alphabet.
    """
    accumulator = 0
    bits = 0
    out = bytearray()
    for char in text:
        if char in _GSM7_CODE:
            septets: tuple[int, ...] = (_GSM7_CODE[char],)
        elif char in _GSM7_EXTENSION_CODE:
            septets = (_ESC, _GSM7_EXTENSION_CODE[char])
        else:
            raise ValueError(f"character {char!r} is not in the GSM 7-bit alphabet")
        for septet in septets:
            accumulator |= septet << bits
            bits += 7
            while bits >= 8:  # noqa: PLR2004 - octet width
                out.append(accumulator & 0xFF)
                accumulator >>= 8
                bits -= 8
    if bits:
        out.append(accumulator & 0xFF)
    return bytes(out)


def decode_gsm7_packed(data: bytes, septets: int, skip_bits: int = 0) -> str:
    """Unpack GSM 7-bit septets and map them to text, extension table included.

    Args:
        data: Packed octets.
        septets: How many septets to read.
        skip_bits: Bits to skip first (a UDH and its fill bits).

    Returns:
        The decoded text. An escape followed by a code without an extension
        character yields the default-alphabet character, as TS 23.038 asks.

    Raises:
        ValueError: The data is too short, a count is negative, or it ends in a lone escape.
    """
    if septets < 0 or skip_bits < 0:
        raise ValueError("septets and skip_bits must not be negative")
    if skip_bits + septets * 7 > len(data) * 8:
        raise ValueError("packed data is shorter than the septet count")
    value = int.from_bytes(data, "little") >> skip_bits
    chars: list[str] = []
    escaped = False
    for _ in range(septets):
        code = value & 0x7F
        value >>= 7
        if escaped:
            escaped = False
            # ESC ESC is reserved for a future table; TS 23.038 says show a space.
            fallback = " " if code == _ESC else _GSM7_TABLE[code]
            chars.append(_GSM7_EXTENSION_TABLE.get(code, fallback))
        elif code == _ESC:
            escaped = True
        else:
            chars.append(_GSM7_TABLE[code])
    if escaped:
        raise ValueError("GSM 7-bit data ends in the middle of an escape sequence")
    return "".join(chars)


class _Reader:
    """Cursor over TPDU octets that fails loudly on truncation."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def octet(self) -> int:
        return self.take(1)[0]

    def take(self, count: int) -> bytes:
        end = self._pos + count
        if end > len(self._data):
            raise ValueError("TPDU is truncated")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk


def _skip_address(reader: _Reader) -> None:
    digits = reader.octet()
    if digits > _MAX_ADDRESS_DIGITS:
        raise ValueError("address is longer than 20 digits")
    # Bit 8 of the type of address is always 1; checking it tells a real TPDU
    # from one read at the wrong offset (with or without an SMSC prefix).
    if not reader.octet() & _TOA_RESERVED_BIT:
        raise ValueError("invalid type-of-address octet")
    reader.take((digits + 1) // 2)


def _dcs_alphabet(dcs: int) -> _Alphabet:
    group = dcs >> 4
    if group <= _DCS_GENERAL_GROUPS:
        if dcs & _DCS_COMPRESSED:
            raise ValueError("compressed user data is not supported")
        return _DCS_GENERAL_ALPHABETS[(dcs >> 2) & 0b11]
    if group == _DCS_DATA_CODING_GROUP:
        return "8bit" if dcs & _DCS_DATA_CODING_8BIT else "gsm7"
    # Groups 8-B are reserved; TS 23.038 tells receivers to assume the default alphabet.
    return _DCS_GROUP_ALPHABETS.get(group, "gsm7")


def _header_octets(user_data: bytes, available: int) -> int:
    if not user_data:
        raise ValueError("UDHI is set but the user data is empty")
    octets = user_data[0] + 1
    if octets > available:
        raise ValueError("user data header is longer than the user data")
    return octets


def _decode_user_data(user_data: bytes, udl: int, dcs: int, udhi: bool) -> str:
    alphabet = _dcs_alphabet(dcs)
    if alphabet == "gsm7":
        if udl > _MAX_UDL_SEPTETS:
            raise ValueError("user data length exceeds 160 septets")
        if len(user_data) != (udl * 7 + 7) // 8:
            raise ValueError("user data does not match its length")
        header_septets = 0
        if udhi:
            # The header is padded with fill bits up to the next septet boundary.
            header_septets = (_header_octets(user_data, len(user_data)) * 8 + 6) // 7
            if header_septets > udl:
                raise ValueError("user data header is longer than the user data")
        return decode_gsm7_packed(user_data, udl - header_septets, header_septets * 7)
    if udl > _MAX_UDL_OCTETS:
        raise ValueError("user data length exceeds 140 octets")
    if len(user_data) != udl:
        raise ValueError("user data does not match its length")
    body = user_data[_header_octets(user_data, udl) :] if udhi else user_data
    if alphabet == "8bit":
        return body.decode("latin-1")
    return _decode_utf16(body)


def _decode_tpdu(data: bytes) -> str:
    reader = _Reader(data)
    first = reader.octet()
    mti = first & _MTI_MASK
    if mti == _MTI_DELIVER:
        _skip_address(reader)
        reader.octet()  # TP-PID
        dcs = reader.octet()
        reader.take(_SCTS_LENGTH)
    elif mti == _MTI_SUBMIT:
        reader.octet()  # TP-MR
        _skip_address(reader)
        reader.octet()  # TP-PID
        dcs = reader.octet()
        reader.take(_VP_LENGTHS[(first >> _VPF_SHIFT) & 0b11])
    else:
        raise ValueError(f"unsupported message type indicator {mti}")
    udl = reader.octet()
    return _decode_user_data(reader.rest(), udl, dcs, udhi=bool(first & _UDHI))


def decode_tpdu_text(hexstr: str) -> str:
    """Decode the text of an SMS-SUBMIT or SMS-DELIVER TPDU given as hex (TS 23.040).

    The TPDU may be preceded by an SMSC address field (its first octet being the
    length of the SMSC information); the bare TPDU is tried first. A user data
    header is skipped. The user data must match TP-UDL exactly, which is what
    makes telling the two layouts apart reliable.

    Args:
        hexstr: The TPDU in hexadecimal, either case; surrounding whitespace is ignored.

    Returns:
        The message text.

    Raises:
        ValueError: The hex or the TPDU is malformed, truncated or of another type.
    """
    data = _hex_to_bytes(hexstr.strip())
    if not data:
        raise ValueError("empty TPDU")
    try:
        return _decode_tpdu(data)
    except ValueError as bare_error:
        error = bare_error
    try:
        return _decode_tpdu(data[1 + data[0] :])
    except ValueError as prefixed_error:
        raise ValueError(
            f"not a TPDU ({error}), nor one after an SMSC address ({prefixed_error})"
        ) from prefixed_error
