"""Reading a file a user named: regular files only, bounded in size, never blocking.

``Path.read_text`` on ``/dev/zero`` never returns and on a FIFO waits for a writer; on a huge
file it takes all memory. Everything ctsync reads because a config or an argument named it goes
through :func:`read_bounded`, which opens without blocking, refuses anything but a regular file
and reads at most ``limit`` bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ctsync.errors import ConfigError

__all__ = ["read_bounded"]

# A FIFO opened for reading would block until a writer appears; O_NONBLOCK makes the open
# return at once so that fstat can refuse it. It changes nothing for a regular file.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def read_bounded(path: Path, *, limit: int, what: str, location: str | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    ``what`` names the file in messages ("config file", "secret file"). A missing file raises
    :class:`FileNotFoundError`, so the caller can say how to create it; every other problem
    (a directory, a FIFO or device, too large, unreadable) is a :class:`ConfigError` at
    ``location`` (default: the path itself).
    """
    where = location if location is not None else str(path)
    # At the file itself the location already names it; at a config key, say which file.
    what = what if location is None else f"{what} {path}"
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        msg = f"{what} is a directory, not a file"
        raise ConfigError(msg, location=where) from None
    except OSError as exc:
        msg = f"cannot read {what}: {exc.strerror or type(exc).__name__}"
        raise ConfigError(msg, location=where) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            msg = f"{what} is a directory, not a file"
            raise ConfigError(msg, location=where)
        if not stat.S_ISREG(info.st_mode):
            msg = f"{what} is not a regular file (a FIFO, socket or device)"
            raise ConfigError(msg, location=where)
        if info.st_size > limit:
            msg = f"{what} is too large: {info.st_size:,} bytes, the limit is {limit:,}"
            raise ConfigError(msg, location=where)
        data = _read_up_to(fd, limit + 1, what=what, path=path, where=where)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew after fstat
        msg = f"{what} is too large: more than {limit:,} bytes"
        raise ConfigError(msg, location=where)
    return data


def _read_up_to(fd: int, count: int, *, what: str, path: Path, where: str) -> bytes:
    chunks: list[bytes] = []
    left = count
    while left > 0:
        try:
            chunk = os.read(fd, min(left, 1 << 20))
        except OSError as exc:
            msg = f"cannot read {what}: {exc.strerror or type(exc).__name__}"
            raise ConfigError(msg, location=where) from None
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
