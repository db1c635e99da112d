"""Undocumented properties: what real Graph answers carry beyond Microsoft's v1.0 types.

A real tenant's answers hold properties the v1.0 metadata does not declare — properties of
the beta schema, leaking into v1.0 answers of the same service. A client that compares whole
objects, or refuses unknown members, breaks on them. With the fault profile's
``extra_properties`` (on by default in ``ctsync emulator serve``, off in-process) the emulator
adds the few listed in :data:`EXTRA_PROPERTIES` to every answer showing one of those objects —
not when ``$select`` names what to return, as Graph returns only what was selected.

The names are beta properties of the same types (absent from the v1.0 metadata the emulator's
type checks use), with the values a new object shows there.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctsync.emulator.core.http import EmuResponse

if TYPE_CHECKING:
    from ctsync.emulator.core.context import RequestContext

__all__ = ["EXTRA_PROPERTIES", "add_extra_properties", "extras_for"]

#: Type → the undocumented properties added to it (values: a new object's).
EXTRA_PROPERTIES: dict[str, dict[str, Any]] = {
    "servicePrincipal": {
        "errorUrl": None,
        "samlMetadataUrl": None,
        "publisherName": "",  # the owning tenant's display name, filled in per answer
        "isAuthorizationServiceEnabled": False,
    },
    "application": {
        "windows": {"packageSid": None, "redirectUris": []},
        "signInAudienceRestrictions": None,
    },
    "crossTenantAccessPolicyConfigurationPartner": {
        "protectedContentSharing": None,
        "invitationRedemptionIdentityProviderConfiguration": None,
    },
    "crossTenantIdentitySyncPolicyPartner": {
        "externalCloudAuthorizedApplicationId": None,
    },
}

#: ``@odata.context`` fragments (after ``$metadata#``) → the type of the objects shown.
_CONTEXTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^servicePrincipals(/\$entity)?$"), "servicePrincipal"),
    (re.compile(r"^applications(/\$entity)?$"), "application"),
    (
        re.compile(r"^policies/crossTenantAccessPolicy/partners(/\$entity)?$"),
        "crossTenantAccessPolicyConfigurationPartner",
    ),
    (
        re.compile(
            r"^policies/crossTenantAccessPolicy/partners\('[^']*'\)/identitySynchronization/\$entity$"
        ),
        "crossTenantIdentitySyncPolicyPartner",
    ),
]
_INSTANTIATED = "microsoft.graph.applicationServicePrincipal"
#: Navigation properties an object of a type may carry expanded, and their type.
_EXPANDED = {
    "crossTenantAccessPolicyConfigurationPartner": {
        "identitySynchronization": "crossTenantIdentitySyncPolicyPartner"
    }
}


def extras_for(type_name: str, ctx: RequestContext) -> dict[str, Any]:
    """The undocumented properties an object of ``type_name`` shows in ``ctx``'s tenant."""
    extras = copy.deepcopy(EXTRA_PROPERTIES.get(type_name, {}))
    if "publisherName" in extras:
        extras["publisherName"] = ctx.tenant.display_name
    return extras


def _add(obj: Any, type_name: str, ctx: RequestContext) -> None:
    if not isinstance(obj, dict):
        return
    for key, value in extras_for(type_name, ctx).items():
        obj.setdefault(key, value)
    for nav, nav_type in _EXPANDED.get(type_name, {}).items():
        _add(obj.get(nav), nav_type, ctx)


def _shown_types(fragment: str) -> Callable[[dict[str, Any], RequestContext], None] | None:
    if fragment == _INSTANTIATED:

        def both(body: dict[str, Any], ctx: RequestContext) -> None:
            _add(body.get("application"), "application", ctx)
            _add(body.get("servicePrincipal"), "servicePrincipal", ctx)

        return both
    for pattern, type_name in _CONTEXTS:
        if pattern.match(fragment):

            def each(body: dict[str, Any], ctx: RequestContext, type_name: str = type_name) -> None:
                values = body.get("value")
                for item in values if isinstance(values, list) else [body]:
                    _add(item, type_name, ctx)

            return each
    return None


#: ``{"@odata.context":"…"`` at the start of an answer (no escapes in a context URL).
_CONTEXT_FIRST = re.compile(rb'^\{"@odata\.context":"([^"\\]*)"')


def add_extra_properties(ctx: RequestContext, response: EmuResponse) -> EmuResponse:
    """``response`` with the undocumented properties of the objects it shows (a JSON answer
    with an ``@odata.context`` naming one of :data:`EXTRA_PROPERTIES`' types); unchanged
    otherwise, or when the request selected its properties."""
    if response.status not in {200, 201} or dict.get(ctx.query, "$select") is not None:
        return response
    if "json" not in response.headers.get("content-type", ""):
        return response
    # Every answer the emulator makes names its ``@odata.context`` first: an answer without
    # one (a $batch envelope) or of a type without extras (a schema) is passed on unparsed.
    head = _CONTEXT_FIRST.match(response.body)
    if head is None or _shown_types(head.group(1).decode().partition("#")[2]) is None:
        return response
    try:
        body = json.loads(response.body)
    except ValueError:
        return response
    if not isinstance(body, dict):
        return response
    context = body.get("@odata.context")
    if not isinstance(context, str) or "#" not in context:
        return response
    shown = _shown_types(context.split("#", 1)[1])
    if shown is None:
        return response
    shown(body, ctx)
    response.body = json.dumps(body, separators=(",", ":")).encode()
    return response
