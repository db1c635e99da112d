"""The desired state a config file describes: frozen dataclasses, no pydantic, no secrets.

This is what the engine codes against. Everything here is resolved: templates are merged,
topologies are expanded into links, defaults are filled in, expressions and scoping filters are
parsed into Graph's shapes. Secrets are *references* (:class:`SecretRef`); their values are read
only by :meth:`AuthRef.resolve`, when a credential is about to be built, and never kept here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ctsync.errors import ConfigError
from ctsync.graph.clouds import Cloud
from ctsync.graph.credentials import AuthSpec

from ._files import read_bounded

__all__ = [
    "AccessSettings",
    "AttributeSource",
    "AuthRef",
    "DefaultAccessSettings",
    "DesiredState",
    "InboundTrust",
    "LinkSpec",
    "MappingSpec",
    "OrganizationSpec",
    "Principal",
    "ScopeClause",
    "ScopeGroup",
    "SecretRef",
    "SyncSettings",
    "TenantSpec",
]

#: A client secret is about 40 characters and a certificate password rarely more than 100; a
#: larger "secret file" is the wrong file (or /dev/zero), refused rather than read into memory.
MAX_SECRET_BYTES: Final = 64 * 1024

SizeClass = Literal["S", "M", "L"]
AccessType = Literal["allowed", "blocked"]
Action = Literal["create", "update", "delete"]
Apply = Literal["always", "on_create"]

# Graph's objectMapping.flowTypes flags, in the order Graph prints them.
_FLOW_TYPES: tuple[tuple[str, str], ...] = (
    ("create", "Add"),
    ("update", "Update"),
    ("delete", "Delete"),
)
_FLOW_TYPE_OF_APPLY: Mapping[str, str] = {"always": "Always", "on_create": "ObjectAddOnly"}


# -- tenants and credentials -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SecretRef:
    """Where a secret lives: an environment variable or a file, exactly one.

    It never holds the value, so printing it is always safe. A relative ``file`` is relative to
    the directory of the config file.
    """

    env: str | None = None
    file: str | None = None
    location: str | None = field(default=None, compare=False)
    """``file:line:col`` of the key that named the secret, for error messages."""

    def __post_init__(self) -> None:
        if (self.env is None) == (self.file is None):
            msg = "a SecretRef names exactly one of env or file"
            raise ValueError(msg)

    def describe(self) -> str:
        """``environment variable NAME`` or ``file PATH``: what to tell a user."""
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def read(self, *, base_dir: Path) -> str:
        """The secret value, read now. :class:`ConfigError` names the source, never a value."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
            if not value.strip():
                state = "is empty" if self.env in os.environ else "is not set"
                msg = f"environment variable {self.env} {state}; it should hold the secret"
                raise ConfigError(msg, location=self.location)
            return value.strip()
        path = _under(base_dir, self.file or "")
        try:
            raw = read_bounded(
                path, limit=MAX_SECRET_BYTES, what="secret file", location=self.location
            )
            value = raw.decode("utf-8")
        except FileNotFoundError:
            msg = f"secret file {path} does not exist"
            raise ConfigError(msg, location=self.location) from None
        except UnicodeDecodeError as exc:
            # The exception text names the file and the OS reason, never the content.
            msg = f"cannot read secret file {path}: {type(exc).__name__}"
            raise ConfigError(msg, location=self.location) from None
        # Editors and `echo` add a trailing newline; no Entra secret has surrounding spaces.
        if not value.strip():
            msg = f"secret file {path} is empty"
            raise ConfigError(msg, location=self.location)
        return value.strip()


@dataclass(frozen=True, kw_only=True)
class AuthRef:
    """How to authenticate to a tenant, with secrets by reference (see :class:`SecretRef`)."""

    method: str
    client_id: str | None = None
    secret: SecretRef | None = None
    certificate_path: str | None = None
    certificate_password: SecretRef | None = None
    token_file: str | None = None
    managed_identity_client_id: str | None = None
    service_connection_id: str | None = None
    token_cache: str = "keyring"

    def resolve(self, *, base_dir: Path, scopes: tuple[str, ...] = ()) -> AuthSpec:
        """An :class:`~ctsync.graph.AuthSpec` with secrets read and paths made absolute."""
        return AuthSpec(
            method=self.method,
            client_id=self.client_id,
            client_secret=self.secret.read(base_dir=base_dir) if self.secret else None,
            certificate_path=_path_or_none(base_dir, self.certificate_path),
            certificate_password=(
                self.certificate_password.read(base_dir=base_dir)
                if self.certificate_password
                else None
            ),
            token_file=_path_or_none(base_dir, self.token_file),
            managed_identity_client_id=self.managed_identity_client_id,
            service_connection_id=self.service_connection_id,
            token_cache=self.token_cache,
            scopes=scopes,
        )


@dataclass(frozen=True, kw_only=True)
class TenantSpec:
    """One tenant: where it is, how to sign in, and whether ctsync may write to it."""

    name: str
    tenant_id: str
    """Lower-case GUID."""
    cloud: Cloud
    auth: AuthRef
    managed: bool = True
    """False: a partner manages this tenant; ctsync only reads it (plan shows what it lacks)."""
    size_class: SizeClass | None = None
    """A pacing hint (S, M, L) for the tenant's Graph quotas; None lets the engine guess."""
    unmanaged_configurations: Mapping[str, str] = field(default_factory=dict)
    """Existing CTS configurations ctsync leaves alone: service principal id → the tenant id
    each synchronizes into (lower case), as the config says where Graph does not."""
    default_access: DefaultAccessSettings | None = None
    """The tenant's default cross-tenant access settings ctsync manages (None: none)."""
    location: str = field(default="", compare=False)


# -- partner settings --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class InboundTrust:
    """Which claims from the source tenant the target trusts (``inboundTrust``)."""

    mfa: bool = False
    compliant_device: bool = False
    hybrid_joined_device: bool = False

    def to_graph(self) -> dict[str, bool]:
        """``crossTenantAccessPolicyInboundTrust`` on the wire."""
        return {
            "isMfaAccepted": self.mfa,
            "isCompliantDeviceAccepted": self.compliant_device,
            "isHybridAzureADJoinedDeviceAccepted": self.hybrid_joined_device,
        }


@dataclass(frozen=True, kw_only=True)
class AccessSettings:
    """Cross-tenant access settings of a link. ``None`` means ctsync leaves that setting alone."""

    inbound_trust: InboundTrust | None = None
    b2b_collaboration_inbound: AccessType | None = None
    b2b_collaboration_outbound: AccessType | None = None
    automatic_redemption: bool = True


@dataclass(frozen=True, kw_only=True)
class DefaultAccessSettings:
    """A tenant's default cross-tenant access settings; ``None`` leaves a setting alone."""

    inbound_trust: InboundTrust | None = None
    b2b_collaboration_inbound: AccessType | None = None
    b2b_collaboration_outbound: AccessType | None = None
    redemption_inbound: bool | None = None
    redemption_outbound: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inbound_trust": None if self.inbound_trust is None else self.inbound_trust.to_graph(),
            "b2b_collaboration_inbound": self.b2b_collaboration_inbound,
            "b2b_collaboration_outbound": self.b2b_collaboration_outbound,
            "redemption_inbound": self.redemption_inbound,
            "redemption_outbound": self.redemption_outbound,
        }


# -- synchronization ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Principal:
    """A user or group assigned to the sync app (scope "sync only assigned users and groups")."""

    kind: Literal["group", "user"]
    ref: str
    """A group's display name or object id; a user's UPN or object id."""


@dataclass(frozen=True, kw_only=True)
class ScopeClause:
    """``attribute OPERATOR value``; ``operator`` is Graph's wire name (``NOT EQUALS``)."""

    attribute: str
    operator: str
    values: tuple[str, ...] = ()

    def to_graph(self) -> dict[str, Any]:
        """``filterClause`` on the wire."""
        return {
            "sourceOperandName": self.attribute,
            "operatorName": self.operator,
            "targetOperand": {"values": list(self.values)},
        }


@dataclass(frozen=True, kw_only=True)
class ScopeGroup:
    """Clauses that must all hold (AND). A user is in scope if any group holds (OR)."""

    name: str
    clauses: tuple[ScopeClause, ...]

    def to_graph(self) -> dict[str, Any]:
        """``filterGroup`` on the wire."""
        return {"name": self.name, "clauses": [c.to_graph() for c in self.clauses]}


@dataclass(frozen=True, kw_only=True)
class AttributeSource:
    """Graph's ``attributeMappingSource``: an attribute, a constant or a function call."""

    type: Literal["Attribute", "Constant", "Function"]
    name: str
    """The attribute name, the constant's value or the function name."""
    expression: str
    """The same source in Entra's expression language, e.g. ``ToUpper([jobTitle])``."""
    parameters: tuple[tuple[str, AttributeSource], ...] = ()

    def to_graph(self) -> dict[str, Any]:
        """``attributeMappingSource`` on the wire."""
        return {
            "type": self.type,
            "name": self.name,
            "expression": self.expression,
            "parameters": [{"key": k, "value": v.to_graph()} for k, v in self.parameters],
        }


@dataclass(frozen=True, kw_only=True)
class MappingSpec:
    """One attribute mapping of the user object mapping, keyed by its target attribute."""

    target: str
    source: AttributeSource | None
    """None removes the default mapping for ``target`` (unless ``graph`` is given)."""
    apply: Apply = "always"
    graph: Mapping[str, Any] | None = None
    """The whole ``attributeMapping`` as Graph stores it (``graph:`` in the config), written
    verbatim; for what an expression cannot say."""

    @property
    def flow_type(self) -> str:
        """``attributeMapping.flowType``: ``Always`` or ``ObjectAddOnly``."""
        return _FLOW_TYPE_OF_APPLY[self.apply]


@dataclass(frozen=True, kw_only=True)
class Rollout:
    """Stages of a staged rollout; stage ``k`` assigns ``groups[:k + 1]``.

    ``all_members`` true: the last stage puts every member in scope (``SyncAll``).
    """

    groups: tuple[Principal, ...]
    all_members: bool = False
    max_failure_rate: float = 0.0
    min_cycles: int = 1

    @property
    def stages(self) -> int:
        return len(self.groups) + (1 if self.all_members else 0)

    def principals(self, stage: int) -> tuple[Principal, ...]:
        """Who is assigned at ``stage`` (0 = pilot), clamped to the last stage."""
        return self.groups[: min(stage, len(self.groups) - 1) + 1]

    def sync_all(self, stage: int) -> bool:
        return self.all_members and stage >= len(self.groups)

    def describe(self, stage: int) -> str:
        if self.sync_all(stage):
            return "all members"
        return ", ".join(p.ref for p in self.principals(stage))


@dataclass(frozen=True, kw_only=True)
class SyncSettings:
    """The sync job of a link: who is in scope, what flows, and how the job runs."""

    user_type: Literal["Member", "Guest"] = "Member"
    user_type_apply: Apply = "on_create"
    all_members: bool = False
    """True: every user is in scope (``SyncAll``), subject to ``scope``."""
    assigned: tuple[Principal, ...] = ()
    scope: tuple[ScopeGroup, ...] = ()
    actions: frozenset[Action] = frozenset({"create", "update"})
    show_in_address_list: bool = True
    mappings: tuple[MappingSpec, ...] = ()
    deletion_threshold: int | None = 500
    """Accidental-deletion threshold; None turns the protection off."""
    start: bool = True
    app_display_name: str | None = None
    """Name of the sync app in the source tenant; None lets the engine pick its default."""
    rollout: Rollout | None = None
    """A staged rollout; when set, it decides ``assigned`` and ``all_members`` per stage."""
    groups: bool = False
    """Also sync the security groups in scope with their members (needs ``beta: [group_sync]``:
    the target's ``groupSyncInbound`` is a Graph beta property)."""
    group_scope: tuple[ScopeGroup, ...] = ()
    """Attribute filter on the groups (the group mapping's scope)."""

    @property
    def flow_types(self) -> str:
        """``objectMapping.flowTypes`` for ``actions``, e.g. ``Add, Update``."""
        return ", ".join(wire for action, wire in _FLOW_TYPES if action in self.actions) or "None"


# -- links and the whole state ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LinkSpec:
    """Users of ``source`` are synchronized into ``target``. The sync job lives in the source."""

    source: str
    target: str
    template: str | None = None
    access: AccessSettings = AccessSettings()
    sync: SyncSettings = SyncSettings()
    adopt: str | None = None
    """The service principal id (lower case) of an existing configuration this link manages."""
    location: str = field(default="", compare=False)

    @property
    def key(self) -> str:
        """``source:target``, how commands and the audit trail name a link."""
        return f"{self.source}:{self.target}"


@dataclass(frozen=True, kw_only=True)
class OrganizationSpec:
    """A multitenant organization: its owner creates it and adds the members, which join.

    Each template is Graph's body for the tenant's MTO template (``None``: left alone); it is
    set in the owner and in every managed member.
    """

    name: str
    description: str | None = None
    owner: str
    members: tuple[str, ...] = ()
    partner_template: Mapping[str, Any] | None = None
    sync_template: Mapping[str, Any] | None = None
    location: str = field(default="", compare=False)

    @property
    def tenants(self) -> tuple[str, ...]:
        """The owner, then the members."""
        return (self.owner, *self.members)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "members": list(self.members),
            "partner_template": _plain(self.partner_template),
            "sync_template": _plain(self.sync_template),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, kw_only=True)
class DesiredState:
    """Everything one config file asks for, resolved."""

    path: Path
    tenants: Mapping[str, TenantSpec]
    links: tuple[LinkSpec, ...]
    config_hash: str
    """sha256 of the canonical resolved content (:meth:`to_dict`); comments and key order
    don't change it, secrets are not part of it."""
    base_dir: Path
    """Directory of the config file: relative paths in it are relative to this."""
    organization: OrganizationSpec | None = None
    """The multitenant organization the config describes, if any."""
    beta: frozenset[str] = frozenset()
    """The Microsoft Graph beta features the config opts into (``group_sync``)."""

    def tenant(self, name: str) -> TenantSpec:
        """The tenant called ``name``; :class:`ConfigError` listing the names if there is none."""
        try:
            return self.tenants[name]
        except KeyError:
            known = ", ".join(self.tenants) or "none"
            msg = f"no tenant {name!r} in {self.path} (tenants: {known})"
            raise ConfigError(msg) from None

    def link(self, key: str) -> LinkSpec:
        """The link ``source:target``; :class:`ConfigError` listing the keys if there is none."""
        for link in self.links:
            if link.key == key:
                return link
        known = ", ".join(link.key for link in self.links) or "none"
        msg = f"no link {key!r} in {self.path} (links: {known})"
        raise ConfigError(msg)

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-ready content: sorted where order carries no meaning, no secrets,
        no locations. :attr:`config_hash` is computed from it."""
        return canonical_content(
            self.tenants,
            self.links,
            base_dir=self.base_dir,
            organization=self.organization,
            beta=self.beta,
        )


def canonical_content(
    tenants: Mapping[str, TenantSpec],
    links: tuple[LinkSpec, ...],
    *,
    base_dir: Path,
    organization: OrganizationSpec | None = None,
    beta: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """See :meth:`DesiredState.to_dict`."""
    return {
        "tenants": {name: _tenant_dict(tenants[name], base_dir) for name in sorted(tenants)},
        "links": [_link_dict(link) for link in sorted(links, key=lambda link: link.key)],
        # Only when set, so configs written before them keep their hash.
        **({"organization": organization.to_dict()} if organization is not None else {}),
        **({"beta": sorted(beta)} if beta else {}),
    }


def _tenant_dict(tenant: TenantSpec, base_dir: Path) -> dict[str, Any]:
    cloud = tenant.cloud
    ca_bundle = cloud.ca_bundle
    if ca_bundle is not None and Path(ca_bundle).is_relative_to(base_dir):
        # Moving a project directory must not change its hash.
        ca_bundle = Path(ca_bundle).relative_to(base_dir).as_posix()
    auth = tenant.auth
    return {
        "tenant_id": tenant.tenant_id,
        "cloud": {
            "name": cloud.name,
            "graph_url": cloud.graph_url,
            "authority": cloud.authority,
            "ca_bundle": ca_bundle,
        },
        "auth": {
            "method": auth.method,
            "client_id": auth.client_id,
            "secret": _secret_dict(auth.secret),
            "certificate_path": auth.certificate_path,
            "certificate_password": _secret_dict(auth.certificate_password),
            "token_file": auth.token_file,
            "managed_identity_client_id": auth.managed_identity_client_id,
            # Only when set, so configs written before them keep their hash.
            **(
                {"service_connection_id": auth.service_connection_id}
                if auth.service_connection_id
                else {}
            ),
            **({"token_cache": auth.token_cache} if auth.token_cache != "keyring" else {}),
        },
        "managed": tenant.managed,
        "size_class": tenant.size_class,
        # Only when set, so configs written before it keep their hash.
        **(
            {"unmanaged_configurations": dict(sorted(tenant.unmanaged_configurations.items()))}
            if tenant.unmanaged_configurations
            else {}
        ),
        **(
            {"default_access": tenant.default_access.to_dict()}
            if tenant.default_access is not None
            else {}
        ),
    }


def _secret_dict(ref: SecretRef | None) -> dict[str, str | None] | None:
    return None if ref is None else {"env": ref.env, "file": ref.file}


def _link_dict(link: LinkSpec) -> dict[str, Any]:
    access, sync = link.access, link.sync
    return {
        "key": link.key,
        "access": {
            "inbound_trust": (
                None
                if access.inbound_trust is None
                else {
                    "mfa": access.inbound_trust.mfa,
                    "compliant_device": access.inbound_trust.compliant_device,
                    "hybrid_joined_device": access.inbound_trust.hybrid_joined_device,
                }
            ),
            "b2b_collaboration_inbound": access.b2b_collaboration_inbound,
            "b2b_collaboration_outbound": access.b2b_collaboration_outbound,
            "automatic_redemption": access.automatic_redemption,
        },
        "sync": {
            "user_type": sync.user_type,
            "user_type_apply": sync.user_type_apply,
            "all_members": sync.all_members,
            "assigned": [{"kind": p.kind, "ref": p.ref} for p in sync.assigned],
            "scope": [g.to_graph() for g in sync.scope],
            "actions": sorted(sync.actions),
            "show_in_address_list": sync.show_in_address_list,
            "mappings": {
                m.target: {
                    "source": None if m.source is None else m.source.to_graph(),
                    "apply": m.apply,
                    **({"graph": dict(m.graph)} if m.graph is not None else {}),
                }
                for m in sorted(sync.mappings, key=lambda m: m.target)
            },
            "deletion_threshold": sync.deletion_threshold,
            "start": sync.start,
            "app_display_name": sync.app_display_name,
            # Only when set, so configs written before them keep their hash.
            **({"groups": True} if sync.groups else {}),
            **(
                {"group_scope": [g.to_graph() for g in sync.group_scope]}
                if sync.group_scope
                else {}
            ),
        },
        **({"adopt": link.adopt} if link.adopt else {}),
    }


def _under(base_dir: Path, written: str) -> Path:
    path = Path(written).expanduser()
    return path if path.is_absolute() else base_dir / path


def _path_or_none(base_dir: Path, written: str | None) -> str | None:
    return None if written is None else str(_under(base_dir, written))
