"""Scoping filters written as text: ``department EQUALS 'Sales' AND country NOT EQUALS 'US'``.

A filter is one or more groups joined by ``OR``; a group is one or more clauses joined by
``AND`` (Graph's ``scope.groups``: OR across groups, AND inside one, graph-cts-api §3.7). A
clause is ``attribute OPERATOR value``, or ``attribute OPERATOR`` for the unary operators.
Operators are Graph's wire names (cts-defaults §2.1); they are matched case-insensitively with
space and underscore interchangeable, and always emitted in the wire spelling. A value is quoted
with ``'`` or ``"`` (backslash escapes the quote and itself; any other backslash is kept, as
regular expressions need) or, if it has no spaces, written bare.
"""

from __future__ import annotations

import re
from typing import Final

from ._regex import regex_problem
from ._state import ScopeClause

__all__ = ["OPERATORS", "UNARY_OPERATORS", "FilterError", "parse_filter"]

#: Wire name → arity: the eight of Graph's ``filterOperators`` answer, then the six the portal
#: documents (cts-defaults §2.1; the emulator serves the same fourteen).
OPERATORS: Final[dict[str, str]] = {
    "EQUALS": "Binary",
    "IS FALSE": "Unary",
    "IS NOT NULL": "Unary",
    "IS NULL": "Unary",
    "IS TRUE": "Unary",
    "NOT EQUALS": "Binary",
    "NOT REGEX MATCH": "Binary",
    "REGEX MATCH": "Binary",
    "&": "Binary",
    "!&": "Binary",
    "ENDS_WITH": "Binary",
    "Greater_Than": "Binary",
    "Greater_Than_OR_EQUALS": "Binary",
    "Includes": "Binary",
}
UNARY_OPERATORS: Final = frozenset(name for name, arity in OPERATORS.items() if arity == "Unary")
_REGEX_OPERATORS: Final = frozenset({"REGEX MATCH", "NOT REGEX MATCH"})

#: Attributes Entra can't scope on (cts-defaults §1.4, [KI], [COND]), lower-cased.
UNSCOPABLE: Final = {
    "appRoleAssignments": "assignments are the 'assigned' scope, not a filter",
    "userType": "Entra ignores it in scoping filters",
    "manager": "reference attributes can't be filtered on",
    "IsMemberOf": "group membership is the 'assigned' scope, not a filter",
}

_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_BARE_VALUE = re.compile(r"[^\s'\"]+")
_KEYWORD = re.compile(r"(AND|OR)(?=\s|$)", re.IGNORECASE)


def _operator_pattern(name: str) -> re.Pattern[str]:
    if not name[0].isalpha():
        return re.compile(re.escape(name))
    words = re.split(r"[ _]", name)
    return re.compile(r"[ _]+".join(map(re.escape, words)) + r"(?=[\s'\"]|$)", re.IGNORECASE)


# Longest first, so NOT REGEX MATCH wins over a shorter prefix and !& over &.
_OPERATOR_PATTERNS: Final = sorted(
    ((name, _operator_pattern(name)) for name in OPERATORS),
    key=lambda item: -len(item[0]),
)


class FilterError(ValueError):
    """A malformed filter; ``offset`` is the 0-based character where the problem is."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at character {offset + 1})")


def parse_filter(text: str) -> list[list[ScopeClause]]:
    """The groups (OR) of clauses (AND) that ``text`` describes."""
    parser = _FilterParser(text)
    return parser.parse()


class _FilterParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        # Where the last value() began, so "takes no value" points at the value.
        self.value_start = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def parse(self) -> list[list[ScopeClause]]:
        self.skip_space()
        if self.at_end():
            msg = "the filter is empty; write e.g. department EQUALS 'Sales'"
            raise FilterError(msg, 0)
        groups: list[list[ScopeClause]] = [[]]
        while True:
            groups[-1].append(self.clause())
            self.skip_space()
            if self.at_end():
                return groups
            keyword = _KEYWORD.match(self.text, self.pos)
            if keyword is None:
                found = self.text[self.pos :].split()[0]
                msg = f"expected AND, OR or the end of the filter, found {found!r}"
                raise FilterError(msg, self.pos)
            self.pos = keyword.end()
            if keyword.group(1).upper() == "OR":
                groups.append([])

    def clause(self) -> ScopeClause:
        self.skip_space()
        start = self.pos
        attribute = _ATTRIBUTE.match(self.text, start)
        if attribute is None or _KEYWORD.fullmatch(attribute.group(0)):
            msg = "expected an attribute name, e.g. department"
            raise FilterError(msg, start)
        name = attribute.group(0)
        unscopable = {k.lower(): (k, why) for k, why in UNSCOPABLE.items()}.get(name.lower())
        if unscopable:
            msg = f"{unscopable[0]} can't be used in a scoping filter: {unscopable[1]}"
            raise FilterError(msg, start)
        self.pos = attribute.end()
        self.skip_space()
        operator = self.operator()
        op_end = self.pos
        self.skip_space()
        value = self.value()
        if OPERATORS[operator] == "Unary":
            if value is not None:
                msg = f"{operator} takes no value (write: {name} {operator})"
                raise FilterError(msg, self.value_start)
            return ScopeClause(attribute=name, operator=operator, values=())
        if value is None:
            msg = f"{operator} needs a value, e.g. {name} {operator} 'Sales'"
            raise FilterError(msg, op_end)
        if operator in _REGEX_OPERATORS:
            self.check_regex(value, operator)
        return ScopeClause(attribute=name, operator=operator, values=(value,))

    def check_regex(self, pattern: str, operator: str) -> None:
        problem = regex_problem(pattern)
        if problem is None:
            return
        message, offset = problem
        start = self.value_start
        quoted = self.text[start : start + 1] in {"'", '"'}
        first = start + 1 if quoted else start
        # Exact when the value is spelled without escapes; else point at the value.
        literal = self.text[first : first + len(pattern)] == pattern
        msg = f"{operator} needs a valid regular expression: {message}"
        raise FilterError(msg, first + offset if literal else start)

    def operator(self) -> str:
        start = self.pos
        for name, pattern in _OPERATOR_PATTERNS:
            match = pattern.match(self.text, start)
            if match:
                self.pos = match.end()
                return name
        rest = self.text[start:]
        stop = re.search(r"['\"]|\s(?:AND|OR)(?:\s|$)", rest, re.IGNORECASE)
        found = (rest[: stop.start()] if stop else rest).strip() or "nothing"
        valid = ", ".join(OPERATORS)
        msg = f"unknown scoping operator {found!r}; valid operators: {valid}"
        raise FilterError(msg, start)

    def value(self) -> str | None:
        start = self.value_start = self.pos
        if self.at_end():
            return None
        quote = self.text[start]
        if quote in "'\"":
            chars: list[str] = []
            i = start + 1
            while i < len(self.text):
                char = self.text[i]
                # A backslash escapes the quote and itself; any other is kept, so that a
                # regular expression's \d or \. reaches Graph as written.
                if char == "\\" and self.text[i + 1 : i + 2] in {quote, "\\"}:
                    chars.append(self.text[i + 1])
                    i += 2
                    continue
                if char == quote:
                    self.pos = i + 1
                    return "".join(chars)
                chars.append(char)
                i += 1
            msg = f"the value is missing its closing {quote}"
            raise FilterError(msg, start)
        if _KEYWORD.match(self.text, start):
            return None
        bare = _BARE_VALUE.match(self.text, start)
        if bare is None:  # pragma: no cover - a non-space character always matches
            return None
        self.pos = bare.end()
        return bare.group(0)
