"""Application templates, applications, service principals and their app role assignments.

Behaviour follows reference §1.2 (S6, S10), §2.2, §2.4, §3.11 and §10 items 6 and 15. Choices
where Microsoft's documentation is silent are listed in ``docs/emulator.md`` (section
"Applications and service principals").
"""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ctsync.emulator.core.clients import parse_certificate
from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault, bad_request, conflict, forbidden, not_found
from ctsync.emulator.core.first_party import microsoft_graph_service_principal
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.ids import IdFactory
from ctsync.emulator.core.odata import (
    DIRECTORY_ADVANCED,
    ExpandSpec,
    FilterSpec,
    OrderbySpec,
    collection_response,
)
from ctsync.emulator.core.routing import Router
from ctsync.emulator.core.schema import check_body
from ctsync.emulator.services._shared import (
    OWNED_BY,
    caller_object_id,
    object_key,
    object_not_found,
    require_owner_or,
    selected_properties,
    shaped_collection,
    shaped_entity,
)
from ctsync.emulator.services.azure2azure import CTS_TEMPLATE_ID
from ctsync.emulator.services.directory import find_principal
from ctsync.emulator.state import Tenant, key_slot

__all__ = [
    "APP_READ",
    "APP_WRITE",
    "APP_WRITE_ANY",
    "CTS_HOMEPAGE",
    "NON_GALLERY_TEMPLATE_ID",
    "add_app_role_assignment",
    "delete_service_principal",
    "find_application",
    "find_service_principal",
    "forget_credentials",
    "new_instance",
    "router",
    "store_key_credentials",
]

router = Router()

APP_READ = (
    "Application.Read.All",
    "Application.ReadWrite.All",
    OWNED_BY,
    "Directory.Read.All",
    "Directory.ReadWrite.All",
)
APP_WRITE = (OWNED_BY, "Application.ReadWrite.All", "Directory.ReadWrite.All")
#: Writers that reach every application, not only the ones they own.
APP_WRITE_ANY = ("Application.ReadWrite.All", "Directory.ReadWrite.All")
ASSIGNMENT_READ = (
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
)
ASSIGNMENT_DELETE = ("AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All")

NON_GALLERY_TEMPLATE_ID = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
CTS_HOMEPAGE = (
    "https://account.activedirectory.windowsazure.com:444/applications/default.aspx"
    "?metadata=aad2aadsync|ISV9.1|primary|z"
)
_EMPTY_GUID = "00000000-0000-0000-0000-000000000000"

SP_TYPE = "servicePrincipal"
APP_TYPE = "application"

# -- templates -------------------------------------------------------------------------------

_TEMPLATES: dict[str, dict[str, Any]] = {
    CTS_TEMPLATE_ID: {
        "id": CTS_TEMPLATE_ID,
        "displayName": "Cross-tenant synchronization",
        "homePageUrl": CTS_HOMEPAGE,
        "supportedSingleSignOnModes": [],
        "supportedProvisioningTypes": ["sync"],
        "logoUrl": None,
        "categories": ["identity"],
        "publisher": "Microsoft Corporation",
        "description": "Synchronize users from this tenant into another Microsoft Entra tenant.",
    },
    NON_GALLERY_TEMPLATE_ID: {
        "id": NON_GALLERY_TEMPLATE_ID,
        "displayName": "Custom",
        "homePageUrl": None,
        "supportedSingleSignOnModes": ["saml", "password", "notSupported"],
        "supportedProvisioningTypes": [],
        "logoUrl": None,
        "categories": [],
        "publisher": "Microsoft Corporation",
        "description": "An application you are developing or that is not in the gallery.",
    },
}


def _template(template_id: str) -> dict[str, Any]:
    template = _TEMPLATES.get(template_id.lower())
    if template is None:
        raise object_not_found(template_id)
    return template


@router.route("GET", "/applicationTemplates")
def list_templates(ctx: RequestContext) -> EmuResponse:
    # Reading the gallery needs no permission beyond a valid token.
    return collection_response(
        ctx,
        [copy.deepcopy(t) for t in _TEMPLATES.values()],
        context="applicationTemplates",
        count_requires_advanced=False,
    )


@router.route("GET", "/applicationTemplates/{id}")
def get_template(ctx: RequestContext) -> EmuResponse:
    return ctx.entity(
        copy.deepcopy(_template(ctx.params["id"])), context="applicationTemplates/$entity"
    )


def _app_role() -> dict[str, Any]:
    return {
        "allowedMemberTypes": ["User"],
        "description": "msiam_access",
        "displayName": "msiam_access",
        "id": "",
        "isEnabled": True,
        "origin": "Application",
        "value": None,
    }


def _permission_scope(display_name: str, scope_id: str) -> dict[str, Any]:
    return {
        "adminConsentDescription": (
            f"Allow the application to access {display_name} on behalf of the signed-in user."
        ),
        "adminConsentDisplayName": f"Access {display_name}",
        "id": scope_id,
        "isEnabled": True,
        "origin": None,
        "type": "User",
        "userConsentDescription": f"Allow the application to access {display_name} on your behalf.",
        "userConsentDisplayName": f"Access {display_name}",
        "value": "user_impersonation",
    }


def _info() -> dict[str, Any]:
    return {
        "logoUrl": None,
        "marketingUrl": None,
        "privacyStatementUrl": None,
        "supportUrl": None,
        "termsOfServiceUrl": None,
    }


def _verified_publisher() -> dict[str, Any]:
    return {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None}


def _new_pair(
    ctx: RequestContext, template_id: str, display_name: str, reference: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The application and service principal an instantiation creates (S6 response)."""
    return new_instance(
        ctx.emulator.ids, ctx.tenant, template_id, display_name, reference=reference, now=ctx.now
    )


def new_instance(
    ids: IdFactory,
    tenant: Tenant,
    template_id: str,
    display_name: str,
    *,
    reference: str | None = None,
    now: datetime,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The application and service principal ``instantiate`` creates in ``tenant`` from
    ``template_id`` (not stored; ids drawn from ``ids``). Scenarios build seeded
    configurations with it."""
    app_object_id, sp_object_id, app_id = ids.guid(), ids.guid(), ids.guid()
    role = {**_app_role(), "id": ids.guid()}
    scope = _permission_scope(display_name, ids.guid())
    is_cts = template_id == CTS_TEMPLATE_ID
    homepage = CTS_HOMEPAGE if is_cts else None
    tags = (
        ["WindowsAzureActiveDirectoryIntegratedApp"]
        if is_cts
        else [
            "WindowsAzureActiveDirectoryCustomSingleSignOnApplication",
            "WindowsAzureActiveDirectoryIntegratedApp",
        ]
    )
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    application: dict[str, Any] = {
        "id": app_object_id,
        "appId": app_id,
        "applicationTemplateId": template_id,
        "createdDateTime": created,
        "deletedDateTime": None,
        "displayName": display_name,
        "description": None,
        "groupMembershipClaims": None,
        "identifierUris": [],
        "isFallbackPublicClient": False,
        "notes": None,
        "publisherDomain": tenant.domain,
        "serviceManagementReference": reference,
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "defaultRedirectUri": None,
        "optionalClaims": None,
        "addIns": [],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": None,
            "oauth2PermissionScopes": [scope],
            "preAuthorizedApplications": [],
        },
        "appRoles": [role],
        "info": _info(),
        "keyCredentials": [],
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [],
        "verifiedPublisher": _verified_publisher(),
        "web": {
            "homePageUrl": homepage,
            "redirectUris": [],
            "logoutUrl": None,
            "implicitGrantSettings": {
                "enableAccessTokenIssuance": False,
                "enableIdTokenIssuance": False,
            },
            "redirectUriSettings": [],
        },
    }
    service_principal: dict[str, Any] = {
        "id": sp_object_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "appId": app_id,
        "applicationTemplateId": template_id,
        "appDisplayName": display_name,
        "alternativeNames": [],
        "appDescription": None,
        "appOwnerOrganizationId": tenant.id,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": display_name,
        "appRoleAssignmentRequired": True,
        "loginUrl": None,
        "logoutUrl": None,
        "homepage": homepage,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": [],
        "servicePrincipalNames": [app_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMyOrg",
        "tags": tags,
        "tokenEncryptionKeyId": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": [copy.deepcopy(role)],
        "info": _info(),
        "keyCredentials": [],
        "oauth2PermissionScopes": [copy.deepcopy(scope)],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": _verified_publisher(),
    }
    return application, service_principal


_INSTANTIATE_PARAMETERS = frozenset({"displayName", "serviceManagementReference"})


@router.route("POST", "/applicationTemplates/{id}/instantiate", permissions=APP_WRITE)
def instantiate(ctx: RequestContext) -> EmuResponse:
    template = _template(ctx.params["id"])
    body = ctx.body_object()
    for key in body:
        if key not in _INSTANTIATE_PARAMETERS and not key.startswith("@odata."):
            raise GraphFault(
                400,
                "BadRequest",
                f"The parameter '{key}' in the request payload is not a valid parameter for "
                "the operation 'instantiate'.",
            )
    display_name = body.get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise bad_request("The displayName parameter is required and must be a non-empty string.")
    reference = body.get("serviceManagementReference")
    if reference is not None and not isinstance(reference, str):
        raise bad_request("The serviceManagementReference parameter must be a string.")
    application, service_principal = _new_pair(ctx, template["id"], display_name, reference)
    tenant = ctx.tenant
    tenant.applications[application["id"]] = application
    tenant.service_principals[service_principal["id"]] = service_principal
    # The caller becomes owner of both, which is what lets Application.ReadWrite.OwnedBy
    # manage them afterwards.
    me = caller_object_id(ctx)
    tenant.owners[application["id"]] = [me]
    tenant.owners[service_principal["id"]] = [me]
    ctx.mark_created(object_key(APP_TYPE, application["id"]))
    ctx.mark_created(object_key(SP_TYPE, service_principal["id"]))
    body_out = {
        "@odata.context": f"{ctx.base_url}/$metadata#microsoft.graph.applicationServicePrincipal",
        "application": copy.deepcopy(application),
        "servicePrincipal": copy.deepcopy(service_principal),
    }
    return ctx.json(201, body_out)


# -- service principals ----------------------------------------------------------------------


def _by_app_id(objects: dict[str, dict[str, Any]], app_id: str) -> dict[str, Any] | None:
    wanted = app_id.lower()
    return next((o for o in objects.values() if str(o.get("appId")).lower() == wanted), None)


def _microsoft_sps(tenant: Tenant) -> dict[str, dict[str, Any]]:
    """Microsoft's own service principals in the tenant (Microsoft Graph), added on first use."""
    microsoft_graph_service_principal(tenant)
    return tenant.microsoft_service_principals


def find_service_principal(ctx: RequestContext, sp_id: str) -> dict[str, Any]:
    """A service principal of the caller's tenant by object id (Microsoft Graph's too); 404
    while replicating."""
    wanted = sp_id.lower()
    for oid, sp in ctx.tenant.service_principals.items():
        if oid.lower() == wanted and ctx.visible(object_key(SP_TYPE, oid)):
            return sp
    for oid, sp in _microsoft_sps(ctx.tenant).items():
        if oid.lower() == wanted:
            return sp
    raise object_not_found(sp_id)


def _sp_from_params(ctx: RequestContext) -> dict[str, Any]:
    if "appId" in ctx.params:
        sp = _by_app_id(ctx.tenant.service_principals, ctx.params["appId"])
        if sp is not None and ctx.visible(object_key(SP_TYPE, sp["id"])):
            return sp
        sp = _by_app_id(_microsoft_sps(ctx.tenant), ctx.params["appId"])
        if sp is None:
            raise object_not_found(ctx.params["appId"])
        return sp
    return find_service_principal(ctx, ctx.params["id"])


def _refuse_microsoft_sp(ctx: RequestContext, sp: dict[str, Any]) -> None:
    """Microsoft's own service principals are not the tenant's to change or delete."""
    if sp["id"] in ctx.tenant.microsoft_service_principals:
        raise forbidden()


_SP_FILTER = FilterSpec(
    resource="ServicePrincipal",
    properties={
        "id": "eq in ne not",
        "displayName": "eq in startswith ne not endswith",
        "appId": "eq in ne not",
        "applicationTemplateId": "eq ne not",
        "servicePrincipalType": "eq ne not",
        "accountEnabled": "eq ne not",
        "tags": "any eq",
    },
    advanced=DIRECTORY_ADVANCED,
)


def _visible(ctx: RequestContext, kind: str, objects: dict[str, dict[str, Any]]) -> list[Any]:
    return [o for oid, o in objects.items() if ctx.visible(object_key(kind, oid))]


def _expanded_assignments(ctx: RequestContext, sp: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        copy.deepcopy(a)
        for aid, a in ctx.tenant.app_role_assignments.get(sp["id"], {}).items()
        if ctx.visible(object_key("appRoleAssignment", aid))
    ]


#: ``$expand=appRoleAssignedTo`` (at most 20, as every expanded directory relationship).
_SP_EXPAND = ExpandSpec(SP_TYPE, {"appRoleAssignedTo": _expanded_assignments}, directory=True)
#: Graph sorts applications and service principals by displayName in advanced queries only.
_SP_ORDERBY = OrderbySpec(resource="ServicePrincipal", properties=(), advanced=("displayName",))


@router.route("GET", "/servicePrincipals", permissions=APP_READ)
def list_service_principals(ctx: RequestContext) -> EmuResponse:
    return shaped_collection(
        ctx,
        [
            *_visible(ctx, SP_TYPE, ctx.tenant.service_principals),
            *_microsoft_sps(ctx.tenant).values(),
        ],
        context="servicePrincipals",
        type_name=SP_TYPE,
        filter_spec=_SP_FILTER,
        orderby=_SP_ORDERBY,
        expand=_SP_EXPAND,
    )


@router.route("GET", "/servicePrincipals/{id}", permissions=APP_READ)
@router.route("GET", "/servicePrincipals(appId='{appId}')", permissions=APP_READ)
def get_service_principal(ctx: RequestContext) -> EmuResponse:
    sp = _sp_from_params(ctx)
    return shaped_entity(
        ctx, sp, context="servicePrincipals/$entity", type_name=SP_TYPE, expand=_SP_EXPAND
    )


#: Properties a PATCH may change; the others are set by the directory.
_SP_WRITABLE = frozenset(
    {
        "accountEnabled",
        "alternativeNames",
        "appDescription",
        "appRoleAssignmentRequired",
        "appRoles",
        "description",
        "displayName",
        "homepage",
        "info",
        "keyCredentials",
        "loginUrl",
        "logoutUrl",
        "notes",
        "notificationEmailAddresses",
        "oauth2PermissionScopes",
        "preferredSingleSignOnMode",
        "preferredTokenSigningKeyThumbprint",
        "replyUrls",
        "samlSingleSignOnSettings",
        "servicePrincipalNames",
        "tags",
        "tokenEncryptionKeyId",
    }
)


def _check_patch(type_name: str, body: dict[str, Any], writable: frozenset[str]) -> None:
    check_body(type_name, body)
    for key in body:
        if key.startswith("@odata."):
            continue
        if key not in writable:
            msg = f"Property '{key}' is read-only and cannot be set."
            raise bad_request(msg)


def _apply_patch(target: dict[str, Any], body: dict[str, Any]) -> None:
    for key, value in body.items():
        if not key.startswith("@odata."):
            target[key] = copy.deepcopy(value)


@router.route("PATCH", "/servicePrincipals/{id}", permissions=APP_WRITE)
@router.route("PATCH", "/servicePrincipals(appId='{appId}')", permissions=APP_WRITE)
def patch_service_principal(ctx: RequestContext) -> EmuResponse:
    sp = _sp_from_params(ctx)
    _refuse_microsoft_sp(ctx, sp)
    require_owner_or(ctx, [sp["id"]], APP_WRITE_ANY)
    body = ctx.body_object()
    _check_patch(SP_TYPE, body, _SP_WRITABLE)
    _apply_patch(sp, body)
    return ctx.no_content()


def delete_service_principal(tenant: Tenant, sp_id: str) -> None:
    """Remove a service principal with its synchronization (jobs, schema, secrets) and the
    assignments granted on it. Users a job created in its target are left as they are."""
    tenant.service_principals.pop(sp_id, None)
    tenant.synchronization.pop(sp_id, None)
    tenant.app_role_assignments.pop(sp_id, None)
    tenant.owners.pop(sp_id, None)
    tenant.created_at.pop(object_key(SP_TYPE, sp_id), None)


@router.route("DELETE", "/servicePrincipals/{id}", permissions=APP_WRITE)
@router.route("DELETE", "/servicePrincipals(appId='{appId}')", permissions=APP_WRITE)
def remove_service_principal(ctx: RequestContext) -> EmuResponse:
    sp = _sp_from_params(ctx)
    _refuse_microsoft_sp(ctx, sp)
    require_owner_or(ctx, [sp["id"]], APP_WRITE_ANY)
    delete_service_principal(ctx.tenant, sp["id"])
    return ctx.no_content()


#: What ``POST /servicePrincipals`` takes besides ``appId``.
_SP_CREATABLE = _SP_WRITABLE | {"appId"}


@router.route("POST", "/servicePrincipals", permissions=APP_WRITE)
def create_service_principal(ctx: RequestContext) -> EmuResponse:
    body = ctx.body_object()
    _check_patch(SP_TYPE, body, _SP_CREATABLE)
    app_id = body.get("appId")
    if not isinstance(app_id, str) or not app_id:
        raise bad_request(
            "Invalid value specified for property 'appId' of resource 'ServicePrincipal'."
        )
    tenant = ctx.tenant
    existing = _by_app_id(tenant.service_principals, app_id) or _by_app_id(
        _microsoft_sps(tenant), app_id
    )
    if existing is not None:
        raise conflict(
            "The service principal cannot be created, updated, or restored because the service "
            f"principal name {app_id} is already in use."
        )
    app = _by_app_id(tenant.applications, app_id)
    if app is None or not ctx.visible(object_key(APP_TYPE, app["id"])):
        raise bad_request(
            f"The appId '{app_id}' of the service principal does not reference a valid "
            "application object."
        )
    # OwnedBy creates service principals only for applications it owns.
    require_owner_or(ctx, [app["id"]], APP_WRITE_ANY)
    sp = _service_principal_for(ctx, app)
    _apply_patch(sp, {k: v for k, v in body.items() if k != "appId"})
    tenant.service_principals[sp["id"]] = sp
    tenant.owners[sp["id"]] = [caller_object_id(ctx)]
    ctx.mark_created(object_key(SP_TYPE, sp["id"]))
    return ctx.entity(copy.deepcopy(sp), context="servicePrincipals/$entity", status=201)


def _service_principal_for(ctx: RequestContext, app: dict[str, Any]) -> dict[str, Any]:
    """The service principal Entra makes for an application of the tenant (its home tenant)."""
    identifier_uris = [str(u) for u in app.get("identifierUris") or []]
    api = app.get("api") or {}
    return {
        "id": ctx.emulator.ids.guid(),
        "deletedDateTime": None,
        "accountEnabled": True,
        "appId": app["appId"],
        "applicationTemplateId": app.get("applicationTemplateId"),
        "appDisplayName": app.get("displayName"),
        "alternativeNames": [],
        "appDescription": None,
        "appOwnerOrganizationId": ctx.tenant.id,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": app.get("displayName"),
        "appRoleAssignmentRequired": False,
        "loginUrl": None,
        "logoutUrl": None,
        "homepage": (app.get("web") or {}).get("homePageUrl"),
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": list((app.get("web") or {}).get("redirectUris") or []),
        "servicePrincipalNames": [*identifier_uris, app["appId"]],
        "servicePrincipalType": "Application",
        "signInAudience": app.get("signInAudience"),
        "tags": list(app.get("tags") or []),
        "tokenEncryptionKeyId": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": copy.deepcopy(app.get("appRoles") or []),
        "info": copy.deepcopy(app.get("info") or _info()),
        "keyCredentials": [],
        "oauth2PermissionScopes": copy.deepcopy(api.get("oauth2PermissionScopes") or []),
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": _verified_publisher(),
    }


# -- applications ----------------------------------------------------------------------------

_APP_FILTER = FilterSpec(
    resource="Application",
    properties={
        "id": "eq in ne not",
        "displayName": "eq in startswith ne not endswith",
        "appId": "eq in ne not",
        "applicationTemplateId": "eq ne not",
        "tags": "any eq",
    },
    advanced=DIRECTORY_ADVANCED,
)

_APP_WRITABLE = frozenset(
    {
        "api",
        "appRoles",
        "description",
        "displayName",
        "groupMembershipClaims",
        "identifierUris",
        "info",
        "isFallbackPublicClient",
        "notes",
        "optionalClaims",
        "parentalControlSettings",
        "publicClient",
        "requiredResourceAccess",
        "serviceManagementReference",
        "signInAudience",
        "spa",
        "tags",
        "tokenEncryptionKeyId",
        "web",
    }
)


def find_application(ctx: RequestContext) -> dict[str, Any]:
    """The application the route's ``{id}`` or ``(appId='…')`` names; 404 while replicating."""
    if "appId" in ctx.params:
        app = _by_app_id(ctx.tenant.applications, ctx.params["appId"])
        wanted = ctx.params["appId"]
    else:
        wanted = ctx.params["id"]
        app = next(
            (a for oid, a in ctx.tenant.applications.items() if oid.lower() == wanted.lower()),
            None,
        )
    if app is None or not ctx.visible(object_key(APP_TYPE, app["id"])):
        raise object_not_found(wanted)
    return app


_APP_ORDERBY = OrderbySpec(resource="Application", properties=(), advanced=("displayName",))


@router.route("GET", "/applications", permissions=APP_READ, cost=2)
def list_applications(ctx: RequestContext) -> EmuResponse:
    return shaped_collection(
        ctx,
        _visible(ctx, APP_TYPE, ctx.tenant.applications),
        context="applications",
        type_name=APP_TYPE,
        filter_spec=_APP_FILTER,
        orderby=_APP_ORDERBY,
    )


#: What ``POST /applications`` and ``PATCH`` take: secrets only come from ``addPassword``
#: ("Using PATCH to set passwordCredential is not supported").
_APP_CREATABLE = _APP_WRITABLE | {"keyCredentials"}


def _blank_application(ctx: RequestContext, display_name: str) -> dict[str, Any]:
    """A new application as ``POST /applications`` makes it, before the body is applied."""
    return {
        "id": ctx.emulator.ids.guid(),
        "appId": ctx.emulator.ids.guid(),
        "applicationTemplateId": None,
        "createdDateTime": ctx.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deletedDateTime": None,
        "displayName": display_name,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "groupMembershipClaims": None,
        "identifierUris": [],
        "isDeviceOnlyAuthSupported": None,
        "isFallbackPublicClient": None,
        "notes": None,
        "publisherDomain": ctx.tenant.domain,
        "serviceManagementReference": None,
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "defaultRedirectUri": None,
        "optionalClaims": None,
        "addIns": [],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": None,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": [],
        },
        "appRoles": [],
        "info": _info(),
        "keyCredentials": [],
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [],
        "spa": {"redirectUris": []},
        "verifiedPublisher": _verified_publisher(),
        "web": {
            "homePageUrl": None,
            "redirectUris": [],
            "logoutUrl": None,
            "implicitGrantSettings": {
                "enableAccessTokenIssuance": False,
                "enableIdTokenIssuance": False,
            },
            "redirectUriSettings": [],
        },
    }


@router.route("POST", "/applications", permissions=APP_WRITE)
def create_application(ctx: RequestContext) -> EmuResponse:
    body = ctx.body_object()
    _check_patch(APP_TYPE, body, _APP_CREATABLE)
    display_name = body.get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise bad_request(
            "Invalid value specified for property 'displayName' of resource 'Application'."
        )
    app = _blank_application(ctx, display_name)
    changes = dict(body)
    if "keyCredentials" in changes:
        app["keyCredentials"] = store_key_credentials(ctx, app, changes.pop("keyCredentials"))
    _apply_patch(app, changes)
    tenant = ctx.tenant
    tenant.applications[app["id"]] = app
    # The caller owns what it creates: Application.ReadWrite.OwnedBy manages it afterwards.
    tenant.owners[app["id"]] = [caller_object_id(ctx)]
    ctx.mark_created(object_key(APP_TYPE, app["id"]))
    return ctx.entity(copy.deepcopy(app), context="applications/$entity", status=201)


@router.route("GET", "/applications/{id}", permissions=APP_READ)
@router.route("GET", "/applications(appId='{appId}')", permissions=APP_READ)
def get_application(ctx: RequestContext) -> EmuResponse:
    app = find_application(ctx)
    # keyCredentials' key is "returned only on $select for a single object" (Graph's docs).
    if "keyCredentials" in (selected_properties(ctx, APP_TYPE) or []):
        app = {**app, "keyCredentials": _with_keys(ctx.tenant, app)}
    return shaped_entity(ctx, app, context="applications/$entity", type_name=APP_TYPE)


@router.route("PATCH", "/applications/{id}", permissions=APP_WRITE)
@router.route("PATCH", "/applications(appId='{appId}')", permissions=APP_WRITE)
def patch_application(ctx: RequestContext) -> EmuResponse:
    app = find_application(ctx)
    require_owner_or(ctx, [app["id"]], APP_WRITE_ANY)
    body = ctx.body_object()
    _check_patch(APP_TYPE, body, _APP_CREATABLE)
    changes = dict(body)
    if "keyCredentials" in changes:
        app["keyCredentials"] = store_key_credentials(ctx, app, changes.pop("keyCredentials"))
    _apply_patch(app, changes)
    return ctx.no_content()


# -- key credentials -------------------------------------------------------------------------

_KEY_TYPES = frozenset({"AsymmetricX509Cert"})
_KEY_USAGES = frozenset({"Verify"})


def _invalid_key(detail: str) -> GraphFault:
    return bad_request(
        f"Invalid value specified for property 'keyCredentials' of resource 'Application'. {detail}"
    )


def store_key_credentials(
    ctx: RequestContext, app: dict[str, Any], value: Any
) -> list[dict[str, Any]]:
    """Check a ``keyCredentials`` collection as Graph takes it (a new credential carries its
    certificate in ``key``, base64 DER; one already registered may come back without it),
    keep the certificates apart, and answer the collection to store (``key`` null)."""
    if not isinstance(value, list):
        raise _invalid_key("A collection of keyCredential is expected.")
    tenant = ctx.tenant
    previous = {str(k.get("keyId", "")).lower(): k for k in app.get("keyCredentials") or [] if k}
    stored: list[dict[str, Any]] = []
    material: dict[str, str] = {}
    for cred in value:
        check_body("keyCredential", cred)
        key_id = str(cred.get("keyId") or ctx.emulator.ids.guid()).lower()
        if key_id in material:
            raise _invalid_key(f"The keyId '{key_id}' appears twice.")
        key = cred.get("key")
        slot = key_slot(app, key_id)
        if key is None:
            known = previous.get(key_id)
            if known is None or slot not in tenant.credential_keys:
                raise _invalid_key("A new key credential needs its certificate in 'key'.")
            stored.append({**known, **{k: v for k, v in cred.items() if k != "key"}, "key": None})
            material[slot] = tenant.credential_keys[slot]
            continue
        stored.append(_new_key_credential(cred, key_id, str(key)))
        material[slot] = str(key)
    for key_id in previous:
        tenant.credential_keys.pop(key_slot(app, key_id), None)
    tenant.credential_keys.update(material)
    return stored


def _new_key_credential(cred: dict[str, Any], key_id: str, key: str) -> dict[str, Any]:
    parsed = parse_certificate(key)
    if parsed is None or key.lstrip().startswith("-----BEGIN"):
        raise _invalid_key("'key' must be a base64-encoded X.509 certificate (DER).")
    cert = x509.load_der_x509_certificate(base64.b64decode(key))
    kind = cred.get("type") or "AsymmetricX509Cert"
    usage = cred.get("usage") or "Verify"
    if kind not in _KEY_TYPES or usage not in _KEY_USAGES:
        raise _invalid_key(
            "The emulator takes certificates of type AsymmetricX509Cert, usage Verify."
        )
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    start = _parse_time(cred.get("startDateTime")) or not_before
    end = _parse_time(cred.get("endDateTime")) or not_after
    if start < not_before or end > not_after or end <= start:
        raise _invalid_key("Key credential start and end dates must lie within the certificate's.")
    thumbprint = hashlib.sha1(
        cert.public_bytes(serialization.Encoding.DER), usedforsecurity=False
    ).digest()
    return {
        "customKeyIdentifier": cred.get("customKeyIdentifier")
        or base64.b64encode(thumbprint).decode(),
        "displayName": cred.get("displayName") or cert.subject.rfc4514_string(),
        "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key": None,
        "keyId": key_id,
        "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": kind,
        "usage": usage,
    }


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _with_keys(tenant: Tenant, app: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**k, "key": tenant.credential_keys.get(key_slot(app, k.get("keyId")))}
        for k in app.get("keyCredentials") or []
    ]


def forget_credentials(tenant: Tenant, app: dict[str, Any]) -> None:
    """Drop what the tenant keeps apart for an application's credentials (it is deleted)."""
    for cred in app.get("passwordCredentials") or []:
        tenant.credential_secrets.pop(str(cred.get("keyId", "")).lower(), None)
    for cred in app.get("keyCredentials") or []:
        tenant.credential_keys.pop(key_slot(app, cred.get("keyId")), None)
    tenant.federated_credentials.pop(app["id"], None)


@router.route("DELETE", "/applications/{id}", permissions=APP_WRITE)
@router.route("DELETE", "/applications(appId='{appId}')", permissions=APP_WRITE)
def delete_application(ctx: RequestContext) -> EmuResponse:
    app = find_application(ctx)
    require_owner_or(ctx, [app["id"]], APP_WRITE_ANY)
    tenant = ctx.tenant
    # Deleting an application deletes its service principal in the home tenant too.
    sp = _by_app_id(tenant.service_principals, app["appId"])
    if sp is not None:
        delete_service_principal(tenant, sp["id"])
    forget_credentials(tenant, app)
    del tenant.applications[app["id"]]
    tenant.owners.pop(app["id"], None)
    tenant.created_at.pop(object_key(APP_TYPE, app["id"]), None)
    return ctx.no_content()


# -- appRoleAssignedTo -----------------------------------------------------------------------

ASSIGNMENTS = "/servicePrincipals/{id}/appRoleAssignedTo"


def _assignment_id(principal_id: str, rng_bytes: bytes) -> str:
    # Graph's assignment ids are 43 base64url characters that begin with the principal's
    # object id (as little-endian GUID bytes), so one principal's ids share a prefix.
    raw = uuid.UUID(principal_id).bytes_le + rng_bytes
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@router.route("GET", ASSIGNMENTS, permissions=ASSIGNMENT_READ)
def list_assignments(ctx: RequestContext) -> EmuResponse:
    sp = find_service_principal(ctx, ctx.params["id"])
    items = [
        a
        for aid, a in ctx.tenant.app_role_assignments.get(sp["id"], {}).items()
        if ctx.visible(object_key("appRoleAssignment", aid))
    ]
    return shaped_collection(
        ctx,
        items,
        context=f"servicePrincipals('{sp['id']}')/appRoleAssignedTo",
        type_name="appRoleAssignment",
    )


def _guid_member(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        msg = f"The {name} property is required."
        raise bad_request(msg)
    return value.lower()


@router.route("POST", ASSIGNMENTS, permissions=("AppRoleAssignment.ReadWrite.All",))
def create_assignment(ctx: RequestContext) -> EmuResponse:
    # AppRoleAssignment.ReadWrite.All writes; reading the resource needs an application
    # read permission as well (reference §2.4: the two are granted together).
    if not ctx.roles & (set(APP_READ) - {OWNED_BY}):
        raise forbidden()
    sp = find_service_principal(ctx, ctx.params["id"])
    body = ctx.body_object()
    check_body("appRoleAssignment", body)
    app_role_id = _guid_member(body, "appRoleId")
    principal_id = _guid_member(body, "principalId")
    resource_id = _guid_member(body, "resourceId")
    if resource_id != sp["id"].lower():
        raise bad_request(
            "The resourceId in the request body must be the service principal in the URL."
        )
    roles = {str(r["id"]).lower(): r for r in sp.get("appRoles", []) if r.get("isEnabled")}
    # The default-access role (the empty GUID) only exists for apps that define no roles.
    if app_role_id not in roles and not (app_role_id == _EMPTY_GUID and not roles):
        msg = f"Permission being assigned was not found on application '{sp['appId']}'."
        raise bad_request(msg)
    found = find_principal(ctx, principal_id) or _service_principal_principal(ctx, principal_id)
    if found is None:
        raise object_not_found(principal_id)
    principal_type, principal = found
    # A role is for users and groups ("User") or for applications ("Application"): Microsoft
    # Graph's permissions are application roles, granted to service principals only.
    member_type = "Application" if principal_type == "ServicePrincipal" else "User"
    role = roles.get(app_role_id)
    if role is not None and member_type not in (role.get("allowedMemberTypes") or []):
        msg = f"Permission being assigned was not found on application '{sp['appId']}'."
        raise bad_request(msg)
    assignment = add_app_role_assignment(
        ctx.tenant,
        sp,
        app_role_id,
        principal_type,
        principal,
        ids=ctx.emulator.ids,
        now=ctx.now,
    )
    ctx.mark_created(object_key("appRoleAssignment", assignment["id"]))
    return ctx.entity(
        copy.deepcopy(assignment),
        context=f"servicePrincipals('{sp['id']}')/appRoleAssignedTo/$entity",
        status=201,
    )


def _service_principal_principal(
    ctx: RequestContext, object_id: str
) -> tuple[str, dict[str, Any]] | None:
    """A service principal as an assignment's principal: the tenant's own (a registered
    client's), or a seeded client's, whose service principal is its object id."""
    wanted = object_id.lower()
    for oid, sp in ctx.tenant.service_principals.items():
        if oid.lower() == wanted and ctx.visible(object_key(SP_TYPE, oid)):
            return "ServicePrincipal", sp
    for client in ctx.tenant.clients.values():
        if client.object_id.lower() == wanted:
            return "ServicePrincipal", {"id": client.object_id, "displayName": client.display_name}
    return None


def add_app_role_assignment(
    tenant: Tenant,
    sp: dict[str, Any],
    app_role_id: str,
    principal_type: str,
    principal: dict[str, Any],
    *,
    ids: IdFactory,
    now: datetime,
) -> dict[str, Any]:
    """Grant ``principal`` (``User``, ``Group`` or ``ServicePrincipal``) the app role
    ``app_role_id`` on ``sp`` as
    ``POST appRoleAssignedTo`` does once the body is checked (``400`` for a duplicate); the
    stored assignment. Scenarios assign seeded configurations with it."""
    existing = tenant.app_role_assignments.setdefault(sp["id"], {})
    for other in existing.values():
        if other["principalId"] == principal["id"] and other["appRoleId"] == app_role_id:
            raise bad_request("Permission being assigned already exists on the object.")
    assignment_id = _assignment_id(principal["id"], bytes.fromhex(ids.hex32()))
    assignment = {
        "id": assignment_id,
        "deletedDateTime": None,
        "appRoleId": app_role_id,
        "createdDateTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "principalDisplayName": principal.get("displayName"),
        "principalId": principal["id"],
        "principalType": principal_type,
        "resourceDisplayName": sp.get("displayName"),
        "resourceId": sp["id"],
    }
    existing[assignment_id] = assignment
    return assignment


@router.route("GET", ASSIGNMENTS + "/{assignmentId}", permissions=ASSIGNMENT_READ)
def get_assignment(ctx: RequestContext) -> EmuResponse:
    sp = find_service_principal(ctx, ctx.params["id"])
    assignment = _assignment(ctx, sp["id"], ctx.params["assignmentId"])
    return shaped_entity(
        ctx,
        assignment,
        context=f"servicePrincipals('{sp['id']}')/appRoleAssignedTo/$entity",
        type_name="appRoleAssignment",
    )


def _assignment(ctx: RequestContext, sp_id: str, assignment_id: str) -> dict[str, Any]:
    # Assignment ids are case-sensitive (base64url), unlike GUIDs.
    assignment = ctx.tenant.app_role_assignments.get(sp_id, {}).get(assignment_id)
    if assignment is None or not ctx.visible(object_key("appRoleAssignment", assignment_id)):
        raise not_found(
            f"Resource '{assignment_id}' does not exist or one of its queried "
            "reference-property objects are not present."
        )
    return assignment


@router.route("DELETE", ASSIGNMENTS + "/{assignmentId}", permissions=ASSIGNMENT_DELETE)
def delete_assignment(ctx: RequestContext) -> EmuResponse:
    sp = find_service_principal(ctx, ctx.params["id"])
    assignment = _assignment(ctx, sp["id"], ctx.params["assignmentId"])
    del ctx.tenant.app_role_assignments[sp["id"]][assignment["id"]]
    ctx.tenant.created_at.pop(object_key("appRoleAssignment", assignment["id"]), None)
    return ctx.no_content()
