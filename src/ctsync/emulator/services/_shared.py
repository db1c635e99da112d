"""Helpers the directory, application and synchronization services share.

Directory objects answer ``$select`` the way Graph does: any property of the type may be
selected (an unset one comes back ``null``), an unknown name is ``400``, and some types (users)
return only a default set of properties when nothing is selected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault, bad_request, forbidden
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import ExpandSpec, collection_response, expand_entity
from ctsync.emulator.core.query_options import with_changes
from ctsync.emulator.core.schema import type_properties

__all__ = [
    "OWNED_BY",
    "caller_object_id",
    "object_key",
    "object_not_found",
    "require_owner_or",
    "selected_properties",
    "shaped_collection",
    "shaped_entity",
]

#: The permission that only reaches applications and service principals the caller owns.
OWNED_BY = "Application.ReadWrite.OwnedBy"


def object_key(kind: str, object_id: str) -> str:
    """The key an object's creation time is kept under, for the replication-lag fault."""
    return f"{kind}:{object_id.lower()}"


def object_not_found(object_id: str) -> GraphFault:
    """Graph's answer for a directory object id it does not know."""
    return GraphFault(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property "
        "objects are not present.",
    )


def caller_object_id(ctx: RequestContext) -> str:
    """Object id of the calling app's service principal (the token's ``oid``)."""
    return ctx.call.claims.object_id


def require_owner_or(ctx: RequestContext, object_ids: Iterable[str], broad: Iterable[str]) -> None:
    """Allow a caller holding one of ``broad``, or ``OwnedBy`` on an object it owns.

    Routes list ``Application.ReadWrite.OwnedBy`` among their permissions so such a caller
    gets this far; here it must also own (one of) the objects, or it is refused like a
    caller without permission.
    """
    if ctx.roles & set(broad):
        return
    if OWNED_BY in ctx.roles:
        me = caller_object_id(ctx)
        if any(me in ctx.tenant.owners.get(oid, []) for oid in object_ids):
            return
    raise forbidden()


# -- $select ---------------------------------------------------------------------------------


def selected_properties(ctx: RequestContext, type_name: str) -> list[str] | None:
    """The ``$select`` names in the type's own casing; ``None`` when nothing is selected.

    ``*`` selects every property of the type.

    A name that is not a property of the type is Graph's ``400`` "Could not find a property
    named ...", whether or not any object would carry it.
    """
    raw = ctx.query.get("$select")
    if raw is None or not raw.strip():
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if "*" in names:
        # Every property of the type, the unset ones as null.
        return list(type_properties(type_name))
    props = {p.lower(): p for p in type_properties(type_name)}
    out: list[str] = []
    for name in names:
        canonical = props.get(name.lower())
        if canonical is None:
            msg = f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
            raise bad_request(msg)
        if canonical not in out:
            out.append(canonical)
    return out


#: What a non-nullable primitive the directory never set reads as.
_UNSET_PRIMITIVES: dict[str, Any] = {
    "Edm.DateTimeOffset": "0001-01-01T00:00:00Z",
    "Edm.Int16": 0,
    "Edm.Int32": 0,
    "Edm.Int64": 0,
    "Edm.Boolean": False,
    "Edm.String": "",
}


def _unset(type_name: str, name: str) -> Any:
    """The value of a property an object does not carry: ``null`` where the type allows it,
    an empty collection, or the primitive's zero value (as Graph shows ``birthday``)."""
    spec = type_properties(type_name).get(name)
    if spec is None or spec["nullable"]:
        return [] if spec is not None and spec["type"].startswith("Collection(") else None
    if spec["type"].startswith("Collection("):
        return []
    return _UNSET_PRIMITIVES.get(spec["type"])


def _fill(obj: Mapping[str, Any], names: list[str], type_name: str) -> dict[str, Any]:
    return {**obj, **{n: _unset(type_name, n) for n in names if n not in obj}}


def _project(obj: Mapping[str, Any], names: list[str], type_name: str) -> dict[str, Any]:
    filled = _fill(obj, names, type_name)
    out = {k: v for k, v in obj.items() if k.startswith("@odata.")}
    out.update({name: filled[name] for name in names})
    return out


def shaped_entity(
    ctx: RequestContext,
    obj: Mapping[str, Any],
    *,
    context: str,
    type_name: str,
    default_select: list[str] | None = None,
    status: int = 200,
    expand: ExpandSpec | None = None,
) -> EmuResponse:
    # Expand first: what an expansion reads (the id) may not be selected.
    expanded, expanded_names = expand_entity(ctx, dict(obj), expand)
    names = selected_properties(ctx, type_name) or default_select
    if names is not None:
        expanded = _project(expanded, [*names, *expanded_names], type_name)
    return ctx.entity(expanded, context=context, status=status, keep=expanded_names)


def shaped_collection(
    ctx: RequestContext,
    items: list[dict[str, Any]],
    *,
    context: str,
    type_name: str,
    default_select: list[str] | None = None,
    **options: Any,
) -> EmuResponse:
    """:func:`collection_response` with Graph's ``$select`` rules for ``type_name``.

    ``$filter`` still sees whole objects: selection happens after it, on the page.
    """
    names = selected_properties(ctx, type_name) or default_select
    if names is None:
        return collection_response(ctx, items, context=context, **options)
    # Every selected name must come back even when unset; the stored object may not carry
    # it, so fill it in before the shared collection code selects.
    filled = [_fill(item, names, type_name) for item in items]
    shaped = dataclasses.replace(ctx, query=with_changes(ctx.query, {"$select": ",".join(names)}))
    return collection_response(shaped, filled, context=context, **options)
