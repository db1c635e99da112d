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
    "desired_schema",
    "edit_schema",
    "group_mapping",
    "keep_ids",
    "managed_view",
    "schema_changes",
    "schema_changes_full",
    "schema_drift",
    "schema_edits",
    "scope_text",
    "user_mapping",
]

_FLOW_ORDER = ("create", "update", "delete")
_FLOW_NAMES = {"create": "Add", "update": "Update", "delete": "Delete"}


def user_mapping(schema: dict[str, Any]) -> dict[str, Any]:
    """The object mapping that provisions users (``User`` → ``User``) of the first rule."""
    found = _object_mapping(schema, "user")
    if found is None:
        msg = "the job's schema has no User → User object mapping"
        raise ValueError(msg)
    return found


def group_mapping(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The object mapping that provisions security groups (``Group`` → ``Group``), off by
    default in the Azure2Azure template; None if the schema has none."""
    return _object_mapping(schema, "group")


def _is_mapping_of(mapping: dict[str, Any], kind: str) -> bool:
    return (mapping.get("sourceObjectName") or "").lower() == kind and (
        mapping.get("targetObjectName") or ""
    ).lower() == kind


def _object_mapping(schema: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for rule in schema.get("synchronizationRules") or []:
        for mapping in rule.get("objectMappings") or []:
            if _is_mapping_of(mapping, kind):
                return dict(mapping)
    return None


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
            {"targetAttributeName": m.target, **dict(m.graph), "verbatim": True}
            if m.graph is not None
            else _attribute_mapping(m.target, m.source.to_graph(), m.apply)
            if m.source is not None
            else {"targetAttributeName": m.target, "source": None}
            for m in desired_mappings(sync)
        ],
        "scopeGroups": _scope_groups(sync.scope),
        # Only with group sync: a schema without it keeps the template's (off) group mapping.
        **(
            {
                "groups": {
                    "flowTypes": _flow_types(sync.actions),
                    "scopeGroups": _scope_groups(sync.group_scope),
                }
            }
            if sync.groups
            else {}
        ),
    }


def edit_schema(schema: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with the managed parts of the user mapping set from ``edits``.

    Only the path to what changes is copied (the schema, its rules, their object mappings, the
    user mapping's attribute list and scope); everything else is shared with ``schema`` — a
    full deep copy per link was most of a large plan's CPU. Treat the result as read-only.
    """
    out = dict(schema)
    out["synchronizationRules"] = rules = [dict(r) for r in out.get("synchronizationRules") or []]
    groups = edits.get("groups")
    done = False
    for rule in rules:
        rule["objectMappings"] = mappings = [dict(m) for m in rule.get("objectMappings") or []]
        for mapping in mappings:
            if groups is not None and _is_mapping_of(mapping, "group"):
                mapping["enabled"] = True
                mapping["flowTypes"] = groups["flowTypes"]
                mapping["scope"] = _scope(mapping, groups["scopeGroups"])
                groups = None
            if done or not _is_mapping_of(mapping, "user"):
                continue
            done = True
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
                if wanted.get("verbatim"):
                    # Written as the config holds it (`graph:`), whole.
                    whole = {k: copy.deepcopy(v) for k, v in wanted.items() if k != "verbatim"}
                    if index is None:
                        attrs.append(whole)
                    else:
                        attrs[index] = whole
                elif wanted["source"] is None:
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
            mapping["scope"] = _scope(mapping, edits["scopeGroups"])
    if not done:
        msg = "the job's schema has no User → User object mapping"
        raise ValueError(msg)
    if groups is not None:
        msg = "the job's schema has no Group → Group object mapping: group sync is not offered"
        raise ValueError(msg)
    return out


def _scope(mapping: dict[str, Any], groups: list[dict[str, Any]]) -> dict[str, Any]:
    """An object mapping's scope with its scoping groups set to ``groups``."""
    scope = dict(mapping.get("scope") or {})
    scope["groups"] = copy.deepcopy(groups)
    scope.setdefault("inputFilterGroups", [])
    scope.setdefault("categoryFilterGroups", [])
    return scope


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
        "groups": _groups_view(group_mapping(schema)),
    }


def _groups_view(mapping: dict[str, Any] | None) -> tuple[bool, list[dict[str, Any]]]:
    """Whether groups are synced, and their scoping groups."""
    if mapping is None or mapping.get("enabled") is not True:
        return (False, [])
    return (True, (mapping.get("scope") or {}).get("groups") or [])


def schema_changes(live: dict[str, Any] | None, edits: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Field-level differences between the live schema (None: not created yet) and ``edits``."""
    names = {m["targetAttributeName"].lower(): m["targetAttributeName"] for m in edits["mappings"]}
    after = {
        "flowTypes": edits["flowTypes"],
        "mappings": {
            t: _expression(m if m.get("source") is not None else None)
            for t, m in ((m["targetAttributeName"].lower(), m) for m in edits["mappings"])
        },
        "scope": edits["scopeGroups"],
        "groups": (True, edits["groups"]["scopeGroups"]) if "groups" in edits else (False, []),
    }
    before: dict[str, Any] = (
        managed_view(live, edits)
        if live is not None
        else {"flowTypes": None, "mappings": {}, "scope": None, "groups": (False, [])}
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
    (was, old_groups), (now, new_groups) = before["groups"], after["groups"]
    if was != now:
        shown = "security groups in scope, with their members"
        changes.append(FieldChange("groups synced", shown if was else "no", shown if now else "no"))
    if now and json.dumps(old_groups, sort_keys=True) != json.dumps(new_groups, sort_keys=True):
        old_text = scope_text(old_groups) if was else None
        changes.append(FieldChange("group filter", old_text, scope_text(new_groups)))
    return tuple(changes)


# -- the whole schema: what apply writes is what plan compares -------------------------------
#
# A schema PUT replaces everything, so the schema ctsync writes is the job template's default
# schema with the config's managed parts set (``desired_schema``). Plan compares exactly that
# with the job's live schema, so a hand edit of anything — a default mapping the config does
# not mention, a scoping clause — is drift, and apply would put it back. Graph's normalising
# must not look like drift: objects are compared on the keys ctsync writes (keys only Graph
# sends, or that are null, do not count), enum values case-insensitively, and lists whose order
# means nothing (mappings, attributes, rules, clauses, values) by their names, not positions.

#: Keys holding enum values (Graph may answer another casing than was written).
_ENUM_KEYS = frozenset(
    {"flowType", "flowBehavior", "type", "mutability", "operatorName", "flowTypes", "direction"}
)
#: For a list of objects, the key that names each item (order does not matter then).
_ITEM_KEYS = ("targetAttributeName", "name", "id", "sourceObjectName", "key")


def desired_schema(template: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """The schema apply writes: the template's default with the config's parts set."""
    # The template's id is the template's ("Azure2Azure"); a job's schema carries the job's.
    clean = {k: v for k, v in template.items() if not k.startswith("@") and k != "id"}
    return edit_schema(clean, edits)


def _item_name(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in _ITEM_KEYS:
            if isinstance(item.get(key), str):
                return f"{key}={item[key].casefold()}"
    return None


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """A list as {name: item} when every item has a distinct name; None when order matters."""
    names = [_item_name(item) for item in items]
    if not items or any(n is None for n in names) or len(set(names)) != len(names):
        return None
    return {str(n): item for n, item in zip(names, items, strict=True)}


def _same_value(key: str, wanted: Any, live: Any) -> bool:
    if wanted is None:
        return live is None or live in ([], {})
    if isinstance(wanted, str) and isinstance(live, str) and key in _ENUM_KEYS:
        return wanted.casefold() == live.casefold()
    return bool(wanted == live)


def schema_drift(wanted: Any, live: Any, path: str = "") -> list[str]:
    """Where ``live`` differs from ``wanted`` (paths), ignoring what Graph normalises."""
    if wanted == live:
        return []  # equal values cannot drift under any rule below (compared in C, at once)
    if isinstance(wanted, dict):
        if not isinstance(live, dict):
            return [path or "(schema)"]
        out: list[str] = []
        for key, value in wanted.items():
            if key.startswith("@") or key == "id":
                continue  # Graph's own identifiers (a rule's, a directory's) are not settings
            if isinstance(value, dict | list):
                theirs = live.get(key)
                if value != theirs:
                    out.extend(schema_drift(value, theirs, f"{path}.{key}".lstrip(".")))
            elif not _same_value(key, value, live.get(key)):
                out.append(f"{path}.{key}".lstrip("."))
        return out
    if isinstance(wanted, list):
        if not isinstance(live, list):
            return [] if not wanted and live is None else [path]
        mine, theirs = _keyed(wanted), _keyed(live)
        if mine is not None and theirs is not None:
            out = [f"{path}[{name}]" for name in theirs.keys() - mine.keys()]
            for name, item in mine.items():
                if name not in theirs:
                    out.append(f"{path}[{name}]")
                else:
                    out.extend(schema_drift(item, theirs[name], f"{path}[{name}]"))
            return sorted(out)
        if all(not isinstance(v, dict | list) for v in [*wanted, *live]):
            # A list of plain values (operand values, flow types): a set.
            same = sorted(map(str, wanted)) == sorted(map(str, live))
            return [] if same else [path]
        if len(wanted) != len(live):
            return [path]
        return [
            d
            for i, (w, v) in enumerate(zip(wanted, live, strict=True))
            for d in schema_drift(w, v, f"{path}[{i}]")
        ]
    return [] if _same_value(path.rsplit(".", 1)[-1], wanted, live) else [path or "(value)"]


def keep_ids(wanted: Any, live: Any) -> Any:
    """``wanted`` with Graph's identifiers taken from ``live`` where the same item is there (a
    rule, a directory, an object mapping matched by name): a PUT keeps what Graph assigned."""
    if isinstance(wanted, dict) and isinstance(live, dict):
        out = {k: keep_ids(v, live.get(k)) for k, v in wanted.items()}
        if "id" in wanted and live.get("id") is not None:
            out["id"] = live["id"]
        return out
    if isinstance(wanted, list) and isinstance(live, list):
        theirs = _keyed(live) or {}
        return [
            keep_ids(item, theirs.get(str(_item_name(item)))) if _item_name(item) else item
            for item in wanted
        ]
    return wanted


def schema_changes_full(
    live: dict[str, Any] | None, template: dict[str, Any], edits: dict[str, Any]
) -> tuple[FieldChange, ...]:
    """What a schema PUT would change: the managed parts field by field (as
    :func:`schema_changes`), then every other drifted place of the schema by its path."""
    wanted = desired_schema(template, edits)
    if live is None:
        return schema_changes(None, edits)
    drift = schema_drift(wanted, live)
    if not drift:
        return ()
    changes = list(schema_changes(live, edits))
    names = {m["targetAttributeName"].lower() for m in edits["mappings"]}
    wanted_user = {
        a.get("targetAttributeName", "").lower(): a
        for a in user_mapping(wanted).get("attributeMappings") or []
    }
    live_user = {
        a.get("targetAttributeName", "").lower(): a
        for a in user_mapping(live).get("attributeMappings") or []
    }
    for target in sorted((wanted_user.keys() | live_user.keys()) - names):
        old, new = _expression(live_user.get(target)), _expression(wanted_user.get(target))
        if schema_drift(wanted_user.get(target), live_user.get(target)):
            shown = (wanted_user.get(target) or live_user.get(target) or {}).get(
                "targetAttributeName", target
            )
            changes.append(FieldChange(f"mapping {shown} (template default)", old, new))
    # What the managed view already shows, field by field, is not repeated by path.
    covered = {
        _mapping_prefix(wanted, "user"): ("attributeMappings", "flowTypes", "scope.groups"),
        _mapping_prefix(wanted, "group"): ("enabled", "flowTypes", "scope"),
    }
    for path in drift:
        if any(
            prefix is not None
            and path.startswith(prefix)
            and path[len(prefix) :].lstrip(".").startswith(keys)
            for prefix, keys in covered.items()
        ):
            continue
        changes.append(FieldChange(f"schema {path}", "changed by hand", "the template's value"))
    if not changes:  # drift only in what the managed view already normalises away
        changes.append(FieldChange("schema", "differs", "as ctsync writes it"))
    return tuple(changes)


def _mapping_prefix(schema: dict[str, Any], kind: str) -> str | None:
    """The drift path of the ``kind`` (user, group) object mapping."""
    for rule in schema.get("synchronizationRules") or []:
        rule_name = _item_name(rule)
        for mapping in rule.get("objectMappings") or []:
            if _is_mapping_of(mapping, kind):
                return f"synchronizationRules[{rule_name}].objectMappings[{_item_name(mapping)}]"
    return None
