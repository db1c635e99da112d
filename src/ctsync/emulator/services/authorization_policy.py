"""The tenant's ``authorizationPolicy``: external collaboration settings (who may invite
guests, ``allowInvitesFrom``), the guest role and the default user role's permissions.

``GET /policies/authorizationPolicy`` answers the single object (v1.0; beta once answered a
collection); ``PATCH`` merges and answers ``204``. The state lives in
``Tenant.authorization_policy``. Choices where the docs are silent are in
``docs/emulator.md`` (section "Authorization policy").
"""

from __future__ import annotations

import copy
from typing import Any

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import bad_request
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.routing import Router
from ctsync.emulator.core.schema import check_body
from ctsync.emulator.services._shared import shaped_entity

__all__ = ["GUEST_ROLES", "apply_changes", "router"]

router = Router()

POLICY_TYPE = "authorizationPolicy"
PATH = "/policies/authorizationPolicy"
READ = ("Policy.Read.All", "Policy.ReadWrite.Authorization")
WRITE = ("Policy.ReadWrite.Authorization",)

#: The roles ``guestUserRoleId`` may name (Microsoft's update page).
GUEST_ROLES = {
    "a0b1b346-4d3e-4e8b-98f8-753987be4970": "User",
    "10dae51f-b6af-4016-8d66-8c2a99b929b3": "Guest User",
    "2af84b1e-32c8-42b7-82bc-daa82404023b": "Restricted Guest User",
}


def apply_changes(policy: dict[str, Any], changes: Any) -> dict[str, Any]:
    """``policy`` with a PATCH body applied (checked; ``400`` on a bad body).

    Members replace the stored ones, except ``defaultUserRolePermissions``, which merges one
    level deep (Microsoft's examples patch one of its members at a time).
    """
    check_body(POLICY_TYPE, changes)
    out = copy.deepcopy(policy)
    for key, value in changes.items():
        if key.startswith("@odata."):
            continue
        if key == "id":
            if value != policy.get("id"):
                raise bad_request("Property 'id' is read-only and cannot be set.")
            continue
        if key == "deletedDateTime":
            raise bad_request("Property 'deletedDateTime' is read-only and cannot be set.")
        if key == "allowInvitesFrom" and value == "unknownFutureValue":
            raise bad_request("'unknownFutureValue' is not a valid value for allowInvitesFrom.")
        if key == "guestUserRoleId" and value is not None and value.lower() not in GUEST_ROLES:
            allowed = ", ".join(f"{name} ({rid})" for rid, name in GUEST_ROLES.items())
            raise bad_request(f"guestUserRoleId must be one of: {allowed}.")
        if key == "defaultUserRolePermissions" and isinstance(out.get(key), dict):
            out[key] = {**out[key], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value.lower() if key == "guestUserRoleId" and value else value)
    return out


@router.route("GET", PATH, permissions=READ)
def get_authorization_policy(ctx: RequestContext) -> EmuResponse:
    return shaped_entity(
        ctx,
        copy.deepcopy(ctx.tenant.authorization_policy),
        context="policies/authorizationPolicy/$entity",
        type_name=POLICY_TYPE,
    )


@router.route("PATCH", PATH, permissions=WRITE)
def update_authorization_policy(ctx: RequestContext) -> EmuResponse:
    changes = ctx.body_object()
    ctx.tenant.authorization_policy = apply_changes(ctx.tenant.authorization_policy, changes)
    return ctx.no_content()
