"""Sign a person in to the in-process emulator the way a client does: the device code flow,
approved through the control API, or the authorization code flow with PKCE."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import jwt

from ctsync.emulator import Emulator, EmulatorTransport
from ctsync.emulator.core.delegated import (
    AZURE_CLI_APP_ID,
    DEVICE_CODE_GRANT,
    GRAPH_CLI_TOOLS_APP_ID,
)

__all__ = [
    "AZURE_CLI_APP_ID",
    "DEVICE_CODE_GRANT",
    "GRAPH_CLI_TOOLS_APP_ID",
    "ORIGIN",
    "approve",
    "claims",
    "device_code",
    "graph",
    "pkce",
    "poll",
    "sign_in",
]

#: Any https origin works in-process.
ORIGIN = "https://login.emulator.test"
GRAPH_DEFAULT = "https://graph.microsoft.com/.default openid profile offline_access"


def client(emu: Emulator) -> httpx.Client:
    return httpx.Client(transport=EmulatorTransport(emu), base_url=ORIGIN)


def device_code(
    http: httpx.Client, tenant: str, client_id: str = AZURE_CLI_APP_ID, scope: str = GRAPH_DEFAULT
) -> dict[str, Any]:
    response = http.post(
        f"/{tenant}/oauth2/v2.0/devicecode", data={"client_id": client_id, "scope": scope}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def poll(
    http: httpx.Client, tenant: str, code: dict[str, Any], client_id: str = AZURE_CLI_APP_ID
) -> httpx.Response:
    return http.post(
        f"/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": DEVICE_CODE_GRANT,
            "client_id": client_id,
            "device_code": code["device_code"],
            "client_info": "1",
        },
    )


def approve(http: httpx.Client, user_code: str, user: str, **extra: Any) -> httpx.Response:
    return http.post(
        "/_emulator/signin/approve", json={"user_code": user_code, "user": user, **extra}
    )


def sign_in(
    emu: Emulator,
    tenant: str,
    user: str,
    *,
    client_id: str = AZURE_CLI_APP_ID,
    scope: str = GRAPH_DEFAULT,
    consent: str = "self",
) -> dict[str, Any]:
    """A device code sign-in as ``user``; the token response."""
    with client(emu) as http:
        code = device_code(http, tenant, client_id, scope)
        approved = approve(http, code["user_code"], user, consent=consent)
        assert approved.status_code == 200, approved.text
        response = poll(http, tenant, code, client_id)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def graph(emu: Emulator, access_token: str) -> httpx.Client:
    return httpx.Client(
        transport=EmulatorTransport(emu),
        base_url="https://graph.microsoft.com/v1.0",
        headers={"authorization": f"Bearer {access_token}"},
    )


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def pkce() -> tuple[str, str]:
    """A ``(code_verifier, S256 code_challenge)`` pair (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def location_params(response: httpx.Response) -> dict[str, str]:
    """The parameters a ``302`` redirect carries in its query (or fragment)."""
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["location"])
    return dict(parse_qsl(parts.query or parts.fragment))
