"""One view of every client (core/clients.py): seeded clients and registered applications."""

from __future__ import annotations

from ctsync.emulator import Emulator
from ctsync.emulator.core.clients import find_client
from ctsync.emulator.core.first_party import (
    GRAPH_APP_ID,
    graph_app_role_id,
    microsoft_graph_service_principal,
)
from ctsync.emulator.services.applications import NON_GALLERY_TEMPLATE_ID, new_instance


def test_a_seeded_client_is_found_by_its_id_in_any_case() -> None:
    emu = Emulator(scenario="demo")
    tenant = emu.tenant("contoso")
    client = next(iter(tenant.clients.values()))

    view = find_client(tenant, client.client_id.upper())

    assert view is not None
    assert view.client_id == client.client_id
    assert view.object_id == client.object_id
    assert view.seeded
    assert [s.value for s in view.secrets] == [client.client_secret]
    assert view.roles == frozenset(client.permissions)
    assert find_client(tenant, "00000000-0000-0000-0000-00000000abcd") is None
    # A client is found in its own tenant only.
    assert find_client(emu.tenant("fabrikam"), client.client_id) is None


def test_an_application_signs_in_only_with_its_service_principal_and_gets_graph_grants() -> None:
    emu = Emulator(scenario="demo")
    tenant = emu.tenant("contoso")
    app, sp = new_instance(emu.ids, tenant, NON_GALLERY_TEMPLATE_ID, "tool", now=emu.clock.now())
    tenant.applications[app["id"]] = app
    assert find_client(tenant, app["appId"]) is None  # no service principal yet

    tenant.service_principals[sp["id"]] = sp
    graph = microsoft_graph_service_principal(tenant)
    role_id = graph_app_role_id("User.Read.All")
    assert role_id is not None
    tenant.app_role_assignments.setdefault(graph["id"], {})["x"] = {
        "id": "x",
        "appRoleId": role_id,
        "principalId": sp["id"],
        "resourceId": graph["id"],
    }

    view = find_client(tenant, app["appId"])

    assert view is not None
    assert view.object_id == sp["id"]
    assert view.application_object_id == app["id"]
    assert view.roles == frozenset({"User.Read.All"})
    assert view.secrets == ()
    assert view.enabled
    sp["accountEnabled"] = False
    disabled = find_client(tenant, app["appId"])
    assert disabled is not None
    assert not disabled.enabled
    assert graph["appId"] == GRAPH_APP_ID
    assert graph["id"] not in tenant.service_principals
