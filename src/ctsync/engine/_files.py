"""Reading the small state files ctsync keeps beside a config (``.ctsync/``): bounded, and
every failure a message of the caller's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["read_state_file"]


def read_state_file(path: Path, *, limit: int, error: Callable[[str], Exception]) -> bytes | None:
    """The bytes of ``path`` (at most ``limit``), ``None`` when there is no such file; a file
    that cannot be read or is larger raises ``error(why)``."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(exc.strerror or type(exc).__name__) from None
    if len(raw) > limit:
        raise error(f"larger than {limit // (1024 * 1024)} MiB")
    return raw
