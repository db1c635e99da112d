"""YAML 1.2 in, plain Python data out, with the line and column of every key and value.

ruamel.yaml's round-trip loader remembers where each node was; the rest of the config package
works on plain ``dict``/``list``/scalars and asks a :class:`Locator` where a path came from.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from ctsync.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_NODES", "DataPath", "Document", "Locator", "read_yaml", "walk"]

#: Keys and list indices from the document root to a node.
DataPath = tuple[str | int, ...]

#: The most nodes (keys, values and list items, aliases expanded) a config may have. A
#: 100-tenant mesh with templates and mappings has about 2,000, a thousand links written one by
#: one with overrides about 50,000. Aliases are shared by ruamel but expanded here, so nine
#: lines of nested aliases ("billion laughs") would otherwise grow to 9**9 nodes.
MAX_NODES: Final = 100_000

#: The deepest nesting of mappings and lists. A config needs about 8 (links[0].overrides.sync.
#: scope.filter[0].name); ruamel's composer recurses per level and hits Python's recursion
#: limit at a few hundred.
MAX_DEPTH: Final = 64

_HUGE: Final = 10**1000

_DUPLICATE = re.compile(r'found duplicate key "(.*?)" with value')


class Locator:
    """Where each node of a document was: ``file:line:col`` strings, 1-based."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self._lines = text.splitlines()
        self._keys: dict[DataPath, tuple[int, int]] = {}
        self._values: dict[DataPath, tuple[int, int]] = {(): (0, 0)}

    def record(
        self, path: DataPath, *, key: tuple[int, int] | None, value: tuple[int, int]
    ) -> None:
        if key is not None:
            self._keys[path] = key
        self._values[path] = value

    def value(self, path: DataPath) -> str:
        """Where the value at ``path`` starts (for an empty value: its key)."""
        return self._format(self._value_pos(path))

    def key(self, path: DataPath) -> str:
        """Where the key naming ``path`` is; a list item or the root has no key: its value."""
        while path and path not in self._keys and path not in self._values:
            path = path[:-1]
        return self._format(self._keys.get(path) or self._value_pos(path))

    def inside(self, path: DataPath, offset: int, text: str) -> str:
        """Where character ``offset`` of the string ``text`` at ``path`` is.

        Exact for a one-line plain or quoted scalar whose source spells ``text`` literally up
        to ``offset``; otherwise (escapes, block scalars) where the value starts.
        """
        line, col = self._value_pos(path)
        if line < len(self._lines):
            source = self._lines[line]
            start = col + 1 if source[col : col + 1] in {"'", '"'} else col
            if source[start : start + offset] == text[:offset]:
                return self._format((line, start + offset))
        return self._format((line, col))

    def _value_pos(self, path: DataPath) -> tuple[int, int]:
        while path not in self._values:
            path = path[:-1]
        key = self._keys.get(path)
        # ruamel puts an empty value (``key:`` and nothing after it) at the start of whatever
        # comes next; and a value that starts on the following line is best shown by its key.
        if key is not None and self._is_empty_value(key):
            return key
        return self._values[path]

    def _is_empty_value(self, key: tuple[int, int]) -> bool:
        line = self._lines[key[0]] if key[0] < len(self._lines) else ""
        after = line[key[1] :].split(":", 1)
        return len(after) == 2 and not after[1].split("#", 1)[0].strip()

    def _format(self, pos: tuple[int, int]) -> str:
        return f"{self.name}:{pos[0] + 1}:{pos[1] + 1}"


@dataclass(frozen=True)
class Document:
    """A parsed config file: plain data and where each node came from."""

    data: Any
    locator: Locator


def read_yaml(text: str, *, name: str) -> Document:
    """Parse ``text`` (YAML 1.2, duplicate keys refused); :class:`ConfigError` with the place.

    Events are checked as they come out of the parser (see :class:`_Shape`), so a document
    nested too deeply or expanding past :data:`MAX_NODES` through aliases is refused before
    ruamel's recursive composer or :func:`_plain` pays for it.
    """
    fast = _read_fast(text, name)
    if fast is not None:
        return fast
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        yaml = YAML(typ="rt")
        yaml.Scanner = _scanner()
        yaml.Parser = _parser()
        yaml.Constructor = _constructor()
        tree = yaml.load(text)
    except _RefusedError as exc:
        raise ConfigError(exc.message, location=_mark(name, exc.mark)) from None
    except DuplicateKeyError as exc:
        # ruamel's own message quotes both values; build one that names only the key.
        found = _DUPLICATE.search(str(exc.problem or ""))
        key = found.group(1) if found else "?"
        where = _mark(name, exc.problem_mark)
        msg = f"duplicate key {key!r}: a key may appear only once in a mapping"
        raise ConfigError(msg, location=where) from None
    except MarkedYAMLError as exc:
        msg = f"YAML syntax error: {exc.problem or 'cannot parse this'}"
        if exc.context and exc.context_mark is not None:
            msg += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise ConfigError(msg, location=_mark(name, exc.problem_mark)) from None
    except YAMLError as exc:
        # Reader errors (a NUL byte, invalid UTF-8 sequences) carry no mark.
        msg = f"not a YAML document: {type(exc).__name__}"
        raise ConfigError(msg, location=name) from None
    except RecursionError:
        # The scanner and _check_events bound the depth; this is the backstop.
        raise ConfigError(_too_deep(), location=name) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # ruamel builds some valid YAML it cannot hold: a mapping used as a key inside a
        # merge, say ("unhashable type"). No config needs such a thing: say so, not crash.
        msg = f"YAML that cannot be read as config data ({type(exc).__name__}: {exc})"
        raise ConfigError(msg, location=name) from None
    locator = Locator(name, text)
    if tree is None:
        msg = "the file is empty; a config needs at least 'version: 1' and 'tenants:'"
        raise ConfigError(msg, location=f"{name}:1:1")
    data = _plain(tree, (), locator, _Budget())
    return Document(data=data, locator=locator)


class _NotPlainError(Exception):
    """The document uses something the fast reader leaves to the round-trip one."""


_MISSING: Final = object()

#: Tags of plain scalars the fast reader builds itself; anything else goes the long way.
_PLAIN_TAGS: Final = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}


def _read_fast(text: str, name: str) -> Document | None:
    """The same document :func:`read_yaml`'s round-trip path builds — data and positions —
    from libyaml's events (``ruamel.yaml.clib``), some twenty times faster, or ``None``.

    Only the plain shape of a config is read here: mappings of text keys, lists, scalars
    without tags or anchors. Anything else — anchors and aliases, merge keys, tags, complex
    or repeated keys, timestamps, several documents, any error — returns ``None`` and the
    round-trip path reads the file, so its answers and messages are the only ones there are.
    The same limits hold (:class:`_Shape` sees every event first).
    """
    try:
        from _ruamel_yaml import CParser
    except ImportError:
        return None
    try:
        return _build_fast(CParser(text), text, name)
    except (_NotPlainError, _RefusedError):
        return None
    except Exception:  # any parse error: the round-trip path reports it
        return None


def _build_fast(parser: Any, text: str, name: str) -> Document:
    from ruamel.yaml import events

    builder = _FastBuilder(text, name)
    shape = _Shape()
    documents = 0
    while True:
        event = parser.get_event()
        shape.feed(event)
        kind = type(event)
        if kind is events.ScalarEvent:
            builder.scalar(event)
        elif kind is events.MappingStartEvent or kind is events.SequenceStartEvent:
            builder.open(event, is_map=kind is events.MappingStartEvent)
        elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
            builder.close()
        elif kind is events.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _NotPlainError
        elif kind is events.StreamEndEvent:
            break
        elif kind is events.AliasEvent:
            builder.alias(event)
    if builder.root is _MISSING:
        raise _NotPlainError
    return Document(data=builder.root, locator=builder.locator)


class _FastBuilder:
    """Plain data and positions from events, without recursion (see :func:`_read_fast`).

    An alias is expanded as the round-trip reader expands it: a fresh copy of the anchored
    value, whose own position is the anchored node's, and whose keys and items keep the
    positions they have under the anchor.
    """

    def __init__(self, text: str, name: str) -> None:
        from ruamel.yaml import YAML
        from ruamel.yaml.nodes import ScalarNode

        yaml = YAML(typ="rt")
        self.resolver, self.constructor, self.node = yaml.resolver, yaml.constructor, ScalarNode
        self.locator = Locator(name, text)
        # Open collections: [container, path, is mapping, pending key, its position, anchor].
        self.stack: list[list[Any]] = []
        self.root: Any = _MISSING
        #: anchor -> (value, its position, the positions below it relative to it)
        self.anchors: dict[str, tuple[Any, tuple[int, int], list[_Rel]]] = {}
        #: Anchored collections still open, and the positions recorded below each.
        self.recording: list[tuple[DataPath, list[_Rel]]] = []

    def value_of(self, event: Any) -> Any:
        if event.tag:
            raise _NotPlainError
        if event.style:  # quoted or block: text
            return event.value
        tag = self.resolver.resolve(self.node, event.value, event.implicit)
        kind = str(tag)  # ruamel answers a Tag object
        if kind not in _PLAIN_TAGS:
            raise _NotPlainError
        if kind == "tag:yaml.org,2002:str":
            return event.value
        built = self.constructor.construct_object(self.node(tag, event.value), deep=True)
        value = _scalar(built)
        if isinstance(value, int) and abs(value) >= _HUGE:
            raise _NotPlainError
        return value

    def scalar(self, event: Any) -> None:
        value = self.value_of(event)
        position = (event.start_mark.line, event.start_mark.column)
        self.place(value, position, collection=False)
        if event.anchor:
            self.anchors[str(event.anchor)] = (value, position, [])

    def alias(self, event: Any) -> None:
        found = self.anchors.get(str(event.anchor))
        if found is None:
            raise _NotPlainError
        value, position, below = found
        path = self.place(copy.deepcopy(value), position, collection=False, alias=True)
        for rel, key, where in below:
            self.record((*path, *rel), key=key, value=where)

    def open(self, event: Any, *, is_map: bool) -> None:
        if event.tag and not event.implicit:
            raise _NotPlainError
        container: Any = {} if is_map else []
        position = (event.start_mark.line, event.start_mark.column)
        path = self.place(container, position, collection=True)
        anchor = str(event.anchor) if event.anchor else None
        self.stack.append([container, path, is_map, None, None, anchor])
        if anchor is not None:
            self.recording.append((path, []))
            self.anchors.pop(anchor, None)  # a redefinition: the new one from here on

    def close(self) -> None:
        container, path, _, _, _, anchor = self.stack.pop()
        if anchor is not None:
            _, below = self.recording.pop()
            where = self.locator._values.get(path, (0, 0))
            self.anchors[anchor] = (container, where, below)

    def record(
        self, path: DataPath, *, key: tuple[int, int] | None, value: tuple[int, int]
    ) -> None:
        self.locator.record(path, key=key, value=value)
        for top, below in self.recording:
            if path[: len(top)] == top:
                below.append((path[len(top) :], key, value))

    def place(
        self,
        value: Any,
        position: tuple[int, int],
        *,
        collection: bool,
        alias: bool = False,
    ) -> DataPath:
        if not self.stack:
            if not (collection or alias) or self.root is not _MISSING:
                raise _NotPlainError
            self.root = value
            return ()
        frame = self.stack[-1]
        container, is_map = frame[0], frame[2]
        path: DataPath = frame[1]
        if is_map:
            if frame[3] is None:  # this node is a key
                if collection or alias or not isinstance(value, str) or value in container:
                    raise _NotPlainError
                frame[3], frame[4] = value, position
                return path
            key = frame[3]
            child: DataPath = (*path, key)
            self.record(child, key=frame[4], value=position)
            container[key] = value
            frame[3] = None
            return child
        child = (*path, len(container))
        self.record(child, key=None, value=position)
        container.append(value)
        return child


#: A position below an anchor: (path relative to it, key position, value position).
_Rel = tuple[DataPath, "tuple[int, int] | None", tuple[int, int]]


def _mark(name: str, mark: Any) -> str:
    if mark is None:
        return name
    return f"{name}:{mark.line + 1}:{mark.column + 1}"


def _too_deep() -> str:
    return (
        f"nested too deeply: more than {MAX_DEPTH} levels of mappings and lists "
        "(a config needs about 8)"
    )


def _too_many() -> str:
    return (
        f"too many values: more than {MAX_NODES:,} once aliases are expanded, the most "
        "ctsync reads (aliases of lists of aliases multiply)"
    )


class _Shape:
    """Counts nodes and levels event by event; refuses past MAX_NODES or MAX_DEPTH.

    Parser events come out without recursion and before the composer builds anything, so the
    limits hold before any cost is paid. Each anchor remembers how many nodes and levels it
    holds, so an alias costs what :func:`_plain` will expand it to, and an alias bomb is
    refused at the alias that crosses the limit. Scalar keys are not counted (as in
    :func:`walk`).
    """

    def __init__(self) -> None:
        from ruamel.yaml import events

        self.events = events
        self.total = 0
        self.anchors: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, levels below)
        # Per open collection: anchor, is it a mapping, and [nodes, levels below, children].
        self.open: list[tuple[str | None, bool, list[int]]] = []

    def feed(self, event: Any) -> None:
        events = self.events
        if isinstance(event, events.ScalarEvent):
            is_key = self._next_is_key()
            self._add(0 if is_key else 1, 0, event)
            if event.anchor:
                self.anchors[str(event.anchor)] = (1, 0)
        elif isinstance(event, events.AliasEvent):
            self._next_is_key()
            self._add(*self.anchors.get(str(event.anchor), (1, 0)), event)
        elif isinstance(event, events.CollectionStartEvent):
            self._next_is_key()
            if len(self.open) > MAX_DEPTH:
                raise _RefusedError(_too_deep(), event.start_mark)
            self._count(1, event)
            anchor = str(event.anchor) if event.anchor else None
            is_mapping = isinstance(event, events.MappingStartEvent)
            self.open.append((anchor, is_mapping, [1, 0, 0]))
        elif isinstance(event, events.CollectionEndEvent) and self.open:
            anchor, _, (nodes, height, _) = self.open.pop()
            if anchor is not None:
                self.anchors[anchor] = (nodes, height)
            self._into_parent(nodes, height)

    def _next_is_key(self) -> bool:
        """Whether the node that starts now is a mapping key (and count it as a child)."""
        if not self.open:
            return False
        _, is_mapping, counts = self.open[-1]
        counts[2] += 1
        return is_mapping and counts[2] % 2 == 1

    def _count(self, nodes: int, event: Any) -> None:
        self.total += nodes
        if self.total > MAX_NODES:
            raise _RefusedError(_too_many(), event.start_mark)

    def _add(self, nodes: int, height: int, event: Any) -> None:
        self._count(nodes, event)
        if len(self.open) + height > MAX_DEPTH:
            raise _RefusedError(_too_deep(), event.start_mark)
        self._into_parent(nodes, height)

    def _into_parent(self, nodes: int, height: int) -> None:
        if self.open:
            counts = self.open[-1][2]
            counts[0] += nodes
            counts[1] = max(counts[1], height + 1)


@functools.cache
def _parser() -> type:
    """ruamel's round-trip parser, with every event the composer takes checked by _Shape."""
    from ruamel.yaml.parser import RoundTripParser

    class Parser(RoundTripParser):
        def __init__(self, loader: Any) -> None:
            super().__init__(loader)
            self.shape = _Shape()

        def get_event(self) -> Any:
            event = super().get_event()
            self.shape.feed(event)
            return event

    return Parser


@functools.cache
def _constructor() -> type:
    """ruamel's round-trip constructor, with a bad scalar (``2026-13-45``, a 5,000-digit
    number) reported at its place instead of escaping as a bare ValueError."""
    from ruamel.yaml.constructor import RoundTripConstructor

    class Constructor(RoundTripConstructor):
        def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
            try:
                return super().construct_non_recursive_object(node, tag)
            except (ValueError, OverflowError) as exc:
                kind = str(tag or node.tag).rsplit(":", 1)[-1]
                what = {"int": "number", "float": "number", "timestamp": "date"}.get(kind, kind)
                detail = str(exc).split(";", 1)[0]
                msg = f"cannot read this {what}: {detail} (quote it to make it text)"
                raise _RefusedError(msg, node.start_mark) from None

    return Constructor


@functools.cache
def _scanner() -> type:
    """ruamel's round-trip scanner, refusing nesting past MAX_DEPTH as soon as it sees it.

    For each open ``[`` or ``{`` the scanner keeps a possible simple key and re-checks all of
    them per token, and it reads ahead to the innermost one before the first event comes out:
    ``[[[[...`` costs the square of its depth (10,000 levels: seconds; 2,000,000: hours).
    Block nesting (``- - - - x``) is cut off at the same depth.
    """
    from ruamel.yaml.scanner import RoundTripScanner

    class Scanner(RoundTripScanner):
        def fetch_flow_collection_start(self, token_class: Any, to_push: str) -> None:
            if self.flow_level > MAX_DEPTH:
                raise _RefusedError(_too_deep(), self.reader.get_mark())
            super().fetch_flow_collection_start(token_class, to_push)

        def add_indent(self, column: int) -> bool:
            if len(self.indents) > MAX_DEPTH:
                raise _RefusedError(_too_deep(), self.reader.get_mark())
            return bool(super().add_indent(column))

    return Scanner


class _RefusedError(Exception):
    """Input read_yaml refuses, and where it is in the text (read_yaml adds the file name)."""

    def __init__(self, message: str, mark: Any) -> None:
        self.message = message
        self.mark = mark
        super().__init__(message)


class _Budget:
    """Nodes :func:`_plain` may still produce; shared by the whole document."""

    def __init__(self) -> None:
        self.left = MAX_NODES

    def spend(self, count: int, locator: Locator, path: DataPath) -> None:
        self.left -= count
        if self.left < 0:
            raise ConfigError(_too_many(), location=locator.value(path))


def _plain(node: Any, path: DataPath, locator: Locator, budget: _Budget) -> Any:
    # The event scan in read_yaml already bounds both; this is the backstop for what it
    # cannot see (keys brought in by merges), and it keeps _plain safe on its own.
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    budget.spend(1, locator, path)
    if len(path) > MAX_DEPTH:
        raise ConfigError(_too_deep(), location=locator.value(path))
    if isinstance(node, CommentedMap):
        result: dict[str, Any] = {}
        for key in node:
            key_pos, value_pos = _positions(node, key)
            if not isinstance(key, str):
                msg = f"key {key!r} must be text; quote it"
                where = f"{locator.name}:{key_pos[0] + 1}:{key_pos[1] + 1}"
                raise ConfigError(msg, location=where)
            child = (*path, key)
            locator.record(child, key=key_pos, value=value_pos)
            result[key] = _plain(node[key], child, locator, budget)
        return result
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, item in enumerate(node):
            child = (*path, index)
            locator.record(child, key=None, value=_item_position(node, index))
            items.append(_plain(item, child, locator, budget))
        return items
    value = _scalar(node)
    # Hex and octal integers of any length construct fine, but Python refuses to print one
    # past 4,300 digits; no setting takes anything near this.
    if isinstance(value, int) and abs(value) >= _HUGE:
        msg = "this number has more than 1,000 digits (quote it to make it text)"
        raise ConfigError(msg, location=locator.value(path))
    return value


def _positions(node: Any, key: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    own = (node.lc.line, node.lc.col)
    try:
        key_pos = tuple(node.lc.key(key))
        value_pos = tuple(node.lc.value(key))
    except (KeyError, TypeError):
        # Keys brought in by a merge (``<<: *anchor``) have no position of their own.
        return own, own
    return (key_pos[0], key_pos[1]), (value_pos[0], value_pos[1])


def _item_position(node: Any, index: int) -> tuple[int, int]:
    try:
        line, col = node.lc.item(index)
    except (KeyError, TypeError):
        return node.lc.line, node.lc.col
    return line, col


def _scalar(node: Any) -> Any:
    # ruamel's scalar subclasses (ScalarInt, ScalarFloat, ScalarBoolean, quoted strings) become
    # the plain types pydantic's strict mode expects. bool before int: bool is an int.
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return node if type(node) is int else (bool(node) if _is_bool(node) else int(node))
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, dt.date):
        return node  # a date is no valid value anywhere; pydantic says "expected text"
    return node


def _is_bool(node: Any) -> bool:
    return type(node).__name__ == "ScalarBoolean"


def walk(data: Any, path: DataPath = ()) -> Iterator[tuple[DataPath, Any]]:
    """Every node of plain ``data`` with its path, parents first."""
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from walk(value, (*path, index))
