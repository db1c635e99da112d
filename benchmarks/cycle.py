"""The emulator's provisioning engine at scale, as a real ``ctsync emulator serve`` process.

- :func:`measure_cycle`: a hub tenant with N users in scope (``SyncAll``) and a spoke tenant
  whose directory quota holds them, one cross-tenant sync job between them (seeded through the
  control API as the portal leaves it, with the accidental-deletion threshold on at 500 as
  ``ctsync apply`` sets it). The job is started through Graph, then the emulator clock is moved
  (control ``clock/advance``) until its initial cycle has completed. Reported: the seconds the
  seed took, the first unrelated Graph request after ``start`` (it must not do the cycle's
  work), the cycle's wall seconds (from ``start`` to the answer of the advance after which the
  cycle had completed, state reads included), the server's CPU seconds over the same span and
  its peak RSS (``VmHWM``, the process's whole life: the seed included), and what the engine
  counted (``users_planned``: one per user).
- :func:`measure_request_overhead`: per number of jobs (1, 100, 1,000 by default), the same
  server seeded with that many started jobs whose first cycles have run, then timed: cheap Graph
  reads (``GET /organization``), and a user ``PATCH`` followed by a read (a write used to make
  the next request look at every job). Reported per request: the client's mean wall
  milliseconds and the server's CPU milliseconds (``/proc``), and the engine's ``jobs_visited``
  during the reads (0 when nothing is due).

Targets (reported, never asserted): per-request overhead flat from 1 to 1,000 jobs; a 100,000
user initial cycle within 20 s of wall time and 1 GB of peak RSS on 2 cores.

Run ``python -m benchmarks.cycle`` (full: 100,000 users, then 1/100/1,000 jobs; well under two
minutes) or ``python -m benchmarks.cycle --quick`` (10,000 users; 1/10/100 jobs); ``--users N``
and ``--jobs 1,10`` choose sizes. The answer is one JSON document on stdout. Run it on an
otherwise idle machine: the figures are wall-clock and CPU times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

__all__ = ["measure_cycle", "measure_request_overhead"]

CYCLE_SECONDS_TARGET = 20.0
CYCLE_RSS_MB_TARGET = 1024.0
DELETE_THRESHOLD = 500
_TICKS = os.sysconf("SC_CLK_TCK")
_ROOT = Path(__file__).resolve().parents[1]
_GRAPH_SCOPE = "https://graph.microsoft.com/.default"


# -- the served emulator ---------------------------------------------------------------------


class Served:
    """A running ``ctsync emulator serve``: control and Graph calls, and its /proc figures."""

    def __init__(self, process: subprocess.Popen[bytes], info: dict[str, Any]) -> None:
        self.process = process
        self.info = info
        self.http = httpx.Client(verify=info["ca_cert"], timeout=600)
        self._tokens: dict[str, str] = {}

    def control(self, path: str, body: Any = None) -> Any:
        url = f"{self.info['control_url']}/{path}"
        answer = self.http.get(url) if body is None else self.http.post(url, json=body)
        answer.raise_for_status()
        return answer.json()

    def token(self, tenant: dict[str, Any]) -> str:
        cached = self._tokens.get(tenant["tenant_id"])
        if cached is None:
            answer = self.http.post(
                f"{self.info['authority']}/{tenant['tenant_id']}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": tenant["client_id"],
                    "client_secret": tenant["client_secret"],
                    "scope": _GRAPH_SCOPE,
                },
            )
            answer.raise_for_status()
            cached = self._tokens[tenant["tenant_id"]] = str(answer.json()["access_token"])
        return cached

    def graph(
        self, tenant: dict[str, Any], method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token(tenant)}"}
        return self.http.request(
            method, f"{self.info['graph_url']}{path}", headers=headers, **kwargs
        )

    def cpu(self) -> float:
        """The server's CPU seconds so far (user + system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def peak_rss_mb(self) -> float:
        """The server's peak resident set size (VmHWM) in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def engine(self) -> dict[str, int]:
        counters: dict[str, int] = self.control("state")["engine"]
        return counters


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = (str(_ROOT / "src"), env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


@contextlib.contextmanager
def served() -> Iterator[Served]:
    """``ctsync emulator serve`` with no tenants, until the block ends."""
    with tempfile.TemporaryDirectory(prefix="ctsync-cycle-") as folder:
        info_file = Path(folder) / "info.json"
        command = [sys.executable, "-m", "ctsync", "emulator", "serve", "--port", "0"]
        command += ["--scenario", "empty", "--info-file", str(info_file)]
        command += ["--state-dir", str(Path(folder) / "state")]
        process = subprocess.Popen(
            command, env=_child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 60
            while not info_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode() if process.stderr else ""
                    msg = f"the emulator did not start: {err[-2000:]}"
                    raise RuntimeError(msg)
                time.sleep(0.05)  # waiting for a process to come up, not for emulator time
            server = Served(process, json.loads(info_file.read_text()))
            try:
                yield server
            finally:
                server.http.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the world -------------------------------------------------------------------------------


def hub_and_spoke(users: int, jobs: int = 1, *, started: bool = False) -> dict[str, Any]:
    """A hub with ``users`` members and ``jobs`` sync configurations into a spoke whose
    directory quota holds every user (the default 50,000 would refuse the rest)."""
    threshold = {"DeleteThresholdEnabled": True, "DeleteThresholdValue": DELETE_THRESHOLD}
    return {
        "tenants": [
            {
                "name": "hub",
                "clients": [{"permissions": [*_CTSYNC, "User.ReadWrite.All"]}],
                "users": [
                    {
                        "alias": f"u{i}",
                        "displayName": f"User {i}",
                        "givenName": "User",
                        "surname": str(i),
                        "department": "Sales",
                        "jobTitle": "Representative",
                        "city": "Seattle",
                        "country": "US",
                        "employeeId": f"E{i:06d}",
                    }
                    for i in range(users)
                ],
                "partners": [
                    {
                        "tenantId": "spoke",
                        "automaticUserConsentSettings": {"outboundAllowed": True},
                    }
                ],
                "cts_configurations": [
                    {
                        "display_name": f"Sync {n} to spoke",
                        "target": "spoke",
                        "job": {"state": "Active" if started else "Disabled"},
                        "secrets": {"SyncAll": True, "SyncNotificationSettings": threshold},
                    }
                    for n in range(jobs)
                ],
            },
            {
                "name": "spoke",
                "object_quota": max(50_000, users * jobs + 1_000),
                "clients": [{"permissions": "ctsync"}],
                "partners": [
                    {
                        "tenantId": "hub",
                        "automaticUserConsentSettings": {"inboundAllowed": True},
                        "identitySynchronization": {
                            "displayName": "Hub",
                            "userSyncInbound": {"isSyncAllowed": True},
                        },
                    }
                ],
            },
        ]
    }


_CTSYNC = [
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "AuditLog.Read.All",
    "CrossTenantInformation.ReadBasic.All",
    "Directory.Read.All",
    "Organization.Read.All",
    "Policy.Read.All",
    "Policy.ReadWrite.CrossTenantAccess",
    "Synchronization.ReadWrite.All",
    "UserAuthenticationMethod.ReadWrite.All",
]


def _jobs(server: Served) -> list[dict[str, Any]]:
    hub = next(t for t in server.control("state")["tenants"] if t["name"] == "hub")
    jobs: list[dict[str, Any]] = hub["provisioning"]
    return jobs


# -- the initial cycle -----------------------------------------------------------------------


def measure_cycle(users: int = 100_000) -> dict[str, float]:
    """Seed, start one job over ``users`` users, run its initial cycle; what it cost."""
    with served() as server:
        began = time.perf_counter()
        seeded = server.control("seed", {"scenario": hub_and_spoke(users)})
        seed_seconds = time.perf_counter() - began
        hub = next(t for t in seeded["tenants"] if t["name"] == "hub")
        server.control("faults", {"quotas": False})
        [job] = _jobs(server)
        path = f"/servicePrincipals/{job['service_principal_id']}/synchronization/jobs"
        path += f"/{job['job_id']}/start"
        server.token(hub)
        before = server.engine()
        cpu = server.cpu()
        began = time.perf_counter()
        server.graph(hub, "POST", path).raise_for_status()
        # The next request, unrelated to the job, once the cycle is due: it must not do the
        # cycle's work (at most the users whose simulated time has come on the wall clock).
        next_began = time.perf_counter()
        server.graph(hub, "GET", "/organization").raise_for_status()
        next_request = time.perf_counter() - next_began
        advances = _run_initial_cycle(server)
        wall = time.perf_counter() - began
        cycle_cpu = server.cpu() - cpu
        after = server.engine()
        state = server.control("state")
        spoke = next(t for t in state["tenants"] if t["name"] == "spoke")
        [job] = _jobs(server)
        return {
            "users": float(users),
            "seed_seconds": round(seed_seconds, 3),
            "next_request_ms": round(next_request * 1000, 2),
            "cycle_wall_seconds": round(wall, 3),
            "cycle_server_cpu_seconds": round(cycle_cpu, 3),
            "server_peak_rss_mb": round(server.peak_rss_mb(), 1),
            "clock_advances": float(advances),
            "target_users": float(spoke["users"]),
            "escrowed": float(job["escrows"]),
            "completed_cycles": float(job["completed_cycles"]),
            "users_planned": float(after["users_planned"] - before["users_planned"]),
            "jobs_visited": float(after["jobs_visited"] - before["jobs_visited"]),
            "wall_target_seconds": CYCLE_SECONDS_TARGET,
            "rss_target_mb": CYCLE_RSS_MB_TARGET,
        }


def _run_initial_cycle(server: Served) -> int:
    """Move the clock until the job's first cycle completed: hours at a time, then about
    what the users left should take (from the pace so far), then a minute at a time, so that
    little of the next cycle runs in the same advance. The number of advances."""
    advances = 0
    simulated = 0.0
    while True:
        [job] = _jobs(server)
        if job["completed_cycles"] >= 1:
            return advances
        step = 6 * 3600.0
        running = job["running_cycle"]
        if running and running["completed"]:
            left = running["total"] - running["completed"]
            pace = simulated / running["completed"]
            step = max(60.0, min(step, left * pace * 0.98))
        server.control("clock/advance", {"seconds": step})
        simulated += step
        advances += 1


# -- per-request overhead --------------------------------------------------------------------


def measure_request_overhead(
    jobs: list[int] | None = None, *, requests: int = 200
) -> dict[str, dict[str, float]]:
    """Per number of jobs: mean per-request time of cheap reads and of a write then a read."""
    sizes = jobs if jobs is not None else [1, 100, 1_000]
    out: dict[str, dict[str, float]] = {}
    with served() as server:
        for size in sizes:
            server.control("reset", {})
            seeded = server.control("seed", {"scenario": hub_and_spoke(2, size, started=True)})
            hub = next(t for t in seeded["tenants"] if t["name"] == "hub")
            server.control("faults", {"quotas": False})
            server.control("clock/advance", {"seconds": 120})  # every first cycle runs
            out[str(size)] = _overhead(server, hub, requests)
    return out


def _overhead(server: Served, hub: dict[str, Any], requests: int) -> dict[str, float]:
    user = server.graph(hub, "GET", "/users?$top=1").json()["value"][0]["id"]
    server.graph(hub, "GET", "/organization").raise_for_status()  # warm the connection
    before = server.engine()
    cpu = server.cpu()
    began = time.perf_counter()
    for _ in range(requests):
        server.graph(hub, "GET", "/organization").raise_for_status()
    read_wall = (time.perf_counter() - began) / requests
    read_cpu = (server.cpu() - cpu) / requests
    after = server.engine()
    cpu = server.cpu()
    began = time.perf_counter()
    for n in range(requests // 2):
        body = {"jobTitle": f"Title {n}"}
        server.graph(hub, "PATCH", f"/users/{user}", json=body).raise_for_status()
        server.graph(hub, "GET", "/organization").raise_for_status()
    mixed_wall = (time.perf_counter() - began) / (requests // 2 * 2)
    mixed_cpu = (server.cpu() - cpu) / (requests // 2 * 2)
    return {
        "read_ms": round(read_wall * 1000, 3),
        "read_server_cpu_ms": round(read_cpu * 1000, 3),
        "write_then_read_ms": round(mixed_wall * 1000, 3),
        "write_then_read_server_cpu_ms": round(mixed_cpu * 1000, 3),
        "jobs_visited_by_reads": float(after["jobs_visited"] - before["jobs_visited"]),
    }


# -- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10,000 users; 1, 10, 100 jobs")
    parser.add_argument("--users", type=int, help="users of the initial cycle")
    parser.add_argument("--jobs", help="comma-separated job counts for the request overhead")
    args = parser.parse_args(argv)
    users = args.users or (10_000 if args.quick else 100_000)
    if args.jobs:
        sizes = [int(n) for n in args.jobs.split(",") if n.strip()]
    else:
        sizes = [1, 10, 100] if args.quick else [1, 100, 1_000]
    began = time.perf_counter()
    result: dict[str, Any] = {
        "cycle": measure_cycle(users),
        "request_overhead": measure_request_overhead(sizes),
    }
    result["total_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
