"""The emulator's copy of Microsoft's v1.0 types stays equal to the project's reference."""

from __future__ import annotations

import json

import pytest

from tests.conformance import SHARED_TYPES, VENDORED_TYPES


def test_vendored_types_equal_the_shared_reference() -> None:
    if not SHARED_TYPES.exists():
        pytest.skip("../shared/reference is not present beside this checkout")
    assert json.loads(VENDORED_TYPES.read_text()) == json.loads(SHARED_TYPES.read_text())
