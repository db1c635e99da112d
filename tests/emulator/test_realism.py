"""Where a real tenant surprises a client, the emulator does too: unknown path segments,
query options it would ignore, advanced queries, ``$expand``, the synchronization service's
own errors, undocumented extra properties, and ``ctsync emulator serve``'s defaults
(replication lag, extra properties)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from ctsync.cli import cli
from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport, FaultProfile
from ctsync.emulator.core.extras import EXTRA_PROPERTIES
from ctsync.emulator.core.paths import resolve, unknown_segment
from tests.conformance import assert_conforms, problems
from tests.emulator.conftest import GRAPH, HttpFor
from tests.emulator.cts_helpers import PARTNERS, error_of, instantiate

EVENTUAL = {"ConsistencyLevel": "eventual"}


def _client(emu: Emulator, tenant: str = "contoso") -> httpx.Client:
    token = EmulatorCredential(emu, tenant).get_token("https://graph.microsoft.com/.default")
    return httpx.Client(
        base_url=GRAPH,
        transport=EmulatorTransport(emu),
        headers={"authorization": f"Bearer {token.token}"},
    )


def _refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code, error
    message: str = error["message"]
    return message


# -- paths: 400 for what Graph does not have, 501 for what the emulator does not serve ------


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("/nothingHere", "nothingHere"),
        ("/users/{user}/nothingHere", "nothingHere"),
        ("/users/{user}/authentication/passwords", "passwords"),
        ("/servicePrincipals/{sp}/synchronization/bogus", "bogus"),
        ("/servicePrincipals(appId='x')/bogus", "bogus"),
        ("/policies/crossTenantAccessPolicy/partners/{tenant}/bogus", "bogus"),
        ("/tenantRelationships/findTenantByName(name='x')", "findTenantByName"),
        ("/auditLogs/provisioningLogs", "provisioningLogs"),
        ("/groups/{group}/$bogus", "$bogus"),
    ],
)
def test_a_path_graph_does_not_have_is_odatas_400(
    http_for: HttpFor, path: str, segment: str
) -> None:
    response = http_for("contoso").get(path.format(user="u1", sp="s1", tenant="t1", group="g1"))
    message = _refused(response, 400, "BadRequest")
    assert message == f"Resource not found for the segment '{segment}'."


@pytest.mark.parametrize(
    "path",
    [
        "/devices",
        "/subscribedSkus",
        "/users/u1/calendar/events",
        "/users/u1/memberOf",
        "/servicePrincipals/s1/owners",
        "/servicePrincipals/delta()",
        "/servicePrincipals/s1/synchronization",
        "/groups/g1/members/microsoft.graph.user",
        "/policies/authenticationMethodsPolicy",
        "/$metadata",
    ],
)
def test_a_real_graph_path_the_emulator_does_not_serve_is_501(http_for: HttpFor, path: str) -> None:
    response = http_for("contoso").get(path)
    message = _refused(response, 501, "NotImplemented")
    assert "does not implement" in message


def test_the_path_rules_come_from_microsofts_metadata() -> None:
    data = json.loads(
        (
            __import__("importlib.resources").resources.files("ctsync.emulator.core")
            / "graph_v1_paths.json"
        ).read_text()
    )
    assert data["source"].startswith("microsoftgraph/msgraph-metadata clean_v10_metadata/")
    assert data["roots"]["users"] == ["user", True]
    assert data["roots"]["policies"] == ["policyRoot", False]
    # Bound operations, inherited navigation, keys in parentheses, casts.
    assert resolve("/servicePrincipals/s1/synchronization/jobs/j1/schema").type_name == (
        "synchronizationSchema"
    )
    assert (
        unknown_segment("/servicePrincipals/s1/synchronization/jobs/j1/schema/parseExpression")
        is None
    )
    assert unknown_segment("/users/u1/checkMemberGroups") is None  # directoryObject's action
    assert unknown_segment("/groups/g1/members/microsoft.graph.group/$count") is None
    assert unknown_segment("/users('u1')/authentication/methods") is None


def test_a_wrong_method_on_a_served_path_is_still_405(http_for: HttpFor) -> None:
    response = http_for("contoso").put(PARTNERS, json={})
    _refused(response, 405, "Request_BadRequest")


# -- query options: never silently ignored ----------------------------------------------------


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("$foo=1", "$foo"),
        ("select=id", "select"),  # Graph v1.0's directory wants the '$'
        ("filter=userType eq 'Member'", "filter"),
        ("api-version=2.0", "api-version"),
    ],
)
def test_an_unrecognized_query_argument_is_refused(
    http_for: HttpFor, query: str, name: str
) -> None:
    response = http_for("contoso").get(f"/users?{query}")
    message = _refused(response, 400, "Request_BadRequest")
    assert message == f"Unrecognized query argument specified: '{name}'."


def test_format_json_is_honoured_and_any_other_format_refused(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    assert graph.get("/users?$format=json&$top=1").status_code == 200
    assert graph.get("/organization?$format=application/json").status_code == 200
    _refused(graph.get("/users?$format=xml"), 406, "NotAcceptable")


@pytest.mark.parametrize(
    "path",
    [
        "/organization?$levels=2",
        "/policies/crossTenantAccessPolicy/default?$top=1",
        "/policies/crossTenantAccessPolicy/default?$filter=isServiceDefault eq true",
        "/policies/crossTenantAccessPolicy?$orderby=displayName",
        "/policies/crossTenantAccessPolicy/partners?$apply=groupby((tenantId))",
    ],
)
def test_an_option_the_route_would_ignore_is_refused(http_for: HttpFor, path: str) -> None:
    message = _refused(http_for("contoso").get(path), 400, "BadRequest")
    assert "is not supported on this resource" in message


def test_writes_take_no_query_options(http_for: HttpFor, demo: Emulator) -> None:
    fabrikam = demo.tenant("fabrikam").id
    response = http_for("contoso").post(f"{PARTNERS}?$select=tenantId", json={"tenantId": fabrikam})
    assert "POST request" in _refused(response, 400, "BadRequest")
    assert not demo.tenant("contoso").access_policy.partners


def test_search_on_directory_objects_needs_eventual_consistency(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    search = '/users?$search="displayName:Adele"'
    message = _refused(graph.get(search), 400, "Request_UnsupportedQuery")
    assert message == (
        "Request with $search query parameter only works through MSGraph with a special "
        "request header: 'ConsistencyLevel: eventual'"
    )
    # Graph would search; the emulator does not, and says so.
    _refused(graph.get(search, headers=EVENTUAL), 501, "NotImplemented")
    _refused(graph.get(f'{PARTNERS}?$search="x"'), 400, "Request_UnsupportedQuery")


# -- advanced queries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/users?$filter=userType eq 'Member'&$orderby=displayName",
        "/groups?$filter=startswith(displayName,'S')&$orderby=displayName",
        "/servicePrincipals?$filter=accountEnabled eq true&$orderby=displayName",
        "/applications?$filter=startswith(displayName,'F')&$orderby=displayName",
    ],
)
def test_filter_with_orderby_on_directory_objects_is_an_advanced_query(
    http_for: HttpFor, path: str
) -> None:
    graph = http_for("contoso")
    message = _refused(graph.get(path), 400, "Request_UnsupportedQuery")
    assert message == "Sorting not supported for current query."
    # ConsistencyLevel alone is not enough: $count=true too.
    _refused(graph.get(path, headers=EVENTUAL), 400, "Request_UnsupportedQuery")
    advanced = graph.get(path + "&$count=true", headers=EVENTUAL)
    assert advanced.status_code == 200, advanced.text
    names = [item["displayName"] for item in advanced.json()["value"]]
    assert names == sorted(names, key=str.casefold)
    assert advanced.json()["@odata.count"] == len(names)


def test_filter_with_orderby_elsewhere_needs_no_advanced_query(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    path = "/reports/authenticationMethods/userRegistrationDetails"
    response = graph.get(f"{path}?$filter=isMfaRegistered eq false&$orderby=userPrincipalName")
    assert response.status_code == 200, response.text


def test_sorting_applications_and_service_principals_is_advanced_only(
    http_for: HttpFor,
) -> None:
    graph = http_for("contoso")
    instantiate(graph, "Zeta")
    instantiate(graph, "alpha")
    for path in ("/servicePrincipals", "/applications"):
        message = _refused(
            graph.get(f"{path}?$orderby=displayName"), 400, "Request_UnsupportedQuery"
        )
        assert message.startswith("Sorting by property 'displayName' is not supported because")
        answer = graph.get(f"{path}?$orderby=displayName desc&$count=true", headers=EVENTUAL)
        assert answer.status_code == 200, answer.text
        names = [x["displayName"] for x in answer.json()["value"]]
        # Microsoft Graph's service principal is in every tenant.
        assert names == (
            ["Zeta", "Microsoft Graph", "alpha"]
            if path == "/servicePrincipals"
            else ["Zeta", "alpha"]
        )


def test_advanced_only_operators_say_which_parameters_are_missing(http_for: HttpFor) -> None:
    response = http_for("contoso").get("/users?$filter=endswith(mail,'@contoso.com')")
    message = _refused(response, 400, "Request_UnsupportedQuery")
    assert message.startswith("Operator 'endsWith' is not supported because the required")


# -- $expand -----------------------------------------------------------------------------------


def _partner_with_sync(emu: Emulator) -> tuple[httpx.Client, str]:
    graph = _client(emu, "fabrikam")
    contoso = emu.tenant("contoso").id
    assert graph.post(PARTNERS, json={"tenantId": contoso}).status_code == 201
    body = {"displayName": "Contoso", "userSyncInbound": {"isSyncAllowed": True}}
    assert graph.put(f"{PARTNERS}/{contoso}/identitySynchronization", json=body).status_code == 204
    return graph, contoso


def test_partners_expand_their_identity_synchronization(demo: Emulator) -> None:
    graph, contoso = _partner_with_sync(demo)
    tailspin = demo.tenant("tailspin").id
    assert graph.post(PARTNERS, json={"tenantId": tailspin}).status_code == 201

    # Microsoft's example: $select=tenantId&$expand=identitySynchronization.
    listed = graph.get(f"{PARTNERS}?$select=tenantId&$expand=identitySynchronization")
    assert listed.status_code == 200, listed.text
    by_tenant = {p["tenantId"]: p for p in listed.json()["value"]}
    assert set(by_tenant[contoso]) == {"tenantId", "identitySynchronization"}
    assert by_tenant[contoso]["identitySynchronization"] == {
        "tenantId": contoso,
        "displayName": "Contoso",
        "userSyncInbound": {"isSyncAllowed": True},
    }
    assert by_tenant[tailspin]["identitySynchronization"] is None

    one = graph.get(f"{PARTNERS}/{contoso}?$expand=identitySynchronization")
    assert one.status_code == 200, one.text
    assert one.json()["identitySynchronization"]["displayName"] == "Contoso"
    assert_conforms("crossTenantAccessPolicyConfigurationPartner", one.json())
    # Without $expand the navigation property stays away.
    assert "identitySynchronization" not in graph.get(f"{PARTNERS}/{contoso}").json()


def test_service_principals_expand_app_role_assignments(demo: Emulator) -> None:
    graph = _client(demo)
    sp = instantiate(graph)["servicePrincipal"]
    role = sp["appRoles"][0]["id"]
    user = next(iter(demo.tenant("contoso").users))
    assigned = graph.post(
        f"/servicePrincipals/{sp['id']}/appRoleAssignedTo",
        json={"principalId": user, "resourceId": sp["id"], "appRoleId": role},
    )
    assert assigned.status_code == 201, assigned.text

    one = graph.get(f"/servicePrincipals/{sp['id']}?$select=displayName&$expand=appRoleAssignedTo")
    assert one.status_code == 200, one.text
    assert set(one.json()) == {"@odata.context", "displayName", "appRoleAssignedTo"}
    assert [a["principalId"] for a in one.json()["appRoleAssignedTo"]] == [user]
    listed = graph.get("/servicePrincipals?$expand=appRoleAssignedTo").json()["value"]
    # The configuration's, then Microsoft Graph's (in every tenant, with no grants yet).
    assert [len(s["appRoleAssignedTo"]) for s in listed] == [1, 0]


def test_an_expanded_directory_relationship_shows_at_most_20(demo: Emulator) -> None:
    tenant = demo.tenant("contoso")
    group = next(g for g in tenant.groups.values() if g["displayName"] == "All Employees")
    tenant.group_members[group["id"]] = list(tenant.users)[:12] * 2  # 24 entries
    graph = _client(demo)
    one = graph.get(f"/groups/{group['id']}?$expand=members")
    assert one.status_code == 200, one.text
    assert len(one.json()["members"]) == 20
    assert "members@odata.nextLink" not in one.json()
    listed = graph.get("/groups?$expand=members&$select=displayName").json()["value"]
    assert {len(g["members"]) for g in listed if g["displayName"] == "All Employees"} == {20}


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        (
            "/servicePrincipals?$expand=nope",
            400,
            "BadRequest",
            "Could not find a property named 'nope' on type 'microsoft.graph.servicePrincipal'.",
        ),
        (
            "/groups?$expand=displayName",
            400,
            "BadRequest",
            "Property 'displayName' on type 'microsoft.graph.group' is not a navigation "
            "property or complex property. Only navigation properties can be expanded.",
        ),
        # On routes that expand nothing, the same answers from the type the path addresses.
        (
            "/users?$expand=bogus",
            400,
            "BadRequest",
            "Could not find a property named 'bogus' on type 'microsoft.graph.user'.",
        ),
        ("/users?$expand=manager", 501, "NotImplemented", None),
        ("/applications?$expand=owners", 501, "NotImplemented", None),
        ("/servicePrincipals?$expand=owners", 501, "NotImplemented", None),
        ("/groups?$expand=members($select=id)", 501, "NotImplemented", None),
        ("/groups?$expand=*", 501, "NotImplemented", None),
        ("/policies/crossTenantAccessPolicy?$expand=partners", 501, "NotImplemented", None),
        (
            "/policies/crossTenantAccessPolicy/default?$expand=foo",
            400,
            "BadRequest",
            "Could not find a property named 'foo' on type "
            "'microsoft.graph.crossTenantAccessPolicyConfigurationDefault'.",
        ),
    ],
)
def test_an_expand_the_route_does_not_serve_gets_graphs_answer(
    http_for: HttpFor, path: str, status: int, code: str, message: str | None
) -> None:
    got = _refused(http_for("contoso").get(path), status, code)
    if message is not None:
        assert got == message


def test_expand_is_not_served_in_an_advanced_query(http_for: HttpFor) -> None:
    response = http_for("contoso").get("/groups?$expand=members&$count=true", headers=EVENTUAL)
    _refused(response, 400, "Request_UnsupportedQuery")


# -- the synchronization service's own answers -------------------------------------------------


def test_a_method_the_synchronization_service_lacks_is_its_404_unknown_error(
    demo: Emulator,
) -> None:
    graph = _client(demo)
    sp = instantiate(graph)["servicePrincipal"]["id"]
    job = graph.post(
        f"/servicePrincipals/{sp}/synchronization/jobs", json={"templateId": "Azure2Azure"}
    )
    job_id = job.json()["id"]

    # The SDKs' PATCH of a schema (Graph documents PUT).
    response = graph.patch(f"/servicePrincipals/{sp}/synchronization/jobs/{job_id}/schema", json={})
    message = _refused(response, 404, "UnknownError")
    assert json.loads(message) == {
        "Message": "No HTTP resource was found that matches the request URI "
        f"'https://syncfabric.windowsazure.com/api/servicePrincipals('{sp}')/synchronization/"
        f"jobs('{job_id}')/schema?api-version=2.0'."
    }
    deleted = graph.delete(f"/servicePrincipals/{sp}/synchronization/secrets")
    _refused(deleted, 404, "UnknownError")
    # A real operation the emulator does not serve is still 501.
    parse = graph.post(
        f"/servicePrincipals/{sp}/synchronization/jobs/{job_id}/schema/parseExpression", json={}
    )
    _refused(parse, 501, "NotImplemented")


# -- undocumented extra properties -------------------------------------------------------------


def _with_extras() -> Emulator:
    return Emulator(scenario="demo", faults=FaultProfile(extra_properties=True))


def test_in_process_answers_carry_no_extra_properties(demo: Emulator) -> None:
    graph = _client(demo)
    created = instantiate(graph)
    for type_name, key in (
        ("servicePrincipal", "servicePrincipal"),
        ("application", "application"),
    ):
        assert not set(EXTRA_PROPERTIES[type_name]) & set(created[key])
    assert_conforms("servicePrincipal", created["servicePrincipal"])


def test_extra_properties_show_on_the_objects_real_tenants_show_them_on() -> None:
    emu = _with_extras()
    graph = _client(emu)
    created = instantiate(graph)
    sp, app = created["servicePrincipal"], created["application"]
    assert sp["publisherName"] == emu.tenant("contoso").display_name
    assert sp["isAuthorizationServiceEnabled"] is False
    assert app["windows"] == {"packageSid": None, "redirectUris": []}

    shown: dict[str, Any] = {
        "servicePrincipal": graph.get(f"/servicePrincipals/{sp['id']}").json(),
        "application": graph.get("/applications").json()["value"][0],
    }
    partner_graph, contoso = _partner_with_sync(emu)
    shown["crossTenantAccessPolicyConfigurationPartner"] = partner_graph.get(
        f"{PARTNERS}?$expand=identitySynchronization"
    ).json()["value"][0]
    shown["crossTenantIdentitySyncPolicyPartner"] = partner_graph.get(
        f"{PARTNERS}/{contoso}/identitySynchronization"
    ).json()
    shown["expanded"] = shown["crossTenantAccessPolicyConfigurationPartner"][
        "identitySynchronization"
    ]
    for type_name in EXTRA_PROPERTIES:
        assert set(EXTRA_PROPERTIES[type_name]) <= set(shown[type_name]), type_name
        # The conformance check knows them: problems unless a test says it expects them.
        assert problems(type_name, shown[type_name])
        assert_conforms(type_name, shown[type_name], allow_extras=True)
    assert set(EXTRA_PROPERTIES["crossTenantIdentitySyncPolicyPartner"]) <= set(shown["expanded"])


def test_selected_properties_come_without_extras() -> None:
    graph = _client(_with_extras())
    sp = instantiate(graph)["servicePrincipal"]
    one = graph.get(f"/servicePrincipals/{sp['id']}?$select=id,displayName").json()
    assert set(one) == {"@odata.context", "id", "displayName"}


def test_extra_properties_can_be_switched_on_and_off_like_any_fault(demo: Emulator) -> None:
    assert FaultProfile.parse("extra-properties=on").extra_properties is True
    assert FaultProfile.parse("extra-properties=off", base=FaultProfile(extra_properties=True)) == (
        FaultProfile()
    )
    demo.traffic.configure(demo.faults.merged({"extra_properties": True}))
    sp = instantiate(_client(demo))["servicePrincipal"]
    assert "errorUrl" in sp
    with pytest.raises(ValueError, match="extra_properties must be true or false"):
        demo.faults.merged({"extra_properties": "yes"})


# -- ctsync emulator serve: realism on by default ---------------------------------------------


def _served_emulator(monkeypatch: pytest.MonkeyPatch, *args: str) -> Emulator:
    made: list[Emulator] = []

    def fake_serve(emulator: Emulator, **kwargs: Any) -> None:
        made.append(emulator)

    monkeypatch.setattr("ctsync.emulator.server.serve", fake_serve)
    result = CliRunner().invoke(cli, ["emulator", "serve", "--port", "0", "--no-tls", *args])
    assert result.exit_code == 0, result.output
    return made[-1]


def test_serve_has_replication_lag_and_extra_properties_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = _served_emulator(monkeypatch)
    assert emu.faults.replication_lag == 2.0
    assert emu.faults.extra_properties is True
    # The platform's behaviour survives a control reset (injected faults do not).
    emu.traffic.configure(emu.faults.merged({"rate_429": 0.5}))
    emu.reset()
    assert emu.faults == FaultProfile(replication_lag=2.0, extra_properties=True)
    # In-process the same emulator has neither.
    assert Emulator().faults == FaultProfile()
    assert Emulator().reset_faults == FaultProfile()


def test_serve_options_turn_the_realism_off(monkeypatch: pytest.MonkeyPatch) -> None:
    emu = _served_emulator(monkeypatch, "--replication-lag", "0", "--no-extra-properties")
    assert emu.faults == FaultProfile()
    emu.reset()
    assert emu.faults == FaultProfile()


def test_a_lag_in_faults_wins_until_a_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    emu = _served_emulator(monkeypatch, "--replication-lag", "1", "--faults", "lag=5s,429=1%")
    assert emu.faults.replication_lag == 5.0
    assert emu.faults.rate_429 == 0.01
    assert emu.faults.extra_properties is True  # --faults leaves what it does not name
    emu.reset()
    assert emu.faults.replication_lag == 1.0
    assert emu.faults.rate_429 == 0


def test_serve_refuses_a_negative_lag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ctsync.emulator.server.serve", lambda emulator, **kwargs: None)
    result = CliRunner().invoke(cli, ["emulator", "serve", "--replication-lag", "-1"])
    assert result.exit_code == 1
    assert "--replication-lag" in result.output


def test_a_new_object_is_invisible_for_the_lag_then_visible() -> None:
    """What serve's default does to a client: a just-created service principal answers 404
    (and its synchronization too) until the lag has passed on the emulator clock."""
    emu = Emulator(scenario="demo", faults=FaultProfile(replication_lag=2.0))
    graph = _client(emu)
    sp = instantiate(graph)["servicePrincipal"]["id"]
    assert graph.get(f"/servicePrincipals/{sp}").status_code == 404
    jobs = graph.post(
        f"/servicePrincipals/{sp}/synchronization/jobs", json={"templateId": "Azure2Azure"}
    )
    assert jobs.status_code == 404
    emu.clock.advance(2)
    assert graph.get(f"/servicePrincipals/{sp}").status_code == 200
    jobs = graph.post(
        f"/servicePrincipals/{sp}/synchronization/jobs", json={"templateId": "Azure2Azure"}
    )
    assert jobs.status_code == 201
    job = f"/servicePrincipals/{sp}/synchronization/jobs/{jobs.json()['id']}"
    # The new job replicates too: its reads and actions answer 404, the list leaves it out.
    assert graph.get(job).status_code == 404
    assert graph.post(f"{job}/start").status_code == 404
    assert graph.get(f"/servicePrincipals/{sp}/synchronization/jobs").json()["value"] == []
    emu.clock.advance(2)
    assert graph.get(job).status_code == 200
