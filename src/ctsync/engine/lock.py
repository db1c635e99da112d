"""One run at a time per config: a lock file beside the journal and the audit trail.

Two applies of one config at once would both create the configuration app a link lacks (each
reads "missing", each creates): duplicates. The lock is an OS file lock (``flock`` on POSIX,
``msvcrt.locking`` on Windows), so it is released by the kernel on any exit — a crash or a
``kill -9`` included — and never goes stale. The file holds who has the lock (command, pid,
host, start time), so a refused run can name it; a holder that ended without clearing it (it was
killed) is reported to the next run, whose writes in flight then deserve a look.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from ctsync.errors import CtsyncError

__all__ = ["LockHeldError", "RunLock", "StaleHolder"]


class LockHeldError(CtsyncError):
    """Another ctsync run holds the config's lock."""


@dataclass(frozen=True)
class StaleHolder:
    """A run that held the lock and ended without releasing it (killed or crashed)."""

    command: str
    pid: int | None
    started: str | None

    def describe(self) -> str:
        pid = f"pid {self.pid}, " if self.pid else ""
        return f"{self.command} ({pid}started {self.started or 'at an unknown time'})"


def _describe(holder: dict[str, Any]) -> str:
    parts = [str(holder.get("command") or "a ctsync run")]
    details = []
    if holder.get("pid"):
        details.append(f"pid {holder['pid']}")
    if holder.get("host"):
        details.append(f"on {holder['host']}")
    if holder.get("started"):
        details.append(f"started {holder['started']}")
    if details:
        parts.append(f"({', '.join(details)})")
    return " ".join(parts)


class RunLock:
    """An exclusive, non-blocking lock on ``path`` for one ``command``.

    ``acquire`` raises :class:`LockHeldError` naming the holder when another process has it,
    and returns the :class:`StaleHolder` a killed run left behind, if any.
    """

    def __init__(self, path: Path, *, command: str) -> None:
        self.path = path
        self.command = command
        self._file: IO[bytes] | None = None

    def acquire(self) -> StaleHolder | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), "r+b")
        except OSError as exc:
            msg = f"cannot open the lock file {self.path}: {exc.strerror or exc}"
            raise LockHeldError(msg) from None
        if not _try_lock(handle):
            holder = _read(handle)
            handle.close()
            msg = (
                f"another ctsync run holds the lock {self.path}: {_describe(holder)}. "
                "Wait for it to finish and run again (the lock ends with that process)"
            )
            raise LockHeldError(msg)
        previous = _read(handle)
        stale = None
        if previous.get("command"):
            pid = previous.get("pid")
            stale = StaleHolder(
                command=str(previous["command"]),
                pid=pid if isinstance(pid, int) else None,
                started=str(previous["started"]) if previous.get("started") else None,
            )
        _write(
            handle,
            {
                "command": self.command,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        self._file = handle
        return stale

    def release(self) -> None:
        handle, self._file = self._file, None
        if handle is None:
            return
        try:
            with contextlib.suppress(OSError):  # else the next run reports a stale holder
                handle.seek(0)
                handle.truncate()  # a clean end: nothing for the next run to report
                handle.flush()
        finally:
            _unlock(handle)
            handle.close()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read(handle: IO[bytes]) -> dict[str, Any]:
    try:
        handle.seek(0)
        data = json.loads(handle.read(4096) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(handle: IO[bytes], holder: dict[str, Any]) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(holder).encode())
    handle.flush()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    # Lock one byte far past the holder's note, so reading the note is never blocked.
    _OFFSET = 1 << 30

    def _try_lock(handle: IO[bytes]) -> bool:
        handle.seek(_OFFSET)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(_OFFSET)
        with contextlib.suppress(OSError):
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
