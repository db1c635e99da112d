"""Application templates, applications, service principals and appRoleAssignedTo."""

from __future__ import annotations

from typing import Any

import pytest

from ctsync.emulator import Emulator
from tests.conformance import assert_conforms
from tests.emulator.conftest import HttpFor
from tests.emulator.cts_helpers import (
    CTS_TEMPLATE,
    NON_GALLERY_TEMPLATE,
    client_with,
    error_of,
    instantiate,
)

CTS_HOMEPAGE = (
    "https://account.activedirectory.windowsazure.com:444/applications/default.aspx"
    "?metadata=aad2aadsync|ISV9.1|primary|z"
)
EVENTUAL = {"ConsistencyLevel": "eventual"}
#: The tenant owning Microsoft's first-party apps (their appOwnerOrganizationId).
MICROSOFT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"


def _own(service_principals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tenant's own service principals: without Microsoft's (Microsoft Graph's is in every
    tenant)."""
    return [sp for sp in service_principals if sp["appOwnerOrganizationId"] != MICROSOFT]


def _user_id(http_for: HttpFor, upn: str) -> str:
    user_id: str = http_for("contoso").get(f"/users/{upn}").json()["id"]
    return user_id


def _group_id(http_for: HttpFor, name: str) -> str:
    query = {"$filter": f"displayName eq '{name}'"}
    group_id: str = http_for("contoso").get("/groups", params=query).json()["value"][0]["id"]
    return group_id


# -- instantiate -----------------------------------------------------------------------------


def test_instantiate_the_cts_template_as_documented(demo: Emulator, http_for: HttpFor) -> None:
    body = instantiate(http_for("contoso"), "Fabrikam")
    assert body["@odata.context"] == (
        "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.applicationServicePrincipal"
    )
    assert set(body) == {"@odata.context", "application", "servicePrincipal"}
    assert_conforms("applicationServicePrincipal", body)
    app, sp = body["application"], body["servicePrincipal"]
    assert_conforms("application", app)
    assert_conforms("servicePrincipal", sp)
    assert app["applicationTemplateId"] == sp["applicationTemplateId"] == CTS_TEMPLATE
    assert app["appId"] == sp["appId"]
    assert app["displayName"] == sp["displayName"] == "Fabrikam"
    assert sp["appRoleAssignmentRequired"] is True
    assert sp["servicePrincipalType"] == "Application"
    assert sp["tags"] == ["WindowsAzureActiveDirectoryIntegratedApp"]
    assert sp["homepage"] == CTS_HOMEPAGE
    assert app["web"]["homePageUrl"] == CTS_HOMEPAGE
    assert sp["appOwnerOrganizationId"] == demo.tenant("contoso").id
    [role] = sp["appRoles"]
    assert role == {
        "allowedMemberTypes": ["User"],
        "description": "msiam_access",
        "displayName": "msiam_access",
        "id": role["id"],
        "isEnabled": True,
        "origin": "Application",
        "value": None,
    }
    assert app["appRoles"] == [role]
    # The instantiating client owns both objects.
    contoso = demo.tenant("contoso")
    client = next(iter(contoso.clients.values()))
    assert contoso.owners[sp["id"]] == [client.object_id]
    assert contoso.owners[app["id"]] == [client.object_id]


def test_instantiate_records_a_service_management_reference(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    response = graph.post(
        f"/applicationTemplates/{CTS_TEMPLATE}/instantiate",
        json={"displayName": "Fabrikam", "serviceManagementReference": "CHG-42"},
    )
    app = response.json()["application"]
    assert app["serviceManagementReference"] == "CHG-42"


def test_the_non_gallery_template_makes_a_plain_app(http_for: HttpFor) -> None:
    response = http_for("contoso").post(
        f"/applicationTemplates/{NON_GALLERY_TEMPLATE}/instantiate", json={"displayName": "Plain"}
    )
    assert response.status_code == 201
    sp = response.json()["servicePrincipal"]
    assert sp["applicationTemplateId"] == NON_GALLERY_TEMPLATE
    assert sp["homepage"] is None
    assert_conforms("servicePrincipal", sp)


@pytest.mark.parametrize(
    ("template", "body", "status"),
    [
        ("11111111-2222-4333-8444-555555555555", {"displayName": "X"}, 404),
        (CTS_TEMPLATE, {}, 400),
        (CTS_TEMPLATE, {"displayName": "  "}, 400),
        (CTS_TEMPLATE, {"displayName": 5}, 400),
        (CTS_TEMPLATE, {"displayName": "X", "tags": []}, 400),
    ],
)
def test_bad_instantiations(
    http_for: HttpFor, template: str, body: dict[str, Any], status: int
) -> None:
    graph = http_for("contoso")
    response = graph.post(f"/applicationTemplates/{template}/instantiate", json=body)
    assert response.status_code == status
    error_of(response)
    assert _own(graph.get("/servicePrincipals").json()["value"]) == []


def test_application_templates_can_be_read(http_for: HttpFor) -> None:
    graph = http_for("contoso")
    template = graph.get(f"/applicationTemplates/{CTS_TEMPLATE}")
    assert template.status_code == 200
    assert_conforms("applicationTemplate", template.json())
    listed = graph.get("/applicationTemplates").json()["value"]
    assert {t["id"] for t in listed} == {CTS_TEMPLATE, NON_GALLERY_TEMPLATE}
    assert (
        graph.get("/applicationTemplates/11111111-2222-4333-8444-555555555555").status_code == 404
    )


def test_instantiate_needs_an_application_write_permission(demo: Emulator) -> None:
    with client_with(demo, "contoso", ["Application.Read.All"]) as reader:
        response = reader.post(
            f"/applicationTemplates/{CTS_TEMPLATE}/instantiate", json={"displayName": "X"}
        )
        assert response.status_code == 403
        assert error_of(response)["code"] == "Authorization_RequestDenied"


def test_new_objects_replicate_before_they_can_be_read(demo: Emulator, http_for: HttpFor) -> None:
    demo.traffic.configure(demo.faults.merged({"replication_lag": 3.0}))
    graph = http_for("contoso")
    body = instantiate(graph)
    sp, app = body["servicePrincipal"], body["application"]
    for path in (
        f"/servicePrincipals/{sp['id']}",
        f"/servicePrincipals(appId='{sp['appId']}')",
        f"/applications/{app['id']}",
        f"/servicePrincipals/{sp['id']}/appRoleAssignedTo",
    ):
        missing = graph.get(path)
        assert missing.status_code == 404, path
        assert error_of(missing)["code"] == "Request_ResourceNotFound"
    assert graph.get("/applications").json()["value"] == []
    demo.clock.advance(3.0)
    assert graph.get(f"/servicePrincipals/{sp['id']}").status_code == 200
    assert graph.get(f"/applications/{app['id']}").status_code == 200


# -- service principals ----------------------------------------------------------------------


@pytest.fixture
def three(http_for: HttpFor) -> list[dict[str, Any]]:
    graph = http_for("contoso")
    made = [
        instantiate(graph, name)["servicePrincipal"] for name in ("Fabrikam", "Tailspin", "Fab Two")
    ]
    graph.post(
        f"/applicationTemplates/{NON_GALLERY_TEMPLATE}/instantiate", json={"displayName": "Other"}
    )
    return made


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("displayName eq 'fabrikam'", ["Fabrikam"]),
        ("startswith(displayName, 'Fab')", ["Fab Two", "Fabrikam"]),
        (f"applicationTemplateId eq '{CTS_TEMPLATE}'", ["Fab Two", "Fabrikam", "Tailspin"]),
        (
            "tags/any(t: t eq 'WindowsAzureActiveDirectoryCustomSingleSignOnApplication')",
            ["Other"],
        ),
    ],
)
def test_service_principal_filters(
    http_for: HttpFor, three: list[dict[str, Any]], query: str, expected: list[str]
) -> None:
    body = http_for("contoso").get("/servicePrincipals", params={"$filter": query}).json()
    assert sorted(s["displayName"] for s in body["value"]) == expected
    for sp in body["value"]:
        assert_conforms("servicePrincipal", sp)


def test_service_principal_by_app_id_and_select(
    http_for: HttpFor, three: list[dict[str, Any]]
) -> None:
    graph = http_for("contoso")
    app_id = three[1]["appId"]
    listed = graph.get("/servicePrincipals", params={"$filter": f"appId eq '{app_id}'"}).json()
    assert [s["displayName"] for s in listed["value"]] == ["Tailspin"]
    one = graph.get(f"/servicePrincipals(appId='{app_id}')").json()
    assert one["id"] == three[1]["id"]
    selected = graph.get(
        f"/servicePrincipals/{three[1]['id']}",
        params={"$select": "id,appRoles,customSecurityAttributes"},
    ).json()
    assert set(selected) == {"@odata.context", "id", "appRoles", "customSecurityAttributes"}
    assert selected["customSecurityAttributes"] is None
    assert graph.get("/servicePrincipals", params={"$select": "nope"}).status_code == 400


def test_advanced_service_principal_queries(http_for: HttpFor, three: list[dict[str, Any]]) -> None:
    graph = http_for("contoso")
    query = {"$filter": "endswith(displayName, 'kam')"}
    assert graph.get("/servicePrincipals", params=query).status_code == 400
    body = graph.get(
        "/servicePrincipals", params={**query, "$count": "true"}, headers=EVENTUAL
    ).json()
    assert [s["displayName"] for s in body["value"]] == ["Fabrikam"]
    assert body["@odata.count"] == 1


def test_service_principals_page(http_for: HttpFor, three: list[dict[str, Any]]) -> None:
    graph = http_for("contoso")
    # Four of the tenant's own and Microsoft Graph's.
    first = graph.get("/servicePrincipals", params={"$top": "3"}).json()
    assert len(first["value"]) == 3
    second = graph.get(first["@odata.nextLink"]).json()
    assert len(second["value"]) == 2
    assert "@odata.nextLink" not in second


def test_patch_a_service_principal(http_for: HttpFor, three: list[dict[str, Any]]) -> None:
    graph = http_for("contoso")
    path = f"/servicePrincipals/{three[0]['id']}"
    changes = {
        "tags": ["WindowsAzureActiveDirectoryIntegratedApp", "ctsync:link=contoso-fabrikam"],
        "notes": "managed by ctsync",
        "appRoleAssignmentRequired": True,
    }
    assert graph.patch(path, json=changes).status_code == 204
    got = graph.get(path).json()
    assert got["tags"] == changes["tags"]
    assert got["notes"] == "managed by ctsync"
    tagged = graph.get(
        "/servicePrincipals", params={"$filter": "tags/any(t: t eq 'ctsync:link=contoso-fabrikam')"}
    ).json()
    assert [s["id"] for s in tagged["value"]] == [three[0]["id"]]
    for bad in ({"appId": "x"}, {"bogus": 1}, {"tags": "one"}, {"accountEnabled": "yes"}):
        response = graph.patch(path, json=bad)
        assert response.status_code == 400, bad
        error_of(response)


def test_delete_a_service_principal_keeps_its_application(
    demo: Emulator, http_for: HttpFor, three: list[dict[str, Any]]
) -> None:
    graph = http_for("contoso")
    sp = three[0]
    assert graph.delete(f"/servicePrincipals/{sp['id']}").status_code == 204
    assert graph.get(f"/servicePrincipals/{sp['id']}").status_code == 404
    assert graph.delete(f"/servicePrincipals/{sp['id']}").status_code == 404
    apps = graph.get("/applications", params={"$filter": f"appId eq '{sp['appId']}'"}).json()
    assert len(apps["value"]) == 1


# -- applications ----------------------------------------------------------------------------


def test_applications_list_get_patch(http_for: HttpFor, three: list[dict[str, Any]]) -> None:
    graph = http_for("contoso")
    response = graph.get("/applications", params={"$filter": "displayName eq 'Tailspin'"})
    assert response.headers["x-ms-resource-unit"] == "2"
    [app] = response.json()["value"]
    assert_conforms("application", app)
    assert graph.get(f"/applications(appId='{app['appId']}')").json()["id"] == app["id"]
    path = f"/applications/{app['id']}"
    assert graph.patch(path, json={"tags": ["ctsync"], "notes": "n"}).status_code == 204
    got = graph.get(path).json()
    assert (got["tags"], got["notes"]) == (["ctsync"], "n")
    assert_conforms("application", got)
    tagged = graph.get("/applications", params={"$filter": "tags/any(t: t eq 'ctsync')"}).json()
    assert [a["id"] for a in tagged["value"]] == [app["id"]]
    assert graph.patch(path, json={"appId": "x"}).status_code == 400


def test_deleting_an_application_deletes_its_service_principal(
    demo: Emulator, http_for: HttpFor, three: list[dict[str, Any]]
) -> None:
    graph = http_for("contoso")
    sp = three[0]
    [app] = graph.get("/applications", params={"$filter": f"appId eq '{sp['appId']}'"}).json()[
        "value"
    ]
    root = f"/servicePrincipals/{sp['id']}/synchronization"
    graph.post(f"{root}/jobs", json={"templateId": "Azure2Azure"})
    assert graph.delete(f"/applications/{app['id']}").status_code == 204
    assert graph.get(f"/applications/{app['id']}").status_code == 404
    assert graph.get(f"/servicePrincipals/{sp['id']}").status_code == 404
    assert sp["id"] not in demo.tenant("contoso").synchronization
    assert graph.delete(f"/applications/{app['id']}").status_code == 404


def test_owned_by_reads_everything_but_writes_only_its_own(
    demo: Emulator, three: list[dict[str, Any]]
) -> None:
    with client_with(demo, "contoso", ["Application.ReadWrite.OwnedBy"]) as graph:
        others = f"/servicePrincipals/{three[0]['id']}"
        assert graph.get(others).status_code == 200
        assert len(_own(graph.get("/servicePrincipals").json()["value"])) == 4
        assert graph.patch(others, json={"notes": "x"}).status_code == 403
        assert graph.delete(others).status_code == 403
        mine = instantiate(graph, "Mine")
        assert (
            graph.patch(
                f"/servicePrincipals/{mine['servicePrincipal']['id']}", json={"notes": "x"}
            ).status_code
            == 204
        )
        assert graph.delete(f"/applications/{mine['application']['id']}").status_code == 204


def test_tenant_b_cannot_see_tenant_a_service_principals(
    http_for: HttpFor, three: list[dict[str, Any]]
) -> None:
    other = http_for("fabrikam")
    sp = three[0]
    assert other.get(f"/servicePrincipals/{sp['id']}").status_code == 404
    assert _own(other.get("/servicePrincipals").json()["value"]) == []
    assert other.get("/applications").json()["value"] == []
    assert other.get(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo").status_code == 404
    assert other.delete(f"/servicePrincipals/{sp['id']}").status_code == 404
    assert http_for("contoso").get(f"/servicePrincipals/{sp['id']}").status_code == 200


# -- appRoleAssignedTo -----------------------------------------------------------------------


@pytest.fixture
def sp(http_for: HttpFor) -> dict[str, Any]:
    made: dict[str, Any] = instantiate(http_for("contoso"))["servicePrincipal"]
    return made


def _assign(http_for: HttpFor, sp: dict[str, Any], principal: str, **overrides: str) -> Any:
    body = {"appRoleId": sp["appRoles"][0]["id"], "resourceId": sp["id"], "principalId": principal}
    body.update(overrides)
    return http_for("contoso").post(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo", json=body)


def test_assign_users_and_groups(http_for: HttpFor, sp: dict[str, Any]) -> None:
    adele = _user_id(http_for, "adele@contoso.com")
    pilot = _group_id(http_for, "CTS-Pilot")
    user_assignment = _assign(http_for, sp, adele)
    assert user_assignment.status_code == 201
    body = user_assignment.json()
    assert body["@odata.context"].endswith(
        f"$metadata#servicePrincipals('{sp['id']}')/appRoleAssignedTo/$entity"
    )
    assert body["principalType"] == "User"
    assert body["principalDisplayName"] == "Adele Vance"
    assert body["resourceDisplayName"] == "Fabrikam"
    assert body["resourceId"] == sp["id"]
    assert body["appRoleId"] == sp["appRoles"][0]["id"]
    assert body["deletedDateTime"] is None
    assert len(body["id"]) == 43
    assert_conforms("appRoleAssignment", body)
    group_assignment = _assign(http_for, sp, pilot).json()
    assert group_assignment["principalType"] == "Group"
    assert group_assignment["principalDisplayName"] == "CTS-Pilot"

    graph = http_for("contoso")
    listed = graph.get(
        f"/servicePrincipals/{sp['id']}/appRoleAssignedTo", params={"$top": "1"}
    ).json()
    assert len(listed["value"]) == 1
    rest = graph.get(listed["@odata.nextLink"]).json()
    ids = {listed["value"][0]["id"], rest["value"][0]["id"]}
    assert ids == {body["id"], group_assignment["id"]}
    for item in (*listed["value"], *rest["value"]):
        assert_conforms("appRoleAssignment", item)

    path = f"/servicePrincipals/{sp['id']}/appRoleAssignedTo/{body['id']}"
    assert graph.get(path).json()["principalId"] == adele
    assert graph.delete(path).status_code == 204
    assert graph.delete(path).status_code == 404
    remaining = graph.get(f"/servicePrincipals/{sp['id']}/appRoleAssignedTo").json()["value"]
    assert [a["id"] for a in remaining] == [group_assignment["id"]]


def test_duplicate_assignment_is_refused(http_for: HttpFor, sp: dict[str, Any]) -> None:
    adele = _user_id(http_for, "adele@contoso.com")
    assert _assign(http_for, sp, adele).status_code == 201
    again = _assign(http_for, sp, adele.upper())
    assert again.status_code == 400
    error = error_of(again)
    assert error["code"] == "Request_BadRequest"
    assert error["message"] == "Permission being assigned already exists on the object."


@pytest.mark.parametrize(
    ("overrides", "status", "fragment"),
    [
        ({"appRoleId": "00000000-0000-0000-0000-000000000000"}, 400, "not found on application"),
        ({"appRoleId": "11111111-2222-4333-8444-555555555555"}, 400, "not found on application"),
        ({"resourceId": "11111111-2222-4333-8444-555555555555"}, 400, "resourceId"),
        ({"principalId": "11111111-2222-4333-8444-555555555555"}, 404, "does not exist"),
        ({"appRoleId": "not-a-guid"}, 400, "Edm.Guid"),
    ],
)
def test_bad_assignments(
    http_for: HttpFor, sp: dict[str, Any], overrides: dict[str, str], status: int, fragment: str
) -> None:
    adele = _user_id(http_for, "adele@contoso.com")
    response = _assign(http_for, sp, adele, **overrides)
    assert response.status_code == status
    assert fragment in error_of(response)["message"]


def test_assignment_permissions(demo: Emulator, http_for: HttpFor, sp: dict[str, Any]) -> None:
    adele = _user_id(http_for, "adele@contoso.com")
    body = {"appRoleId": sp["appRoles"][0]["id"], "resourceId": sp["id"], "principalId": adele}
    path = f"/servicePrincipals/{sp['id']}/appRoleAssignedTo"
    # Writing needs AppRoleAssignment.ReadWrite.All *and* a permission to read the app.
    with client_with(demo, "contoso", ["AppRoleAssignment.ReadWrite.All"]) as writer_only:
        assert writer_only.post(path, json=body).status_code == 403
    with client_with(demo, "contoso", ["Application.Read.All"]) as reader_only:
        assert reader_only.post(path, json=body).status_code == 403
        assert reader_only.get(path).status_code == 200
    with client_with(
        demo, "contoso", ["AppRoleAssignment.ReadWrite.All", "Application.Read.All"]
    ) as both:
        assert both.post(path, json=body).status_code == 201
