"""The parts of a job's synchronization schema a link manages, and how to edit them.

A schema PUT replaces everything (graph-cts-api §2.3), so ctsync reads the live schema, changes
only what the config manages — the user object mapping's flow types (actions), attribute
mappings (``userType``, ``showInAddressList`` and the configured ones) and scoping filter
groups — and writes the whole thing back. Everything else (directories, other mappings, the
built-in input filter) is kept as Graph returned it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from ctsync.config import AttributeSource, MappingSpec, ScopeGroup, SyncSettings
from ctsync.engine.model import FieldChange

__all__ = [
    "desired_mappings",
    "edit_schema",
    "managed_view",
    "schema_changes",
    "schema_edits",
    "scope_text",
    "user_mapping",
]

_FLOW_ORDER = ("create", "update", "delete")
_FLOW_NAMES = {"create": "Add", "update": "Update", "delete": "Delete"}


def user_mapping(schema: dict[str, Any]) -> dict[str, Any]:
    """The object mapping that provisions users (``User`` → ``User``) of the first rule."""
    for rule in schema.get("synchronizationRules") or []:
        for mapping in rule.get("objectMappings") or []:
            if (mapping.get("sourceObjectName") or "").lower() == "user" and (
                mapping.get("targetObjectName") or ""
            ).lower() == "user":
                return dict(mapping)
    msg = "the job's schema has no User → User object mapping"
    raise ValueError(msg)


def _flow_types(actions: Iterable[str]) -> str:
    return ", ".join(_FLOW_NAMES[a] for a in _FLOW_ORDER if a in set(actions))


def _constant(value: str) -> dict[str, Any]:
    return {"type": "Constant", "name": value, "expression": f'"{value}"', "parameters": []}


def _attribute_mapping(target: str, source: dict[str, Any], apply: str) -> dict[str, Any]:
    return {
        "targetAttributeName": target,
        "source": source,
        "defaultValue": None,
        "exportMissingReferences": False,
        "flowBehavior": "FlowWhenChanged",
        "flowType": "ObjectAddOnly" if apply == "on_create" else "Always",
        "matchingPriority": 0,
    }


def desired_mappings(sync: SyncSettings) -> list[MappingSpec]:
    """Every attribute mapping the config manages, the built-in two first."""
    out = [
        MappingSpec(
            target="userType",
            source=AttributeSource(
                type="Constant", name=sync.user_type, expression=f'"{sync.user_type}"'
            ),
            apply=sync.user_type_apply,
        ),
        MappingSpec(
            target="showInAddressList",
            source=AttributeSource(
                type="Constant",
                name=str(sync.show_in_address_list).lower(),
                expression=f'"{str(sync.show_in_address_list).lower()}"',
            ),
            apply="always",
        ),
    ]
    out.extend(m for m in sync.mappings if m.target not in {"userType", "showInAddressList"})
    return out


def _scope_groups(groups: Iterable[ScopeGroup]) -> list[dict[str, Any]]:
    return [
        {
            "name": group.name,
            "clauses": [
                {
                    "sourceOperandName": clause.attribute,
                    "operatorName": clause.operator,
                    "targetOperand": {"values": list(clause.values)},
                }
                for clause in group.clauses
            ],
        }
        for group in groups
    ]


def schema_edits(sync: SyncSettings) -> dict[str, Any]:
    """The managed parts of the user mapping, in wire shape: what a schema step writes.

    Stored in the plan, so applying a saved plan writes exactly what it showed.
    """
    return {
        "flowTypes": _flow_types(sync.actions),
        "mappings": [
            _attribute_mapping(m.target, m.source.to_graph(), m.apply)
            if m.source is not None
            else {"targetAttributeName": m.target, "source": None}
            for m in desired_mappings(sync)
        ],
        "scopeGroups": _scope_groups(sync.scope),
    }


def edit_schema(schema: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with the managed parts of the user mapping set from ``edits``."""
    out = copy.deepcopy(schema)
    for rule in out.get("synchronizationRules") or []:
        for mapping in rule.get("objectMappings") or []:
            if (mapping.get("sourceObjectName") or "").lower() != "user":
                continue
            if (mapping.get("targetObjectName") or "").lower() != "user":
                continue
            mapping["flowTypes"] = edits["flowTypes"]
            attrs: list[dict[str, Any]] = list(mapping.get("attributeMappings") or [])
            for wanted in edits["mappings"]:
                target = wanted["targetAttributeName"].lower()
                index = next(
                    (
                        i
                        for i, a in enumerate(attrs)
                        if a.get("targetAttributeName", "").lower() == target
                    ),
                    None,
                )
                if wanted["source"] is None:
                    if index is not None:
                        del attrs[index]
                elif index is None:
                    attrs.append(copy.deepcopy(wanted))
                else:
                    # Keep Graph's own members (defaultValue, matchingPriority...) as they are.
                    merged = dict(attrs[index])
                    merged["source"] = copy.deepcopy(wanted["source"])
                    merged["flowType"] = wanted["flowType"]
                    attrs[index] = merged
            mapping["attributeMappings"] = attrs
            scope = dict(mapping.get("scope") or {})
            scope["groups"] = copy.deepcopy(edits["scopeGroups"])
            scope.setdefault("inputFilterGroups", [])
            scope.setdefault("categoryFilterGroups", [])
            mapping["scope"] = scope
            return out
    msg = "the job's schema has no User → User object mapping"
    raise ValueError(msg)


def _expression(mapping: dict[str, Any] | None) -> str | None:
    if mapping is None:
        return None
    source = mapping.get("source") or {}
    text = source.get("expression") or source.get("name")
    suffix = " (on create)" if mapping.get("flowType") == "ObjectAddOnly" else ""
    return f"{text}{suffix}"


def scope_text(groups: list[dict[str, Any]] | None) -> str:
    """A filter as one line: ``department EQUALS 'Sales' AND … OR …``."""
    parts = []
    for group in groups or []:
        clauses = []
        for clause in group.get("clauses") or []:
            values = (clause.get("targetOperand") or {}).get("values") or []
            shown = " ".join(f"'{v}'" for v in values)
            text = f"{clause.get('sourceOperandName')} {clause.get('operatorName')}"
            clauses.append(f"{text} {shown}".rstrip())
        parts.append(" AND ".join(clauses))
    return " OR ".join(f"({p})" if len(parts) > 1 else p for p in parts) or "(none)"


def managed_view(schema: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """What ctsync compares: flow types, the managed mappings, and the scoping groups."""
    mapping = user_mapping(schema)
    by_target = {
        a.get("targetAttributeName", "").lower(): a for a in mapping.get("attributeMappings") or []
    }
    managed = {m["targetAttributeName"].lower() for m in edits["mappings"]}
    return {
        "flowTypes": mapping.get("flowTypes"),
        "mappings": {t: _expression(by_target.get(t)) for t in sorted(managed)},
        "scope": (mapping.get("scope") or {}).get("groups") or [],
    }


def schema_changes(live: dict[str, Any] | None, edits: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Field-level differences between the live schema (None: not created yet) and ``edits``."""
    names = {m["targetAttributeName"].lower(): m["targetAttributeName"] for m in edits["mappings"]}
    after = {
        "flowTypes": edits["flowTypes"],
        "mappings": {
            t: _expression(m if m["source"] is not None else None)
            for t, m in ((m["targetAttributeName"].lower(), m) for m in edits["mappings"])
        },
        "scope": edits["scopeGroups"],
    }
    before: dict[str, Any] = (
        managed_view(live, edits)
        if live is not None
        else {"flowTypes": None, "mappings": {}, "scope": None}
    )
    changes: list[FieldChange] = []
    if before["flowTypes"] != after["flowTypes"]:
        changes.append(FieldChange("actions", before["flowTypes"], after["flowTypes"]))
    for target, new in sorted(after["mappings"].items()):
        old = before["mappings"].get(target)
        if old != new or live is None:
            changes.append(FieldChange(f"mapping {names[target]}", old, new))
    scope_moved = json.dumps(before["scope"], sort_keys=True) != json.dumps(
        after["scope"], sort_keys=True
    )
    if scope_moved and (before["scope"] or after["scope"]):
        old_scope = None if before["scope"] is None else scope_text(before["scope"])
        changes.append(FieldChange("scoping filter", old_scope, scope_text(after["scope"])))
    return tuple(changes)
