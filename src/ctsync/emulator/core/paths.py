"""Which paths Microsoft Graph v1.0 has: told apart from the ones the emulator serves.

A request no route matches is one of two things. A path Graph does not have answers as Graph
does: ``400 BadRequest`` "Resource not found for the segment '…'." (OData's URI parser, before
any service sees the request). A real Graph path the emulator does not implement answers
``501 NotImplemented``. The difference comes from Microsoft's published v1.0 metadata, as
extracted into ``graph_v1_paths.json`` (every entity set and singleton; for the types on the
emulator's routes their properties, navigation properties and bound operations):

- the first segment must be an entity set or singleton (``$batch`` and ``$metadata`` too);
- after a collection comes a key, a bound operation of the collection, a type cast or
  ``$count``/``$ref``;
- after a single object comes a structural or navigation property, a bound operation, a type
  cast or ``$value``/``$ref``/``$count``;
- a segment may carry parentheses (a key, alternate key or function parameters).

Where the walk reaches a type the extract does not describe (a navigation target outside the
emulator's routes), the rest of the path is taken on trust: the emulator cannot tell, so it
says it does not implement it (``501``), never that Graph lacks it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["Resolved", "properties_of", "resolve", "unknown_segment"]

#: Dollar segments OData allows after a resource, each ending what can be checked.
_DOLLAR_SEGMENTS = frozenset({"$count", "$ref", "$value"})
_ROOT_EXTRAS = frozenset({"$batch", "$metadata"})


@functools.cache
def _data() -> dict[str, Any]:
    text = resources.files("ctsync.emulator.core").joinpath("graph_v1_paths.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _roots() -> dict[str, tuple[str, bool]]:
    return {name.lower(): (t, bool(c)) for name, (t, c) in _data()["roots"].items()}


@dataclass(frozen=True)
class _TypeNames:
    properties: frozenset[str]
    navigation: dict[str, tuple[str, bool]]
    operations: frozenset[str]
    collection_operations: frozenset[str]


@functools.cache
def _type(name: str) -> _TypeNames | None:
    """A described type with everything it inherits, names lower-cased; ``None`` when the
    extract does not describe it."""
    types = _data()["types"]
    if name not in types:
        return None
    props: set[str] = set()
    nav: dict[str, tuple[str, bool]] = {}
    ops: set[str] = set()
    coll_ops: set[str] = set()
    current: str | None = name
    while current is not None and current in types:
        t = types[current]
        props.update(p.lower() for p in t["properties"])
        for key, (target, many) in t["navigation"].items():
            nav.setdefault(key.lower(), (target, bool(many)))
        ops.update(o.lower() for o in t["operations"])
        coll_ops.update(o.lower() for o in t["collectionOperations"])
        current = t["base"]
    return _TypeNames(frozenset(props), nav, frozenset(ops), frozenset(coll_ops))


def properties_of(type_name: str) -> tuple[frozenset[str], frozenset[str]] | None:
    """(structural, navigation) property names of a described type, lower case, inherited
    ones included; ``None`` when the extract does not describe it."""
    t = _type(type_name)
    if t is None:
        return None
    return t.properties, frozenset(t.navigation)


def _name(segment: str) -> tuple[str, bool]:
    """A segment's identifier and whether parentheses follow it (``jobs('x')``, ``delta()``)."""
    head, paren, _ = segment.partition("(")
    return head, bool(paren)


def _cast(name: str) -> str | None:
    lowered = name.lower()
    for prefix in ("microsoft.graph.", "graph."):
        if lowered.startswith(prefix):
            return name[len(prefix) :]
    return None


@dataclass(frozen=True)
class Resolved:
    """How far a path was understood: the segment Graph has no resource for (``unknown``), or
    the type the path addresses (``type_name``, ``None`` once the extract cannot tell) and
    whether it is a collection."""

    unknown: str | None = None
    type_name: str | None = None
    collection: bool = False


def resolve(path: str) -> Resolved:
    """Walk ``path`` (under the version root, e.g. ``/users/{id}/authentication/methods``)."""
    segments = [s for s in path.split("/") if s]
    if not segments:
        return Resolved()
    first, keyed = _name(segments[0])
    if first.lower() in _ROOT_EXTRAS:
        return Resolved()
    root = _roots().get(first.lower())
    if root is None:
        return Resolved(unknown=first)
    type_name: str | None = root[0]
    collection = root[1] and not keyed
    for segment in segments[1:]:
        if type_name is None:
            break
        name, parens = _name(segment)
        lowered = name.lower()
        if lowered in _DOLLAR_SEGMENTS:
            return Resolved(type_name=None)
        if lowered.startswith("$"):
            return Resolved(unknown=name)
        cast = _cast(name)
        if cast is not None:
            # A type cast (or a namespace-qualified operation): trusted, not checked further.
            return Resolved(type_name=None)
        described = _type(type_name)
        if described is None:
            return Resolved(type_name=None)
        if collection:
            if lowered in described.collection_operations:
                return Resolved(type_name=None)
            # Anything else after a collection is a key.
            collection = False
            continue
        if lowered in described.navigation:
            target, many = described.navigation[lowered]
            type_name, collection = target, many and not parens
            continue
        if lowered in described.properties or lowered in described.operations:
            return Resolved(type_name=None)
        return Resolved(unknown=name)
    return Resolved(type_name=type_name, collection=collection)


def unknown_segment(path: str) -> str | None:
    """The first segment of ``path`` that no v1.0 resource has, or ``None``."""
    return resolve(path).unknown
