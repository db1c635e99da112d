"""Text that is safe to put on a terminal: data never drives the terminal.

Names and values come from tenants (display names anyone with a directory role can set) and
from files. A newline in one would forge a line of output; an escape sequence would recolour,
move the cursor or retitle the window; a bidi override would make text read differently from
what it is. Every piece of data printed for people goes through :func:`printable`, which spells
such characters out (``\\n``, ``\\x1b``, ``\\u202e``) instead of sending them.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["printable"]

# C0 and C1 controls, DEL, and the Unicode bidi embedding/override/isolate controls and
# line/paragraph separators.
_UNSAFE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control or bidi character spelled out as an escape."""
    return _UNSAFE.sub(_escape, text)
