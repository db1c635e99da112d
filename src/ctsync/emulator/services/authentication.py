"""Users' authentication methods: the typed list, phone methods, and SMS sign-in.

Behaviour follows reference §5.1 and §10 item 19 (Microsoft's "List methods", "List
phoneMethods" and ``disableSmsSignIn``/``enableSmsSignIn`` pages). Choices where the docs are
silent are listed in ``docs/emulator.md`` (section "Authentication methods").
"""

from __future__ import annotations

import copy
from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault, bad_request, not_found
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.routing import Router
from ctsync.emulator.services._shared import object_not_found
from ctsync.emulator.services.directory import find_user
from ctsync.emulator.state import Tenant

__all__ = [
    "ALTERNATE_MOBILE_PHONE_ID",
    "MOBILE_PHONE_ID",
    "OFFICE_PHONE_ID",
    "methods_of",
    "mobile_phone",
    "router",
    "sms_sign_in_ready",
]

router = Router()

#: The fixed ids of the three phone methods a user can have [G20].
MOBILE_PHONE_ID = "3179e48a-750b-4051-897c-87b9720928f7"
ALTERNATE_MOBILE_PHONE_ID = "b6332ec1-7057-4abe-9331-3d72feddfe41"
OFFICE_PHONE_ID = "e37fc753-ff3b-4958-9484-eaa9425c82bc"
_PHONE_IDS = {MOBILE_PHONE_ID, ALTERNATE_MOBILE_PHONE_ID, OFFICE_PHONE_ID}
_PHONE_TYPE = "#microsoft.graph.phoneAuthenticationMethod"

METHODS_READ = ("UserAuthenticationMethod.Read.All", "UserAuthenticationMethod.ReadWrite.All")
PHONE_READ = (
    *METHODS_READ,
    "UserAuthMethod-Phone.Read.All",
    "UserAuthMethod-Phone.ReadWrite.All",
)
PHONE_WRITE = ("UserAuthenticationMethod.ReadWrite.All", "UserAuthMethod-Phone.ReadWrite.All")

_BASE = "/users/{id}/authentication"


# -- state helpers (also for the provisioning engine) ----------------------------------------


def methods_of(tenant: Tenant, user_id: str) -> list[dict[str, Any]]:
    """The stored methods of a user (wire shape, the live list: copy before changing)."""
    return tenant.auth_methods.get(user_id, [])


def mobile_phone(tenant: Tenant, user_id: str) -> dict[str, Any] | None:
    """The user's mobile phone method (the live stored object), or ``None``."""
    return next(
        (
            m
            for m in methods_of(tenant, user_id)
            if m.get("@odata.type") == _PHONE_TYPE and str(m.get("id")).lower() == MOBILE_PHONE_ID
        ),
        None,
    )


def sms_sign_in_ready(tenant: Tenant, user_id: str) -> bool:
    """Whether the user can sign in with SMS: the state cross-tenant sync skips (§8.2)."""
    phone = mobile_phone(tenant, user_id)
    return phone is not None and phone.get("smsSignInState") == "ready"


# -- request helpers -------------------------------------------------------------------------


def _refuse_query_options(ctx: RequestContext) -> None:
    """These APIs support no OData query options; Graph's OData stack refuses each one."""
    for key in ctx.query:
        if key.startswith("$"):
            msg = (
                f"The query specified in the URI is not valid. Query option '{key}' is not "
                "allowed. To allow it, set the 'AllowedQueryOptions' property on "
                "EnableQueryAttribute or QueryValidationSettings."
            )
            raise bad_request(msg, code="BadRequest")


def _user(ctx: RequestContext) -> dict[str, Any]:
    user = find_user(ctx, ctx.params["id"])
    if user is None:
        raise object_not_found(ctx.params["id"])
    return user


def _shown(method: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(method)


def _method_not_found(method_id: str) -> GraphFault:
    return not_found(f"Authentication method '{method_id}' was not found for this user.")


def _context(user: dict[str, Any], tail: str) -> str:
    return f"users('{user['id']}')/authentication/{tail}"


# -- all methods -----------------------------------------------------------------------------


@router.route("GET", _BASE + "/methods", permissions=METHODS_READ)
def list_methods(ctx: RequestContext) -> EmuResponse:
    _refuse_query_options(ctx)
    user = _user(ctx)
    methods = [_shown(m) for m in methods_of(ctx.tenant, user["id"])]
    return ctx.json(
        200,
        {
            "@odata.context": f"{ctx.base_url}/$metadata#{_context(user, 'methods')}",
            "value": methods,
        },
    )


@router.route("GET", _BASE + "/methods/{methodId}", permissions=METHODS_READ)
def get_method(ctx: RequestContext) -> EmuResponse:
    _refuse_query_options(ctx)
    user = _user(ctx)
    wanted = ctx.params["methodId"]
    for method in methods_of(ctx.tenant, user["id"]):
        if str(method.get("id")).lower() == wanted.lower():
            return ctx.entity(_shown(method), context=_context(user, "methods/$entity"))
    raise _method_not_found(wanted)


# -- phone methods ---------------------------------------------------------------------------


def _phones(ctx: RequestContext, user: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in methods_of(ctx.tenant, user["id"]) if m.get("@odata.type") == _PHONE_TYPE]


def _phone(ctx: RequestContext, user: dict[str, Any], method_id: str) -> dict[str, Any]:
    wanted = method_id.lower()
    for phone in _phones(ctx, user):
        if str(phone.get("id")).lower() == wanted:
            return phone
    raise _method_not_found(method_id)


def _phone_shown(phone: dict[str, Any]) -> dict[str, Any]:
    # The phone collection is typed, so items carry no @odata.type (Microsoft's example).
    return {k: v for k, v in _shown(phone).items() if k != "@odata.type"}


@router.route("GET", _BASE + "/phoneMethods", permissions=PHONE_READ)
def list_phone_methods(ctx: RequestContext) -> EmuResponse:
    _refuse_query_options(ctx)
    user = _user(ctx)
    return ctx.json(
        200,
        {
            "@odata.context": f"{ctx.base_url}/$metadata#{_context(user, 'phoneMethods')}",
            "value": [_phone_shown(p) for p in _phones(ctx, user)],
        },
    )


@router.route("GET", _BASE + "/phoneMethods/{methodId}", permissions=PHONE_READ)
def get_phone_method(ctx: RequestContext) -> EmuResponse:
    _refuse_query_options(ctx)
    user = _user(ctx)
    phone = _phone(ctx, user, ctx.params["methodId"])
    return ctx.entity(_phone_shown(phone), context=_context(user, "phoneMethods/$entity"))


def _mobile_for_sms(ctx: RequestContext) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user and the phone method named in the URL, which must be the mobile one."""
    user = _user(ctx)
    method_id = ctx.params["methodId"]
    if method_id.lower() not in _PHONE_IDS:
        raise _method_not_found(method_id)
    phone = _phone(ctx, user, method_id)
    if phone.get("phoneType") != "mobile":
        raise bad_request(
            "SMS sign-in is only available for a phone method with phoneType 'mobile' "
            f"(id {MOBILE_PHONE_ID}).",
            code="BadRequest",
        )
    return user, phone


def _changed(ctx: RequestContext, user: dict[str, Any]) -> None:
    ctx.tenant.auth_methods_changed[user["id"]] = ctx.now


@router.route("POST", _BASE + "/phoneMethods/{methodId}/disableSmsSignIn", permissions=PHONE_WRITE)
def disable_sms_sign_in(ctx: RequestContext) -> EmuResponse:
    _refuse_query_options(ctx)
    user, phone = _mobile_for_sms(ctx)
    # Idempotent: the number stays registered (still a second factor), only SMS sign-in stops.
    if phone.get("smsSignInState") != "notEnabled":
        phone["smsSignInState"] = "notEnabled"
        _changed(ctx, user)
    return ctx.no_content()


@router.route("POST", _BASE + "/phoneMethods/{methodId}/enableSmsSignIn", permissions=PHONE_WRITE)
def enable_sms_sign_in(ctx: RequestContext) -> EmuResponse:
    _refuse_query_options(ctx)
    user, phone = _mobile_for_sms(ctx)
    if phone.get("smsSignInState") == "ready":
        return ctx.no_content()
    number = phone.get("phoneNumber")
    others = (mobile_phone(ctx.tenant, uid) for uid in ctx.tenant.auth_methods if uid != user["id"])
    if any(
        o and o.get("phoneNumber") == number and o.get("smsSignInState") == "ready" for o in others
    ):
        raise bad_request(
            "The phone number is already used for SMS sign-in by another user "
            "(phoneNumberNotUnique).",
            code="BadRequest",
        )
    phone["smsSignInState"] = "ready"
    _changed(ctx, user)
    return ctx.no_content()
