"""The demo as a user runs it — `ctsync emulator serve`, apply, one provisioning cycle — and its
report, made once for the tests of the report; the ``chromium`` marker."""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from ctsync.cli import cli
from tests.e2e.served import Served, child_env, init_config, start, stop

#: The demo's links: two applied and cycled, Contoso → Tailspin left for later ("not set up").
LINKS = "contoso:fabrikam,contoso:tailspin,fabrikam:contoso"
APPLIED = ("contoso:fabrikam", "fabrikam:contoso")
#: Then Fabrikam → Contoso loses automatic redemption, and its next cycle is quarantined.
BROKEN = "fabrikam:contoso"
_LINE = "  - {source: fabrikam, target: contoso, template: member-sync}"
_NO_REDEMPTION = _LINE[:-1] + ", overrides: {access: {automatic_redemption: false}}}"


def break_redemption(config: Path) -> None:
    """Switch automatic redemption off for :data:`BROKEN` (what an admin's edit in the portal
    would do); apply it past preflight, which would refuse."""
    text = config.read_text()
    assert _LINE in text
    config.write_text(text.replace(_LINE, _NO_REDEMPTION))
    args = ["apply", "-c", str(config), "--auto-approve", "--skip-preflight", "--link", BROKEN]
    applied = CliRunner().invoke(cli, args)
    assert applied.exit_code == 0, applied.output


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chromium: drives headless Chromium (`scripts/ensure-chromium` installs it; skipped "
        "when it is missing)",
    )


@dataclass
class Demo:
    served: Served
    config: Path
    html: Path

    def report(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`ctsync report -c CONFIG ARGS…` in its own process, as a user runs it.

        A report reads the registration report and the provisioning logs, which share Graph's
        reports quota (5 requests per 10 s per tenant): the emulator's clock moves 10 s first,
        so a report right after another finds the quota refilled instead of waiting for it."""
        control(self.served, "clock/advance", {"seconds": 10})
        command = [sys.executable, "-m", "ctsync", "report", "-c", str(self.config), *args]
        return subprocess.run(
            command, env=child_env(), capture_output=True, text=True, timeout=120, check=False
        )


def control(served: Served, path: str, body: dict[str, object] | None = None) -> None:
    context = ssl.create_default_context(cafile=served.info["ca_cert"])
    url = f"{served.info['control_url']}/{path}"
    httpx.post(url, json=body or {}, verify=context, timeout=30).raise_for_status()


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The served demo: two links applied, a cycle, one link broken and quarantined by the next
    cycle, a third link never applied; then `ctsync report -o r.html`."""
    root = tmp_path_factory.mktemp("report")
    served = start(root, "--replication-lag", "0")
    try:
        config = root / "ctsync.yaml"
        init_config(served, config, LINKS)
        links = [arg for key in APPLIED for arg in ("--link", key)]
        applied = CliRunner().invoke(cli, ["apply", "-c", str(config), "--auto-approve", *links])
        assert applied.exit_code == 0, applied.output
        control(served, "cycles/run")
        break_redemption(config)
        control(served, "cycles/run")
        found = Demo(served, config, root / "r.html")
        made = found.report("-o", str(found.html))
        assert made.returncode == 0, made.stderr
        yield found
    finally:
        stop(served)
