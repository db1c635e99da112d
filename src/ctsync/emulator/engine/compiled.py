"""A job's synchronization schema, compiled once: the user mapping's (and the group mapping's)
scope and attribute mappings ready to evaluate, not read and parsed again for every object.

:func:`compiled_schema` keeps the result on the job (``SyncJobRecord.compiled``), keyed by the
schema object and ``SyncJobRecord.schema_version``: ``PUT …/schema`` stores a new schema and
bumps the version, so the next evaluation compiles again. A mapping whose source cannot be
parsed keeps its error and is skipped with the same warning for every user, as before.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctsync.emulator.core.schema import type_properties
from ctsync.emulator.engine.expressions import (
    Evaluate,
    ExpressionError,
    Value,
    compile_source,
)
from ctsync.emulator.engine.scoping import CompiledGroups
from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.state import SyncJobRecord

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = [
    "BOOLEAN_ATTRIBUTES",
    "GROUP_ATTRIBUTES",
    "INTERNAL_ATTRIBUTES",
    "AttributeMapping",
    "CompiledGroupMapping",
    "CompiledSchema",
    "compiled_schema",
    "graph_property",
]

JsonObject = dict[str, Any]


#: Target attributes written as booleans from ``"True"``/``"False"``.
BOOLEAN_ATTRIBUTES = frozenset({"accountEnabled", "showInAddressList"})
#: Target attributes that are not user properties but lifecycle or matching state.
INTERNAL_ATTRIBUTES = frozenset({a2a.MATCHING_ATTRIBUTE, "IsSoftDeleted", "manager", "userState"})
#: Group properties the group mapping writes (``members`` is the memberships, not a property).
GROUP_ATTRIBUTES = frozenset({"displayName", "description", "mailNickname"})
_ADD_ONLY = frozenset({"AttributeAddOnly", "ValueAddOnly", "MultiValueAddOnly"})


@functools.cache
def graph_property(attribute: str) -> tuple[str | None, str]:
    """The Graph user property behind a sync-schema target attribute (``None``: the user type
    has none), and how its value is written: ``text``, ``boolean`` or ``list``."""
    if attribute in BOOLEAN_ATTRIBUTES:
        return attribute, "boolean"
    if attribute == "telephoneNumber":
        return "businessPhones", "list"
    if attribute == "mobile":
        return "mobilePhone", "text"
    if attribute.startswith("extensionAttribute") and attribute[18:].isdigit():
        return f"onPremisesExtensionAttributes.{attribute}", "text"
    if attribute in type_properties("user"):
        return attribute, "text"
    return None, "text"


@dataclass(frozen=True)
class AttributeMapping:
    """One attribute mapping of the user mapping, its source compiled, and what its target
    attribute is (worked out once, not per user)."""

    attribute: str
    flow: str
    #: ``None`` when the source could not be parsed (``error`` says why).
    evaluate: Evaluate | None
    error: str | None
    default: str | None
    #: ``matching`` (the alternative security id), ``internal`` (lifecycle state, not a user
    #: property), ``members`` (a group mapping's memberships) or ``export``.
    role: str = "export"
    #: The Graph property and how its value is written (:func:`graph_property`).
    prop: str | None = None
    value_kind: str = "text"
    #: The flow only fills an empty target value / only applies on create.
    add_only: bool = False
    object_add_only: bool = False

    def value(self, view: Mapping[str, Value], context: Mapping[str, str]) -> Value:
        """The source's value; raises :class:`ExpressionError` as evaluating it would."""
        if self.evaluate is None:
            raise ExpressionError(self.error or "")
        return self.evaluate(view, context)


@dataclass(frozen=True)
class CompiledGroupMapping:
    """The group object mapping (``sourceObjectName`` ``Group``): group provisioning."""

    mapping: JsonObject
    enabled: bool
    flow_types: frozenset[str]
    input_filter: CompiledGroups
    scope_filter: CompiledGroups
    #: Mappings to the group properties (:data:`GROUP_ATTRIBUTES`) and any others, which are
    #: skipped with a warning (``prop`` ``None``).
    attributes: tuple[AttributeMapping, ...]
    stamp: AttributeMapping | None
    #: The mapping maps ``members``: the job keeps the target group's memberships.
    members: bool


@dataclass(frozen=True)
class CompiledSchema:
    schema: JsonObject
    version: int
    #: The user object mapping (``None``: the schema has none).
    mapping: JsonObject | None
    enabled: bool
    flow_types: frozenset[str]
    input_filter: CompiledGroups
    scope_filter: CompiledGroups
    attributes: tuple[AttributeMapping, ...]
    #: The first mapping to the matching attribute (the alternative security id).
    stamp: AttributeMapping | None
    #: The group object mapping (``None``: the schema has none).
    group: CompiledGroupMapping | None = None


def compiled_schema(emulator: Emulator, record: SyncJobRecord) -> CompiledSchema:
    """The job's compiled schema, compiled again only when the schema changed."""
    cached = record.compiled
    if (
        isinstance(cached, CompiledSchema)
        and cached.schema is record.schema
        and cached.version == record.schema_version
    ):
        return cached
    compiled = _compile(record.schema, record.schema_version)
    record.compiled = compiled
    emulator.engine_stats["mappings_compiled"] += 1
    return compiled


def _object_mapping(schema: JsonObject, source_object: str) -> JsonObject | None:
    for rule in schema.get("synchronizationRules") or []:
        for mapping in (rule or {}).get("objectMappings") or []:
            if str((mapping or {}).get("sourceObjectName") or "").lower() == source_object:
                return dict(mapping)
    return None


def _attribute(raw: JsonObject) -> AttributeMapping:
    evaluate: Evaluate | None
    try:
        evaluate, error = compile_source(raw.get("source") or {}), None
    except ExpressionError as exc:
        evaluate, error = None, str(exc)
    default = raw.get("defaultValue")
    attribute = str(raw.get("targetAttributeName") or "")
    flow = str(raw.get("flowType") or "Always")
    if attribute == a2a.MATCHING_ATTRIBUTE:
        role = "matching"
    elif attribute in INTERNAL_ATTRIBUTES:
        role = "internal"
    else:
        role = "export"
    prop, value_kind = graph_property(attribute)
    return AttributeMapping(
        attribute=attribute,
        flow=flow,
        evaluate=evaluate,
        error=error,
        default=None if default is None else str(default),
        role=role,
        prop=prop,
        value_kind=value_kind,
        add_only=flow in _ADD_ONLY,
        object_add_only=flow == "ObjectAddOnly",
    )


def _flow_types(mapping: JsonObject | None) -> frozenset[str]:
    raw = str((mapping or {}).get("flowTypes") or "")
    return frozenset(p.strip() for p in raw.split(",") if p.strip())


def _group_attribute(raw: JsonObject) -> AttributeMapping:
    """A group mapping's attribute mapping: the group properties are written as text."""
    compiled = _attribute(raw)
    attribute = compiled.attribute
    if compiled.role != "export":
        return compiled
    if attribute == "members":
        return dataclasses.replace(compiled, role="members", prop=None)
    prop = attribute if attribute in GROUP_ATTRIBUTES else None
    return dataclasses.replace(compiled, prop=prop, value_kind="text")


def _compile_group(schema: JsonObject) -> CompiledGroupMapping | None:
    mapping = _object_mapping(schema, "group")
    if mapping is None:
        return None
    scope = mapping.get("scope") or {}
    attributes = tuple(
        _group_attribute(m) for m in mapping.get("attributeMappings") or [] if isinstance(m, dict)
    )
    return CompiledGroupMapping(
        mapping=mapping,
        enabled=bool(mapping.get("enabled", False)),
        flow_types=_flow_types(mapping),
        input_filter=CompiledGroups(scope.get("inputFilterGroups") or [], lenient=True),
        scope_filter=CompiledGroups(scope.get("groups") or []),
        attributes=attributes,
        stamp=next((a for a in attributes if a.role == "matching"), None),
        members=any(a.role == "members" for a in attributes),
    )


def _compile(schema: JsonObject, version: int) -> CompiledSchema:
    mapping = _object_mapping(schema, "user")
    scope = (mapping or {}).get("scope") or {}
    attributes = tuple(
        _attribute(m) for m in (mapping or {}).get("attributeMappings") or [] if isinstance(m, dict)
    )
    return CompiledSchema(
        schema=schema,
        version=version,
        mapping=mapping,
        enabled=bool((mapping or {}).get("enabled", False)),
        flow_types=_flow_types(mapping),
        input_filter=CompiledGroups(scope.get("inputFilterGroups") or [], lenient=True),
        scope_filter=CompiledGroups(scope.get("groups") or []),
        attributes=attributes,
        stamp=next((a for a in attributes if a.attribute == a2a.MATCHING_ATTRIBUTE), None),
        group=_compile_group(schema),
    )
