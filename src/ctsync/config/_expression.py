"""Entra's attribute-mapping expression language, parsed into ``attributeMappingSource``.

Grammar (cts-defaults §2.2, "Syntax")::

    expression := attribute | string | number | call
    attribute  := "[" name "]"                      [department]
    string     := '"' chars '"'  (\\" and \\\\ escape)   "Contoso"
    number     := digits                             1
    call       := Name "(" [argument {"," argument}] ")"
    argument   := expression [("=" | "<>" | ">" | ">=" | "<" | "<=") expression]

Function names are case-sensitive. Positional arguments get the parameter names Graph's
``schema/functions`` publishes (``Mid`` → source, start, length); functions it does not list get
``source``, then ``value1``, ``value2``... A number becomes a ``Constant`` whose own expression is
quoted (``"8"``), exactly as Graph's ``Mid([userPrincipalName], 1, 8)`` example shows.

A comparison (only meaningful inside ``IIF``) has no published wire form; ctsync sends it as a
``Function`` source named by the operator with parameters ``source`` and ``value``, and its
expression text as written (see docs/config.md).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Final

from ._regex import regex_problem
from ._state import AttributeSource

__all__ = ["FUNCTIONS", "MAX_EXPRESSION_LENGTH", "ExpressionError", "parse_expression"]

#: Entra rejects longer expressions (cts-defaults §2.2).
MAX_EXPRESSION_LENGTH: Final = 10_000


@dataclass(frozen=True)
class _Param:
    name: str
    required: bool = True
    many: bool = False


# Graph's GET .../schema/functions answer (cts-defaults §2.2), in its order.
_GRAPH_FUNCTIONS: Final[dict[str, tuple[_Param, ...]]] = {
    "Append": (_Param("source"), _Param("suffix")),
    "DefaultDomain": (),
    "AppRoleAssignments": (_Param("source"),),
    "FormatDateTime": (_Param("source"), _Param("inputFormat"), _Param("outputFormat")),
    "IsNothing": (_Param("source"),),
    "Join": (_Param("separator"), _Param("source", many=True)),
    "Prepend": (_Param("prefix"), _Param("source")),
    "Mid": (_Param("source"), _Param("start"), _Param("length")),
    "Not": (_Param("source"),),
    "Replace": (
        _Param("source"),
        *(
            _Param(name, required=False)
            for name in (
                "Find",
                "RegularExpression",
                "RegularExpressionGroupName",
                "Replacement",
                "ReplacementPropertyName",
                "Template",
            )
        ),
    ),
    "SingleAppRoleAssignment": (_Param("source"),),
    "Split": (_Param("source"), _Param("delimiter", required=False)),
    "StripSpaces": (_Param("source"),),
    "Switch": (
        _Param("source"),
        _Param("defaultValue", required=False),
        _Param("switchValue", required=False, many=True),
    ),
}

# The expression reference's list (cts-defaults §2.2, [FN]); parameters unpublished.
_REFERENCE_FUNCTIONS: Final = (
    "Append",
    "AppRoleAssignmentsComplex",
    "BitAnd",
    "CBool",
    "CDate",
    "Coalesce",
    "ConvertToBase64",
    "ConvertToUTF8Hex",
    "Count",
    "CStr",
    "DateAdd",
    "DateDiff",
    "DateFromNum",
    "FormatDateTime",
    "Guid",
    "IgnoreFlowIfNullOrEmpty",
    "IIF",
    "InStr",
    "IsNull",
    "IsNullOrEmpty",
    "IsPresent",
    "IsString",
    "Item",
    "Join",
    "Left",
    "Mid",
    "NormalizeDiacritics",
    "Not",
    "Now",
    "NumFromDate",
    "PCase",
    "RandomString",
    "Redact",
    "RemoveDuplicates",
    "Replace",
    "SingleAppRoleAssignment",
    "Split",
    "StripSpaces",
    "Switch",
    "ToLower",
    "ToUpper",
    "Word",
)

#: Every function name a mapping may call, sorted.
FUNCTIONS: Final = tuple(sorted(set(_GRAPH_FUNCTIONS) | set(_REFERENCE_FUNCTIONS)))

# In the reference, but documented as not supported for cross-tenant sync.
_NOT_FOR_CTS: Final = {"SelectUniqueValue": "Workday, SuccessFactors and API-driven AD only"}

_COMPARISONS: Final = ("<>", ">=", "<=", "=", ">", "<")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class ExpressionError(ValueError):
    """A malformed expression; ``offset`` is the 0-based character where the problem is."""

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at character {offset + 1})")


def parse_expression(text: str) -> AttributeSource:
    """Parse a mapping expression into Graph's ``attributeMappingSource`` shape."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        msg = f"an expression may be at most {MAX_EXPRESSION_LENGTH:,} characters"
        raise ExpressionError(msg, MAX_EXPRESSION_LENGTH)
    parser = _Parser(text)
    parser.skip_space()
    if parser.at_end():
        msg = 'the expression is empty; write [attribute], "constant" or Function(...)'
        raise ExpressionError(msg, 0)
    source, _ = parser.expression()
    parser.skip_space()
    if not parser.at_end():
        msg = f"unexpected {parser.peek_text()!r} after the end of the expression"
        raise ExpressionError(msg, parser.pos)
    return source


def quote(value: str) -> str:
    """``value`` as a string literal of the expression language."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- scanning -----------------------------------------------------------------------

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def skip_space(self) -> None:
        while not self.at_end() and self.text[self.pos].isspace():
            self.pos += 1

    def peek_text(self) -> str:
        rest = self.text[self.pos :]
        match = re.match(r"\S+", rest)
        return match.group(0)[:20] if match else rest[:1]

    def expect(self, char: str, what: str) -> None:
        self.skip_space()
        if self.at_end() or self.text[self.pos] != char:
            found = "the end" if self.at_end() else repr(self.peek_text())
            msg = f"expected {what}, found {found}"
            raise ExpressionError(msg, self.pos)
        self.pos += 1

    # -- grammar ------------------------------------------------------------------------

    def expression(self) -> tuple[AttributeSource, str]:
        """One term; the second item is its text as it appears inside a larger expression."""
        self.skip_space()
        start = self.pos
        if self.at_end():
            msg = 'expected [attribute], "constant", a number or Function(...), found the end'
            raise ExpressionError(msg, start)
        char = self.text[start]
        if char == "[":
            return self.attribute()
        if char == '"':
            return self.string()
        if char == "'":
            msg = "strings use double quotes in Entra expressions"
            raise ExpressionError(msg, start)
        if number := _NUMBER.match(self.text, start):
            self.pos = number.end()
            digits = number.group(0)
            source = AttributeSource(type="Constant", name=digits, expression=quote(digits))
            return source, digits
        if name := _NAME.match(self.text, start):
            return self.call(name.group(0), start)
        msg = (
            f'unexpected {self.peek_text()!r}; expected [attribute], "constant", a number or '
            "Function(...)"
        )
        raise ExpressionError(msg, start)

    def attribute(self) -> tuple[AttributeSource, str]:
        start = self.pos
        end = self.text.find("]", start + 1)
        if end < 0:
            msg = "the attribute name is missing its closing ]"
            raise ExpressionError(msg, start)
        name = self.text[start + 1 : end]
        if not _ATTRIBUTE.fullmatch(name):
            msg = f"[{name}] is not an attribute name"
            raise ExpressionError(msg, start + 1)
        self.pos = end + 1
        text = f"[{name}]"
        return AttributeSource(type="Attribute", name=name, expression=text), text

    def string(self) -> tuple[AttributeSource, str]:
        start = self.pos
        chars: list[str] = []
        i = start + 1
        while i < len(self.text):
            char = self.text[i]
            if char == "\\" and i + 1 < len(self.text):
                chars.append(self.text[i + 1])
                i += 2
                continue
            if char == '"':
                self.pos = i + 1
                value = "".join(chars)
                text = quote(value)
                return AttributeSource(type="Constant", name=value, expression=text), text
            chars.append(char)
            i += 1
        msg = 'the string is missing its closing "'
        raise ExpressionError(msg, start)

    def call(self, name: str, start: int) -> tuple[AttributeSource, str]:
        self.pos = start + len(name)
        self.skip_space()
        if self.at_end() or self.text[self.pos] != "(":
            msg = (
                f"{name!r} is neither a function call nor a value; write [{name}] for the "
                f'attribute or "{name}" for a constant'
            )
            raise ExpressionError(msg, start)
        _check_function(name, start)
        self.pos += 1
        args: list[tuple[AttributeSource, str, int]] = []
        self.skip_space()
        if not self.at_end() and self.text[self.pos] == ")":
            self.pos += 1
        else:
            while True:
                self.skip_space()
                arg_start = self.pos
                source, text = self.argument()
                args.append((source, text, arg_start))
                self.skip_space()
                if not self.at_end() and self.text[self.pos] == ",":
                    self.pos += 1
                    continue
                self.expect(")", f"',' or ')' to close {name}(")
                break
        keys = _parameter_keys(name, [offset for _, _, offset in args], start)
        for key, (arg, _, offset) in zip(keys, args, strict=True):
            if key == "RegularExpression" and arg.type == "Constant":
                self.check_regex(arg.name, offset)
        text = f"{name}({', '.join(t for _, t, _ in args)})"
        source = AttributeSource(
            type="Function",
            name=name,
            expression=text,
            parameters=tuple((key, arg) for key, (arg, _, _) in zip(keys, args, strict=True)),
        )
        return source, text

    def check_regex(self, pattern: str, offset: int) -> None:
        problem = regex_problem(pattern)
        if problem is None:
            return
        message, at = problem
        # Exact when the string is spelled without escapes; else point at the string.
        literal = self.text[offset + 1 : offset + 1 + len(pattern)] == pattern
        msg = f"RegularExpression needs a valid regular expression: {message}"
        raise ExpressionError(msg, offset + 1 + at if literal else offset)

    def argument(self) -> tuple[AttributeSource, str]:
        left, left_text = self.expression()
        self.skip_space()
        for op in _COMPARISONS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                right, right_text = self.expression()
                text = f"{left_text} {op} {right_text}"
                source = AttributeSource(
                    type="Function",
                    name=op,
                    expression=text,
                    parameters=(("source", left), ("value", right)),
                )
                return source, text
        return left, left_text


def _check_function(name: str, offset: int) -> None:
    if name in _NOT_FOR_CTS:
        msg = f"{name} is not supported by cross-tenant synchronization ({_NOT_FOR_CTS[name]})"
        raise ExpressionError(msg, offset)
    if name in FUNCTIONS:
        return
    by_lower = {f.lower(): f for f in FUNCTIONS}
    if name.lower() in by_lower:
        msg = f"unknown function {name!r}; names are case-sensitive: {by_lower[name.lower()]}"
        raise ExpressionError(msg, offset)
    close = difflib.get_close_matches(name, FUNCTIONS, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    msg = f"unknown function {name!r}; {hint}known functions: {', '.join(FUNCTIONS)}"
    raise ExpressionError(msg, offset)


def _parameter_keys(name: str, offsets: list[int], call_offset: int) -> list[str]:
    """Parameter names for the positional arguments of ``name`` (see the module docstring)."""
    count = len(offsets)
    params = _GRAPH_FUNCTIONS.get(name)
    if params is None:
        return ["source" if i == 0 else f"value{i}" for i in range(count)]
    needed = sum(1 for p in params if p.required)
    if count < needed:
        signature = ", ".join(p.name if p.required else f"{p.name}?" for p in params)
        msg = f"{name} needs {needed} argument(s) ({signature}), got {count}"
        raise ExpressionError(msg, call_offset)
    many = params[-1] if params and params[-1].many else None
    if count > len(params) and many is None:
        msg = f"{name} takes at most {len(params)} argument(s), got {count}"
        raise ExpressionError(msg, offsets[len(params)])
    if name == "Switch" and count % 2:
        msg = "Switch takes source, default, then key/value pairs: an even number of arguments"
        raise ExpressionError(msg, call_offset)
    return [params[i].name if i < len(params) else (many or params[-1]).name for i in range(count)]
