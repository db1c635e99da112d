"""The fast reader (libyaml's events, ``ruamel.yaml.clib``) builds exactly what the round-trip
reader builds — data and the position of every key and value — or steps aside for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctsync.config import _yaml, init_example
from ctsync.config._yaml import Document, read_yaml

pytest.importorskip("_ruamel_yaml")

ROOT = Path(__file__).resolve().parents[2]

SNIPPETS = {
    "flow and block": "version: 1\ntenants:\n  a: {tenant_id: x, auth: {method: azure_cli}}\n"
    "  b:\n    tenant_id: y\n    list: [1, 2.5, true, null, ~, 'q', \"dq\"]\n",
    "empty values": "version: 1\ntenants:\n  a:\n    tenant_id:\n    auth:\nlinks:\n",
    "comments": "# head\nversion: 1 # one\ntenants: # none yet\n  a: {}  # empty\n",
    "block scalars": "a: |\n  line one\n  line two\nb: >-\n  folded\n  text\nc: 'it''s'\n",
    "numbers": "a: 1_000\nb: 0o17\nc: 0x1F\nd: -3\ne: 1e3\nf: .inf\ng: 017\nh: +5\n",
    "words": "a: yes\nb: no\nc: on\nd: True\ne: FALSE\nf: Null\ng: 12:30\n",
    "nested lists": "links:\n  - source: a\n    target: b\n  -\n    - x\n    - y\n  - []\n",
    "indentless": "scope:\n  assigned:\n  - {group: CTS-Pilot}\n  - group: Sales\n",
    "unicode": "name: Zoë\nemoji: \"\\u00e9\"\nkey with spaces: v\n'quoted key': w\n",
    "crlf": "version: 1\r\ntenants:\r\n  a:\r\n    tenant_id: x\r\n",
    "document markers": "---\nversion: 1\n...\n",
    "anchors": "tenants:\n  a:\n    cloud: &emu\n      graph_url: https://x\n      authority: https://y\n"
    "  b:\n    cloud: *emu\n  c: {cloud: *emu, name: &n text}\nnames: [*n, *n, x]\n"
    "deep: &d {l: [1, {m: &inner {k: v}}]}\nagain: {d: *d, i: *inner}\n",
}

LEFT_TO_ROUND_TRIP = {
    "alias as a key": "a: &x k\n*x : 1\n",
    "alias of an open anchor": "a: &x [1, *x]\n",
    "merge": "base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n",
    "tag": "a: !!str 5\n",
    "duplicate": "a: 1\na: 2\n",
    "number key": "1: a\n",
    "complex key": "? [a]\n: b\n",
    "timestamp": "a: 2026-01-05\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "scalar root": "just text\n",
    "empty": "",
    "syntax error": "a: [1, 2\n",
    "huge number": "a: 0x" + "f" * 2000 + "\n",
}


def _round_trip(text: str, monkeypatch: pytest.MonkeyPatch) -> Document:
    with monkeypatch.context() as patch:
        patch.setattr(_yaml, "_read_fast", lambda text, name: None)
        return read_yaml(text, name="c.yaml")


def _paths(data: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, (*path, index))
    return out


def _same(fast: Document, slow: Document) -> None:
    assert fast.data == slow.data
    assert type(fast.data) is type(slow.data)
    # Every place an error can point at is the same place.
    for path in _paths(slow.data):
        assert fast.locator.key(path) == slow.locator.key(path), path
        assert fast.locator.value(path) == slow.locator.value(path), path


def _texts() -> dict[str, str]:
    texts = dict(SNIPPETS)
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        texts[path.name] = path.read_text()
    texts["ctsync init"] = init_example()
    return texts


@pytest.mark.parametrize("name", sorted(_texts()))
def test_fast_reader_builds_what_the_round_trip_reader_builds(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _texts()[name]
    fast = _yaml._read_fast(text, "c.yaml")
    assert fast is not None, name
    _same(fast, _round_trip(text, monkeypatch))


@pytest.mark.parametrize("name", sorted(LEFT_TO_ROUND_TRIP))
def test_what_the_fast_reader_leaves_is_read_as_before(name: str) -> None:
    assert _yaml._read_fast(LEFT_TO_ROUND_TRIP[name], "c.yaml") is None


def test_a_fleet_config_is_read_the_fast_way(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["version: 1", "tenants:"]
    for i in range(300):
        lines += [
            f"  t{i}:",
            f"    tenant_id: 11111111-1111-4111-8111-{i:012d}",
            "    auth: {method: client_secret, client_id: x, client_secret_env: S}",
        ]
    text = "\n".join(lines) + "\n"
    fast = _yaml._read_fast(text, "c.yaml")
    assert fast is not None
    _same(fast, _round_trip(text, monkeypatch))
    assert fast.locator.value(("tenants", "t299", "auth", "method")) == "c.yaml:902:20"
