"""YAML 1.2 in, plain Python data out, with the line and column of every key and value.

ruamel.yaml's round-trip loader remembers where each node was; the rest of the config package
works on plain ``dict``/``list``/scalars and asks a :class:`Locator` where a path came from.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ctsync.errors import ConfigError

__all__ = ["DataPath", "Document", "Locator", "read_yaml", "walk"]

#: Keys and list indices from the document root to a node.
DataPath = tuple[str | int, ...]

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
    """Parse ``text`` (YAML 1.2, duplicate keys refused); :class:`ConfigError` with the place."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
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
    locator = Locator(name, text)
    if tree is None:
        msg = "the file is empty; a config needs at least 'version: 1' and 'tenants:'"
        raise ConfigError(msg, location=f"{name}:1:1")
    data = _plain(tree, (), locator)
    return Document(data=data, locator=locator)


def _mark(name: str, mark: Any) -> str:
    if mark is None:
        return name
    return f"{name}:{mark.line + 1}:{mark.column + 1}"


def _plain(node: Any, path: DataPath, locator: Locator) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

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
            result[key] = _plain(node[key], child, locator)
        return result
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, item in enumerate(node):
            child = (*path, index)
            locator.record(child, key=None, value=_item_position(node, index))
            items.append(_plain(item, child, locator))
        return items
    return _scalar(node)


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
