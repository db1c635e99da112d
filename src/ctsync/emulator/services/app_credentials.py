"""An application's credentials: client secrets (``addPassword``/``removePassword``),
certificates (``addKey``/``removeKey``, and ``keyCredentials`` on create/``PATCH`` in
``applications.py``) and federated identity credentials.

What the token endpoint accepts follows from here (``core/clients.py`` reads it): a secret's
plaintext is kept apart in ``Tenant.credential_secrets`` and shown once, in ``addPassword``'s
answer; a certificate in ``Tenant.credential_keys``. Choices where Microsoft's documentation is
silent are listed in ``docs/emulator.md`` ("Applications and service principals").
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from ctsync.emulator.core.clients import parse_certificate
from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault, bad_request, conflict
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import FilterSpec
from ctsync.emulator.core.routing import Handler, Router
from ctsync.emulator.core.schema import check_body
from ctsync.emulator.services._shared import (
    OWNED_BY,
    object_not_found,
    require_owner_or,
    shaped_collection,
    shaped_entity,
)
from ctsync.emulator.services.applications import find_application, store_key_credentials
from ctsync.emulator.state import key_slot

__all__ = ["MAX_FEDERATED_CREDENTIALS", "router"]

router = Router()

#: Who may manage an application's credentials (Directory.ReadWrite.All may not: Graph lists
#: only these for addPassword, addKey and federated identity credentials).
CRED_WRITE = (OWNED_BY, "Application.ReadWrite.All")
CRED_WRITE_ANY = ("Application.ReadWrite.All",)
CRED_READ = ("Application.Read.All", OWNED_BY, "Application.ReadWrite.All")

#: "Maximum of 20 objects can be added to an application."
MAX_FEDERATED_CREDENTIALS = 20
#: A secret's lifetime when addPassword names no end: two years.
DEFAULT_SECRET_LIFETIME = timedelta(days=730)
#: addKey's proof: "exp" should be "nbf" + 10 minutes; its audience is the AAD Graph app id.
PROOF_AUDIENCE = "00000002-0000-0000-c000-000000000000"
PROOF_LIFETIME = timedelta(minutes=10)
_SKEW = timedelta(minutes=5)

_APPS = ("/applications/{id}", "/applications(appId='{appId}')")


def _routes(method: str, suffix: str, permissions: tuple[str, ...]) -> Callable[[Handler], Handler]:
    """Register a handler for both ways of naming the application."""

    def register(handler: Handler) -> Handler:
        for base in _APPS:
            router.route(method, base + suffix, permissions=permissions)(handler)
        return handler

    return register


def _writable_app(ctx: RequestContext) -> dict[str, Any]:
    app = find_application(ctx)
    require_owner_or(ctx, [app["id"]], CRED_WRITE_ANY)
    return app


def _readable_app(ctx: RequestContext) -> dict[str, Any]:
    app = find_application(ctx)
    if not ctx.roles & {"Application.Read.All", "Application.ReadWrite.All"}:
        require_owner_or(ctx, [app["id"]], CRED_WRITE_ANY)
    return app


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"Invalid value specified for property '{name}' of resource 'PasswordCredential'."
        raise bad_request(msg)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        msg = f"Invalid value specified for property '{name}' of resource 'PasswordCredential'."
        raise bad_request(msg) from exc


def _parameters(ctx: RequestContext, action: str, allowed: frozenset[str]) -> dict[str, Any]:
    body = ctx.body_object() if ctx.body is not None else {}
    for key in body:
        if key not in allowed and not key.startswith("@odata."):
            raise GraphFault(
                400,
                "BadRequest",
                f"The parameter '{key}' in the request payload is not a valid parameter for "
                f"the operation '{action}'.",
            )
    return body


# -- client secrets --------------------------------------------------------------------------


@_routes("POST", "/addPassword", CRED_WRITE)
def add_password(ctx: RequestContext) -> EmuResponse:
    app = _writable_app(ctx)
    body = _parameters(ctx, "addPassword", frozenset({"passwordCredential"}))
    wanted = body.get("passwordCredential") or {}
    if not isinstance(wanted, dict):
        raise bad_request("The passwordCredential parameter must be an object.")
    check_body("passwordCredential", wanted)
    for name in ("secretText", "keyId", "hint", "customKeyIdentifier"):
        if wanted.get(name) is not None:
            msg = f"Property '{name}' is read-only and cannot be set."
            raise bad_request(msg)
    start = _when(wanted.get("startDateTime"), "startDateTime") or ctx.now
    end = _when(wanted.get("endDateTime"), "endDateTime") or start + DEFAULT_SECRET_LIFETIME
    if end <= start:
        raise bad_request("The endDateTime of a password credential must follow its startDateTime.")
    secret = ctx.emulator.ids.secret()
    key_id = ctx.emulator.ids.guid()
    stored = {
        "customKeyIdentifier": None,
        "displayName": wanted.get("displayName"),
        "endDateTime": _iso(end),
        "hint": secret[:3],
        "keyId": key_id,
        "secretText": None,
        "startDateTime": _iso(start),
    }
    app.setdefault("passwordCredentials", []).append(stored)
    ctx.tenant.credential_secrets[key_id] = secret
    # The only time Graph shows the secret: in this answer.
    answer = {**stored, "secretText": secret}
    return ctx.entity(answer, context="microsoft.graph.passwordCredential")


@_routes("POST", "/removePassword", CRED_WRITE)
def remove_password(ctx: RequestContext) -> EmuResponse:
    app = _writable_app(ctx)
    body = _parameters(ctx, "removePassword", frozenset({"keyId"}))
    key_id = str(body.get("keyId") or "").lower()
    credentials = app.get("passwordCredentials") or []
    kept = [c for c in credentials if str(c.get("keyId", "")).lower() != key_id]
    if not key_id or len(kept) == len(credentials):
        msg = f"No password credential found with keyId '{body.get('keyId')}'."
        raise bad_request(msg)
    app["passwordCredentials"] = kept
    ctx.tenant.credential_secrets.pop(key_id, None)
    return ctx.no_content()


# -- certificates: addKey and removeKey ------------------------------------------------------


def _check_proof(ctx: RequestContext, app: dict[str, Any], proof: Any) -> None:
    """addKey/removeKey's proof of possession: a JWT signed by one of the application's valid
    certificates, ``aud`` the AAD Graph app id, ``iss`` the application's object id, living at
    most ten minutes from ``nbf``."""
    if not isinstance(proof, str) or not proof:
        raise bad_request("The proof parameter is required: a JWT signed with a current key.")
    now = ctx.now
    valid = []
    for cred in app.get("keyCredentials") or []:
        key = ctx.tenant.credential_keys.get(key_slot(app, cred.get("keyId")))
        parsed = parse_certificate(key) if key else None
        start, end = (
            _when(cred.get("startDateTime"), "startDateTime"),
            _when(cred.get("endDateTime"), "endDateTime"),
        )
        in_date = (start is None or start <= now) and (end is None or now < end)
        if parsed is not None and in_date and cred.get("usage", "Verify") == "Verify":
            valid.append(parsed[0])
    if not valid:
        raise bad_request(
            "The application has no valid certificate to prove possession of; add the first "
            "one with PATCH (keyCredentials) instead."
        )
    claims: dict[str, Any] | None = None
    for public_key in valid:
        try:
            claims = jwt.decode(
                proof,
                public_key,  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
            break
        except jwt.InvalidTokenError:
            continue
    if claims is None:
        raise bad_request("The proof is not signed by a valid certificate of the application.")
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if (
        claims.get("aud") != PROOF_AUDIENCE
        or str(claims.get("iss", "")).lower() != str(app["id"]).lower()
        or not isinstance(nbf, int | float)
        or not isinstance(exp, int | float)
        or exp - nbf > PROOF_LIFETIME.total_seconds()
        or now.timestamp() >= exp
        or nbf > (now + _SKEW).timestamp()
    ):
        raise bad_request(
            f"The proof is invalid: it needs aud '{PROOF_AUDIENCE}', iss the application's "
            "object id, and nbf and exp (at most ten minutes apart) around the current time."
        )


@_routes("POST", "/addKey", CRED_WRITE)
def add_key(ctx: RequestContext) -> EmuResponse:
    app = _writable_app(ctx)
    body = _parameters(ctx, "addKey", frozenset({"keyCredential", "passwordCredential", "proof"}))
    _check_proof(ctx, app, body.get("proof"))
    new = body.get("keyCredential")
    if not isinstance(new, dict) or not new.get("key"):
        raise bad_request("The keyCredential parameter with its certificate in 'key' is required.")
    if body.get("passwordCredential") is not None:
        raise bad_request(
            "The emulator takes certificates without a password (passwordCredential null)."
        )
    existing = [{**k, "key": None} for k in app.get("keyCredentials") or []]
    stored = store_key_credentials(ctx, app, [*existing, new])
    app["keyCredentials"] = stored
    return ctx.entity(copy.deepcopy(stored[-1]), context="microsoft.graph.keyCredential")


@_routes("POST", "/removeKey", CRED_WRITE)
def remove_key(ctx: RequestContext) -> EmuResponse:
    app = _writable_app(ctx)
    body = _parameters(ctx, "removeKey", frozenset({"keyId", "proof"}))
    _check_proof(ctx, app, body.get("proof"))
    key_id = str(body.get("keyId") or "").lower()
    existing = app.get("keyCredentials") or []
    kept = [{**k, "key": None} for k in existing if str(k.get("keyId", "")).lower() != key_id]
    if not key_id or len(kept) == len(existing):
        msg = f"No key credential found with keyId '{body.get('keyId')}'."
        raise bad_request(msg)
    app["keyCredentials"] = store_key_credentials(ctx, app, kept)
    return ctx.no_content()


# -- federated identity credentials ----------------------------------------------------------

FIC_TYPE = "federatedIdentityCredential"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$")
_LIMIT = 600
_FIC_FILTER = FilterSpec(
    resource="FederatedIdentityCredential",
    properties={"name": "eq", "subject": "eq", "issuer": "eq"},
    case_sensitive=True,
)
_FIC_FIELDS = frozenset({"name", "issuer", "subject", "audiences", "description"})


def _credentials(ctx: RequestContext, app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return ctx.tenant.federated_credentials.setdefault(app["id"], {})


def _context(app: dict[str, Any], entity: bool = False) -> str:
    tail = "/$entity" if entity else ""
    return f"applications('{app['id']}')/federatedIdentityCredentials{tail}"


def _find_credential(ctx: RequestContext, app: dict[str, Any], key: str) -> dict[str, Any]:
    """A credential by id (any case) or by name (its alternate key)."""
    for cred in _credentials(ctx, app).values():
        if cred["id"].lower() == key.lower() or cred["name"] == key:
            return cred
    raise object_not_found(key)


def _check_fields(body: dict[str, Any], *, creating: bool) -> None:
    check_body(FIC_TYPE, body)
    unknown = [k for k in body if k not in _FIC_FIELDS and not k.startswith("@odata.")]
    if unknown:
        msg = f"Property '{unknown[0]}' is read-only and cannot be set."
        raise bad_request(msg)
    required = ("name", "issuer", "subject", "audiences") if creating else ()
    for field in required:
        if body.get(field) in (None, "", []):
            msg = (
                f"Invalid value specified for property '{field}' of resource "
                "'FederatedIdentityCredential'."
            )
            raise bad_request(msg)
    name = body.get("name")
    if name is not None and not _NAME.match(str(name)):
        raise bad_request(
            "The name of a federated identity credential has 3 to 120 characters: letters, "
            "digits, '-' and '_', beginning with a letter or digit."
        )
    issuer = body.get("issuer")
    if issuer is not None and (
        not re.match(r"^https?://[^/\s]+", str(issuer)) or len(str(issuer)) > _LIMIT
    ):
        raise bad_request(
            "The issuer of a federated identity credential is a URL of at most 600 characters."
        )
    for text in ("subject", "description"):
        if body.get(text) is not None and len(str(body[text])) > _LIMIT:
            msg = f"The {text} of a federated identity credential has at most 600 characters."
            raise bad_request(msg)
    audiences = body.get("audiences")
    if audiences is not None and (
        len(audiences) != 1 or not audiences[0] or len(audiences[0]) > _LIMIT
    ):
        raise bad_request(
            "The audiences of a federated identity credential hold exactly one value of at "
            "most 600 characters."
        )


def _check_unique(
    ctx: RequestContext, app: dict[str, Any], cred: dict[str, Any], *, ignore: str | None
) -> None:
    for other in _credentials(ctx, app).values():
        if other["id"] == ignore:
            continue
        if other["name"] == cred["name"]:
            raise conflict(
                f"A federated identity credential named '{cred['name']}' already exists on "
                "the application."
            )
        if other["issuer"] == cred["issuer"] and other["subject"] == cred["subject"]:
            raise conflict(
                "A federated identity credential with the same issuer and subject already "
                "exists on the application."
            )


def _create(ctx: RequestContext, app: dict[str, Any], body: dict[str, Any]) -> EmuResponse:
    _check_fields(body, creating=True)
    credentials = _credentials(ctx, app)
    if len(credentials) >= MAX_FEDERATED_CREDENTIALS:
        raise bad_request(
            f"An application holds at most {MAX_FEDERATED_CREDENTIALS} federated identity "
            "credentials."
        )
    cred = {
        "id": ctx.emulator.ids.guid(),
        "name": body["name"],
        "issuer": body["issuer"],
        "subject": body["subject"],
        "description": body.get("description"),
        "audiences": list(body["audiences"]),
    }
    _check_unique(ctx, app, cred, ignore=None)
    credentials[cred["id"]] = cred
    return ctx.entity(copy.deepcopy(cred), context=_context(app, entity=True), status=201)


def _update(
    ctx: RequestContext, app: dict[str, Any], cred: dict[str, Any], body: dict[str, Any]
) -> EmuResponse:
    _check_fields(body, creating=False)
    if body.get("name") is not None and body["name"] != cred["name"]:
        raise bad_request("The name of a federated identity credential cannot be changed.")
    changed = {**cred, **{k: v for k, v in body.items() if k in _FIC_FIELDS}}
    _check_unique(ctx, app, changed, ignore=cred["id"])
    cred.update(changed)
    return ctx.no_content()


@_routes("GET", "/federatedIdentityCredentials", CRED_READ)
def list_federated(ctx: RequestContext) -> EmuResponse:
    app = _readable_app(ctx)
    return shaped_collection(
        ctx,
        list(_credentials(ctx, app).values()),
        context=_context(app),
        type_name=FIC_TYPE,
        filter_spec=_FIC_FILTER,
        count_requires_advanced=False,
    )


@_routes("POST", "/federatedIdentityCredentials", CRED_WRITE)
def create_federated(ctx: RequestContext) -> EmuResponse:
    app = _writable_app(ctx)
    return _create(ctx, app, ctx.body_object())


@_routes("GET", "/federatedIdentityCredentials/{credential}", CRED_READ)
@_routes("GET", "/federatedIdentityCredentials(name='{name}')", CRED_READ)
def get_federated(ctx: RequestContext) -> EmuResponse:
    app = _readable_app(ctx)
    key = ctx.params.get("credential") or ctx.params["name"]
    cred = _find_credential(ctx, app, key)
    return shaped_entity(ctx, cred, context=_context(app, entity=True), type_name=FIC_TYPE)


@_routes("PATCH", "/federatedIdentityCredentials/{credential}", CRED_WRITE)
def patch_federated(ctx: RequestContext) -> EmuResponse:
    app = _writable_app(ctx)
    cred = _find_credential(ctx, app, ctx.params["credential"])
    return _update(ctx, app, cred, ctx.body_object())


@_routes("PATCH", "/federatedIdentityCredentials(name='{name}')", CRED_WRITE)
def upsert_federated(ctx: RequestContext) -> EmuResponse:
    """Update by name, or create it when missing and ``Prefer: create-if-missing`` says so."""
    app = _writable_app(ctx)
    name = ctx.params["name"]
    body = ctx.body_object()
    found = next((c for c in _credentials(ctx, app).values() if c["name"] == name), None)
    if found is not None:
        return _update(ctx, app, found, body)
    prefer = (ctx.request.header("prefer") or "").lower()
    if "create-if-missing" not in prefer:
        raise object_not_found(name)
    if body.get("name") not in (None, name):
        raise bad_request("The name in the body must be the name in the URL.")
    return _create(ctx, app, {**body, "name": name})


@_routes("DELETE", "/federatedIdentityCredentials/{credential}", CRED_WRITE)
@_routes("DELETE", "/federatedIdentityCredentials(name='{name}')", CRED_WRITE)
def delete_federated(ctx: RequestContext) -> EmuResponse:
    app = _writable_app(ctx)
    cred = _find_credential(ctx, app, ctx.params.get("credential") or ctx.params["name"])
    del _credentials(ctx, app)[cred["id"]]
    return ctx.no_content()
