"""Retries, pacing, paging and $batch of the real client against the emulator's platform."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from ctsync.emulator import FaultProfile
from ctsync.errors import ServerError
from ctsync.graph import BatchRequest, Pacer, Quota, Quotas, RetryPolicy
from tests.integration.conftest import World, make_world

PARTNERS = "/policies/crossTenantAccessPolicy/partners"


def _guids(n: int, seed: int = 1) -> list[str]:
    return [str(uuid.UUID(int=seed << 64 | i, version=4)) for i in range(n)]


def test_a_429_storm_completes_with_zero_early_retries() -> None:
    """30 % of calls answer 429 with Retry-After 1–10 s; 200 calls all land, none early."""
    world = make_world(faults=FaultProfile(rate_429=0.3, retry_after=(1, 10)), seed=3)
    partners = _guids(100)

    async def workload() -> None:
        graph = world.client("contoso", retry=RetryPolicy(max_attempts=30, seed=1))
        gate = asyncio.Semaphore(8)

        async def create(tenant_id: str) -> None:
            async with gate:
                await graph.post(PARTNERS, json={"tenantId": tenant_id})

        async def read() -> None:
            async with gate:
                await graph.get("/policies/crossTenantAccessPolicy/default")

        await asyncio.gather(*(create(t) for t in partners), *(read() for _ in range(100)))
        stats = graph.stats
        assert stats.requests == 200
        assert stats.by_status[429] == stats.throttled > 20
        assert stats.attempts == 200 + stats.throttled

    world.run(workload)
    traffic = world.emulator.traffic.stats()
    assert traffic["early_retries"] == 0
    assert traffic["requests_while_blocked"] == 0
    assert world.emulator.stats["requests"] == world.emulator.stats["status_201"] + (
        world.emulator.stats["status_200"] + world.emulator.stats["status_429"]
    )
    # Every create landed exactly once: a POST is re-sent only when Graph said 429.
    stored = world.emulator.tenant("contoso").access_policy.partners
    assert sorted(stored) == sorted(partners)


def test_5xx_on_reads_are_retried_and_posts_are_not() -> None:
    world = make_world(faults=FaultProfile(rate_503=1.0, retry_after=(1, 1)))

    async def workload() -> None:
        graph = world.client("contoso", retry=RetryPolicy(max_attempts=3, seed=1))
        with pytest.raises(ServerError):
            await graph.post(PARTNERS, json={"tenantId": _guids(1)[0]})
        assert graph.stats.attempts == 1
        with pytest.raises(ServerError, match="after 3 attempts"):
            await graph.get(PARTNERS)
        assert graph.stats.attempts == 4

    world.run(workload)


def _small_quotas(world: World, reads_per_10s: int) -> None:
    world.emulator.traffic.limits = dataclasses.replace(
        world.emulator.traffic.limits, ru_small=reads_per_10s
    )


def test_quota_429s_are_waited_out_without_an_early_call() -> None:
    """Without client pacing, Graph's bucket answers 429s; the client waits each one out."""
    world = make_world()
    _small_quotas(world, 20)

    async def workload() -> None:
        unpaced = Pacer(clock=world.clock, enabled=False)
        graph = world.client("contoso", pacer=unpaced, retry=RetryPolicy(max_attempts=60))
        await asyncio.gather(*(graph.get(PARTNERS) for _ in range(60)))
        assert graph.stats.throttled > 0

    world.run(workload)
    traffic = world.emulator.traffic.stats()
    assert traffic["throttled_429"].get("ResourceUnitLimitExceeded", 0) > 0
    assert traffic["early_retries"] == 0


def test_client_pacing_stays_under_the_quota() -> None:
    """With the pacer matched to Graph's bucket, the same fan-out draws no 429 at all."""
    world = make_world()
    _small_quotas(world, 20)

    async def workload() -> None:
        quotas = Quotas(
            tenant_ru={"S": Quota(20, 10.0), "M": Quota(20, 10.0), "L": Quota(20, 10.0)}
        )
        paced = Pacer(clock=world.clock, quotas=quotas)
        graph = world.client("contoso", pacer=paced)
        await asyncio.gather(*(graph.get(PARTNERS) for _ in range(60)))
        assert graph.stats.throttled == 0
        assert graph.stats.attempts == 60

    world.run(workload)
    assert world.emulator.traffic.stats()["throttled_429_total"] == 0
    # 60 reads at 20 per 10 s (95 % headroom) need about 20 s beyond the first burst.
    assert world.clock.monotonic() >= 15


def test_batch_creates_and_paging_reads_them_all(world: World) -> None:
    partners = _guids(45)

    async def workload() -> None:
        graph = world.client("fabrikam")
        requests = [
            BatchRequest(id=str(i), method="POST", url=PARTNERS, body={"tenantId": t})
            for i, t in enumerate(partners)
        ]
        results = await graph.batch(requests)
        assert sorted(r.status for r in results.values()) == [201] * 45
        # 45 items travel in three POST /$batch calls of at most 20.
        assert graph.stats.batch_items == 45

        pages = [page async for page in graph.iter_pages(PARTNERS, params={"$top": "10"})]
        assert [len(p) for p in pages] == [10, 10, 10, 10, 5]
        listed = await graph.list_all(PARTNERS, top=20, select=["tenantId"])
        assert sorted(p["tenantId"] for p in listed) == sorted(partners)
        assert all(set(p) <= {"tenantId", "@odata.type"} for p in listed)

    world.run(workload)


def test_batch_items_throttled_inside_the_envelope_are_retried() -> None:
    world = make_world(faults=FaultProfile(rate_429=0.3, retry_after=(2, 4)), seed=11)
    partners = _guids(40, seed=9)

    async def workload() -> None:
        graph = world.client("fabrikam", retry=RetryPolicy(max_attempts=30, seed=2))
        requests = [
            BatchRequest(id=f"p{i}", method="POST", url=PARTNERS, body={"tenantId": t})
            for i, t in enumerate(partners)
        ]
        results = await graph.batch(requests)
        assert all(r.status == 201 for r in results.values())
        assert graph.stats.batch_item_status[429] > 0

    world.run(workload)
    assert sorted(world.emulator.tenant("fabrikam").access_policy.partners) == sorted(partners)
    assert world.emulator.traffic.stats()["early_retries"] == 0


def test_dependent_batch_items_fail_with_424(world: World) -> None:
    source = world.emulator.tenant("contoso").id

    async def workload() -> None:
        graph = world.client("fabrikam")
        sync = f"{PARTNERS}/{source}/identitySynchronization"
        results = await graph.batch(
            [
                BatchRequest(id="1", method="POST", url=PARTNERS, body={"tenantId": "bad"}),
                BatchRequest(
                    id="2",
                    method="PUT",
                    url=sync,
                    body={"userSyncInbound": {"isSyncAllowed": True}},
                    depends_on=("1",),
                ),
            ]
        )
        assert results["1"].status == 400
        assert results["2"].status == 424

    world.run(workload)
