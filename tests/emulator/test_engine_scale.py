"""The provisioning engine's cost grows with its work, not with requests × jobs or users × passes.

These tests read the engine's counters (``GET /_emulator/state`` → ``engine``), never timings:
``jobs_visited`` counts every job the engine looks at to find due events, ``users_planned``
every evaluation of a source user, ``mappings_compiled`` every compilation of a job's schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport
from ctsync.emulator.scenarios import CTSYNC_PERMISSIONS
from ctsync.emulator.state import SyncJobRecord

GRAPH = "https://graph.microsoft.com/v1.0"
CONTROL = "https://graph.microsoft.com/_emulator"
JOBS = 40


def hub_and_spoke(users: int, jobs: int, *, state: str = "Active") -> dict[str, Any]:
    """A hub with ``users`` members and ``jobs`` sync configurations (SyncAll) into one spoke
    that allows inbound sync and automatic redemption."""
    return {
        "tenants": [
            {
                "name": "hub",
                "clients": [{"permissions": [*CTSYNC_PERMISSIONS, "User.ReadWrite.All"]}],
                "users": [
                    {"alias": f"u{i}", "displayName": f"User {i}", "department": "Sales"}
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
                        "job": {"state": state},
                        "secrets": {"SyncAll": True},
                    }
                    for n in range(jobs)
                ],
            },
            {
                "name": "spoke",
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


@pytest.fixture
def control() -> Iterator[tuple[Emulator, httpx.Client]]:
    emulator = Emulator()
    with httpx.Client(base_url=CONTROL, transport=EmulatorTransport(emulator)) as client:
        yield emulator, client


def graph(emulator: Emulator, tenant: str) -> httpx.Client:
    token = EmulatorCredential(emulator, tenant).get_token("https://graph.microsoft.com/.default")
    return httpx.Client(
        base_url=GRAPH,
        transport=EmulatorTransport(emulator),
        headers={"authorization": f"Bearer {token.token}"},
    )


def engine(control: httpx.Client) -> dict[str, int]:
    counters: dict[str, int] = control.get("/state").json()["engine"]
    return counters


def jobs_of(emulator: Emulator, tenant: str) -> list[tuple[str, SyncJobRecord]]:
    return [
        (sp_id, record)
        for sp_id, sync in emulator.tenant(tenant).synchronization.items()
        for record in sync.jobs.values()
    ]


def test_requests_look_at_no_job_whatever_their_number(
    control: tuple[Emulator, httpx.Client],
) -> None:
    emulator, client = control
    assert client.post("/seed", json={"scenario": hub_and_spoke(2, JOBS)}).status_code == 200
    client.post("/clock/advance", json={"seconds": 60})  # every job's first cycle runs
    assert all(r.completed_cycles == 1 for _, r in jobs_of(emulator, "hub"))
    before = engine(client)
    with graph(emulator, "hub") as hub:
        for _ in range(25):
            assert hub.get("/users").status_code == 200
        uid = next(iter(emulator.tenant("hub").users))
        # A write: under the old design it made the next request look at every job.
        assert hub.patch(f"/users/{uid}", json={"jobTitle": "Lead"}).status_code == 204
        for _ in range(25):
            assert hub.get("/organization").status_code == 200
    after = engine(client)
    assert after["jobs_visited"] == before["jobs_visited"]
    assert after["events"] == before["events"]


def test_moving_time_visits_each_due_job_once_per_event(
    control: tuple[Emulator, httpx.Client],
) -> None:
    emulator, client = control
    client.post("/seed", json={"scenario": hub_and_spoke(2, JOBS)})
    client.post("/clock/advance", json={"seconds": 60})
    before = engine(client)
    # The next cycles are due 40 minutes after the first began: each runs 2 users.
    client.post("/clock/advance", json={"seconds": 2400})
    after = engine(client)
    assert all(r.completed_cycles == 2 for _, r in jobs_of(emulator, "hub"))
    events = after["events"] - before["events"]
    # Begin, one step per user (one changed user, then nothing), finish: a handful per job.
    assert JOBS * 2 <= events <= JOBS * 4
    assert after["jobs_visited"] - before["jobs_visited"] == events


def test_starting_one_job_among_many_queues_only_that_job(
    control: tuple[Emulator, httpx.Client],
) -> None:
    emulator, client = control
    client.post("/seed", json={"scenario": hub_and_spoke(2, JOBS, state="Disabled")})
    assert engine(client)["queued_jobs"] == 0
    sp_id, record = jobs_of(emulator, "hub")[7]
    with graph(emulator, "hub") as hub:
        path = f"/servicePrincipals/{sp_id}/synchronization/jobs/{record.id}/start"
        assert hub.post(path).status_code == 204
        before = engine(client)
        assert before["queued_jobs"] == 1
        client.post("/clock/advance", json={"seconds": 60})
        for _ in range(10):
            assert hub.get("/users").status_code == 200
    after = engine(client)
    assert record.completed_cycles == 1
    assert [r.completed_cycles for _, r in jobs_of(emulator, "hub")].count(0) == JOBS - 1
    # The one job's begin, its two users and its end; nothing else was looked at.
    assert after["jobs_visited"] - before["jobs_visited"] == 4
