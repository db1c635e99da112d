"""Deterministic identifiers: the same seed gives the same GUIDs in the same order."""

from __future__ import annotations

import random

__all__ = ["IdFactory"]

#: The RFC 4122 variant and version 4 bits, as ``uuid.UUID(version=4)`` sets them.
_KEEP = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_V4 = (0x8000 << 48) | (4 << 76)


class IdFactory:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def guid(self) -> str:
        """A version-4 GUID string drawn from the seeded generator (what
        ``str(uuid.UUID(int=bits, version=4))`` gives, without making the object)."""
        bits = (self._rng.getrandbits(128) & _KEEP) | _V4
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def hex32(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def secret(self) -> str:
        """A client-secret-looking string (40 characters, like Entra's)."""
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789~._-"
        return "".join(self._rng.choice(alphabet) for _ in range(40))
