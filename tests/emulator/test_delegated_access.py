"""What Graph lets a signed-in user do: one of the operation's delegated scopes in ``scp`` and
a directory role the operation supports (``core/delegated_access.py``); app-only tokens keep
their application-permission check."""

from __future__ import annotations

import httpx
import pytest

from ctsync.emulator import Emulator
from ctsync.emulator.core.delegated_access import DELEGATED_RULES, rule_for
from ctsync.emulator.core.directory_roles import ROLE_TEMPLATES
from ctsync.emulator.services import all_routes
from tests.conformance import assert_conforms
from tests.emulator.signin_helpers import GRAPH_CLI_TOOLS_APP_ID, client, graph, sign_in

ADMIN = "lee@contoso.com"  # Global Administrator in the demo
SECURITY_ADMIN = "nestor@contoso.com"  # Security Administrator only
MEMBER = "adele@contoso.com"  # no directory role

PARTNERS = "/policies/crossTenantAccessPolicy/partners"
ADMIN_SCOPES = " ".join(
    f"https://graph.microsoft.com/{s}"
    for s in (
        "Policy.ReadWrite.CrossTenantAccess",
        "Policy.Read.All",
        "Synchronization.ReadWrite.All",
        "Application.ReadWrite.All",
        "User.Read.All",
        "UserAuthenticationMethod.Read.All",
        "AuditLog.Read.All",
    )
)


@pytest.fixture
def emu() -> Emulator:
    emu = Emulator(scenario="demo")
    # The organization consented to ctsync's scopes for Graph Command Line Tools.
    sign_in(
        emu,
        "contoso",
        ADMIN,
        client_id=GRAPH_CLI_TOOLS_APP_ID,
        scope=ADMIN_SCOPES,
        consent="organization",
    )
    return emu


def _as(emu: Emulator, user: str, client_id: str = GRAPH_CLI_TOOLS_APP_ID) -> httpx.Client:
    scope = (
        ADMIN_SCOPES
        if client_id == GRAPH_CLI_TOOLS_APP_ID
        else "https://graph.microsoft.com/.default"
    )
    return graph(
        emu, sign_in(emu, "contoso", user, client_id=client_id, scope=scope)["access_token"]
    )


def _denied(response: httpx.Response) -> bool:
    if response.status_code != 403:
        return False
    error = response.json()["error"]
    return (error["code"], error["message"]) == (
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )


def test_a_global_administrator_reaches_what_its_scopes_allow(emu: Emulator) -> None:
    fabrikam = emu.tenant("fabrikam").id
    with _as(emu, ADMIN) as g:
        created = g.post(PARTNERS, json={"tenantId": fabrikam})
        assert created.status_code == 201
        assert_conforms("crossTenantAccessPolicyConfigurationPartner", created.json())
        assert g.get(PARTNERS).status_code == 200
        assert g.get("/users").status_code == 200
        assert g.get("/auditLogs/provisioning").status_code == 200
        # No scope for groups in this token: refused whatever the role.
        assert _denied(g.get("/groups"))


def test_a_security_administrator_manages_partners_but_not_synchronization(
    emu: Emulator,
) -> None:
    fabrikam = emu.tenant("fabrikam").id
    with _as(emu, SECURITY_ADMIN) as g:
        assert g.post(PARTNERS, json={"tenantId": fabrikam}).status_code == 201
        assert (
            g.put(
                f"{PARTNERS}/{fabrikam}/identitySynchronization",
                json={"userSyncInbound": {"isSyncAllowed": True}},
            ).status_code
            == 204
        )
        assert g.get("/servicePrincipals").status_code == 200
        sp = g.get("/servicePrincipals").json()["value"][0]["id"]
        assert _denied(g.get(f"/servicePrincipals/{sp}/synchronization/jobs"))
        assert _denied(
            g.post(
                "/applicationTemplates/518e5f48-1fc8-4c48-9387-9fdf28b0dfe7/instantiate",
                json={"displayName": "x"},
            )
        )


def test_a_member_without_a_role_reads_the_directory_but_not_policies(emu: Emulator) -> None:
    fabrikam = emu.tenant("fabrikam").id
    with _as(emu, MEMBER) as g:
        assert g.get("/users").status_code == 200
        assert g.get("/servicePrincipals").status_code == 200
        assert _denied(g.get(PARTNERS))
        assert _denied(g.post(PARTNERS, json={"tenantId": fabrikam}))
        assert _denied(g.get("/auditLogs/provisioning"))


def test_acting_on_yourself_needs_no_role(emu: Emulator) -> None:
    tenant = emu.tenant("contoso")
    adele = next(u for u in tenant.users.values() if u["mailNickname"] == "adele")
    alex = next(u for u in tenant.users.values() if u["mailNickname"] == "alex")
    with _as(emu, MEMBER) as g:
        assert g.get(f"/users/{adele['id']}/authentication/methods").status_code == 200
        assert g.get(f"/users/{MEMBER}/authentication/methods").status_code == 200
        assert _denied(g.get(f"/users/{alex['id']}/authentication/methods"))


def test_roles_are_read_when_the_call_is_made(emu: Emulator) -> None:
    fabrikam = emu.tenant("fabrikam").id
    with _as(emu, MEMBER) as g:
        assert _denied(g.get(PARTNERS))
        with client(emu) as http:
            granted = http.post(
                "/_emulator/directory-roles",
                json={"user": MEMBER, "roles": ["Security Reader"]},
            )
            assert granted.status_code == 200
            assert granted.json()["roles"] == [
                {
                    "roleTemplateId": ROLE_TEMPLATES["Security Reader"],
                    "displayName": "Security Reader",
                }
            ]
        assert g.get(PARTNERS).status_code == 200
        assert _denied(g.post(PARTNERS, json={"tenantId": fabrikam}))


def test_the_azure_cli_cannot_manage_cross_tenant_sync_even_as_global_admin(
    emu: Emulator,
) -> None:
    from ctsync.emulator.core.delegated import AZURE_CLI_APP_ID

    with _as(emu, ADMIN, AZURE_CLI_APP_ID) as g:
        assert g.get("/users").status_code == 200
        assert g.get("/applications").status_code == 200
        assert _denied(g.get(PARTNERS))
        sp = g.get("/servicePrincipals").json()["value"][0]["id"]
        assert _denied(g.get(f"/servicePrincipals/{sp}/synchronization/jobs"))


def test_app_only_tokens_keep_the_application_permission_check(emu: Emulator) -> None:
    from ctsync.emulator import EmulatorCredential

    token = EmulatorCredential(emu, "contoso").get_token("https://graph.microsoft.com/.default")
    with graph(emu, token.token) as g:
        assert g.get(PARTNERS).status_code == 200
        # Directory.Read.All reads grants; writing one takes a write permission ctsync lacks.
        assert g.get("/oauth2PermissionGrants").status_code == 200
        assert g.post("/oauth2PermissionGrants", json={}).status_code == 403


def test_the_registration_report_marks_admins(emu: Emulator) -> None:
    with _as(emu, ADMIN) as g:
        rows = {
            r["userPrincipalName"]: r
            for r in g.get("/reports/authenticationMethods/userRegistrationDetails").json()["value"]
        }
    assert rows[ADMIN]["isAdmin"] is True
    assert rows[SECURITY_ADMIN]["isAdmin"] is True
    assert rows[MEMBER]["isAdmin"] is False


def test_every_route_has_a_row_in_the_delegated_table() -> None:
    uncovered = [
        f"{r.method} {r.pattern}"
        for r in all_routes().routes
        if r.permissions and rule_for(r.method, r.pattern) is None
    ]
    assert uncovered == []
    assert all(rule.source for rule in DELEGATED_RULES)
