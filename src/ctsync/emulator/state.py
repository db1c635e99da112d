"""What the emulator remembers, per tenant. Plain data; services hold the behaviour.

Objects are kept in Graph's wire shape (camelCase dicts) so a response is a copy of the stored
object, and every object records when it was created, for the replication-lag fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ClientApp", "CrossTenantAccessState", "Tenant"]

JsonObject = dict[str, Any]


@dataclass
class ClientApp:
    """An app registration that can get app-only tokens in its tenant."""

    client_id: str
    client_secret: str
    display_name: str
    #: Application permissions granted with admin consent; they become the token's ``roles``.
    permissions: list[str]
    #: Object id of the app's service principal in the tenant (the token's ``oid``).
    object_id: str


@dataclass
class CrossTenantAccessState:
    #: The tenant's default settings once patched; ``None`` means the service default.
    default: JsonObject | None = None
    #: Partner configurations keyed by the partner tenant id in lower case.
    partners: dict[str, JsonObject] = field(default_factory=dict)
    #: identitySynchronization objects keyed like ``partners``.
    identity_sync: dict[str, JsonObject] = field(default_factory=dict)


@dataclass
class Tenant:
    id: str
    name: str
    display_name: str
    #: The initial ``<name>.onmicrosoft.com`` domain.
    domain: str
    #: Custom domains verified in the tenant; users' UPNs and mail use the first one.
    verified_domains: list[str] = field(default_factory=list)
    clients: dict[str, ClientApp] = field(default_factory=dict)
    users: dict[str, JsonObject] = field(default_factory=dict)
    groups: dict[str, JsonObject] = field(default_factory=dict)
    #: Direct members of each group, by group id.
    group_members: dict[str, list[str]] = field(default_factory=dict)
    #: Authentication methods of each user, by user id (wire shape with ``@odata.type``).
    auth_methods: dict[str, list[JsonObject]] = field(default_factory=dict)
    access_policy: CrossTenantAccessState = field(default_factory=CrossTenantAccessState)
    #: Creation time of every object created through the API, by object key.
    created_at: dict[str, datetime] = field(default_factory=dict)
    #: Directory-object quota (Entra's default is 50,000 for tenants without a verified domain).
    object_quota: int = 50_000

    @property
    def size_class(self) -> str:
        """S, M or L by user count: picks the identity quota (graph-limits §1.2)."""
        n = len(self.users)
        if n < 50:
            return "S"
        if n <= 500:
            return "M"
        return "L"
