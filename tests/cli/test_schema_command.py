"""`ctsync schema` prints the config's JSON Schema; `init` writes it beside the config with a
`yaml-language-server` modeline pointing at it — completion in an editor with no network."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ctsync.cli import cli
from ctsync.config import json_schema


def test_schema_prints_the_config_schema(tmp_path: Path) -> None:
    printed = CliRunner().invoke(cli, ["schema"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output) == json_schema()
    out = tmp_path / "schema.json"
    written = CliRunner().invoke(cli, ["schema", "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert json.loads(out.read_text()) == json_schema()


def test_init_points_editors_at_a_schema_beside_the_config(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "ctsync.yaml"
    made = CliRunner().invoke(cli, ["init", "-o", str(config)])
    assert made.exit_code == 0, made.output
    first = config.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./ctsync.schema.json"
    assert json.loads((config.parent / "ctsync.schema.json").read_text()) == json_schema()
    checked = CliRunner().invoke(cli, ["validate", "-c", str(config)])
    assert checked.exit_code == 0, checked.output  # the modeline is a comment
