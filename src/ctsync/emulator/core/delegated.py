"""Delegated sign-in: a person signs in and a client gets tokens that act as them.

Three grants on the token endpoint (``oauth._token`` hands them here), and the pages and
endpoints they need:

- **Device code** (RFC 8628, Microsoft's "device authorization grant"):
  ``POST /{tenant}/oauth2/v2.0/devicecode`` answers ``device_code``, ``user_code``,
  ``verification_uri`` (``{origin}/devicelogin``), ``expires_in`` (900), ``interval`` (5) and
  ``message``; ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` polls until the
  code is approved as a named user — through the control API (``POST /_emulator/signin/approve``,
  or ``signin/next`` queued before the code is asked for) or the ``/devicelogin`` page — or
  declined, or expires.
- **Authorization code with PKCE**: ``GET``/``POST /{tenant}/oauth2/v2.0/authorize`` signs a user
  in (the one queued with ``POST /_emulator/signin/next``, else a minimal HTML sign-in form) and
  sends ``code`` and ``state`` to the loopback ``redirect_uri`` (``query``, ``fragment`` or
  ``form_post``); ``grant_type=authorization_code`` redeems the code once, checking
  ``code_verifier`` against ``code_challenge`` (``S256`` or ``plain``).
- **Refresh tokens**: ``grant_type=refresh_token``; every use answers a new refresh token (the
  old one stays valid, as Microsoft documents); they live 90 days and are revoked when the user
  is disabled.

Clients: the first-party public clients :data:`FIRST_PARTY_CLIENTS` (the Azure CLI, with its
pre-authorized Microsoft Graph scopes, and Microsoft Graph Command Line Tools, which asks for
consent) and applications registered in the tenant that allow public client flows
(``isFallbackPublicClient`` for the device code; ``publicClient.redirectUris`` for a public
authorization code redemption, ``web.redirectUris`` for a confidential one).

Delegated access tokens are Entra's v1 Graph tokens: ``scp`` (every scope granted to the client
for the user and resource), ``wids`` (the user's directory roles and the default User role),
``oid``, ``sub`` (pairwise), ``upn``, ``name``, ``idtyp: user``, ``appid``, ``appidacr``. ID
tokens (v2.0, issuer ``{origin}/{tid}/v2.0``) come with ``openid``, refresh tokens with
``offline_access``, ``client_info`` with ``client_info=1`` (what MSAL keys its cache by).

Codes and refresh tokens are random (``secrets``), never drawn from the seeded id factory, and a
refresh token is kept only as a hash. Choices where Microsoft's documentation is silent are
listed in ``docs/emulator.md`` ("Delegated sign-in").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from ctsync.emulator.core.clients import ClientView, find_client
from ctsync.emulator.core.directory_roles import (
    ROLE_TEMPLATES,
    assigned_role_ids,
    is_member,
    resolve_role,
    role_name,
    set_roles,
    token_wids,
)
from ctsync.emulator.core.first_party import (
    MICROSOFT_SERVICES_TENANT_ID,
    microsoft_graph_service_principal,
)
from ctsync.emulator.core.http import EmuRequest, EmuResponse, json_response
from ctsync.emulator.core.oauth import (
    EMULATOR_CODE,
    GRAPH_RESOURCE,
    OAuthError,
    find_tenant,
)
from ctsync.emulator.core.tokens import GRAPH_APP_ID, TOKEN_LIFETIME
from ctsync.emulator.state import (
    AuthorizationCode,
    DeviceCodeGrant,
    QueuedSignIn,
    RefreshTokenGrant,
)

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator
    from ctsync.emulator.state import JsonObject, Tenant

__all__ = [
    "AZURE_CLI_APP_ID",
    "AZURE_CLI_GRAPH_SCOPES",
    "DEVICE_CODE_GRANT",
    "FIRST_PARTY_CLIENTS",
    "GRANT_TYPES",
    "GRAPH_CLI_TOOLS_APP_ID",
    "PublicClient",
    "authorize",
    "device_authorization",
    "device_login",
    "find_public_client",
    "granted_scopes",
    "handle_signin_control",
    "is_delegated_client",
    "revoke_user_sessions",
    "token",
]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
AUTHORIZATION_CODE_GRANT = "authorization_code"
REFRESH_TOKEN_GRANT = "refresh_token"
GRANT_TYPES = frozenset({DEVICE_CODE_GRANT, AUTHORIZATION_CODE_GRANT, REFRESH_TOKEN_GRANT})

#: "From the moment the request is sent, the user has 15 minutes to sign in" (device code).
DEVICE_CODE_LIFETIME = timedelta(minutes=15)
DEVICE_CODE_INTERVAL = 5
#: "Authorization codes are short lived. Typically, they expire after about 10 minutes."
AUTHORIZATION_CODE_LIFETIME = timedelta(minutes=10)
#: "The default lifetime for the refresh tokens is … 90 days for all other scenarios."
REFRESH_TOKEN_LIFETIME = timedelta(days=90)
ID_TOKEN_LIFETIME = timedelta(hours=1)

AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
GRAPH_CLI_TOOLS_APP_ID = "14d82eec-204b-4c2f-b7e8-296a70dab67e"

#: The Microsoft Graph delegated scopes the Azure CLI is pre-authorized for: what every Graph
#: token it gets carries. Microsoft does not publish the list; this is the ``scp`` of Graph
#: tokens ``az account get-access-token --resource-type ms-graph`` returns, as reported
#: publicly (token dumps in CLI-tooling write-ups). It lacks ``Policy.*`` and
#: ``Synchronization.*``: the Azure CLI cannot manage cross-tenant sync.
AZURE_CLI_GRAPH_SCOPES = frozenset(
    {
        "Application.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
        "AuditLog.Read.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.AccessAsUser.All",
        "Group.ReadWrite.All",
        "User.Read.All",
        "User.ReadWrite.All",
    }
)

#: First-party public clients: app id -> (display name, pre-authorized Graph scopes; ``None``
#: for a client that asks for consent like any other).
FIRST_PARTY_CLIENTS: dict[str, tuple[str, frozenset[str] | None]] = {
    AZURE_CLI_APP_ID: ("Microsoft Azure CLI", AZURE_CLI_GRAPH_SCOPES),
    GRAPH_CLI_TOOLS_APP_ID: ("Microsoft Graph Command Line Tools", None),
}

#: OpenID Connect scopes: they name no resource.
_OIDC = ("openid", "profile", "email", "offline_access")
#: Graph delegated scopes a user may consent to for themselves (the permissions reference marks
#: them "Admin consent required: No"); any other needs an administrator's consent.
USER_CONSENTABLE = frozenset({"User.Read", "User.ReadBasic.All", *_OIDC})
#: Roles that may grant consent to Microsoft Graph delegated permissions (Entra's "Grant
#: tenant-wide admin consent": Privileged Role Administrator; Cloud Application Administrator
#: and Application Administrator for delegated permissions).
CONSENT_ROLES = frozenset(
    ROLE_TEMPLATES[name]
    for name in (
        "Global Administrator",
        "Privileged Role Administrator",
        "Cloud Application Administrator",
        "Application Administrator",
    )
)
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
_USER_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_SUB_NAMESPACE = b"ctsync-emulator-pairwise-sub"


# -- clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicClient:
    """A client that may sign users in: first-party, or registered in the tenant."""

    client_id: str
    display_name: str
    first_party: bool
    #: Pre-authorized Graph scopes (first-party clients that never ask for consent).
    preauthorized: frozenset[str] | None
    #: Public client flows allowed (the device code): ``isFallbackPublicClient``.
    public_flows: bool
    public_redirect_uris: tuple[str, ...] = ()
    web_redirect_uris: tuple[str, ...] = ()
    #: The registered or seeded client (its secrets and certificates), if any.
    view: ClientView | None = None


def find_public_client(tenant: Tenant, client_id: str) -> PublicClient | None:
    """A first-party public client, or a client of the tenant (``core/clients.py``)."""
    first = FIRST_PARTY_CLIENTS.get(client_id.lower())
    if first is not None:
        name, preauthorized = first
        return PublicClient(
            client_id=client_id.lower(),
            display_name=name,
            first_party=True,
            preauthorized=preauthorized,
            public_flows=True,
            public_redirect_uris=(
                "http://localhost",
                "https://login.microsoftonline.com/common/oauth2/nativeclient",
            ),
        )
    view = find_client(tenant, client_id)
    if view is None:
        return None
    app: JsonObject = (
        tenant.applications.get(view.application_object_id, {})
        if view.application_object_id
        else {}
    )
    return PublicClient(
        client_id=view.client_id,
        display_name=view.display_name,
        first_party=False,
        preauthorized=None,
        public_flows=app.get("isFallbackPublicClient") is True,
        public_redirect_uris=tuple(_uris(app.get("publicClient"))),
        web_redirect_uris=tuple(_uris(app.get("web"))),
        view=view,
    )


def is_delegated_client(tenant: Tenant, client_id: str) -> bool:
    """Whether a token's ``appid`` names a client that may hold delegated tokens here."""
    return client_id.lower() in FIRST_PARTY_CLIENTS or find_client(tenant, client_id) is not None


def _uris(section: Any) -> list[str]:
    if not isinstance(section, Mapping):
        return []
    return [str(u) for u in section.get("redirectUris") or [] if isinstance(u, str)]


def _client_principal_id(tenant: Tenant, client: PublicClient) -> str:
    """The client's service principal id in the tenant (a grant's ``clientId``); a first-party
    client's is added on first consent, as Entra adds it on first sign-in."""
    if client.view is not None:
        return client.view.object_id
    sp_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"ctsync-emulator/{tenant.id}/{client.client_id}"))
    if sp_id not in tenant.microsoft_service_principals:
        tenant.microsoft_service_principals[sp_id] = _first_party_sp(sp_id, client)
    return sp_id


def _first_party_sp(sp_id: str, client: PublicClient) -> JsonObject:
    return {
        "id": sp_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": [],
        "appDisplayName": client.display_name,
        "appDescription": None,
        "appId": client.client_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": MICROSOFT_SERVICES_TENANT_ID,
        "appRoleAssignmentRequired": False,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": client.display_name,
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": list(client.public_redirect_uris),
        "servicePrincipalNames": [client.client_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADandPersonalMicrosoftAccount",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": [],
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": {
            "displayName": None,
            "verifiedPublisherId": None,
            "addedDateTime": None,
        },
    }


# -- scopes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeRequest:
    """A ``scope`` parameter: one resource's scopes (or ``.default``) and OpenID scopes."""

    #: The resource as requested (a token's ``aud``): Graph's URI or app id, or the origin.
    resource: str
    default: bool
    names: tuple[str, ...]
    oidc: frozenset[str]

    @property
    def offline(self) -> bool:
        return "offline_access" in self.oidc

    def text(self) -> str:
        parts = [f"{self.resource}/.default"] if self.default else []
        parts += [f"{self.resource}/{n}" for n in self.names]
        return " ".join([*parts, *sorted(self.oidc)])


def parse_scope(scope: str, *, origin: str) -> ScopeRequest:
    """Split a ``scope`` parameter; :class:`OAuthError` for a scope Entra would refuse."""
    if not scope.strip():
        raise _missing("scope")
    oidc: set[str] = set()
    resources: dict[str, str] = {}
    default = False
    names: list[str] = []
    for item in scope.split():
        if item.lower() in _OIDC:
            oidc.add(item.lower())
            continue
        resource, name = _split_scope(item, origin)
        resources.setdefault(resource.lower(), resource)
        if name.lower() == ".default":
            default = True
        elif name.lower() not in {n.lower() for n in names}:
            names.append(name)
    if len(resources) > 1:
        raise OAuthError(
            400,
            "invalid_scope",
            700022,
            f"The provided value for the input parameter scope isn't valid because it contains "
            f"more than one resource. Scope {scope} is not valid.",
        )
    if default and names:
        raise OAuthError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope "
            f"{scope} is not valid. .default cannot be combined with other scopes of the same "
            "resource.",
        )
    resource = next(iter(resources.values()), GRAPH_RESOURCE)
    # Only OpenID scopes: Entra answers a Microsoft Graph token.
    return ScopeRequest(resource, default or not names, tuple(names), frozenset(oidc))


def _split_scope(item: str, origin: str) -> tuple[str, str]:
    if "/" not in item or not ("://" in item or item.lower().startswith(GRAPH_APP_ID)):
        return GRAPH_RESOURCE, item
    resource, _, name = item.rpartition("/")
    lowered = resource.lower().rstrip("/")
    if lowered in {GRAPH_RESOURCE, GRAPH_APP_ID}:
        return resource.rstrip("/"), name
    if lowered == origin.lower().rstrip("/"):
        return origin.rstrip("/"), name
    raise OAuthError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant. This can happen "
        "if the application has not been installed by the administrator of the tenant or "
        "consented to by any user in the tenant. You might have sent your authentication "
        "request to the wrong tenant.",
    )


def granted_scopes(tenant: Tenant, client: PublicClient, user_id: str) -> frozenset[str]:
    """The Graph delegated scopes the client holds for the user: pre-authorized, or granted in
    ``oauth2PermissionGrants`` (admin consent ``AllPrincipals``, or the user's own)."""
    if client.preauthorized is not None:
        return client.preauthorized
    if client.view is not None:
        sp_id = client.view.object_id
    else:
        sp_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"ctsync-emulator/{tenant.id}/{client.client_id}")
        )
    graph_id = microsoft_graph_service_principal(tenant)["id"]
    out: set[str] = set()
    for grant in tenant.oauth2_permission_grants.values():
        if str(grant.get("clientId", "")).lower() != sp_id.lower():
            continue
        if str(grant.get("resourceId", "")).lower() != graph_id.lower():
            continue
        kind = grant.get("consentType")
        principal = str(grant.get("principalId") or "").lower()
        if kind == "AllPrincipals" or (kind == "Principal" and principal == user_id.lower()):
            out.update(str(grant.get("scope") or "").split())
    return frozenset(out)


def _consent_problem(
    tenant: Tenant, client: PublicClient, user: JsonObject, req: ScopeRequest, answer: str
) -> OAuthError | None:
    """Consent at sign-in: grant what the user may and says yes to (``answer``: ``self``,
    ``organization`` or ``none``); the problem if the sign-in cannot get its scopes."""
    user_id = str(user["id"])
    if client.preauthorized is not None:
        return _scope_problem(tenant, client, user_id, req)
    granted = {s.lower() for s in granted_scopes(tenant, client, user_id)}
    missing = [n for n in req.names if n.lower() not in granted]
    if missing and answer != "none":
        may_admin = bool(assigned_role_ids(tenant, user_id) & CONSENT_ROLES)
        admin_only = [n for n in missing if n not in USER_CONSENTABLE]
        if (admin_only or answer == "organization") and not may_admin:
            return _admin_consent_required(client)
        _record_consent(tenant, client, user_id, missing, organization=answer == "organization")
    return _scope_problem(tenant, client, user_id, req)


def _scope_problem(
    tenant: Tenant, client: PublicClient, user_id: str, req: ScopeRequest
) -> OAuthError | None:
    granted = granted_scopes(tenant, client, user_id)
    lowered = {s.lower() for s in granted}
    missing = [n for n in req.names if n.lower() not in lowered]
    if client.preauthorized is not None and missing:
        return OAuthError(
            400,
            "invalid_grant",
            65002,
            f"Consent between first party application '{client.client_id}' and first party "
            f"resource '{GRAPH_APP_ID}' must be configured via preauthorization - applications "
            "owned and operated by Microsoft must get approval from the API owner before "
            "requesting tokens for that API.",
        )
    if missing or not granted:
        return OAuthError(
            400,
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application with ID "
            f"'{client.client_id}' named '{client.display_name}'. Send an interactive "
            "authorization request for this user and resource.",
        )
    return None


def _admin_consent_required(client: PublicClient) -> OAuthError:
    return OAuthError(
        400,
        "access_denied",
        90094,
        f"The grant requires admin permission: {client.display_name} needs permission to "
        "access resources in your organization that only an admin can grant. Please ask an "
        "admin to grant permission to this app before you can use it.",
    )


def _record_consent(
    tenant: Tenant, client: PublicClient, user_id: str, scopes: Iterable[str], *, organization: bool
) -> None:
    client_sp = _client_principal_id(tenant, client)
    graph_id = microsoft_graph_service_principal(tenant)["id"]
    principal = None if organization else user_id
    grant_id = grant_key(client_sp, graph_id, principal)
    grant = tenant.oauth2_permission_grants.get(grant_id)
    if grant is None:
        grant = {
            "id": grant_id,
            "clientId": client_sp,
            "consentType": "AllPrincipals" if organization else "Principal",
            "principalId": principal,
            "resourceId": graph_id,
            "scope": "",
        }
        tenant.oauth2_permission_grants[grant_id] = grant
    have = str(grant.get("scope") or "").split()
    lowered = {s.lower() for s in have}
    grant["scope"] = " ".join([*have, *(s for s in scopes if s.lower() not in lowered)])


def grant_key(client_id: str, resource_id: str, principal_id: str | None) -> str:
    """An ``oAuth2PermissionGrant`` id as Entra forms it: base64url (no padding) of the client,
    resource (and, for one user's consent, principal) object ids, GUID bytes in .NET order."""
    raw = uuid.UUID(client_id).bytes_le + uuid.UUID(resource_id).bytes_le
    if principal_id:
        raw += uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- the device code endpoint ----------------------------------------------------------------


def device_authorization(emulator: Emulator, request: EmuRequest, tenant_key: str) -> EmuResponse:
    """``POST /{tenant}/oauth2/v2.0/devicecode``."""
    from ctsync.emulator.core.oauth import _correlation_headers, _form, _json, _tenant_or_fail

    method = request.method.upper()
    if method != "POST":
        raise OAuthError(
            400,
            "invalid_request",
            900561,
            f"The endpoint only accepts POST requests. Received a {method} request.",
        )
    tenant = _tenant_or_fail(emulator, tenant_key, error="invalid_request")
    form = _form(request.body)
    client_id = form.get("client_id")
    if not client_id:
        raise _missing("client_id")
    client = find_public_client(tenant, client_id)
    if client is None:
        raise _unknown_client(tenant, client_id)
    req = parse_scope(form.get("scope", ""), origin=request.origin)
    now = emulator.clock.now()
    grant = DeviceCodeGrant(
        device_code=secrets.token_urlsafe(48),
        user_code="".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9)),
        client_id=client.client_id,
        scope=req.text(),
        created=now,
        expires=now + DEVICE_CODE_LIFETIME,
        interval=DEVICE_CODE_INTERVAL,
        origin=request.origin,
    )
    _forget_expired(tenant, now)
    tenant.sign_in.device_codes[grant.device_code] = grant
    if tenant.sign_in.queued:
        # The control API's "next sign-in": the person enters the code at once. One Entra
        # refuses (a disabled account, consent the user may not give) ends the flow: the next
        # poll answers the refusal rather than leaving the client polling for 15 minutes.
        item = tenant.sign_in.queued.pop(0)
        user = tenant.users.get(item.user_id) if item.user_id else None
        decline = item.decline or user is None
        problem = _decide(emulator, tenant, grant, user, decline=decline, consent=item.consent)
        if problem is not None:
            grant.state, grant.refusal = "refused", (problem[1], problem[2])
    uri = f"{request.origin}/devicelogin"
    body = {
        "user_code": grant.user_code,
        "device_code": grant.device_code,
        "verification_uri": uri,
        "expires_in": int(DEVICE_CODE_LIFETIME.total_seconds()),
        "interval": DEVICE_CODE_INTERVAL,
        "message": (
            f"To sign in, use a web browser to open the page {uri} and enter the code "
            f"{grant.user_code} to authenticate."
        ),
    }
    return _json(200, body, _correlation_headers(emulator, request))


def _forget_expired(tenant: Tenant, now: datetime) -> None:
    state = tenant.sign_in
    for key in [k for k, g in state.device_codes.items() if now >= g.expires + timedelta(hours=1)]:
        del state.device_codes[key]
    for key in [
        k for k, c in state.authorization_codes.items() if now >= c.expires + timedelta(hours=1)
    ]:
        del state.authorization_codes[key]


# -- the token endpoint ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One token request of a delegated grant."""

    emulator: Emulator
    request: EmuRequest
    tenant: Tenant
    client: PublicClient
    form: Mapping[str, str]
    now: datetime
    #: The client authenticated with its credential (a confidential redemption).
    confidential: bool = False


def token(
    emulator: Emulator, request: EmuRequest, tenant: Tenant, form: Mapping[str, str]
) -> EmuResponse:
    """A delegated grant at ``POST /{tenant}/oauth2/v2.0/token``.

    Public client flows (the device code, a code sent to a ``publicClient`` redirect URI and
    the refresh tokens they bring) present no credential (AADSTS700025 if they do); a code sent
    to a ``web`` redirect URI, or a device code of a client without public client flows, needs
    the client's credential like client credentials do (AADSTS7000218 without one).
    """
    from ctsync.emulator.core.client_auth import authenticate_client, read_credentials

    presented = read_credentials(request, form)
    if not presented.client_id:
        raise _missing("client_id")
    client = find_public_client(tenant, presented.client_id)
    if client is None:
        raise _unknown_client(tenant, presented.client_id)
    grant_type = form["grant_type"]
    now = emulator.clock.now()
    code: AuthorizationCode | None = None
    refresh: RefreshTokenGrant | None = None
    if grant_type == AUTHORIZATION_CODE_GRANT:
        code = _redeemable_code(tenant, client, form, now)
        confidential = not _redirect_allowed(code.redirect_uri, client.public_redirect_uris)
    elif grant_type == DEVICE_CODE_GRANT:
        confidential = not client.public_flows
    else:
        refresh = _refresh_grant(tenant, client, form, now)
        confidential = refresh.confidential
    if confidential:
        if client.view is None:
            raise _confidential_without_secret()
        authenticate_client(emulator, request, tenant, form)
    elif presented.secret is not None or presented.assertion is not None:
        raise _public_with_credential()
    call = _Call(emulator, request, tenant, client, form, now, confidential)
    if code is not None:
        return _redeem_code(call, code)
    if refresh is not None:
        user = _signed_in_user(tenant, refresh.user_id)
        req = parse_scope(form.get("scope", ""), origin=request.origin)
        return _issue(call, user, req, session=refresh.session_id)
    return _poll_device_code(call)


def _poll_device_code(call: _Call) -> EmuResponse:
    tenant, now = call.tenant, call.now
    device_code = call.form.get("device_code") or call.form.get("code")
    if not device_code:
        raise _missing("device_code")
    grant = tenant.sign_in.device_codes.get(device_code)
    if grant is None or grant.client_id.lower() != call.client.client_id.lower():
        raise OAuthError(
            400,
            "bad_verification_code",
            70018,
            "The device_code sent to the /token endpoint wasn't recognized. Verify that the "
            "client is sending the correct device_code in the request.",
        )
    if now >= grant.expires:
        del tenant.sign_in.device_codes[device_code]
        raise OAuthError(
            400,
            "expired_token",
            70019,
            "Verification code expired. Have the user retry the sign-in.",
        )
    if grant.state == "declined":
        del tenant.sign_in.device_codes[device_code]
        raise OAuthError(
            400,
            "authorization_declined",
            65004,
            "User declined to consent to access the app.",
        )
    if grant.state == "refused" and grant.refusal is not None:
        del tenant.sign_in.device_codes[device_code]
        raise OAuthError(400, "invalid_grant", grant.refusal[0], grant.refusal[1])
    if grant.state == "pending":
        last = grant.last_poll
        grant.last_poll = now
        grant.polls += 1
        if last is not None and (now - last).total_seconds() < grant.interval:
            grant.interval += 5
            raise OAuthError(
                400,
                "slow_down",
                EMULATOR_CODE,
                "OAuth 2.0 device flow error. The client polled again before the interval "
                f"passed; wait at least {grant.interval} seconds between polls.",
            )
        raise OAuthError(
            400,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    del tenant.sign_in.device_codes[device_code]
    user = _signed_in_user(tenant, str(grant.user_id))
    req = parse_scope(grant.scope, origin=grant.origin or call.request.origin)
    return _issue(call, user, req, session=str(uuid.uuid4()))


def _redeemable_code(
    tenant: Tenant, client: PublicClient, form: Mapping[str, str], now: datetime
) -> AuthorizationCode:
    code_value = form.get("code")
    if not code_value:
        raise _missing("code")
    redirect_uri = form.get("redirect_uri")
    if not redirect_uri:
        raise _missing("redirect_uri")
    code = tenant.sign_in.authorization_codes.get(code_value)
    if code is None:
        raise OAuthError(
            400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
        )
    if code.redeemed:
        raise OAuthError(
            400,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code "
            "or use an existing refresh token.",
        )
    if now >= code.expires:
        raise OAuthError(
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. "
            "Send a new interactive authorization request for this user and resource.",
        )
    if code.client_id.lower() != client.client_id.lower() or redirect_uri != code.redirect_uri:
        raise OAuthError(
            400,
            "invalid_grant",
            70000,
            "The provided value for the 'code' parameter is not valid: it was issued to another "
            "client or redirect URI.",
        )
    return code


def _redeem_code(call: _Call, code: AuthorizationCode) -> EmuResponse:
    if code.code_challenge is not None:
        verifier = call.form.get("code_verifier") or ""
        if code.code_challenge_method == "S256":
            digest = hashlib.sha256(verifier.encode()).digest()
            computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        else:
            computed = verifier
        if not verifier or not hmac.compare_digest(computed, code.code_challenge):
            raise OAuthError(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            )
    code.redeemed = True
    user = _signed_in_user(call.tenant, code.user_id)
    req = parse_scope(call.form.get("scope") or code.scope, origin=call.request.origin)
    return _issue(call, user, req, session=str(uuid.uuid4()), nonce=code.nonce)


def _refresh_grant(
    tenant: Tenant, client: PublicClient, form: Mapping[str, str], now: datetime
) -> RefreshTokenGrant:
    value = form.get("refresh_token")
    if not value:
        raise _missing("refresh_token")
    grant = tenant.sign_in.refresh_tokens.get(_digest(value))
    if grant is None:
        raise OAuthError(
            400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
        )
    if grant.client_id.lower() != client.client_id.lower():
        raise OAuthError(
            400,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed: the refresh token was issued to another "
            "client.",
        )
    if now >= grant.expires:
        raise OAuthError(
            400,
            "invalid_grant",
            700082,
            f"The refresh token has expired due to inactivity. The token was issued on "
            f"{_iso(grant.issued)} and was inactive for 90.00:00:00.",
        )
    _signed_in_user(tenant, grant.user_id)  # a disabled or deleted account first
    revoked = tenant.sign_in.revoked_before.get(grant.user_id)
    if revoked is not None and grant.issued <= revoked:
        raise OAuthError(
            400,
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is "
            "needed. The user might have changed or reset their password. The grant was issued "
            f"on '{_iso(grant.issued)}' and the TokensValidFrom date (before which tokens are "
            f"not valid) for this user is '{_iso(revoked)}'.",
        )
    return grant


def _signed_in_user(tenant: Tenant, user_id: str) -> JsonObject:
    user = tenant.users.get(user_id)
    if user is None:
        raise OAuthError(
            400,
            "invalid_grant",
            50034,
            f"The user account {{EUII Hidden}} does not exist in the {tenant.id} directory. To "
            "sign into this application, the account must be added to the directory.",
        )
    if user.get("accountEnabled") is False:
        raise OAuthError(400, "invalid_grant", 50057, "The user account is disabled.")
    return user


# -- tokens ----------------------------------------------------------------------------------


def _issue(
    call: _Call,
    user: JsonObject,
    req: ScopeRequest,
    *,
    session: str,
    nonce: str | None = None,
) -> EmuResponse:
    from ctsync.emulator.core.oauth import _correlation_headers, _json

    tenant, client, now = call.tenant, call.client, call.now
    problem = _scope_problem(tenant, client, str(user["id"]), req)
    if problem is not None:
        raise problem
    scopes = sorted(granted_scopes(tenant, client, str(user["id"])), key=str.lower)
    access, expires = _access_token(call, user, req, scopes, session=session)
    expires_in = max(0, round((expires - now).total_seconds()))
    granted = [f"{req.resource}/{s}" for s in scopes]
    if req.default:
        granted.append(f"{req.resource}/.default")
    granted += [s for s in ("openid", "profile", "email") if s in req.oidc]
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(granted),
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access,
    }
    if req.offline:
        body["refresh_token"] = _new_refresh_token(call, user, session)
    if "openid" in req.oidc:
        body["id_token"] = _id_token(call, user, req, nonce)
    if call.form.get("client_info") == "1":
        info = json.dumps({"uid": str(user["id"]), "utid": tenant.id}, separators=(",", ":"))
        body["client_info"] = base64.urlsafe_b64encode(info.encode()).rstrip(b"=").decode()
    return _json(200, body, _correlation_headers(call.emulator, call.request))


def _access_token(
    call: _Call, user: JsonObject, req: ScopeRequest, scopes: list[str], *, session: str
) -> tuple[str, datetime]:
    tenant, client, now = call.tenant, call.client, call.now
    expires = now + TOKEN_LIFETIME
    oidc = [s for s in ("profile", "openid", "email") if s in req.oidc]
    claims: dict[str, Any] = {
        "aud": req.resource,
        "iss": f"https://sts.windows.net/{tenant.id}/",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "acct": 0 if is_member(user) else 1,
        "acr": "1",
        "amr": ["pwd"],
        "app_displayname": client.display_name,
        "appid": client.client_id,
        "appidacr": "1" if call.confidential else "0",
        "idtyp": "user",
        "name": user.get("displayName"),
        "oid": str(user["id"]),
        "scp": " ".join([*scopes, *oidc]),
        "sid": session,
        "sub": _pairwise_sub(tenant, client, user, req.resource),
        "tid": tenant.id,
        "unique_name": user.get("userPrincipalName"),
        "upn": user.get("userPrincipalName"),
        "uti": secrets.token_urlsafe(16),
        "ver": "1.0",
        "wids": token_wids(tenant, user),
    }
    for claim, prop in (("given_name", "givenName"), ("family_name", "surname")):
        if user.get(prop):
            claims[claim] = user[prop]
    return call.emulator.tokens.sign(claims), expires


def _id_token(call: _Call, user: JsonObject, req: ScopeRequest, nonce: str | None) -> str:
    tenant, now = call.tenant, call.now
    claims: dict[str, Any] = {
        "aud": call.client.client_id,
        "iss": f"{call.request.origin}/{tenant.id}/v2.0",
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
        "oid": str(user["id"]),
        "preferred_username": user.get("userPrincipalName"),
        "sub": _pairwise_sub(tenant, call.client, user),
        "tid": tenant.id,
        "uti": secrets.token_urlsafe(16),
        "ver": "2.0",
    }
    if "profile" in req.oidc:
        claims["name"] = user.get("displayName")
    if "email" in req.oidc and user.get("mail"):
        claims["email"] = user["mail"]
    if nonce is not None:
        claims["nonce"] = nonce
    return call.emulator.tokens.sign(claims)


def _pairwise_sub(
    tenant: Tenant, client: PublicClient, user: JsonObject, resource: str = ""
) -> str:
    """A subject unique to the user and the application the token is for, as Entra's pairwise
    ``sub`` (an ID token's differs from the access tokens' of each resource)."""
    seed = f"{tenant.id}|{client.client_id.lower()}|{resource.lower()}|{user['id']}".encode()
    digest = hmac.new(_SUB_NAMESPACE, seed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _new_refresh_token(call: _Call, user: JsonObject, session: str) -> str:
    value = "1." + secrets.token_urlsafe(96)
    call.tenant.sign_in.refresh_tokens[_digest(value)] = RefreshTokenGrant(
        client_id=call.client.client_id,
        user_id=str(user["id"]),
        issued=call.now,
        expires=call.now + REFRESH_TOKEN_LIFETIME,
        session_id=session,
        confidential=call.confidential,
    )
    return value


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def revoke_user_sessions(tenant: Tenant, user_id: str, now: datetime) -> None:
    """Every refresh token issued to the user until ``now`` stops working (AADSTS50173): what
    disabling the account (or revoking its sessions) does."""
    tenant.sign_in.revoked_before[user_id] = now


# -- the authorize endpoint ------------------------------------------------------------------


class _PageError(Exception):
    """An ``/authorize`` error Entra shows on its own page (no redirect URI to trust yet)."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"AADSTS{code}: {message}")


@dataclass(frozen=True)
class _Target:
    """Where an ``/authorize`` answer goes: a client, and a redirect URI it registered."""

    tenant: Tenant
    client: PublicClient
    params: dict[str, str]
    redirect_uri: str
    mode: str
    state: str | None


def authorize(emulator: Emulator, request: EmuRequest, tenant_key: str) -> EmuResponse:
    """``GET``/``POST /{tenant}/oauth2/v2.0/authorize``: sign a user in, send the code.

    Errors before the redirect URI is known to be the client's show Entra's error page; later
    ones go to the redirect URI (``error``, ``error_description``, ``state``).
    """
    try:
        target = _target(emulator, request, tenant_key)
    except _PageError as exc:
        return _error_page(400, exc.code, exc.message)
    try:
        checked = _checked_request(target, request)
    except OAuthError as exc:
        return _redirect_error(target, exc)
    answer = _who_signs_in(target, request)
    if answer is None:
        return _sign_in_page(request, target, None)
    if isinstance(answer, EmuResponse):
        return answer
    try:
        return _sign_in(emulator, target, answer, checked)
    except _PageError as exc:
        return _error_page(400, exc.code, exc.message)
    except OAuthError as exc:
        return _redirect_error(target, exc)


def _target(emulator: Emulator, request: EmuRequest, tenant_key: str) -> _Target:
    method = request.method.upper()
    if method == "GET":
        params = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    elif method == "POST":
        params = _form_body(request)
    else:
        raise _PageError(
            900561, f"The endpoint only accepts GET, POST requests. Received a {method} request."
        )
    tenant = find_tenant(emulator, tenant_key)
    if tenant is None:
        raise _PageError(
            90002,
            f"Tenant '{tenant_key}' not found. Check to make sure you have the correct tenant ID "
            "and are signing into the correct cloud.",
        )
    client_id = params.get("client_id")
    if not client_id:
        raise _PageError(
            900144, "The request body must contain the following parameter: 'client_id'."
        )
    client = find_public_client(tenant, client_id)
    if client is None:
        raise _PageError(700016, _unknown_client(tenant, client_id).message)
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise _PageError(900971, "No reply address provided.")
    if not _redirect_allowed(
        redirect_uri, (*client.public_redirect_uris, *client.web_redirect_uris)
    ):
        raise _PageError(
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            f"redirect URIs configured for the application '{client.client_id}'. Make sure the "
            "redirect URI sent in the request matches one added to your application in the "
            "Azure portal.",
        )
    mode = params.get("response_mode") or "query"
    state = params.get("state")
    if mode not in {"query", "fragment", "form_post"}:
        mode = "query"
        params["response_mode"] = "query"
    return _Target(tenant, client, params, redirect_uri, mode, state)


def _who_signs_in(target: _Target, request: EmuRequest) -> QueuedSignIn | EmuResponse | None:
    """The form's answer, else the sign-in queued through the control API; ``None``: show the
    sign-in form."""
    params, tenant = target.params, target.tenant
    if request.method.upper() == "POST" and "login" in params:
        if params.get("decline"):
            return QueuedSignIn(user_id="", decline=True)
        found = _find_user_in(tenant, params["login"])
        if found is None:
            notice = (
                f"AADSTS50034: The user account {params['login']} does not exist in the "
                f"{tenant.display_name} directory."
            )
            return _sign_in_page(request, target, notice)
        return QueuedSignIn(user_id=str(found["id"]), consent=params.get("consent") or "self")
    if tenant.sign_in.queued:
        return tenant.sign_in.queued.pop(0)
    return None


def _checked_request(
    target: _Target, request: EmuRequest
) -> tuple[ScopeRequest, str | None, str | None]:
    """The scope and PKCE challenge of an ``/authorize`` request; :class:`OAuthError` (sent to
    the redirect URI) for a request Entra refuses."""
    params = target.params
    if params.get("response_mode") not in {None, "", "query", "fragment", "form_post"}:
        raise OAuthError(
            400,
            "invalid_request",
            70007,
            f"The response_mode '{params.get('response_mode')}' is not supported.",
        )
    if params.get("response_type") != "code":
        raise OAuthError(
            400,
            "unsupported_response_type",
            70005,
            "The provided value for the input parameter 'response_type' is not allowed for "
            f"this request. Expected value: code. Received value: "
            f"{params.get('response_type') or ''}.",
        )
    req = parse_scope(params.get("scope", ""), origin=request.origin)
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if method is not None and challenge is None:
        raise OAuthError(
            400, "invalid_request", 501491, "Invalid size of Code_Challenge parameter."
        )
    if challenge is not None:
        method = method or "plain"
        if method not in {"S256", "plain"}:
            raise OAuthError(
                400,
                "invalid_request",
                90100,
                f"The value of code_challenge_method ('{method}') is not valid. Supported "
                "values: S256, plain.",
            )
        if not 43 <= len(challenge) <= 128:
            raise OAuthError(
                400, "invalid_request", 501491, "Invalid size of Code_Challenge parameter."
            )
    if params.get("prompt") == "none":
        raise OAuthError(
            400,
            "login_required",
            50058,
            "A silent sign-in request was sent but no user is signed in.",
        )
    return req, challenge, method


def _sign_in(
    emulator: Emulator,
    target: _Target,
    answer: QueuedSignIn,
    checked: tuple[ScopeRequest, str | None, str | None],
) -> EmuResponse:
    req, challenge, challenge_method = checked
    tenant, client = target.tenant, target.client
    if answer.decline:
        raise OAuthError(400, "access_denied", 65004, "User declined to consent to access the app.")
    user = tenant.users.get(answer.user_id)
    if user is None:
        raise _PageError(
            50034, f"The user account does not exist in the {tenant.display_name} directory."
        )
    if user.get("accountEnabled") is False:
        raise _PageError(50057, "The user account is disabled.")
    problem = _consent_problem(tenant, client, user, req, answer.consent)
    if problem is not None:
        raise problem
    now = emulator.clock.now()
    _forget_expired(tenant, now)
    code = AuthorizationCode(
        code=secrets.token_urlsafe(64),
        client_id=client.client_id,
        redirect_uri=target.redirect_uri,
        scope=req.text(),
        user_id=str(user["id"]),
        expires=now + AUTHORIZATION_CODE_LIFETIME,
        code_challenge=challenge,
        code_challenge_method=challenge_method,
        nonce=target.params.get("nonce"),
    )
    tenant.sign_in.authorization_codes[code.code] = code
    answer_params = {"code": code.code}
    if target.state is not None:
        answer_params["state"] = target.state
    answer_params["session_state"] = str(uuid.uuid4())
    return _deliver(target.redirect_uri, target.mode, answer_params)


def _form_body(request: EmuRequest) -> dict[str, str]:
    try:
        text = request.body.decode()
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))


def _normalized(uris: Iterable[str]) -> set[str]:
    return {u.rstrip("/") for u in uris} | set(uris)


def _redirect_allowed(uri: str, registered: Iterable[str]) -> bool:
    """Whether ``uri`` matches a registered redirect URI; for loopback addresses the port is
    ignored ("For loopback addresses, the port component is ignored")."""
    asked = urlsplit(uri)
    for candidate in registered:
        if candidate == uri:
            return True
        reg = urlsplit(candidate)
        if (
            reg.scheme == "http"
            and asked.scheme == "http"
            and (reg.hostname or "") in _LOOPBACK_HOSTS
            and (asked.hostname or "") in _LOOPBACK_HOSTS
            and reg.hostname in {asked.hostname, "localhost"}
            and reg.path.rstrip("/") == asked.path.rstrip("/")
        ):
            return True
    return False


def _deliver(redirect_uri: str, mode: str, params: Mapping[str, str]) -> EmuResponse:
    """The answer to the app: a redirect (``query``, ``fragment``) or an auto-posting form."""
    if mode == "form_post":
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
            for k, v in params.items()
        )
        page = (
            "<html><head><title>Working...</title></head><body>"
            f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">'
            f"{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p>"
            '<input type="submit" value="Submit"/></noscript></form>'
            "<script>window.setTimeout(function(){document.forms[0].submit()},0)</script>"
            "</body></html>"
        )
        return _html(200, page)
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    location = f"{redirect_uri}{separator}{urlencode(params)}"
    return EmuResponse(
        status=302,
        headers={"location": location, "cache-control": "no-store, no-cache"},
        body=b"",
    )


def _redirect_error(target: _Target, exc: OAuthError) -> EmuResponse:
    params = {"error": exc.error, "error_description": f"AADSTS{exc.code}: {exc.message}"}
    if target.state is not None:
        params["state"] = target.state
    return _deliver(target.redirect_uri, target.mode, params)


def _html(status: int, page: str) -> EmuResponse:
    return EmuResponse(
        status=status,
        headers={
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store, no-cache",
            "x-frame-options": "DENY",
        },
        body=page.encode(),
    )


def _error_page(status: int, code: int, message: str) -> EmuResponse:
    return _html(
        status,
        "<html><head><title>Sign in to your account</title></head><body>"
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f"<p>AADSTS{code}: {html.escape(message)}</p></body></html>",
    )


def _sign_in_page(request: EmuRequest, target: _Target, notice: str | None) -> EmuResponse:
    tenant, client, params = target.tenant, target.client, target.params
    action = urlsplit(request.url).path
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
        for k, v in params.items()
        if k not in {"login", "decline", "consent"}
    )
    hint = html.escape(params.get("login") or params.get("login_hint") or "")
    warning = f'<p role="alert">{html.escape(notice)}</p>' if notice else ""
    page = (
        "<html><head><title>Sign in to your account</title></head><body>"
        f"<h1>Sign in to {html.escape(tenant.display_name)}</h1>"
        f"<p>{html.escape(client.display_name)} wants to sign you in.</p>{warning}"
        f'<form method="POST" action="{html.escape(action)}">{hidden}'
        f'<label>User <input name="login" value="{hint}" autofocus/></label>'
        '<label><input type="checkbox" name="consent" value="organization"/> Consent on behalf '
        "of your organization</label>"
        '<button type="submit">Sign in</button> '
        '<button type="submit" name="decline" value="1">Cancel</button>'
        "</form></body></html>"
    )
    return _html(200, page)


# -- the device login page -------------------------------------------------------------------


def device_login(emulator: Emulator, request: EmuRequest) -> EmuResponse:
    """``GET``/``POST /devicelogin``: the ``verification_uri`` of the device code flow, a form
    that approves (or declines) a code as the user named in it."""
    if request.method.upper() != "POST":
        return _device_page(None)
    params = _form_body(request)
    code = (params.get("otc") or "").strip().upper()
    found = _find_device_code(emulator, code)
    if found is None:
        return _device_page("AADSTS70018: Invalid verification code. Check the code and try again.")
    tenant, grant = found
    if params.get("decline"):
        problem = _decide(emulator, tenant, grant, None, decline=True)
    else:
        user = _find_user_in(tenant, params.get("login") or "")
        if user is None:
            return _device_page(
                f"AADSTS50034: The user account does not exist in the {tenant.display_name} "
                "directory."
            )
        problem = _decide(
            emulator, tenant, grant, user, decline=False, consent=params.get("consent") or "self"
        )
    if problem is not None:
        return _device_page(f"AADSTS{problem[1]}: {problem[2]}")
    client = find_public_client(tenant, grant.client_id)
    name = client.display_name if client else grant.client_id
    return _html(
        200,
        "<html><body><p>"
        + (
            "You have declined to sign in."
            if params.get("decline")
            else f"You have signed in to the {html.escape(name)} application on your device. "
            "You may now close this window."
        )
        + "</p></body></html>",
    )


def _device_page(notice: str | None) -> EmuResponse:
    warning = f'<p role="alert">{html.escape(notice)}</p>' if notice else ""
    return _html(
        200,
        "<html><head><title>Enter code</title></head><body><h1>Enter code</h1>"
        f'{warning}<form method="POST" action="/devicelogin">'
        '<label>Code <input name="otc" autofocus/></label>'
        '<label>User <input name="login"/></label>'
        '<label><input type="checkbox" name="consent" value="organization"/> Consent on behalf '
        "of your organization</label>"
        '<button type="submit">Sign in</button> '
        '<button type="submit" name="decline" value="1">Cancel</button>'
        "</form></body></html>",
    )


# -- approving and declining -----------------------------------------------------------------


def _find_device_code(emulator: Emulator, user_code: str) -> tuple[Tenant, DeviceCodeGrant] | None:
    wanted = user_code.strip().upper()
    for tenant in emulator.tenants.values():
        for grant in tenant.sign_in.device_codes.values():
            if grant.user_code == wanted:
                return tenant, grant
    return None


def _decide(
    emulator: Emulator,
    tenant: Tenant,
    grant: DeviceCodeGrant,
    user: JsonObject | None,
    *,
    decline: bool,
    consent: str = "self",
) -> tuple[int, int, str] | None:
    """Approve or decline a device code; ``(status, AADSTS code, message)`` if it cannot be."""
    now = emulator.clock.now()
    if now >= grant.expires:
        return 400, 70019, "Verification code expired. Have the user retry the sign-in."
    if grant.state != "pending":
        return 409, 90120, "The request was already authorized or declined."
    if decline:
        grant.state = "declined"
        return None
    assert user is not None  # the callers resolve the user first
    if user.get("accountEnabled") is False:
        return 400, 50057, "The user account is disabled."
    client = find_public_client(tenant, grant.client_id)
    if client is None:
        return 400, 700016, f"Application with identifier '{grant.client_id}' was not found."
    req = parse_scope(grant.scope, origin=grant.origin)
    problem = _consent_problem(tenant, client, user, req, consent)
    if problem is not None:
        return 400, problem.code, problem.message
    grant.state = "approved"
    grant.user_id = str(user["id"])
    return None


# -- the control API: /_emulator/signin/..., /_emulator/directory-roles ----------------------


def handle_signin_control(
    emulator: Emulator, method: str, path: str, body: Any
) -> EmuResponse | None:
    """The control API's sign-in routes; ``None`` for a path that is not one of them."""
    route = (method, path.lower().rstrip("/"))
    if route == ("GET", "/signin/pending"):
        return json_response(200, _pending(emulator))
    if route == ("POST", "/signin/approve"):
        return _approve(emulator, body, decline=False)
    if route == ("POST", "/signin/decline"):
        return _approve(emulator, body, decline=True)
    if route == ("POST", "/signin/next"):
        return _queue(emulator, body)
    if route == ("GET", "/directory-roles"):
        return json_response(200, {"assignments": _assignments(emulator)})
    if route == ("POST", "/directory-roles"):
        return _set_roles(emulator, body)
    return None


def _control_error(status: int, code: str, message: str) -> EmuResponse:
    return json_response(status, {"error": {"code": code, "message": message}})


def _user_summary(tenant: Tenant, user: JsonObject) -> dict[str, Any]:
    return {
        "tenant": tenant.name,
        "tenant_id": tenant.id,
        "id": user["id"],
        "userPrincipalName": user.get("userPrincipalName"),
    }


def _pending(emulator: Emulator) -> dict[str, Any]:
    now = emulator.clock.now()
    codes = []
    queued = []
    for tenant in emulator.tenants.values():
        for grant in tenant.sign_in.device_codes.values():
            if grant.state != "pending" or now >= grant.expires:
                continue
            client = find_public_client(tenant, grant.client_id)
            codes.append(
                {
                    "tenant": tenant.name,
                    "tenant_id": tenant.id,
                    "user_code": grant.user_code,
                    "client_id": grant.client_id,
                    "client_name": client.display_name if client else None,
                    "scope": grant.scope,
                    "created": _iso(grant.created),
                    "expires": _iso(grant.expires),
                    "polls": grant.polls,
                }
            )
        for item in tenant.sign_in.queued:
            user = tenant.users.get(item.user_id)
            queued.append(
                {
                    **(_user_summary(tenant, user) if user else {"tenant": tenant.name}),
                    "decline": item.decline,
                    "consent": item.consent,
                }
            )
    return {"device_codes": codes, "next": queued}


def _find_user(
    emulator: Emulator, ref: Any, tenant_ref: Any = None
) -> tuple[Tenant, JsonObject] | EmuResponse:
    if not isinstance(ref, str) or not ref.strip():
        return _control_error(400, "BadRequest", 'Name the user: {"user": "<UPN or object id>"}.')
    tenants = list(emulator.tenants.values())
    if tenant_ref is not None:
        try:
            tenants = [emulator.tenant(str(tenant_ref))]
        except KeyError:
            return _control_error(404, "NotFound", f"No tenant {tenant_ref!r} in the emulator.")
    for tenant in tenants:
        user = _find_user_in(tenant, ref)
        if user is not None:
            return tenant, user
    return _control_error(404, "NotFound", f"No user {ref!r} in the emulator's tenants.")


def _find_user_in(tenant: Tenant, ref: str) -> JsonObject | None:
    wanted = ref.strip().lower()
    if not wanted:
        return None
    for user in tenant.users.values():
        if wanted in {str(user["id"]).lower(), str(user.get("userPrincipalName") or "").lower()}:
            return user
    return None


def _approve(emulator: Emulator, body: Any, *, decline: bool) -> EmuResponse:
    if not isinstance(body, dict) or not isinstance(body.get("user_code"), str):
        shape = '{"user_code": "..."}' if decline else '{"user_code": "...", "user": "<UPN>"}'
        return _control_error(
            400, "BadRequest", f"signin/{'decline' if decline else 'approve'} takes {shape}."
        )
    consent = body.get("consent", "self")
    if consent not in {"self", "organization", "none"}:
        return _control_error(400, "BadRequest", 'consent takes "self", "organization" or "none".')
    found = _find_device_code(emulator, body["user_code"])
    if found is None:
        return _control_error(
            404, "NotFound", f"No device code with user code {body['user_code']!r} is pending."
        )
    tenant, grant = found
    user: JsonObject | None = None
    if not decline:
        located = _find_user(emulator, body.get("user"), tenant.id)
        if isinstance(located, EmuResponse):
            return located
        user = located[1]
    problem = _decide(emulator, tenant, grant, user, decline=decline, consent=consent)
    if problem is not None:
        status, code, message = problem
        return _control_error(status, f"AADSTS{code}", f"AADSTS{code}: {message}")
    answer: dict[str, Any] = {
        "user_code": grant.user_code,
        "tenant": tenant.name,
        "tenant_id": tenant.id,
        "client_id": grant.client_id,
        "state": grant.state,
    }
    if user is not None:
        answer["user"] = _user_summary(tenant, user)
    return json_response(200, answer)


def _queue(emulator: Emulator, body: Any) -> EmuResponse:
    if not isinstance(body, dict):
        return _control_error(
            400, "BadRequest", 'signin/next takes {"user": "<UPN or id>"} or {"decline": true}.'
        )
    consent = body.get("consent", "self")
    if consent not in {"self", "organization", "none"}:
        return _control_error(400, "BadRequest", 'consent takes "self", "organization" or "none".')
    decline = body.get("decline") is True
    if decline and body.get("user") is None:
        tenant_ref = body.get("tenant")
        if tenant_ref is None:
            return _control_error(
                400, "BadRequest", 'A declined sign-in names its tenant: {"tenant": "contoso"}.'
            )
        try:
            tenant = emulator.tenant(str(tenant_ref))
        except KeyError:
            return _control_error(404, "NotFound", f"No tenant {tenant_ref!r} in the emulator.")
        tenant.sign_in.queued.append(QueuedSignIn(user_id="", decline=True))
        return json_response(
            200, {"tenant": tenant.name, "decline": True, "queued": len(tenant.sign_in.queued)}
        )
    located = _find_user(emulator, body.get("user"), body.get("tenant"))
    if isinstance(located, EmuResponse):
        return located
    tenant, user = located
    tenant.sign_in.queued.append(
        QueuedSignIn(user_id=str(user["id"]), decline=decline, consent=consent)
    )
    return json_response(
        200,
        {
            "user": _user_summary(tenant, user),
            "decline": decline,
            "consent": consent,
            "queued": len(tenant.sign_in.queued),
        },
    )


def _assignments(emulator: Emulator) -> list[dict[str, Any]]:
    out = []
    for tenant in emulator.tenants.values():
        for user_id, role_ids in tenant.directory_roles.items():
            user = tenant.users.get(user_id)
            out.append(
                {
                    **(
                        _user_summary(tenant, user)
                        if user
                        else {"tenant": tenant.name, "id": user_id}
                    ),
                    "roles": [_role_entry(r) for r in role_ids],
                }
            )
    return out


def _role_entry(template_id: str) -> dict[str, Any]:
    return {"roleTemplateId": template_id, "displayName": role_name(template_id)}


def _set_roles(emulator: Emulator, body: Any) -> EmuResponse:
    roles = body.get("roles") if isinstance(body, dict) else None
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return _control_error(
            400,
            "BadRequest",
            'directory-roles takes {"user": "<UPN or id>", "roles": ["Security Administrator"]}.',
        )
    ids = []
    for ref in roles:
        rid = resolve_role(ref)
        if rid is None:
            return _control_error(
                400, "BadRequest", f"Unknown directory role {ref!r}: a role name or template id."
            )
        ids.append(rid)
    located = _find_user(emulator, body.get("user"), body.get("tenant"))
    if isinstance(located, EmuResponse):
        return located
    tenant, user = located
    stored = set_roles(tenant, str(user["id"]), ids)
    return json_response(
        200, {"user": _user_summary(tenant, user), "roles": [_role_entry(r) for r in stored]}
    )


# -- errors ----------------------------------------------------------------------------------


def _missing(parameter: str) -> OAuthError:
    return OAuthError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{parameter}'.",
    )


def _unknown_client(tenant: Tenant, client_id: str) -> OAuthError:
    return OAuthError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{tenant.display_name}'. This can happen if the application has not been installed "
        "by the administrator of the tenant or consented to by any user in the tenant. You may "
        "have sent your authentication request to the wrong tenant.",
    )


def _public_with_credential() -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        700025,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    )


def _confidential_without_secret() -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
