"""``ctsync import``: bring existing cross-tenant sync setups under ctsync, writing nothing to
any tenant.

For the tenants of a config, it finds every cross-tenant sync configuration (whatever its
name), tells which tenant of the file each synchronizes into (``engine.identify``'s rules, or
``--link S:T=ID`` when the admin says so), and describes each as a link of the config: the
partner settings ctsync models (automatic redemption, inbound trust, B2B collaboration when it
is all-or-nothing), and the job — started or not, actions, who is in scope (assignments, the
scoping filter), every attribute mapping that differs from the template's default (as an
expression when the expression language says it exactly, else verbatim under ``graph:``). The
link ``adopt:``s the configuration, so ctsync manages it from then on instead of making one.

What is found is returned as data (:class:`ImportReport`), links as plain config data
(:class:`ImportedLink`); ``cli`` writes them into the file and plans once, so the round trip
(plan right after import shows nothing) is checked, not assumed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote as url_quote

from ctsync.config import DesiredState, TenantSpec
from ctsync.config._expression import parse_expression
from ctsync.engine import Session
from ctsync.engine.desired import (
    LINK_TAG_PREFIX,
    default_members,
    desired_secrets,
    secrets_tag,
    wants,
)
from ctsync.engine.identify import identify
from ctsync.engine.live import MTO, MTO_TEMPLATES, partners_and_sync
from ctsync.engine.ownership import DEFAULT_KEY, Ledger, object_key
from ctsync.engine.schema import group_mapping, schema_drift, user_mapping
from ctsync.errors import ConfigError, ForbiddenError, GraphError
from ctsync.graph import BatchRequest, GraphClient
from ctsync.graph.apps import CTS_TEMPLATE_ID, odata_string
from ctsync.graph.sync import SynchronizationApi

__all__ = [
    "Found",
    "ImportReport",
    "ImportedLink",
    "config_entries",
    "discover",
    "note_adopted",
]

POLICY = "/policies/crossTenantAccessPolicy"
SP_SELECT = "id,appId,displayName,tags,appRoles,applicationTemplateId"
_ACTIONS = {"add": "create", "update": "update", "delete": "delete"}
#: Mappings the config says elsewhere (user_type, show_in_address_list) or may not touch.
_NOT_MAPPINGS = frozenset({"usertype", "showinaddresslist", "alternativesecurityids"})
_FORBIDDEN = frozenset({"othermails", "proxyaddresses"})


@dataclass
class Found:
    """One cross-tenant sync configuration found, and what import made of it."""

    tenant: str
    sp_id: str
    name: str
    target: str | None
    """The tenant it synchronizes into: a name of the config, a tenant id, or None."""
    how: str | None
    job: str | None
    """The job's schedule state, or None without a job."""
    link: str | None = None
    """The link it was imported as."""
    skipped: str | None = None
    """Why it was not imported."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "service_principal": self.sp_id,
            "name": self.name,
            "target": self.target,
            "identified_by": self.how,
            "job": self.job,
            "link": self.link,
            "skipped": self.skipped,
        }


@dataclass
class ImportedLink:
    """A link as config data (what the YAML will hold), and notes on what it assumed."""

    source: str
    target: str
    adopt: str | None
    access: dict[str, Any]
    sync: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.source}:{self.target}"


@dataclass
class ImportReport:
    found: list[Found] = field(default_factory=list)
    partners: list[dict[str, Any]] = field(default_factory=list)
    links: list[ImportedLink] = field(default_factory=list)
    #: What each tenant's partner configurations and identitySynchronization hold now, by
    #: (tenant name, partner tenant id): what destroy gives back after an import.
    live_partners: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    live_sync: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: ``default_access`` per tenant whose default policy is customised (what the config
    #: gets), and every tenant's default policy as read (what destroy gives back).
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    live_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The multitenant organization the config's tenants are in, as its ``organization:``
    #: block (None: none found, or it cannot be written — the notes say why).
    organization: dict[str, Any] | None = None
    organization_notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "configurations": [f.to_dict() for f in self.found],
            "partners": self.partners,
            "default_access": self.defaults,
            "organization": self.organization,
            "organization_notes": self.organization_notes,
            "links": [
                {
                    "key": link.key,
                    "adopt": link.adopt,
                    "access": link.access,
                    "sync": link.sync,
                    "notes": link.notes,
                }
                for link in self.links
            ],
        }


@dataclass
class _Tenant:
    spec: TenantSpec
    partners: dict[str, dict[str, Any]] = field(default_factory=dict)
    identity_sync: dict[str, dict[str, Any]] = field(default_factory=dict)
    apps: list[dict[str, Any]] = field(default_factory=list)
    default: dict[str, Any] | None = None
    #: The MTO as the tenant sees it (None: not readable), its tenants and templates.
    mto: dict[str, Any] | None = None
    mto_tenants: list[dict[str, Any]] = field(default_factory=list)
    mto_templates: dict[str, dict[str, Any]] = field(default_factory=dict)


async def discover(
    session: Session, *, chosen: Mapping[tuple[str, str], str | None] | None = None
) -> ImportReport:
    """Read every tenant of the config and describe what runs there.

    ``chosen`` (from ``--link S:T[=ID]``) limits the import to those pairs; an ``ID`` says
    which configuration serves the pair when ctsync cannot tell (or picks one of several).
    """
    desired = session.desired
    tenants = {name: _Tenant(spec) for name, spec in desired.tenants.items()}
    await asyncio.gather(*(_read(session, t) for t in tenants.values()))
    by_id = {spec.tenant_id: name for name, spec in desired.tenants.items()}
    report = ImportReport()
    for name, tenant in sorted(tenants.items()):
        for partner_id, partner in sorted(tenant.partners.items()):
            report.partners.append(_partner_summary(name, partner_id, partner, by_id))
            report.live_partners[(name, partner_id)] = partner
        for partner_id, sync in tenant.identity_sync.items():
            report.live_sync[(name, partner_id)] = sync
        if tenant.default is not None:
            report.live_defaults[name] = tenant.default
            if tenant.spec.managed and tenant.default.get("isServiceDefault") is False:
                report.defaults[name] = _default_access(tenant.default)
    wanted: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name, tenant in sorted(tenants.items()):
        for app in tenant.apps:
            target = by_id.get(str(app.get("target") or ""), app.get("target"))
            for (source, pair_target), sp_id in (chosen or {}).items():
                if source == name and sp_id and sp_id == str(app["id"]).lower():
                    target, app["how"] = pair_target, "--link"
            found = Found(
                tenant=name,
                sp_id=str(app["id"]),
                name=str(app.get("displayName")),
                target=target,
                how=app.get("how"),
                job=((app.get("job") or {}).get("schedule") or {}).get("state"),
            )
            report.found.append(found)
            pair = (name, str(target))
            if chosen is not None and pair not in chosen:
                found.skipped = "not asked for (--link)"
            elif target not in desired.tenants:
                found.skipped = (
                    "its target is unknown: name it with --link SOURCE:TARGET=ID"
                    if target is None
                    else "it synchronizes into a tenant that is not in the config"
                )
            elif target == name:
                found.skipped = "it names its own tenant as target"
            elif app.get("job") is None and not (chosen or {}).get(pair):
                found.skipped = (
                    "it has no job (the MTO wizard often leaves none): import it with "
                    f"--link {name}:{target}={app['id']} to have ctsync set it up"
                )
            else:
                wanted.setdefault(pair, []).append(app)
                found.link = f"{name}:{target}"
    for (source, target), apps in sorted(wanted.items()):
        if len(apps) > 1:
            for f in report.found:
                if f.link == f"{source}:{target}":
                    f.link = None
                    f.skipped = (
                        f"{len(apps)} configurations serve {source}:{target}: pick one with "
                        f"--link {source}:{target}=ID"
                    )
            continue
        report.links.append(
            await _describe(session, tenants[source], tenants[target], apps[0], target)
        )
    report.organization, report.organization_notes = _organization(desired, tenants)
    return report


def _organization(
    desired: DesiredState, tenants: Mapping[str, _Tenant]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The multitenant organization the config's tenants are in, as an ``organization:``
    block, and notes on what it leaves out (tenants the file does not have, a second owner, a
    tenant in another organization)."""
    by_id = {spec.tenant_id: name for name, spec in desired.tenants.items()}
    notes: list[str] = []
    seen = [
        (name, t)
        for name, t in tenants.items()
        if t.mto is not None and t.mto.get("state") == "active" and t.mto_tenants
    ]
    if not seen:
        if desired.organization is not None and any(t.mto is None for t in tenants.values()):
            notes.append(
                "the multitenant organization could not be read in every tenant (it needs "
                "MultiTenantOrganization.Read.All): the organization block is left as it is"
            )
        return None, notes
    listing = seen[0][1].mto_tenants
    ids = {str(m.get("tenantId")).lower() for m in listing}
    for name, t in seen[1:]:
        if {str(m.get("tenantId")).lower() for m in t.mto_tenants} != ids:
            notes.append(f"{name} is in another multitenant organization: not imported")
    present = [
        (str(m.get("tenantId")).lower(), m)
        for m in listing
        if m.get("state") in ("active", "pending")
    ]
    owners = [by_id[i] for i, m in present if i in by_id and m.get("role") == "owner"]
    if not owners:
        notes.append(
            "the multitenant organization's owner is not a tenant of the config: add it to "
            "import the organization"
        )
        return None, notes
    owner = owners[0]
    notes += [f"{other} is an owner too: it is written as a member" for other in owners[1:]]
    members = []
    for tenant_id, m in present:
        member = by_id.get(tenant_id)
        if member is None:
            notes.append(
                f"tenant {m.get('displayName') or tenant_id} ({tenant_id}) is in the "
                "organization but not in the config: ctsync leaves it alone"
            )
        elif member != owner:
            members.append(member)
    mto = seen[0][1].mto or {}
    block: dict[str, Any] = {"name": mto.get("displayName") or "organization"}
    if mto.get("description"):
        block["description"] = mto["description"]
    block["owner"] = owner
    block["members"] = members
    templates = _organization_templates(tenants[owner].mto_templates)
    if templates:
        block["templates"] = templates
    return block, notes


_ALL_LEVELS = "newPartners,existingPartners"


def _organization_templates(live: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The owner's MTO templates as the config's ``templates:`` (what differs from the
    default only)."""
    out: dict[str, Any] = {}
    partner, sync = live.get("partner") or {}, live.get("sync") or {}
    consent = partner.get("automaticUserConsentSettings") or {}
    redemption = {
        key: consent[field]
        for key, field in (("inbound", "inboundAllowed"), ("outbound", "outboundAllowed"))
        if consent.get(field) is not None
    }
    entry: dict[str, Any] = {"automatic_redemption": redemption} if redemption else {}
    if (level := partner.get("templateApplicationLevel")) and level != _ALL_LEVELS:
        entry["apply_to"] = _apply_to(level)
    if entry:
        out["partner_configuration"] = entry
    allowed = (sync.get("userSyncInbound") or {}).get("isSyncAllowed")
    entry = {"user_sync_inbound": allowed} if allowed is not None else {}
    if (level := sync.get("templateApplicationLevel")) and level != _ALL_LEVELS:
        entry["apply_to"] = _apply_to(level)
    if entry:
        out["identity_synchronization"] = entry
    return out


def _apply_to(level: str) -> str | list[str]:
    parts = [p.strip() for p in level.split(",") if p.strip()]
    return parts[0] if len(parts) == 1 else parts


async def _read(session: Session, tenant: _Tenant) -> None:
    client = session.client(tenant.spec.name)
    others = {s.tenant_id for s in session.desired.tenants.values() if s is not tenant.spec}

    async def partners() -> None:
        tenant.partners, tenant.identity_sync = await partners_and_sync(client, others)

    async def apps() -> None:
        tenant.apps = [
            _clean(sp)
            for sp in await client.list_all(
                "/servicePrincipals",
                filter=f"applicationTemplateId eq {odata_string(CTS_TEMPLATE_ID)}",
                select=SP_SELECT.split(","),
                top=999,
            )
        ]
        await identify(client, tenant.spec, tenant.apps)

    async def default() -> None:
        tenant.default = _clean((await client.get(f"{POLICY}/default")).json_object())

    async def organization() -> None:
        try:
            tenant.mto = _clean((await client.get(MTO)).json_object())
        except ForbiddenError:
            return  # not granted MultiTenantOrganization.Read.All: nothing to tell
        if tenant.mto.get("state") != "active":
            return
        tenant.mto_tenants = [_clean(m) for m in await client.list_all(f"{MTO}/tenants")]
        for name, path in MTO_TEMPLATES.items():
            tenant.mto_templates[name] = _clean((await client.get(path)).json_object())

    await asyncio.gather(partners(), apps(), default(), organization())


async def _describe(
    session: Session, source: _Tenant, target: _Tenant, app: dict[str, Any], target_name: str
) -> ImportedLink:
    client = session.client(source.spec.name)
    sp_id = str(app["id"])
    ctsync_own = any(t.startswith(LINK_TAG_PREFIX) for t in app.get("tags") or [])
    link = ImportedLink(
        source=source.spec.name,
        target=target_name,
        adopt=None if ctsync_own else sp_id.lower(),
        access=_access(source, target),
        sync={},
    )
    job = app.get("job")
    sync = SynchronizationApi(client)
    assignments, secrets = await asyncio.gather(
        client.list_all(f"/servicePrincipals/{url_quote(sp_id)}/appRoleAssignedTo", top=999),
        _secrets(client, sp_id),
    )
    scope: dict[str, Any] = {}
    assigned = await _principals(client, assignments)
    if assigned:
        scope["assigned"] = assigned
    sync_all = (secrets or {}).get("SyncAll")
    if sync_all is not None:
        if str(sync_all).lower() == "true":
            scope["all_members"] = True
    elif not assigned:
        scope["all_members"] = True
        link.notes.append(
            "Graph does not show whether the job syncs all users or only assigned ones; none "
            "is assigned, so all_members: true was assumed"
        )
    if job is not None:
        schema = await sync.get_schema(sp_id, str(job["id"]))
        template = await sync.template_schema(sp_id)
        link.sync.update(_from_schema(schema, template, link.notes))
        link.sync["start"] = (job.get("schedule") or {}).get("state") == "Active"
    else:
        link.notes.append("it has no job yet: the next apply creates and starts one")
    filters = link.sync.pop("_filter", None)
    if filters:
        scope["filter"] = filters
    if scope:
        link.sync["scope"] = scope
    threshold = _threshold(secrets)
    if threshold is not None:
        link.sync["deletion_threshold"] = threshold
    elif secrets is None:
        link.notes.append(
            "its saved settings cannot be read back: the default accidental-deletion "
            "threshold (500) was assumed"
        )
    return link


def _access(source: _Tenant, target: _Tenant) -> dict[str, Any]:
    inbound = target.partners.get(source.spec.tenant_id) or {}
    outbound = source.partners.get(target.spec.tenant_id) or {}
    redeem_in = (inbound.get("automaticUserConsentSettings") or {}).get("inboundAllowed")
    redeem_out = (outbound.get("automaticUserConsentSettings") or {}).get("outboundAllowed")
    return {
        "automatic_redemption": bool(redeem_in) and bool(redeem_out),
        **_trust_and_b2b(inbound, outbound),
    }


def _trust_and_b2b(inbound: dict[str, Any], outbound: dict[str, Any]) -> dict[str, Any]:
    """``inbound_trust`` and ``b2b_collaboration`` from the objects holding the inbound and
    the outbound settings (a partner pair, or the default policy twice)."""
    out: dict[str, Any] = {}
    trust = inbound.get("inboundTrust")
    if isinstance(trust, dict):
        out["inbound_trust"] = {
            "mfa": bool(trust.get("isMfaAccepted")),
            "compliant_device": bool(trust.get("isCompliantDeviceAccepted")),
            "hybrid_joined_device": bool(trust.get("isHybridAzureADJoinedDeviceAccepted")),
        }
    b2b = {
        "inbound": _all_or_nothing(inbound.get("b2bCollaborationInbound")),
        "outbound": _all_or_nothing(outbound.get("b2bCollaborationOutbound")),
    }
    b2b = {k: v for k, v in b2b.items() if v is not None}
    if b2b:
        out["b2b_collaboration"] = b2b
    return out


def _default_access(default: dict[str, Any]) -> dict[str, Any]:
    """A customised default policy as ``default_access``: every setting ctsync models that
    the policy holds in a form the config can say (finer B2B settings stay unmanaged)."""
    out = _trust_and_b2b(default, default)
    consent = default.get("automaticUserConsentSettings")
    if isinstance(consent, dict):
        redeem = {
            k: consent[f"{k}Allowed"]
            for k in ("inbound", "outbound")
            if isinstance(consent.get(f"{k}Allowed"), bool)
        }
        if redeem:
            out["automatic_redemption"] = redeem
    return out


def _all_or_nothing(setting: Any) -> str | None:
    """``allow_all``/``block_all`` when a B2B setting is that; None for anything finer."""
    if not isinstance(setting, dict):
        return None
    users = setting.get("usersAndGroups") or {}
    apps = setting.get("applications") or {}
    kinds = {users.get("accessType"), apps.get("accessType")}
    targets = [t.get("target") for t in (users.get("targets") or []) + (apps.get("targets") or [])]
    if len(kinds) == 1 and set(targets) <= {"AllUsers", "AllApplications"} and len(targets) == 2:
        return {"allowed": "allow_all", "blocked": "block_all"}.get(str(kinds.pop()))
    return None


def _from_schema(
    schema: dict[str, Any], template: dict[str, Any], notes: list[str]
) -> dict[str, Any]:
    """The sync settings a live schema says, against the template's defaults."""
    out: dict[str, Any] = {}
    live_user, default_user = user_mapping(schema), user_mapping(template)
    flows = [f.strip().lower() for f in str(live_user.get("flowTypes") or "").split(",")]
    out["actions"] = [_ACTIONS[f] for f in flows if f in _ACTIONS]
    live = {
        str(a.get("targetAttributeName")).lower(): a
        for a in live_user.get("attributeMappings") or []
    }
    default = {
        str(a.get("targetAttributeName")).lower(): a
        for a in default_user.get("attributeMappings") or []
    }
    user_type = live.get("usertype")
    if user_type is not None and (user_type.get("source") or {}).get("type") == "Constant":
        value = str(user_type["source"].get("name"))
        on_create = str(user_type.get("flowType")).lower() == "objectaddonly"
        out["user_type"] = value if on_create else {"value": value, "apply": "always"}
    shown = live.get("showinaddresslist")
    if shown is not None and (shown.get("source") or {}).get("type") == "Constant":
        out["show_in_address_list"] = str(shown["source"].get("name")).lower() == "true"
    mappings: dict[str, Any] = {}
    for key in sorted(live.keys() | default.keys()):
        if key in _NOT_MAPPINGS:
            continue
        mine, base = live.get(key), default.get(key)
        name = str((mine or base or {}).get("targetAttributeName"))
        if mine is None:
            mappings[name] = None
            continue
        if base is not None and not schema_drift(base, mine) and not schema_drift(mine, base):
            continue
        if key in _FORBIDDEN:
            notes.append(f"a mapping to {name} cannot be managed by ctsync and was left out")
            continue
        mappings[name] = _mapping_value(mine, base)
    if mappings:
        out["mappings"] = mappings
    groups = (live_user.get("scope") or {}).get("groups") or []
    filters = [_filter(group) for group in groups]
    if filters:
        out["_filter"] = filters
    out.update(_groups_from_schema(schema, live_user, notes))
    return out


def _groups_from_schema(
    schema: dict[str, Any], live_user: dict[str, Any], notes: list[str]
) -> dict[str, Any]:
    """``groups: true`` (and its ``group_filter``) when the job syncs security groups: left
    out, the next apply would turn group sync off."""
    mapping = group_mapping(schema)
    if mapping is None or mapping.get("enabled") is not True:
        return {}
    out: dict[str, Any] = {"groups": True}
    filters = [_filter(group) for group in (mapping.get("scope") or {}).get("groups") or []]
    if filters:
        out["group_filter"] = filters
    flows, user_flows = (
        {f.strip().lower() for f in str(m.get("flowTypes") or "").split(",") if f.strip()}
        for m in (mapping, live_user)
    )
    if flows != user_flows:
        notes.append(
            f"its group mapping's flow types ({mapping.get('flowTypes')}) differ from the user "
            f"mapping's ({live_user.get('flowTypes')}); ctsync gives groups the link's actions, "
            "so the next plan changes them"
        )
    notes.append(
        "it syncs security groups: the config opts into Graph beta (`beta: [group_sync]`) for "
        "the target's groupSyncInbound"
    )
    return out


def _mapping_value(mine: dict[str, Any], base: dict[str, Any] | None) -> Any:
    """An expression (with ``apply``) when that says the mapping exactly, else the mapping
    verbatim under ``graph``."""
    source = mine.get("source") or {}
    expression = source.get("expression")
    on_create = str(mine.get("flowType")).lower() == "objectaddonly"
    try:
        parsed = parse_expression(str(expression)) if expression else None
    except (ConfigError, ValueError):  # what the parser refuses goes verbatim
        parsed = None
    others = {
        k: v for k, v in mine.items() if k not in {"source", "flowType", "targetAttributeName"}
    }
    shape = {
        "defaultValue": None,
        "exportMissingReferences": False,
        "flowBehavior": "FlowWhenChanged",
        "matchingPriority": 0,
    }
    plain = not schema_drift(others, shape) and not schema_drift(shape, others)
    if parsed is not None and plain and not schema_drift(parsed.to_graph(), source):
        return {"expression": expression, "apply": "on_create"} if on_create else expression
    del base
    return {"graph": {k: v for k, v in mine.items() if k != "targetAttributeName"}}


def _filter(group: dict[str, Any]) -> dict[str, Any]:
    clauses = []
    for clause in group.get("clauses") or []:
        values = (clause.get("targetOperand") or {}).get("values") or []
        text = f"{clause.get('sourceOperandName')} {clause.get('operatorName')}"
        if values:
            text += " " + " ".join(_filter_value(str(v)) for v in values)
        clauses.append(text)
    return {"name": str(group.get("name")), "filter": " AND ".join(clauses)}


def _filter_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def _principals(client: GraphClient, assignments: list[dict[str, Any]]) -> list[Any]:
    """Assigned groups by name where the name is unique in the tenant, else by id; users by
    id."""
    groups = [a for a in assignments if str(a.get("principalType")).lower() == "group"]
    names = {
        str(a["principalId"]): str(a.get("principalDisplayName") or "")
        for a in groups
        if a.get("principalDisplayName")
    }
    urls = {
        pid: "/groups?$select=id&$filter="
        + url_quote(f"displayName eq {odata_string(name)}", safe="")
        for pid, name in names.items()
    }
    answers = await _get_many(client, urls)
    out: list[Any] = []
    for a in sorted(assignments, key=lambda a: str(a.get("principalDisplayName") or "")):
        pid = str(a.get("principalId"))
        if str(a.get("principalType")).lower() == "group":
            matches = (answers.get(pid) or {}).get("value") or []
            unique = len(matches) == 1 and str(matches[0].get("id")).lower() == pid.lower()
            out.append({"group": names[pid] if unique and pid in names else pid})
        elif str(a.get("principalType")).lower() == "user":
            out.append({"user": pid})
    return out


async def _secrets(client: GraphClient, sp_id: str) -> dict[str, str] | None:
    """The saved settings, where Graph answers them (it does not document that it does)."""
    try:
        answer = await client.get(f"/servicePrincipals/{url_quote(sp_id)}/synchronization/secrets")
    except GraphError:
        return None
    body = answer.json_object()
    pairs = body.get("value") if isinstance(body.get("value"), list) else None
    if pairs is None:
        return None
    return {str(p.get("key")): str(p.get("value")) for p in pairs if isinstance(p, dict)}


def _threshold(secrets: dict[str, str] | None) -> int | None:
    if not secrets or "SyncNotificationSettings" not in secrets:
        return None
    try:
        settings = json.loads(secrets["SyncNotificationSettings"])
    except ValueError:
        return None
    if isinstance(settings, dict) and settings.get("DeleteThresholdEnabled"):
        value = settings.get("DeleteThresholdValue")
        return int(value) if isinstance(value, int) else None
    return None


def _partner_summary(
    tenant: str, partner_id: str, partner: dict[str, Any], by_id: dict[str, str]
) -> dict[str, Any]:
    set_members = sorted(
        k
        for k, v in partner.items()
        if k not in {"tenantId", "isInMultiTenantOrganization", "isServiceProvider"}
        and v not in (None, {}, [])
        and not (isinstance(v, dict) and all(x is None for x in v.values()))
    )
    return {
        "tenant": tenant,
        "partner": by_id.get(partner_id, partner_id),
        "multitenant_organization": partner.get("isInMultiTenantOrganization") is True,
        "service_provider": partner.get("isServiceProvider") is True,
        "settings": set_members,
        "unmodelled": [m for m in set_members if m not in _MODELLED],
    }


#: The partner settings ctsync's config can express (``access``); the rest it never writes.
_MODELLED = frozenset(
    {
        "automaticUserConsentSettings",
        "inboundTrust",
        "b2bCollaborationInbound",
        "b2bCollaborationOutbound",
    }
)


async def _get_many(client: GraphClient, urls: dict[str, str]) -> dict[str, dict[str, Any] | None]:
    if not urls:
        return {}
    keys = list(urls)
    results = await client.batch(
        [BatchRequest(id=str(i), method="GET", url=urls[k]) for i, k in enumerate(keys)],
        concurrency=8,
    )
    out: dict[str, dict[str, Any] | None] = {}
    for i, key in enumerate(keys):
        result = results[str(i)]
        body = result.body if result.status < 400 and isinstance(result.body, dict) else None
        out[key] = _clean(body) if body is not None else None
    return out


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("@odata.")}


def config_entries(links: list[ImportedLink]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Templates and links for the config file: settings shared by several links become a
    template (``imported``, ``imported-2``…), the rest stay inline."""
    groups: dict[str, list[ImportedLink]] = {}
    for link in links:
        settings = json.dumps({"access": link.access, "sync": link.sync}, sort_keys=True)
        groups.setdefault(settings, []).append(link)
    templates: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    for settings, members in groups.items():
        name = None
        if len(members) > 1:
            name = "imported" if not templates else f"imported-{len(templates) + 1}"
            templates[name] = json.loads(settings)
        for link in members:
            entry: dict[str, Any] = {"source": link.source, "target": link.target}
            if name is not None:
                entry["template"] = name
            else:
                entry["access"] = link.access
                entry["sync"] = link.sync
            if link.adopt:
                entry["adopt"] = link.adopt
            entries.append(entry)
    return templates, sorted(entries, key=lambda e: (e["source"], e["target"]))


def note_adopted(
    desired: DesiredState, keys: set[str], ledger: Ledger, report: ImportReport | None = None
) -> None:
    """Note in the ledger what an import found, so ctsync treats it as it is:

    - for each imported link that adopts a configuration, the settings it is taken to hold
      (what the link's config says): ctsync cannot read them back, and a plan right after the
      import must not offer to write what is already there;
    - the value each partner field the imported links manage holds now: ctsync did not make
      it, so destroy gives exactly that back (not ``null``); the same for the default policy
      settings imported as ``default_access``.
    """
    chosen = tuple(link for link in desired.links if link.key in keys)
    for link in chosen:
        if link.adopt:
            target = desired.tenants[link.target]
            fingerprint = secrets_tag(desired_secrets(link, target))
            ledger.note_adopted(
                desired.tenants[link.source].tenant_id, link.adopt, secrets=fingerprint
            )
    if report is None:
        return
    for name in report.defaults:
        live, spec = report.live_defaults[name], desired.tenants[name]
        ledger.note_before(
            spec.tenant_id,
            DEFAULT_KEY,
            {path: _get(live, path) for path in default_members(spec)},
        )
    for want in wants(desired, links=chosen).partners.values():
        tenant_id = desired.tenants[want.tenant].tenant_id
        current = report.live_partners.get((want.tenant, want.partner_id))
        if current is not None:
            ledger.note_before(
                tenant_id,
                object_key("partner", want.partner_id),
                {path: _get(current, path) for path in want.members},
            )
        sync = report.live_sync.get((want.tenant, want.partner_id))
        if want.sync_link and sync is not None:
            field = "userSyncInbound.isSyncAllowed"
            ledger.note_before(
                tenant_id,
                object_key("identitySynchronization", want.partner_id),
                {field: _get(sync, field)},
            )


def _get(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
