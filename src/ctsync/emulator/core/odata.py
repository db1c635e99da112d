"""OData query options on Graph collections: ``$filter``, ``$select``, ``$orderby``, ``$top``,
``$count``, ``$expand`` and server-driven paging with ``$skiptoken``.

A route declares what it supports (a :class:`FilterSpec`, an :class:`OrderbySpec`, page sizes)
and answers with :func:`collection_response`; anything outside the declaration is refused the
way Graph refuses it (``400 Request_UnsupportedQuery``), so a client cannot come to rely on a
query the real service would reject.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from urllib.parse import quote as _quote

from ctsync.emulator.core.errors import (
    GraphFault,
    bad_request,
    not_implemented,
    unsupported_query,
)
from ctsync.emulator.core.http import EmuResponse, json_response
from ctsync.emulator.core.query_options import expand_refusal, parse_expand

if TYPE_CHECKING:
    from ctsync.emulator.core.context import RequestContext

__all__ = [
    "COMPARISON",
    "DIRECTORY_ADVANCED",
    "DIRECTORY_EXPAND_LIMIT",
    "STRING_FUNCTIONS",
    "CompiledFilter",
    "ExpandSpec",
    "FilterSpec",
    "OrderbySpec",
    "apply_select",
    "collection_response",
    "evaluate",
    "expand_entity",
    "parse_filter",
]

#: The comparison operators, for building a :class:`FilterSpec`.
COMPARISON = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
#: The string functions Graph routes document.
STRING_FUNCTIONS = frozenset({"startswith", "endswith", "contains"})
#: What directory objects only answer as an advanced query (``ConsistencyLevel: eventual`` and
#: ``$count=true``), per Graph's advanced-query page.
DIRECTORY_ADVANCED = frozenset({"ne", "not", "endswith"})

_OPERATORS = COMPARISON | STRING_FUNCTIONS | {"in", "tolower", "toupper", "any", "all", "not"}
_FUNCTION_ARITY = {"startswith": 2, "endswith": 2, "contains": 2, "tolower": 1, "toupper": 1}
_KEYWORDS = COMPARISON | {"and", "or", "not", "in"}

# ---------------------------------------------------------------------------------------------
# $select
# ---------------------------------------------------------------------------------------------


def apply_select(
    obj: Mapping[str, Any],
    select: str | None,
    *,
    type_name: str | None = None,
    keep: Iterable[str] = (),
) -> dict[str, Any]:
    """Keep the properties named in ``$select`` plus every ``@odata.*`` annotation.

    Names match case-insensitively and keep their stored casing; ``id`` is returned only when
    selected, as Graph does. A name the object does not have is ignored unless ``type_name``
    (e.g. ``microsoft.graph.user``) is given, in which case it is Graph's
    ``400 Request_BadRequest`` "Could not find a property named ...": routes whose stored
    objects carry every property (nulls included) pass a type name, so typos surface.
    ``keep`` names properties returned whatever ``$select`` says (expanded ones).
    """
    if select is None or not select.strip():
        return dict(obj)
    kept = {name.lower() for name in keep}
    wanted = {name.strip().lower() for name in select.split(",") if name.strip()}
    if "*" in wanted:
        return dict(obj)
    if type_name is not None:
        present = {key.lower() for key in obj}
        for name in sorted(wanted - present):
            original = next(n.strip() for n in select.split(",") if n.strip().lower() == name)
            msg = f"Could not find a property named '{original}' on type '{type_name}'."
            raise bad_request(msg)
    return {
        key: value
        for key, value in obj.items()
        if key.startswith("@odata.") or key.lower() in wanted or key.lower() in kept
    }


# ---------------------------------------------------------------------------------------------
# $filter: syntax tree
# ---------------------------------------------------------------------------------------------


class _Guid(str):
    """A GUID literal: compared case-insensitively whatever the route's case rule."""

    __slots__ = ()


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Path:
    """A property path; ``var`` is set when it starts at a lambda's range variable."""

    segments: tuple[str, ...]
    var: str | None
    #: The path from the resource root, lower case: what a :class:`FilterSpec` is keyed by.
    spec_key: str
    #: The same path as the client wrote it, for error messages.
    display: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    operand: Node
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Lambda:
    op: str
    collection: Path
    var: str | None
    body: Node | None


@dataclass(frozen=True)
class BoolOp:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Literal | Path | Call | Compare | In | Lambda | BoolOp | Not

# ---------------------------------------------------------------------------------------------
# $filter: tokenizer and parser
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})(?![\w-])
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
      (?![\w:.-])
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])
  | (?P<name>[A-Za-z_][\w]*)
  | (?P<punct>[(),:/])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _syntax_error(text: str, pos: int, detail: str = "") -> GraphFault:
    where = f"Syntax error at position {pos} in '{text}'."
    return GraphFault(400, "BadRequest", f"Invalid filter clause: {detail or where}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            raise _syntax_error(text, pos)
        if m.lastgroup != "ws":
            tokens.append(_Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    return tokens


def _parse_datetime_literal(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Parser:
    """Recursive descent, OData precedence: ``not`` > comparison/``in`` > ``and`` > ``or``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        #: Lambda range variables in scope, innermost last: (name, collection Path).
        self.scopes: list[tuple[str, Path]] = []

    # -- token helpers --------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> _Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise _syntax_error(self.text, len(self.text))
        self.i += 1
        return tok

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.text.lower() in words:
            self.i += 1
            return tok.text.lower()
        return None

    def punct(self, char: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "punct" and tok.text == char:
            self.i += 1
            return True
        return False

    def expect(self, char: str) -> None:
        if not self.punct(char):
            tok = self.peek()
            raise _syntax_error(self.text, tok.pos if tok else len(self.text))

    # -- grammar --------------------------------------------------------------------------

    def parse(self) -> Node:
        if not self.tokens:
            raise _syntax_error(self.text, 0, "The $filter expression is empty.")
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise _syntax_error(self.text, tok.pos)
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.keyword("and"):
            node = BoolOp("and", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.keyword("not"):
            return Not(self.unary())
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        op = self.keyword(*COMPARISON)
        if op is not None:
            return Compare(op, left, self.operand())
        if self.keyword("in"):
            self.expect("(")
            values = [self.literal()]
            while self.punct(","):
                values.append(self.literal())
            self.expect(")")
            return In(left, tuple(values))
        return left

    def literal(self) -> Literal:
        node = self.operand()
        if not isinstance(node, Literal):
            raise _syntax_error(self.text, self.tokens[self.i - 1].pos)
        return node

    def operand(self) -> Node:
        tok = self.take()
        if tok.kind == "punct" and tok.text == "(":
            node = self.or_expr()
            self.expect(")")
            return node
        if tok.kind == "string":
            return Literal(tok.text[1:-1].replace("''", "'"))
        if tok.kind == "guid":
            return Literal(_Guid(tok.text.lower()))
        if tok.kind == "datetime":
            try:
                return Literal(_parse_datetime_literal(tok.text))
            except ValueError as exc:
                raise _syntax_error(self.text, tok.pos) from exc
        if tok.kind == "number":
            is_float = any(c in tok.text for c in ".eE")
            return Literal(float(tok.text) if is_float else int(tok.text))
        if tok.kind == "name":
            word = tok.text.lower()
            if word in {"true", "false"}:
                return Literal(word == "true")
            if word == "null":
                return Literal(None)
            nxt = self.peek()
            if nxt is not None and nxt.kind == "punct" and nxt.text == "(":
                return self.call(tok)
            if word in _KEYWORDS:
                raise _syntax_error(self.text, tok.pos)
            return self.path(tok)
        raise _syntax_error(self.text, tok.pos)

    def call(self, name_tok: _Token) -> Call:
        name = name_tok.text.lower()
        if name not in _FUNCTION_ARITY:
            detail = f"An unknown function with name '{name_tok.text}' was found."
            raise _syntax_error(self.text, name_tok.pos, detail)
        self.expect("(")
        args: list[Node] = []
        if not self.punct(")"):
            args.append(self.or_expr())
            while self.punct(","):
                args.append(self.or_expr())
            self.expect(")")
        if len(args) != _FUNCTION_ARITY[name]:
            detail = (
                f"No function signature for the function with name '{name_tok.text}' "
                "matches the specified arguments."
            )
            raise _syntax_error(self.text, name_tok.pos, detail)
        return Call(name, tuple(args))

    def path(self, first: _Token) -> Path | Lambda:
        segments = [first.text]
        while self.punct("/"):
            tok = self.take()
            if tok.kind != "name":
                raise _syntax_error(self.text, tok.pos)
            nxt = self.peek()
            is_call = nxt is not None and nxt.kind == "punct" and nxt.text == "("
            if tok.text.lower() in {"any", "all"} and is_call:
                return self.lambda_(tok.text.lower(), self.make_path(segments))
            segments.append(tok.text)
        return self.make_path(segments)

    def lambda_(self, op: str, collection: Path) -> Lambda:
        self.expect("(")
        if self.punct(")"):
            if op == "all":
                raise _syntax_error(self.text, self.tokens[self.i - 1].pos)
            return Lambda(op, collection, None, None)
        var_tok = self.take()
        if var_tok.kind != "name" or var_tok.text.lower() in _KEYWORDS:
            raise _syntax_error(self.text, var_tok.pos)
        self.expect(":")
        self.scopes.append((var_tok.text, collection))
        try:
            body = self.or_expr()
        finally:
            self.scopes.pop()
        self.expect(")")
        return Lambda(op, collection, var_tok.text, body)

    def make_path(self, segments: list[str]) -> Path:
        for var, collection in reversed(self.scopes):
            if segments[0] == var:
                rest = segments[1:]
                key = "/".join([collection.spec_key, *(s.lower() for s in rest)])
                display = "/".join([collection.display, *rest])
                return Path(tuple(rest), var, key, display)
        key = "/".join(s.lower() for s in segments)
        return Path(tuple(segments), None, key, "/".join(segments))


def parse_filter(text: str) -> Node:
    """Parse a ``$filter`` expression; a syntax error is Graph's ``400 BadRequest``."""
    return _Parser(text).parse()


# ---------------------------------------------------------------------------------------------
# $filter: evaluation
# ---------------------------------------------------------------------------------------------


def _lookup(obj: Any, segments: Sequence[str]) -> Any:
    for segment in segments:
        if not isinstance(obj, Mapping):
            return None
        if segment in obj:
            obj = obj[segment]
            continue
        lowered = segment.lower()
        obj = next((v for k, v in obj.items() if k.lower() == lowered), None)
    return obj


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _parse_datetime_literal(value)
        except ValueError:
            return None
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _normalise_pair(a: Any, b: Any, case_sensitive: bool) -> tuple[Any, Any] | None:
    """Bring two operands to comparable types, or ``None`` when they cannot compare."""
    if isinstance(a, datetime) or isinstance(b, datetime):
        da, db = _as_datetime(a), _as_datetime(b)
        return None if da is None or db is None else (da, db)
    if isinstance(a, str) and isinstance(b, str):
        if not case_sensitive or isinstance(a, _Guid) or isinstance(b, _Guid):
            return a.casefold(), b.casefold()
        return a, b
    if isinstance(a, bool) and isinstance(b, bool):
        return a, b
    if _is_number(a) and _is_number(b):
        return a, b
    return None


def _compare(op: str, a: Any, b: Any, case_sensitive: bool) -> bool:
    if a is None or b is None:
        # null only equals null; ordering against null is never true (OData semantics).
        if op == "eq":
            return a is None and b is None
        if op == "ne":
            return not (a is None and b is None)
        return False
    pair = _normalise_pair(a, b, case_sensitive)
    if pair is None:
        return op == "ne"
    x, y = pair
    if op == "eq":
        return bool(x == y)
    if op == "ne":
        return bool(x != y)
    if isinstance(x, bool):
        return False
    if op == "gt":
        return bool(x > y)
    if op == "ge":
        return bool(x >= y)
    if op == "lt":
        return bool(x < y)
    return bool(x <= y)


def _eval(node: Node, obj: Any, env: dict[str, Any], cs: bool) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Path):
        root = env[node.var] if node.var is not None else obj
        return _lookup(root, node.segments)
    if isinstance(node, BoolOp):
        left = _eval(node.left, obj, env, cs) is True
        if node.op == "and":
            return left and _eval(node.right, obj, env, cs) is True
        return left or _eval(node.right, obj, env, cs) is True
    if isinstance(node, Not):
        return _eval(node.operand, obj, env, cs) is not True
    if isinstance(node, Compare):
        return _compare(
            node.op, _eval(node.left, obj, env, cs), _eval(node.right, obj, env, cs), cs
        )
    if isinstance(node, In):
        value = _eval(node.operand, obj, env, cs)
        return any(_compare("eq", value, lit.value, cs) for lit in node.values)
    if isinstance(node, Lambda):
        items = _eval(node.collection, obj, env, cs)
        if not isinstance(items, list):
            return False
        if node.body is None or node.var is None:
            return bool(items)
        test = all if node.op == "all" else any
        return test(_eval(node.body, obj, {**env, node.var: item}, cs) is True for item in items)
    return _call(node, obj, env, cs)


def _call(node: Call, obj: Any, env: dict[str, Any], cs: bool) -> Any:
    args = [_eval(arg, obj, env, cs) for arg in node.args]
    if node.name in {"tolower", "toupper"}:
        (value,) = args
        if not isinstance(value, str):
            return None
        return value.lower() if node.name == "tolower" else value.upper()
    haystack, needle = args
    if not isinstance(haystack, str) or not isinstance(needle, str):
        return False
    if not cs:
        haystack, needle = haystack.casefold(), needle.casefold()
    if node.name == "startswith":
        return haystack.startswith(needle)
    if node.name == "endswith":
        return haystack.endswith(needle)
    return needle in haystack


def evaluate(node: Node, obj: Mapping[str, Any], *, case_sensitive: bool = False) -> bool:
    """Whether ``obj`` satisfies a parsed filter.

    ``case_sensitive`` governs string comparisons and string functions: directory objects
    compare case-insensitively, provisioning logs case-sensitively. GUID literals always
    compare case-insensitively.
    """
    return _eval(node, obj, {}, case_sensitive) is True


# ---------------------------------------------------------------------------------------------
# $filter: what a route allows
# ---------------------------------------------------------------------------------------------


def _property_of(node: Node) -> tuple[Path, list[str]] | None:
    """The property a comparison side refers to, with the functions wrapped around it."""
    if isinstance(node, Path):
        return node, []
    if isinstance(node, Call) and node.name in {"tolower", "toupper"}:
        inner = _property_of(node.args[0])
        if inner is not None:
            return inner[0], [*inner[1], node.name]
    return None


def _first_path(node: Node) -> Path | None:
    if isinstance(node, Path):
        return node
    children: tuple[Node | None, ...] = ()
    if isinstance(node, Call):
        children = node.args
    elif isinstance(node, Compare | BoolOp):
        children = (node.left, node.right)
    elif isinstance(node, In | Not):
        children = (node.operand,)
    elif isinstance(node, Lambda):
        return node.collection
    for child in children:
        found = _first_path(child) if child is not None else None
        if found is not None:
            return found
    return None


def _describe(node: Node) -> str:
    path = _first_path(node)
    return path.display if path is not None else ""


@dataclass(frozen=True)
class _Use:
    path: Path
    op: str


def _uses(node: Node, out: list[_Use], unsupported: list[str]) -> None:
    """Collect every (property, operator) a filter uses; note clauses no route could serve."""
    if isinstance(node, BoolOp):
        _uses(node.left, out, unsupported)
        _uses(node.right, out, unsupported)
    elif isinstance(node, Not):
        path = _first_path(node.operand)
        if path is not None:
            out.append(_Use(path, "not"))
        _uses(node.operand, out, unsupported)
    elif isinstance(node, Compare):
        prop = _property_of(node.left) or _property_of(node.right)
        other = node.right if _property_of(node.left) else node.left
        if prop is None or not isinstance(other, Literal):
            unsupported.append(_describe(node))
            return
        out.append(_Use(prop[0], node.op))
        out.extend(_Use(prop[0], fn) for fn in prop[1])
    elif isinstance(node, In):
        prop = _property_of(node.operand)
        if prop is None:
            unsupported.append(_describe(node))
            return
        out.append(_Use(prop[0], "in"))
        out.extend(_Use(prop[0], fn) for fn in prop[1])
    elif isinstance(node, Call) and node.name in STRING_FUNCTIONS:
        prop = _property_of(node.args[0])
        needle = node.args[1]
        if prop is None or not isinstance(needle, Literal) or not isinstance(needle.value, str):
            unsupported.append(_describe(node))
            return
        out.append(_Use(prop[0], node.name))
        out.extend(_Use(prop[0], fn) for fn in prop[1])
    elif isinstance(node, Lambda):
        out.append(_Use(node.collection, node.op))
        if node.body is not None:
            _uses(node.body, out, unsupported)
    elif isinstance(node, Path):
        # A bare boolean property reads as ``prop eq true``.
        out.append(_Use(node, "eq"))
    else:
        msg = (
            "Invalid filter clause: The $filter expression must evaluate to a single boolean value."
        )
        raise GraphFault(400, "BadRequest", msg)


@dataclass(frozen=True)
class CompiledFilter:
    """A parsed filter a :class:`FilterSpec` has accepted."""

    text: str
    root: Node
    case_sensitive: bool
    #: Operators used, e.g. ``{"eq", "startswith", "not"}``.
    operators: frozenset[str]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return evaluate(self.root, obj, case_sensitive=self.case_sensitive)


@dataclass(frozen=True)
class FilterSpec:
    """What ``$filter`` a route serves.

    ``properties`` maps a property path (``/``-separated, matched case-insensitively; a lambda
    body's paths extend the collection's, e.g. ``identities/issuer``) to the operators and
    functions allowed on it, as an iterable or one space-separated string: ``eq ne gt ge lt le
    in startswith endswith contains tolower toupper any all not``. ``resource`` names the type
    in error messages (``User``). ``advanced`` operators are served only as an advanced query
    (``ConsistencyLevel: eventual`` with ``$count=true``); ``not`` must also be listed on the
    property it negates.
    """

    resource: str
    properties: Mapping[str, str | Iterable[str]]
    case_sensitive: bool = False
    advanced: Iterable[str] = ()
    _table: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)
    _advanced: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table: dict[str, frozenset[str]] = {}
        for path, ops in self.properties.items():
            names = frozenset(n.lower() for n in (ops.split() if isinstance(ops, str) else ops))
            unknown = names - _OPERATORS
            if unknown:
                msg = f"unknown $filter operator(s) {sorted(unknown)} for {path!r}"
                raise ValueError(msg)
            table[path.lower()] = names
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_advanced", frozenset(a.lower() for a in self.advanced))

    def _refuse(self, prop: str) -> GraphFault:
        return unsupported_query(
            "Unsupported or invalid query filter clause specified for property "
            f"'{prop}' of resource '{self.resource}'."
        )

    def compile(self, text: str, *, advanced_query: bool = False) -> CompiledFilter:
        """Parse ``text`` and check it against this spec.

        ``advanced_query`` says whether the request is an advanced query; without it the
        ``advanced`` operators are refused like unsupported ones, as Graph does.
        """
        root = parse_filter(text)
        uses: list[_Use] = []
        unsupported: list[str] = []
        _uses(root, uses, unsupported)
        if unsupported:
            raise self._refuse(unsupported[0])
        for use in uses:
            if use.op not in self._table.get(use.path.spec_key, frozenset()):
                raise self._refuse(use.path.display)
            if use.op in self._advanced and not advanced_query:
                raise advanced_only(f"Operator '{_OPERATOR_NAMES.get(use.op, use.op)}'")
        return CompiledFilter(text, root, self.case_sensitive, frozenset(u.op for u in uses))


#: How Graph's messages spell the operators the directory serves only as an advanced query.
_OPERATOR_NAMES = {"endswith": "endsWith", "ne": "ne", "not": "not"}


def advanced_only(what: str) -> GraphFault:
    """Graph's answer when ``what`` needs an advanced query (``ConsistencyLevel: eventual`` and
    ``$count=true``) and the request is not one (aad-advanced-queries, "Error handling")."""
    return unsupported_query(
        f"{what} is not supported because the required parameters might be missing. Try "
        "adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to "
        "https://aka.ms/graph-docs/advanced-queries for more information"
    )


# ---------------------------------------------------------------------------------------------
# $orderby
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderbySpec:
    """Properties a route can sort by (paths matched case-insensitively), each asc or desc;
    ``advanced`` ones only in an advanced query (Graph's table: application and service
    principal ``displayName``)."""

    resource: str
    properties: Iterable[str]
    advanced: Iterable[str] = ()
    _keys: frozenset[str] = field(init=False, repr=False, compare=False)
    _advanced: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keys", frozenset(p.lower() for p in self.properties))
        object.__setattr__(self, "_advanced", frozenset(p.lower() for p in self.advanced))

    def parse(
        self, text: str, *, advanced_query: bool = True
    ) -> list[tuple[tuple[str, ...], bool]]:
        """``[(segments, descending), ...]`` for ``a desc, b``; unknown keys are refused, and
        ``advanced`` keys outside an advanced query."""
        keys: list[tuple[tuple[str, ...], bool]] = []
        for clause in text.split(","):
            parts = clause.split()
            if not parts or len(parts) > 2:
                raise bad_request(f"Invalid $orderby clause: '{text}'.")
            direction = parts[1].lower() if len(parts) == 2 else "asc"
            if direction not in {"asc", "desc"}:
                raise bad_request(f"Invalid $orderby clause: '{text}'.")
            key = parts[0].lower()
            if key not in self._keys and key not in self._advanced:
                msg = (
                    f"Sorting by property '{parts[0]}' of resource '{self.resource}' "
                    "is not supported."
                )
                raise unsupported_query(msg)
            if key in self._advanced and not advanced_query:
                raise advanced_only(f"Sorting by property '{parts[0]}'")
            keys.append((tuple(parts[0].split("/")), direction == "desc"))
        return keys


def _sort_key(value: Any) -> tuple[Any, ...]:
    # Mixed types sort in fixed bands so a missing value never breaks the sort.
    if value is None:
        return (0,)
    if isinstance(value, bool) or _is_number(value):
        return (1, float(value))
    when = _as_datetime(value) if isinstance(value, str | datetime) else None
    if when is not None:
        return (2, when)
    if isinstance(value, str):
        return (3, value.casefold(), value)
    return (4, json.dumps(value, sort_keys=True, default=str))


def _sort(items: list[dict[str, Any]], keys: list[tuple[tuple[str, ...], bool]]) -> None:
    # Stable sorts applied from the last key to the first give a multi-key order with
    # independent directions.
    for segments, descending in reversed(keys):
        items.sort(key=lambda item: _sort_key(_lookup(item, segments)), reverse=descending)


# ---------------------------------------------------------------------------------------------
# paging
# ---------------------------------------------------------------------------------------------

#: Skip tokens are signed so a client that builds or edits one gets a 400, as it would from
#: Graph; the key only needs to be stable across one emulator process and its restarts.
_TOKEN_KEY = b"ctsync-emulator/skiptoken/v1"


def _fingerprint(ctx: RequestContext) -> str:
    # A token is valid only for the query that produced it: same tenant, path, filter, order.
    parts = [
        ctx.tenant.id,
        ctx.path.lower(),
        ctx.query.get("$filter", ""),
        ctx.query.get("$orderby", ""),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _mac(offset: int, fingerprint: str) -> str:
    message = f"{offset}:{fingerprint}".encode()
    return hmac.new(_TOKEN_KEY, message, hashlib.sha256).hexdigest()[:16]


def _encode_skiptoken(offset: int, fingerprint: str) -> str:
    payload = {"o": offset, "f": fingerprint, "m": _mac(offset, fingerprint)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_skiptoken(token: str, fingerprint: str) -> int:
    invalid = bad_request("The $skiptoken value is not valid for this request.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    if not isinstance(payload, dict):
        raise invalid
    offset, mac = payload.get("o"), payload.get("m")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise invalid
    if payload.get("f") != fingerprint or not isinstance(mac, str):
        raise invalid
    if not hmac.compare_digest(mac, _mac(offset, fingerprint)):
        raise invalid
    return offset


def _next_link(ctx: RequestContext, token: str) -> str:
    # Rebuild from the request's own query so every option the client sent carries over,
    # with only $skiptoken replaced.
    pairs = [
        (key, value)
        for key, value in parse_qsl(urlsplit(ctx.request.url).query, keep_blank_values=True)
        if key.lower() != "$skiptoken"
    ]
    pairs.append(("$skiptoken", token))
    query = urlencode(pairs, quote_via=_quote, safe="$',:/()")
    path = _quote(ctx.path, safe="/$()=,:@'")
    return f"{ctx.base_url}{path}?{query}"


def _page_size(raw: str | None, *, default_top: int, max_top: int) -> int:
    if raw is None:
        return default_top
    try:
        top = int(raw.strip())
    except ValueError:
        top = 0
    if not 1 <= top <= max_top:
        msg = f"Invalid page size specified: '{raw}'. Must be between 1 and {max_top} inclusive."
        raise bad_request(msg)
    return top


def _wants_count(ctx: RequestContext) -> bool:
    raw = ctx.query.get("$count")
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in {"true", "false"}:
        raise bad_request(f"Invalid value '{raw}' for $count; expected true or false.")
    return value == "true"


# ---------------------------------------------------------------------------------------------
# the collection answer
# ---------------------------------------------------------------------------------------------


#: How many objects an expanded directory relationship shows (Graph: "typically returns a
#: maximum of 20 items for the expanded relationship and has no @odata.nextLink").
DIRECTORY_EXPAND_LIMIT = 20


@dataclass(frozen=True)
class ExpandSpec:
    """What ``$expand`` a route serves: its entity type (for Graph's answer to any other
    name) and, per navigation property, how to read it for one object. ``directory`` caps a
    collection-valued expansion at :data:`DIRECTORY_EXPAND_LIMIT` objects."""

    type_name: str
    properties: Mapping[str, Callable[[RequestContext, dict[str, Any]], Any]]
    directory: bool = False

    def requested(self, ctx: RequestContext) -> list[str]:
        """The navigation properties ``$expand`` names, in the type's casing; Graph's answer
        for any it cannot name (see :func:`~ctsync.emulator.core.query_options.expand_refusal`)
        or with nested options (``members($select=id)``), which the emulator does not serve."""
        raw = ctx.query.get("$expand")
        if raw is None:
            return []
        known = {name.lower(): name for name in self.properties}
        names: list[str] = []
        for item in parse_expand(raw):
            name = known.get(item.path.lower())
            if name is None or item.options is not None:
                raise expand_refusal(ctx.path, item, self.type_name)
            if name not in names:
                names.append(name)
        return names

    def apply(self, ctx: RequestContext, obj: dict[str, Any], names: list[str]) -> dict[str, Any]:
        out = dict(obj)
        for name in names:
            value = self.properties[name](ctx, obj)
            if self.directory and isinstance(value, list):
                value = value[:DIRECTORY_EXPAND_LIMIT]
            out[name] = value
        return out


def expand_entity(
    ctx: RequestContext, obj: dict[str, Any], spec: ExpandSpec | None
) -> tuple[dict[str, Any], list[str]]:
    """``obj`` with what ``$expand`` asks for, and the expanded names (``$select`` keeps
    them); Graph's refusal when the route expands nothing (``spec`` is ``None``)."""
    if spec is None:
        return obj, []
    names = spec.requested(ctx)
    return (spec.apply(ctx, obj, names) if names else obj), names


def collection_response(
    ctx: RequestContext,
    items: list[dict[str, Any]],
    *,
    context: str,
    filter_spec: FilterSpec | None = None,
    default_top: int = 100,
    max_top: int = 999,
    orderby: OrderbySpec | None = None,
    count_requires_advanced: bool = True,
    type_name: str | None = None,
    expand: ExpandSpec | None = None,
) -> EmuResponse:
    """One page of a Graph collection, after ``$filter``, ``$orderby``, ``$count``, ``$expand``,
    ``$select``.

    ``items`` are the whole collection in the service's natural order. Paging is by offset
    behind a signed ``$skiptoken``; ``@odata.nextLink`` is absolute, built on the request's own
    origin, and is absent on the last page. ``count_requires_advanced`` marks a collection of
    directory objects: ``$count=true`` needs ``ConsistencyLevel: eventual``, ``$filter`` with
    ``$orderby`` needs an advanced query, ``$search`` needs ``ConsistencyLevel: eventual``
    (and then answers 501: the emulator does not search), and ``$expand`` is refused in an
    advanced query, as Graph does. ``type_name`` turns unknown ``$select`` properties into 400s
    (see :func:`apply_select`). ``expand`` names the navigation properties the route expands
    (any other ``$expand`` is refused with Graph's answer). ``$skip`` is refused: the directory
    does not serve it.
    """
    query = ctx.query
    directory = count_requires_advanced
    if "$skip" in query:
        raise bad_request("'$skip' is not supported by the service.")
    want_count = _wants_count(ctx)
    eventual = (ctx.request.header("consistencylevel") or "").strip().lower() == "eventual"
    advanced = eventual and want_count
    if "$search" in query:
        if not directory:
            raise unsupported_query("$search is not supported on this resource.")
        if not eventual:
            raise unsupported_query(
                "Request with $search query parameter only works through MSGraph with a "
                "special request header: 'ConsistencyLevel: eventual'"
            )
        raise not_implemented("GET", f"{ctx.path}?$search={query['$search']}")
    if want_count and directory and not eventual:
        raise bad_request("$count is not currently supported.")
    top = _page_size(query.get("$top"), default_top=default_top, max_top=max_top)
    # Looked at without counting as read: a route that expands nothing must still refuse it.
    if directory and advanced and dict.__contains__(query, "$expand"):
        raise unsupported_query("$expand is not supported in an advanced query.")
    expanded = expand.requested(ctx) if expand is not None else []

    selected = list(items)
    raw_filter = query.get("$filter")
    raw_orderby = query.get("$orderby")
    if directory and raw_filter is not None and raw_orderby is not None and not advanced:
        # Graph documents $filter with $orderby on directory objects as advanced-query only.
        raise unsupported_query("Sorting not supported for current query.")
    if raw_filter is not None:
        if filter_spec is None:
            msg = f"Filtering is not supported on resource '{context}'."
            raise unsupported_query(msg)
        compiled = filter_spec.compile(raw_filter, advanced_query=advanced)
        selected = [item for item in selected if compiled.matches(item)]
    if raw_orderby is not None:
        if orderby is None:
            msg = f"Sorting is not supported on resource '{context}'."
            raise unsupported_query(msg)
        _sort(selected, orderby.parse(raw_orderby, advanced_query=advanced or not directory))

    fingerprint = _fingerprint(ctx)
    token = query.get("$skiptoken")
    offset = _decode_skiptoken(token, fingerprint) if token is not None else 0
    page = selected[offset : offset + top]
    end = offset + len(page)

    body: dict[str, Any] = {"@odata.context": f"{ctx.base_url}/$metadata#{context}"}
    if want_count and token is None:
        body["@odata.count"] = len(selected)
    if end < len(selected):
        body["@odata.nextLink"] = _next_link(ctx, _encode_skiptoken(end, fingerprint))
    if expand is not None and expanded:
        page = [expand.apply(ctx, item, expanded) for item in page]
    select = query.get("$select")
    body["value"] = [
        apply_select(item, select, type_name=type_name, keep=expanded) for item in page
    ]
    return json_response(200, body)
