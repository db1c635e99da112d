"""Ctrl-C: exit 130 wherever it lands, and every write made before it is in the audit trail
with its outcome (or with "interrupted" when it was in flight)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.harness import (
    Lab,
    audit_records,
    count_intents,
    writes_announced,
    writes_received,
)

pytestmark = pytest.mark.e2e

PROMPT = "Only 'yes' will be accepted"


def _read_until(fd: int, text: str, process: subprocess.Popen[str], timeout: float = 60) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        assert process.poll() is None, f"ctsync ended early:\n{seen.decode(errors='replace')}"
        assert time.monotonic() < deadline, f"no {text!r} in:\n{seen.decode(errors='replace')}"
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the terminal closed
                break
    return seen.decode(errors="replace")


def test_ctrl_c_at_the_approval_prompt_exits_130_and_changes_nothing(lab: Lab) -> None:
    config = lab.config()
    mark = lab.last_request()
    main, terminal = pty.openpty()
    try:
        process = lab.start(
            "apply", "-c", str(config), stdin=terminal, stdout=terminal, stderr=terminal
        )
        _read_until(main, PROMPT, process)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        rest = _drain(main)
    finally:
        os.close(terminal)
        os.close(main)
    assert process.returncode == 130, rest
    assert "Aborted!" not in rest
    assert "Traceback" not in rest
    assert writes_received(lab.requests(after=mark)) == {}
    assert audit_records(config) == []


def _drain(fd: int) -> str:
    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def test_ctrl_c_during_apply_exits_130_and_records_every_write(lab: Lab) -> None:
    config = lab.config()
    lab.faults({"latency_ms": 150})
    mark = lab.last_request()
    process = lab.start("apply", "-c", str(config), "--auto-approve")
    deadline = time.monotonic() + 60
    # Stop it once some writes reached the service and more are under way.
    while sum(writes_received(lab.requests(after=mark)).values()) < 3 or count_intents(config) < 6:
        assert process.poll() is None, "the apply ended before the interrupt"
        assert time.monotonic() < deadline
        time.sleep(0.005)  # watching a real process
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    lab.faults({"latency_ms": 0})
    assert process.returncode == 130, err
    assert "Traceback" not in err
    records = audit_records(config)
    received = writes_received(lab.requests(after=mark))
    assert received, "the interrupt came before any write"
    assert not received - writes_announced(records)
    intents = {r["intent_id"] for r in records if r["phase"] == "intent"}
    outcomes = {r["intent_id"]: r for r in records if r["phase"] == "outcome"}
    # A clean stop leaves no write without its outcome: in flight ones say "Interrupted".
    assert intents == set(outcomes)
    codes = {r["error_code"] for r in outcomes.values() if r["status"] is None}
    assert codes <= {"Interrupted", "NotSent"}
    assert "Interrupted" in codes
    assert _verify_lists_interrupted(lab, config)


def _verify_lists_interrupted(lab: Lab, config: Path) -> bool:
    verified = lab.ctsync("audit", "verify", "-c", str(config))
    assert verified.returncode == 0, verified.stderr
    return "in flight when the run was interrupted" in verified.stdout
