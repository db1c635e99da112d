"""The Entra ID side: the v2.0 token endpoint (client credentials) and OpenID metadata.

Served paths, ``{tenant}`` being a tenant id, its initial domain or its name:

- ``POST /{tenant}/oauth2/v2.0/token``: ``grant_type=client_credentials``; the client
  authenticates with a secret (``client_secret_post``, ``client_secret_basic``), a certificate
  (``private_key_jwt``) or a federated token (``core/client_auth.py``). The delegated grants
  (device code, authorization code, refresh token) are answered by ``core/delegated.py``.
- ``POST /{tenant}/oauth2/v2.0/devicecode``, ``GET``/``POST /{tenant}/oauth2/v2.0/authorize`` and
  the device code's ``/devicelogin`` page: a person signs in (``core/delegated.py``).
- ``GET /{tenant}/v2.0/.well-known/openid-configuration``: what MSAL reads before its first
  token request; the same document is served at ``/{tenant}/.well-known/openid-configuration``.
- ``GET /{tenant}/discovery/v2.0/keys``: the JWKS that verifies the emulator's tokens.
- ``/_oidc/...``: the built-in OIDC issuer workload identity federation trusts (``core/oidc.py``).

Errors use Entra's OAuth error body (``error``, ``error_description`` opening with the
AADSTS code, ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri``).
Choices where Entra's behaviour is undocumented are listed in ``docs/emulator.md`` (section
"OAuth").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ctsync.emulator.core.http import EmuRequest, EmuResponse
from ctsync.emulator.core.oidc import OIDC_PATH, handle_oidc
from ctsync.emulator.core.tokens import GRAPH_APP_ID

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator
    from ctsync.emulator.state import Tenant

__all__ = ["GRAPH_RESOURCE", "OAuthError", "handle_oauth", "resource_for_scope"]

GRAPH_RESOURCE = "https://graph.microsoft.com"
CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: OpenID scopes a client may add next to ``<resource>/.default``; they name no resource.
_OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})

#: The AADSTS code of answers only the emulator gives (certificate credentials, paths it does not
#: serve, contradicting client ids). It is outside the range Entra uses, so nobody mistakes it
#: for a real code.
EMULATOR_CODE = 9999001


class OAuthError(Exception):
    """An OAuth error answer: HTTP status, ``error``, AADSTS code and message."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        self.status = status
        self.error = error
        self.code = code
        self.message = message
        super().__init__(f"{status} {error}: AADSTS{code}: {message}")


def resource_for_scope(scope: str, *, origin: str | None = None) -> str:
    """The resource a client-credentials ``scope`` asks for, which becomes the token's ``aud``.

    The scope must name exactly one resource as ``<resource>/.default``; OpenID scopes
    beside it are ignored. Accepted resources: Microsoft Graph (by URI or app id) and, when
    ``origin`` is given, the emulator's own origin. With ``origin=None`` any bare
    ``scheme://host[:port]`` is accepted, as the in-process credential cannot know the URL its
    client will call.
    """
    names = [s for s in scope.split() if s.lower() not in _OIDC_SCOPES]
    if not names:
        raise OAuthError(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        )
    if len(names) > 1:
        raise OAuthError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope "
            f"{scope} is not valid. Client credential flows must request exactly one resource.",
        )
    name = names[0]
    if not name.lower().endswith("/.default"):
        raise OAuthError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {name} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    resource = name[: -len("/.default")].rstrip("/")
    if resource.lower() == GRAPH_RESOURCE:
        return GRAPH_RESOURCE
    if resource.lower() == GRAPH_APP_ID:
        return GRAPH_APP_ID
    if origin is not None and resource.lower() == origin.lower().rstrip("/"):
        return origin.rstrip("/")
    if origin is None and _is_origin(resource):
        return resource
    raise OAuthError(
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant. This can happen "
        "if the application has not been installed by the administrator of the tenant or "
        "consented to by any user in the tenant. You might have sent your authentication "
        "request to the wrong tenant.",
    )


def _is_origin(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc) and parts.path in {"", "/"}


def find_tenant(emulator: Emulator, key: str) -> Tenant | None:
    """A tenant by id, initial domain or name (case-insensitive), as the authority path names it."""
    key = key.lower()
    if key in emulator.tenants:
        return emulator.tenants[key]
    for tenant in emulator.tenants.values():
        if key in {tenant.domain.lower(), tenant.name.lower()}:
            return tenant
    return None


# -- routing ---------------------------------------------------------------------------------


def handle_oauth(emulator: Emulator, request: EmuRequest, path: str) -> EmuResponse:
    """Answer a request outside ``/v1.0`` and ``/_emulator``: the Entra ID endpoints."""
    segments = [s for s in path.split("/") if s]
    method = request.method.upper()
    try:
        if segments and segments[0] == OIDC_PATH.strip("/"):
            return handle_oidc(emulator, request, segments[1:])
        if [s.lower() for s in segments] == ["devicelogin"]:
            from ctsync.emulator.core.delegated import device_login

            return device_login(emulator, request)
        if len(segments) < 2:
            raise _not_served(method, path)
        tenant_key, rest = segments[0], "/".join(segments[1:]).lower()
        if rest == "oauth2/v2.0/token":
            return _token(emulator, request, tenant_key)
        if rest in {"oauth2/v2.0/devicecode", "oauth2/v2.0/authorize"}:
            from ctsync.emulator.core.delegated import authorize, device_authorization

            if rest.endswith("authorize"):
                return authorize(emulator, request, tenant_key)
            return device_authorization(emulator, request, tenant_key)
        if rest in {"v2.0/.well-known/openid-configuration", ".well-known/openid-configuration"}:
            _require_get(method)
            tenant = _tenant_or_fail(emulator, tenant_key, error="invalid_tenant")
            return _json(200, openid_configuration(request.origin, tenant.id))
        if rest == "discovery/v2.0/keys":
            _require_get(method)
            _tenant_or_fail(emulator, tenant_key, error="invalid_tenant")
            return _json(200, emulator.tokens.jwks)
        raise _not_served(method, path)
    except OAuthError as exc:
        return _error_response(emulator, request, exc)


def openid_configuration(origin: str, tenant_id: str) -> dict[str, Any]:
    """The tenant's v2.0 OpenID configuration, with the emulator's origin as the host.

    MSAL reads ``authorization_endpoint`` and ``token_endpoint`` (it takes the tenant from the
    token endpoint's path), ``device_authorization_endpoint`` and ``issuer``; the rest mirrors
    Entra's document. The token, device code and authorize endpoints and the keys are served.
    """
    base = f"{origin}/{tenant_id}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": False,
        "frontchannel_logout_supported": False,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "ver", "roles"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": urlsplit(origin).netloc,
        "rbac_url": "https://pas.windows.net",
    }


# -- the token endpoint ----------------------------------------------------------------------


def _token(emulator: Emulator, request: EmuRequest, tenant_key: str) -> EmuResponse:
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
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _missing("grant_type")
    from ctsync.emulator.core import delegated

    if grant_type in delegated.GRANT_TYPES:
        return delegated.token(emulator, request, tenant, form)
    if grant_type != CLIENT_CREDENTIALS:
        raise OAuthError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'. The ctsync emulator "
            f"supports '{CLIENT_CREDENTIALS}', 'authorization_code', 'refresh_token' and "
            "'urn:ietf:params:oauth:grant-type:device_code'.",
        )
    from ctsync.emulator.core.client_auth import authenticate_client

    client = authenticate_client(emulator, request, tenant, form)
    audience = resource_for_scope(form.get("scope", ""), origin=request.origin)
    token, expires_on = emulator.issue_token(tenant, client, audience=audience)
    expires_in = max(0, round(expires_on - emulator.clock.now().timestamp()))
    return _json(
        200,
        {
            "token_type": "Bearer",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": token,
        },
        _correlation_headers(emulator, request),
    )


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise OAuthError(
            400, "invalid_request", 900144, "The request body must be form-url-encoded UTF-8."
        ) from exc
    return dict(parse_qsl(text, keep_blank_values=False))


def _tenant_or_fail(emulator: Emulator, key: str, *, error: str) -> Tenant:
    tenant = find_tenant(emulator, key)
    if tenant is None:
        raise OAuthError(
            400,
            error,
            90002,
            f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID and "
            "are signing into the correct cloud.",
        )
    return tenant


def _missing(parameter: str) -> OAuthError:
    return OAuthError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{parameter}'.",
    )


def _require_get(method: str) -> None:
    if method != "GET":
        raise OAuthError(
            400,
            "invalid_request",
            900561,
            f"The endpoint only accepts GET requests. Received a {method} request.",
        )


def _not_served(method: str, path: str) -> OAuthError:
    return OAuthError(
        404,
        "not_found",
        EMULATOR_CODE,
        f"The ctsync emulator does not serve {method} {path}. Entra ID endpoints served: "
        "/{tenant}/oauth2/v2.0/token, /{tenant}/oauth2/v2.0/devicecode, "
        "/{tenant}/oauth2/v2.0/authorize, /devicelogin, "
        "/{tenant}/v2.0/.well-known/openid-configuration, /{tenant}/discovery/v2.0/keys; "
        "Graph is under /v1.0.",
    )


# -- answers ---------------------------------------------------------------------------------


def _correlation_headers(emulator: Emulator, request: EmuRequest) -> dict[str, str]:
    trace_id = emulator.ids.guid()
    correlation_id = request.header("client-request-id") or emulator.ids.guid()
    return {
        "x-ms-request-id": trace_id,
        "client-request-id": correlation_id,
        "cache-control": "no-store, no-cache",
        "pragma": "no-cache",
    }


def _error_response(emulator: Emulator, request: EmuRequest, exc: OAuthError) -> EmuResponse:
    headers = _correlation_headers(emulator, request)
    now = emulator.clock.now().astimezone(UTC)
    body = {
        "error": exc.error,
        "error_description": (
            f"AADSTS{exc.code}: {exc.message} Trace ID: {headers['x-ms-request-id']} "
            f"Correlation ID: {headers['client-request-id']} "
            f"Timestamp: {now.strftime('%Y-%m-%d %H:%M:%SZ')}"
        ),
        "error_codes": [exc.code],
        "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": headers["x-ms-request-id"],
        "correlation_id": headers["client-request-id"],
        "error_uri": f"{request.origin}/error?code={exc.code}",
    }
    return _json(exc.status, body, headers)


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> EmuResponse:
    out = {"content-type": "application/json; charset=utf-8"}
    out.update(headers or {})
    return EmuResponse(status=status, headers=out, body=json.dumps(payload).encode())
