"""Query options: none is ever silently ignored.

Every Graph call's query passes three checks:

1. **Before routing** (:func:`check_names`): a query argument that is not an OData system
   query option (``$filter``, ``$select``, …) is refused as the directory refuses it, ``400
   Request_BadRequest`` "Unrecognized query argument specified: '…'." — that includes the
   ``$``-less spellings (``select=``), which Graph v1.0 honours on a few APIs only and
   refuses on the directory's. ``$format`` is honoured here (JSON is the only format).
   A write (``POST``, ``PATCH``, ``PUT``, ``DELETE``) takes no query option at all.
2. **While the route runs**: the route reads the options it honours from
   :class:`QueryOptions`, which remembers what was read.
3. **After a read answered** (:func:`refuse_unread`): an option the route never looked at is
   refused — ``$expand`` with Graph's own answer for the property named (see
   :func:`expand_refusal`), anything else ``400 BadRequest``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ctsync.emulator.core.errors import GraphFault, not_implemented
from ctsync.emulator.core.paths import properties_of, resolve

__all__ = [
    "SYSTEM_OPTIONS",
    "ExpandItem",
    "QueryOptions",
    "check_names",
    "expand_refusal",
    "parse_expand",
    "refuse_unread",
    "with_changes",
]

#: OData's system query options (OData 4.01 part 2 §5): what a ``$`` may name.
SYSTEM_OPTIONS = frozenset(
    {
        "$apply",
        "$compute",
        "$count",
        "$deltatoken",
        "$expand",
        "$filter",
        "$format",
        "$id",
        "$index",
        "$levels",
        "$orderby",
        "$schemaversion",
        "$search",
        "$select",
        "$skip",
        "$skiptoken",
        "$top",
    }
)
_UNPREFIXED = frozenset(name[1:] for name in SYSTEM_OPTIONS)
_JSON_FORMATS = re.compile(r"^(json|application/json)(;.*)?$", re.IGNORECASE)
_READS = frozenset({"GET", "HEAD"})


class QueryOptions(dict[str, str]):
    """A request's query (OData options keyed in lower case) that remembers which keys a route
    read: :func:`refuse_unread` refuses the ``$`` options nobody looked at. Iterating counts as
    reading every key (routes that refuse options loop over them)."""

    def __init__(
        self, items: Mapping[str, str] | None = None, *, read: set[str] | None = None
    ) -> None:
        super().__init__(items or {})
        self.read: set[str] = read if read is not None else set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self.read.update(super().keys())
        return super().__iter__()

    def keys(self) -> Any:
        self.read.update(super().keys())
        return super().keys()

    def items(self) -> Any:
        self.read.update(super().keys())
        return super().items()

    def unread(self) -> list[str]:
        """The ``$`` options present that no route read, in request order."""
        return [k for k in dict.keys(self) if k.startswith("$") and k not in self.read]


def with_changes(query: dict[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    """``query`` with ``changes``, still remembering reads (for a route that rewrites an
    option, such as ``$select``, before handing the query on)."""
    if isinstance(query, QueryOptions):
        return QueryOptions({**dict(dict.items(query)), **changes}, read=query.read)
    return {**query, **changes}


def _unrecognized(name: str) -> GraphFault:
    return GraphFault(
        400, "Request_BadRequest", f"Unrecognized query argument specified: '{name}'."
    )


def check_names(method: str, query: QueryOptions) -> None:
    """Step 1: refuse unknown arguments, ``$``-less option names, options on writes and a
    ``$format`` other than JSON; mark ``$format=json`` as honoured."""
    for key in dict.keys(query):
        if key.startswith("$"):
            if key not in SYSTEM_OPTIONS:
                raise _unrecognized(key)
        else:
            # A custom argument, or an OData option spelled without its '$'.
            raise _unrecognized(key)
    if method.upper() not in _READS:
        for key in dict.keys(query):
            raise GraphFault(
                400,
                "BadRequest",
                f"Query option '{key}' is not supported on a {method.upper()} request.",
            )
    fmt = dict.get(query, "$format")
    if fmt is not None:
        if not _JSON_FORMATS.match(fmt.strip()):
            raise GraphFault(
                406,
                "NotAcceptable",
                f"The requested format '{fmt}' is not supported; Graph answers in JSON "
                "($format=json).",
            )
        query.read.add("$format")


# -- $expand -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpandItem:
    """One ``$expand`` item: a property path, with its nested options if any (``members($select=
    id)``)."""

    path: str
    options: str | None = None


def parse_expand(raw: str) -> list[ExpandItem]:
    """Split ``$expand`` at top-level commas: ``a,b($select=x,y)`` → two items."""
    items: list[ExpandItem] = []
    depth = 0
    start = 0
    text = raw.strip()
    for i, char in enumerate(text + ","):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            part = text[start:i].strip()
            start = i + 1
            if not part:
                raise GraphFault(400, "BadRequest", f"Invalid $expand value '{raw}'.")
            head, paren, rest = part.partition("(")
            options = rest[:-1].strip() if paren and rest.endswith(")") else None
            if paren and options is None:
                raise GraphFault(400, "BadRequest", f"Invalid $expand value '{raw}'.")
            items.append(ExpandItem(head.strip(), options))
    if depth != 0:
        raise GraphFault(400, "BadRequest", f"Invalid $expand value '{raw}'.")
    return items


def expand_refusal(path: str, item: ExpandItem, type_name: str | None = None) -> GraphFault:
    """Graph's answer for an ``$expand`` item the route does not expand.

    A name the addressed type does not have is OData's ``400`` "Could not find a property
    named …"; a structural property is ``400`` "… is not a navigation property …"; a real
    navigation property (or anything the emulator cannot judge: ``*``, paths, nested options on
    a type it does not describe) is one Graph could expand and the emulator does not: ``501``.
    """
    if type_name is None:
        type_name = resolve(path).type_name
    described = properties_of(type_name) if type_name is not None else None
    name = item.path
    if described is not None and name != "*" and "/" not in name:
        structural, navigation = described
        qualified = f"microsoft.graph.{type_name}"
        if name.lower() not in structural | navigation:
            return GraphFault(
                400,
                "BadRequest",
                f"Could not find a property named '{name}' on type '{qualified}'.",
            )
        if name.lower() in structural:
            return GraphFault(
                400,
                "BadRequest",
                f"Property '{name}' on type '{qualified}' is not a navigation property or "
                "complex property. Only navigation properties can be expanded.",
            )
    option = f"$expand={name}" + (f"({item.options})" if item.options is not None else "")
    return not_implemented("GET", f"{path}?{option}")


def refuse_unread(path: str, query: QueryOptions) -> None:
    """Step 3: the first ``$`` option the route did not read, refused."""
    for key in query.unread():
        if key == "$expand":
            items = parse_expand(dict.__getitem__(query, key))
            raise expand_refusal(path, items[0])
        raise GraphFault(
            400, "BadRequest", f"Query option '{key}' is not supported on this resource."
        )
