"""Day 2 as a user runs it against `ctsync emulator serve`: status, a cycle, logs, on-demand
provisioning, and a quarantine that `ctsync status` reports with exit code 1."""

from __future__ import annotations

import csv
import io
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from ctsync.cli import cli
from tests.e2e.served import Served, init_config, start, stop

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Day-two commands, not replication: the lag would only slow the applies down.
    served = start(tmp_path_factory.mktemp("serve"), "--replication-lag", "0")
    yield served
    stop(served)


def ctsync(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _control(served: Served, path: str) -> None:
    context = ssl.create_default_context(cafile=served.info["ca_cert"])
    httpx.post(f"{served.info['control_url']}/{path}", json={}, verify=context).raise_for_status()


#: The columns of `ctsync logs --output csv`, in order.
CSV_COLUMNS = [
    "time",
    "link",
    "action",
    "status",
    "reason",
    "source_user",
    "source_id",
    "target_id",
    "cycle_id",
    "change_id",
    "message",
    "object_type",
]


def _assert_skipped_csv(output: str) -> None:
    """`ctsync logs --output csv --status skipped` after a provisioning on demand and a cycle."""
    reader = csv.DictReader(io.StringIO(output))
    assert reader.fieldnames == CSV_COLUMNS
    rows = list(reader)
    assert rows, "the skipped entries are missing from the CSV"
    assert {(r["link"], r["status"]) for r in rows} == {("contoso:fabrikam", "skipped")}
    assert all(r["time"] and r["source_id"] and r["cycle_id"] and r["message"] for r in rows)
    assert {r["object_type"] for r in rows} == {"User"}  # the link syncs no groups
    skipped = {(r["source_user"], r["reason"]) for r in rows}
    # The provisioning on demand and the cycle skipped these (the demo scenario's users).
    assert {
        ("isaiah@contoso.com", "SmsSignInEnabled"),
        ("patti@contoso.com", "NotEffectivelyEntitled"),
        ("jordan_northwind.example#EXT#@contoso.onmicrosoft.com", "ExternalUser"),
    } <= skipped, skipped


def test_day_two(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:fabrikam")

    not_yet = ctsync("status", "-c", str(config))
    assert not_yet.exit_code == 1
    assert "not set up" in not_yet.output

    applied = ctsync("apply", "-c", str(config), "--auto-approve", "--skip-preflight")
    assert applied.exit_code == 0, applied.output

    # Validate one user before the bulk: Isaiah has SMS sign-in, so CTS skips him.
    isaiah = ctsync(
        "provision", "-c", str(config), "--link", "contoso:fabrikam", "--user", "isaiah@contoso.com"
    )
    assert isaiah.exit_code == 0, isaiah.output
    assert "skipped" in isaiah.output.lower()
    adele = ctsync(
        "provision",
        "-c",
        str(config),
        "--link",
        "contoso:fabrikam",
        "--user",
        "adele@contoso.com",
        "--output",
        "json",
    )
    assert adele.exit_code == 0, adele.output
    # The first cycle runs right after start, so Adele may already be there (RedundantExport).
    result = json.loads(adele.output)[0]
    assert result["status"].lower() in {"success", "skipped"}
    if result["status"].lower() == "skipped":
        assert result["reason"] == "RedundantExport"

    _control(served, "cycles/run")
    # Watching a quiet link: its block once, then nothing until something changes.
    watched = ctsync("status", "-c", str(config), "--watch", "--interval", "0", "--polls", "3")
    assert watched.exit_code == 0, watched.output
    assert watched.output.count("-- ") == 1
    assert watched.output.count("contoso:fabrikam") == 1
    status = ctsync("status", "-c", str(config), "--output", "json")
    assert status.exit_code == 0, status.output
    link = json.loads(status.output)[0]
    assert link["healthy"] is True
    assert link["code"] == "Active"
    assert link["synchronized_users"] >= 4

    summary = ctsync("logs", "-c", str(config), "--summary")
    assert summary.exit_code == 0, summary.output
    assert "create" in summary.output
    assert "skipped" in summary.output

    as_csv = ctsync("logs", "-c", str(config), "--output", "csv", "--status", "skipped")
    assert as_csv.exit_code == 0, as_csv.output
    _assert_skipped_csv(as_csv.output)

    first = ctsync("logs", "-c", str(config), "--incremental", "--output", "json")
    assert json.loads(first.output)["entries"]
    second = ctsync("logs", "-c", str(config), "--incremental", "--output", "json")
    assert json.loads(second.output)["entries"] == []

    # Turn automatic redemption off (past preflight): the next cycle quarantines the job.
    broken = config.read_text().replace("automatic_redemption: true", "automatic_redemption: false")
    config.write_text(broken)
    assert ctsync("apply", "-c", str(config), "--auto-approve", "--skip-preflight").exit_code == 0
    _control(served, "cycles/run")
    quarantined = ctsync("status", "-c", str(config))
    assert quarantined.exit_code == 1
    assert "QUARANTINED" in quarantined.output
    assert "remedy" in quarantined.output

    for verb in ("pause", "start"):
        assert ctsync(verb, "-c", str(config)).exit_code == 0
    bad = ctsync("restart", "-c", str(config), "--reset", "everything")
    assert bad.exit_code == 1
    assert "--reset takes" in bad.output
