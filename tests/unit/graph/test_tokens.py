from __future__ import annotations

import asyncio

import pytest

from ctsync.errors import AuthenticationError, UnauthorizedError
from ctsync.graph import VirtualClock
from tests.unit.graph.fakes import (
    AsyncFakeCredential,
    FakeCredential,
    FakeGraph,
    Reply,
    error,
    make_client,
)


def test_token_is_cached_until_five_minutes_before_expiry() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/organization", Reply(200, {}))
    credential = FakeCredential(clock, lifetime=3600)

    async def main() -> None:
        async with make_client(graph, credential=credential) as client:
            for _ in range(3):
                await client.get("/organization")
            clock.advance(3600 - 301)
            await client.get("/organization")
            clock.advance(2)  # now inside the last five minutes
            await client.get("/organization")

    asyncio.run(main())
    assert [s.token for s in graph.requests] == ["Bearer token-1"] * 4 + ["Bearer token-2"]
    assert credential.calls == [("https://graph.microsoft.com/.default",)] * 2


def test_async_credentials_are_awaited() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/organization", Reply(200, {}))
    credential = AsyncFakeCredential(clock)

    async def main() -> None:
        async with make_client(graph, credential=credential) as client:
            await asyncio.gather(*(client.get("/organization") for _ in range(5)))

    asyncio.run(main())
    assert len(credential.calls) == 1  # concurrent requests share one token fetch
    assert {s.token for s in graph.requests} == {"Bearer token-1"}


def test_invalid_token_401_refreshes_once_and_retries() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)

    def answer(seen: object) -> Reply:
        token = getattr(seen, "token", "")
        if token == "Bearer token-1":
            return error(401, "InvalidAuthenticationToken", "Access token has expired")
        return Reply(200, {"ok": True})

    graph.on("GET", "/organization", answer)
    credential = FakeCredential(clock)

    async def main() -> int:
        async with make_client(graph, credential=credential) as client:
            return (await client.get("/organization")).attempts

    assert asyncio.run(main()) == 2
    assert [s.token for s in graph.requests] == ["Bearer token-1", "Bearer token-2"]
    assert clock.sleeps == []


def test_a_second_401_is_raised_not_looped() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/organization", error(401, "InvalidAuthenticationToken"))

    async def main() -> None:
        async with make_client(graph, credential=FakeCredential(clock)) as client:
            await client.get("/organization")

    with pytest.raises(UnauthorizedError) as info:
        asyncio.run(main())
    assert len(graph.requests) == 2
    assert "token-" not in str(info.value)


def test_other_401_codes_are_not_retried() -> None:
    clock = VirtualClock()
    graph = FakeGraph(clock)
    graph.on("GET", "/organization", error(401, "Authorization_IdentityNotFound"))

    async def main() -> None:
        async with make_client(graph) as client:
            await client.get("/organization")

    with pytest.raises(UnauthorizedError):
        asyncio.run(main())
    assert len(graph.requests) == 1


def test_credential_failure_becomes_authentication_error() -> None:
    class Broken:
        def get_token(self, *scopes: str) -> object:
            msg = "no route to the authority"
            raise OSError(msg)

    graph = FakeGraph(VirtualClock())

    async def main() -> None:
        async with make_client(graph, credential=Broken()) as client:
            await client.get("/organization")

    with pytest.raises(AuthenticationError, match="no route to the authority") as info:
        asyncio.run(main())
    assert info.value.tenant == "11111111-1111-1111-1111-111111111111"
    assert graph.requests == []
