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


def one_job(users: int, **secrets: Any) -> dict[str, Any]:
    scenario = hub_and_spoke(users, 1)
    scenario["tenants"][0]["cts_configurations"][0]["secrets"].update(secrets)
    return scenario


def test_an_initial_cycle_plans_each_user_once(control: tuple[Emulator, httpx.Client]) -> None:
    emulator, client = control
    client.post("/seed", json={"scenario": one_job(30)})
    before = engine(client)
    client.post("/clock/advance", json={"seconds": 600})
    after = engine(client)
    [(_, record)] = jobs_of(emulator, "hub")
    assert record.completed_cycles == 1
    assert record.last_cycle is not None
    assert record.last_cycle["created"] == 30
    assert after["users_planned"] - before["users_planned"] == 30


def test_the_deletion_threshold_reuses_the_plan_of_each_user(
    control: tuple[Emulator, httpx.Client],
) -> None:
    emulator, client = control
    threshold = {"DeleteThresholdEnabled": True, "DeleteThresholdValue": 2}
    client.post("/seed", json={"scenario": one_job(6, SyncNotificationSettings=threshold)})
    client.post("/clock/advance", json={"seconds": 60})
    [(_, record)] = jobs_of(emulator, "hub")
    assert record.last_cycle is not None
    assert record.last_cycle["created"] == 6
    with graph(emulator, "hub") as hub:
        for uid in emulator.tenant("hub").users:
            assert hub.patch(f"/users/{uid}", json={"accountEnabled": False}).status_code == 204
    before = engine(client)
    # The next cycle would disable all six: more than the threshold, so all are staged. The
    # count comes from the plans the cycle made when it began; each user's turn reuses its own.
    client.post("/clock/advance", json={"seconds": 2400})
    after = engine(client)
    assert record.completed_cycles == 2
    summary = record.last_cycle
    assert summary is not None
    assert (summary["staged_deletes"], summary["disabled"]) == (6, 0)
    assert summary["quarantine_reason"] == "TooManyDeletes"
    assert after["users_planned"] - before["users_planned"] == 6
    spoke = emulator.tenant("spoke")
    assert all(u["accountEnabled"] is True for u in spoke.users.values() if u.get("creationType"))


def test_mappings_are_compiled_once_per_schema(control: tuple[Emulator, httpx.Client]) -> None:
    emulator, client = control
    client.post("/seed", json={"scenario": one_job(5)})
    for _ in range(3):
        # Moving time from Python may follow direct edits: the contexts are built afresh.
        emulator.clock.advance(2400)
    [(sp_id, record)] = jobs_of(emulator, "hub")
    assert record.completed_cycles == 3
    assert engine(client)["contexts_built"] == 3
    assert engine(client)["mappings_compiled"] == 1
    with graph(emulator, "hub") as hub:
        path = f"/servicePrincipals/{sp_id}/synchronization/jobs/{record.id}/schema"
        schema = hub.get(path).json()
        schema.pop("@odata.context", None)
        [rule] = schema["synchronizationRules"]
        user = next(m for m in rule["objectMappings"] if m["sourceObjectName"].lower() == "user")
        user["attributeMappings"].append(
            {
                "targetAttributeName": "jobTitle",
                "source": {"type": "Constant", "name": "Synced", "parameters": []},
                "flowType": "Always",
                "defaultValue": None,
                "exportMissingReferences": False,
                "flowBehavior": "FlowWhenChanged",
                "matchingPriority": 0,
            }
        )
        assert hub.put(path, json=schema).status_code == 204
    client.post("/clock/advance", json={"seconds": 2400})
    assert engine(client)["mappings_compiled"] == 2
    synced = [u for u in emulator.tenant("spoke").users.values() if u.get("creationType")]
    assert len(synced) == 5
    assert {u["jobTitle"] for u in synced} == {"Synced"}


def quota_errors(emulator: Emulator) -> list[str]:
    return [
        r["provisioningStatusInfo"]["errorInformation"]["errorCode"]
        for r in emulator.tenant("hub").provisioning_log.entries
        if r["provisioningStatusInfo"]["status"] == "failure"
    ]


def test_a_scenario_sets_a_tenants_object_quota(control: tuple[Emulator, httpx.Client]) -> None:
    emulator, client = control
    scenario = one_job(5)
    scenario["tenants"][1]["object_quota"] = 3
    client.post("/seed", json={"scenario": scenario})
    assert emulator.tenant("hub").object_quota == 50_000  # the default stays
    assert client.get("/provisioning").json()["object_quotas"] == {"hub": 50_000, "spoke": 3}
    client.post("/clock/advance", json={"seconds": 600})
    [(_, record)] = jobs_of(emulator, "hub")
    summary = record.last_cycle
    assert summary is not None
    assert (summary["created"], summary["failed"], summary["escrowed"]) == (3, 2, 2)
    assert quota_errors(emulator) == ["AzureActiveDirectoryQuotaLimitExceeded"] * 2


def test_the_control_api_changes_object_quotas(control: tuple[Emulator, httpx.Client]) -> None:
    emulator, client = control
    client.post("/seed", json={"scenario": one_job(5)})
    answer = client.post("/provisioning", json={"object_quotas": {"spoke": 2}})
    assert answer.status_code == 200
    assert answer.json()["object_quotas"]["spoke"] == 2
    client.post("/clock/advance", json={"seconds": 600})
    [(_, record)] = jobs_of(emulator, "hub")
    assert record.last_cycle is not None
    assert (record.last_cycle["created"], record.last_cycle["failed"]) == (2, 3)
    # Raised again (by tenant id this time): the escrowed users are created on the next cycle.
    spoke_id = emulator.tenant("spoke").id
    assert client.post("/provisioning", json={"object_quotas": {spoke_id: 100}}).status_code == 200
    client.post("/clock/advance", json={"seconds": 2400})
    assert record.last_cycle is not None
    assert (record.last_cycle["created"], record.last_cycle["escrowed"]) == (3, 0)
    assert emulator.tenant("spoke").object_quota == 100


@pytest.mark.parametrize(
    "quotas",
    [{"spoke": -1}, {"spoke": True}, {"spoke": "9"}, {"nowhere": 5}, ["spoke"], 7],
)
def test_bad_object_quotas_change_nothing(
    control: tuple[Emulator, httpx.Client], quotas: Any
) -> None:
    emulator, client = control
    client.post("/seed", json={"scenario": one_job(1)})
    body = {"object_quotas": {"hub": 9, **quotas} if isinstance(quotas, dict) else quotas}
    answer = client.post("/provisioning", json=body)
    assert answer.status_code == 400
    assert "object_quotas" in answer.json()["error"]["message"]
    assert emulator.tenant("hub").object_quota == 50_000


@pytest.mark.parametrize("quota", [-1, 2.5, "100", None, True])
def test_a_bad_scenario_object_quota_is_refused(
    control: tuple[Emulator, httpx.Client], quota: Any
) -> None:
    _, client = control
    scenario = one_job(1)
    scenario["tenants"][1]["object_quota"] = quota
    answer = client.post("/seed", json={"scenario": scenario})
    assert answer.status_code == 400
    assert "tenants[1].object_quota must be an integer >= 0" in answer.json()["error"]["message"]


def test_a_quiet_incremental_cycle_compares_no_user_again(
    control: tuple[Emulator, httpx.Client],
) -> None:
    emulator, client = control
    client.post("/seed", json={"scenario": one_job(20)})
    client.post("/clock/advance", json={"seconds": 600})
    [(_, record)] = jobs_of(emulator, "hub")
    assert record.completed_cycles == 1
    before = engine(client)
    # Two incremental cycles with nothing written into the hub since the first compared all.
    client.post("/clock/advance", json={"seconds": 2 * 2400})
    quiet = engine(client)
    assert record.completed_cycles == 3
    assert quiet["users_fingerprinted"] == before["users_fingerprinted"]
    assert record.last_cycle is not None
    assert record.last_cycle["evaluated"] == 0
    # A write into the hub: the next cycle compares every user and finds the one changed.
    uid = next(iter(emulator.tenant("hub").users))
    with graph(emulator, "hub") as hub:
        assert hub.patch(f"/users/{uid}", json={"jobTitle": "Lead"}).status_code == 204
    client.post("/clock/advance", json={"seconds": 2400})
    after = engine(client)
    assert record.completed_cycles == 4
    assert record.last_cycle is not None
    assert (record.last_cycle["evaluated"], record.last_cycle["updated"]) == (1, 1)
    # 20 compared when the cycle began, then the updated user's new fingerprint.
    assert after["users_fingerprinted"] - quiet["users_fingerprinted"] == 21


def test_a_direct_edit_counts_when_time_moves_from_python(
    control: tuple[Emulator, httpx.Client],
) -> None:
    emulator, client = control
    client.post("/seed", json={"scenario": one_job(4)})
    emulator.clock.advance(600)
    [(_, record)] = jobs_of(emulator, "hub")
    user = next(iter(emulator.tenant("hub").users.values()))
    user["jobTitle"] = "Edited in place"
    emulator.clock.advance(2400)
    assert record.last_cycle is not None
    assert (record.last_cycle["evaluated"], record.last_cycle["updated"]) == (1, 1)
    synced = [u for u in emulator.tenant("spoke").users.values() if u.get("creationType")]
    assert "Edited in place" in {u.get("jobTitle") for u in synced}


def test_users_another_job_provisions_into_a_source_are_compared(
    control: tuple[Emulator, httpx.Client],
) -> None:
    """Both ways: the users hub's job creates in spoke are source users of spoke's job; its
    next cycle evaluates them (and skips them: they are external)."""
    emulator, client = control
    scenario = one_job(3)
    hub_spec, spoke_spec = scenario["tenants"]
    hub_spec["cts_configurations"][0]["job"]["state"] = "Disabled"
    hub_spec["partners"][0]["automaticUserConsentSettings"]["inboundAllowed"] = True
    hub_spec["partners"][0]["identitySynchronization"] = {
        "displayName": "Spoke",
        "userSyncInbound": {"isSyncAllowed": True},
    }
    spoke_spec["partners"][0]["automaticUserConsentSettings"]["outboundAllowed"] = True
    spoke_spec["users"] = [{"alias": "s", "displayName": "Spoke member"}]
    spoke_spec["cts_configurations"] = [
        {
            "display_name": "Back to hub",
            "target": "hub",
            "job": {"state": "Active"},
            "secrets": {"SyncAll": True},
        }
    ]
    client.post("/seed", json={"scenario": scenario})
    client.post("/clock/advance", json={"seconds": 600})
    [(_, back)] = jobs_of(emulator, "spoke")
    assert back.last_cycle is not None
    assert back.last_cycle["created"] == 1
    [(sp_id, out)] = jobs_of(emulator, "hub")
    with graph(emulator, "hub") as hub:
        path = f"/servicePrincipals/{sp_id}/synchronization/jobs/{out.id}/start"
        assert hub.post(path).status_code == 204
    client.post("/clock/advance", json={"seconds": 600})  # hub's job creates 3 in spoke
    assert out.last_cycle is not None
    assert out.last_cycle["created"] == 3
    client.post("/clock/advance", json={"seconds": 2400})
    assert back.last_cycle is not None
    assert (back.last_cycle["evaluated"], back.last_cycle["skipped"]) == (3, 3)


def test_beginning_a_cycle_does_none_of_its_users_work(
    control: tuple[Emulator, httpx.Client],
) -> None:
    """The accidental-deletion threshold is on (as ctsync sets it) and the target is new: when
    the cycle begins it only lists its users; each is evaluated at its own time."""
    emulator, client = control
    threshold = {"DeleteThresholdEnabled": True, "DeleteThresholdValue": 500}
    client.post("/seed", json={"scenario": one_job(30, SyncNotificationSettings=threshold)})
    before = engine(client)
    # Just past the due time: the cycle begins and its first user's turn has come.
    client.post("/clock/advance", json={"seconds": 0.001})
    begun = engine(client)
    [(_, record)] = jobs_of(emulator, "hub")
    assert record.running_cycle is not None
    assert len(record.running_cycle.queue) == 30
    assert begun["users_planned"] - before["users_planned"] == 1
    with graph(emulator, "hub") as hub:
        for _ in range(5):
            assert hub.get("/organization").status_code == 200
    assert engine(client)["users_planned"] == begun["users_planned"]
    client.post("/clock/advance", json={"seconds": 600})
    assert record.completed_cycles == 1
    assert engine(client)["users_planned"] - before["users_planned"] == 30
