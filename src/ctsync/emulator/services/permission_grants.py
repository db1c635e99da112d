"""Delegated permission grants: ``/oauth2PermissionGrants``.

An ``oAuth2PermissionGrant`` says which delegated scopes of a resource (an API's service
principal, here Microsoft Graph's) a client's service principal may use: for every user
(``consentType`` ``AllPrincipals``, admin consent) or for one (``Principal``, with
``principalId``). The next delegated token the client gets for the resource carries them in
``scp`` (``core/delegated.py``); a sign-in that consents records one here too.

Routes (Microsoft Graph v1.0 "oAuth2PermissionGrant resource type"): ``GET`` (``$filter`` ``eq``
on ``clientId``, ``consentType``, ``principalId``, ``resourceId``), ``POST``, ``GET``/``PATCH``
(``scope`` only)/``DELETE`` ``/{id}``. Ids are Entra's: base64url of the client, resource (and
principal) object ids, so one client, resource and principal have one grant (a second ``POST``
is ``409``). The choices where Microsoft's documentation is silent are in ``docs/emulator.md``.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.delegated import grant_key
from ctsync.emulator.core.errors import GraphFault, bad_request, conflict
from ctsync.emulator.core.first_party import microsoft_graph_service_principal
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import FilterSpec
from ctsync.emulator.core.routing import Router
from ctsync.emulator.core.schema import check_body
from ctsync.emulator.services._shared import object_not_found, shaped_collection, shaped_entity
from ctsync.emulator.state import Tenant

__all__ = ["GRANT_TYPE", "router"]

router = Router()

GRANT_TYPE = "oAuth2PermissionGrant"
ROOT = "/oauth2PermissionGrants"
CONTEXT = "oauth2PermissionGrants"

#: Microsoft Graph v1.0: list and get take ``DelegatedPermissionGrant.Read.All`` (least) or the
#: ``ReadWrite`` and ``Directory`` permissions; writes ``DelegatedPermissionGrant.ReadWrite.All``
#: or ``Directory.ReadWrite.All``.
READ = (
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
WRITE = ("DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All")

_FILTER = FilterSpec(
    resource="OAuth2PermissionGrant",
    properties={
        "id": "eq",
        "clientId": "eq",
        "consentType": "eq",
        "principalId": "eq",
        "resourceId": "eq",
    },
)
_CONSENT_TYPES = ("AllPrincipals", "Principal")


def _invalid(prop: str) -> GraphFault:
    return bad_request(
        f"Invalid value specified for property '{prop}' of resource 'OAuth2PermissionGrant'."
    )


def _service_principal_ids(tenant: Tenant) -> set[str]:
    microsoft_graph_service_principal(tenant)  # every tenant holds Microsoft Graph's
    return {i.lower() for i in (*tenant.service_principals, *tenant.microsoft_service_principals)}


def _guid(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _grant(ctx: RequestContext, grant_id: str) -> dict[str, Any]:
    grant = ctx.tenant.oauth2_permission_grants.get(grant_id)
    if grant is None:
        raise object_not_found(grant_id)
    return grant


@router.route("GET", ROOT, permissions=READ)
def list_grants(ctx: RequestContext) -> EmuResponse:
    grants = [copy.deepcopy(g) for g in ctx.tenant.oauth2_permission_grants.values()]
    return shaped_collection(
        ctx, grants, context=CONTEXT, type_name=GRANT_TYPE, filter_spec=_FILTER
    )


@router.route("POST", ROOT, permissions=WRITE)
def create_grant(ctx: RequestContext) -> EmuResponse:
    body = ctx.body_object()
    check_body(GRANT_TYPE, body)
    tenant = ctx.tenant
    sps = _service_principal_ids(tenant)
    client_id = _guid(body.get("clientId"))
    if client_id is None or client_id not in sps:
        raise _invalid("clientId")
    resource_id = _guid(body.get("resourceId"))
    if resource_id is None or resource_id not in sps:
        raise _invalid("resourceId")
    consent_type = body.get("consentType")
    if consent_type not in _CONSENT_TYPES:
        raise _invalid("consentType")
    principal_id = body.get("principalId")
    if consent_type == "AllPrincipals":
        if principal_id is not None:
            raise _invalid("principalId")
    else:
        principal_id = _guid(principal_id)
        if principal_id is None or principal_id not in {u.lower() for u in tenant.users}:
            raise _invalid("principalId")
    scope = body.get("scope")
    grant_id = grant_key(client_id, resource_id, principal_id)
    if grant_id in tenant.oauth2_permission_grants:
        raise conflict("Permission entry already exists.")
    grant = {
        "id": grant_id,
        "clientId": client_id,
        "consentType": consent_type,
        "principalId": principal_id,
        "resourceId": resource_id,
        "scope": " ".join(str(scope or "").split()),
    }
    tenant.oauth2_permission_grants[grant_id] = grant
    return ctx.json(201, {"@odata.context": f"{ctx.base_url}/$metadata#{CONTEXT}/$entity", **grant})


@router.route("GET", ROOT + "/{id}", permissions=READ)
def get_grant(ctx: RequestContext) -> EmuResponse:
    grant = _grant(ctx, ctx.params["id"])
    return shaped_entity(
        ctx, copy.deepcopy(grant), context=f"{CONTEXT}/$entity", type_name=GRANT_TYPE
    )


@router.route("PATCH", ROOT + "/{id}", permissions=WRITE)
def update_grant(ctx: RequestContext) -> EmuResponse:
    grant = _grant(ctx, ctx.params["id"])
    body = ctx.body_object()
    check_body(GRANT_TYPE, body)
    for key in body:
        if not key.startswith("@odata.") and key != "scope":
            msg = f"Property '{key}' is read-only and cannot be set; only scope can be updated."
            raise bad_request(msg)
    if "scope" in body:
        grant["scope"] = " ".join(str(body["scope"] or "").split())
    return ctx.no_content()


@router.route("DELETE", ROOT + "/{id}", permissions=WRITE)
def delete_grant(ctx: RequestContext) -> EmuResponse:
    grant = _grant(ctx, ctx.params["id"])
    del ctx.tenant.oauth2_permission_grants[grant["id"]]
    return ctx.no_content()
