"""What ctsync owns in the tenants, and what was there before it: the ownership ledger.

ctsync changes only what it manages, and deletes only what it made. A configuration app carries
its ownership in tags; partner configurations, identitySynchronization and the default policy
carry nothing, so ctsync keeps a ledger beside the config (``.ctsync/ownership.json``; keep it
with the project, like the audit trail):

- an object ctsync **created** (its create answered 2xx): destroy may delete it — if nothing
  ctsync does not manage is set on it by then;
- for an object it did not create, the value each managed field had **before** ctsync first
  changed it: destroy puts that value back (a field with no record goes back to ``null``,
  Graph's "inherit the default");
- for a collection (the policy's ``allowedCloudEndpoints``), the values ctsync **added**:
  destroy takes out only those, whatever else was or is added beside them.

An object the ledger does not know is treated as not created: destroy never deletes it, only
reverts ctsync's fields. So a lost ledger costs an empty partner configuration left behind, never
someone else's settings. Keys are tenant ids (a rename in the config does not lose them).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ctsync.engine._files import read_state_file
from ctsync.errors import CtsyncError

__all__ = ["DEFAULT_KEY", "POLICY_KEY", "Ledger", "LedgerError", "app_key", "object_key"]

#: A ledger holds a few entries per partner; anything this big is not one.
MAX_BYTES = 16 * 1024 * 1024
VERSION = 1


class LedgerError(CtsyncError):
    """The ownership ledger cannot be read or written."""


def object_key(kind: str, partner_id: str | None = None) -> str:
    """``partner:<id>``, ``identitySynchronization:<id>`` or ``default``."""
    return kind if partner_id is None else f"{kind}:{partner_id.lower()}"


#: The ledger's entry for a tenant's default cross-tenant access settings (a singleton).
DEFAULT_KEY = "default"
#: The entry for the cross-tenant access policy itself: the ``allowedCloudEndpoints`` values
#: ctsync *added* (``{"added": [...]}``) — a collection, so destroy takes out only those.
POLICY_KEY = "policy"


def app_key(sp_id: str) -> str:
    """The entry of an adopted configuration app (its secrets fingerprint before ctsync tags
    it)."""
    return object_key("app", sp_id)


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, dict[str, Any]]]:
        raw = read_state_file(self.path, limit=MAX_BYTES, error=self._error)
        if raw is None:
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise self._error("not JSON") from None
        tenants = data.get("tenants") if isinstance(data, dict) else None
        if not isinstance(tenants, dict) or not all(
            isinstance(objects, dict) and all(isinstance(v, dict) for v in objects.values())
            for objects in tenants.values()
        ):
            raise self._error("not a ctsync ownership ledger")
        return tenants

    def _error(self, why: str) -> LedgerError:
        msg = (
            f"cannot use the ownership ledger {self.path} ({why}). It records which partner "
            "settings ctsync created and what they were before it; restore it from your "
            "project, or remove it (then destroy reverts ctsync's fields and deletes nothing)"
        )
        return LedgerError(msg)

    def entry(self, tenant_id: str, key: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._read().get(tenant_id.lower(), {}).get(key, {}))

    def created(self, tenant_id: str, key: str) -> bool:
        """Whether ctsync created the object (its create answered)."""
        return self.entry(tenant_id, key).get("created") is True

    def before(self, tenant_id: str, key: str) -> dict[str, Any]:
        """Field → its value before ctsync first changed it."""
        before = self.entry(tenant_id, key).get("before")
        return dict(before) if isinstance(before, dict) else {}

    def check(self) -> None:
        """Read the ledger once, so a broken one stops a run before it reads any tenant."""
        with self._lock:
            self._read()

    # -- writing ------------------------------------------------------------------------

    def _update(self, tenant_id: str, key: str, change: dict[str, Any] | None) -> None:
        with self._lock:
            tenants = self._read()
            objects = tenants.setdefault(tenant_id.lower(), {})
            if change is None:
                objects.pop(key, None)
            else:
                objects[key] = {**objects.get(key, {}), **change}
            if not objects:
                tenants.pop(tenant_id.lower(), None)
            self._write(tenants)

    def _write(self, tenants: dict[str, dict[str, dict[str, Any]]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"version": VERSION, "tenants": tenants}, indent=2, sort_keys=True)
            tmp.write_text(text + "\n")
            tmp.replace(self.path)
        except OSError as exc:
            raise self._error(exc.strerror or type(exc).__name__) from None

    def note_created(self, tenant_id: str, key: str) -> None:
        self._update(tenant_id, key, {"created": True})

    def note_existing(self, tenant_id: str, key: str) -> None:
        """The object was there before ctsync (its create answered 409)."""
        if not self.created(tenant_id, key):
            self._update(tenant_id, key, {"created": False})

    def note_before(self, tenant_id: str, key: str, fields: dict[str, Any]) -> None:
        """Remember the values of ``fields`` before ctsync first changes them (once each)."""
        entry = self.entry(tenant_id, key)
        if entry.get("created") is True:
            return  # ctsync made it: there was no "before"
        known = dict(entry.get("before") or {})
        fresh = {k: v for k, v in fields.items() if k not in known}
        if fresh:
            self._update(tenant_id, key, {"before": {**known, **fresh}})

    def reverted(self, tenant_id: str, key: str, fields: list[str]) -> None:
        """``fields`` are back to their value before ctsync: ctsync no longer holds them."""
        entry = self.entry(tenant_id, key)
        before = {k: v for k, v in (entry.get("before") or {}).items() if k not in fields}
        if before or entry.get("created") is True:
            self._update(tenant_id, key, {"before": before})
        else:
            self.forget(tenant_id, key)

    def added(self, tenant_id: str, key: str) -> list[str]:
        """The collection values ctsync added to the object (it removes only those)."""
        added = self.entry(tenant_id, key).get("added")
        return [str(v) for v in added] if isinstance(added, list) else []

    def note_added(self, tenant_id: str, key: str, values: list[str]) -> None:
        known = self.added(tenant_id, key)
        fresh = [v for v in values if v not in known]
        if fresh:
            self._update(tenant_id, key, {"added": [*known, *fresh]})

    def note_removed(self, tenant_id: str, key: str, values: list[str]) -> None:
        left = [v for v in self.added(tenant_id, key) if v not in values]
        if left:
            self._update(tenant_id, key, {"added": left})
        else:
            self.forget(tenant_id, key)

    def note_adopted(self, tenant_id: str, sp_id: str, *, secrets: str) -> None:
        """An existing configuration a link adopts, and the fingerprint of the settings it is
        taken to hold (until ctsync writes them and tags it)."""
        self._update(tenant_id, app_key(sp_id), {"adopted": True, "secrets": secrets})

    def forget(self, tenant_id: str, key: str) -> None:
        """The object is gone, or ctsync no longer manages anything on it."""
        self._update(tenant_id, key, None)
