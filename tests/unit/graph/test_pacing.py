from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from ctsync.graph import Cost, Pacer, Quota, Quotas, TokenBucket, VirtualClock, estimate_cost
from ctsync.graph.pacing import Ticket
from tests.unit.graph.fakes import OTHER_TENANT, TENANT, FakeGraph, Reply, make_client, throttled
from tests.watchdog import watchdog

# -- the virtual clock the pacing tests stand on ----------------------------------------------


def test_virtual_clock_overlaps_concurrent_sleeps() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async def main() -> None:
        await asyncio.gather(nap("a", 10), nap("b", 3), nap("c", 10))

    asyncio.run(main())
    assert woke == [("b", 3.0), ("a", 10.0), ("c", 10.0)]
    assert clock.monotonic() == 10.0
    assert clock.sleeps == [10, 3, 10]


def test_virtual_clock_reports_every_step_to_its_listener() -> None:
    steps: list[float] = []
    clock = VirtualClock(on_advance=steps.append)

    async def main() -> None:
        await asyncio.gather(clock.sleep(2), clock.sleep(5))
        clock.advance(1)

    asyncio.run(main())
    assert steps == [2, 3, 1]
    assert clock.wall() - VirtualClock().wall() == dt.timedelta(seconds=6)


# -- TokenBucket ------------------------------------------------------------------------------


def test_bucket_bursts_to_capacity_then_refills_at_its_rate() -> None:
    clock = VirtualClock()

    async def main() -> list[float]:
        bucket = TokenBucket(10, 2.0, clock)
        waits = [await bucket.acquire(10)]
        waits.append(await bucket.acquire(4))
        clock.advance(1.0)
        assert bucket.level == pytest.approx(2.0)
        waits.append(await bucket.acquire(2))
        return waits

    assert asyncio.run(main()) == [0.0, 2.0, 0.0]
    assert clock.monotonic() == 3.0


def test_bucket_serves_waiters_first_come_first_served() -> None:
    clock = VirtualClock()
    done: list[tuple[str, float]] = []

    async def take(bucket: TokenBucket, name: str, amount: float) -> None:
        await bucket.acquire(amount)
        done.append((name, clock.monotonic()))

    async def main() -> None:
        bucket = TokenBucket(10, 2.0, clock)
        # "big" queues first; the small ones that come later must not overtake it.
        await asyncio.gather(
            take(bucket, "first", 6),
            take(bucket, "big", 10),
            take(bucket, "small-1", 1),
            take(bucket, "small-2", 1),
        )

    asyncio.run(main())
    assert [name for name, _ in done] == ["first", "big", "small-1", "small-2"]
    assert done[1][1] == pytest.approx(3.0)  # 4 left, needs 6 more at 2/s
    assert done[2][1] == pytest.approx(3.5)
    assert done[3][1] == pytest.approx(4.0)


def test_bucket_lets_an_oversized_request_through_into_debt() -> None:
    clock = VirtualClock()

    async def main() -> float:
        bucket = TokenBucket(5, 1.0, clock)
        await bucket.acquire(8)
        assert bucket.level == pytest.approx(-3.0)
        return await bucket.acquire(1)

    assert asyncio.run(main()) == pytest.approx(4.0)


# -- cost estimation (graph-limits §1.2) ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "params", "expected"),
    [
        ("GET", "/users", None, ("identity", 2, 0)),
        ("GET", "/users", {"$select": "id"}, ("identity", 1, 0)),
        ("GET", "/users?$select=id,displayName&$top=5", None, ("identity", 1, 0)),
        ("GET", "/users/abc", None, ("identity", 1, 0)),
        ("GET", "/applications", {"$expand": "owners"}, ("identity", 3, 0)),
        ("GET", "/groups/g1/members", None, ("identity", 3, 0)),
        ("GET", "/groups/g1/members", {"$select": "id", "$top": 10}, ("identity", 1, 0)),
        ("GET", "/groups/g1/transitiveMembers", None, ("identity", 5, 0)),
        ("GET", "/servicePrincipals/sp/appRoleAssignments", None, ("identity", 2, 0)),
        ("GET", "/policies/crossTenantAccessPolicy/partners", None, ("identity", 1, 0)),
        ("GET", "/policies/crossTenantAccessPolicy/partners", {"$top": 5}, ("identity", 1, 0)),
        ("GET", "/v1.0/users", None, ("identity", 2, 0)),
        ("GET", "https://graph.microsoft.com/v1.0/users?$skiptoken=x", None, ("identity", 2, 0)),
        ("POST", "/policies/crossTenantAccessPolicy/partners", None, ("identity", 1, 1)),
        ("PATCH", "/policies/crossTenantAccessPolicy/partners/t", None, ("identity", 1, 1)),
        ("PUT", "/servicePrincipals/sp/synchronization/secrets", None, ("identity", 1, 1)),
        ("DELETE", "/servicePrincipals/sp", None, ("identity", 1, 1)),
        ("POST", "/directoryObjects/getByIds", None, ("identity", 5, 0)),
        ("POST", "/directoryObjects/getByIds", {"$select": "id"}, ("identity", 2, 0)),
        ("POST", "/users/u/checkMemberGroups", None, ("identity", 4, 0)),
        ("GET", "/auditLogs/provisioning", {"$top": 500}, ("reports", 1, 0)),
        ("GET", "/reports/authenticationMethods/userRegistrationDetails", None, ("reports", 1, 0)),
        (
            "POST",
            "/servicePrincipals/sp/synchronization/jobs/j/provisionOnDemand",
            None,
            ("provisionOnDemand", 1, 1),
        ),
        ("POST", "/$batch", None, ("batch", 0, 0)),
    ],
)
def test_estimate_cost(
    method: str, path: str, params: dict[str, Any] | None, expected: tuple[str, int, int]
) -> None:
    assert estimate_cost(method, path, params) == expected


# -- Pacer ------------------------------------------------------------------------------------


def test_pacer_capacities_follow_quota_headroom_and_size_class() -> None:
    pacer = Pacer(clock=VirtualClock(), headroom=0.9)
    pacer.set_size_class("big", "L")
    assert pacer.bucket("small", "ru").capacity == pytest.approx(3_500 * 0.9)
    assert pacer.bucket("small", "ru").refill_per_second == pytest.approx(350 * 0.9)
    assert pacer.bucket("big", "ru").capacity == pytest.approx(8_000 * 0.9)
    assert pacer.bucket("small", "writes").refill_per_second == pytest.approx(20 * 0.9)
    assert pacer.bucket(None, "ru").capacity == pytest.approx(150_000 * 0.9)
    assert pacer.bucket(None, "writes").refill_per_second == pytest.approx(35_000 / 300 * 0.9)
    assert pacer.bucket("small", "reports").capacity == pytest.approx(5 * 0.9)
    assert pacer.bucket(None, "reports").capacity == pytest.approx(122 * 0.9)
    assert pacer.bucket("small", "pod").refill_per_second == pytest.approx(0.5 * 0.9)


def _writes(clock: VirtualClock, *, enabled: bool) -> list[float]:
    graph = FakeGraph(clock)
    graph.on("POST", "/policies/crossTenantAccessPolicy/partners", Reply(201, {}))
    quotas = Quotas(tenant_writes=Quota(5, 5.0))
    pacer = Pacer(clock=clock, headroom=1.0, quotas=quotas, enabled=enabled)

    async def main() -> None:
        async with make_client(graph, pacer=pacer) as client:
            await asyncio.gather(
                *(
                    client.post("/policies/crossTenantAccessPolicy/partners", json={"n": n})
                    for n in range(10)
                )
            )

    asyncio.run(main())
    return [s.at for s in graph.requests]


def test_pacer_holds_writes_to_the_tenant_write_quota() -> None:
    times = _writes(VirtualClock(), enabled=True)
    assert times == pytest.approx([0, 0, 0, 0, 0, 1, 2, 3, 4, 5])


def test_disabled_pacer_sends_everything_at_once() -> None:
    assert _writes(VirtualClock(), enabled=False) == [0.0] * 10


def test_reports_burst_then_run_at_the_reports_rate() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/auditLogs/provisioning", Reply(200, {"value": []}))

    async def main() -> None:
        async with make_client(graph) as client:
            await asyncio.gather(*(client.get("/auditLogs/provisioning") for _ in range(12)))

    asyncio.run(main())
    times = sorted(s.at for s in graph.requests)
    capacity, rate = 5 * 0.95, 0.5 * 0.95  # 5 per 10 s with 5% headroom
    assert times[:4] == [0.0] * 4
    expected = [(n + 1 - capacity) / rate for n in range(4, 12)]
    assert times[4:] == pytest.approx(expected)
    # A bucket (capacity = quota, refill = quota / window) bounds any 10 s window by
    # capacity + rate * 10, which is what graph-limits §6.3 assumes Graph enforces.
    for t in times:
        assert sum(1 for u in times if t <= u < t + 10.0) <= capacity + rate * 10


# -- the throttle gate ------------------------------------------------------------------------


def _throttle_window(clock: VirtualClock, until: float, retry_after: float | None = None) -> Any:
    """A server that throttles the tenant until ``until`` and answers 200 afterwards.

    Its 429s say ``retry_after`` (default: exactly the time left).
    """

    def answer(_: Any) -> Reply:
        left = until - clock.monotonic()
        if left > 0:
            return throttled(str(round(retry_after if retry_after is not None else left)))
        return Reply(200, {"value": []})

    return answer


def _gate_run(*, enabled: bool, until: float = 10.1, retry_after: float | None = None) -> FakeGraph:
    clock = VirtualClock()
    graph = FakeGraph(clock, latency=0.1)
    graph.on("GET", "/users", _throttle_window(clock, until, retry_after))

    async def late(client: Any) -> None:
        await clock.sleep(1.0)  # well after the first 429 came back at t=0.1
        await client.get("/users")

    async def main() -> None:
        async with make_client(graph, pacer=Pacer(clock=clock, enabled=enabled)) as client:
            await asyncio.gather(client.get("/users"), *(late(client) for _ in range(4)))

    asyncio.run(main())
    return graph


def test_gate_after_429_holds_concurrent_requests_until_retry_after() -> None:
    graph = _gate_run(enabled=True)
    first, probe, *rest = graph.requests
    assert [s.at for s in graph.requests if 0.1 < s.at < 10.1] == []
    # Half-open: the oldest request (the throttled one) goes alone when Retry-After ends ...
    assert probe.at == pytest.approx(10.1)
    assert probe.headers["client-request-id"] == first.headers["client-request-id"]
    # ... and the rest follow once it got through.
    assert [s.at for s in rest] == pytest.approx([10.2] * 4)


def test_without_the_gate_concurrent_requests_go_early() -> None:
    # The control: the scenario above does catch early calls when nothing holds them.
    graph = _gate_run(enabled=False)
    assert len([s.at for s in graph.requests if 0.1 < s.at < 10.1]) == 4


def test_a_probe_that_is_throttled_again_keeps_the_gate_closed() -> None:
    # The server still throttles at 10.1 (it asked for 10 s but needs 20).
    graph = _gate_run(enabled=True, until=20.0, retry_after=10)
    times = [s.at for s in graph.requests]
    assert times[:3] == pytest.approx([0.0, 10.1, 20.2])  # first try, probe, probe again
    assert times[3:] == pytest.approx([20.3] * 4)
    assert len(graph.requests) == 7


@pytest.mark.parametrize(
    ("scope", "other_tenant_waits"),
    [("Tenant_Application/ReadWrite/app/t", False), ("Application/Read/app/t", True)],
)
def test_gate_is_per_tenant_unless_graph_says_application_scope(
    scope: str, other_tenant_waits: bool
) -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on(
        "GET", "/users", throttled("30", headers={"x-ms-throttle-scope": scope}), Reply(200, {})
    )
    graph.on("GET", "/organization", Reply(200, {}))
    pacer = Pacer(clock=clock)

    async def main() -> float:
        async with (
            make_client(graph, pacer=pacer) as one,
            make_client(graph, pacer=pacer, tenant_id=OTHER_TENANT) as two,
        ):
            first = asyncio.create_task(one.get("/users"))
            await clock.sleep(1.0)
            await two.get("/organization")
            other_at = clock.monotonic()
            await first
            return other_at

    other_at = asyncio.run(main())
    assert other_at == (30.0 if other_tenant_waits else 1.0)


def test_costs_are_charged_per_attempt() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/users", throttled("1"), Reply(200, {}))
    quotas = Quotas(tenant_ru={"S": Quota(100, 1000.0)})  # refills 0.1 RU/s
    pacer = Pacer(clock=clock, headroom=1.0, quotas=quotas)

    async def main() -> None:
        async with make_client(graph, pacer=pacer) as client:
            await client.get("/users")

    asyncio.run(main())
    # GET /users costs 2 RU; the 429'd attempt counts too (Graph counts it as well).
    assert pacer.bucket(TENANT, "ru").level == pytest.approx(100 - 2 + 0.1 - 2)


def test_a_cancelled_probe_hands_the_role_to_the_next_waiter() -> None:
    clock = VirtualClock()
    # 1 RU per 100 s: a probe that passed the gate then waits a long time for a token.
    pacer = Pacer(clock=clock, headroom=1.0, quotas=Quotas(tenant_ru={"S": Quota(1, 100.0)}))
    cost = Cost("identity", 1, 0)

    async def main() -> bool:
        pacer.settle(await pacer.acquire(TENANT, cost), ok=True)  # drain the bucket
        pacer.throttled(TENANT, "identity", 5.0)
        first = asyncio.create_task(pacer.acquire(TENANT, cost, since=0.0))
        second = asyncio.create_task(pacer.acquire(TENANT, cost, since=1.0))
        await clock.sleep(6.0)  # first is the probe now, queued for a token
        first.cancel()
        ticket = await asyncio.wait_for(second, timeout=5)  # real seconds: only if broken
        return bool(ticket.probes)

    assert asyncio.run(main()) is True


class TickingClock(VirtualClock):
    """Simulated time that, like a real clock, moves a hair between any two readings."""

    def __init__(self) -> None:
        super().__init__()
        self.readings = 0

    def monotonic(self) -> float:
        self.readings += 1
        return super().monotonic() + self.readings * 1e-6


def test_a_request_that_may_not_probe_passes_a_gate_waiting_for_a_probe() -> None:
    # The gate's Retry-After is over and it wants a probe; this caller may not be one. It
    # must pass (or wait), never spin: with a clock that moves between readings, the old
    # contract re-entered the gate forever without yielding.
    clock = TickingClock()
    pacer = Pacer(clock=clock)
    cost = Cost("identity", 1, 0)

    async def main() -> list[Any]:
        pacer.throttled(TENANT, "identity", 1.0)
        await clock.sleep(2.0)
        ticket = await pacer.acquire(TENANT, cost, can_probe=False)
        return list(ticket.probes)

    with watchdog(5, "Pacer.acquire"):
        assert asyncio.run(main()) == []


def test_requests_that_share_a_ticket_send_one_probe_for_all() -> None:
    clock = TickingClock()
    pacer = Pacer(clock=clock)
    cost = Cost("identity", 1, 0)

    async def main() -> tuple[int, bool]:
        pacer.throttled(TENANT, "identity", 1.0)
        await clock.sleep(2.0)
        ticket = Ticket()
        for _ in range(5):  # the items of one $batch
            await pacer.acquire(TENANT, cost, ticket=ticket)
        probes = len(ticket.probes)
        # Another request waits for the batch's answer ...
        other = asyncio.create_task(pacer.acquire(TENANT, cost))
        await asyncio.sleep(0)
        waiting = not other.done()
        pacer.settle(ticket, ok=True)
        pacer.settle(await other, ok=True)  # ... and goes once it is in
        return probes, waiting

    with watchdog(5, "Pacer.acquire"):
        assert asyncio.run(main()) == (1, True)
