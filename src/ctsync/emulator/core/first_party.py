"""Microsoft's own service principals in every tenant: Microsoft Graph.

Every Entra tenant holds a service principal for Microsoft Graph (appId
``00000003-0000-0000-c000-000000000000``). Its ``appRoles`` are Graph's application permissions;
granting one to a client (``POST /servicePrincipals/{graph}/appRoleAssignedTo``) is admin consent,
and the client's next token carries the role's ``value`` in ``roles``. The role ids are Microsoft's
(``microsoft_graph_app_roles.json``, from the permissions reference).

The service principal is added when the tenant is made (so a read never changes state), with an
object id derived from the tenant id (so it draws nothing from the seeded id factory and every other
id stays what it was), and kept in ``Tenant.microsoft_service_principals``, apart from the tenant's
own service principals.
"""

from __future__ import annotations

import copy
import functools
import json
import uuid
from importlib import resources
from typing import TYPE_CHECKING, Any

from ctsync.emulator.core.tokens import GRAPH_APP_ID

if TYPE_CHECKING:
    from ctsync.emulator.state import Tenant

__all__ = [
    "GRAPH_APP_ID",
    "MICROSOFT_SERVICES_TENANT_ID",
    "graph_app_role_id",
    "graph_app_roles",
    "graph_role_values",
    "microsoft_graph_service_principal",
]

#: The tenant that owns Microsoft's first-party apps (their ``appOwnerOrganizationId``).
MICROSOFT_SERVICES_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

_ID_NAMESPACE = uuid.UUID("5d1f3f8e-2b56-4c4e-9a33-6a0f0f3c2a11")


@functools.cache
def _data() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("microsoft_graph_app_roles.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def graph_app_roles() -> list[dict[str, Any]]:
    """Microsoft Graph's application permissions as ``appRole`` wire objects."""
    return [
        {
            "allowedMemberTypes": ["Application"],
            "description": role["description"],
            "displayName": role["displayName"],
            "id": role["id"],
            "isEnabled": True,
            "origin": "Application",
            "value": role["value"],
        }
        for role in _data()["appRoles"]
    ]


@functools.cache
def graph_role_values() -> dict[str, str]:
    """Graph's application permissions: app role id (lower case) -> permission value."""
    return {str(r["id"]).lower(): str(r["value"]) for r in _data()["appRoles"]}


def graph_app_role_id(value: str) -> str | None:
    """The app role id of the Graph application permission ``value`` (e.g. ``User.Read.All``)."""
    wanted = value.lower()
    return next((rid for rid, v in graph_role_values().items() if v.lower() == wanted), None)


def _graph_sp_id(tenant_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{tenant_id.lower()}/{GRAPH_APP_ID}"))


def microsoft_graph_service_principal(tenant: Tenant) -> dict[str, Any]:
    """The tenant's Microsoft Graph service principal (wire shape); added if missing."""
    sp_id = _graph_sp_id(tenant.id)
    found = tenant.microsoft_service_principals.get(sp_id)
    if found is not None:
        return found
    sp: dict[str, Any] = {
        "id": sp_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": [],
        "appDisplayName": "Microsoft Graph",
        "appDescription": None,
        "appId": GRAPH_APP_ID,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": MICROSOFT_SERVICES_TENANT_ID,
        "appRoleAssignmentRequired": False,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": "Microsoft Graph",
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": [],
        "servicePrincipalNames": [
            f"{GRAPH_APP_ID}/ags.windows.net",
            GRAPH_APP_ID,
            "https://canary.graph.microsoft.com",
            "https://graph.microsoft.com",
            "https://ags.windows.net",
            "https://graph.microsoft.us",
            "https://dod-graph.microsoft.us",
        ],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMultipleOrgs",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": graph_app_roles(),
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "keyCredentials": [],
        "oauth2PermissionScopes": copy.deepcopy(_data().get("oauth2PermissionScopes", [])),
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": {
            "displayName": None,
            "verifiedPublisherId": None,
            "addedDateTime": None,
        },
    }
    tenant.microsoft_service_principals[sp_id] = sp
    return sp
