"""A cross-cloud link into a read-only tenant that does not allow the source's cloud: `ctsync
apply` refuses on preflight's `clouds.not-allowed` (with the fix) and changes nothing — against
`ctsync emulator serve`, where Fabrikam is in the US Government cloud."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ctsync.emulator.scenarios

from .served import Served, child_env, init_config, serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("cross-cloud")
    demo = Path(ctsync.emulator.scenarios.__file__).parent / "demo.json"
    scenario = json.loads(demo.read_text())
    for tenant in scenario["tenants"]:
        if tenant["name"] == "fabrikam":
            tenant["cloud"] = "usgov"
    path = folder / "scenario.json"
    path.write_text(json.dumps(scenario))
    with serving(folder, "--replication-lag", "0", "--scenario", str(path)) as running:
        yield running


def _state(served: Served) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=served.info["ca_cert"])
    answer = httpx.get(f"{served.info['control_url']}/state", verify=context)
    return {t["name"]: t for t in answer.json()["tenants"]}


def _cross_cloud(text: str) -> str:
    """Contoso says its cloud is commercial, Fabrikam (read-only) US Government: both reached
    through the served emulator, with explicit endpoints saying which cloud each stands for."""
    anchor = re.search(r"    cloud: &emulator\n((?:      .*\n)+)", text)
    assert anchor is not None, text
    body = anchor.group(1)
    text = text.replace(anchor.group(0), anchor.group(0) + "      endpoint: microsoftonline.com\n")
    head, _, rest = text.partition("  fabrikam:\n")
    gov = "    cloud:\n" + body + "      endpoint: microsoftonline.us\n"
    rest = rest.replace("    cloud: *emulator\n", gov, 1)
    rest = rest.replace("    auth:", "    managed: false\n    auth:", 1)
    return f"{head}  fabrikam:\n{rest}"


def test_apply_refuses_and_changes_nothing(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:fabrikam")
    config.write_text(_cross_cloud(config.read_text()))
    before = _state(served)
    command = [sys.executable, "-m", "ctsync", "apply", "-c", str(config), "--auto-approve"]
    done = subprocess.run(
        [*command, "--output", "json"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    payload = json.loads(done.stdout)
    assert payload["report"] is None
    found = [f for f in payload["preflight"]["findings"] if f["code"] == "clouds.not-allowed"]
    assert found, payload["preflight"]["findings"]
    assert found[0]["severity"] == "error"
    assert "microsoftonline.com" in found[0]["fix"]
    assert _state(served) == before
