"""Access tokens: RS256 JWTs signed by the emulator, checked like Graph checks them.

The tenant comes from ``tid``, application permissions from ``roles``, a signed-in user's
delegated scopes from ``scp`` (and the user from ``oid``). Signature, expiry and
audience are verified against the emulator's key and clock: every time claim (``iat``, ``nbf``,
``exp``) is checked against the emulator's ``now``, never against the wall clock, so a served
emulator whose clock was advanced still accepts the tokens it issues.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from ctsync.emulator.core.errors import GraphFault, unauthorized

__all__ = ["GRAPH_APP_ID", "TokenClaims", "TokenIssuer"]

#: Microsoft Graph's well-known application id, one of the audiences Graph accepts.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

TOKEN_LIFETIME = timedelta(minutes=60)

#: How far a token's ``nbf``/``iat`` may lie ahead of the emulator clock (Entra tolerates five
#: minutes of clock skew).
CLOCK_SKEW = timedelta(minutes=5)


@functools.lru_cache(maxsize=1)
def _process_signing_key() -> rsa.RSAPrivateKey:
    # RSA key generation costs tens of milliseconds; emulators in one process share a key so a
    # test suite that builds hundreds of emulators stays fast. Tokens still carry a per-emulator
    # issuer check through the tenant lookup.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class TokenClaims:
    tenant_id: str
    app_id: str
    roles: frozenset[str]
    object_id: str
    expires: datetime
    #: Delegated scopes (``scp``); empty for an app-only token.
    scopes: frozenset[str] = frozenset()
    #: A token a user signed in for (``scp`` present): ``object_id`` is the user's.
    delegated: bool = False


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenIssuer:
    def __init__(self) -> None:
        self._key = _process_signing_key()
        public = self._key.public_key()
        numbers = public.public_numbers()
        self.kid = hashlib.sha256(str(numbers.n).encode()).hexdigest()[:16]
        self._public = public
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

    def issue(
        self,
        *,
        tenant_id: str,
        app_id: str,
        object_id: str,
        roles: list[str] | tuple[str, ...],
        audience: str,
        now: datetime,
        token_id: str,
        lifetime: timedelta = TOKEN_LIFETIME,
    ) -> tuple[str, datetime]:
        expires = now + lifetime
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "appid": app_id,
            "appidacr": "1",
            "idtyp": "app",
            "oid": object_id,
            "sub": object_id,
            "roles": sorted(roles),
            "tid": tenant_id,
            "uti": token_id,
            "ver": "1.0",
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        return token, expires

    def sign(self, claims: dict[str, Any]) -> str:
        """An RS256 JWT of ``claims`` under the emulator's key (``kid`` in the JWKS): what the
        delegated flows (``core/delegated.py``) mint their access and ID tokens with."""
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str, *, now: datetime, audiences: set[str]) -> TokenClaims:
        """Check signature, expiry and audience; raise a 401 :class:`GraphFault` if any fails."""
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                # PyJWT checks time claims against the wall clock; the emulator's clock may be
                # ahead of it (clock/advance), so every time claim is checked in _check.
                options={
                    "verify_exp": False,
                    "verify_aud": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise unauthorized("Access token validation failure. Invalid signature.") from exc
        return self._check(claims, now=now, audiences=audiences)

    @staticmethod
    def _check(claims: dict[str, Any], *, now: datetime, audiences: set[str]) -> TokenClaims:
        try:
            exp = int(claims["exp"])
            tid = str(claims["tid"])
            appid = str(claims["appid"])
            aud = str(claims["aud"])
        except (KeyError, TypeError, ValueError) as exc:
            raise unauthorized("Access token validation failure. Invalid token.") from exc
        if now.timestamp() >= exp:
            raise unauthorized("Lifetime validation failed, the token is expired.")
        for claim in ("nbf", "iat"):
            value = claims.get(claim)
            if value is None:
                continue
            try:
                moment = int(value)
            except (TypeError, ValueError) as exc:
                raise unauthorized("Access token validation failure. Invalid token.") from exc
            if moment > (now + CLOCK_SKEW).timestamp():
                raise unauthorized("Lifetime validation failed, the token is not yet valid.")
        if aud.rstrip("/") not in audiences:
            raise unauthorized("Invalid audience.")
        roles = claims.get("roles") or []
        if not isinstance(roles, list):
            raise GraphFault(401, "InvalidAuthenticationToken", "Invalid roles claim.")
        scp = claims.get("scp")
        if scp is not None and not isinstance(scp, str):
            raise GraphFault(401, "InvalidAuthenticationToken", "Invalid scp claim.")
        return TokenClaims(
            tenant_id=tid,
            app_id=appid,
            roles=frozenset(str(r) for r in roles),
            object_id=str(claims.get("oid", "")),
            expires=datetime.fromtimestamp(exp, tz=now.tzinfo),
            scopes=frozenset((scp or "").split()),
            delegated=scp is not None,
        )
