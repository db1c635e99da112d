"""Applications, service principals and app role assignments (graph-cts-api §2.2, §2.4)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from .client import GraphClient

__all__ = ["CTS_TEMPLATE_ID", "GRAPH_APP_ID", "ApplicationsApi", "odata_string"]

#: The application template of Entra's cross-tenant synchronization configuration app.
CTS_TEMPLATE_ID: Final = "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7"


#: Microsoft Graph's application id: its service principal holds the app roles (application
#: permissions) an app is granted.
GRAPH_APP_ID: Final = "00000003-0000-0000-c000-000000000000"


def odata_string(value: str) -> str:
    """A string literal for ``$filter``: single quotes doubled, as OData escapes them."""
    return "'" + value.replace("'", "''") + "'"


class ApplicationsApi:
    """``/applicationTemplates``, ``/applications``, ``/servicePrincipals`` of one tenant."""

    def __init__(self, client: GraphClient) -> None:
        self.client = client

    async def instantiate(
        self,
        display_name: str,
        *,
        template_id: str = CTS_TEMPLATE_ID,
        on_send: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Create an application and its service principal from a template.

        Returns ``{"application": {...}, "servicePrincipal": {...}}``. Use the service
        principal's ``id`` (not ``appId``) for synchronization calls. ``on_send`` runs right
        before the request goes on the wire (see :meth:`GraphClient.request`).
        """
        response = await self.client.post(
            f"/applicationTemplates/{quote(template_id)}/instantiate",
            json={"displayName": display_name},
            on_send=on_send,
        )
        return response.json_object()

    async def get_service_principal(
        self, sp_id: str, *, select: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params = {"$select": ",".join(select)} if select else None
        response = await self.client.get(f"/servicePrincipals/{quote(sp_id)}", params=params)
        return response.json_object()

    async def find_service_principals(
        self, odata_filter: str, *, select: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        return await self.client.list_all(
            "/servicePrincipals", filter=odata_filter, select=select, top=999
        )

    async def update_service_principal(self, sp_id: str, changes: Mapping[str, Any]) -> None:
        await self.client.patch(f"/servicePrincipals/{quote(sp_id)}", json=dict(changes))

    async def delete_service_principal(self, sp_id: str) -> None:
        await self.client.delete(f"/servicePrincipals/{quote(sp_id)}")

    async def update_application(self, app_object_id: str, changes: Mapping[str, Any]) -> None:
        await self.client.patch(f"/applications/{quote(app_object_id)}", json=dict(changes))

    async def delete_application(self, app_object_id: str) -> None:
        """Deletes the application and, with it, its service principal."""
        await self.client.delete(f"/applications/{quote(app_object_id)}")

    async def list_assignments(self, sp_id: str) -> list[dict[str, Any]]:
        return await self.client.list_all(
            f"/servicePrincipals/{quote(sp_id)}/appRoleAssignedTo", top=999
        )

    async def assign(self, sp_id: str, *, principal_id: str, app_role_id: str) -> dict[str, Any]:
        response = await self.client.post(
            f"/servicePrincipals/{quote(sp_id)}/appRoleAssignedTo",
            json={"appRoleId": app_role_id, "resourceId": sp_id, "principalId": principal_id},
        )
        return response.json_object()

    async def unassign(self, sp_id: str, assignment_id: str) -> None:
        await self.client.delete(
            f"/servicePrincipals/{quote(sp_id)}/appRoleAssignedTo/{quote(assignment_id)}"
        )

    # -- app registrations (ctsync bootstrap) ------------------------------------------------

    async def find_applications(
        self, odata_filter: str, *, select: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        return await self.client.list_all(
            "/applications", filter=odata_filter, select=select, top=999
        )

    async def get_application(
        self, object_id: str, *, select: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params = {"$select": ",".join(select)} if select else None
        response = await self.client.get(f"/applications/{quote(object_id)}", params=params)
        return response.json_object()

    async def create_application(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return (await self.client.post("/applications", json=dict(body))).json_object()

    async def create_service_principal(self, app_id: str) -> dict[str, Any]:
        response = await self.client.post("/servicePrincipals", json={"appId": app_id})
        return response.json_object()

    async def federated_credentials(self, app_object_id: str) -> list[dict[str, Any]]:
        return await self.client.list_all(
            f"/applications/{quote(app_object_id)}/federatedIdentityCredentials"
        )

    async def add_federated_credential(
        self, app_object_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        response = await self.client.post(
            f"/applications/{quote(app_object_id)}/federatedIdentityCredentials", json=dict(body)
        )
        return response.json_object()
