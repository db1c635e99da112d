"""Start `ctsync emulator serve` as a real process for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ctsync

START_DEADLINE = 20.0


@dataclass
class Served:
    process: subprocess.Popen[str]
    info_file: Path
    info: dict[str, Any]

    def tenant(self, name: str) -> dict[str, Any]:
        return next(t for t in self.info["tenants"] if t["name"] == name)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(ctsync.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def start(tmp: Path, *extra: str) -> Served:
    info_file = tmp / "info.json"
    command = [sys.executable, "-m", "ctsync", "emulator", "serve", "--port", "0"]
    command += ["--info-file", str(info_file), "--state-dir", str(tmp / "state"), *extra]
    process = subprocess.Popen(
        command, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + START_DEADLINE
    while not info_file.exists():
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"emulator exited with {process.returncode} before it was ready:\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"emulator not ready after {START_DEADLINE} s")
        time.sleep(0.05)  # waiting for a subprocess to come up is the one allowed sleep
    return Served(process, info_file, json.loads(info_file.read_text()))


def stop(served: Served) -> None:
    if served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
        try:
            served.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.communicate()


@contextmanager
def serving(tmp: Path, *extra: str) -> Iterator[Served]:
    """:func:`start` … :func:`stop` around a block (a module fixture's body)."""
    running = start(tmp, *extra)
    try:
        yield running
    finally:
        stop(running)


def init_config(served: Served, config: Path, links: str | None = None) -> None:
    """`ctsync init --from-emulator` for the served emulator (``links``: ``S:T,...``)."""
    from click.testing import CliRunner

    from ctsync.cli import cli

    args = ["init", "--from-emulator", str(served.info_file), "-o", str(config)]
    if links:
        args += ["--links", links]
    made = CliRunner().invoke(cli, args)
    assert made.exit_code == 0, made.output
