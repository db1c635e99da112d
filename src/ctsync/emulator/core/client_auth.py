"""Client authentication at the token endpoint: secrets, certificates, federated tokens.

Every grant authenticates its client here (:func:`authenticate_client`), through the one client
lookup (``core/clients.py``):

- a **client secret**, in the form (``client_secret_post``) or in HTTP Basic
  (``client_secret_basic``), compared with the client's unexpired secrets;
- a **client assertion** signed with a registered certificate (``private_key_jwt``, Microsoft's
  "certificate credentials"): ``client_assertion_type``
  ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``, a JWT with ``iss`` = ``sub`` = the
  client id, ``aud`` the tenant's token endpoint (v2.0 or v1), ``exp``, ``nbf`` and ``jti``,
  signed RS256 or PS256 by the certificate its header names in ``x5t#S256`` or ``x5t``;
- a **federated assertion** (workload identity federation): a token another issuer signed whose
  ``iss``, ``sub`` and ``aud`` match one of the client's federated identity credentials. Tokens
  of the emulator's built-in issuer (``core/oidc.py``) are verified in-process; the emulator
  makes no outbound call, so any other issuer answers AADSTS50166.

Time claims are checked against the emulator clock. Failures answer Entra's AADSTS codes; the
choices where Microsoft documents neither code nor text are in ``docs/emulator.md`` ("OAuth").
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import jwt

from ctsync.emulator.core.clients import ClientView, FederatedCredential, find_client
from ctsync.emulator.core.http import EmuRequest
from ctsync.emulator.core.oauth import EMULATOR_CODE, JWT_BEARER_ASSERTION, OAuthError

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator
    from ctsync.emulator.state import Tenant

__all__ = ["ASSERTION_ALGORITHMS", "ClientCredentials", "authenticate_client", "read_credentials"]

#: Signature algorithms a certificate client assertion may use (Microsoft asks for PS256;
#: MSAL falls back to RS256 with a SHA-1 thumbprint).
ASSERTION_ALGORITHMS = ("PS256", "RS256")

#: How far ``nbf`` may lie ahead of the emulator clock (Entra's usual five minutes of skew).
CLOCK_SKEW = timedelta(minutes=5)

_CERT_DOC = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"
_WIF_DOC = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"


class ClientCredentials:
    """What a token request presents to authenticate its client (secrets never in ``repr``)."""

    def __init__(
        self,
        client_id: str | None,
        *,
        secret: str | None = None,
        assertion: str | None = None,
        assertion_type: str | None = None,
        via_basic: bool = False,
    ) -> None:
        self.client_id = client_id
        self.secret = secret
        self.assertion = assertion
        self.assertion_type = assertion_type
        self.via_basic = via_basic

    def __repr__(self) -> str:
        kind = "assertion" if self.assertion else "secret" if self.secret else "none"
        return f"ClientCredentials(client_id={self.client_id!r}, {kind})"


def read_credentials(request: EmuRequest, form: Mapping[str, str]) -> ClientCredentials:
    """The client id and credential from HTTP Basic (RFC 6749 §2.3.1) or from the form."""
    scheme, _, value = (request.header("authorization") or "").partition(" ")
    assertion = form.get("client_assertion")
    assertion_type = form.get("client_assertion_type")
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError(
                401, "invalid_client", 7000215, "Invalid client secret provided."
            ) from exc
        user, sep, password = decoded.partition(":")
        client_id = unquote_plus(user)
        if not sep or not client_id:
            raise OAuthError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        body_id = form.get("client_id")
        if body_id and body_id.lower() != client_id.lower():
            raise OAuthError(
                400,
                "invalid_request",
                EMULATOR_CODE,
                "The client_id in the request body does not match the client authenticated "
                "with HTTP Basic.",
            )
        return ClientCredentials(
            client_id,
            secret=unquote_plus(password),
            assertion=assertion,
            assertion_type=assertion_type,
            via_basic=True,
        )
    return ClientCredentials(
        form.get("client_id"),
        secret=form.get("client_secret"),
        assertion=assertion,
        assertion_type=assertion_type,
    )


def authenticate_client(
    emulator: Emulator, request: EmuRequest, tenant: Tenant, form: Mapping[str, str]
) -> ClientView:
    """The client the token request authenticates as; :class:`OAuthError` if it cannot."""
    presented = read_credentials(request, form)
    if not presented.client_id:
        raise _missing("client_id")
    client = find_client(tenant, presented.client_id)
    if client is None:
        raise _unknown_client(tenant, presented.client_id)
    if not client.enabled:
        raise OAuthError(
            400,
            "unauthorized_client",
            7000112,
            f"Application '{client.client_id}'({client.display_name}) is disabled.",
        )
    now = emulator.clock.now()
    if presented.assertion is not None or presented.assertion_type is not None:
        if presented.secret is not None:
            raise OAuthError(
                400,
                "invalid_request",
                EMULATOR_CODE,
                "Send either a client secret or a client assertion, not both.",
            )
        if not presented.assertion_type:
            raise _missing("client_assertion_type")
        if presented.assertion_type != JWT_BEARER_ASSERTION:
            raise OAuthError(
                400,
                "invalid_request",
                EMULATOR_CODE,
                f"The client_assertion_type '{presented.assertion_type}' is not supported; "
                f"use '{JWT_BEARER_ASSERTION}'.",
            )
        if not presented.assertion:
            raise _missing("client_assertion")
        _check_assertion(emulator, request, tenant, client, assertion=presented.assertion, now=now)
        return client
    if presented.secret is None:
        raise OAuthError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    _check_secret(client, presented.secret, now)
    return client


# -- client secrets --------------------------------------------------------------------------


def _check_secret(client: ClientView, presented: str, now: datetime) -> None:
    matched = [
        s for s in client.secrets if hmac.compare_digest(presented.encode(), s.value.encode())
    ]
    if any(_within(now, s.start, s.end) for s in matched):
        return
    if matched:
        raise OAuthError(
            401,
            "invalid_client",
            7000222,
            f"The provided client secret keys for app '{client.client_id}' are expired. Visit "
            "the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, "
            "or consider using certificate credentials for added security: "
            "https://aka.ms/certCreds.",
        )
    raise OAuthError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app "
        f"'{client.client_id}'.",
    )


def _within(now: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or start <= now) and (end is None or now < end)


# -- assertions ------------------------------------------------------------------------------


def _check_assertion(
    emulator: Emulator,
    request: EmuRequest,
    tenant: Tenant,
    client: ClientView,
    *,
    assertion: str,
    now: datetime,
) -> None:
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise _malformed() from exc
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise _malformed("The token does not contain the claim 'iss'.")
    if "://" in issuer:
        _check_federated(
            emulator, client, assertion=assertion, header=header, claims=claims, now=now
        )
    else:
        _check_certificate(
            request, tenant, client, assertion=assertion, header=header, claims=claims, now=now
        )


def _check_certificate(
    request: EmuRequest,
    tenant: Tenant,
    client: ClientView,
    *,
    assertion: str,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    now: datetime,
) -> None:
    wanted = client.client_id.lower()
    if str(claims.get("iss", "")).lower() != wanted or str(claims.get("sub", "")).lower() != wanted:
        raise OAuthError(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. "
            f"Review the documentation at {_CERT_DOC} .",
        )
    x5t_s256 = header.get("x5t#S256")
    x5t = header.get("x5t")
    thumbprint = _thumbprint_hex(x5t_s256 if isinstance(x5t_s256, str) else x5t)
    certificate = client.certificate(
        x5t=x5t if isinstance(x5t, str) else None,
        x5t_s256=x5t_s256 if isinstance(x5t_s256, str) else None,
    )
    if certificate is None:
        raise _key_problem(client, thumbprint, "The key was not found.")
    if certificate.end is not None and now >= certificate.end:
        raise _key_problem(client, thumbprint, "The key used is expired.")
    if certificate.start is not None and now < certificate.start:
        raise _key_problem(client, thumbprint, "The key used is not yet valid.")
    algorithm = header.get("alg")
    if algorithm not in ASSERTION_ALGORITHMS:
        raise OAuthError(
            401,
            "invalid_client",
            700027,
            f"Client assertion failed signature validation. [Reason - The algorithm "
            f"'{algorithm}' is not supported; use PS256 or RS256.] Review the documentation at "
            f"{_CERT_DOC} .",
        )
    try:
        jwt.decode(
            assertion,
            certificate.public_key,  # type: ignore[arg-type]
            algorithms=[str(algorithm)],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise OAuthError(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation. [Reason - The provided signature "
            f"value did not match the expected signature value., Thumbprint of key used by "
            f"client: '{thumbprint}', Found key 'Start={_iso(certificate.start)}, "
            f"End={_iso(certificate.end)}'] Review the documentation at {_CERT_DOC} .",
        ) from exc
    if not _audience_matches(claims.get("aud"), _token_endpoints(request.origin, tenant)):
        raise OAuthError(
            401,
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the "
            f"documentation at {_CERT_DOC} .",
        )
    _check_times(claims, now, _CERT_DOC)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _malformed("The token does not contain the claim 'jti'.")


def _check_federated(
    emulator: Emulator,
    client: ClientView,
    *,
    assertion: str,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    now: datetime,
) -> None:
    issuer = str(claims.get("iss"))
    subject = str(claims.get("sub", ""))
    audiences = _audiences(claims.get("aud"))
    if not client.federated_credentials:
        raise OAuthError(
            400,
            "invalid_request",
            70021,
            "No matching federated identity record found for presented assertion. Assertion "
            f"Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: "
            f"'{','.join(audiences)}'. {_WIF_DOC}",
        )
    # Federated identity credentials match issuer, subject and audience exactly (Microsoft
    # made the matching case-sensitive in 2025).
    by_issuer = [c for c in client.federated_credentials if c.issuer == issuer]
    if not by_issuer:
        raise _no_record(700211, f"issuer '{issuer}'")
    oidc = emulator.oidc
    if not oidc.signed_it(assertion) or header.get("alg") != "RS256":
        raise OAuthError(
            401,
            "invalid_client",
            50166,
            "Request to External OIDC endpoint failed. The ctsync emulator makes no outbound "
            "calls: it verifies only tokens its built-in issuer (<origin>/_oidc) signed.",
        )
    if oidc.verify_signature(assertion) is None:
        raise OAuthError(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation. [Reason - The provided signature "
            "value did not match the expected signature value.]",
        )
    by_subject = [c for c in by_issuer if c.subject == subject]
    if not by_subject:
        raise _no_record(700213, f"subject '{subject}'")
    if not any(_trusts(c, audiences) for c in by_subject):
        raise _no_record(700212, f"audience '{','.join(audiences)}'")
    _check_times(claims, now, _CERT_DOC)


def _trusts(credential: FederatedCredential, audiences: list[str]) -> bool:
    return any(a in credential.audiences for a in audiences)


def _no_record(code: int, what: str) -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        code,
        f"No matching federated identity record found for presented assertion {what}. Please "
        "check your federated identity credential Subject, Audience and Issuer against the "
        f"presented assertion. {_WIF_DOC}",
    )


def _check_times(claims: Mapping[str, Any], now: datetime, doc: str) -> None:
    exp = _epoch(claims, "exp")
    if exp is None:
        raise _malformed("The token does not contain the claim 'exp'.")
    nbf = _epoch(claims, "nbf")
    expired = now.timestamp() >= exp
    early = nbf is not None and nbf > (now + CLOCK_SKEW).timestamp()
    if expired or early:
        valid_from = _iso_epoch(nbf if nbf is not None else 0)
        raise OAuthError(
            401,
            "invalid_client",
            700024,
            f"Client assertion is not within its valid time range. Current time: "
            f"{_iso(now)}, assertion valid from {valid_from}, expiry time of assertion "
            f"{_iso_epoch(exp)}. Review the documentation at {doc} .",
        )


def _epoch(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _malformed(f"The claim '{name}' is not a number.")
    return float(value)


def _audiences(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _audience_matches(value: Any, accepted: set[str]) -> bool:
    return any(a.rstrip("/").lower() in accepted for a in _audiences(value))


def _token_endpoints(origin: str, tenant: Tenant) -> set[str]:
    """The token endpoint URLs (v2.0 and v1) a certificate assertion may name as ``aud``: the
    tenant by id, initial domain or name, at the emulator's origin."""
    base = origin.rstrip("/").lower()
    names = {tenant.id.lower(), tenant.domain.lower(), tenant.name.lower()}
    return {f"{base}/{name}/oauth2/{path}" for name in names for path in ("v2.0/token", "token")}


def _thumbprint_hex(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return value
    return raw.hex().upper()


def _key_problem(client: ClientView, thumbprint: str, reason: str) -> OAuthError:
    return OAuthError(
        401,
        "invalid_client",
        700027,
        "The certificate with identifier used to sign the client assertion is not registered "
        f"on application. [Reason - {reason}, Thumbprint of key used by client: "
        f"'{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS "
        f"Graph to see configured keys for app Id '{client.client_id}'. Review the "
        f"documentation at {_CERT_DOC} .]",
    )


def _malformed(detail: str = "") -> OAuthError:
    text = "JWT token is invalid or malformed."
    return OAuthError(400, "invalid_request", 50027, f"{text} {detail}".strip())


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


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return "0001-01-01T00:00:00.0000000Z"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _iso_epoch(seconds: float) -> str:
    return _iso(datetime.fromtimestamp(seconds, tz=UTC))
