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

**On disk.** ``journal.json`` is a snapshot; the notes a run takes as it goes are appended, one
JSON line each, to ``journal.json.log`` beside it (each note costs one short write, whatever
the number of links — rewriting the whole file three times per link was quadratic), and folded
into the snapshot when the run records what it applied. A torn last line (a kill mid-write) is
ignored: the note it held was not complete, and the create it announced had not been sent.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ctsync.engine._files import read_state_file
from ctsync.errors import CtsyncError

__all__ = ["Journal", "JournalError"]

#: A journal holds a few notes per link being created; anything this big is not one.
MAX_BYTES = 16 * 1024 * 1024


class JournalError(CtsyncError):
    """The journal beside the config cannot be read or written."""


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.log_path = path.with_name(f"{path.name}.log")
        self._lock = threading.Lock()
        #: The snapshot with the appended notes replayed: read once, then kept in memory.
        self._data: dict[str, Any] | None = None

    def _read(self) -> dict[str, Any]:
        raw = read_state_file(self.path, limit=MAX_BYTES, error=self._error)
        if raw is None:
            return {}
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

    def _state(self) -> dict[str, Any]:
        if self._data is None:
            data = self._read()
            apps = {str(k): dict(v) for k, v in (data.get("created_apps") or {}).items()}
            self._replay(apps)
            self._data = {**data, "created_apps": apps}
        return self._data

    def _replay(self, apps: dict[str, dict[str, Any]]) -> None:
        """Apply the notes appended since the snapshot, in order."""
        raw = read_state_file(
            self.log_path, limit=MAX_BYTES, error=lambda why: self._error(f"its log: {why}")
        )
        if raw is None:
            return
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                if number >= len(lines) - 1:
                    return  # a torn last line: the run died writing it
                raise self._error(f"line {number} of its log is not JSON") from None
            if not isinstance(entry, dict):
                raise self._error(f"line {number} of its log is not a note")
            tag, note = entry.get("set"), entry.get("note")
            if isinstance(tag, str) and isinstance(note, dict):
                apps[tag] = dict(note)
            elif isinstance(entry.get("forget"), str):
                apps.pop(entry["forget"], None)
            else:
                raise self._error(f"line {number} of its log is not a note")

    def _apps(self) -> dict[str, dict[str, Any]]:
        apps: dict[str, dict[str, Any]] = self._state()["created_apps"]
        return apps

    def _append(self, entry: dict[str, Any]) -> None:
        """One note, one line, written and flushed before the caller goes on (the create it
        announces is sent after this returns)."""
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
                handle.flush()
        except OSError as exc:
            raise self._error(exc.strerror or type(exc).__name__) from None

    def _error(self, why: str) -> JournalError:
        msg = (
            f"cannot use the journal {self.path} ({why}). It notes configuration apps an "
            "interrupted apply was creating; if no apply was interrupted, remove it"
        )
        return JournalError(msg)

    def _compact(self) -> None:
        """Write the whole state as the snapshot, then drop the appended notes."""
        state = self._state()
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
            tmp.replace(self.path)
            self.log_path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._error(exc.strerror or type(exc).__name__) from None

    def record_applied(self, fingerprints: list[str], *, at: str) -> None:
        """The steps an apply completed (their fingerprints) and when it ended (ISO 8601)."""
        with self._lock:
            self._state()["applied"] = {"at": at, "steps": sorted(fingerprints)}
            self._compact()

    def forget_applied(self) -> None:
        with self._lock:
            if self._state().pop("applied", None) is not None:
                self._compact()

    def last_applied(self) -> tuple[frozenset[str], str] | None:
        """(step fingerprints, when) of the last apply, if one is noted."""
        with self._lock:
            applied = self._state().get("applied")
        if not applied:
            return None
        steps, at = applied.get("steps"), applied.get("at")
        if not isinstance(steps, list) or not isinstance(at, str):
            return None
        return frozenset(str(s) for s in steps), at

    def created_apps(self) -> dict[str, dict[str, Any]]:
        """Apps created by an earlier run and not known to be tagged, by link tag."""
        with self._lock:
            return {tag: dict(note) for tag, note in self._apps().items()}

    def record_intent(self, link_tag: str, *, display_name: str, at: str | None = None) -> None:
        """About to instantiate (at ``at``, ISO 8601 UTC): if the answer never arrives, look
        for this name — for as long as the app may still be replicating."""
        note = {"display_name": display_name, "sp_id": None, "app_id": None, "noted_at": at}
        with self._lock:
            self._apps()[link_tag] = note
            self._append({"set": link_tag, "note": note})

    def record_app(self, link_tag: str, *, sp_id: str, app_id: str | None) -> None:
        with self._lock:
            apps = self._apps()
            note = {**(apps.get(link_tag) or {}), "sp_id": sp_id, "app_id": app_id}
            apps[link_tag] = note
            self._append({"set": link_tag, "note": note})

    def forget_app(self, link_tag: str) -> None:
        with self._lock:
            if self._apps().pop(link_tag, None) is not None:
                self._append({"forget": link_tag})
