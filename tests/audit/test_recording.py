"""The audit trail as a GraphClient observer: one record per write, with link and step."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import pytest

from ctsync.audit import (
    Actor,
    AuditContext,
    AuditError,
    AuditStep,
    AuditTrail,
    audit_step,
    current_step,
    recorder,
)
from ctsync.errors import NotFoundError, TransportError
from ctsync.graph import BatchRequest, RetryPolicy, VirtualClock
from tests.unit.graph.fakes import TENANT, FakeGraph, Reply, error, make_client

PARTNERS = "/policies/crossTenantAccessPolicy/partners"
FABRIKAM = "33333333-3333-3333-3333-333333333333"
TAILSPIN = "44444444-4444-4444-4444-444444444444"


def _jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.signature"


def _graph() -> FakeGraph:
    # Latency makes the two links' tasks interleave on the virtual clock.
    graph = FakeGraph(VirtualClock(), latency=0.05)
    for tenant in (FABRIKAM, TAILSPIN):
        graph.on("POST", PARTNERS, Reply(201, {"tenantId": "x"}))
        graph.on("GET", f"{PARTNERS}/{tenant}", Reply(200, {"tenantId": tenant}))
        graph.on("PUT", f"{PARTNERS}/{tenant}/identitySynchronization", Reply(204))
        graph.on("PATCH", f"{PARTNERS}/{tenant}", Reply(204))
    graph.on("PATCH", "/servicePrincipals/missing", error(404, "Request_ResourceNotFound"))
    return graph


@pytest.fixture
def context() -> AuditContext:
    context = AuditContext(plan_id="plan-42", config_hash="sha256:cfg")
    token = _jwt({"tid": TENANT, "appid": "app-client-id", "oid": "sp-object-id"})
    context.add_actor(Actor.from_access_token(token))
    return context


def test_one_record_per_write_none_for_reads(db_path: Path, context: AuditContext) -> None:
    graph = _graph()

    async def configure(link: str, tenant: str) -> None:
        with audit_step(link=link):
            with audit_step(step="partner.create"):
                await client.post(PARTNERS, json={"tenantId": tenant})
            with audit_step(step="partner.read"):
                await client.get(f"{PARTNERS}/{tenant}")
            with audit_step(step="identity_sync.put"):
                await client.put(
                    f"{PARTNERS}/{tenant}/identitySynchronization",
                    json={"userSyncInbound": {"isSyncAllowed": True}},
                )

    async def main() -> None:
        client.add_observer(recorder(trail, context))
        await asyncio.gather(
            configure("contoso:fabrikam", FABRIKAM), configure("contoso:tailspin", TAILSPIN)
        )
        await client.aclose()

    with AuditTrail(db_path, now=graph.clock.wall) as trail:
        client = make_client(graph)
        asyncio.run(main())
        records = trail.records()
        assert trail.verify().ok

    writes = [s for s in graph.requests if s.method != "GET"]
    assert len(writes) == len(records) == 4
    assert len(graph.seen("GET")) == 2  # reads happened, and left no record
    # The two links ran interleaved, and each write still carries its own link and step.
    assert [r.link for r in records] != sorted(r.link or "" for r in records)
    for record in records:
        tenant = FABRIKAM if record.link == "contoso:fabrikam" else TAILSPIN
        if record.method == "POST":
            assert (record.step, record.path) == ("partner.create", PARTNERS)
            assert record.body == {"tenantId": tenant}
            assert record.status == 201
        else:
            assert record.step == "identity_sync.put"
            assert record.path == f"{PARTNERS}/{tenant}/identitySynchronization"
            assert record.status == 204
        assert record.actor_tenant == TENANT
        assert record.actor_client_id == "app-client-id"
        assert record.actor_object_id == "sp-object-id"
        assert (record.plan_id, record.config_hash) == ("plan-42", "sha256:cfg")
    # request-id and client-request-id are the ones the server saw and answered with.
    assert {(r.request_id, r.client_request_id) for r in records} == {
        (s.request_id, s.headers["client-request-id"]) for s in writes
    }
    assert records[0].time == "2026-01-05T09:00:00.050000Z"  # the client's clock, after latency


def test_failed_and_unanswered_writes_are_recorded(db_path: Path, context: AuditContext) -> None:
    graph = _graph()
    graph.fail("PATCH", "/servicePrincipals/lost", httpx.ConnectError("refused"))

    async def main() -> None:
        async with make_client(graph, retry=RetryPolicy(max_attempts=1)) as client:
            client.add_observer(recorder(trail, context))
            with audit_step(link="contoso:fabrikam", step="sp.update"):
                with pytest.raises(NotFoundError):
                    await client.patch("/servicePrincipals/missing", json={"x": 1})
                with pytest.raises(TransportError):
                    await client.patch("/servicePrincipals/lost", json={"x": 2})

    with AuditTrail(db_path) as trail:
        asyncio.run(main())
        failed, lost = trail.records()
    assert (failed.status, failed.error_code) == (404, "Request_ResourceNotFound")
    assert failed.request_id == graph.requests[0].request_id
    assert (lost.status, lost.error_code, lost.request_id) == (None, "NotSent", None)
    assert failed.step == lost.step == "sp.update"


def test_batch_items_are_recorded_under_the_callers_step(
    db_path: Path, context: AuditContext
) -> None:
    graph = _graph()

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_observer(recorder(trail, context))
            with audit_step(link="contoso:fabrikam", step="partner.update"):
                await client.batch(
                    [
                        BatchRequest(id="g", method="GET", url=f"{PARTNERS}/{FABRIKAM}"),
                        BatchRequest(
                            id="p",
                            method="PATCH",
                            url=f"{PARTNERS}/{FABRIKAM}",
                            body={"automaticUserConsentSettings": {"inboundAllowed": True}},
                        ),
                    ]
                )

    with AuditTrail(db_path) as trail:
        asyncio.run(main())
        [record] = trail.records()
    assert (record.method, record.path, record.status) == ("PATCH", f"{PARTNERS}/{FABRIKAM}", 204)
    assert (record.link, record.step) == ("contoso:fabrikam", "partner.update")


def test_a_write_in_a_tenant_without_an_actor_is_still_recorded(db_path: Path) -> None:
    graph = _graph()

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_observer(recorder(trail, AuditContext()))
            await client.post(PARTNERS, json={"tenantId": FABRIKAM})

    with AuditTrail(db_path) as trail:
        asyncio.run(main())
        [record] = trail.records()
    assert (record.actor_tenant, record.actor_client_id, record.actor_object_id) == (
        TENANT,
        None,
        None,
    )
    assert (record.link, record.step, record.plan_id) == (None, None, None)


def test_a_write_that_cannot_be_recorded_fails_loudly(db_path: Path) -> None:
    graph = _graph()
    trail = AuditTrail(db_path)
    trail.close()

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_observer(recorder(trail, AuditContext()))
            await client.post(PARTNERS, json={"tenantId": FABRIKAM})

    with pytest.raises(AuditError, match="could not record POST"):
        asyncio.run(main())


def test_audit_step_nests_inherits_and_restores() -> None:
    assert current_step() == AuditStep()
    with audit_step(link="a:b") as outer:
        assert outer == AuditStep("a:b", None)
        with audit_step(step="job.create"):
            assert current_step() == AuditStep("a:b", "job.create")
            with audit_step(link=None):
                assert current_step() == AuditStep(None, "job.create")
        assert current_step() == outer
    assert current_step() == AuditStep()


def test_audit_step_is_per_task() -> None:
    seen: dict[str, AuditStep] = {}

    async def task(link: str, started: asyncio.Event, other: asyncio.Event) -> None:
        with audit_step(link=link, step="s"):
            started.set()
            await other.wait()  # the other task has set its own step meanwhile
            seen[link] = current_step()

    async def main() -> None:
        a, b = asyncio.Event(), asyncio.Event()
        await asyncio.gather(task("x:y", a, b), task("y:z", b, a))

    asyncio.run(main())
    assert seen == {"x:y": AuditStep("x:y", "s"), "y:z": AuditStep("y:z", "s")}


def test_actor_from_access_token() -> None:
    v2 = _jwt({"tid": "t", "azp": "client", "oid": "o"})
    assert Actor.from_access_token(v2) == Actor("t", "client", "o")
    assert Actor.from_access_token(_jwt({"tid": "t"})) == Actor("t")
    secret_token = "not-a-jwt-but-secret"
    for bad in (secret_token, "a.!!!.c", _jwt({"appid": "x"})):
        with pytest.raises(ValueError) as caught:
            Actor.from_access_token(bad)
        assert secret_token not in str(caught.value)


def test_writes_in_flight_together_are_stored_in_groups_off_the_event_loop(
    db_path: Path, context: AuditContext
) -> None:
    """Each intent is stored before its write is sent, each outcome before the caller hears of
    it — and writes in flight at once share a transaction (one sync to disk), made in a thread
    while the event loop goes on."""
    import threading

    from ctsync.audit import intent_recorder

    graph = FakeGraph(VirtualClock(), latency=0.05)
    graph.on("POST", PARTNERS, Reply(201, {"tenantId": "x"}))
    commits: list[tuple[int, int]] = []

    class Counting(AuditTrail):
        def _commit(self, group: list[dict[str, object]]) -> None:
            commits.append((len(group), threading.get_ident()))
            super()._commit(group)

    async def main() -> None:
        client.add_intent_observer(intent_recorder(trail, context))
        client.add_observer(recorder(trail, context))
        await asyncio.gather(
            *(client.post(PARTNERS, json={"tenantId": f"t{i}"}) for i in range(16))
        )
        await client.aclose()

    with Counting(db_path, now=graph.clock.wall) as trail:
        client = make_client(graph)
        asyncio.run(main())
        records = trail.records()
        assert trail.verify().ok
    assert len(records) == 32
    assert sum(size for size, _ in commits) == 32
    assert len(commits) <= 4, commits  # 16 intents together, then 16 outcomes together
    assert threading.get_ident() not in {thread for _, thread in commits}
    sent = {s.headers["client-request-id"]: i for i, s in enumerate(graph.requests)}
    intents = {r.intent_id: r.seq for r in records if r.phase == "intent"}
    for outcome in (r for r in records if r.phase == "outcome"):
        assert intents[outcome.intent_id] < outcome.seq
        assert outcome.client_request_id in sent
