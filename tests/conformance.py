"""Check JSON payloads against Microsoft Graph's official v1.0 types.

Reads ``../shared/reference/graph-v1-types.json`` (the project's extract of Microsoft's
published metadata) and is written independently of the emulator's own body checker, so a
mistake in one does not hide a mistake in the other.

The emulator can add undocumented properties to its answers, as real tenants do (the fault
profile's ``extra_properties``, on by default in ``ctsync emulator serve``). They are not part
of the v1.0 types, so they are problems unless a check says it expects them
(``allow_extras=True``) — even on open types, where any other member passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_TYPES = ROOT.parent / "shared" / "reference" / "graph-v1-types.json"
VENDORED_TYPES = ROOT / "src" / "ctsync" / "emulator" / "core" / "graph_v1_types.json"

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DURATION = re.compile(r"^-?P(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")

#: The undocumented properties docs/emulator.md lists for ``extra_properties`` (written out
#: here rather than imported, so the checker stays independent of the emulator).
EXTRA_PROPERTIES: dict[str, frozenset[str]] = {
    "servicePrincipal": frozenset(
        {"errorUrl", "samlMetadataUrl", "publisherName", "isAuthorizationServiceEnabled"}
    ),
    "application": frozenset({"windows", "signInAudienceRestrictions"}),
    "crossTenantAccessPolicyConfigurationPartner": frozenset(
        {"protectedContentSharing", "invitationRedemptionIdentityProviderConfiguration"}
    ),
    "crossTenantIdentitySyncPolicyPartner": frozenset({"externalCloudAuthorizedApplicationId"}),
}


#: Types the emulator serves that the shared extract lacks, extracted from the same metadata.
SUPPLEMENT_TYPES = VENDORED_TYPES.with_name("graph_v1_types_supplement.json")


@cache
def types() -> dict[str, Any]:
    path = SHARED_TYPES if SHARED_TYPES.exists() else VENDORED_TYPES
    loaded: dict[str, Any] = json.loads(path.read_text())["types"]
    supplement: dict[str, Any] = json.loads(SUPPLEMENT_TYPES.read_text())["types"]
    # The supplement only adds: a type the shared extract has is never replaced.
    return {**supplement, **loaded}


def _name(ref: str) -> str:
    for prefix in ("microsoft.graph.", "graph."):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def properties(type_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    name: str | None = type_name
    while name:
        t = types()[name]
        for k, v in t["properties"].items():
            out.setdefault(k, v)
        out.update({k: {"type": "navigation", "nullable": True} for k in t["navigation"]})
        name = _name(t["base"]) if t["base"] else None
    return out


def problems(
    type_name: str, payload: Any, where: str = "$", *, allow_extras: bool = False
) -> list[str]:
    """Every way ``payload`` departs from ``type_name``; empty when it conforms.

    ``allow_extras`` accepts the emulator's undocumented :data:`EXTRA_PROPERTIES` (at any
    depth); without it they are problems, open type or not."""
    if not isinstance(payload, dict):
        return [f"{where}: expected an object of {type_name}, got {type(payload).__name__}"]
    declared = payload.get("@odata.type")
    if isinstance(declared, str):
        type_name = _name(declared.lstrip("#"))
        if type_name not in types():
            return [f"{where}: unknown @odata.type {declared}"]
    out: list[str] = []
    props = properties(type_name)
    open_type = bool(types()[type_name].get("openType"))
    extras = EXTRA_PROPERTIES.get(type_name, frozenset())
    for key, value in payload.items():
        if key.startswith("@odata.") or "@odata." in key:
            continue
        spec = props.get(key)
        if spec is None:
            if key in extras:
                if not allow_extras:
                    out.append(f"{where}.{key}: undocumented extra property of {type_name}")
                continue
            # An open type (e.g. detailsInfo) takes members its definition does not list.
            if not open_type:
                out.append(f"{where}.{key}: not a property of {type_name}")
            continue
        out.extend(_value(spec["type"], value, spec["nullable"], f"{where}.{key}", allow_extras))
    return out


def _value(
    ref: str, value: Any, nullable: bool, where: str, allow_extras: bool = False
) -> list[str]:
    if ref == "navigation":
        return []
    if value is None:
        return [] if nullable else [f"{where}: null but not nullable ({ref})"]
    if ref.startswith("Collection("):
        if not isinstance(value, list):
            return [f"{where}: expected a collection of {ref}"]
        inner = ref[len("Collection(") : -1]
        return [
            p
            for i, v in enumerate(value)
            for p in _value(inner, v, False, f"{where}[{i}]", allow_extras)
        ]
    if ref.startswith("Edm."):
        return _primitive(ref, value, where)
    name = _name(ref)
    t = types().get(name)
    if t is None:
        return []
    if t["kind"] == "enum":
        parts = value.split(",") if isinstance(value, str) and t["isFlags"] else [value]
        bad = [p for p in parts if not isinstance(p, str) or p.strip() not in t["members"]]
        return [f"{where}: {v!r} is not a member of {name}" for v in bad]
    return problems(name, value, where, allow_extras=allow_extras)


def _primitive(ref: str, value: Any, where: str) -> list[str]:
    checks: dict[str, Callable[[Any], bool]] = {
        "Edm.Boolean": lambda v: isinstance(v, bool),
        "Edm.Int32": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Edm.Int64": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Edm.Double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "Edm.Guid": lambda v: isinstance(v, str) and bool(_GUID.match(v)),
        "Edm.DateTimeOffset": lambda v: isinstance(v, str) and bool(_DATETIME.match(v)),
        "Edm.Duration": lambda v: isinstance(v, str) and bool(_DURATION.match(v)),
    }
    check = checks.get(ref, lambda v: isinstance(v, str))
    return [] if check(value) else [f"{where}: {value!r} is not a valid {ref}"]


def assert_conforms(type_name: str, payload: Any, *, allow_extras: bool = False) -> None:
    found = problems(type_name, payload, allow_extras=allow_extras)
    assert not found, "\n".join(found)
