"""A built-in OpenID Connect issuer: the emulator's stand-in for GitHub Actions' OIDC provider.

Workload identity federation trusts tokens that another identity provider signs (a CI system, a
Kubernetes cluster). The emulator brings its own such provider, served under its origin at
:data:`OIDC_PATH`, with its own RSA key (never the key that signs Entra tokens):

- ``GET /_oidc/.well-known/openid-configuration`` and ``GET /_oidc/keys`` (its JWKS), as
  ``https://token.actions.githubusercontent.com`` serves them;
- ``GET /_oidc/actions/token?api-version=2.0&audience=...`` with ``Authorization: Bearer
  <request token>``: GitHub Actions' own request shape (``ACTIONS_ID_TOKEN_REQUEST_URL`` and
  ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``), answering ``{"value": "<jwt>"}``.

The control API mints tokens directly (``POST /_emulator/oidc/token``) and hands out the two
GitHub variables for a pretend workflow run (``POST /_emulator/oidc/actions``). The token
endpoint verifies this issuer's tokens in-process (``kid`` names its key): no HTTP call.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from ctsync.emulator.core.http import EmuRequest, EmuResponse

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = [
    "ACTIONS_DEFAULT_LIFETIME",
    "OIDC_PATH",
    "ActionsRun",
    "OidcIssuer",
    "actions_subject",
    "handle_oidc",
]

#: Where the issuer lives under the emulator's origin; its ``iss`` is ``<origin>/_oidc``.
OIDC_PATH = "/_oidc"

#: How long a token from the GitHub-shaped endpoint lives unless the run says otherwise.
ACTIONS_DEFAULT_LIFETIME = timedelta(minutes=5)

#: The longest lifetime the control API mints (a federated token file for a long-running
#: served emulator): a year.
MAX_LIFETIME = timedelta(days=366)


@functools.lru_cache(maxsize=1)
def _process_issuer_key() -> rsa.RSAPrivateKey:
    # Shared by every emulator in the process for speed (as the token signing key is), and
    # distinct from it: a token this issuer signs never verifies as an Entra token.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def actions_subject(
    repository: str, *, ref: str | None, environment: str | None, event_name: str
) -> str:
    """GitHub's default ``sub`` for a workflow run: environment, pull request or ref."""
    if environment:
        return f"repo:{repository}:environment:{environment}"
    if event_name in {"pull_request", "pull_request_target"}:
        return f"repo:{repository}:pull_request"
    return f"repo:{repository}:ref:{ref or 'refs/heads/main'}"


@dataclass(frozen=True)
class ActionsRun:
    """A pretend GitHub Actions job with ``id-token: write``: the claims its tokens carry."""

    repository: str
    ref: str = "refs/heads/main"
    environment: str | None = None
    event_name: str = "push"
    subject: str | None = None
    lifetime: timedelta = ACTIONS_DEFAULT_LIFETIME
    extra_claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    def claims(self) -> dict[str, Any]:
        """GitHub's claims for this run (``iss``/``aud``/times added when minting)."""
        ref_type = "tag" if self.ref.startswith("refs/tags/") else "branch"
        digest = hashlib.sha1(self.repository.encode(), usedforsecurity=False).hexdigest()
        claims: dict[str, Any] = {
            "sub": self.subject
            or actions_subject(
                self.repository,
                ref=self.ref,
                environment=self.environment,
                event_name=self.event_name,
            ),
            "ref": self.ref,
            "ref_type": ref_type,
            "ref_protected": "false",
            "sha": digest,
            "repository": self.repository,
            "repository_owner": self.owner,
            "repository_visibility": "private",
            "run_id": "1",
            "run_number": "1",
            "run_attempt": "1",
            "actor": self.owner,
            "event_name": self.event_name,
            "workflow": "ctsync",
            "workflow_ref": f"{self.repository}/.github/workflows/ctsync.yml@{self.ref}",
            "job_workflow_ref": f"{self.repository}/.github/workflows/ctsync.yml@{self.ref}",
            "runner_environment": "github-hosted",
        }
        if self.environment:
            claims["environment"] = self.environment
        claims.update(self.extra_claims)
        return claims


class OidcIssuer:
    """The built-in issuer: its key, its documents, the tokens it mints and verifies."""

    def __init__(self) -> None:
        self._key = _process_issuer_key()
        numbers = self._key.public_key().public_numbers()
        self.kid = "oidc-" + hashlib.sha256(str(numbers.n).encode()).hexdigest()[:16]
        self.jwks: dict[str, Any] = {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.kid,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }
        # Request tokens handed out for pretend workflow runs, by a hash of the token (the
        # token itself is a bearer secret and is not kept).
        self._runs: dict[str, ActionsRun] = {}

    @staticmethod
    def issuer_url(origin: str) -> str:
        return origin.rstrip("/") + OIDC_PATH

    def openid_configuration(self, origin: str) -> dict[str, Any]:
        issuer = self.issuer_url(origin)
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/keys",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": [
                "sub",
                "aud",
                "exp",
                "iat",
                "iss",
                "jti",
                "nbf",
                "ref",
                "ref_type",
                "repository",
                "repository_owner",
                "environment",
                "event_name",
                "run_id",
                "sha",
                "workflow",
                "actor",
            ],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    # -- minting -----------------------------------------------------------------------

    def mint(
        self,
        *,
        origin: str,
        subject: str,
        audience: str,
        now: datetime,
        token_id: str,
        lifetime: timedelta = ACTIONS_DEFAULT_LIFETIME,
        claims: Mapping[str, Any] | None = None,
    ) -> tuple[str, datetime]:
        """A signed token for ``subject`` and ``audience``; the JWT and its expiry."""
        if lifetime <= timedelta() or lifetime > MAX_LIFETIME:
            msg = f"lifetime must be between 1 second and {MAX_LIFETIME.days} days"
            raise ValueError(msg)
        expires = now + lifetime
        body: dict[str, Any] = dict(claims or {})
        body.update(
            {
                "iss": self.issuer_url(origin),
                "sub": subject,
                "aud": audience,
                "jti": token_id,
                "iat": int(now.timestamp()),
                "nbf": int(now.timestamp()),
                "exp": int(expires.timestamp()),
            }
        )
        token = jwt.encode(
            body, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )
        return token, expires

    # -- GitHub's request shape -----------------------------------------------------------

    def start_run(self, run: ActionsRun) -> str:
        """Remember ``run`` and answer its ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``."""
        request_token = secrets.token_urlsafe(32)
        self._runs[_digest(request_token)] = run
        return request_token

    def run_for(self, request_token: str) -> ActionsRun | None:
        wanted = _digest(request_token)
        for key, run in self._runs.items():
            if hmac.compare_digest(key, wanted):
                return run
        return None

    # -- verifying --------------------------------------------------------------------------

    def signed_it(self, token: str) -> bool:
        """Whether the token's header names this issuer's key (it then verifies here)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return False
        return header.get("kid") == self.kid

    def verify_signature(self, token: str) -> dict[str, Any] | None:
        """The token's claims if this issuer signed it, else ``None``. Time claims and the
        audience are the caller's business (they are checked against the emulator clock)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
        except jwt.InvalidTokenError:
            return None
        return claims


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# -- HTTP ------------------------------------------------------------------------------------


def handle_oidc(emulator: Emulator, request: EmuRequest, segments: list[str]) -> EmuResponse:
    """Answer ``/_oidc/...``: discovery, keys, and GitHub's token request."""
    method = request.method.upper()
    rest = "/".join(segments)
    issuer = emulator.oidc
    if rest == ".well-known/openid-configuration" and method == "GET":
        return _json(200, issuer.openid_configuration(request.origin))
    if rest == "keys" and method == "GET":
        return _json(200, issuer.jwks)
    if rest == "actions/token" and method == "GET":
        return _actions_token(emulator, request)
    if rest in {".well-known/openid-configuration", "keys", "actions/token"}:
        return _json(405, {"message": f"{method} is not allowed here; use GET."})
    return _json(404, {"message": f"The emulator's OIDC issuer has no {OIDC_PATH}/{rest}."})


def _actions_token(emulator: Emulator, request: EmuRequest) -> EmuResponse:
    """GitHub's ``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=...`` with the request token."""
    scheme, _, value = (request.header("authorization") or "").partition(" ")
    run = emulator.oidc.run_for(value.strip()) if scheme.lower() == "bearer" else None
    if run is None:
        return _json(401, {"message": "Bad credentials: not an ACTIONS_ID_TOKEN_REQUEST_TOKEN."})
    # GitHub's default audience is the URL of the repository owner.
    audience = request.query.get("audience") or f"https://github.com/{run.owner}"
    claims = run.claims()
    token, _ = emulator.oidc.mint(
        origin=request.origin,
        subject=str(claims.pop("sub")),
        audience=audience,
        now=emulator.clock.now(),
        token_id=emulator.ids.guid(),
        lifetime=run.lifetime,
        claims=claims,
    )
    return _json(200, {"value": token})


def _json(status: int, payload: Any) -> EmuResponse:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json; charset=utf-8", "cache-control": "no-store"}
    return EmuResponse(status=status, headers=headers, body=body)
