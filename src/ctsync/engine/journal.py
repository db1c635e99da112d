"""Local notes that bridge Entra's replication lag between runs.

**Apps created but not yet tagged.**
ctsync finds a link's app by the tags it writes right after creating it. A run killed in
between leaves an untagged app; the next run looks it up by name — but Entra replicates
asynchronously, and a list query made seconds after the create may not see it yet, which would
create a second app. So the executor notes each app it is about to create here (its name), and
then its ids from instantiate's answer; the next read waits out the replication lag — asking
for the object by id, or by name when the run died before the answer came — before it decides
the app is missing. The note is dropped once the app carries its tags.

**What the last apply did.** Right after an apply, a read may still miss what it wrote (a
partner configuration, an assignment), and a plan would show those steps again. The journal
keeps a fingerprint of each step the last apply completed and when; a plan made within the
replication window that would repeat one of them exactly reads again, waiting for the write to
show (``engine.settle``), instead of reporting changes that are already made.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ctsync.errors import CtsyncError

__all__ = ["Journal", "JournalError"]

#: A journal holds a few notes per link being created; anything this big is not one.
MAX_BYTES = 16 * 1024 * 1024


class JournalError(CtsyncError):
    """The journal beside the config cannot be read or written."""


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise self._error(exc.strerror or type(exc).__name__) from None
        if len(raw) > MAX_BYTES:
            raise self._error(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise self._error("not JSON") from None
        if not isinstance(data, dict):
            raise self._error("not a ctsync journal")
        apps = data.get("created_apps")
        applied = data.get("applied")
        if not isinstance(apps, dict | None) or not isinstance(applied, dict | None):
            raise self._error("not a ctsync journal")
        if not all(isinstance(v, dict) for v in (apps or {}).values()):
            raise self._error("not a ctsync journal")
        return data

    def _load(self) -> dict[str, dict[str, Any]]:
        apps = self._read().get("created_apps") or {}
        return {str(k): dict(v) for k, v in apps.items()}

    def _error(self, why: str) -> JournalError:
        msg = (
            f"cannot use the journal {self.path} ({why}). It notes configuration apps an "
            "interrupted apply was creating; if no apply was interrupted, remove it"
        )
        return JournalError(msg)

    def _save(self, apps: dict[str, dict[str, Any]]) -> None:
        self._write({**self._read(), "created_apps": apps})

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            tmp.replace(self.path)
        except OSError as exc:
            raise self._error(exc.strerror or type(exc).__name__) from None

    def record_applied(self, fingerprints: list[str], *, at: str) -> None:
        """The steps an apply completed (their fingerprints) and when it ended (ISO 8601)."""
        with self._lock:
            self._write({**self._read(), "applied": {"at": at, "steps": sorted(fingerprints)}})

    def forget_applied(self) -> None:
        with self._lock:
            data = self._read()
            if data.pop("applied", None) is not None:
                self._write(data)

    def last_applied(self) -> tuple[frozenset[str], str] | None:
        """(step fingerprints, when) of the last apply, if one is noted."""
        with self._lock:
            applied = self._read().get("applied")
        if not applied:
            return None
        steps, at = applied.get("steps"), applied.get("at")
        if not isinstance(steps, list) or not isinstance(at, str):
            return None
        return frozenset(str(s) for s in steps), at

    def created_apps(self) -> dict[str, dict[str, Any]]:
        """Apps created by an earlier run and not known to be tagged, by link tag."""
        with self._lock:
            return self._load()

    def record_intent(self, link_tag: str, *, display_name: str, at: str | None = None) -> None:
        """About to instantiate (at ``at``, ISO 8601 UTC): if the answer never arrives, look
        for this name — for as long as the app may still be replicating."""
        with self._lock:
            apps = self._load()
            apps[link_tag] = {
                "display_name": display_name,
                "sp_id": None,
                "app_id": None,
                "noted_at": at,
            }
            self._save(apps)

    def record_app(self, link_tag: str, *, sp_id: str, app_id: str | None) -> None:
        with self._lock:
            apps = self._load()
            note = apps.get(link_tag) or {}
            apps[link_tag] = {**note, "sp_id": sp_id, "app_id": app_id}
            self._save(apps)

    def forget_app(self, link_tag: str) -> None:
        with self._lock:
            apps = self._load()
            if apps.pop(link_tag, None) is not None:
                self._save(apps)
