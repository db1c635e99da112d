"""The authentication methods registration report: ``userRegistrationDetails``.

Each row is derived from the tenant's users and their stored authentication methods, so a
change through the methods API (``disableSmsSignIn``) shows at once. Behaviour follows
reference §5.2 (Microsoft's "List userRegistrationDetails" page: only ``$filter`` and
``$orderby``); choices where the docs are silent are in ``docs/emulator.md`` (section
"Registration report").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import bad_request
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.odata import FilterSpec, OrderbySpec, collection_response
from ctsync.emulator.core.routing import Router
from ctsync.emulator.services._shared import object_key, object_not_found
from ctsync.emulator.services.authentication import methods_of
from ctsync.emulator.state import Tenant

__all__ = ["registration_details", "router"]

router = Router()

REPORT_READ = ("AuditLog.Read.All",)
_PATH = "/reports/authenticationMethods/userRegistrationDetails"
_CONTEXT = "reports/authenticationMethods/userRegistrationDetails"
#: Server-driven page size (Microsoft documents none, and the route takes no ``$top``).
PAGE_SIZE = 100

#: ``methodsRegistered`` values per stored method type (Microsoft's documented names).
_PHONE_NAMES = {
    "mobile": "mobilePhone",
    "alternateMobile": "alternateMobilePhone",
    "office": "officePhone",
}
_METHOD_NAMES: dict[str, tuple[str, ...]] = {
    "fido2AuthenticationMethod": ("fido2",),
    "softwareOathAuthenticationMethod": ("softwareOneTimePasscode",),
    "emailAuthenticationMethod": ("email",),
    "windowsHelloForBusinessAuthenticationMethod": ("windowsHelloForBusiness",),
    "temporaryAccessPassAuthenticationMethod": ("temporaryAccessPass",),
    "platformCredentialAuthenticationMethod": ("macOsSecureEnclaveKey",),
}
#: Strong second factors: what makes a user MFA-registered.
_MFA = {
    "microsoftAuthenticatorPush",
    "microsoftAuthenticatorPasswordless",
    "softwareOneTimePasscode",
    "mobilePhone",
    "alternateMobilePhone",
    "officePhone",
    "fido2",
    "windowsHelloForBusiness",
    "macOsSecureEnclaveKey",
}
_PASSWORDLESS = {
    "fido2",
    "windowsHelloForBusiness",
    "microsoftAuthenticatorPasswordless",
    "macOsSecureEnclaveKey",
}
#: Methods self-service password reset accepts.
_SSPR = {
    "microsoftAuthenticatorPush",
    "softwareOneTimePasscode",
    "mobilePhone",
    "alternateMobilePhone",
    "officePhone",
    "email",
}


def _names(method: dict[str, Any]) -> tuple[str, ...]:
    kind = str(method.get("@odata.type", "")).removeprefix("#microsoft.graph.")
    if kind == "phoneAuthenticationMethod":
        name = _PHONE_NAMES.get(str(method.get("phoneType")))
        return (name,) if name else ()
    if kind == "microsoftAuthenticatorAuthenticationMethod":
        # An Authenticator app with its software token activated also gives one-time codes
        # (Microsoft's example lists both for such a user).
        if method.get("deviceTag") == "SoftwareTokenActivated":
            return ("microsoftAuthenticatorPush", "softwareOneTimePasscode")
        return ("microsoftAuthenticatorPush",)
    return _METHOD_NAMES.get(kind, ())


def _registered(methods: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for method in methods:
        for name in _names(method):
            if name not in out:
                out.append(name)
    return out


def _system_preferred(registered: list[str]) -> list[str]:
    """The strongest registered second factor, in system-preferred MFA order, as the
    documented values (``push``, ``oath``, ``sms``, ``voiceAlternateMobile``, …)."""
    order = (
        ("microsoftAuthenticatorPush", "push"),
        ("softwareOneTimePasscode", "oath"),
        ("mobilePhone", "sms"),
        ("alternateMobilePhone", "voiceAlternateMobile"),
        ("officePhone", "voiceOffice"),
    )
    return next(([value] for name, value in order if name in registered), [])


def _user_preferred(registered: list[str]) -> str:
    """The default second factor a user would have picked at registration."""
    return next(
        (
            value
            for name, value in (
                ("microsoftAuthenticatorPush", "push"),
                ("softwareOneTimePasscode", "oath"),
                ("mobilePhone", "sms"),
                ("alternateMobilePhone", "voiceAlternateMobile"),
                ("officePhone", "voiceOffice"),
            )
            if name in registered
        ),
        "none",
    )


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def registration_details(tenant: Tenant, user: dict[str, Any]) -> dict[str, Any]:
    """One ``userRegistrationDetails`` row for ``user`` (wire shape)."""
    registered = _registered(methods_of(tenant, user["id"]))
    is_member = str(user.get("userType") or "Member").lower() != "guest"
    mfa = any(name in _MFA for name in registered)
    sspr_registered = any(name in _SSPR for name in registered)
    sspr_enabled = is_member and bool(tenant.authorization_policy.get("allowedToUseSSPR"))
    changed = tenant.auth_methods_changed.get(user["id"])
    updated = _timestamp(changed) if changed is not None else user.get("createdDateTime")
    return {
        "id": user["id"],
        "userPrincipalName": user.get("userPrincipalName") or "",
        "userDisplayName": user.get("displayName") or "",
        "userType": "member" if is_member else "guest",
        # "Indicates whether the user has an admin role in the tenant": any directory role.
        "isAdmin": bool(tenant.directory_roles.get(user["id"])),
        "isSsprRegistered": sspr_registered,
        "isSsprEnabled": sspr_enabled,
        "isSsprCapable": sspr_registered and sspr_enabled,
        "isMfaRegistered": mfa,
        "isMfaCapable": mfa,
        "isPasswordlessCapable": any(name in _PASSWORDLESS for name in registered),
        "methodsRegistered": registered,
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "systemPreferredAuthenticationMethods": _system_preferred(registered),
        "userPreferredMethodForSecondaryAuthentication": _user_preferred(registered),
        "lastUpdatedDateTime": updated or "2020-01-01T00:00:00Z",
    }


_BOOLEAN = "eq"
_FILTER = FilterSpec(
    resource="userRegistrationDetails",
    properties={
        "id": "eq",
        "userPrincipalName": "eq startswith",
        "userDisplayName": "eq startswith",
        "userType": "eq",
        "userPreferredMethodForSecondaryAuthentication": "eq",
        "isAdmin": _BOOLEAN,
        "isMfaCapable": _BOOLEAN,
        "isMfaRegistered": _BOOLEAN,
        "isPasswordlessCapable": _BOOLEAN,
        "isSsprCapable": _BOOLEAN,
        "isSsprEnabled": _BOOLEAN,
        "isSsprRegistered": _BOOLEAN,
        "isSystemPreferredAuthenticationMethodEnabled": _BOOLEAN,
        "methodsRegistered": "any eq",
        "systemPreferredAuthenticationMethods": "any eq",
    },
)
_ORDERBY = OrderbySpec(
    resource="userRegistrationDetails", properties=("userPrincipalName", "userDisplayName")
)
_SUPPORTED = {"$filter", "$orderby", "$skiptoken"}


def _refuse_unsupported(ctx: RequestContext) -> None:
    for key in ctx.query:
        if key.startswith("$") and key not in _SUPPORTED:
            msg = (
                f"Query option '{key}' is not supported on userRegistrationDetails; "
                "only $filter and $orderby are."
            )
            raise bad_request(msg)


def _rows(ctx: RequestContext) -> list[dict[str, Any]]:
    return [
        registration_details(ctx.tenant, user)
        for uid, user in ctx.tenant.users.items()
        if ctx.visible(object_key("user", uid))
    ]


@router.route("GET", _PATH, permissions=REPORT_READ, kind="reports")
def list_registration_details(ctx: RequestContext) -> EmuResponse:
    _refuse_unsupported(ctx)
    return collection_response(
        ctx,
        _rows(ctx),
        context=_CONTEXT,
        filter_spec=_FILTER,
        orderby=_ORDERBY,
        default_top=PAGE_SIZE,
        # Not a directory object: $filter and $orderby combine without an advanced query.
        count_requires_advanced=False,
    )


@router.route("GET", _PATH + "/{id}", permissions=REPORT_READ, kind="reports")
def get_registration_details(ctx: RequestContext) -> EmuResponse:
    # Microsoft: "This method does not support the OData query parameters".
    for key in ctx.query:
        if key.startswith("$"):
            raise bad_request(f"Query option '{key}' is not supported on this request.")
    wanted = ctx.params["id"].lower()
    for uid, user in ctx.tenant.users.items():
        if uid.lower() == wanted and ctx.visible(object_key("user", uid)):
            return ctx.entity(registration_details(ctx.tenant, user), context=_CONTEXT + "/$entity")
    raise object_not_found(ctx.params["id"])
