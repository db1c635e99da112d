"""kill -9 `ctsync apply` at write boundaries, with replication lag on: the kill lands while a
write is in flight, the audit trail names every write that reached the service (as an intent,
with its outcome unknown), and running apply again converges with no duplicate.

`make test` kills at a handful of points spread over the run; `pytest -m sweep` at every one
of the run's 22 writes.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.reliability.harness import (
    WRITE_METHODS,
    Lab,
    assert_one_of_everything,
    audit_records,
    count_intents,
    kill,
    traffic,
    writes_announced,
    writes_received,
)

pytestmark = pytest.mark.e2e

#: Writes one apply of the lab's two links makes (11 per link).
WRITES = 22
#: Latency keeps each write in flight long enough for the kill to land inside it.
SLOW = {"latency_ms": 120, "replication_lag": 3}
CALM = {"latency_ms": 0, "replication_lag": 0}


def _kill_at(lab: Lab, intents: int) -> None:
    lab.env["CTSYNC_REPLICATION_WAIT"] = "8"
    config = lab.config()
    lab.faults(SLOW)
    mark = lab.last_request()
    process = lab.start("apply", "-c", str(config), "--auto-approve")
    deadline = time.monotonic() + 60
    while count_intents(config) < intents and process.poll() is None:
        assert time.monotonic() < deadline, "the apply never reached the kill point"
        time.sleep(0.005)  # watching a real process: this wait is on wall time
    assert process.poll() is None, "the apply finished before the kill point"
    kill(process)
    assert process.returncode == -signal.SIGKILL, f"apply ended by itself ({process.returncode})"

    # The kill landed mid-apply: the trail announces the writes up to the kill point, and the
    # service answered some but not all of the writes a whole apply makes (not its last: the
    # jobs' start).
    records = audit_records(config)
    answered = lab.requests(after=mark)
    announced = writes_announced(records)
    assert sum(announced.values()) >= intents, announced
    done = [
        r
        for r in answered
        if r["method"] in WRITE_METHODS and r["path"] != "/$batch" and r["status"] < 300
    ]
    assert len(done) < WRITES, f"the kill landed after all {WRITES} writes of the apply"
    started = [r for r in done if r["method"] == "POST" and r["path"].endswith("/start")]
    assert len(started) < 2, "the kill landed after the apply's last write (the jobs' start)"

    # Every write that reached the service is in the trail, announced before it was sent.
    received = writes_received(answered)
    assert not received - announced, f"writes made but never recorded: {received - announced}"
    verified = lab.ctsync("audit", "verify", "-c", str(config), "--output", "json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert report["unknown_outcomes"], "the kill landed mid-write, yet no outcome is unknown"

    lab.converge(config, max_runs=3)
    lab.faults(CALM)
    assert_one_of_everything(lab)
    assert traffic(lab)["early_retries"] == 0


@pytest.mark.parametrize("intents", [1, 8, 14, 21])
def test_killed_mid_write_converges_without_duplicates(lab: Lab, intents: int) -> None:
    _kill_at(lab, intents)


@pytest.mark.sweep
@pytest.mark.parametrize("intents", range(1, WRITES + 1))
def test_killed_at_every_write_converges_without_duplicates(lab: Lab, intents: int) -> None:
    _kill_at(lab, intents)
