"""Attribute-mapping expressions: what a ``synchronizationSchema`` attribute mapping computes.

A mapping's ``source`` (``attributeMappingSource``) is an ``Attribute`` (``[name]``), a
``Constant`` or a ``Function`` with positional ``parameters``; a function source without
parameters is read from its ``expression`` text (``Append([mail], "x")``). Values are
strings, as in Microsoft's expression language (booleans ``"True"``/``"False"``); ``None`` is
"no value", which the engine never exports. Semantics follow cts-defaults §2.2 (the
"functions for customizing application data" reference); the functions the emulator does not
implement raise :class:`UnsupportedFunctionError`, which the engine logs as a warning and skips the
mapping for.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Evaluate",
    "ExpressionError",
    "UnsupportedFunctionError",
    "compile_source",
    "evaluate_source",
    "parse_expression",
]

Value = str | list[str] | None


class ExpressionError(ValueError):
    """The expression cannot be evaluated (bad syntax, wrong argument count)."""


class UnsupportedFunctionError(ExpressionError):
    """A function of the expression language the emulator does not implement."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The function '{name}' is not supported by the emulator.")
        self.name = name


# -- a small parser for expression text ------------------------------------------------------


@dataclass(frozen=True)
class _Attr:
    name: str


@dataclass(frozen=True)
class _Const:
    value: str


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple[_Node, ...]


@dataclass(frozen=True)
class _Compare:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Null:
    pass


_Node = _Attr | _Const | _Call | _Compare | _Null

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<attr>\[[^\]]*\])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][\w.]*)
  | (?P<op><>|>=|<=|=|>|<)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            msg = f"Syntax error at position {pos} in expression '{text}'."
            raise ExpressionError(msg)
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def fail(self) -> ExpressionError:
        return ExpressionError(f"Syntax error in expression '{self.text}'.")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.fail()
        self.i += 1
        return tok

    def parse(self) -> _Node:
        node = self.comparison()
        if self.peek() is not None:
            raise self.fail()
        return node

    def comparison(self) -> _Node:
        left = self.operand()
        tok = self.peek()
        if tok is not None and tok[0] == "op":
            self.i += 1
            return _Compare(tok[1], left, self.operand())
        return left

    def operand(self) -> _Node:
        kind, text = self.take()
        if kind == "attr":
            return _Attr(text[1:-1].strip())
        if kind == "string":
            return _Const(re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "number":
            return _Const(text)
        if kind == "name":
            nxt = self.peek()
            if nxt == ("punct", "("):
                self.i += 1
                args: list[_Node] = []
                if self.peek() == ("punct", ")"):
                    self.i += 1
                    return _Call(text, ())
                while True:
                    # An omitted argument (``Replace([mail], "a", , , "b", , )``) is null.
                    if self.peek() in {("punct", ","), ("punct", ")")}:
                        args.append(_Null())
                    else:
                        args.append(self.comparison())
                    sep = self.take()
                    if sep == ("punct", ")"):
                        return _Call(text, tuple(args))
                    if sep != ("punct", ","):
                        raise self.fail()
            # A bare word: a boolean literal (True/False) or a constant.
            return _Const(text)
        raise self.fail()


def parse_expression(text: str) -> _Node:
    """Parse expression text such as ``Join(" ", [givenName], [surname])``."""
    return _Parser(text).parse()


# -- evaluation ------------------------------------------------------------------------------


def _text(value: Value) -> str | None:
    if isinstance(value, list):
        return ",".join(value) if value else None
    return value


def _truthy(value: Value) -> bool:
    return (_text(value) or "").strip().lower() == "true"


def _flag(value: bool) -> str:
    return "True" if value else "False"


def _number(value: Value) -> float | None:
    try:
        return float(_text(value) or "")
    except ValueError:
        return None


def _compare(op: str, left: Value, right: Value) -> str:
    a, b = _text(left), _text(right)
    if a is None or b is None or a == "" or b == "":
        # IIF "fails if the attribute is null/empty": the condition is false.
        return "False"
    if op in {"=", "<>"}:
        return _flag((a == b) == (op == "="))
    x, y = _number(a), _number(b)
    if x is None or y is None:
        pair: tuple[Any, Any] = (a, b)
    else:
        pair = (x, y)
    checks: dict[str, Callable[[Any, Any], bool]] = {
        ">": lambda p, q: p > q,
        ">=": lambda p, q: p >= q,
        "<": lambda p, q: p < q,
        "<=": lambda p, q: p <= q,
    }
    return _flag(checks[op](*pair))


def _arity(name: str, args: Sequence[Any], low: int, high: int | None = None) -> None:
    top = low if high is None else high
    if not low <= len(args) <= top:
        msg = f"The function '{name}' takes {low}" + (f" to {top}" if top != low else "")
        raise ExpressionError(msg + f" arguments; got {len(args)}.")


def _int(value: Value, name: str) -> int:
    number = _number(value)
    if number is None:
        msg = f"The function '{name}' needs an integer argument; got {value!r}."
        raise ExpressionError(msg)
    return int(number)


class _Evaluator:
    """Evaluates a node against a source user's attributes (sync-schema names)."""

    def __init__(self, attributes: Mapping[str, Value], context: Mapping[str, str]) -> None:
        self.attributes = attributes
        self.context = context

    def attribute(self, name: str) -> Value:
        if name in self.attributes:
            return self.attributes[name]
        lowered = name.lower()
        return next((v for k, v in self.attributes.items() if k.lower() == lowered), None)

    def node(self, node: _Node) -> Value:
        if isinstance(node, _Attr):
            return self.attribute(node.name)
        if isinstance(node, _Const):
            return node.value
        if isinstance(node, _Null):
            return None
        if isinstance(node, _Compare):
            return _compare(node.op, self.node(node.left), self.node(node.right))
        return self.call(node.name, [functools.partial(self.node, a) for a in node.args])

    def call(self, name: str, args: list[Callable[[], Value]]) -> Value:
        if name == "IIF":
            _arity(name, args, 3)
            return args[1]() if _truthy(args[0]()) else args[2]()
        if name == "Coalesce":
            for arg in args:
                value = arg()
                if _text(value):
                    return value
            return None
        if name == "Switch":
            return self.switch(args)
        if name == "Replace":
            return self.replace([a() for a in args])
        if name == "DefaultDomain":
            _arity(name, args, 0)
            return self.context.get("defaultDomain")
        if name == "AltSecIdFromNetId":
            _arity(name, args, 1)
            net_id = _text(args[0]())
            tenant = self.context.get("tenantId", "")
            return None if net_id is None else f"5::{tenant}:{net_id}"
        function = _FUNCTIONS.get(name)
        if function is None:
            raise UnsupportedFunctionError(name)
        low, high, body = function
        values = [a() for a in args]
        _arity(name, values, low, high)
        if name != "Join" and _text(values[0] if values else None) is None and name not in _NULL_OK:
            return None
        return body(values)

    def replace(self, values: list[Value]) -> Value:
        # Replace(source, oldValue, regexPattern, regexGroupName, replacementValue,
        #         replacementAttributeName, template): literal and regex forms.
        _arity("Replace", values, 3, 7)
        source = _text(values[0])
        if source is None:
            return None
        padded = [*values, *[None] * (7 - len(values))]
        old, pattern, group, replacement, replacement_attr = (_text(v) for v in padded[1:6])
        if replacement is None and replacement_attr:
            replacement = _text(self.attribute(replacement_attr))
        new = replacement or ""
        if old:
            return source.replace(old, new)
        if pattern:
            regex = re.compile(pattern)
            if group:
                found = regex.search(source)
                if found is None or found.groupdict().get(group) is None:
                    return source
                return source.replace(found.group(group), new)
            return regex.sub(new.replace("\\", "\\\\"), source)
        return source

    def switch(self, args: list[Callable[[], Value]]) -> Value:
        # Switch(source, defaultValue, key1, value1, key2, value2, ...): case-sensitive.
        if len(args) < 2 or len(args) % 2 != 0:
            msg = "The function 'Switch' takes a source, a default and key/value pairs."
            raise ExpressionError(msg)
        source = _text(args[0]())
        for i in range(2, len(args), 2):
            if source is not None and _text(args[i]()) == source:
                return args[i + 1]()
        return args[1]()


def _join(values: list[Value]) -> Value:
    parts: list[str] = []
    for value in values[1:]:
        if isinstance(value, list):
            parts.extend(value)
        elif value is not None:
            parts.append(value)
    return (_text(values[0]) or "").join(parts)


def _mid(values: list[Value]) -> Value:
    text = _text(values[0]) or ""
    start = max(_int(values[1], "Mid"), 1) - 1  # 1-based, as in the reference
    return text[start : start + max(_int(values[2], "Mid"), 0)]


def _word(values: list[Value]) -> Value:
    text = _text(values[0]) or ""
    separators = "[" + re.escape(_text(values[2]) or " ") + "]"
    words = [w for w in re.split(separators, text) if w]
    index = _int(values[1], "Word")
    return words[index - 1] if 1 <= index <= len(words) else None


def _normalize(values: list[Value]) -> Value:
    decomposed = unicodedata.normalize("NFKD", _text(values[0]) or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _emptiness(name: str) -> Callable[[list[Value]], Value]:
    def test(values: list[Value]) -> Value:
        text = _text(values[0])
        empty = text is None if name == "IsNull" else not text
        return _flag(not empty if name == "IsPresent" else empty)

    return test


def _split(values: list[Value]) -> Value:
    sep = _text(values[1]) if len(values) > 1 else ","
    return (_text(values[0]) or "").split(sep or ",")


#: name -> (min args, max args, body). A body receives evaluated arguments; unless the name is
#: in ``_NULL_OK``, a null first argument makes the result null without calling it.
_FUNCTIONS: dict[str, tuple[int, int, Callable[[list[Value]], Value]]] = {
    "Append": (2, 2, lambda v: f"{_text(v[0])}{_text(v[1]) or ''}"),
    "Prepend": (
        2,
        2,
        lambda v: None if _text(v[1]) is None else f"{_text(v[0]) or ''}{_text(v[1])}",
    ),
    "Join": (1, 99, _join),
    "ToLower": (1, 2, lambda v: (_text(v[0]) or "").lower()),
    "ToUpper": (1, 2, lambda v: (_text(v[0]) or "").upper()),
    "StripSpaces": (1, 1, lambda v: (_text(v[0]) or "").replace(" ", "")),
    "Trim": (1, 1, lambda v: (_text(v[0]) or "").strip()),
    "Mid": (3, 3, _mid),
    "Left": (2, 2, lambda v: (_text(v[0]) or "")[: max(_int(v[1], "Left"), 0)]),
    "Not": (1, 1, lambda v: _flag(not _truthy(v[0]))),
    "CStr": (1, 1, lambda v: _text(v[0])),
    "CBool": (1, 1, lambda v: _flag(_truthy(v[0]))),
    "IsNull": (1, 1, _emptiness("IsNull")),
    "IsNullOrEmpty": (1, 1, _emptiness("IsNullOrEmpty")),
    "IsPresent": (1, 1, _emptiness("IsPresent")),
    "IgnoreFlowIfNullOrEmpty": (1, 1, lambda v: v[0] if _text(v[0]) else None),
    "Split": (1, 2, _split),
    "Word": (3, 3, _word),
    "NormalizeDiacritics": (1, 1, _normalize),
    "PCase": (1, 2, lambda v: (_text(v[0]) or "").title()),
    "SingleAppRoleAssignment": (1, 1, lambda v: _text(v[0])),
    "AppRoleAssignments": (1, 1, lambda v: _text(v[0])),
    "AppRoleAssignmentsComplex": (1, 1, lambda v: _text(v[0])),
}
_NULL_OK = frozenset({"Prepend", "IsNull", "IsNullOrEmpty", "IsPresent", "CBool"})


def _source_node(source: Mapping[str, Any]) -> _Node:
    kind = source.get("type")
    name = source.get("name")
    expression = source.get("expression")
    if kind == "Attribute":
        if not name:
            if isinstance(expression, str) and expression.strip():
                return parse_expression(expression)
            msg = "An Attribute source needs a name."
            raise ExpressionError(msg)
        return _Attr(str(name))
    if kind == "Constant":
        if name is not None:
            return _Const(str(name))
        if isinstance(expression, str):
            node = parse_expression(expression)
            if isinstance(node, _Const):
                return node
        msg = "A Constant source needs a value."
        raise ExpressionError(msg)
    if kind == "Function":
        parameters = source.get("parameters") or []
        if parameters:
            args = tuple(
                _source_node((p or {}).get("value") or {})
                for p in parameters
                if isinstance(p, dict)
            )
            return _Call(str(name), args)
        if isinstance(expression, str) and expression.strip():
            return parse_expression(expression)
        return _Call(str(name), ())
    msg = f"Unknown attributeMappingSource type {kind!r}."
    raise ExpressionError(msg)


def evaluate_source(
    source: Mapping[str, Any],
    attributes: Mapping[str, Value],
    *,
    context: Mapping[str, str] | None = None,
) -> Value:
    """The value an ``attributeMappingSource`` gives for a source object.

    ``context`` supplies what functions read besides attributes (``defaultDomain``,
    ``tenantId``). Raises :class:`UnsupportedFunctionError` or :class:`ExpressionError`.
    """
    return _Evaluator(attributes, context or {}).node(_source_node(source))


#: A compiled ``attributeMappingSource``: (source attributes, context) -> value.
Evaluate = Callable[[Mapping[str, Value], Mapping[str, str]], Value]


def compile_source(source: Mapping[str, Any]) -> Evaluate:
    """Parse an ``attributeMappingSource`` once; the function evaluates it as
    :func:`evaluate_source` would. Raises :class:`ExpressionError` for a source that cannot be
    parsed; evaluating may raise it too (unknown functions, wrong argument counts)."""
    node = _source_node(source)
    if isinstance(node, _Const):
        value = node.value
        return lambda attributes, context: value
    if isinstance(node, _Attr):
        name = node.name
        lowered = name.lower()

        def attribute(attributes: Mapping[str, Value], context: Mapping[str, str]) -> Value:
            if name in attributes:
                return attributes[name]
            return next((v for k, v in attributes.items() if k.lower() == lowered), None)

        return attribute
    return lambda attributes, context: _Evaluator(attributes, context).node(node)
