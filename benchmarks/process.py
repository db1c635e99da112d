"""Whole processes: what a user waits for.

The simulated benchmarks (B1–B6) run ctsync's library in one process on a virtual clock; they
leave out Python's start-up, imports, reading the config, TLS handshakes and token requests, and
the CPU either side spends. Here every run is a real ``ctsync`` process (``python -m ctsync``)
against a real ``ctsync emulator serve`` process over HTTPS on loopback, with the server's
``--latency-ms`` added to every Graph answer, timed on the wall clock. Beside wall time: the
client process's CPU seconds and peak RSS (``wait4``), and the server's CPU seconds over the run
and its peak RSS (``/proc``; its peak is reset before each run).

- **P1** (B1 as processes): one link, ``ctsync apply --auto-approve`` (its own live read, plan,
  preflight gate and writes) against the naive walkthrough as a process
  (``python -m benchmarks.naive_process``: the same client library, one call at a time, no
  pacing, the same work — T1 … S10 without provision on demand, with the config's partner
  settings, secrets, mappings and scoping: :mod:`benchmarks.walkthrough`), at 200 ms latency.
  Also ``ctsync validate`` (imports, config, no network): the start-up a user pays on every
  command.

Every process runs from compiled bytecode, as an installed ctsync does (compiled once before the
first timed run; a machine-wide ``PYTHONDONTWRITEBYTECODE`` is dropped for the children).
- **P5** (B5 as processes): ``ctsync plan --detailed-exitcode`` over N configured links with
  nothing to change, at 100 ms latency with the documented quotas on; the links are set up first
  by ``ctsync apply`` with latency and quotas off (that run is reported too, not judged).

Replication lag: off (``--replication-lag 0``) while timing — the naive script has no answer to
a 404 right after a create, and the lag would only add the same seconds to both. ctsync's apply
under the served default (2 s) is reported beside it (P1, ``apply_with_lag``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from ctsync.config import load

from .naive import link_work
from .world import GROUP_NAME, HUB, scenario, spoke_name

__all__ = ["ProcessRun", "run_p1", "run_p5"]

P1_LATENCY_MS = 200
#: P1 runs each process this many times, interleaved, and reports the median run (wall time):
#: one sample of a 1.5 s process on a shared machine moves by a tenth either way.
P1_REPEATS = 5
P5_LATENCY_MS = 100
P1_SPEEDUP_TARGET = 2.5
P5_SECONDS_TARGET = 10.0
P5_MEMORY_TARGET_MB = 200.0
STARTUP_TARGET = 0.25
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessRun:
    """One finished process: wall seconds, CPU seconds (user + system), peak RSS (MB)."""

    args: list[str]
    returncode: int
    wall: float
    cpu: float
    peak_rss_mb: float
    server_cpu: float = 0.0
    server_peak_rss_mb: float = 0.0
    stderr_tail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["args"] = " ".join(self.args)
        return out


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # An installed ctsync runs from compiled bytecode (pip compiles it on install; an editable
    # install writes it on first import). A machine that forbids writing it would recompile
    # every module on every start: not what a user waits for.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    root = str(Path(__file__).resolve().parents[1])
    src = str(Path(root) / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, root, env.get("PYTHONPATH")) if p)
    env["NO_COLOR"] = "1"
    return env


class Server:
    """A running ``ctsync emulator serve``: its info file, control API and /proc figures."""

    def __init__(self, process: subprocess.Popen[bytes], info: dict[str, Any]) -> None:
        self.process = process
        self.info = info

    def control(self, path: str, body: Any = None) -> Any:
        url = f"{self.info['control_url']}/{path}"
        verify = self.info["ca_cert"]
        if body is None:
            answer = httpx.get(url, verify=verify, timeout=120)
        else:
            answer = httpx.post(url, json=body, verify=verify, timeout=600)
        answer.raise_for_status()
        return answer.json()

    def answered(self) -> int:
        """A mark in the request log: its last ``seq`` (0 when empty; a control reset empties
        the log, the numbering goes on)."""
        logged = self.control("requests")["requests"]
        return int(logged[-1]["seq"]) if logged else 0

    def answered_since(self, mark: int) -> int:
        """Graph calls answered after ``mark`` (see :meth:`answered`)."""
        return len(self.control(f"requests?after={mark}")["requests"])

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def reset_peak(self) -> None:
        # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM).
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


def compile_bytecode() -> None:
    """Compile ctsync's modules and the benchmarks' once, before any process is timed."""
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "compileall", "-q", str(root / "src")]
    command.append(str(root / "benchmarks"))
    subprocess.run(command, env=_child_env(), check=True, capture_output=True)


@contextmanager
def serve(folder: Path, world: dict[str, Any], *args: str) -> Iterator[Server]:
    """``ctsync emulator serve`` seeded with ``world`` (a scenario), until the block ends."""
    seed = folder / "scenario.json"
    seed.write_text(json.dumps(world))
    info_file = folder / "info.json"
    command = [sys.executable, "-m", "ctsync", "emulator", "serve", "--port", "0"]
    command += ["--info-file", str(info_file), "--state-dir", str(folder / "state")]
    command += ["--scenario", str(seed), *args]
    # The server's own output goes to a file: a pipe nobody reads would fill and block it.
    log = folder / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=_child_env(), stdout=sink, stderr=sink)
    try:
        # A fleet of 1,001 tenants takes a while to seed, more on a busy machine.
        deadline = time.monotonic() + 300
        while not info_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                err = log.read_text(errors="replace")
                msg = f"the emulator did not start: {err[-2000:]}"
                raise RuntimeError(msg)
            time.sleep(0.05)
        yield Server(process, json.loads(info_file.read_text()))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(args: Sequence[str], *, cwd: Path, server: Server | None = None) -> ProcessRun:
    """Run ``python -m ARGS`` to its end, measured (wall, CPU, peak RSS; the server's too).

    Started through :mod:`benchmarks._spawn`, so the peak RSS is the command's own, not the
    harness's memory a forked child inherits."""
    if server is not None:
        server.reset_peak()
        server_cpu = server.cpu()
    with tempfile.TemporaryDirectory(prefix="ctsync-run-") as tmp:
        figures = Path(tmp) / "figures.json"
        command = [sys.executable, "-m", "benchmarks._spawn", str(figures), "--"]
        command += [sys.executable, "-m", *args]
        done = subprocess.run(command, cwd=cwd, env=_child_env(), capture_output=True, check=False)
        measured = json.loads(figures.read_text()) if figures.exists() else {}
    result = ProcessRun(
        args=list(args),
        returncode=int(measured.get("returncode", done.returncode)),
        wall=float(measured.get("wall", 0.0)),
        cpu=float(measured.get("cpu", 0.0)),
        peak_rss_mb=float(measured.get("peak_rss_mb", 0.0)),
        stderr_tail=done.stderr.decode(errors="replace")[-1500:],
    )
    if server is not None:
        result.server_cpu = server.cpu() - server_cpu
        result.server_peak_rss_mb = server.peak_rss_mb()
    return result


def _config(server: Server, folder: Path, spokes: int, name: str = "ctsync") -> Path:
    """A config for the served emulator in its own folder (``folder/name``): every run starts
    with no state of an earlier one (journal, ownership ledger, last-apply record)."""
    del server
    links = ",".join(f"{HUB}:{spoke_name(i)}" for i in range(1, spokes + 1))
    (folder / name).mkdir()
    config = folder / name / "ctsync.yaml"
    info = folder / "info.json"
    made = run(
        ["ctsync", "init", "--from-emulator", str(info), "--links", links, "-o", str(config)],
        cwd=folder,
    )
    if made.returncode != 0:
        msg = f"ctsync init failed: {made.stderr_tail}"
        raise RuntimeError(msg)
    return config


def _ok(measured: ProcessRun, expected: Sequence[int] = (0,)) -> ProcessRun:
    if measured.returncode not in expected:
        msg = f"`{' '.join(measured.args)}` exited {measured.returncode}: {measured.stderr_tail}"
        raise RuntimeError(msg)
    return measured


def _fresh(server: Server, world: dict[str, Any], **faults: float) -> None:
    """The same tenants afresh (same seed: same ids and secrets). A control reset restores the
    served platform profile, not ``--latency-ms``: set the faults again."""
    server.control("reset", {})
    server.control("seed", {"scenario": world})
    server.control("faults", faults)


def _naive_work(config: Path, spokes: Sequence[str], out: Path) -> str:
    """The naive process's request bodies (:class:`~benchmarks.walkthrough.LinkWork`) for the
    config ctsync applies, in a file: the script does the same work, without loading ctsync."""
    desired = load(config)
    links = {spoke: link_work(desired, f"{HUB}:{spoke}") for spoke in spokes}
    out.write_text(json.dumps({"hub": HUB, "group": GROUP_NAME, "links": links}))
    return str(out)


def _median(runs: Sequence[ProcessRun]) -> ProcessRun:
    """The run of median wall time (of an odd count of runs)."""
    ordered = sorted(runs, key=lambda r: r.wall)
    return ordered[len(ordered) // 2]


def run_p1() -> dict[str, Any]:
    """P1: one link, whole processes, at 200 ms latency: each process run
    :data:`P1_REPEATS` times, interleaved (each apply on fresh tenants, in its own folder),
    and its median run reported."""
    compile_bytecode()
    world = scenario(1)
    validates: list[ProcessRun] = []
    applies: list[ProcessRun] = []
    naives: list[ProcessRun] = []
    requests_tool = requests_naive = 0
    with tempfile.TemporaryDirectory(prefix="ctsync-p1-") as tmp:
        folder = Path(tmp)
        lag0 = ("--latency-ms", str(P1_LATENCY_MS), "--replication-lag", "0")
        with serve(folder, world, *lag0) as server:
            info = str(folder / "info.json")
            for i in range(P1_REPEATS):
                _fresh(server, world, latency_ms=P1_LATENCY_MS)
                config = _config(server, folder, 1, name=f"ctsync-{i}")
                validates.append(_ok(run(["ctsync", "validate", "-c", str(config)], cwd=folder)))
                before = server.answered()
                applies.append(
                    _ok(
                        run(
                            ["ctsync", "apply", "-c", str(config), "--auto-approve"],
                            cwd=folder,
                            server=server,
                        )
                    )
                )
                requests_tool = server.answered_since(before)
                _fresh(server, world, latency_ms=P1_LATENCY_MS)
                work = _naive_work(config, [spoke_name(1)], folder / "work.json")
                before = server.answered()
                naives.append(
                    _ok(run(["benchmarks.naive_process", info, work], cwd=folder, server=server))
                )
                requests_naive = server.answered_since(before)
            _fresh(server, world, latency_ms=P1_LATENCY_MS, replication_lag=2.0)
            again = _config(server, folder, 1, name="lagged")
            lagged = _ok(
                run(
                    ["ctsync", "apply", "-c", str(again), "--auto-approve"],
                    cwd=folder,
                    server=server,
                )
            )
    validate, apply, naive = _median(validates), _median(applies), _median(naives)
    speedup = naive.wall / apply.wall
    return {
        "benchmark": "P1",
        "latency_ms": P1_LATENCY_MS,
        "repeats": P1_REPEATS,
        "validate": validate.as_dict(),
        "apply": apply.as_dict(),
        "naive": naive.as_dict(),
        "apply_with_lag": lagged.as_dict(),
        "walls": {
            "validate": [r.wall for r in validates],
            "apply": [r.wall for r in applies],
            "naive": [r.wall for r in naives],
        },
        "requests": {"ctsync": requests_tool, "naive": requests_naive},
        "speedup": speedup,
        "targets": {
            f"whole process >= {P1_SPEEDUP_TARGET}x naive at {P1_LATENCY_MS} ms": {
                "value": speedup,
                "met": speedup >= P1_SPEEDUP_TARGET,
            },
            f"start-up (validate) <= {STARTUP_TARGET} s": {
                "value": validate.wall,
                "met": validate.wall <= STARTUP_TARGET,
            },
        },
    }


def run_p5(n: int) -> dict[str, Any]:
    """P5: ``plan`` over ``n`` configured links with nothing to change, whole process."""
    compile_bytecode()
    world = scenario(n)
    with tempfile.TemporaryDirectory(prefix="ctsync-p5-") as tmp:
        folder = Path(tmp)
        calm = ("--latency-ms", "0", "--replication-lag", "0", "--faults", "quotas=off")
        with serve(folder, world, *calm) as server:
            config = _config(server, folder, n)
            setup = _ok(
                run(
                    ["ctsync", "apply", "-c", str(config), "--auto-approve"],
                    cwd=folder,
                    server=server,
                )
            )
            # Let every bucket refill, as a drift check hours later would find them.
            server.control("faults", {"latency_ms": float(P5_LATENCY_MS), "quotas": True})
            before = server.answered()
            plan = _ok(
                run(
                    ["ctsync", "plan", "-c", str(config), "--detailed-exitcode"],
                    cwd=folder,
                    server=server,
                )
            )
            requests = server.answered_since(before)
    per_link_ms = plan.cpu / n * 1000
    return {
        "benchmark": "P5",
        "links": n,
        "latency_ms": P5_LATENCY_MS,
        "setup_apply": setup.as_dict(),
        "plan": plan.as_dict(),
        "requests": requests,
        "client_cpu_ms_per_link": per_link_ms,
        "targets": {
            f"plan over {n:,} links <= {P5_SECONDS_TARGET:.0f} s": {
                "value": plan.wall,
                "met": plan.wall <= P5_SECONDS_TARGET,
            },
            f"plan peak RSS <= {P5_MEMORY_TARGET_MB:.0f} MB": {
                "value": plan.peak_rss_mb,
                "met": plan.peak_rss_mb <= P5_MEMORY_TARGET_MB,
            },
            "client CPU <= 15 ms per link": {"value": per_link_ms, "met": per_link_ms <= 15.0},
            "empty plan (exit 0)": {"value": plan.returncode, "met": plan.returncode == 0},
        },
    }
