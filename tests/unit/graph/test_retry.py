from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from ctsync.errors import ServerError, ThrottledError, TransportError
from ctsync.graph import RetryPolicy, VirtualClock, parse_retry_after
from tests.unit.graph.fakes import FakeGraph, Reply, make_client, throttled

NOW = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


# -- parse_retry_after ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("10", 10.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_parse_retry_after_http_date() -> None:
    future = format_datetime(NOW + timedelta(seconds=45), usegmt=True)
    past = format_datetime(NOW - timedelta(seconds=45), usegmt=True)
    assert future.endswith("GMT")
    assert parse_retry_after(future, NOW) == 45.0
    assert parse_retry_after(past, NOW) == 0.0
    assert parse_retry_after("Mon, 05 Jan 2026 09:01:00 GMT", NOW) == 60.0


# -- back-off ---------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    policy = RetryPolicy(jitter=0.0, backoff_base=1.0, backoff_cap=60.0)
    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_jitter_stays_within_bounds_and_varies() -> None:
    policy = RetryPolicy(jitter=0.2, backoff_base=1.0, backoff_cap=10.0, seed=1)
    for attempt in range(1, 10):
        nominal = min(10.0, 2.0 ** (attempt - 1))
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(nominal * 0.8 <= s <= nominal for s in samples)
        assert max(samples) - min(samples) > nominal * 0.1
        assert max(samples) <= 10.0


def test_seeded_policies_repeat_their_jitter() -> None:
    a = RetryPolicy(seed=42)
    b = RetryPolicy(seed=42)
    assert [a.backoff(3) for _ in range(5)] == [b.backoff(3) for _ in range(5)]


@pytest.mark.parametrize(
    ("method", "status", "retry"),
    [
        ("GET", 429, True),
        ("GET", 500, True),
        ("GET", 502, True),
        ("GET", 503, True),
        ("GET", 504, True),
        ("PATCH", 503, True),
        ("DELETE", 500, True),
        ("POST", 429, True),
        ("POST", 500, False),
        ("POST", 503, False),
        ("POST", 504, False),
        ("GET", 400, False),
        ("GET", 404, False),
        ("GET", 501, False),
    ],
)
def test_retryable_status(method: str, status: int, retry: bool) -> None:
    assert RetryPolicy().retryable_status(method, status) is retry


# -- the client retry loop --------------------------------------------------------------------


def test_429_waits_retry_after_and_reuses_client_request_id() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/organization", throttled("7"), Reply(200, {"value": []}))

    async def main() -> None:
        async with make_client(graph) as client:
            response = await client.get("/organization")
            assert response.attempts == 2
            await client.get("/organization")

    asyncio.run(main())
    first, retry, second = graph.requests
    assert retry.at - first.at == pytest.approx(7.0)
    assert clock.sleeps == [7.0]
    assert first.headers["client-request-id"] == retry.headers["client-request-id"]
    assert second.headers["client-request-id"] != first.headers["client-request-id"]
    assert first.headers["return-client-request-id"] == "true"


def test_each_new_request_gets_a_fresh_client_request_id() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/organization", Reply(200, {}))

    async def main() -> list[str]:
        async with make_client(graph) as client:
            responses = [await client.get("/organization") for _ in range(5)]
        return [r.client_request_id for r in responses]

    ids = asyncio.run(main())
    assert len(set(ids)) == 5
    assert ids == [s.headers["client-request-id"] for s in graph.requests]


def test_retry_after_as_http_date() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    when = format_datetime(clock.wall() + timedelta(seconds=30), usegmt=True)
    graph.on("GET", "/users", throttled(when, status=503), Reply(200, {"value": []}))

    async def main() -> None:
        async with make_client(graph) as client:
            await client.get("/users")

    asyncio.run(main())
    assert clock.sleeps == [30.0]


def test_504_honours_retry_after_and_5xx_without_it_backs_off() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/a", throttled("4", status=504), Reply(200, {}))
    graph.on("GET", "/b", Reply(500), Reply(502), throttled(None, status=503), Reply(200, {}))

    async def main() -> None:
        async with make_client(graph, retry=RetryPolicy(jitter=0.0)) as client:
            await client.get("/a")
            await client.get("/b")

    asyncio.run(main())
    assert clock.sleeps == [4.0, 1.0, 2.0, 4.0]


def test_post_is_not_retried_on_503() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("POST", "/applicationTemplates/x/instantiate", throttled("5", status=503))

    async def main() -> None:
        async with make_client(graph) as client:
            await client.post("/applicationTemplates/x/instantiate", json={"displayName": "F"})

    with pytest.raises(ServerError) as info:
        asyncio.run(main())
    assert len(graph.requests) == 1
    assert info.value.attempts == 1
    assert info.value.retry_after == 5.0
    assert clock.sleeps == []


def test_post_is_retried_on_429() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("POST", "/policies/crossTenantAccessPolicy/partners", throttled("3"), Reply(201, {}))

    async def main() -> int:
        async with make_client(graph) as client:
            response = await client.post(
                "/policies/crossTenantAccessPolicy/partners", json={"tenantId": "t"}
            )
        return response.status

    assert asyncio.run(main()) == 201
    assert len(graph.requests) == 2
    assert graph.requests[1].body == {"tenantId": "t"}


def test_post_is_not_retried_after_a_read_timeout_but_get_is() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.fail("POST", "/servicePrincipals/sp/synchronization/jobs", httpx.ReadTimeout("slow"))
    graph.fail("GET", "/organization", httpx.ReadTimeout("slow"))
    graph.on("GET", "/organization", Reply(200, {}))

    async def main() -> None:
        async with make_client(graph) as client:
            assert (await client.get("/organization")).status == 200
            await client.post("/servicePrincipals/sp/synchronization/jobs", json={})

    with pytest.raises(TransportError) as info:
        asyncio.run(main())
    assert "ReadTimeout" in str(info.value)
    assert len(graph.seen("POST")) == 1
    assert len(graph.seen("GET")) == 2


def test_never_sent_connection_errors_are_retried_even_for_post() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.fail("POST", "/policies/crossTenantAccessPolicy/partners", httpx.ConnectError("refused"))
    graph.on("POST", "/policies/crossTenantAccessPolicy/partners", Reply(201, {}))

    async def main() -> None:
        async with make_client(graph) as client:
            await client.post("/policies/crossTenantAccessPolicy/partners", json={"tenantId": "t"})

    asyncio.run(main())
    assert len(graph.requests) == 2


def test_attempt_budget_exhaustion_raises_throttled_error_with_retry_after() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/users", throttled("2"))

    async def main() -> None:
        async with make_client(graph, retry=RetryPolicy(max_attempts=3)) as client:
            await client.get("/users")

    with pytest.raises(ThrottledError) as info:
        asyncio.run(main())
    assert info.value.attempts == 3
    assert info.value.retry_after == 2.0
    assert info.value.status == 429
    assert len(graph.requests) == 3
    assert clock.sleeps == [2.0, 2.0]


def test_retry_after_beyond_the_time_budget_stops_at_once() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/users", throttled("5"), throttled("120"), Reply(200, {}))

    async def main() -> None:
        async with make_client(graph, retry=RetryPolicy(max_elapsed=60.0)) as client:
            await client.get("/users")

    with pytest.raises(ThrottledError) as info:
        asyncio.run(main())
    assert info.value.retry_after == 120.0
    assert info.value.attempts == 2
    assert clock.sleeps == [5.0]
    assert clock.monotonic() == 5.0


def test_every_retry_is_logged_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/users", throttled("3"), Reply(200, {}))

    async def main() -> None:
        async with make_client(graph) as client:
            await client.get("/users", params={"$top": 5})

    with caplog.at_level(logging.WARNING, logger="ctsync.graph"):
        asyncio.run(main())
    [record] = [r for r in caplog.records if r.name == "ctsync.graph"]
    text = record.getMessage()
    request_id = graph.requests[0].request_id
    assert request_id
    for part in ("GET", "/users", "429", "TooManyRequests", "3.00s", "attempt 2/8", request_id):
        assert part in text
    assert "token-1" not in text
    assert "Bearer" not in text
    assert record.levelno == logging.WARNING
