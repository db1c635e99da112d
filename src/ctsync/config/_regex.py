"""Is a regular expression in a filter or a mapping written correctly? Checked at validate time.

Entra evaluates them with .NET's regex engine; ctsync checks them with Python's ``re``, which
shares the syntax of everything common (classes, groups, quantifiers, anchors, lookaround). A
few .NET-only constructs are rewritten to something Python accepts before the check, so they
are not refused: ``(?<name>...)``, ``(?'name'...)``, ``\\k<name>``, ``\\p{L}``, ``\\P{L}``,
inline options anywhere (``(?i)``, ``(?n:...)``), ``\\z``, ``\\G``, ``\\e`` and ``\\cX``.
What is left is refused: unbalanced parentheses or brackets, a quantifier with nothing to
repeat, a reversed range, a dangling backslash, a reference to a group that does not exist.
"""

from __future__ import annotations

import re
import warnings
from typing import Final

__all__ = ["regex_problem"]

# .NET-only syntax -> what Python accepts in its place (for checking only). Any other escape
# is kept whole, so an escaped "(" or "\\" is never taken for the start of a construct.
_DOTNET: Final = re.compile(
    r"""
      (?P<category>\\[pP]\{[^}]*\})
    | (?P<backref>\\k<[^>]*>|\\k'[^']*')
    | (?P<anchor>\\[zG])
    | (?P<escape>\\e)
    | (?P<control>\\c.)
    | (?P<kept>\\.)
    | (?P<named>\(\?<(?![=!])[^>]*>|\(\?'[^']*')
    | (?P<options>\(\?(?=[imnsx-]*[imnsx])[imnsx]*-?[imnsx]*\))
    | (?P<scoped>\(\?[imnsx]*-?[imnsx]*:)
    """,
    re.VERBOSE | re.DOTALL,
)
_REPLACEMENTS: Final = {
    "category": "x",
    "backref": "x",
    "anchor": "",
    "escape": r"\x1b",
    "control": "x",
    "named": "(",
    "options": "",
    "scoped": "(?:",
}


def regex_problem(pattern: str) -> tuple[str, int] | None:
    """``(re's message, 0-based offset in pattern)`` if ``pattern`` is no valid regex, else None."""
    python, origin = _as_python(pattern)
    try:
        with warnings.catch_warnings():
            # "Possible nested set" (FutureWarning) is .NET's class subtraction, [a-z-[aeiou]].
            warnings.simplefilter("ignore")
            re.compile(python)
    except re.error as exc:
        position = exc.pos if exc.pos is not None else len(python)
        offset = origin[position] if position < len(origin) else len(pattern)
        return exc.msg, offset
    except (OverflowError, RecursionError):
        return "the pattern is too large or nested too deeply", 0
    return None


def _as_python(pattern: str) -> tuple[str, list[int]]:
    """The pattern with .NET-only syntax replaced, and for each of its characters the offset
    in ``pattern`` it came from (to point re's error position at the original)."""
    parts: list[str] = []
    origin: list[int] = []
    last = 0
    for found in _DOTNET.finditer(pattern):
        kind = found.lastgroup or "kept"
        text = found.group(0) if kind == "kept" else _REPLACEMENTS[kind]
        parts.append(pattern[last : found.start()])
        origin.extend(range(last, found.start()))
        parts.append(text)
        if kind == "kept":
            origin.extend(range(found.start(), found.end()))
        else:
            origin.extend([found.start()] * len(text))
        last = found.end()
    parts.append(pattern[last:])
    origin.extend(range(last, len(pattern)))
    return "".join(parts), origin
