"""``load``: a config file in, a :class:`DesiredState` out, or a ConfigError at ``file:line:col``.

The steps, each failing before anything else happens:

1. YAML 1.2 → plain data, remembering every node's line and column (``_yaml``).
2. The whole file against the pydantic models (``_schema``); their error ``loc`` is walked
   through the data to find the node, so each message points at the key or value at fault.
3. Meaning: tenants and clouds resolve, links and topologies name defined tenants and
   templates, no link is defined twice, every source tenant is managed.
4. Per link, the template's ``access``/``sync`` and the link's ``overrides`` are merged on the
   plain data, remembering where each merged node came from, validated again (for rules that
   span both, e.g. ``all_members`` with ``assigned``) and turned into dataclasses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ValidationError

from ctsync.errors import ConfigError
from ctsync.graph.clouds import Cloud, cloud_crossing, resolve_cloud
from ctsync.graph.credentials import check_certificate

from ._expression import parse_expression, quote
from ._files import read_bounded
from ._schema import (
    GUID_PATTERN,
    PARTIAL,
    Access,
    AssignedPrincipal,
    AzureCliAuth,
    CertificateAuth,
    ClientSecretAuth,
    CloudEndpoints,
    ConfigFile,
    DefaultAccess,
    DeviceCodeAuth,
    HubTopology,
    InteractiveBrowserAuth,
    Link,
    LinkSettings,
    ManagedIdentityAuth,
    MappingDetail,
    MeshTopology,
    Organization,
    Sync,
    Tenant,
    UserTypeSetting,
    WorkloadIdentityAuth,
    _Linkish,
    closest,
    filter_groups,
    suggest,
)
from ._schema import InboundTrust as InboundTrustModel
from ._schema import Rollout as RolloutModel
from ._state import (
    AccessSettings,
    AccessType,
    AttributeSource,
    AuthRef,
    DefaultAccessSettings,
    DesiredState,
    InboundTrust,
    LinkSpec,
    MappingSpec,
    OrganizationSpec,
    Principal,
    Rollout,
    SecretRef,
    SyncSettings,
    TenantSpec,
    _under,
    canonical_content,
)
from ._yaml import DataPath, Document, read_yaml, walk

__all__ = ["MAX_CONFIG_BYTES", "load", "loads"]

ModelT = TypeVar("ModelT", bound=BaseModel)
Placer = Callable[[DataPath], DataPath]

_B2B_ACCESS: dict[str, AccessType] = {"allow_all": "allowed", "block_all": "blocked"}
AnyAuth = (
    ClientSecretAuth
    | CertificateAuth
    | WorkloadIdentityAuth
    | ManagedIdentityAuth
    | AzureCliAuth
    | DeviceCodeAuth
    | InteractiveBrowserAuth
)
_MAX_REPORTED = 20


#: The largest config file ctsync reads. A 100-tenant mesh with templates is about 30 KB, so
#: this is over a hundred times any real config; the bound keeps ``/dev/zero``, a log file
#: passed by mistake or a hostile file from taking all memory (ruamel keeps a node object per
#: value) or minutes of parsing.
MAX_CONFIG_BYTES: Final = 4 * 1024 * 1024


def load(path: str | os.PathLike[str]) -> DesiredState:
    """Read, validate and resolve the config file at ``path``."""
    file = Path(path)
    try:
        raw = read_bounded(file, limit=MAX_CONFIG_BYTES, what="config file")
    except FileNotFoundError:
        msg = f"config file {file} does not exist (create one with `ctsync init`)"
        raise ConfigError(msg, location=str(file)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"config file is not UTF-8 text (byte {exc.start})"
        raise ConfigError(msg, location=str(file)) from None
    return loads(text, path=file)


def loads(
    text: str, *, path: str | os.PathLike[str] = "ctsync.yaml", base_dir: Path | None = None
) -> DesiredState:
    """Like :func:`load`, for text already read. ``path`` names it in messages; relative paths
    inside resolve against ``base_dir`` (default: the directory of ``path``)."""
    file = Path(path)
    document = read_yaml(text, name=str(path))
    base = base_dir if base_dir is not None else file.absolute().parent
    return _Loader(document, path=file, base_dir=base).run()


class _Loader:
    def __init__(self, document: Document, *, path: Path, base_dir: Path) -> None:
        self.data = document.data
        self.where = document.locator
        self.path = path
        self.base_dir = base_dir
        self.tenants: dict[str, TenantSpec] = {}
        self.links: list[LinkSpec] = []
        self.link_locations: dict[str, str] = {}

    def run(self) -> DesiredState:
        if not isinstance(self.data, dict):
            msg = "the top level must be a mapping with version, tenants, templates, links..."
            raise ConfigError(msg, location=self.where.value(()))
        config = self.validate(ConfigFile, self.data, partial=True)
        for name, tenant in config.tenants.items():
            self.add_tenant(name, tenant)
        self.resolve_unmanaged(config)
        for index, link in enumerate(config.links):
            self.add_link(config, index, link)
        for index, topology in enumerate(config.topologies):
            if isinstance(topology, MeshTopology):
                self.add_mesh(config, index, topology)
            else:
                self.add_hub(config, index, topology)
        links = tuple(self.links)
        organization = (
            self.organization(config.organization) if config.organization is not None else None
        )
        beta = frozenset(config.beta)
        content = canonical_content(
            self.tenants, links, base_dir=self.base_dir, organization=organization, beta=beta
        )
        digest = hashlib.sha256(
            json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        return DesiredState(
            path=self.path,
            tenants=MappingProxyType(dict(self.tenants)),
            links=links,
            config_hash=digest,
            base_dir=self.base_dir,
            organization=organization,
            beta=beta,
        )

    # -- validation and its messages ------------------------------------------------------

    def validate(
        self,
        model: type[ModelT],
        data: Any,
        *,
        place: Placer = lambda path: path,
        context: str = "",
        partial: bool = False,
    ) -> ModelT:
        try:
            return model.model_validate(data, context=PARTIAL if partial else None)
        except ValidationError as exc:
            problems = sorted(
                (self.problem(error, data, place, context) for error in exc.errors()),
                key=lambda problem: _sort_key(problem[0]),
            )
        first_where, first_msg = problems[0]
        lines = [first_msg]
        lines += [f"{where}: {msg}" for where, msg in problems[1:_MAX_REPORTED]]
        if len(problems) > _MAX_REPORTED:
            lines.append(f"... and {len(problems) - _MAX_REPORTED} more problems")
        raise ConfigError("\n".join(lines), location=first_where) from None

    def problem(
        self, error: Mapping[str, Any], data: Any, place: Placer, context: str
    ) -> tuple[str, str]:
        rel, node, names_key = _follow(data, error["loc"])
        ctx = error.get("ctx") or {}
        path = place(rel)
        if "key" in ctx:
            where = self.where.key(place((*rel, ctx["key"])))
        elif error["type"] in {"missing", "union_tag_not_found"} or ctx.get("at_key") or names_key:
            where = self.where.key(path)
        elif "offset" in ctx and isinstance(node, str):
            where = self.where.inside(path, int(ctx["offset"]), node)
        else:
            where = self.where.value(path)
        label = _dotted(path)
        prefix = f"{context}: " if context else ""
        return where, f"{prefix}{label}: {_message(error)}" if label else prefix + _message(error)

    def fail(self, message: str, where: str) -> ConfigError:
        return ConfigError(message, location=where)

    # -- tenants --------------------------------------------------------------------------

    def add_tenant(self, name: str, tenant: Tenant) -> None:
        path: DataPath = ("tenants", name)
        for other in self.tenants.values():
            if other.tenant_id == tenant.tenant_id:
                msg = (
                    f"tenants.{name}.tenant_id: tenant {name} has the same tenant_id as "
                    f"{other.name} ({other.location}); give each tenant one name"
                )
                raise self.fail(msg, self.where.value((*path, "tenant_id")))
        if isinstance(tenant.auth, ManagedIdentityAuth):
            for other in self.tenants.values():
                if other.auth.method == "managed_identity":
                    msg = (
                        f"tenants.{name}.auth: tenants {other.name} and {name} both sign in "
                        "with a managed identity, but every managed identity of a machine "
                        "belongs to one tenant (its Azure subscription's) and can sign in only "
                        f"there; give {name} a certificate or workload_identity credential"
                    )
                    raise self.fail(msg, self.where.value((*path, "auth", "method")))
        self.tenants[name] = TenantSpec(
            name=name,
            tenant_id=tenant.tenant_id,
            cloud=self.cloud(tenant.cloud, (*path, "cloud")),
            auth=self.auth(tenant.auth, (*path, "auth")),
            managed=tenant.managed,
            size_class=tenant.size,
            default_access=_default_access(tenant.default_access),
            location=self.where.key(path),
        )

    def resolve_unmanaged(self, config: ConfigFile) -> None:
        """``unmanaged_configurations`` values name a tenant of the file or are tenant ids."""
        for name, tenant in config.tenants.items():
            known = tenant.unmanaged_configurations or {}
            resolved: dict[str, str] = {}
            for sp_id, target in known.items():
                where = self.where.value(("tenants", name, "unmanaged_configurations", sp_id))
                if target in self.tenants:
                    resolved[sp_id.lower()] = self.tenants[target].tenant_id
                elif re.fullmatch(GUID_PATTERN, target):
                    resolved[sp_id.lower()] = target.lower()
                else:
                    listed = ", ".join(sorted(self.tenants)) or "none"
                    msg = (
                        f"tenants.{name}.unmanaged_configurations.{sp_id}: {target!r} is neither "
                        f"a tenant of this file ({listed}) nor a tenant id"
                    )
                    raise self.fail(msg, where)
            if resolved:
                spec = self.tenants[name]
                self.tenants[name] = replace(spec, unmanaged_configurations=resolved)

    def cloud(self, setting: str | CloudEndpoints, path: DataPath) -> Cloud:
        if isinstance(setting, str):
            return resolve_cloud(setting)
        endpoints: dict[str, Any] = {
            "graph_url": setting.graph_url,
            "authority": setting.authority,
        }
        if setting.name is not None:
            endpoints["name"] = setting.name
        if setting.endpoint is not None:
            endpoints["endpoint"] = setting.endpoint
        if setting.ca_bundle is not None:
            bundle = Path(setting.ca_bundle).expanduser()
            endpoints["ca_bundle"] = str(bundle if bundle.is_absolute() else self.base_dir / bundle)
        try:
            return resolve_cloud(endpoints)
        except ConfigError as exc:
            key = next(
                (k for k in ("graph_url", "authority", "ca_bundle") if k in exc.message), None
            )
            where = self.where.value((*path, key)) if key else self.where.key(path)
            raise self.fail(f"{_dotted(path)}: {exc.message}", where) from None

    def auth(self, auth: AnyAuth, path: DataPath) -> AuthRef:
        def secret(stem: str, env: str | None, file: str | None) -> SecretRef | None:
            if env is None and file is None:
                return None
            key = f"{stem}_env" if env is not None else f"{stem}_file"
            return SecretRef(env=env, file=file, location=self.where.value((*path, key)))

        match auth:
            case ClientSecretAuth():
                return AuthRef(
                    method=auth.method,
                    client_id=auth.client_id,
                    secret=secret("client_secret", auth.client_secret_env, auth.client_secret_file),
                )
            case CertificateAuth():
                self.certificate(auth.certificate_path, (*path, "certificate_path"))
                return AuthRef(
                    method=auth.method,
                    client_id=auth.client_id,
                    certificate_path=auth.certificate_path,
                    certificate_password=secret(
                        "certificate_password",
                        auth.certificate_password_env,
                        auth.certificate_password_file,
                    ),
                )
            case WorkloadIdentityAuth():
                return AuthRef(
                    method=auth.method,
                    client_id=auth.client_id,
                    token_file=auth.token_file,
                    service_connection_id=auth.service_connection_id,
                )
            case ManagedIdentityAuth():
                return AuthRef(method=auth.method, managed_identity_client_id=auth.client_id)
            case DeviceCodeAuth() | InteractiveBrowserAuth():
                return AuthRef(
                    method=auth.method, client_id=auth.client_id, token_cache=auth.token_cache
                )
            case AzureCliAuth():
                return AuthRef(method=auth.method)
        msg = f"unsupported auth {type(auth).__name__}"  # pragma: no cover - the union is closed
        raise TypeError(msg)

    def certificate(self, written: str, path: DataPath) -> None:
        # A certificate that is there must be usable, and validate says so at the key. One that
        # is not there yet is fine here: it is often put in place only where ctsync runs (the
        # examples, CI validating a config); signing in says it is missing.
        file = _under(self.base_dir, written)
        try:
            file.stat()
        except FileNotFoundError:
            return
        except OSError:
            pass  # check_certificate says why
        try:
            check_certificate(str(file))
        except ConfigError as exc:
            raise self.fail(f"{_dotted(path)}: {exc.message}", self.where.value(path)) from None

    # -- links and topologies -------------------------------------------------------------

    def add_link(self, config: ConfigFile, index: int, link: Link) -> None:
        path: DataPath = ("links", index)
        self.tenant_ref(link.source, (*path, "source"))
        self.tenant_ref(link.target, (*path, "target"))
        if link.source == link.target:
            msg = (
                f"links[{index}]: source and target are both {link.source}; "
                "a link joins two different tenants"
            )
            raise self.fail(msg, self.where.value((*path, "target")))
        self.source_managed(link.source, (*path, "source"))
        access, sync = self.settings(config, link, path, f"link {link.source}:{link.target}")
        self.add(
            LinkSpec(
                source=link.source,
                target=link.target,
                template=link.template,
                access=access,
                sync=sync,
                adopt=link.adopt.lower() if link.adopt else None,
                location=self.where.value(path),
            )
        )

    def add_mesh(self, config: ConfigFile, index: int, mesh: MeshTopology) -> None:
        path: DataPath = ("topologies", index)
        members = self.member_list(mesh.mesh, (*path, "mesh"), exclude=None)
        for position, name in members:
            self.source_managed(name, (*path, "mesh", position))
        access, sync = self.settings(config, mesh, path, f"topologies[{index}] (mesh)")
        for position, source in members:
            for _, target in members:
                if source != target:
                    where = self.where.value((*path, "mesh", position))
                    self.add_topology_link(
                        source=source,
                        target=target,
                        template=mesh.template,
                        access=access,
                        sync=sync,
                        where=where,
                    )

    def add_hub(self, config: ConfigFile, index: int, hub: HubTopology) -> None:
        path: DataPath = ("topologies", index)
        self.tenant_ref(hub.hub, (*path, "hub"))
        spokes = self.member_list(hub.spokes, (*path, "spokes"), exclude=hub.hub)
        if hub.direction in {"out", "both"}:
            self.source_managed(hub.hub, (*path, "hub"))
        if hub.direction in {"in", "both"}:
            for position, name in spokes:
                self.source_managed(name, (*path, "spokes", position))
        access, sync = self.settings(config, hub, path, f"topologies[{index}] (hub {hub.hub})")
        for position, spoke in spokes:
            where = self.where.value((*path, "spokes", position))
            pairs = {"out": [(hub.hub, spoke)], "in": [(spoke, hub.hub)]}.get(
                hub.direction, [(hub.hub, spoke), (spoke, hub.hub)]
            )
            for source, target in pairs:
                self.add_topology_link(
                    source=source,
                    target=target,
                    template=hub.template,
                    access=access,
                    sync=sync,
                    where=where,
                )

    def add_topology_link(
        self,
        *,
        source: str,
        target: str,
        template: str | None,
        access: AccessSettings,
        sync: SyncSettings,
        where: str,
    ) -> None:
        link = LinkSpec(
            source=source,
            target=target,
            template=template,
            access=access,
            sync=sync,
            location=where,
        )
        self.add(link)

    def member_list(
        self, names: list[str], path: DataPath, *, exclude: str | None
    ) -> list[tuple[int, str]]:
        seen: dict[str, int] = {}
        for position, name in enumerate(names):
            item = (*path, position)
            self.tenant_ref(name, item)
            if name == exclude:
                msg = f"{_dotted(item)}: {name} is the hub; it can't also be a spoke"
                raise self.fail(msg, self.where.value(item))
            if name in seen:
                first = self.where.value((*path, seen[name]))
                msg = f"{_dotted(item)}: {name} is listed twice (first at {first})"
                raise self.fail(msg, self.where.value(item))
            seen[name] = position
        return list(enumerate(names))

    def add(self, link: LinkSpec) -> None:
        first = self.link_locations.get(link.key)
        if first is not None:
            msg = f"link {link.key} is defined twice: here and at {first}"
            raise self.fail(msg, link.location)
        self.link_locations[link.key] = link.location
        try:
            cloud_crossing(self.tenants[link.source].cloud, self.tenants[link.target].cloud)
        except ConfigError as exc:
            raise self.fail(f"link {link.key}: {exc.message}", link.location) from None
        self.links.append(link)

    def tenant_ref(self, name: str, path: DataPath) -> None:
        if name not in self.tenants:
            known = list(self.tenants)
            msg = (
                f"{_dotted(path)}: no tenant named {name!r}{suggest(name, known)} "
                f"(tenants: {', '.join(known)})"
            )
            raise self.fail(msg, self.where.value(path))

    def source_managed(self, name: str, path: DataPath) -> None:
        tenant = self.tenants[name]
        if not tenant.managed:
            msg = (
                f"{_dotted(path)}: {name} is managed: false ({tenant.location}), but the source "
                "of a link must be managed: ctsync creates the link's sync job in the source "
                "tenant"
            )
            raise self.fail(msg, self.where.value(path))

    # -- the multitenant organization ----------------------------------------------------

    def organization(self, org: Organization) -> OrganizationSpec:
        path: DataPath = ("organization",)
        self.tenant_ref(org.owner, (*path, "owner"))
        members = self.member_list(org.members, (*path, "members"), exclude=None)
        for position, name in members:
            if name == org.owner:
                item = (*path, "members", position)
                msg = (
                    f"{_dotted(item)}: {name} is the owner of the organization; it can't also "
                    "be a member"
                )
                raise self.fail(msg, self.where.value(item))
        templates = org.templates
        partner = templates.partner_configuration if templates is not None else None
        sync = templates.identity_synchronization if templates is not None else None
        partner_body: dict[str, Any] | None = None
        if partner is not None:
            partner_body = {}
            if partner.automatic_redemption is not None:
                redemption = partner.automatic_redemption
                partner_body["automaticUserConsentSettings"] = {
                    "inboundAllowed": redemption.inbound,
                    "outboundAllowed": redemption.outbound,
                }
            if partner.apply_to is not None:
                partner_body["templateApplicationLevel"] = _levels(partner.apply_to)
        sync_body: dict[str, Any] | None = None
        if sync is not None:
            sync_body = {}
            if sync.user_sync_inbound is not None:
                sync_body["userSyncInbound"] = {"isSyncAllowed": sync.user_sync_inbound}
            if sync.apply_to is not None:
                sync_body["templateApplicationLevel"] = _levels(sync.apply_to)
        return OrganizationSpec(
            name=org.name,
            description=org.description,
            owner=org.owner,
            members=tuple(name for _, name in members),
            partner_template=MappingProxyType(partner_body) if partner_body else None,
            sync_template=MappingProxyType(sync_body) if sync_body else None,
            location=self.where.key(path),
        )

    # -- settings: template + overrides -------------------------------------------------------

    def settings(
        self, config: ConfigFile, link: _Linkish, path: DataPath, label: str
    ) -> tuple[AccessSettings, SyncSettings]:
        raw = _at(self.data, path)
        layers: list[tuple[dict[str, Any], DataPath]] = []
        if link.template is not None:
            if link.template not in config.templates:
                known = list(config.templates)
                listing = f"templates: {', '.join(known)}" if known else "no templates are defined"
                msg = (
                    f"{_dotted((*path, 'template'))}: unknown template {link.template!r}"
                    f"{suggest(link.template, known)} ({listing})"
                )
                raise self.fail(msg, self.where.value((*path, "template")))
            template_path: DataPath = ("templates", link.template)
            layers.append((_pick(_at(self.data, template_path)), template_path))
            if isinstance(raw.get("overrides"), dict):
                layers.append((_pick(raw["overrides"]), (*path, "overrides")))
        else:
            layers.append((_pick(raw), path))
        layers = [(_long_form(layer), where) for layer, where in layers]
        merged, origins = merge_layers(layers)
        context = label + (f" (template {link.template})" if link.template else "")
        place = _placer(origins, path)
        settings = self.validate(LinkSettings, merged, place=place, context=context)
        self.check_groups(config, settings, place, context)
        return _access(settings.access), _sync(settings.sync)

    def check_groups(
        self, config: ConfigFile, settings: LinkSettings, place: Placer, label: str
    ) -> None:
        """``sync.groups`` needs the beta opt-in; ``sync.group_filter`` needs groups."""
        sync = settings.sync
        if sync is None:
            return
        if sync.groups and "group_sync" not in config.beta:
            msg = (
                f"{label}: sync.groups sets the target's groupSyncInbound, a Microsoft Graph "
                "beta property: opt in with `beta: [group_sync]` at the top level of the file"
            )
            raise self.fail(msg, self.where.value(place(("sync", "groups"))))
        if sync.group_filter is not None and not sync.groups:
            msg = f"{label}: sync.group_filter filters the groups synced; set sync.groups: true"
            raise self.fail(msg, self.where.value(place(("sync", "group_filter"))))


# -- merging ------------------------------------------------------------------------------------


#: Keys that say the same thing in different ways: the last layer naming any of them wins
#: for the whole group (a constant in overrides replaces a template's expression).
_EXCLUSIVE: tuple[frozenset[str], ...] = (frozenset({"expression", "constant"}),)


def _levels(apply_to: str | Sequence[str]) -> str:
    """``apply_to`` as Graph's templateApplicationLevel flags (``none`` alone means none)."""
    levels = [apply_to] if isinstance(apply_to, str) else list(dict.fromkeys(apply_to))
    return "none" if "none" in levels else ",".join(levels)


def merge_layers(
    layers: list[tuple[Any, DataPath]],
) -> tuple[Any, dict[DataPath, DataPath]]:
    """Deep-merge plain data, later layers winning; and where each merged node came from.

    Mappings merge key by key at every depth; anything else (lists, text, numbers, null) is
    replaced whole by the last layer that has it.
    """
    origins: dict[DataPath, DataPath] = {}

    def merge(values: list[tuple[Any, DataPath]], rel: DataPath) -> Any:
        last, last_path = values[-1]
        if isinstance(last, dict) and all(isinstance(value, dict) for value, _ in values):
            origins[rel] = last_path
            keys = list(dict.fromkeys(key for value, _ in values for key in value))
            for group in _EXCLUSIVE:
                owners = [value for value, _ in values if group & value.keys()]
                if owners:
                    keys = [k for k in keys if k not in group or k in owners[-1]]
            return {
                key: merge([(v[key], (*p, key)) for v, p in values if key in v], (*rel, key))
                for key in keys
            }
        for sub, _ in walk(last):
            origins[(*rel, *sub)] = (*last_path, *sub)
        return last

    return merge(layers, ()), origins


def _long_form(layer: dict[str, Any]) -> dict[str, Any]:
    """Shorthands spelled out, so that they merge key by key with the long forms.

    ``user_type: Guest`` becomes ``{value: Guest}`` and ``jobTitle: '[x]'`` becomes
    ``{expression: '[x]'}``: an override ``{apply: always}`` then keeps the template's value.
    """
    sync = layer.get("sync")
    if not isinstance(sync, dict):
        return layer
    sync = dict(sync)
    if isinstance(sync.get("user_type"), str):
        sync["user_type"] = {"value": sync["user_type"]}
    if isinstance(sync.get("mappings"), dict):
        sync["mappings"] = {
            target: {"expression": value} if isinstance(value, str) else value
            for target, value in sync["mappings"].items()
        }
    return {**layer, "sync": sync}


def _placer(origins: Mapping[DataPath, DataPath], fallback: DataPath) -> Placer:
    def place(rel: DataPath) -> DataPath:
        for cut in range(len(rel), -1, -1):
            origin = origins.get(rel[:cut])
            if origin is not None:
                return (*origin, *rel[cut:])
        return fallback

    return place


def _pick(section: Any) -> dict[str, Any]:
    if not isinstance(section, dict):
        return {}
    return {key: section[key] for key in ("access", "sync") if key in section}


def _at(data: Any, path: DataPath) -> Any:
    for part in path:
        data = data[part]
    return data


# -- from validated sections to dataclasses ------------------------------------------------------


def _access(access: Access | None) -> AccessSettings:
    if access is None:
        return AccessSettings()
    trust = access.inbound_trust
    b2b = access.b2b_collaboration
    return AccessSettings(
        inbound_trust=_trust(trust),
        b2b_collaboration_inbound=_b2b(b2b.inbound if b2b else None),
        b2b_collaboration_outbound=_b2b(b2b.outbound if b2b else None),
        automatic_redemption=access.automatic_redemption is not False,
    )


def _trust(trust: InboundTrustModel | None) -> InboundTrust | None:
    if trust is None:
        return None
    return InboundTrust(
        mfa=bool(trust.mfa),
        compliant_device=bool(trust.compliant_device),
        hybrid_joined_device=bool(trust.hybrid_joined_device),
    )


def _default_access(access: DefaultAccess | None) -> DefaultAccessSettings | None:
    if access is None:
        return None
    b2b, redeem = access.b2b_collaboration, access.automatic_redemption
    return DefaultAccessSettings(
        inbound_trust=_trust(access.inbound_trust),
        b2b_collaboration_inbound=_b2b(b2b.inbound if b2b else None),
        b2b_collaboration_outbound=_b2b(b2b.outbound if b2b else None),
        redemption_inbound=redeem.inbound if redeem else None,
        redemption_outbound=redeem.outbound if redeem else None,
    )


def _b2b(value: str | None) -> AccessType | None:
    return None if value is None else _B2B_ACCESS[value]


def _sync(sync: Sync | None) -> SyncSettings:
    if sync is None:
        return SyncSettings()
    defaults = SyncSettings()
    user_type, user_type_apply = defaults.user_type, defaults.user_type_apply
    if isinstance(sync.user_type, UserTypeSetting):
        user_type, user_type_apply = sync.user_type.value, sync.user_type.apply
    elif sync.user_type is not None:
        user_type = sync.user_type
    scope = sync.scope
    return SyncSettings(
        user_type=user_type,
        user_type_apply=user_type_apply,
        all_members=bool(scope and scope.all_members),
        assigned=tuple(_principal(p) for p in (scope.assigned or [])) if scope else (),
        scope=tuple(filter_groups(scope.filter_)) if scope and scope.filter_ else (),
        actions=frozenset(sync.actions) if sync.actions is not None else defaults.actions,
        show_in_address_list=sync.show_in_address_list is not False,
        mappings=tuple(_mapping(target, value) for target, value in (sync.mappings or {}).items()),
        deletion_threshold=(
            sync.deletion_threshold
            if "deletion_threshold" in sync.model_fields_set
            else defaults.deletion_threshold
        ),
        start=sync.start is not False,
        app_display_name=sync.app_display_name,
        rollout=_rollout(scope.rollout) if scope and scope.rollout else None,
        groups=sync.groups is True,
        group_scope=tuple(filter_groups(sync.group_filter)) if sync.group_filter else (),
    )


def _rollout(rollout: RolloutModel) -> Rollout:
    then = [rollout.then] if isinstance(rollout.then, str) else list(rollout.then)
    groups = [rollout.pilot, *(g for g in then if g != "all_members")]
    return Rollout(
        groups=tuple(Principal(kind="group", ref=_guid_or_name(g)) for g in groups),
        all_members="all_members" in then,
        max_failure_rate=rollout.gate.max_failure_rate,
        min_cycles=rollout.gate.min_cycles,
    )


def _principal(principal: AssignedPrincipal) -> Principal:
    if principal.group is not None:
        return Principal(kind="group", ref=_guid_or_name(principal.group))
    return Principal(kind="user", ref=_guid_or_name(principal.user or ""))


def _guid_or_name(ref: str) -> str:
    # An object id is compared case-insensitively by Graph; keep one spelling.
    return ref.lower() if re.fullmatch(GUID_PATTERN, ref) else ref


def _mapping(target: str, value: str | MappingDetail | None) -> MappingSpec:
    if value is None:
        return MappingSpec(target=target, source=None)
    if isinstance(value, str):
        return MappingSpec(target=target, source=parse_expression(value))
    if value.graph is not None:
        raw = {k: v for k, v in value.graph.items() if k != "targetAttributeName"}
        return MappingSpec(target=target, source=None, apply=value.apply, graph=raw)
    if value.constant is not None:
        source = AttributeSource(
            type="Constant", name=value.constant, expression=quote(value.constant)
        )
    else:
        source = parse_expression(value.expression or "")
    return MappingSpec(target=target, source=source, apply=value.apply)


# -- messages -----------------------------------------------------------------------------------

_EXPECTED = {
    "string_type": "text",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
}


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = error.get("input")
    if "message" in ctx:
        return str(ctx["message"])
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_kind_of(given)}"
    if kind == "missing":
        return f"missing key {error['loc'][-1]!r}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        close = closest(given, choices) if isinstance(given, str) else None
        hint = f" (did you mean {close!r}?)" if close else ""
        return f"{_show(given)} is not valid here; use {expected}{hint}"
    if kind == "union_tag_not_found":
        return f"missing key {ctx.get('discriminator', '')}"
    if kind == "union_tag_invalid":
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        expected = str(ctx.get("expected_tags", ""))
        choices = re.findall(r"'([^']*)'", expected)
        close = closest(str(ctx.get("tag")), choices)
        hint = f" (did you mean {close!r}?)" if close else ""
        return f"unknown {discriminator} {ctx.get('tag')!r}; use one of {expected}{hint}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')} (got {_show(given)})"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')} (got {_show(given)})"
    if kind == "finite_number":
        return f"must be a number, not {_show(given)}"
    if kind == "too_short":
        count = ctx.get("min_length")
        return f"needs at least {count} {'entry' if count == 1 else 'entries'}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    return str(error.get("msg", "is not valid"))


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value} (a number)"
    if isinstance(value, str):
        return f"text {_show(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} (quote it to make it text)"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _follow(data: Any, loc: tuple[Any, ...]) -> tuple[DataPath, Any, bool]:
    """The document path a pydantic ``loc`` names, the node there, and whether it names a key.

    ``loc`` also holds union tags and the name of a missing key; those are no nodes, so they
    are skipped.
    """
    path: DataPath = ()
    node = data
    names_key = False
    for part in loc:
        if part == "[key]":
            names_key = True
            continue
        found, child = _child(node, part)
        if found:
            path, node = (*path, part), child
    return path, node, names_key


def _child(node: Any, part: Any) -> tuple[bool, Any]:
    if isinstance(node, dict) and isinstance(part, str) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def _dotted(path: DataPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _sort_key(where: str) -> tuple[int, int]:
    parts = where.rsplit(":", 2)
    try:
        return int(parts[-2]), int(parts[-1])
    except (ValueError, IndexError):
        return 0, 0
