"""The public API is what __all__ says, sorted, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["ctsync", "ctsync.audit", "ctsync.emulator", "ctsync.errors", "ctsync.graph"]
)
def test_all_is_sorted_and_complete(module: str) -> None:
    mod = importlib.import_module(module)
    names = mod.__all__

    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions.
    def rank(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)

    assert names == sorted(names, key=rank)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name} is in __all__ but missing"
