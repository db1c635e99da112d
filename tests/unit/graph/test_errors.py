from __future__ import annotations

import asyncio

import pytest

from ctsync.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    GraphError,
    NotFoundError,
    ServerError,
    UnauthorizedError,
)
from ctsync.graph import VirtualClock, WriteRecord
from tests.unit.graph.fakes import TENANT, FakeGraph, Reply, error, make_client

PARTNERS = "/policies/crossTenantAccessPolicy/partners"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "Request_BadRequest", BadRequestError),
        (401, "InvalidAuthenticationToken", UnauthorizedError),
        (403, "Authorization_RequestDenied", ForbiddenError),
        (404, "Directory_ObjectNotFound", NotFoundError),
        (409, "Request_MultipleObjectsWithSameKeyValue", ConflictError),
        (412, "PreconditionFailed", GraphError),
        (501, "NotImplemented", ServerError),
    ],
)
def test_error_envelope_becomes_the_matching_graph_error(
    status: int, code: str, cls: type[GraphError]
) -> None:
    graph = FakeGraph(VirtualClock())
    graph.on(
        "PATCH", f"{PARTNERS}/abc", error(status, code, "Unable to read the company information")
    )

    async def main() -> None:
        async with make_client(graph) as client:
            await client.patch(f"{PARTNERS}/abc", json={"inboundTrust": None})

    with pytest.raises(cls) as info:
        asyncio.run(main())
    err = info.value
    assert type(err) is cls
    sent = graph.requests[-1]
    assert (err.status, err.code) == (status, code)
    assert err.message == "Unable to read the company information"
    assert err.request_id == sent.request_id
    assert err.client_request_id == sent.headers["client-request-id"]
    assert (err.tenant, err.method, err.path) == (TENANT, "PATCH", f"{PARTNERS}/abc")
    assert err.attempts == len(graph.requests)
    assert "token-" not in str(err)
    assert err.to_dict()["request_id"] == sent.request_id


def test_details_are_kept() -> None:
    graph = FakeGraph(VirtualClock())
    detail = {"code": "ConflictingObjects", "message": "dup", "target": "tenantId"}
    reply = error(409, "Request_MultipleObjectsWithSameKeyValue", "exists")
    reply.json["error"]["details"] = [detail]
    graph.on("POST", PARTNERS, reply)

    async def main() -> None:
        async with make_client(graph) as client:
            await client.post(PARTNERS, json={"tenantId": "t"})

    with pytest.raises(ConflictError) as info:
        asyncio.run(main())
    assert info.value.details == [detail]


def test_non_json_error_body_still_raises_a_graph_error() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("POST", PARTNERS, Reply(502, raw=b"<html><body>Bad Gateway</body></html>"))

    async def main() -> None:
        async with make_client(graph) as client:
            await client.post(PARTNERS, json={"tenantId": "t"})

    with pytest.raises(ServerError) as info:
        asyncio.run(main())
    assert info.value.status == 502
    assert info.value.code == "HTTP502"
    assert "Bad Gateway" in info.value.message
    assert info.value.request_id == graph.requests[0].request_id


def test_write_observers_see_final_answers_with_error_codes() -> None:
    graph = FakeGraph(VirtualClock())
    graph.on(
        "POST",
        PARTNERS,
        Reply(201, {"tenantId": "a"}),
        error(409, "Request_MultipleObjectsWithSameKeyValue"),
    )
    graph.on("GET", PARTNERS, Reply(200, {"value": []}))
    records: list[WriteRecord] = []

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_observer(records.append)
            await client.get(PARTNERS)
            await client.post(PARTNERS, json={"tenantId": "a"})
            with pytest.raises(ConflictError):
                await client.post(PARTNERS, json={"tenantId": "a"})

    asyncio.run(main())
    assert [(r.method, r.path, r.status, r.error_code) for r in records] == [
        ("POST", PARTNERS, 201, None),
        ("POST", PARTNERS, 409, "Request_MultipleObjectsWithSameKeyValue"),
    ]
    assert records[0].body == {"tenantId": "a"}
    assert records[0].tenant == TENANT
    assert records[1].request_id == graph.requests[2].request_id
    assert records[1].client_request_id == graph.requests[2].headers["client-request-id"]
