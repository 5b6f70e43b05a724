"""Tests for the SMS encoding helpers (GSM-7, UCS-2, segmentation, TPDU decoding)."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.iot_sms.api.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    decode_gsm7_packed,
    decode_tpdu_text,
    detect_encoding,
    encode_gsm7_packed,
    from_ucs2_hex,
    gsm7_length,
    is_gsm7,
    is_gsm7_basic,
    segment,
    split_separate,
    to_ucs2_hex,
    ucs2_length,
)
from custom_components.iot_sms.api.errors import MessageTooLong
from custom_components.iot_sms.api.models import MessagePart

# The GSM 03.38 default alphabet, written out here from the spec table (row by
# row, 0x00-0x7F) so the tests do not trust the module's own table. 0x1B is ESC.
SPEC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
SPEC_BASIC = frozenset(SPEC_TABLE) - {"\x1b"}
SPEC_EXTENSION = frozenset("^{}\\[~]|€\f")
NON_BREAKING = frozenset("\u00a0\u2007\u202f")
UDH_RE = re.compile(r"^050003([0-9A-F]{2})([0-9A-F]{2})([0-9A-F]{2})$")


def septets(text: str) -> int:
    return sum(2 if char in SPEC_EXTENSION else 1 for char in text)


def code_units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


def spec_is_gsm7(text: str) -> bool:
    return all(char in SPEC_BASIC or char in SPEC_EXTENSION for char in text)


# --- alphabet and lengths ---------------------------------------------------


def test_alphabet_tables_match_spec() -> None:
    assert len(SPEC_TABLE) == 128
    assert len(GSM7_BASIC) == 127
    assert GSM7_BASIC == SPEC_BASIC
    assert GSM7_EXTENSION == SPEC_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize("char", ["`", "ç", "á", "€", "\t", "😀", "\x1b", "À"])
def test_basic_rejects_non_basic(char: str) -> None:
    assert not is_gsm7_basic("abc" + char)


@pytest.mark.parametrize(
    ("text", "gsm7", "basic"),
    [
        ("", True, True),
        ("Hello @ £5 ¥ $ ¤ § ¿¡ ÄÖÑÜ äöñüà ΔΦΓΛΩΠΨΣΘΞ ÆæßÉ\r\n", True, True),
        ("price: 5€ [x] {y} ~z | a^b \\", True, False),
        ("form\ffeed", True, False),
        ("tab\there", False, False),
        ("backtick `", False, False),
        ("naïve", False, False),
        ("你好", False, False),
        ("😀", False, False),
    ],
)
def test_is_gsm7(text: str, gsm7: bool, basic: bool) -> None:
    assert is_gsm7(text) is gsm7
    assert is_gsm7_basic(text) is basic
    assert detect_encoding(text) == ("gsm7" if gsm7 else "ucs2")


def test_lengths() -> None:
    assert gsm7_length("") == 0
    assert gsm7_length("abc") == 3
    assert gsm7_length("€€a") == 5
    assert gsm7_length("[]{}") == 8
    assert ucs2_length("") == 0
    assert ucs2_length("abc") == 3
    assert ucs2_length("你好") == 2
    assert ucs2_length("😀a") == 3
    assert ucs2_length("👍🏽") == 4


def test_gsm7_length_rejects_non_gsm() -> None:
    with pytest.raises(ValueError, match="GSM"):
        gsm7_length("abc á")


# --- segment (emnify concatenation) -----------------------------------------


@pytest.mark.parametrize(
    ("length", "sizes"),
    [
        (0, [0]),
        (1, [1]),
        (160, [160]),
        (161, [153, 8]),
        (306, [153, 153]),
        (307, [153, 153, 1]),
        (1530, [153] * 10),
    ],
)
def test_segment_gsm7_boundaries(length: int, sizes: list[int]) -> None:
    parts = segment("a" * length, reference=1)
    assert [len(part.text) for part in parts] == sizes
    assert all(part.encoding == "gsm7" for part in parts)


def test_segment_gsm7_too_long() -> None:
    with pytest.raises(MessageTooLong):
        segment("a" * 1531)


@pytest.mark.parametrize(
    ("length", "sizes"),
    [(70, [70]), (71, [67, 4]), (134, [67, 67]), (135, [67, 67, 1]), (670, [67] * 10)],
)
def test_segment_ucs2_boundaries(length: int, sizes: list[int]) -> None:
    parts = segment("你" * length, reference=1)
    assert [len(part.text) for part in parts] == sizes
    assert all(part.encoding == "ucs2" for part in parts)


def test_segment_ucs2_too_long() -> None:
    with pytest.raises(MessageTooLong):
        segment("你" * 671)


def test_segment_one_non_gsm_char_switches_whole_text_to_ucs2() -> None:
    parts = segment("a" * 69 + "á")
    assert parts == [MessagePart(text="a" * 69 + "á", encoding="ucs2", udh=None)]
    parts = segment("a" * 70 + "á", reference=3)
    assert [part.text for part in parts] == ["a" * 67, "aaaá"]
    assert {part.encoding for part in parts} == {"ucs2"}


def test_segment_max_parts_argument() -> None:
    assert len(segment("a" * 459, max_parts=3)) == 3
    with pytest.raises(MessageTooLong):
        segment("a" * 460, max_parts=3)
    assert len(segment("a" * 160, max_parts=1)) == 1
    with pytest.raises(MessageTooLong):
        segment("a" * 161, max_parts=1)


@pytest.mark.parametrize("max_parts", [0, -1, 256])
def test_segment_rejects_bad_max_parts(max_parts: int) -> None:
    with pytest.raises(ValueError, match="max_parts"):
        segment("hi", max_parts=max_parts)


def test_segment_extension_chars_count_two() -> None:
    one = segment("€" * 80)
    assert one == [MessagePart(text="€" * 80, encoding="gsm7", udh=None)]
    parts = segment("€" * 81, reference=9)
    # 153 septets per part hold 76 two-septet characters.
    assert [part.text for part in parts] == ["€" * 76, "€" * 5]
    assert all(part.encoding == "gsm7" for part in parts)


def test_segment_does_not_split_extension_char() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts = segment(text, reference=9)
    assert [part.text for part in parts] == ["a" * 152, "€" + "b" * 10]


def test_segment_does_not_split_surrogate_pair() -> None:
    text = "a" * 66 + "😀" + "b" * 10
    parts = segment(text, reference=9)
    assert [part.text for part in parts] == ["a" * 66, "😀" + "b" * 10]
    assert segment("😀" * 35)[0].udh is None
    parts = segment("😀" * 36, reference=9)
    assert [part.text for part in parts] == ["😀" * 33, "😀" * 3]


def test_segment_single_part_has_no_udh_even_with_reference() -> None:
    assert segment("hello", reference=5) == [MessagePart(text="hello", encoding="gsm7", udh=None)]
    assert segment("") == [MessagePart(text="", encoding="gsm7", udh=None)]


def test_segment_udh_format_with_reference() -> None:
    parts = segment("x" * 400, reference=0xAB)
    assert [part.udh for part in parts] == ["050003AB0301", "050003AB0302", "050003AB0303"]
    parts = segment("y" * 200, reference=7)
    assert [part.udh for part in parts] == ["050003070201", "050003070202"]
    parts = segment("z" * 1530, reference=0)
    assert parts[-1].udh == "050003000A0A"


@pytest.mark.parametrize("reference", [-1, 256])
def test_segment_rejects_bad_reference(reference: int) -> None:
    with pytest.raises(ValueError, match="reference"):
        segment("x" * 400, reference=reference)


def test_segment_random_reference_shared_and_varies() -> None:
    seen: set[str] = set()
    for _ in range(200):
        parts = segment("q" * 500)
        matches = [UDH_RE.match(part.udh or "") for part in parts]
        assert all(matches)
        refs = {match.group(1) for match in matches if match}
        assert len(refs) == 1
        assert [match.group(2) for match in matches if match] == ["04"] * 4
        assert [match.group(3) for match in matches if match] == ["01", "02", "03", "04"]
        seen |= refs
    # 200 draws from 256 values all equal has a probability of about 256**-199.
    assert len(seen) > 1


GSM_CHARS = st.sampled_from(sorted(SPEC_BASIC | SPEC_EXTENSION))
# Lone surrogates are not text a user can type; UTF-8 excludes them.
MIXED_CHARS = st.one_of(GSM_CHARS, st.characters(codec="utf-8"))
TEXTS = st.one_of(
    st.text(GSM_CHARS, max_size=1800),
    st.text(MIXED_CHARS, max_size=800),
    st.text(st.sampled_from(["a", "€", "😀", "你", " "]), max_size=800),
)


@settings(deadline=None, max_examples=300)
@given(text=TEXTS)
def test_segment_properties(text: str) -> None:
    gsm = spec_is_gsm7(text)
    measure = septets if gsm else code_units
    single_limit, part_limit = (160, 153) if gsm else (70, 67)
    total = measure(text)
    try:
        parts = segment(text, reference=0x5A)
    except MessageTooLong:
        # Each full part wastes at most one unit (a two-unit character that did not fit).
        assert total > 10 * (part_limit - 1)
        return
    assert "".join(part.text for part in parts) == text
    assert 1 <= len(parts) <= 10
    assert {part.encoding for part in parts} == {"gsm7" if gsm else "ucs2"}
    if len(parts) == 1:
        assert total <= single_limit
        assert parts[0].udh is None
        return
    assert total > single_limit
    for number, part in enumerate(parts, start=1):
        assert part.udh == f"0500035A{len(parts):02X}{number:02X}"
        assert 0 < measure(part.text) <= part_limit
    for part, following in pairwise(parts):
        # Greedy: the next part's first character would not have fitted.
        assert measure(part.text) + measure(following.text[0]) > part_limit


# --- split_separate (Eseye, no concatenation) -------------------------------


def texts_of(parts: list[MessagePart]) -> list[str]:
    return [part.text for part in parts]


def test_split_separate_single() -> None:
    assert split_separate("") == [MessagePart(text="", encoding="gsm7", udh=None)]
    assert split_separate("a" * 160) == [MessagePart(text="a" * 160, encoding="gsm7", udh=None)]
    assert split_separate("你" * 70) == [MessagePart(text="你" * 70, encoding="ucs2", udh=None)]


def test_split_separate_keeps_split_whitespace_at_end_of_previous_part() -> None:
    assert texts_of(split_separate("a" * 100 + " " + "b" * 100)) == ["a" * 100 + " ", "b" * 100]
    assert texts_of(split_separate("a" * 100 + "  " + "b" * 100)) == ["a" * 100 + "  ", "b" * 100]
    assert texts_of(split_separate("a" * 100 + "\n" + "b" * 100)) == ["a" * 100 + "\n", "b" * 100]


def test_split_separate_breaks_after_last_whitespace_that_fits() -> None:
    text = "aaa " + "b" * 157 + " c"
    assert texts_of(split_separate(text)) == ["aaa ", "b" * 157 + " c"]
    words = "word " * 40
    parts = split_separate(words)
    assert texts_of(parts) == ["word " * 32, "word " * 8]


def test_split_separate_hard_splits_long_word() -> None:
    assert texts_of(split_separate("x" * 200 + " end")) == ["x" * 160, "x" * 40 + " end"]
    assert texts_of(split_separate("a" * 161)) == ["a" * 160, "a"]
    # A word that fills a whole SMS leaves the following space to the next one.
    assert texts_of(split_separate("a" * 160 + " b")) == ["a" * 160, " b"]


def test_split_separate_ucs2_word_boundary() -> None:
    word = "á" * 30 + " "
    parts = split_separate(word * 3)
    assert texts_of(parts) == [word * 2, word]
    assert all(part.encoding == "ucs2" and part.udh is None for part in parts)


def test_split_separate_extension_chars_force_ucs2() -> None:
    assert split_separate("{x}") == [MessagePart(text="{x}", encoding="ucs2", udh=None)]
    parts = split_separate("€" + "a" * 100)
    assert texts_of(parts) == ["€" + "a" * 69, "a" * 31]
    assert {part.encoding for part in parts} == {"ucs2"}


def test_split_separate_does_not_split_surrogate_pair() -> None:
    assert texts_of(split_separate("😀" * 36)) == ["😀" * 35, "😀"]
    assert texts_of(split_separate("a" * 69 + "😀")) == ["a" * 69, "😀"]


def test_split_separate_not_at_non_breaking_space() -> None:
    text = "a" * 50 + " " + "c" * 10 + "\u00a0" + "b" * 20
    assert texts_of(split_separate(text)) == ["a" * 50 + " ", "c" * 10 + "\u00a0" + "b" * 20]


def test_split_separate_part_limits() -> None:
    assert len(split_separate("a" * 1600)) == 10
    with pytest.raises(MessageTooLong):
        split_separate("a" * 1601)
    words = ("a" * 159 + " ") * 10
    assert texts_of(split_separate(words)) == ["a" * 159 + " "] * 10
    with pytest.raises(MessageTooLong):
        split_separate(words + "b")
    assert len(split_separate("你" * 700)) == 10
    with pytest.raises(MessageTooLong):
        split_separate("你" * 701)
    assert len(split_separate("a" * 320, max_parts=2)) == 2
    with pytest.raises(MessageTooLong):
        split_separate("a" * 321, max_parts=2)


@pytest.mark.parametrize("max_parts", [0, 256])
def test_split_separate_rejects_bad_max_parts(max_parts: int) -> None:
    with pytest.raises(ValueError, match="max_parts"):
        split_separate("hi", max_parts=max_parts)


def is_break(char: str) -> bool:
    return char.isspace() and char not in NON_BREAKING


SEPARATE_TEXTS = st.one_of(
    st.text(st.sampled_from(sorted(SPEC_BASIC)), max_size=1800),
    st.text(st.sampled_from(["a", "b", " ", "\n", "€", "😀", "\u00a0"]), max_size=900),
    st.text(MIXED_CHARS, max_size=800),
)


@settings(deadline=None, max_examples=300)
@given(text=SEPARATE_TEXTS)
def test_split_separate_properties(text: str) -> None:
    basic = all(char in SPEC_BASIC for char in text)
    measure = len if basic else code_units
    limit = 160 if basic else 70
    try:
        parts = split_separate(text)
    except MessageTooLong:
        # Any two neighbouring parts cover at least one full SMS window.
        assert measure(text) > 5 * (limit - 1)
        return
    assert "".join(texts_of(parts)) == text
    assert 1 <= len(parts) <= 10
    assert {part.encoding for part in parts} == {"gsm7" if basic else "ucs2"}
    assert all(part.udh is None for part in parts)
    assert all(measure(part.text) <= limit for part in parts)
    if len(parts) == 1:
        assert measure(text) <= limit
    for part, following in pairwise(parts):
        assert part.text
        assert measure(part.text + following.text) >= limit - 1
        if not is_break(part.text[-1]):
            # A hard split happens only when no whitespace fitted and the SMS is full.
            assert not any(is_break(char) for char in part.text)
            assert measure(part.text) + measure(following.text[0]) > limit


# --- UCS-2 hex --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hexstr"),
    [
        ("", ""),
        ("A", "0041"),
        ("你好世界", "4F60597D4E16754C"),
        ("😀", "D83DDE00"),
        ("é€", "00E920AC"),
    ],
)
def test_ucs2_hex_vectors(text: str, hexstr: str) -> None:
    assert to_ucs2_hex(text) == hexstr
    assert from_ucs2_hex(hexstr) == text
    assert from_ucs2_hex(hexstr.lower()) == text


@given(text=st.text())
def test_ucs2_hex_round_trip(text: str) -> None:
    hexstr = to_ucs2_hex(text)
    assert hexstr == hexstr.upper()
    assert len(hexstr) == 4 * code_units(text)
    assert from_ucs2_hex(hexstr) == text


@pytest.mark.parametrize("hexstr", ["004", "00", "004100", "ZZZZ", "00 41", "D83D", "DE00D83D"])
def test_from_ucs2_hex_rejects_malformed(hexstr: str) -> None:
    with pytest.raises(ValueError):
        from_ucs2_hex(hexstr)


def test_to_ucs2_hex_rejects_lone_surrogate() -> None:
    with pytest.raises(ValueError):
        to_ucs2_hex("a\ud800")


# --- GSM 7-bit packing --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "packed"),
    [
        ("", ""),
        ("A", "41"),
        ("Hi", "C834"),
        ("hellohello", "E8329BFD4697D9EC37"),
        ("How are you?", "C8F71D14969741F977FD07"),
        ("€", "9B32"),
        ("a€", "E14D19"),
    ],
)
def test_gsm7_packing_vectors(text: str, packed: str) -> None:
    data = bytes.fromhex(packed)
    assert encode_gsm7_packed(text) == data
    assert decode_gsm7_packed(data, septets(text)) == text


def test_encode_gsm7_packed_rejects_non_gsm() -> None:
    with pytest.raises(ValueError, match="GSM"):
        encode_gsm7_packed("naïve")


def test_decode_gsm7_packed_skip_bits() -> None:
    # One fill bit, then "H" (0x48) and "i" (0x69).
    assert decode_gsm7_packed(bytes([0x90, 0x69]), 2, skip_bits=1) == "Hi"
    assert decode_gsm7_packed(bytes.fromhex("E8329BFD4697D9EC37"), 5) == "hello"


def test_decode_gsm7_packed_unknown_escape_falls_back_to_basic() -> None:
    # ESC followed by 0x41 ("A"), which has no extension character.
    assert decode_gsm7_packed(bytes.fromhex("9B20"), 2) == "A"
    # ESC ESC: reserved, shown as a space.
    assert decode_gsm7_packed(bytes([0x9B, 0x0D]), 2) == " "


@pytest.mark.parametrize(
    ("data", "count", "skip"),
    [
        (b"\x41", 2, 0),
        (b"\x41", 1, 2),
        (b"\x41", -1, 0),
        (b"\x41", 1, -1),
        (b"\x1b", 1, 0),
    ],
)
def test_decode_gsm7_packed_rejects_malformed(data: bytes, count: int, skip: int) -> None:
    with pytest.raises(ValueError):
        decode_gsm7_packed(data, count, skip)


@given(text=st.text(GSM_CHARS, max_size=400))
def test_gsm7_packing_round_trip(text: str) -> None:
    data = encode_gsm7_packed(text)
    assert len(data) == (septets(text) * 7 + 7) // 8
    assert decode_gsm7_packed(data, septets(text)) == text


# --- TPDU decoding ------------------------------------------------------------

# SMS-DELIVER from the classic example: SMSC +31624000000, sender +31641600986.
HOW_ARE_YOU = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
# SMS-SUBMIT with an empty SMSC field, relative validity period, to +46708251358.
HELLOHELLO = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
DA = "0B916407281553F8"  # TP-DA: 11 digits, international, +46708251358
OA = "0B911346610089F6"  # TP-OA: 11 digits, international, +31641600986
SCTS = "20806291731408"


@pytest.mark.parametrize(
    ("pdu", "text"),
    [
        (HOW_ARE_YOU, "How are you?"),
        (HOW_ARE_YOU[16:], "How are you?"),
        (HOW_ARE_YOU.lower(), "How are you?"),
        (f"  {HOW_ARE_YOU}\n", "How are you?"),
        (HELLOHELLO, "hellohello"),
        (HELLOHELLO[2:], "hellohello"),
        # SMS-SUBMIT, no VP, UCS-2 (DCS 08), 8 octets.
        ("0100" + DA + "0008" + "08" + "4F60597D4E16754C", "你好世界"),
        ("00" + "0100" + DA + "0008" + "08" + "4F60597D4E16754C", "你好世界"),
        # SMS-SUBMIT with UDHI and relative VP, UCS-2: UDH 050003 2A 02 01, then "H😀".
        ("5100" + DA + "0008AA" + "0C" + "0500032A0201" + "0048D83DDE00", "H😀"),
        # SMS-DELIVER with UDHI, 7-bit: 6-octet UDH, one fill bit, then "Hi" (9 septets).
        ("44" + OA + "0000" + SCTS + "09" + "0500032A0201" + "9069", "Hi"),
        # SMS-DELIVER with a 7-octet UDH (16-bit reference IE): no fill bits needed.
        ("44" + OA + "0000" + SCTS + "0A" + "06080412340201" + "C834", "Hi"),
        # SMS-SUBMIT, 8-bit data (DCS 04), decoded as Latin-1.
        ("0100" + DA + "0004" + "02" + "48E9", "Hé"),
        # SMS-SUBMIT, 8-bit with UDHI.
        ("4100" + DA + "0004" + "08" + "0500030102024869", "Hi"),
        # SMS-SUBMIT, enhanced VP (VPF 01, 7 octets).
        ("0900" + DA + "0000" + "01000000000000" + "0A" + "E8329BFD4697D9EC37", "hellohello"),
        # SMS-SUBMIT, absolute VP (VPF 11, 7 octets).
        ("1900" + DA + "0000" + SCTS + "0A" + "E8329BFD4697D9EC37", "hellohello"),
        # Extension table via ESC: "€" and "a€".
        ("04" + OA + "0000" + SCTS + "02" + "9B32", "€"),
        ("04" + OA + "0000" + SCTS + "03" + "E14D19", "a€"),
        # DCS F0 (class 0, 7-bit), F4 (class 0, 8-bit), 18 (class 0, UCS-2), E0 (UCS-2).
        ("04" + OA + "00F0" + SCTS + "02" + "C834", "Hi"),
        ("04" + OA + "00F4" + SCTS + "02" + "4869", "Hi"),
        ("04" + OA + "0018" + SCTS + "04" + "00480069", "Hi"),
        ("04" + OA + "00E0" + SCTS + "04" + "00480069", "Hi"),
        # Reserved DCS values are read as the default alphabet.
        ("04" + OA + "000C" + SCTS + "02" + "C834", "Hi"),
        ("04" + OA + "0080" + SCTS + "02" + "C834", "Hi"),
        # Empty user data.
        ("04" + OA + "0000" + SCTS + "00", ""),
        # Alphanumeric sender "Eseye" (TON 5): 10 semi-octets.
        ("04" + "0AD0C579395F06" + "0000" + SCTS + "02" + "C834", "Hi"),
    ],
)
def test_decode_tpdu_text(pdu: str, text: str) -> None:
    assert decode_tpdu_text(pdu) == text


@pytest.mark.parametrize(
    "pdu",
    [
        "",
        "0",
        "ZZ",
        "07 91",
        HOW_ARE_YOU[:-2],
        HOW_ARE_YOU + "00",
        HELLOHELLO[:-2],
        # SMS-STATUS-REPORT (MTI 10) and reserved MTI 11.
        "0200" + DA + "0000" + "02C834",
        "0300" + DA + "0000" + "02C834",
        # UDL larger than the data.
        "04" + OA + "0000" + SCTS + "05" + "C834",
        # UDL over 160 septets / 140 octets.
        "04" + OA + "0000" + SCTS + "A1" + "00" * 141,
        "04" + OA + "0004" + SCTS + "8D" + "00" * 141,
        # UDHI with a header longer than the user data (8-bit and 7-bit).
        "4100" + DA + "0004" + "02" + "0500",
        "44" + OA + "0000" + SCTS + "02" + "0500",
        "44" + OA + "0000" + SCTS + "00",
        # UCS-2 with an odd number of octets and with a lone surrogate.
        "0100" + DA + "0008" + "03" + "004100",
        "0100" + DA + "0008" + "02" + "D83D",
        # Compressed user data (DCS 0x20).
        "0100" + DA + "0020" + "02" + "C834",
        # Type of address without its always-set top bit.
        "0100" + "0B116407281553F8" + "0000" + "02C834",
        # Address longer than 20 digits.
        "0100" + "1591" + "00" * 11 + "0000" + "02C834",
        # 7-bit text ending in a lone ESC.
        "04" + OA + "0000" + SCTS + "01" + "1B",
    ],
)
def test_decode_tpdu_text_rejects_malformed(pdu: str) -> None:
    with pytest.raises(ValueError):
        decode_tpdu_text(pdu)
