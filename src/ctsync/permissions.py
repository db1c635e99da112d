"""What ctsync needs in each tenant: the one table the docs, ``preflight`` and ``bootstrap`` use.

A tenant's *duties* follow from its place in the config's links: the target of a link holds the
partner configuration and identitySynchronization for the source; the source holds its partner
configuration, the CTS configuration app with its job, and the assignments; a tenant of the
config's multitenant organization holds it (owner), its join request and MTO templates. Each
duty names

- the **application permissions** an app-only credential needs (least privilege; granted with
  admin consent — what ``ctsync bootstrap`` grants),
- the **delegated scopes** a signed-in admin's token needs, and
- the **directory roles** Graph also checks for a delegated caller (any one of them will do; the
  first is the least privileged).

Sources: Microsoft's "Configure cross-tenant synchronization using Microsoft Graph" (its
prerequisites), and each API page's permissions section (``graph-cts-api.md`` §1, §2.6).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, TypeVar

if TYPE_CHECKING:
    from ctsync.config import DesiredState

__all__ = [
    "BOOTSTRAP_ROLES",
    "BOOTSTRAP_SCOPES",
    "DUTIES",
    "ROLE_IDS",
    "Duty",
    "Side",
    "application_permissions",
    "delegated_scopes",
    "directory_roles",
    "duties_for",
    "guide_table",
    "sides_of",
]

Side = Literal["source", "target", "organization"]

#: Permission names, spelled once.
CTAP_WRITE: Final = "Policy.ReadWrite.CrossTenantAccess"
POLICY_READ: Final = "Policy.Read.All"
APP_WRITE: Final = "Application.ReadWrite.All"
SYNC_WRITE: Final = "Synchronization.ReadWrite.All"
ASSIGN_WRITE: Final = "AppRoleAssignment.ReadWrite.All"
DIRECTORY_READ: Final = "Directory.Read.All"
AUDIT_READ: Final = "AuditLog.Read.All"
METHODS_READ: Final = "UserAuthenticationMethod.Read.All"
MTO_WRITE: Final = "MultiTenantOrganization.ReadWrite.All"


@dataclass(frozen=True)
class Duty:
    """One thing ctsync does in a tenant, and what it takes there."""

    side: Side
    what: str
    application: tuple[str, ...]
    delegated: tuple[str, ...]
    roles: tuple[str, ...]
    #: False: only preflight's extra checks and day-2 reads need it; plan and apply do not.
    required: bool = True


DUTIES: Final[tuple[Duty, ...]] = (
    Duty(
        "target",
        "partner configuration, inbound user sync, inbound automatic redemption, inbound trust",
        (CTAP_WRITE, POLICY_READ),
        (CTAP_WRITE, POLICY_READ),
        ("Security Administrator",),
    ),
    Duty(
        "source",
        "partner configuration and outbound automatic redemption",
        (CTAP_WRITE, POLICY_READ),
        (CTAP_WRITE, POLICY_READ),
        ("Security Administrator",),
    ),
    Duty(
        "source",
        "the CTS configuration app, its job, secrets, schema; start, test connection",
        (APP_WRITE, SYNC_WRITE),
        (APP_WRITE, SYNC_WRITE),
        ("Cloud Application Administrator", "Application Administrator"),
    ),
    Duty(
        "source",
        "assignments; resolving the groups and users you assign",
        (ASSIGN_WRITE, DIRECTORY_READ),
        (ASSIGN_WRITE, DIRECTORY_READ),
        ("Cloud Application Administrator", "Application Administrator"),
    ),
    Duty(
        "organization",
        "the multitenant organization: create it and add members (owner), its templates, join",
        (MTO_WRITE, CTAP_WRITE, POLICY_READ),
        (MTO_WRITE, CTAP_WRITE, POLICY_READ),
        ("Security Administrator",),
    ),
    Duty(
        "source",
        "preflight: the registration report, SMS sign-in state; provisioning logs",
        (AUDIT_READ, METHODS_READ),
        (AUDIT_READ, METHODS_READ),
        ("Reports Reader", "Security Reader", "Global Reader"),
        required=False,
    ),
    Duty(
        "target",
        "preflight: Conditional Access and external collaboration settings",
        (POLICY_READ,),
        (POLICY_READ,),
        ("Security Reader", "Global Reader"),
        required=False,
    ),
)

#: What ``ctsync bootstrap`` itself needs from the admin who signs in: to create an app
#: registration and grant it Microsoft Graph application permissions (admin consent).
BOOTSTRAP_SCOPES: Final = (APP_WRITE, ASSIGN_WRITE)
#: Granting Graph application permissions takes Privileged Role Administrator (or Global
#: Administrator); Cloud Application Administrator can create the app but not consent to them.
BOOTSTRAP_ROLES: Final = ("Privileged Role Administrator", "Global Administrator")


#: Template ids of the directory roles named above (a delegated token lists the signed-in
#: user's roles by template id in ``wids``). Source: Entra's "built-in roles" reference.
ROLE_IDS: Final[dict[str, str]] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Hybrid Identity Administrator": "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Reports Reader": "4a5d8f65-41da-4de4-8968-e035b65339cf",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
}


def sides_of(desired: DesiredState, tenant: str) -> tuple[Side, ...]:
    """Whether ``tenant`` is the source or the target of some link of the config, and whether
    it is in the config's multitenant organization."""
    found: list[Side] = []
    if any(link.source == tenant for link in desired.links):
        found.append("source")
    if any(link.target == tenant for link in desired.links):
        found.append("target")
    if desired.organization is not None and tenant in desired.organization.tenants:
        found.append("organization")
    return tuple(found)


def duties_for(sides: Iterable[Side], *, required_only: bool = False) -> tuple[Duty, ...]:
    """The duties of a tenant that is ``sides`` (source, target, organization)."""
    chosen = set(sides)
    return tuple(d for d in DUTIES if d.side in chosen and (d.required or not required_only))


H = TypeVar("H", bound=Hashable)


def _union(items: Iterable[H]) -> tuple[H, ...]:
    return tuple(dict.fromkeys(items))


def application_permissions(
    sides: Iterable[Side], *, required_only: bool = False
) -> tuple[str, ...]:
    """Every application permission a tenant with ``sides`` needs, in table order."""
    return _union(p for d in duties_for(sides, required_only=required_only) for p in d.application)


def delegated_scopes(sides: Iterable[Side], *, required_only: bool = False) -> tuple[str, ...]:
    """Every delegated scope a signed-in admin's token needs in such a tenant."""
    return _union(p for d in duties_for(sides, required_only=required_only) for p in d.delegated)


def directory_roles(
    sides: Iterable[Side], *, required_only: bool = True
) -> tuple[tuple[str, ...], ...]:
    """For each duty, the directory roles any one of which a delegated admin needs."""
    return _union(d.roles for d in duties_for(sides, required_only=required_only))


def guide_table() -> str:
    """The Markdown table docs/guide.md shows (a test keeps the two equal)."""
    rows = [
        "| tenant | what ctsync does there | application permissions | a signed-in admin's role |",
        "|---|---|---|---|",
    ]
    for duty in DUTIES:
        perms = ", ".join(f"`{p}`" for p in duty.application)
        roles = " or ".join(duty.roles)
        optional = " (optional)" if not duty.required else ""
        rows.append(f"| {duty.side}{optional} | {duty.what} | {perms} | {roles} |")
    return "\n".join(rows)
