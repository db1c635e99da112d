"""OData in the emulator: the $filter language, $select, and paged collections served through
a real Emulator (a test route registered on its router, driven by ``Emulator.handle``)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from ctsync.emulator._emulator import Emulator
from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault
from ctsync.emulator.core.http import EmuRequest, EmuResponse
from ctsync.emulator.core.odata import (
    DIRECTORY_ADVANCED,
    FilterSpec,
    OrderbySpec,
    apply_select,
    collection_response,
    evaluate,
    parse_filter,
)

# ---------------------------------------------------------------------------------------------
# $filter: parsing and evaluation (pure functions)
# ---------------------------------------------------------------------------------------------

USER: dict[str, Any] = {
    "id": "6E8F1A2B-0000-4000-8000-00000000000A",
    "displayName": "Adele Vance",
    "userType": "Member",
    "accountEnabled": True,
    "age": 41,
    "score": 2.5,
    "manager": None,
    "department": "Sales",
    "methodsRegistered": ["microsoftAuthenticatorPush", "fido2"],
    "identities": [
        {"signInType": "userPrincipalName", "issuer": "contoso.onmicrosoft.com"},
        {"signInType": "federated", "issuer": "ExternalAzureAD"},
    ],
    "servicePrincipal": {"id": "AbC-123", "displayName": "Fabrikam sync"},
    "provisioningStatusInfo": {"status": "success", "errorInformation": None},
    "activityDateTime": "2023-07-30T10:00:00.1234567Z",
    "note": "it's here",
}


def matches(text: str, obj: dict[str, Any] = USER, *, case_sensitive: bool = False) -> bool:
    return evaluate(parse_filter(text), obj, case_sensitive=case_sensitive)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("displayName eq 'Adele Vance'", True),
        ("displayName eq 'adele vance'", True),
        ("displayName ne 'Adele Vance'", False),
        ("age gt 40", True),
        ("age ge 41", True),
        ("age lt 41", False),
        ("age le 41", True),
        ("score eq 2.5", True),
        ("accountEnabled eq true", True),
        ("accountEnabled eq false", False),
        ("accountEnabled", True),
        ("manager eq null", True),
        ("manager ne null", False),
        ("department ne null", True),
        ("age gt null", False),
        ("note eq 'it''s here'", True),
        ("missing eq null", True),
        ("MISSING eq 'x'", False),
        ("servicePrincipal/id eq 'abc-123'", True),
        ("provisioningStatusInfo/status eq 'success'", True),
        ("provisioningStatusInfo/errorInformation eq null", True),
        ("DisplayName eq 'Adele Vance'", True),
        ("userType in ('Guest', 'member')", True),
        ("userType in ('Guest')", False),
        ("id eq 6e8f1a2b-0000-4000-8000-00000000000a", True),
        ("id eq '6e8f1a2b-0000-4000-8000-00000000000a'", True),
        ("accountEnabled eq 1", False),
        ("age eq '41'", False),
    ],
)
def test_comparisons_and_literals(text: str, expected: bool) -> None:
    assert matches(text) is expected


def test_and_binds_tighter_than_or() -> None:
    # a or (b and c): true through a alone; false when only c is true.
    assert matches("age eq 41 or age eq 1 and age eq 2")
    assert not matches("age eq 1 or age eq 2 and age eq 41")
    assert matches("(age eq 1 or age eq 41) and department eq 'Sales'")
    assert not matches("age eq 1 or age eq 41 and department eq 'HR'")


def test_not_binds_tighter_than_and_and_negates_a_comparison() -> None:
    assert matches("not age eq 1 and department eq 'Sales'")
    assert not matches("not (age eq 41 or age eq 1)")
    assert matches("not not age eq 41")
    assert not matches("not startswith(displayName, 'Adele')")


def test_string_functions_follow_the_case_rule() -> None:
    assert matches("startswith(displayName, 'adele')")
    assert not matches("startswith(displayName, 'adele')", case_sensitive=True)
    assert matches("endswith(displayName, 'VANCE')")
    assert matches("contains(displayName, 'e V')")
    assert not matches("contains(displayName, 'e v')", case_sensitive=True)
    assert matches("contains(tolower(servicePrincipal/id), 'abc')", case_sensitive=True)
    assert matches("tolower(displayName) eq 'adele vance'", case_sensitive=True)
    assert matches("toupper(department) eq 'SALES'", case_sensitive=True)
    assert not matches("startswith(manager, 'x')")


def test_case_sensitive_equality_for_provisioning_logs() -> None:
    assert not matches("provisioningStatusInfo/status eq 'Success'", case_sensitive=True)
    assert matches("provisioningStatusInfo/status eq 'success'", case_sensitive=True)
    # GUID literals compare case-insensitively whatever the rule.
    assert matches("id eq 6E8F1A2B-0000-4000-8000-00000000000a", case_sensitive=True)


def test_any_and_all_lambdas() -> None:
    assert matches("methodsRegistered/any(m: m eq 'fido2')")
    assert matches("methodsRegistered/any(m: m eq 'FIDO2')")
    assert not matches("methodsRegistered/any(m: m eq 'sms')")
    assert matches("methodsRegistered/any(m: m eq 'sms' or startswith(m, 'micro'))")
    assert matches(
        "identities/any(i: i/issuer eq 'ExternalAzureAD' and i/signInType eq 'federated')"
    )
    assert not matches("identities/any(i: i/issuer eq 'ExternalAzureAD' and i/signInType eq 'x')")
    assert matches("methodsRegistered/any()")
    assert not matches("methodsRegistered/any()", {"methodsRegistered": []})
    assert not matches("methodsRegistered/any(m: m eq 'fido2')", {"methodsRegistered": None})
    assert matches("identities/all(i: i/issuer ne null)")
    assert matches("not methodsRegistered/any(m: m eq 'sms')")


def test_nested_lambdas_see_outer_variables() -> None:
    obj = {"groups": [{"tags": ["a", "b"]}, {"tags": ["c"]}]}
    assert matches("groups/any(g: g/tags/any(t: t eq 'c'))", obj)
    assert not matches("groups/any(g: g/tags/any(t: t eq 'z'))", obj)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("activityDateTime gt 2023-07-30", True),
        ("activityDateTime lt 2023-07-31", True),
        ("activityDateTime gt 2023-07-30T10:00:00Z", True),
        ("activityDateTime gt 2023-07-30T10:00:01Z", False),
        ("activityDateTime ge 2023-07-30T11:00:00+01:00", True),
        ("activityDateTime lt 2023-07-30T10:00:00.2Z", True),
        ("activityDateTime eq null", False),
    ],
)
def test_datetimes_compare_as_instants(text: str, expected: bool) -> None:
    assert matches(text) is expected


def test_datetime_against_a_non_date_value_is_false() -> None:
    assert not matches("displayName gt 2023-07-30")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "age eq",
        "eq 1",
        "displayName eq 'open",
        "(age eq 41",
        "age eq 41)",
        "age eq 41 and",
        "age eq 41 41",
        "startswith(displayName)",
        "frobnicate(displayName, 'x')",
        "methodsRegistered/any(m m eq 'x')",
        "methodsRegistered/all()",
        "age in ()",
        "age in (displayName)",
        "age eq #",
        "a/ eq 1",
    ],
)
def test_syntax_errors_are_bad_request(text: str) -> None:
    with pytest.raises(GraphFault) as info:
        parse_filter(text)
    assert info.value.status == 400
    assert info.value.code == "BadRequest"
    assert info.value.message.startswith("Invalid filter clause: ")


def test_syntax_error_names_the_position() -> None:
    with pytest.raises(GraphFault, match=r"position 8 in 'age eq 4@'"):
        parse_filter("age eq 4@")


# ---------------------------------------------------------------------------------------------
# FilterSpec: what a route serves
# ---------------------------------------------------------------------------------------------

USERS_SPEC = FilterSpec(
    resource="User",
    properties={
        "displayName": "eq ne startswith endswith not",
        "userType": ("eq", "in", "ne"),
        "accountEnabled": ["eq"],
        "identities/issuer": "eq",
        "identities": "any",
        "servicePrincipal/id": "contains tolower",
        "methodsRegistered": "any eq",
    },
    advanced=DIRECTORY_ADVANCED,
)


@pytest.mark.parametrize(
    "text",
    [
        "displayName eq 'x'",
        "startswith(displayName, 'A') and userType in ('Member')",
        "identities/any(i: i/issuer eq 'x')",
        "contains(tolower(servicePrincipal/id), 'abc')",
        "methodsRegistered/any(m: m eq 'fido2')",
        "accountEnabled",
        "'Member' eq userType",
        "DISPLAYNAME eq 'x'",
    ],
)
def test_spec_accepts_declared_clauses(text: str) -> None:
    assert USERS_SPEC.compile(text).text == text


@pytest.mark.parametrize(
    ("text", "prop"),
    [
        ("department eq 'Sales'", "department"),
        ("accountEnabled ne true", "accountEnabled"),
        ("endswith(servicePrincipal/id, 'a')", "servicePrincipal/id"),
        ("tolower(displayName) eq 'x'", "displayName"),
        ("identities/any(i: i/signInType eq 'x')", "identities/signInType"),
        ("displayName eq userType", "displayName"),
        ("1 eq 1", ""),
        ("startswith(displayName, userType)", "displayName"),
        ("servicePrincipal/displayName eq 'x'", "servicePrincipal/displayName"),
    ],
)
def test_spec_refuses_undeclared_clauses(text: str, prop: str) -> None:
    with pytest.raises(GraphFault) as info:
        USERS_SPEC.compile(text)
    fault = info.value
    assert (fault.status, fault.code) == (400, "Request_UnsupportedQuery")
    assert fault.message == (
        "Unsupported or invalid query filter clause specified for property "
        f"'{prop}' of resource 'User'."
    )


@pytest.mark.parametrize(
    ("text", "operator"),
    [
        ("userType ne 'Guest'", "ne"),
        ("endswith(displayName, 'x')", "endsWith"),
        ("not displayName eq 'x'", "not"),
    ],
)
def test_advanced_operators_need_an_advanced_query(text: str, operator: str) -> None:
    with pytest.raises(GraphFault) as info:
        USERS_SPEC.compile(text)
    # Microsoft's documented answer (aad-advanced-queries, "Error handling").
    assert (info.value.status, info.value.code) == (400, "Request_UnsupportedQuery")
    assert info.value.message == (
        f"Operator '{operator}' is not supported because the required parameters might be "
        "missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. "
        "Refer to https://aka.ms/graph-docs/advanced-queries for more information"
    )
    assert USERS_SPEC.compile(text, advanced_query=True).operators


def test_a_non_boolean_filter_is_bad_request() -> None:
    with pytest.raises(GraphFault, match="single boolean value") as info:
        USERS_SPEC.compile("tolower(displayName)")
    assert info.value.code == "BadRequest"


def test_spec_rejects_unknown_operator_names() -> None:
    with pytest.raises(ValueError, match="unknown \\$filter operator"):
        FilterSpec(resource="User", properties={"displayName": "eq like"})


def test_compiled_filter_uses_the_spec_case_rule() -> None:
    spec = FilterSpec(resource="Log", properties={"jobId": "eq"}, case_sensitive=True)
    compiled = spec.compile("jobId eq 'Azure2Azure.abc'")
    assert compiled.matches({"jobId": "Azure2Azure.abc"})
    assert not compiled.matches({"jobId": "azure2azure.abc"})


# ---------------------------------------------------------------------------------------------
# $select
# ---------------------------------------------------------------------------------------------


def test_select_keeps_listed_properties_and_annotations() -> None:
    obj = {"@odata.type": "#microsoft.graph.user", "id": "1", "displayName": "A", "mail": None}
    assert apply_select(obj, "DISPLAYNAME, mail") == {
        "@odata.type": "#microsoft.graph.user",
        "displayName": "A",
        "mail": None,
    }
    assert apply_select(obj, "id") == {"@odata.type": "#microsoft.graph.user", "id": "1"}
    assert apply_select(obj, None) == obj
    assert apply_select(obj, " ") == obj
    assert apply_select(obj, "*") == obj
    assert apply_select(obj, "nope") == {"@odata.type": "#microsoft.graph.user"}


def test_select_with_a_type_refuses_unknown_properties() -> None:
    with pytest.raises(GraphFault) as info:
        apply_select({"id": "1"}, "id,Nope", type_name="microsoft.graph.user")
    assert (info.value.status, info.value.code) == (400, "Request_BadRequest")
    assert info.value.message == (
        "Could not find a property named 'Nope' on type 'microsoft.graph.user'."
    )


# ---------------------------------------------------------------------------------------------
# collections through a real Emulator
# ---------------------------------------------------------------------------------------------

WIDGETS: list[dict[str, Any]] = [
    {
        "id": f"w{i:03d}",
        "name": f"Widget {i:03d}",
        "color": ("red", "Green", "blue")[i % 3],
        "size": i % 7,
        "created": f"2026-01-{1 + i % 28:02d}T00:00:00Z",
    }
    for i in range(250)
]
WIDGET_FILTER = FilterSpec(
    resource="Widget", properties={"color": "eq in", "size": "eq gt lt", "name": "startswith"}
)
WIDGET_ORDER = OrderbySpec(resource="Widget", properties=("name", "size", "created"))


def _serve_widgets(emu: Emulator) -> None:
    def widgets(ctx: RequestContext) -> EmuResponse:
        return collection_response(
            ctx,
            [dict(w) for w in WIDGETS],
            context="widgets",
            filter_spec=WIDGET_FILTER,
            orderby=WIDGET_ORDER,
        )

    def gadgets(ctx: RequestContext) -> EmuResponse:
        return collection_response(
            ctx,
            [dict(w) for w in WIDGETS[:30]],
            context="gadgets",
            default_top=10,
            max_top=20,
            count_requires_advanced=False,
            type_name="microsoft.graph.gadget",
        )

    emu.router.route("GET", "/ctsyncTest/widgets")(widgets)
    emu.router.route("GET", "/ctsyncTest/gadgets")(gadgets)


@pytest.fixture
def emu() -> Emulator:
    emu = Emulator(scenario="demo")
    _serve_widgets(emu)
    return emu


def _headers(emu: Emulator, tenant: str = "contoso", **extra: str) -> dict[str, str]:
    t = emu.tenant(tenant)
    token, _ = emu.issue_token(t, next(iter(t.clients.values())))
    return {"authorization": f"Bearer {token}", **extra}


def _get(emu: Emulator, url: str, **headers: str) -> EmuResponse:
    if not url.startswith("http"):
        url = "https://graph.microsoft.com/v1.0" + url
    return emu.handle(EmuRequest("GET", url, _headers(emu, **headers)))


def _error(response: EmuResponse) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status, error["code"], error["message"]


def _walk(emu: Emulator, url: str, **headers: str) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        response = _get(emu, next_url, **headers)
        assert response.status == 200, response.json()
        page = response.json()
        pages.append(page)
        next_url = page.get("@odata.nextLink")
    return pages


def test_paging_walks_every_item_exactly_once(emu: Emulator) -> None:
    pages = _walk(emu, "/ctsyncTest/widgets?$top=40")
    sizes = [len(p["value"]) for p in pages]
    assert sizes == [40] * 6 + [10]
    ids = [w["id"] for p in pages for w in p["value"]]
    assert ids == [w["id"] for w in WIDGETS]
    assert "@odata.nextLink" not in pages[-1]
    assert pages[0]["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#widgets"


def test_default_page_size_is_100(emu: Emulator) -> None:
    pages = _walk(emu, "/ctsyncTest/widgets")
    assert [len(p["value"]) for p in pages] == [100, 100, 50]


def test_next_link_is_absolute_on_the_request_origin_and_keeps_the_query(
    emu: Emulator,
) -> None:
    url = "http://127.0.0.1:8443/v1.0/ctsyncTest/widgets?$filter=color eq 'red'&$top=5&$select=id"
    first = _get(emu, url.replace(" ", "%20")).json()
    link = first["@odata.nextLink"]
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "http",
        "127.0.0.1:8443",
        "/v1.0/ctsyncTest/widgets",
    )
    query = parse_qs(parts.query)
    assert query["$filter"] == ["color eq 'red'"]
    assert query["$top"] == ["5"]
    assert query["$select"] == ["id"]
    assert len(query["$skiptoken"]) == 1
    assert first["value"] == [{"id": w["id"]} for w in WIDGETS if w["color"] == "red"][:5]
    red = [w["id"] for p in _walk(emu, url.replace(" ", "%20")) for w in p["value"]]
    assert red == [w["id"] for w in WIDGETS if w["color"] == "red"]


def test_filter_and_orderby_apply_before_paging(emu: Emulator) -> None:
    # Both together on directory objects: only as an advanced query.
    url = "/ctsyncTest/widgets?" + "&".join(
        [
            "$filter=" + quote("color in ('RED','blue') and size gt 4"),
            "$orderby=" + quote("size desc,name"),
            "$top=7",
            "$count=true",
        ]
    )
    got = [w for p in _walk(emu, url, consistencylevel="eventual") for w in p["value"]]
    want = sorted(
        (w for w in WIDGETS if w["color"] in {"red", "blue"} and w["size"] > 4),
        key=lambda w: (-w["size"], w["name"]),
    )
    assert [w["id"] for w in got] == [w["id"] for w in want]


def test_orderby_on_datetimes_and_undeclared_properties(emu: Emulator) -> None:
    got = _get(emu, "/ctsyncTest/widgets?$orderby=created%20desc&$top=3").json()["value"]
    assert [w["created"] for w in got] == ["2026-01-28T00:00:00Z"] * 3
    status, code, message = _error(_get(emu, "/ctsyncTest/widgets?$orderby=color"))
    assert (status, code) == (400, "Request_UnsupportedQuery")
    assert "'color'" in message
    assert _get(emu, "/ctsyncTest/widgets?$orderby=size%20sideways").status == 400
    assert _get(emu, "/ctsyncTest/gadgets?$orderby=size").status == 400


def test_a_garbled_skiptoken_is_refused(emu: Emulator) -> None:
    for token in ["garbage!!", "eyJ", base64.urlsafe_b64encode(b"[1]").decode(), ""]:
        response = _get(emu, f"/ctsyncTest/widgets?$skiptoken={token}")
        assert _error(response)[:2] == (400, "Request_BadRequest"), token


def test_a_forged_or_foreign_skiptoken_is_refused(emu: Emulator) -> None:
    first = _get(emu, "/ctsyncTest/widgets?$top=10").json()
    token = parse_qs(urlsplit(first["@odata.nextLink"]).query)["$skiptoken"][0]
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload["o"] = 200
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    assert _get(emu, f"/ctsyncTest/widgets?$skiptoken={forged}").status == 400
    # A token is bound to its query: another filter or another tenant cannot reuse it.
    other_filter = f"/ctsyncTest/widgets?$filter=size%20eq%201&$skiptoken={token}"
    assert _get(emu, other_filter).status == 400
    assert _get(emu, f"/ctsyncTest/widgets?$skiptoken={token}", tenant="fabrikam").status == 400
    assert _get(emu, f"/ctsyncTest/widgets?$skiptoken={token}").status == 200


@pytest.mark.parametrize("top", ["0", "1000", "-1", "ten", "", "2.5"])
def test_top_outside_the_page_range_is_refused(emu: Emulator, top: str) -> None:
    status, code, message = _error(_get(emu, f"/ctsyncTest/widgets?$top={top}"))
    assert (status, code) == (400, "Request_BadRequest")
    assert message == f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."


def test_top_bounds_are_per_route(emu: Emulator) -> None:
    assert len(_get(emu, "/ctsyncTest/widgets?$top=999").json()["value"]) == 250
    assert len(_get(emu, "/ctsyncTest/widgets?$top=1").json()["value"]) == 1
    assert len(_get(emu, "/ctsyncTest/gadgets").json()["value"]) == 10
    assert _get(emu, "/ctsyncTest/gadgets?$top=21").status == 400


def test_count_on_directory_objects_needs_consistency_level(emu: Emulator) -> None:
    status, code, message = _error(_get(emu, "/ctsyncTest/widgets?$count=true"))
    assert (status, code, message) == (
        400,
        "Request_BadRequest",
        "$count is not currently supported.",
    )
    url = "/ctsyncTest/widgets?$count=true&$top=100&$filter=color%20eq%20'red'"
    pages = _walk(emu, url, consistencylevel="eventual")
    assert pages[0]["@odata.count"] == 84
    assert all("@odata.count" not in p for p in pages[1:])
    assert len(pages) == 1
    # Two pages: the count is on the first only.
    pages = _walk(emu, "/ctsyncTest/widgets?$count=true&$top=200", consistencylevel="eventual")
    assert [("@odata.count" in p) for p in pages] == [True, False]
    assert pages[0]["@odata.count"] == 250
    body = _get(emu, "/ctsyncTest/widgets?$count=false").json()
    assert "@odata.count" not in body
    assert _get(emu, "/ctsyncTest/widgets?$count=yes").status == 400


def test_count_without_the_advanced_requirement(emu: Emulator) -> None:
    body = _get(emu, "/ctsyncTest/gadgets?$count=true").json()
    assert body["@odata.count"] == 30


def test_filter_errors_through_the_route(emu: Emulator) -> None:
    assert _error(_get(emu, "/ctsyncTest/widgets?$filter=name%20eq%20'x'"))[:2] == (
        400,
        "Request_UnsupportedQuery",
    )
    assert _error(_get(emu, "/ctsyncTest/widgets?$filter=color%20eq"))[:2] == (400, "BadRequest")
    assert _error(_get(emu, "/ctsyncTest/gadgets?$filter=color%20eq%20'red'"))[:2] == (
        400,
        "Request_UnsupportedQuery",
    )


def test_skip_and_search_are_refused(emu: Emulator) -> None:
    assert _get(emu, "/ctsyncTest/widgets?$skip=10").status == 400
    assert _get(emu, "/ctsyncTest/widgets?$search=%22name:x%22").status == 400


def test_select_through_the_route(emu: Emulator) -> None:
    body = _get(emu, "/ctsyncTest/gadgets?$select=Name,size&$top=2").json()
    assert body["value"] == [{"name": "Widget 000", "size": 0}, {"name": "Widget 001", "size": 1}]
    status, code, _ = _error(_get(emu, "/ctsyncTest/gadgets?$select=colour"))
    assert (status, code) == (400, "Request_BadRequest")


def test_partner_list_filters_through_the_policy_route(emu: Emulator) -> None:
    contoso = emu.tenant("contoso")
    headers = {**_headers(emu), "content-type": "application/json"}
    for name in ("fabrikam", "tailspin"):
        body = json.dumps({"tenantId": emu.tenant(name).id}).encode()
        created = emu.handle(
            EmuRequest(
                "POST",
                "https://graph.microsoft.com/v1.0/policies/crossTenantAccessPolicy/partners",
                headers,
                body,
            )
        )
        assert created.status == 201
    target = emu.tenant("tailspin").id.upper()
    url = f"/policies/crossTenantAccessPolicy/partners?$filter=tenantId%20eq%20'{target}'"
    body = _get(emu, url).json()
    assert [p["tenantId"] for p in body["value"]] == [target.lower()]
    assert contoso.id not in {p["tenantId"] for p in body["value"]}
