"""JSON decoding with a nesting bound, for bodies anyone on the internet can send.

``json.loads`` recurses once per nesting level: 20,000 ``[`` (20 KB, well within the callback
size cap) raise ``RecursionError``, which is no ``ValueError`` and escapes every parser's error
handling. Callback JSON from the providers is two or three levels deep, so anything deeper is
refused before ``json`` sees it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

MAX_DEPTH: Final = 32

# A JSON string, escapes included: brackets inside strings do not nest.
_STRING_RE: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(set(range(256)) - set(b"[]{}"))
# Depth does not depend on the kind of bracket (mismatches are json's business).
_ONE_KIND: Final = bytes.maketrans(b"{}", b"[]")


class JsonTooDeep(ValueError):
    """The document nests deeper than allowed (a ValueError, like any other bad JSON)."""


def _too_deep(data: bytes, max_depth: int) -> bool:
    """Whether the brackets outside strings nest deeper than max_depth (or do not pair up).

    Each round removes the innermost pairs, one level everywhere at once, in C: a 64 KiB
    flood costs a few passes of bytes.replace, not a Python loop per byte.
    """
    brackets = _STRING_RE.sub(b"", data).translate(_ONE_KIND, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not brackets:
            return False
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):  # nothing pairs up: not JSON anyway
            return True
        brackets = shorter
    return bool(brackets)


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises JsonTooDeep instead of recursing past ``max_depth``."""
    # Counting is cheap and settles every ordinary body; only then scan for the real depth
    # (unpaired brackets, e.g. in an unterminated string, count as too deep: invalid anyway).
    if isinstance(data, str):
        openers = data.count("[") + data.count("{")
    else:
        openers = data.count(b"[") + data.count(b"{")
    if openers > max_depth:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if _too_deep(raw, max_depth):
            raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    return json.loads(data)
