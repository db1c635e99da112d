from __future__ import annotations

import asyncio
import re

import pytest

from ctsync.errors import TransportError
from ctsync.graph import VirtualClock
from tests.unit.graph.fakes import V1, FakeGraph, Reply, make_client

# Opaque, oddly encoded tokens: the client must not rebuild or re-encode them.
PAGE_2 = f"{V1}/users?$count=true&$top=2&$skiptoken=RFNwdAIAAQAAACM6%2BYWJj%3D%3D"
PAGE_3 = f"{V1}/users?$count=true&$top=2&$skiptoken=X%27Y%27+Z"


def _three_pages(graph: FakeGraph) -> None:
    graph.on(
        "GET",
        "/users",
        Reply(
            200, {"@odata.count": 5, "value": [{"id": "1"}, {"id": "2"}], "@odata.nextLink": PAGE_2}
        ),
    )
    graph.on(
        "GET",
        PAGE_2.removeprefix(V1),
        Reply(200, {"value": [{"id": "3"}, {"id": "4"}], "@odata.nextLink": PAGE_3}),
    )
    graph.on("GET", PAGE_3.removeprefix(V1), Reply(200, {"value": [{"id": "5"}]}))


def test_list_all_follows_next_links_verbatim_and_resends_consistency_level() -> None:
    graph = FakeGraph(VirtualClock())
    _three_pages(graph)

    async def main() -> list[str]:
        async with make_client(graph) as client:
            users = await client.list_all(
                "/users",
                select=["id", "displayName"],
                filter="userType eq 'Member'",
                top=2,
                advanced_query=True,
            )
        return [u["id"] for u in users]

    assert asyncio.run(main()) == ["1", "2", "3", "4", "5"]
    first, second, third = graph.requests
    assert first.url == (
        f"{V1}/users?$select=id,displayName&$filter=userType%20eq%20'Member'&$top=2&$count=true"
    )
    assert second.url == PAGE_2
    assert third.url == PAGE_3
    assert all(s.headers.get("consistencylevel") == "eventual" for s in graph.requests)
    # every page is a new logical request
    assert len({s.headers["client-request-id"] for s in graph.requests}) == 3


def test_iter_pages_yields_each_page_including_empty_ones() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("GET", "/groups", Reply(200, {"value": [], "@odata.nextLink": f"{V1}/groups?p=2"}))
    graph.on("GET", "/groups?p=2", Reply(200, {"value": [{"id": "g"}]}))

    async def main() -> list[list[str]]:
        async with make_client(graph) as client:
            return [[g["id"] for g in page] async for page in client.iter_pages("/groups")]

    assert asyncio.run(main()) == [[], ["g"]]
    assert "consistencylevel" not in graph.requests[0].headers


def test_next_link_to_another_origin_is_refused() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on(
        "GET",
        "/users",
        Reply(
            200, {"value": [{"id": "1"}], "@odata.nextLink": "https://evil.example/v1.0/users?x"}
        ),
    )
    pages: list[list[dict[str, object]]] = []

    async def main() -> None:
        async with make_client(graph) as client:
            async for page in client.iter_pages("/users"):
                pages.append(page)  # noqa: PERF401 - keep the pages seen before the refusal

    with pytest.raises(TransportError, match=r"evil\.example"):
        asyncio.run(main())
    assert len(pages) == 1
    assert [s.url for s in graph.requests] == [f"{V1}/users"]


def test_same_host_other_port_or_scheme_is_another_origin() -> None:
    graph = FakeGraph(VirtualClock())

    async def main(url: str) -> None:
        async with make_client(graph) as client:
            await client.get(url)

    for url in (
        "https://graph.microsoft.com:8443/v1.0/users",
        "http://graph.microsoft.com/v1.0/users",
    ):
        with pytest.raises(
            ValueError, match=re.escape("only https://graph.microsoft.com gets the token")
        ):
            asyncio.run(main(url))
    assert graph.requests == []
