"""A local note of configuration apps created but not yet tagged.

ctsync finds a link's app by the tags it writes right after creating it. A run killed in
between leaves an untagged app; the next run looks it up by name — but Entra replicates
asynchronously, and a list query made seconds after the create may not see it yet, which would
create a second app. So the executor notes each app it is about to create here (its name), and
then its ids from instantiate's answer; the next read waits out the replication lag — asking
for the object by id, or by name when the run died before the answer came — before it decides
the app is missing. The note is dropped once the app carries its tags.
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

    def _load(self) -> dict[str, dict[str, Any]]:
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
        apps = data.get("created_apps") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(apps, dict | None):
            raise self._error("not a ctsync journal")
        notes = {str(k): v for k, v in (apps or {}).items()}
        if not all(isinstance(v, dict) for v in notes.values()):
            raise self._error("not a ctsync journal")
        return {k: dict(v) for k, v in notes.items()}

    def _error(self, why: str) -> JournalError:
        msg = (
            f"cannot use the journal {self.path} ({why}). It notes configuration apps an "
            "interrupted apply was creating; if no apply was interrupted, remove it"
        )
        return JournalError(msg)

    def _save(self, apps: dict[str, dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"created_apps": apps}, indent=2, sort_keys=True) + "\n")
            tmp.replace(self.path)
        except OSError as exc:
            raise self._error(exc.strerror or type(exc).__name__) from None

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
