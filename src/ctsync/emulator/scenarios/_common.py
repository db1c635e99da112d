"""What the scenario loader's passes share: the error type and a seeded tenant's context."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctsync.emulator.state import Tenant

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = ["GUID", "ScenarioError", "SeededTenant", "need", "resolve_tenant_id"]

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class ScenarioError(ValueError):
    """A scenario is malformed; the message names where."""


@dataclass
class SeededTenant:
    """A tenant the first pass added, with what later passes need: its scenario entry, the
    ids its user and group aliases stand for, and where it is in the scenario."""

    tenant: Tenant
    spec: dict[str, Any]
    aliases: dict[str, str]
    where: str


def need(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        msg = f"{where}.{key} must be a {kind.__name__}"
        raise ScenarioError(msg)
    return value


def resolve_tenant_id(emulator: Emulator, ref: Any, where: str, *, guid_ok: bool) -> str:
    """The tenant id ``ref`` stands for: a tenant name (or id) the emulator holds, or — with
    ``guid_ok`` — any GUID (a tenant the emulator does not hold)."""
    if not isinstance(ref, str) or not ref.strip():
        kinds = "a tenant name of the scenario or a tenant id (GUID)" if guid_ok else "a tenant"
        msg = f"{where} must name {kinds}"
        raise ScenarioError(msg)
    try:
        return emulator.tenant(ref).id
    except KeyError:
        if guid_ok and GUID.match(ref):
            return ref.lower()
    msg = f"{where}: unknown tenant {ref!r}"
    raise ScenarioError(msg)
