"""The JSON Schema for editors, and the package's public names."""

from __future__ import annotations

import json
from pathlib import Path

import ctsync.config
from ctsync.config import json_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "ctsync.schema.json"


def test_committed_schema_is_current() -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == json_schema(), (
        "docs/ctsync.schema.json is stale; regenerate it (see docs/config.md, Editor support)"
    )


def test_schema_describes_every_key() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "ctsync configuration"
    assert schema["additionalProperties"] is False
    for name, definition in schema["$defs"].items():
        assert definition.get("description"), name
        for key, prop in definition.get("properties", {}).items():
            if key != "method":  # the auth method is its own definition's discriminator
                assert prop.get("description"), f"{name}.{key}"
    assert "filter" in schema["$defs"]["Scope"]["properties"]


def test_all_is_sorted_and_complete() -> None:
    names = ctsync.config.__all__

    def rank(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)

    assert names == sorted(names, key=rank)
    for name in names:
        assert hasattr(ctsync.config, name)
