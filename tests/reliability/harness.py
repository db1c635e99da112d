"""The reliability lab: a served emulator and real `ctsync` processes under a watchdog.

Everything here runs as a user runs it — `ctsync emulator serve` over HTTPS, `ctsync apply` as
its own process — because the defects this suite guards against live in the whole process: an
event loop that spins (no timeout inside the process can fire), a SIGKILL between two writes,
two processes racing. A process that outlives its watchdog is killed and the test fails with
:class:`~tests.watchdog.HangError`.
"""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.served import Served, child_env, init_config
from tests.watchdog import HangError

#: The links every lab run applies: two configuration apps in contoso, two targets.
LINKS = "contoso:fabrikam,contoso:tailspin"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

#: Seconds a whole `ctsync` process may take before it counts as hung. Generous: a run under
#: 50 % 429s with 1-2 s Retry-After takes a few seconds; a hang never ends.
WATCHDOG = 120.0


@dataclass
class Run:
    """One finished `ctsync` process."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Lab:
    served: Served
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    # -- the emulator ---------------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.served.info["ca_cert"])

    def control(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.served.info['control_url']}/{path}"
        if method == "GET":
            answer = httpx.get(url, verify=self._tls(), timeout=30)
        else:
            answer = httpx.post(url, json=body or {}, verify=self._tls(), timeout=30)
        answer.raise_for_status()
        return answer.json()

    def reset(self, faults: dict[str, Any] | None = None, *, scenario: str = "demo") -> None:
        """The scenario's tenants afresh (same seed: same ids and secrets), with ``faults``."""
        self.control("POST", "reset")
        seeded = self.control("POST", "seed", {"scenario": scenario})
        assert seeded["tenants"] == self.served.info["tenants"]
        if faults:
            self.control("POST", "faults", faults)

    def faults(self, faults: dict[str, Any]) -> None:
        self.control("POST", "faults", faults)

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.control("GET", "state")
        return state

    def requests(self, after: int = 0) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.control("GET", f"requests?after={after}")["requests"]
        return answer

    def last_request(self) -> int:
        logged = self.requests()
        return int(logged[-1]["seq"]) if logged else 0

    def graph(self, tenant: str) -> httpx.Client:
        """A Graph client signed in as ``tenant``'s app (client credentials), for changes made
        "by hand" beside ctsync."""
        client = self.served.tenant(tenant)
        token = httpx.post(
            f"{self.served.info['authority']}/{client['tenant_id']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
                "scope": "https://graph.microsoft.com/.default",
            },
            verify=self._tls(),
            timeout=30,
        )
        token.raise_for_status()
        return httpx.Client(
            base_url=self.served.info["graph_url"],
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            verify=self._tls(),
            timeout=30,
        )

    # -- configs and processes ------------------------------------------------------------

    def config(self, name: str = "ctsync", links: str = LINKS) -> Path:
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "ctsync.yaml"
        init_config(self.served, path, links)
        return path

    def _env(self) -> dict[str, str]:
        return {**child_env(), "NO_COLOR": "1", **self.env}

    def start(self, *args: str, **popen: Any) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "ctsync", *args]
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(command, env=self._env(), text=True, **popen)

    def ctsync(self, *args: str, watchdog: float = WATCHDOG) -> Run:
        """Run `ctsync ARGS` to its end; a process still running after ``watchdog`` seconds
        is killed and the test fails as a hang."""
        began = time.monotonic()
        process = self.start(*args)
        try:
            out, err = process.communicate(timeout=watchdog)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            msg = (
                f"`ctsync {' '.join(args)}` still ran after {watchdog:.0f} s (hang); "
                f"its stderr ended with:\n{err[-2000:]}"
            )
            raise HangError(msg) from None
        return Run(args, process.returncode, out, err, time.monotonic() - began)

    def converge(self, config: Path, *, max_runs: int = 4) -> list[Run]:
        """`ctsync apply` until it succeeds (at most ``max_runs``); then `plan` must be empty."""
        runs: list[Run] = []
        while len(runs) < max_runs:
            run = self.ctsync("apply", "-c", str(config), "--auto-approve", "--output", "json")
            runs.append(run)
            assert "Traceback" not in run.stderr, run.stderr
            if run.returncode == 0:
                break
        assert runs[-1].returncode == 0, (
            f"apply did not converge in {max_runs} runs; last stderr:\n{runs[-1].stderr[-3000:]}"
        )
        planned = self.ctsync("plan", "-c", str(config), "--detailed-exitcode")
        assert planned.returncode == 0, (
            f"plan after apply exited {planned.returncode}:\n{planned.stdout}\n"
            + "\n".join(planned.stderr.splitlines()[-5:])
        )
        return runs


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL, as `kill -9` does: no handler runs, nothing is flushed or closed."""
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def audit_records(config: Path) -> list[dict[str, Any]]:
    """Every record of the config's audit trail, read as a stranger would (read-only)."""
    import sqlite3

    db = config.parent / ".ctsync" / "audit.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM records ORDER BY seq")]


def count_intents(config: Path) -> int:
    """Intent records so far (0 while the trail does not exist or is busy)."""
    import sqlite3

    db = config.parent / ".ctsync" / "audit.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as conn:
            found = conn.execute("SELECT count(*) FROM records WHERE phase = 'intent'")
            return int(found.fetchone()[0])
    except sqlite3.Error:
        return 0


def writes_received(requests: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """The Graph writes the emulator answered, by (method, path)."""
    return Counter(
        (r["method"], r["path"])
        for r in requests
        if r["method"] in WRITE_METHODS and r["path"] != "/$batch"
    )


def writes_announced(records: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """The writes the audit trail says were (about to be) sent, by (method, path)."""
    return Counter((r["method"], r["path"]) for r in records if r["phase"] == "intent")


def assert_one_of_everything(lab: Lab) -> None:
    """The two links exist exactly once each: no duplicate app, job, partner or policy."""
    tenants = {t["name"]: t for t in lab.state()["tenants"]}
    contoso = tenants["contoso"]
    assert contoso["applications"] == 2, contoso
    assert contoso["service_principals"] == 2, contoso
    assert [j["schedule"] for j in contoso["synchronization_jobs"]] == ["Active", "Active"]
    assert contoso["app_role_assignments"] == 2
    assert len(contoso["partners"]) == 2
    for name in ("fabrikam", "tailspin"):
        assert tenants[name]["partners"] == [contoso["tenant_id"]]
        assert tenants[name]["identity_synchronization"] == [contoso["tenant_id"]]


def traffic(lab: Lab) -> dict[str, Any]:
    stats: dict[str, Any] = lab.state()["stats"]["traffic"]
    return stats
