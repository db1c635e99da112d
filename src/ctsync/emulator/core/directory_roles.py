"""Microsoft Entra built-in directory roles: names, template ids, and who holds which.

A tenant keeps its role assignments in ``Tenant.directory_roles`` (user id -> role template
ids), seeded by scenarios (``"roles": ["Global Administrator"]`` on a user) or changed through
the control API (``POST /_emulator/directory-roles``). Delegated tokens carry them in ``wids``
(with the default User role every member holds), and Graph checks them on delegated calls
(``core/delegated_access.py``).

Template ids: Entra's "Microsoft Entra built-in roles" reference (entra-docs
``identity/role-based-access-control/permissions-reference.md``, "All roles"). Only the roles
the emulator's route table or its scenarios name are listed; any other template id (a GUID)
may still be assigned and shows in ``wids``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctsync.emulator.state import JsonObject, Tenant

__all__ = [
    "GLOBAL_ADMINISTRATOR",
    "ROLE_TEMPLATES",
    "USER_ROLE_ID",
    "assigned_role_ids",
    "is_member",
    "resolve_role",
    "role_name",
    "set_roles",
    "token_wids",
]

#: Role display name -> role template id (the ``roleTemplateId`` and a token's ``wids``).
ROLE_TEMPLATES: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Security Operator": "5f2222b1-57c3-48ba-8ad5-d4759f1fde6f",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Application Developer": "cf1c38e5-3621-4004-a7cb-879624dced7c",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Hybrid Identity Administrator": "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
    "Conditional Access Administrator": "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Groups Administrator": "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
    "Directory Writers": "9360feb5-f418-4baa-8175-e2a00bac4301",
    "Directory Synchronization Accounts": "d29b2b05-8046-44ba-8758-1e26182fcf32",
    "Identity Governance Administrator": "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e",
    "Reports Reader": "4a5d8f65-41da-4de4-8968-e035b65339cf",
    "Teams Administrator": "69091246-20e8-4a56-aa4d-066075b2a7a8",
    "Global Secure Access Administrator": "ac434307-12b9-4fa1-a708-88bf58caabc1",
    "Guest Inviter": "95e79109-95c0-4d8e-aee3-d01accf2d47b",
    "Cloud Device Administrator": "7698a772-787b-4ac8-901f-60d6b08affd2",
    "License Administrator": "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
}

GLOBAL_ADMINISTRATOR = ROLE_TEMPLATES["Global Administrator"]

#: The default "User" role every member user holds: Entra puts it in every member's ``wids``
#: beside the roles assigned to them (Graph's "Authorization and the Microsoft Graph Security
#: API" page shows ``["62e90394-…", "b79fbf4d-3ef9-4689-8143-76b194e85509"]``).
USER_ROLE_ID = "b79fbf4d-3ef9-4689-8143-76b194e85509"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_BY_LOWER_NAME = {name.lower(): rid for name, rid in ROLE_TEMPLATES.items()}
_NAMES = {rid: name for name, rid in ROLE_TEMPLATES.items()}


def resolve_role(ref: str) -> str | None:
    """The template id a role display name (any case) or template id stands for; ``None`` for
    anything else."""
    by_name = _BY_LOWER_NAME.get(ref.strip().lower())
    if by_name is not None:
        return by_name
    if _GUID.match(ref.strip()):
        return ref.strip().lower()
    return None


def role_name(template_id: str) -> str | None:
    return _NAMES.get(template_id.lower())


def assigned_role_ids(tenant: Tenant, user_id: str) -> frozenset[str]:
    """Template ids of the roles assigned to a user (without the default User role)."""
    return frozenset(r.lower() for r in tenant.directory_roles.get(user_id, ()))


def is_member(user: JsonObject) -> bool:
    """An internal user (``userType`` Member, the default), not a guest."""
    return str(user.get("userType") or "Member").lower() == "member"


def token_wids(tenant: Tenant, user: JsonObject) -> list[str]:
    """A delegated token's ``wids``: the user's assigned roles, then the default User role for
    a member."""
    roles = sorted(assigned_role_ids(tenant, str(user["id"])))
    return roles + ([USER_ROLE_ID] if is_member(user) else [])


def set_roles(tenant: Tenant, user_id: str, role_ids: Iterable[str]) -> list[str]:
    """Replace a user's role assignments; the stored template ids, sorted."""
    ids = sorted({r.lower() for r in role_ids})
    if ids:
        tenant.directory_roles[user_id] = ids
    else:
        tenant.directory_roles.pop(user_id, None)
    return ids
