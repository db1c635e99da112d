"""Two runs at once: the config's lock lets one through and stops the other, naming the holder;
duplicates that get made anyway (by hand, or from another machine) are shown by `plan` with
the command that removes them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.reliability.harness import Lab, assert_one_of_everything, kill, traffic

pytestmark = pytest.mark.e2e


def _holding(config: Path) -> Path:
    """Wait until a run holds the config's lock (its note is written); the lock file."""
    lock = config.parent / ".ctsync" / "lock"
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text().strip()):
        assert time.monotonic() < deadline, "no run took the lock"
        time.sleep(0.01)  # watching a real process
    return lock


def test_two_applies_at_once_one_runs_the_other_names_the_lock(lab: Lab) -> None:
    config = lab.config()
    # Slow enough that the first still holds the lock once the second process has started
    # (Python's start-up alone is a good part of a second; a fast apply was already done).
    lab.faults({"latency_ms": 500})
    first = lab.start("apply", "-c", str(config), "--auto-approve")
    lock = _holding(config)
    second = lab.ctsync("apply", "-c", str(config), "--auto-approve")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 1
    assert "another ctsync run holds the lock" in second.stderr
    assert str(lock) in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    lab.faults({"latency_ms": 0})
    assert_one_of_everything(lab)
    assert lab.ctsync("plan", "-c", str(config), "--detailed-exitcode").returncode == 0


def test_a_lock_left_by_a_killed_run_is_not_in_the_way(lab: Lab) -> None:
    config = lab.config()
    lab.faults({"latency_ms": 100})
    doomed = lab.start("apply", "-c", str(config), "--auto-approve")
    lock = _holding(config)
    kill(doomed)
    lab.faults({"latency_ms": 0})
    lab.env["CTSYNC_REPLICATION_WAIT"] = "3"
    again = lab.ctsync("apply", "-c", str(config), "--auto-approve")
    assert again.returncode == 0, again.stderr
    assert "ended without finishing" in again.stderr
    assert f"pid {doomed.pid}" in again.stderr
    assert lock.read_text() == ""  # released cleanly this time


def test_duplicates_made_by_hand_are_shown_with_their_remedy(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    assert lab.ctsync("apply", "-c", str(config), "--auto-approve").returncode == 0
    with lab.graph("contoso") as contoso:
        listed = contoso.get("/servicePrincipals").json()["value"]
        # Microsoft Graph's own service principal is listed too, as in every tenant.
        [kept] = [sp for sp in listed if sp["appDisplayName"] != "Microsoft Graph"]
        # Someone copies the app, tags and all (or a second machine ran apply at that moment).
        copy = contoso.post(
            "/applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate",
            json={"displayName": "fabrikam (ctsync)"},
        ).json()["servicePrincipal"]
        contoso.patch(f"/servicePrincipals/{copy['id']}", json={"tags": kept["tags"]})

    planned = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout
    assert "2 configuration apps in contoso carry the tag of link contoso:fabrikam." in (
        planned.stdout
    )
    assert copy["id"] in planned.stdout
    assert "fix: ctsync destroy --duplicates --link contoso:fabrikam" in planned.stdout
    shown = json.loads(lab.ctsync("plan", "-c", str(config), "--output", "json").stdout)
    [problem] = shown["problems"]
    assert problem["code"] == "duplicate-apps"
    assert problem["objects"] == [copy["id"]]

    removed = lab.ctsync(
        "destroy",
        "-c",
        str(config),
        "--duplicates",
        "--link",
        "contoso:fabrikam",
        "--auto-approve",
    )
    assert removed.returncode == 0, removed.stderr
    with lab.graph("contoso") as contoso:
        listed = contoso.get("/servicePrincipals").json()["value"]
        ids = [sp["id"] for sp in listed if sp["appDisplayName"] != "Microsoft Graph"]
    assert ids == [kept["id"]]
    assert lab.ctsync("plan", "-c", str(config), "--detailed-exitcode").returncode == 0
    assert traffic(lab)["early_retries"] == 0
