from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest

from ctsync.errors import CtsyncError, GraphError, NotFoundError, TransportError
from ctsync.graph import (
    BatchRequest,
    BatchResult,
    Pacer,
    Quota,
    Quotas,
    VirtualClock,
    WriteRecord,
    plan_batches,
    raise_for_item,
)
from ctsync.graph.client import WriteIntent
from tests.unit.graph.fakes import FakeGraph, Reply, error, make_client, throttled
from tests.unit.graph.test_pacing import TickingClock
from tests.watchdog import watchdog


def _gets(n: int, prefix: str = "r") -> list[BatchRequest]:
    return [BatchRequest(id=f"{prefix}{i}", method="GET", url=f"/users/u{i}") for i in range(n)]


# -- planning ---------------------------------------------------------------------------------


def test_plan_splits_at_twenty() -> None:
    assert [len(b) for b in plan_batches(_gets(45))] == [20, 20, 5]


def test_plan_keeps_depends_on_chains_together() -> None:
    chain = [
        BatchRequest(id="c0", method="POST", url="/x", body={}),
        BatchRequest(id="c1", method="PUT", url="/y", body={}, depends_on=["c0"]),
        BatchRequest(id="c2", method="PATCH", url="/z", body={}, depends_on=["c1"]),
    ]
    batches = plan_batches([*_gets(19), *chain])
    assert [len(b) for b in batches] == [19, 3]
    assert [r.id for r in batches[1]] == ["c0", "c1", "c2"]
    # a chain placed before the filler fills the first batch and pushes the rest on
    batches = plan_batches([*chain, *_gets(19)])
    homes = {r.id: n for n, batch in enumerate(batches) for r in batch}
    assert homes["c0"] == homes["c1"] == homes["c2"]
    assert all(len(b) <= 20 for b in batches)


@pytest.mark.parametrize(
    ("requests", "problem"),
    [
        (
            [BatchRequest(id="0", method="GET", url="/a")]
            + [
                BatchRequest(id=str(i), method="GET", url="/a", depends_on=[str(i - 1)])
                for i in range(1, 21)
            ],
            "cannot fit one batch",
        ),
        (
            [
                BatchRequest(id="a", method="GET", url="/a"),
                BatchRequest(id="A", method="GET", url="/b"),
            ],
            "used twice",
        ),
        ([BatchRequest(id="a", method="GET", url="/a", depends_on=["zz"])], "unknown request"),
        (
            [
                BatchRequest(id="a", method="GET", url="/a", depends_on=["b"]),
                BatchRequest(id="b", method="GET", url="/b", depends_on=["a"]),
            ],
            "depend on each other",
        ),
    ],
)
def test_plan_rejects_impossible_batches(requests: list[BatchRequest], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        plan_batches(requests)


# -- sending ----------------------------------------------------------------------------------


def test_batch_sends_at_most_twenty_per_post_and_returns_every_result() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("GET", "/users/u7", error(404, "Request_ResourceNotFound", "no such user"))
    for i in range(45):
        if i != 7:
            graph.on("GET", f"/users/u{i}", Reply(200, {"id": f"u{i}"}))

    async def main() -> dict[str, tuple[int, Any]]:
        async with make_client(graph) as client:
            results = await client.batch(_gets(45))
        return {k: (r.status, r.body) for k, r in results.items()}

    results = asyncio.run(main())
    outer = graph.seen("POST", "/$batch")
    assert sorted(len(s.body["requests"]) for s in outer) == [5, 20, 20]
    assert list(results) == [f"r{i}" for i in range(45)]
    assert results["r3"] == (200, {"id": "u3"})
    assert results["r7"][0] == 404


def test_items_with_a_body_get_a_content_type() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("PATCH", "/policies/crossTenantAccessPolicy/partners/t", Reply(204))
    graph.on("GET", "/organization", Reply(200, {}))

    async def main() -> None:
        async with make_client(graph) as client:
            await client.batch(
                [
                    BatchRequest(
                        id="1",
                        method="PATCH",
                        url="/policies/crossTenantAccessPolicy/partners/t",
                        body={"inboundTrust": None},
                    ),
                    BatchRequest(id="2", method="GET", url="/organization"),
                ]
            )

    asyncio.run(main())
    [outer] = graph.requests
    items = {i["id"]: i for i in outer.body["requests"]}
    assert items["1"]["headers"] == {"Content-Type": "application/json"}
    assert items["1"]["body"] == {"inboundTrust": None}
    assert "headers" not in items["2"]
    assert outer.headers["content-type"] == "application/json"


def test_throttled_item_is_resent_alone_after_its_own_retry_after() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/users/u0", Reply(200, {}))
    graph.on("GET", "/users/u1", throttled("6"), Reply(200, {"id": "u1"}))
    graph.on("GET", "/users/u2", Reply(200, {}))

    async def main() -> dict[str, tuple[int, int]]:
        async with make_client(graph) as client:
            results = await client.batch(_gets(3))
            assert client.stats.throttled == 1
        return {k: (r.status, r.attempts) for k, r in results.items()}

    assert asyncio.run(main()) == {"r0": (200, 1), "r1": (200, 2), "r2": (200, 1)}
    first, second = graph.seen("POST", "/$batch")
    assert second.at - first.at == pytest.approx(6.0)
    assert [i["id"] for i in second.body["requests"]] == ["r1"]


def test_a_dependant_that_failed_424_is_resent_with_its_throttled_dependency() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("POST", "/policies/crossTenantAccessPolicy/partners", throttled("2"), Reply(201, {}))
    graph.on(
        "PUT", "/policies/crossTenantAccessPolicy/partners/s/identitySynchronization", Reply(204)
    )
    requests = [
        BatchRequest(
            id="partner",
            method="POST",
            url="/policies/crossTenantAccessPolicy/partners",
            body={"tenantId": "s"},
        ),
        BatchRequest(
            id="sync",
            method="PUT",
            url="/policies/crossTenantAccessPolicy/partners/s/identitySynchronization",
            body={"userSyncInbound": {"isSyncAllowed": True}},
            depends_on=["partner"],
        ),
    ]

    async def main() -> dict[str, int]:
        async with make_client(graph) as client:
            results = await client.batch(requests)
        return {k: r.status for k, r in results.items()}

    assert asyncio.run(main()) == {"partner": 201, "sync": 204}
    first, second = graph.seen("POST", "/$batch")
    assert second.at - first.at == pytest.approx(2.0)
    assert [(i["id"], i.get("dependsOn")) for i in second.body["requests"]] == [
        ("partner", None),
        ("sync", ["partner"]),
    ]


def test_failed_dependency_surfaces_as_424_and_raise_for_item_raises() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("GET", "/servicePrincipals/sp", error(404, "Request_ResourceNotFound", "gone"))
    requests = [
        BatchRequest(id="sp", method="GET", url="/servicePrincipals/sp"),
        BatchRequest(
            id="job",
            method="POST",
            url="/servicePrincipals/sp/synchronization/jobs",
            body={"templateId": "Azure2Azure"},
            depends_on=["sp"],
        ),
    ]

    async def main() -> dict[str, BatchResult]:
        async with make_client(graph) as client:
            return await client.batch(requests)

    results = asyncio.run(main())
    sp, job = results["sp"], results["job"]
    assert (sp.status, job.status) == (404, 424)
    assert len(graph.seen("POST", "/$batch")) == 1
    with pytest.raises(NotFoundError) as info:
        raise_for_item(sp)
    assert info.value.code == "Request_ResourceNotFound"
    assert info.value.path == "/servicePrincipals/sp"
    with pytest.raises(GraphError) as dep:
        raise_for_item(job)
    assert dep.value.status == 424
    assert dep.value.method == "POST"


def test_item_5xx_is_retried_for_get_but_not_for_post() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("GET", "/organization", throttled("1", status=503), Reply(200, {}))
    graph.on(
        "POST", "/applicationTemplates/t/instantiate", throttled("1", status=503), Reply(201, {})
    )

    async def main() -> dict[str, int]:
        async with make_client(graph) as client:
            results = await client.batch(
                [
                    BatchRequest(id="get", method="GET", url="/organization"),
                    BatchRequest(
                        id="post", method="POST", url="/applicationTemplates/t/instantiate", body={}
                    ),
                ]
            )
        return {k: r.status for k, r in results.items()}

    assert asyncio.run(main()) == {"get": 200, "post": 503}


def test_pacing_is_charged_per_sub_request() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("POST", "/policies/crossTenantAccessPolicy/partners", Reply(201, {}))
    pacer = Pacer(clock=clock, headroom=1.0, quotas=Quotas(tenant_writes=Quota(5, 5.0)))
    requests = [
        BatchRequest(
            id=str(i), method="POST", url="/policies/crossTenantAccessPolicy/partners", body={}
        )
        for i in range(10)
    ]

    async def main() -> None:
        async with make_client(graph, pacer=pacer) as client:
            await client.batch(requests)

    asyncio.run(main())
    [outer] = graph.requests
    assert outer.at == pytest.approx(5.0)  # 5 writes at once, then one per second


def test_write_items_reach_observers_redacted() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("PUT", "/servicePrincipals/sp/synchronization/secrets", Reply(204))
    graph.on("GET", "/servicePrincipals/sp", Reply(200, {}))
    records: list[WriteRecord] = []

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_observer(records.append)
            await client.batch(
                [
                    BatchRequest(
                        id="s",
                        method="PUT",
                        url="/servicePrincipals/sp/synchronization/secrets",
                        body={"value": [{"key": "SecretToken", "value": "hunter2"}]},
                    ),
                    BatchRequest(id="g", method="GET", url="/servicePrincipals/sp"),
                ]
            )

    asyncio.run(main())
    [record] = records
    assert record.method == "PUT"
    assert record.status == 204
    assert record.body == {"value": [{"key": "SecretToken", "value": "***"}]}
    assert record.request_id == graph.requests[0].request_id
    assert record.client_request_id == graph.requests[0].headers["client-request-id"]


def test_a_batch_after_a_429_is_sent_once_the_gate_opens_and_never_spins() -> None:
    # A GET throttled the tenant; a batch of reads queued behind the gate must go once
    # Retry-After ends (it may probe: its items travel together), on a clock that moves
    # between readings as a real one does.
    clock = TickingClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/organization", throttled("2"), Reply(200, {}))
    graph.on("GET", "/users/u0", Reply(200, {"id": "u0"}))
    graph.on("GET", "/users/u1", Reply(200, {"id": "u1"}))

    async def main() -> dict[str, int]:
        async with make_client(graph) as client:
            first = asyncio.create_task(client.get("/organization"))
            await clock.sleep(0.5)
            results = await client.batch(_gets(2))
            await first
        return {k: r.status for k, r in results.items()}

    with watchdog(5, "a batch behind a 429 gate"):
        assert asyncio.run(main()) == {"r0": 200, "r1": 200}
    batch = graph.seen("POST", "/$batch")
    assert len(batch) == 1
    assert batch[0].at >= 2.0


def test_a_throttled_batch_item_is_sent_again_and_never_spins() -> None:
    # Only the batch's own item was throttled: nobody else may probe the gate it closed, so
    # the retried item must be the probe itself (it once spun here, the loop blocked).
    clock = TickingClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/users/u0", throttled("2"), Reply(200, {"id": "u0"}))
    graph.on("GET", "/users/u1", Reply(200, {"id": "u1"}))

    async def main() -> dict[str, int]:
        async with make_client(graph) as client:
            results = await client.batch(_gets(2))
        return {k: r.status for k, r in results.items()}

    with watchdog(5, "a batch item behind its own 429"):
        assert asyncio.run(main()) == {"r0": 200, "r1": 200}
    assert [s.at >= 2.0 for s in graph.seen("POST", "/$batch")] == [False, True]


def test_a_batch_of_reads_is_sent_again_after_a_dropped_connection() -> None:
    graph = FakeGraph(VirtualClock())
    graph.fail("POST", "/$batch", httpx.RemoteProtocolError("peer closed connection"))
    graph.on("GET", "/users/u0", Reply(200, {"id": "u0"}))

    async def main() -> int:
        async with make_client(graph) as client:
            results = await client.batch(_gets(1))
        return results["r0"].status

    assert asyncio.run(main()) == 200
    assert len(graph.seen("POST", "/$batch")) == 2


def test_a_batch_with_a_write_is_not_sent_again_after_a_dropped_connection() -> None:
    graph = FakeGraph(VirtualClock())
    graph.fail("POST", "/$batch", httpx.RemoteProtocolError("peer closed connection"))
    graph.on("PATCH", "/servicePrincipals/sp", Reply(204))
    records: list[WriteRecord] = []
    intents: list[WriteIntent] = []

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_observer(records.append)
            client.add_intent_observer(intents.append)
            await client.batch(
                [BatchRequest(id="w", method="PATCH", url="/servicePrincipals/sp", body={})]
            )

    with pytest.raises(TransportError):
        asyncio.run(main())
    assert len(graph.seen("POST", "/$batch")) == 1
    # The write may have happened: announced, then recorded with an unknown outcome.
    [intent] = intents
    [record] = records
    assert (record.status, record.error_code) == (None, "TransportError")
    assert record.intent_id == intent.intent_id


def test_every_write_is_announced_before_it_is_sent_and_its_outcome_names_the_intent() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("PATCH", "/servicePrincipals/sp", Reply(204))
    events: list[tuple[str, str | None, int]] = []

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_intent_observer(
                lambda i: events.append(("intent", i.intent_id, len(graph.requests)))
            )
            client.add_observer(
                lambda r: events.append(("outcome", r.intent_id, len(graph.requests)))
            )
            await client.patch("/servicePrincipals/sp", json={"tags": []})
            await client.get("/servicePrincipals/sp2")  # reads are not announced

    with contextlib.suppress(GraphError):
        asyncio.run(main())
    (kind1, id1, sent_before), (kind2, id2, sent_after) = events
    assert (kind1, kind2) == ("intent", "outcome")
    assert id1 == id2
    assert id1 is not None
    assert (sent_before, sent_after) == (0, 1)


def test_a_write_interrupted_in_flight_is_recorded_as_interrupted() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock, latency=5.0)
    graph.on("PATCH", "/servicePrincipals/sp", Reply(204))
    records: list[WriteRecord] = []

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_observer(records.append)
            task = asyncio.create_task(client.patch("/servicePrincipals/sp", json={}))
            await clock.sleep(1.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
    [record] = records
    assert (record.status, record.error_code) == (None, "Interrupted")


def test_an_intent_that_cannot_be_recorded_stops_the_write() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("PATCH", "/servicePrincipals/sp", Reply(204))

    def refuse(intent: WriteIntent) -> None:
        msg = "audit trail is read-only"
        raise CtsyncError(msg)

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_intent_observer(refuse)
            await client.patch("/servicePrincipals/sp", json={})

    with pytest.raises(CtsyncError, match="read-only"):
        asyncio.run(main())
    assert graph.requests == []
