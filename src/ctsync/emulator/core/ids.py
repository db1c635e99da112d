"""Deterministic identifiers: the same seed gives the same GUIDs in the same order."""

from __future__ import annotations

import random
import uuid

__all__ = ["IdFactory"]


class IdFactory:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def guid(self) -> str:
        """A version-4 GUID string drawn from the seeded generator."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex32(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def secret(self) -> str:
        """A client-secret-looking string (40 characters, like Entra's)."""
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789~._-"
        return "".join(self._rng.choice(alphabet) for _ in range(40))
