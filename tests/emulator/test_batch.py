"""JSON batching (``POST /$batch``) through a real Emulator and the policy routes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctsync.emulator._emulator import Emulator
from ctsync.emulator.core.http import EmuRequest, EmuResponse
from ctsync.emulator.core.traffic import FaultProfile, QuotaLimits

GRAPH = "https://graph.microsoft.com/v1.0"
PARTNERS = "/policies/crossTenantAccessPolicy/partners"
DEFAULT = "/policies/crossTenantAccessPolicy/default"


@pytest.fixture
def emu() -> Emulator:
    return Emulator(scenario="demo")


def _token(emu: Emulator, tenant: str = "contoso") -> str:
    t = emu.tenant(tenant)
    token, _ = emu.issue_token(t, next(iter(t.clients.values())))
    return token


def _batch(emu: Emulator, payload: Any, **headers: str) -> EmuResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request_headers = {
        "authorization": f"Bearer {_token(emu)}",
        "content-type": "application/json",
        **headers,
    }
    return emu.handle(EmuRequest("POST", f"{GRAPH}/$batch", request_headers, body))


def _items(response: EmuResponse) -> dict[str, dict[str, Any]]:
    assert response.status == 200, response.json()
    return {item["id"]: item for item in response.json()["responses"]}


def _bad(response: EmuResponse) -> str:
    assert response.status == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    message: str = error["message"]
    return message


def _get(ident: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "method": "GET", "url": url, **extra}


def _create_partner(ident: str, tenant_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "method": "POST",
        "url": PARTNERS,
        "headers": {"Content-Type": "application/json"},
        "body": {"tenantId": tenant_id},
        **extra,
    }


def test_independent_requests_each_get_their_own_answer(emu: Emulator) -> None:
    fabrikam = emu.tenant("fabrikam").id
    response = _batch(
        emu,
        {
            "requests": [
                _get("1", DEFAULT),
                _create_partner("2", fabrikam),
                _get("3", f"{PARTNERS}/{emu.tenant('tailspin').id}"),
            ]
        },
    )
    items = _items(response)
    assert [item["id"] for item in response.json()["responses"]] == ["1", "2", "3"]
    assert items["1"]["status"] == 200
    assert items["1"]["body"]["isServiceDefault"] is True
    assert items["1"]["headers"]["content-type"].startswith("application/json")
    assert items["2"]["status"] == 201
    assert items["2"]["body"]["tenantId"] == fabrikam
    assert items["3"]["status"] == 404
    error = items["3"]["body"]["error"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert fabrikam in emu.tenant("contoso").access_policy.partners


def test_depends_on_orders_execution_whatever_the_listed_order(emu: Emulator) -> None:
    fabrikam = emu.tenant("fabrikam").id
    response = _batch(
        emu,
        {
            "requests": [
                _get("read", f"{PARTNERS}/{fabrikam}", dependsOn=["create"]),
                _create_partner("create", fabrikam),
                {
                    "id": "patch",
                    "method": "PATCH",
                    "url": f"/v1.0{PARTNERS}/{fabrikam}",
                    "headers": {"content-type": "application/json"},
                    "body": {"automaticUserConsentSettings": {"outboundAllowed": True}},
                    "dependsOn": ["CREATE"],
                },
            ]
        },
    )
    order = [item["id"] for item in response.json()["responses"]]
    assert order.index("create") < order.index("read")
    items = _items(response)
    assert items["read"]["status"] == 200
    assert items["read"]["body"]["tenantId"] == fabrikam
    assert items["patch"]["status"] == 204
    assert "body" not in items["patch"]


def test_a_failed_dependency_fails_its_dependants_with_424(emu: Emulator) -> None:
    fabrikam = emu.tenant("fabrikam").id
    response = _batch(
        emu,
        {
            "requests": [
                _create_partner("1", "not-a-guid"),
                _create_partner("2", fabrikam, dependsOn=["1"]),
                _get("3", DEFAULT, dependsOn=["2"]),
                _get("4", DEFAULT),
            ]
        },
    )
    items = _items(response)
    assert items["1"]["status"] == 400
    assert items["2"]["status"] == 424
    assert items["2"]["body"]["error"]["code"] == "FailedDependency"
    assert items["3"]["status"] == 424
    assert items["4"]["status"] == 200
    assert fabrikam not in emu.tenant("contoso").access_policy.partners


def test_twenty_requests_is_the_limit(emu: Emulator) -> None:
    twenty = [_get(str(i), DEFAULT) for i in range(20)]
    assert len(_items(_batch(emu, {"requests": twenty}))) == 20
    message = _bad(_batch(emu, {"requests": [*twenty, _get("20", DEFAULT)]}))
    assert "exceeds the limit of 20" in message


@pytest.mark.parametrize(
    ("requests", "needle"),
    [
        ([_get("1", DEFAULT), _get("1", DEFAULT)], "not unique"),
        ([_get("a", DEFAULT), _get("A", DEFAULT)], "not unique"),
        ([{"method": "GET", "url": DEFAULT}], "no 'id'"),
        ([{"id": 1, "method": "GET", "url": DEFAULT}], "no 'id'"),
        ([{"id": "1", "method": "FETCH", "url": DEFAULT}], "invalid 'method'"),
        ([{"id": "1", "method": "GET"}], "no 'url'"),
        ([_get("1", "https://graph.microsoft.com/v1.0" + DEFAULT)], "absolute url"),
        ([_get("1", "/$batch")], "cannot be nested"),
        ([_get("1", "/v1.0/$batch")], "cannot be nested"),
        (
            [{"id": "1", "method": "POST", "url": PARTNERS, "body": {"tenantId": "x"}}],
            "no Content-Type",
        ),
        ([_get("1", DEFAULT, headers={"x": 1})], "invalid 'headers'"),
        ([_get("1", DEFAULT, dependsOn=["9"])], "unknown request id '9'"),
        ([_get("1", DEFAULT, dependsOn="2"), _get("2", DEFAULT)], "invalid 'dependsOn'"),
        ([_get("1", DEFAULT, dependsOn=["1"])], "depends on itself"),
        (
            [_get("1", DEFAULT, dependsOn=["2"]), _get("2", DEFAULT, dependsOn=["1"])],
            "circular",
        ),
        (["GET /me"], "must be a JSON object"),
        ([], "no requests"),
    ],
)
def test_malformed_batches_are_refused_whole(
    emu: Emulator, requests: list[Any], needle: str
) -> None:
    # A later request that would have written must not run when the batch is refused.
    fabrikam = emu.tenant("fabrikam").id
    payload = {"requests": [*requests, _create_partner("zzz", fabrikam)]}
    if not requests:
        payload = {"requests": []}
    assert needle in _bad(_batch(emu, payload))
    assert not emu.tenant("contoso").access_policy.partners


@pytest.mark.parametrize("payload", [{"request": []}, [], {"requests": {"1": {}}}])
def test_the_envelope_must_hold_a_request_list(emu: Emulator, payload: Any) -> None:
    assert "Invalid batch payload" in _bad(_batch(emu, payload))


def test_invalid_json_is_refused(emu: Emulator) -> None:
    response = _batch(emu, b"{not json")
    assert response.status == 400


def test_relative_urls_with_or_without_version_and_slash(emu: Emulator) -> None:
    requests = [
        _get("a", DEFAULT),
        _get("b", "/v1.0" + DEFAULT),
        _get("c", DEFAULT.lstrip("/")),
        _get("d", PARTNERS + "?$top=1&$select=tenantId"),
    ]
    items = _items(_batch(emu, {"requests": requests}))
    assert {i: items[i]["status"] for i in items} == {"a": 200, "b": 200, "c": 200, "d": 200}
    assert items["d"]["body"]["value"] == []


def test_unknown_inner_routes_answer_inside_the_batch(emu: Emulator) -> None:
    items = _items(
        _batch(
            emu,
            {
                "requests": [
                    _get("1", "/no/such/thing"),
                    {"id": "2", "method": "DELETE", "url": DEFAULT},
                    _get("3", "/subscribedSkus"),
                ]
            },
        )
    )
    # A path Graph does not have is OData's 400; a Graph route the emulator lacks is 501.
    assert items["1"]["status"] == 400
    assert items["1"]["body"]["error"]["message"] == "Resource not found for the segment 'no'."
    assert items["2"]["status"] == 405
    assert items["3"]["status"] == 501


def test_inner_requests_carry_their_headers_and_client_request_ids(emu: Emulator) -> None:
    response = _batch(
        emu,
        {
            "requests": [
                _get("1", "/nope", headers={"client-request-id": "mine"}),
                _get("2", "/nope"),
            ]
        },
        **{"client-request-id": "outer"},
    )
    items = _items(response)
    assert items["1"]["body"]["error"]["innerError"]["client-request-id"] == "mine"
    assert items["2"]["body"]["error"]["innerError"]["client-request-id"] == "outer/2"
    assert response.headers["client-request-id"] == "outer"


def test_each_inner_request_is_throttled_and_charged_not_the_envelope(emu: Emulator) -> None:
    emu.traffic.limits = QuotaLimits(global_app=(3, 10))
    items = _items(_batch(emu, {"requests": [_get(str(i), DEFAULT) for i in range(5)]}))
    assert [items[str(i)]["status"] for i in range(5)] == [200, 200, 200, 429, 429]
    throttled = items["3"]
    assert throttled["headers"]["Retry-After"] == "4"
    assert throttled["headers"]["x-ms-throttle-information"] == "RequestLimitExceeded"
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
    assert items["0"]["headers"]["x-ms-resource-unit"] == "1"
    stats = emu.traffic.stats()
    assert stats["admitted"] == 3
    assert stats["requests_while_blocked"] == 1


def test_random_429s_land_inside_a_200_batch(emu: Emulator) -> None:
    emu.traffic.configure(FaultProfile(rate_429=1.0, retry_after=(7, 7)))
    response = _batch(emu, {"requests": [_get("1", DEFAULT)]})
    items = _items(response)
    assert items["1"]["status"] == 429
    assert items["1"]["headers"]["Retry-After"] == "7"
    assert "x-ms-throttle-scope" in items["1"]["headers"]


def test_inner_requests_need_the_routes_permissions(emu: Emulator) -> None:
    tenant = emu.tenant("contoso")
    reader = emu.add_client(tenant, permissions=["Policy.Read.All"])
    token, _ = emu.issue_token(tenant, reader)
    payload = {"requests": [_get("1", DEFAULT), _create_partner("2", emu.tenant("fabrikam").id)]}
    response = emu.handle(
        EmuRequest(
            "POST",
            f"{GRAPH}/$batch",
            {"authorization": f"Bearer {token}", "content-type": "application/json"},
            json.dumps(payload).encode(),
        )
    )
    items = _items(response)
    assert items["1"]["status"] == 200
    assert items["2"]["status"] == 403
    assert items["2"]["body"]["error"]["code"] == "Authorization_RequestDenied"


def test_the_batch_needs_a_token(emu: Emulator) -> None:
    response = emu.handle(
        EmuRequest("POST", f"{GRAPH}/$batch", {}, json.dumps({"requests": []}).encode())
    )
    assert response.status == 401


def test_get_on_batch_is_not_allowed(emu: Emulator) -> None:
    response = emu.handle(
        EmuRequest("GET", f"{GRAPH}/$batch", {"authorization": f"Bearer {_token(emu)}"})
    )
    assert response.status == 405


def test_inner_stats_are_counted(emu: Emulator) -> None:
    _batch(emu, {"requests": [_get("1", DEFAULT), _get("2", "/nope"), _get("3", "/devices")]})
    assert emu.stats["batch_inner_requests"] == 3
    assert emu.stats["batch_inner_status_200"] == 1
    assert emu.stats["batch_inner_status_400"] == 1
    assert emu.stats["batch_inner_status_501"] == 1
