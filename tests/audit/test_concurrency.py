"""Concurrent appenders (threads, separate connections, processes) keep one valid chain."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ctsync
from ctsync.audit import AuditTrail

from .conftest import write

THREADS = 8
EACH = 40


def _assert_one_chain(path: Path, expected: int) -> None:
    with AuditTrail(path) as trail:
        result = trail.verify()
        assert result.ok, result.problems
        assert result.count == expected
        assert [r.seq for r in trail.records()] == list(range(1, expected + 1))


def test_threads_sharing_one_trail(db_path: Path) -> None:
    start = threading.Barrier(THREADS)
    with AuditTrail(db_path) as trail:

        def worker(n: int) -> None:
            start.wait()
            write(trail, EACH, step=f"worker-{n}")

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(worker, range(THREADS)))
        steps = {r.step for r in trail.records()}
    assert steps == {f"worker-{n}" for n in range(THREADS)}
    _assert_one_chain(db_path, THREADS * EACH)


def test_threads_with_their_own_connections(db_path: Path) -> None:
    # Separate connections contend through sqlite's file locks, as two processes would.
    AuditTrail(db_path).close()
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        with AuditTrail(db_path) as mine:
            start.wait()
            write(mine, EACH, step=f"worker-{n}")

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    _assert_one_chain(db_path, THREADS * EACH)


_APPENDER = """
import sys
from pathlib import Path
from ctsync.audit import AuditTrail
with AuditTrail(Path(sys.argv[1])) as trail:
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(int(sys.argv[2])):
        trail.append(actor_tenant=sys.argv[3], method="POST", path="/x", body={"i": i}, status=201)
"""


def test_two_processes_appending_to_one_file(db_path: Path) -> None:
    src = str(Path(ctsync.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, str(db_path), "150", f"process-{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for n in range(2)
    ]
    try:
        for proc in procs:  # both have the file open before either writes
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
    _assert_one_chain(db_path, 300)
