"""Request bodies checked against Microsoft Graph's official v1.0 type definitions.

``graph_v1_types.json`` is a copy of the project's extract of Microsoft's published v1.0
metadata (``shared/reference/graph-v1-types.json``; a test keeps the two equal). Services use
:func:`check_body` so a write with an unknown property, a wrong type or an unknown enum member
is refused the way Graph refuses it: ``400 BadRequest``.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

from ctsync.emulator.core.errors import GraphFault

__all__ = ["check_body", "graph_types", "type_properties"]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@functools.cache
def graph_types() -> dict[str, Any]:
    """The v1.0 types: the project's extract plus ``graph_v1_types_supplement.json`` (types the
    emulator serves that the extract lacks, taken from the same metadata)."""
    files = resources.files("ctsync.emulator.core")
    types: dict[str, Any] = json.loads(files.joinpath("graph_v1_types.json").read_text())["types"]
    supplement = json.loads(files.joinpath("graph_v1_types_supplement.json").read_text())
    return {**types, **supplement["types"]}


def _strip(name: str) -> str:
    return name.removeprefix("graph.").removeprefix("microsoft.graph.")


@functools.cache
def type_properties(type_name: str) -> dict[str, dict[str, Any]]:
    """All structural properties of a type, including inherited ones."""
    types = graph_types()
    out: dict[str, dict[str, Any]] = {}
    name: str | None = _strip(type_name)
    while name:
        t = types[name]
        for prop, spec in t["properties"].items():
            out.setdefault(prop, spec)
        name = _strip(t["base"]) if t["base"] else None
    return out


def _fail(message: str) -> GraphFault:
    return GraphFault(400, "BadRequest", message)


def check_body(type_name: str, body: Any, *, allow: frozenset[str] = frozenset()) -> None:
    """Raise ``400 BadRequest`` unless ``body`` is a valid (partial) ``type_name`` object.

    ``allow`` names extra members accepted besides the type's own (e.g. navigation
    properties a create call takes inline).
    """
    if not isinstance(body, dict):
        msg = f"The request body must be a JSON object of type 'microsoft.graph.{type_name}'."
        raise _fail(msg)
    _check_complex(_strip(type_name), body, allow=allow, where="")


def _check_complex(
    type_name: str, value: dict[str, Any], *, allow: frozenset[str], where: str
) -> None:
    props = type_properties(type_name)
    for key, item in value.items():
        if key.startswith("@odata.") or key in allow:
            continue
        spec = props.get(key)
        if spec is None:
            msg = (
                f"The property '{key}' does not exist on type 'microsoft.graph.{type_name}'. "
                "Make sure to only use property names that are defined by the type."
            )
            raise _fail(msg)
        _check_value(spec["type"], item, nullable=bool(spec["nullable"]), where=f"{where}{key}")


def _check_value(type_ref: str, value: Any, *, nullable: bool, where: str) -> None:
    if value is None:
        if nullable or type_ref.startswith("Collection("):
            return
        msg = f"A null value was found for the property '{where}', which is not nullable."
        raise _fail(msg)
    if type_ref.startswith("Collection("):
        if not isinstance(value, list):
            msg = f"The property '{where}' must be a collection (JSON array)."
            raise _fail(msg)
        inner = type_ref[len("Collection(") : -1]
        for i, item in enumerate(value):
            _check_value(inner, item, nullable=True, where=f"{where}[{i}]")
        return
    if type_ref.startswith("Edm."):
        _check_primitive(type_ref, value, where)
        return
    name = _strip(type_ref)
    t = graph_types().get(name)
    if t is None:  # a type outside the extract: accept what we cannot check
        return
    if t["kind"] == "enum":
        _check_enum(name, t, value, where)
        return
    if not isinstance(value, dict):
        msg = f"The property '{where}' must be an object of type 'microsoft.graph.{name}'."
        raise _fail(msg)
    derived = value.get("@odata.type")
    if isinstance(derived, str):
        name = _strip(derived.lstrip("#"))
        if name not in graph_types():
            msg = f"The type 'microsoft.graph.{name}' given in '{where}/@odata.type' is unknown."
            raise _fail(msg)
    _check_complex(name, value, allow=frozenset(), where=f"{where}/")


def _check_enum(name: str, t: dict[str, Any], value: Any, where: str) -> None:
    if not isinstance(value, str):
        msg = f"The property '{where}' must be a string member of 'microsoft.graph.{name}'."
        raise _fail(msg)
    members = set(t["members"])
    parts = [p.strip() for p in value.split(",")] if t.get("isFlags") else [value]
    for part in parts:
        if part not in members:
            msg = (
                f"Requested value '{part}' was not found in enum 'microsoft.graph.{name}' "
                f"(property '{where}')."
            )
            raise _fail(msg)


def _check_primitive(type_ref: str, value: Any, where: str) -> None:
    ok: bool
    if type_ref == "Edm.Boolean":
        ok = isinstance(value, bool)
    elif type_ref in {"Edm.Int32", "Edm.Int64", "Edm.Int16", "Edm.Byte"}:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif type_ref in {"Edm.Double", "Edm.Single", "Edm.Decimal"}:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif type_ref == "Edm.Guid":
        ok = isinstance(value, str) and bool(_GUID.match(value))
    elif type_ref == "Edm.DateTimeOffset":
        ok = isinstance(value, str) and bool(_DATETIME.match(value))
    else:  # Edm.String, Edm.Binary, Edm.Duration, Edm.Date, ...
        ok = isinstance(value, str)
    if not ok:
        msg = f"Cannot convert the literal '{value}' to the expected type '{type_ref}' ('{where}')."
        raise _fail(msg)
