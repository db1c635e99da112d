"""What an admin reads when a sign-in fails: the tenant by its config name, the method, Entra's
first sentence with its code, and what to do — never a trace-id dump or a secret. And a token
for another tenant is refused (a managed identity can only sign in to its home tenant)."""

from __future__ import annotations

import base64
import json

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError

from ctsync.errors import AuthenticationError
from ctsync.graph import CLOUDS, AuthSpec, SafeCredential, build_credential

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"

ENTRA_ANSWER = (
    "Authentication failed: {code}: {text} Trace ID: 0c5f6a9e-1111-2222-3333-444455556666 "
    "Correlation ID: 7d1e9b0a-aaaa-bbbb-cccc-ddddeeeeffff Timestamp: 2026-12-07 06:00:00Z"
)


class _Refused:
    def __init__(
        self, message: str, kind: type[ClientAuthenticationError] = ClientAuthenticationError
    ) -> None:
        self.message = message
        self.kind = kind

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        raise self.kind(message=self.message)


class _Token:
    def __init__(self, tid: str) -> None:
        body = base64.urlsafe_b64encode(json.dumps({"tid": tid}).encode()).rstrip(b"=")
        self.token = f"e30.{body.decode()}.sig"

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(self.token, 2_000_000_000)


def _wrapped(inner: object, method: str, **kwargs: object) -> SafeCredential:
    return SafeCredential(inner, tenant_id=TENANT, method=method, name="fabrikam", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "code", "text", "fix"),
    [
        (
            "client_secret",
            "AADSTS7000215",
            "Invalid client secret provided. Ensure the secret being sent is the value.",
            "the client secret is wrong",
        ),
        (
            "certificate",
            "AADSTS700027",
            "Client assertion failed signature validation.",
            "the certificate is not one of app",
        ),
        (
            "workload_identity",
            "AADSTS70021",
            "No matching federated identity record found for presented assertion.",
            "no federated credential on app",
        ),
        (
            "workload_identity",
            "AADSTS700024",
            "Client assertion is not within its valid time range.",
            "the federated token has expired",
        ),
        (
            "client_secret",
            "AADSTS700016",
            "Application with identifier 'x' was not found in the directory 'Fabrikam'.",
            "ctsync bootstrap fabrikam",
        ),
    ],
)
def test_an_entra_refusal_reads_as_one_clear_message(
    method: str, code: str, text: str, fix: str
) -> None:
    credential = _wrapped(
        _Refused(ENTRA_ANSWER.format(code=code, text=text)), method, secrets=("hunter2",)
    )
    with pytest.raises(AuthenticationError) as info:
        credential.get_token("https://graph.microsoft.com/.default")
    message = str(info.value)
    first, _, rest = message.partition("\n")
    assert first.startswith(f"tenant fabrikam: {method} sign-in failed: {code}: ")
    assert fix in rest
    assert "Trace ID" not in message
    assert "Correlation ID" not in message
    assert info.value.__cause__ is None


def test_a_secret_in_entras_answer_is_masked() -> None:
    answer = ENTRA_ANSWER.format(code="AADSTS7000215", text="Invalid client secret 'hunter2'.")
    credential = _wrapped(_Refused(answer), "client_secret", secrets=("hunter2",))
    with pytest.raises(AuthenticationError) as info:
        credential.get_token("scope")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


@pytest.mark.parametrize(
    ("method", "fix"),
    [
        ("azure_cli", f"az login --tenant {TENANT}"),
        ("managed_identity", "no managed identity here"),
        ("interactive_browser", "no browser here: use method device_code"),
    ],
)
def test_an_unavailable_credential_says_what_to_do(method: str, fix: str) -> None:
    credential = _wrapped(_Refused("nothing here", CredentialUnavailableError), method)
    with pytest.raises(AuthenticationError) as info:
        credential.get_token("scope")
    assert fix in str(info.value)


def test_a_token_for_another_tenant_is_refused() -> None:
    credential = _wrapped(_Token(OTHER), "managed_identity")
    with pytest.raises(AuthenticationError) as info:
        credential.get_token("scope")
    message = str(info.value)
    assert OTHER in message
    assert "can only sign in to its home tenant" in message
    assert _wrapped(_Token(TENANT), "managed_identity").get_token("s").expires_on > 0


def test_a_signed_in_admin_is_asked_for_ctsyncs_scopes_by_name() -> None:
    seen: list[tuple[str, ...]] = []

    class _Recording(_Token):
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            seen.append(scopes)
            return super().get_token(*scopes)

    spec = AuthSpec(
        "device_code",
        token_cache="none",
        scopes=("Policy.ReadWrite.CrossTenantAccess", "Policy.Read.All"),
    )
    built = build_credential(spec, tenant_id=TENANT, cloud=CLOUDS["global"], name="fabrikam")
    built.inner = _Recording(TENANT)
    built.get_token("https://graph.microsoft.com/.default")
    assert seen == [
        (
            "https://graph.microsoft.com/Policy.ReadWrite.CrossTenantAccess",
            "https://graph.microsoft.com/Policy.Read.All",
        )
    ]
