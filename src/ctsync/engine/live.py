"""Read what both tenants of every link hold now, with as few round trips as Graph allows.

Per tenant: one paged list of partner configurations, one paged list of the service principals
ctsync manages (found by tag), then ``$batch`` rounds of GETs for what hangs off them
(identitySynchronization, jobs, assignments, schemas) and for the principals a link assigns.
Tenants are read concurrently; the shared pacer keeps each under Graph's quotas.

Every app carrying a link's tag is read, not only one: when two exist (two runs raced, or
someone copied the app), one is kept as the link's app by a stable rule (:func:`_primary`) and
the others are reported as duplicates, so they never hide behind a "no changes".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from ctsync.engine.desired import (
    LINK_TAG_PREFIX,
    SECRETS_TAG_PREFIX,
    PartnerWant,
    Wants,
    parse_stage_tag,
)
from ctsync.engine.identify import identify
from ctsync.engine.session import Session
from ctsync.errors import ConfigError, NotFoundError
from ctsync.graph import BatchRequest, GraphClient, raise_for_item
from ctsync.graph.apps import CTS_TEMPLATE_ID, odata_string
from ctsync.graph.batch import MAX_BATCH

__all__ = [
    "READ_BATCH_CONCURRENCY",
    "LiveLink",
    "LiveState",
    "LiveTenant",
    "partners_and_sync",
    "read_live",
]

#: ``$batch`` round trips in flight per tenant while reading live state (the benchmarks'
#: floors import it).
READ_BATCH_CONCURRENCY: Final = 8
#: Schemas read per round: as many as the batches of one round carry.
_SCHEMA_ROUND: Final = READ_BATCH_CONCURRENCY * MAX_BATCH

POLICY = "/policies/crossTenantAccessPolicy"
SP_SELECT = "id,appId,displayName,tags,appRoles,applicationTemplateId"


@dataclass
class LiveTenant:
    name: str
    #: Partner configurations by partner tenant id (lower case).
    partners: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: identitySynchronization by partner tenant id; absent when none exists.
    identity_sync: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``groupSyncInbound.isSyncAllowed`` (Graph beta) by partner tenant id, read only for
    #: partners a link syncs groups from (the config opted into ``group_sync``).
    group_sync: dict[str, bool | None] = field(default_factory=dict)
    #: Managed service principals by link tag (more than one: duplicates).
    service_principals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Cross-tenant sync configurations here that no link of the config manages, each with
    #: its ``job`` (or None), the ``target`` tenant id it serves (None: unknown) and ``how``
    #: that was learnt (identify.py's rules).
    foreign: list[dict[str, Any]] = field(default_factory=list)
    #: The tenant's default cross-tenant access settings (read only when the config manages
    #: some of them).
    default: dict[str, Any] | None = None
    #: The policy's ``allowedCloudEndpoints`` (read only for a tenant of a cross-cloud link).
    cloud_endpoints: list[str] | None = None
    #: The multitenant organization as the tenant sees it (``state`` inactive: in none), its
    #: tenants by id (read from the owner of the config's organization), its join request and
    #: MTO templates by name; read only for the tenants of the config's organization.
    mto: dict[str, Any] | None = None
    mto_tenants: dict[str, dict[str, Any]] | None = None
    join_request: dict[str, Any] | None = None
    mto_templates: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class LiveLink:
    key: str
    service_principal: dict[str, Any] | None = None
    #: True when the service principal was found by name, not by its tag (adopt it).
    untagged: bool = False
    job: dict[str, Any] | None = None
    schema: dict[str, Any] | None = None
    assignments: list[dict[str, Any]] = field(default_factory=list)
    #: Resolved principals: (kind, ref) → object id.
    principals: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Other apps carrying this link's tag (each with its Azure2Azure ``job`` or None).
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    #: Several untagged apps with this link's name and the CTS template: ctsync cannot tell
    #: which one an earlier run made, so it adopts none and plans nothing for the link.
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    #: Every app found for the link before one was chosen (read, then sorted out).
    candidates: list[dict[str, Any]] = field(default_factory=list)
    #: The link manages an existing configuration (``adopt:``) rather than one it created.
    adopted: bool = False
    #: ``adopt:`` names a service principal that is not there, or not a CTS configuration.
    adopt_missing: str | None = None
    #: The job template's default schema (what ctsync's schema PUT starts from); read once
    #: per source tenant, shared by its links. None until an app exists.
    template: dict[str, Any] | None = None

    @property
    def sp_id(self) -> str | None:
        return self.service_principal["id"] if self.service_principal else None

    @property
    def app_role_id(self) -> str | None:
        if not self.service_principal:
            return None
        roles = self.service_principal.get("appRoles") or []
        for role in roles:
            if role.get("displayName") == "msiam_access" or role.get("value") == "msiam_access":
                return str(role["id"])
        return str(roles[0]["id"]) if roles else None

    @property
    def stage(self) -> tuple[int, str] | None:
        """The rollout stage recorded on the app (stage, since), if any."""
        return parse_stage_tag((self.service_principal or {}).get("tags"))

    @property
    def secrets_tag(self) -> str | None:
        tags = (self.service_principal or {}).get("tags") or []
        return next((t for t in tags if t.startswith(SECRETS_TAG_PREFIX)), None)


@dataclass
class LiveState:
    tenants: dict[str, LiveTenant]
    links: dict[str, LiveLink]

    def fingerprint(self) -> str:
        """A hash of every object read, minus fields that move on their own (job status).

        Hashed a tenant and a link at a time: a fleet's whole state as one JSON text was the
        largest object a plan ever held (tens of MB at 1,000 links)."""
        digest = hashlib.sha256()
        for name, t in sorted(self.tenants.items()):
            tenant = {
                "partners": t.partners,
                "identity_sync": t.identity_sync,
                **({"group_sync": t.group_sync} if t.group_sync else {}),
                "sps": {k: [_sp_view(sp) for sp in v] for k, v in t.service_principals.items()},
                "foreign": [{"id": f.get("id"), "target": f.get("target")} for f in t.foreign],
                **({"default": t.default} if t.default is not None else {}),
                **({"clouds": t.cloud_endpoints} if t.cloud_endpoints is not None else {}),
                **(
                    {
                        "mto": t.mto,
                        "mto_tenants": t.mto_tenants,
                        "join": t.join_request,
                        "mto_templates": t.mto_templates,
                    }
                    if t.mto is not None
                    else {}
                ),
            }
            _hash_part(digest, ["tenant", name, tenant])
        # Schemas share most of their parts (share_equal): each shared part is hashed once.
        shared: dict[int, bytes] = {}
        for key, link in sorted(self.links.items()):
            schema = None if link.schema is None else _tree_digest(link.schema, shared).hex()
            part = {
                "sp": _sp_view(link.service_principal),
                "job": (link.job or {}).get("id"),
                "schedule": ((link.job or {}).get("schedule") or {}).get("state"),
                "schema": schema,
                "assignments": sorted(a.get("principalId", "") for a in link.assignments),
                "principals": {f"{k[0]}:{k[1]}": v for k, v in sorted(link.principals.items())},
                "duplicates": [_sp_view(d) for d in link.duplicates],
                "ambiguous": [_sp_view(d) for d in link.ambiguous],
            }
            _hash_part(digest, ["link", key, part])
        return digest.hexdigest()


def _tree_digest(value: Any, memo: dict[int, bytes]) -> bytes:
    """A digest of JSON ``value`` that does not depend on key order; each dict or list is
    digested once per ``memo`` (by identity: the caller keeps the objects alive meanwhile)."""
    if not isinstance(value, dict | list):
        return hashlib.sha256(json.dumps(value, default=str).encode()).digest()
    known = memo.get(id(value))
    if known is not None:
        return known
    digest = hashlib.sha256()
    if isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value):
            digest.update(json.dumps(key).encode())
            digest.update(_tree_digest(value[key], memo))
    else:
        digest.update(b"[")
        for item in value:
            digest.update(_tree_digest(item, memo))
    memo[id(value)] = out = digest.digest()
    return out


def _hash_part(digest: Any, part: Any) -> None:
    # One JSON line per part: parts cannot run into each other.
    digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    digest.update(b"\n")


def _sp_view(sp: dict[str, Any] | None) -> dict[str, Any] | None:
    if sp is None:
        return None
    return {"id": sp.get("id"), "tags": sorted(sp.get("tags") or [])}


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("@odata.")}


async def _batch_get(client: GraphClient, urls: dict[str, str]) -> dict[str, dict[str, Any] | None]:
    """GET many URLs through ``$batch``: body per key, ``None`` for a 404."""
    if not urls:
        return {}
    if len(urls) == 1:
        # One URL: a plain GET (a batch envelope costs both sides more for nothing).
        [(key, url)] = urls.items()
        try:
            answer = await client.get(url)
        except NotFoundError:
            return {key: None}
        body = answer.json_object()
        return {key: _clean(body)}
    keys = list(urls)
    requests = [BatchRequest(id=str(i), method="GET", url=urls[k]) for i, k in enumerate(keys)]
    results = await client.batch(requests, concurrency=READ_BATCH_CONCURRENCY)
    out: dict[str, dict[str, Any] | None] = {}
    for i, key in enumerate(keys):
        result = results[str(i)]
        if result.status == 404:
            out[key] = None
            continue
        raise_for_item(result)
        out[key] = _clean(result.body) if isinstance(result.body, dict) else {}
    return out


async def _read_partners(
    client: GraphClient, tenant: LiveTenant, my_partners: list[PartnerWant]
) -> None:
    if not my_partners:
        return
    synced = {w.partner_id.lower() for w in my_partners if w.sync_link}
    grouped = sorted({w.partner_id.lower() for w in my_partners if w.group_sync_link})
    (tenant.partners, tenant.identity_sync), *allowed = await _all(
        partners_and_sync(client, synced), *(group_sync_allowed(client, p) for p in grouped)
    )
    tenant.group_sync = dict(zip(grouped, allowed, strict=True))


async def group_sync_allowed(client: GraphClient, partner_id: str) -> bool | None:
    """The partner's ``groupSyncInbound.isSyncAllowed``: a Graph **beta** property, read
    from the beta endpoint only for links that sync groups (``beta: [group_sync]``); None
    when the partner has no identitySynchronization (or it does not say)."""
    path = f"{POLICY}/partners/{quote(partner_id)}/identitySynchronization"
    try:
        body = (await client.get(client.beta_url(path))).json_object()
    except NotFoundError:
        return None
    value = (body.get("groupSyncInbound") or {}).get("isSyncAllowed")
    return value if isinstance(value, bool) else None


async def partners_and_sync(
    client: GraphClient, synced: Iterable[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """A tenant's partner configurations by tenant id, and the sync policies of those of
    ``synced`` (lower-case tenant ids) that have one.

    The sync policies come with the list (``$expand=identitySynchronization``, which Microsoft
    documents on it): one request per tenant, not one more per partner — most of a fleet's
    tenants are only a link's target and need nothing else."""
    wanted = set(synced)
    params = {"$expand": "identitySynchronization"} if wanted else None
    partners: dict[str, dict[str, Any]] = {}
    policies: dict[str, dict[str, Any]] = {}
    for item in await client.list_all(f"{POLICY}/partners", params=params):
        partner_id = str(item["tenantId"]).lower()
        policy = item.pop("identitySynchronization", None)
        partners[partner_id] = _clean(item)
        if partner_id in wanted and isinstance(policy, dict):
            policies[partner_id] = _clean(policy)
    return partners, policies


async def _all(*aws: Awaitable[Any]) -> list[Any]:
    """Run ``aws`` concurrently; the first failure cancels the rest, waits for them, and is
    raised. (``asyncio.gather`` leaves the others running: after a failed read they went on
    sending requests, and raised again unseen at shutdown.)"""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def read_live(session: Session, wants: Wants) -> LiveState:
    """Read everything ``wants`` touches, in every tenant concerned, concurrently."""
    tenants = {w.tenant for w in wants.partners.values()}
    tenants |= {w.source.name for w in wants.links.values()}
    tenants |= set(wants.defaults)
    tenants |= set(wants.clouds)
    if wants.organization is not None:
        tenants |= set(wants.organization.tenants)
    live = LiveState(
        tenants={name: LiveTenant(name) for name in tenants},
        links={key: LiveLink(key) for key in wants.links},
    )
    await _all(*(_read_tenant(session, wants, live, name) for name in sorted(tenants)))
    return live


async def _read_tenant(session: Session, wants: Wants, live: LiveState, name: str) -> None:
    client = session.client(name)
    tenant = live.tenants[name]
    my_partners = [w for w in wants.partners.values() if w.tenant == name]
    my_links = [w for w in wants.links.values() if w.source.name == name]

    async def apps() -> None:
        if not my_links:
            return
        # Every cross-tenant sync configuration of the tenant, whoever made it: one list.
        every = [
            _clean(sp)
            for sp in await client.list_all(
                "/servicePrincipals",
                filter=f"applicationTemplateId eq {odata_string(CTS_TEMPLATE_ID)}",
                select=SP_SELECT.split(","),
                top=999,
            )
        ]
        mine = {w.tag for w in my_links}
        untagged: list[dict[str, Any]] = []
        for sp in every:
            tags = [t for t in dict.fromkeys(sp.get("tags") or []) if t.startswith(LINK_TAG_PREFIX)]
            for tag in tags:
                tenant.service_principals.setdefault(tag, []).append(sp)
            if not tags:
                untagged.append(sp)
        by_id = {str(sp["id"]).lower(): sp for sp in every}
        adopt_ids = _adopt_ids(wants)
        claimed: set[str] = set()
        for want in my_links:
            link = live.links[want.key]
            tagged = list(tenant.service_principals.get(want.tag, []))
            if want.link.adopt:
                adopted = by_id.get(want.link.adopt) or await _adoptable(client, want.link.adopt)
                if adopted is None:
                    link.adopt_missing = want.link.adopt
                    continue
                claimed.add(want.link.adopt)
                link.adopted = True
                link.candidates = [adopted, *(t for t in tagged if t["id"] != adopted["id"])]
                continue
            if tagged:
                link.candidates = tagged
                continue
            # A run killed between instantiating the app and tagging it leaves an untagged
            # app: found by its exact name, a re-run adopts it instead of duplicating it.
            named = [
                sp
                for sp in untagged
                if sp.get("displayName") == want.app_name
                and str(sp["id"]).lower() not in claimed | adopt_ids
            ]
            claimed.update(str(sp["id"]).lower() for sp in named)
            if len(named) == 1:
                link.candidates = named
                link.untagged = True
            elif named:
                link.ambiguous = sorted(named, key=lambda sp: str(sp.get("id")))
        await _recall_created(session, client, my_links, live)
        claimed.update(
            str(sp["id"]).lower() for w in my_links for sp in live.links[w.key].candidates
        )
        tenant.foreign = [
            sp
            for sp in every
            if str(sp["id"]).lower() not in claimed
            and not any(t in mine for t in sp.get("tags") or [])
        ]
        await _all(
            _read_link_objects(client, [live.links[w.key] for w in my_links]),
            identify(client, session.desired.tenants[name], tenant.foreign),
        )

    # Principals depend on nothing else read here: resolve them alongside.
    await _all(
        _read_partners(client, tenant, my_partners),
        apps(),
        _read_default(client, tenant, wants),
        _read_clouds(client, tenant, wants),
        _read_organization(client, tenant, wants),
        _resolve_principals(client, name, my_links, live),
    )


async def _read_default(client: GraphClient, tenant: LiveTenant, wants: Wants) -> None:
    """The default cross-tenant access settings, when the config manages some."""
    if tenant.name in wants.defaults:
        tenant.default = _clean((await client.get(f"{POLICY}/default")).json_object())


async def _read_clouds(client: GraphClient, tenant: LiveTenant, wants: Wants) -> None:
    """The policy's ``allowedCloudEndpoints``, when a link of the tenant crosses clouds."""
    if tenant.name in wants.clouds:
        body = (await client.get(POLICY)).json_object()
        tenant.cloud_endpoints = [str(e) for e in body.get("allowedCloudEndpoints") or []]


MTO = "/tenantRelationships/multiTenantOrganization"
#: The MTO policy templates by the name the plan gives them.
MTO_TEMPLATES = {
    "partner": f"{POLICY}/templates/multiTenantOrganizationPartnerConfiguration",
    "sync": f"{POLICY}/templates/multiTenantOrganizationIdentitySynchronization",
}


async def _read_organization(client: GraphClient, tenant: LiveTenant, wants: Wants) -> None:
    """The MTO, its join request and templates; the owner also lists the MTO's tenants."""
    org = wants.organization
    if org is None or tenant.name not in org.tenants:
        return

    async def tenants() -> None:
        if tenant.name != org.owner or (tenant.mto or {}).get("state") != "active":
            return
        try:
            items = await client.list_all(f"{MTO}/tenants")
        except NotFoundError:
            items = []
        tenant.mto_tenants = {str(m["tenantId"]).lower(): _clean(m) for m in items}

    async def template(name: str, path: str) -> None:
        tenant.mto_templates[name] = _clean((await client.get(path)).json_object())

    tenant.mto, tenant.join_request = (
        _clean((await client.get(MTO)).json_object()),
        _clean((await client.get(f"{MTO}/joinRequest")).json_object()),
    )
    await _all(
        tenants(),
        *(
            template(name, path)
            for name, path in MTO_TEMPLATES.items()
            if (org.partner_template if name == "partner" else org.sync_template) is not None
        ),
    )


#: How long a read waits for an app an earlier run created to replicate (the default of
#: ``Session.replication_wait``).
RECALL_TIMEOUT = 120.0


async def _recall_created(
    session: Session, client: GraphClient, wants: list[Any], live: LiveState
) -> None:
    """Apps an earlier run created (the journal) but no list shows yet: ask for them — by id,
    or by name when that run died before instantiate answered — waiting out replication, so a
    quick re-run adopts them instead of creating another."""
    journal = session.journal
    if journal is None:
        return
    created = journal.created_apps()
    for want in wants:
        link = live.links[want.key]
        note = created.get(want.tag)
        if link.candidates or link.ambiguous or note is None:
            continue
        found = await _wait_for_app(client, note, session.replication_wait)
        if found is not None:
            link.candidates = [_clean(found)]
            link.untagged = True


def _recall_window(client: GraphClient, note: dict[str, Any], wait: float) -> float:
    """Seconds left to wait for a noted app: replication is counted from its creation, so a
    note from a run long gone gets one look, not another full wait."""
    noted = note.get("noted_at")
    if not isinstance(noted, str):
        return wait
    try:
        since = datetime.fromisoformat(noted.replace("Z", "+00:00"))
    except ValueError:
        return wait
    elapsed = (client.clock.wall() - since).total_seconds()
    return max(0.0, min(wait, wait - elapsed))


async def _wait_for_app(
    client: GraphClient, note: dict[str, Any], replication_wait: float
) -> dict[str, Any] | None:
    deadline = client.clock.monotonic() + _recall_window(client, note, replication_wait)
    wait = 1.0
    while True:
        if note.get("sp_id"):
            try:
                answer = await client.get(
                    f"/servicePrincipals/{quote(str(note['sp_id']))}",
                    params={"$select": SP_SELECT},
                )
                return answer.json_object()
            except NotFoundError:
                pass
        else:
            named = await client.list_all(
                "/servicePrincipals",
                filter=f"displayName eq {odata_string(str(note.get('display_name')))}",
                select=SP_SELECT.split(","),
            )
            untagged = [
                sp
                for sp in named
                if (sp.get("applicationTemplateId") or "").lower() == CTS_TEMPLATE_ID
                and not any(t.startswith(LINK_TAG_PREFIX) for t in sp.get("tags") or [])
            ]
            if len(untagged) == 1:
                return untagged[0]
        if client.clock.monotonic() + wait > deadline:
            return None  # deleted since, or never created: plan a new app
        await client.clock.sleep(wait)
        wait = min(wait * 2, 15.0)


def _primary(candidates: list[dict[str, Any]], jobs: dict[str, dict[str, Any] | None]) -> str:
    """The id of the app a link keeps when several carry its tag: one with a running job,
    else one with a job, else any; ties go to the smallest id, so every run picks the same."""

    def rank(sp: dict[str, Any]) -> tuple[int, str]:
        job = jobs.get(str(sp["id"]))
        state = ((job or {}).get("schedule") or {}).get("state")
        return (0 if state == "Active" else 1 if job else 2, str(sp["id"]))

    return str(min(candidates, key=rank)["id"])


def _adopt_ids(wants: Wants) -> set[str]:
    return {w.link.adopt for w in wants.links.values() if w.link.adopt}


async def _adoptable(client: GraphClient, sp_id: str) -> dict[str, Any] | None:
    """The service principal ``adopt:`` names when the list did not show it (it may still be
    replicating); None if it is not there or is no cross-tenant sync configuration."""
    try:
        answer = await client.get(
            f"/servicePrincipals/{quote(sp_id)}", params={"$select": SP_SELECT}
        )
    except NotFoundError:
        return None
    sp = _clean(answer.json_object())
    if (sp.get("applicationTemplateId") or "").lower() != CTS_TEMPLATE_ID:
        return None
    return sp


async def _read_link_objects(client: GraphClient, links: list[LiveLink]) -> None:
    with_sp = [link for link in links if link.candidates]
    urls: dict[str, str] = {}
    for link in with_sp:
        for candidate in link.candidates:
            sp = quote(str(candidate["id"]))
            urls[f"{sp}|jobs"] = f"/servicePrincipals/{sp}/synchronization/jobs"
        sp = quote(str(link.candidates[0]["id"]))
        if len(link.candidates) == 1:
            urls[f"{sp}|assignments"] = f"/servicePrincipals/{sp}/appRoleAssignedTo?$top=999"
    if with_sp:
        # Every CTS app offers the same template: read it through the first one.
        first = quote(str(with_sp[0].candidates[0]["id"]))
        urls["|templates"] = f"/servicePrincipals/{first}/synchronization/templates"
    answers = await _batch_get(client, urls)
    templates = (answers.get("|templates") or {}).get("value") or []
    template = next(
        (
            {k: v for k, v in t["schema"].items() if not k.startswith("@")}
            for t in templates
            if isinstance(t, dict)
            and t.get("id") == "Azure2Azure"
            and isinstance(t.get("schema"), dict)
        ),
        None,
    )
    for link in with_sp:
        link.template = template

    def cts_job(sp_id: str) -> dict[str, Any] | None:
        jobs = (answers.get(f"{quote(sp_id)}|jobs") or {}).get("value") or []
        cts_jobs = [j for j in jobs if j.get("templateId") == "Azure2Azure"]
        return _clean(cts_jobs[0]) if cts_jobs else None

    schema_urls: dict[str, str] = {}
    for link in with_sp:
        jobs = {str(c["id"]): cts_job(str(c["id"])) for c in link.candidates}
        keep = _primary(link.candidates, jobs)
        link.service_principal = next(c for c in link.candidates if str(c["id"]) == keep)
        link.duplicates = [
            {**c, "job": jobs[str(c["id"])]} for c in link.candidates if str(c["id"]) != keep
        ]
        link.job = jobs[keep]
        sp = quote(keep)
        assigned = answers.get(f"{sp}|assignments") or {}
        if f"{sp}|assignments" not in urls or assigned.get("@odata.nextLink"):
            # Several candidates (only the kept one's are read), or more than one page.
            link.assignments = await client.list_all(
                f"/servicePrincipals/{sp}/appRoleAssignedTo", top=999
            )
        else:
            link.assignments = [_clean(a) for a in assigned.get("value") or []]
        if link.job:
            job_id = quote(str(link.job["id"]), safe="")
            schema_urls[link.key] = f"/servicePrincipals/{sp}/synchronization/jobs/{job_id}/schema"
    by_key = {link.key: link for link in with_sp}
    # A fleet's schemas are one template's with the same edits: each keeps only what is its own
    # (ids, a hand edit) and shares the rest with the first one read (a fleet plan held every
    # link's whole schema: ~90 KB each). Read a round of batches at a time, shared as it comes,
    # so no more than a round's schemas are ever whole at once.
    reference: Any = template
    keys = list(schema_urls)
    for start in range(0, len(keys), _SCHEMA_ROUND):
        chunk = {k: schema_urls[k] for k in keys[start : start + _SCHEMA_ROUND]}
        for key, schema in (await _batch_get(client, chunk)).items():
            shared = share_equal(schema, reference)
            by_key[key].schema = shared
            if reference is template:
                reference = shared


def share_equal(value: Any, reference: Any) -> Any:
    """``value`` with each part equal to the same place of ``reference`` replaced by that part
    of ``reference`` (one object, shared): equal JSON kept once. ``value`` is changed in place,
    so it must be freshly read; the parts it then shares are read-only, as all live state is."""
    if value == reference:
        return reference
    if isinstance(value, dict) and isinstance(reference, dict):
        for key, item in value.items():
            if key in reference:
                value[key] = share_equal(item, reference[key])
    elif isinstance(value, list) and isinstance(reference, list) and len(value) == len(reference):
        for index, (item, theirs) in enumerate(zip(value, reference, strict=True)):
            value[index] = share_equal(item, theirs)
    return value


async def _resolve_principals(
    client: GraphClient, tenant: str, wants: Iterable[Any], live: LiveState
) -> None:
    wanted: set[tuple[str, str]] = {(p.kind, p.ref) for w in wants for p in w.principals}
    if not wanted:
        return
    urls: dict[str, str] = {}
    for kind, ref in sorted(wanted):
        if kind == "user":
            urls[f"{kind}|{ref}"] = f"/users/{quote(ref)}?$select=id,userPrincipalName"
        elif _is_guid(ref):
            urls[f"{kind}|{ref}"] = f"/groups/{ref}?$select=id,displayName"
        else:
            flt = quote(f"displayName eq {odata_string(ref)}", safe="")
            urls[f"{kind}|{ref}"] = f"/groups?$select=id,displayName&$filter={flt}"
    answers = await _batch_get(client, urls)
    resolved: dict[tuple[str, str], str] = {}
    for kind, ref in wanted:
        body = answers.get(f"{kind}|{ref}")
        matches = (
            (body or {}).get("value") if body and "value" in body else ([body] if body else [])
        )
        if not matches:
            msg = f"{kind} {ref!r} assigned by the config does not exist in tenant {tenant!r}"
            raise ConfigError(msg)
        if len(matches) > 1:
            msg = (
                f"{len(matches)} groups in tenant {tenant!r} are named {ref!r}; "
                "assign it by object id instead"
            )
            raise ConfigError(msg)
        resolved[(kind, ref)] = str(matches[0]["id"])
    for want in wants:
        link = live.links[want.key]
        link.principals = {(p.kind, p.ref): resolved[(p.kind, p.ref)] for p in want.principals}


def _is_guid(value: str) -> bool:
    parts = value.split("-")
    return len(value) == 36 and [len(p) for p in parts] == [8, 4, 4, 4, 12]
