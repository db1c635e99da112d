"""Desired versus live → a :class:`Plan` (a DAG of steps across both tenants).

Order follows Microsoft's walkthrough (graph-cts-api §1), cut to its real dependencies
(graph-limits §6.2): the target's partner before its identitySynchronization; the source's
configuration app before its job, secrets and assignments; the job before its schema; the test
of the connection after every policy change it checks; start last.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from ctsync.config import DesiredState, LinkSpec
from ctsync.engine.desired import (
    ADOPTED_TAG,
    MANAGED_TAG,
    LinkWant,
    PartnerWant,
    Wants,
    desired_secrets,
    secrets_tag,
    wants,
)
from ctsync.engine.live import LiveLink, LiveState, LiveTenant
from ctsync.engine.model import FieldChange, Plan, Problem, Step
from ctsync.engine.organization import organization_steps, organization_teardown
from ctsync.engine.ownership import DEFAULT_KEY, POLICY_KEY, Ledger, app_key, object_key
from ctsync.engine.schema import schema_changes, schema_changes_full, schema_edits

__all__ = [
    "cloud_step_id",
    "destroy_plan",
    "duplicates_plan",
    "link_problems",
    "nested",
    "partner_step_id",
    "plan_changes",
]

POLICY = "/policies/crossTenantAccessPolicy"
#: The identitySynchronization member that allows group sync in (Graph beta only).
GROUP_SYNC_FIELD = "groupSyncInbound.isSyncAllowed"


def partner_step_id(tenant: str, partner: str) -> str:
    return f"{tenant}/partner/{partner}"


def sync_step_id(tenant: str, partner: str) -> str:
    return f"{tenant}/identitySynchronization/{partner}"


def nested(members: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` → ``{"a": {"b": 1}, "c": 2}``: a PATCH body from member paths."""
    out: dict[str, Any] = {}
    for path, value in members.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _get(obj: dict[str, Any] | None, path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _same(live: Any, wanted: Any) -> bool:
    return json.dumps(live, sort_keys=True) == json.dumps(wanted, sort_keys=True)


def _origin(ledger: Ledger | None, tenant_id: str, key: str) -> str:
    """How an object that exists came to be: ``created`` by ctsync (the ledger says so) or
    ``existing`` (made by someone else, or not recorded): then only ctsync's fields change."""
    if ledger is not None and ledger.created(tenant_id, key):
        return "created"
    return "existing"


def _partner_steps(
    want: PartnerWant,
    live: LiveTenant,
    managed: bool,
    *,
    tenant_id: str = "",
    ledger: Ledger | None = None,
) -> tuple[list[Step], list[str]]:
    steps: list[Step] = []
    notes: list[str] = []
    current = live.partners.get(want.partner_id)
    pid = partner_step_id(want.tenant, want.partner)
    partner_key = object_key("partner", want.partner_id)
    changes = tuple(
        FieldChange(path, _get(current, path), value)
        for path, value in sorted(want.members.items())
        if current is None or not _same(_get(current, path), value)
    )
    if not managed:
        if current is None or changes:
            notes.append(
                f"{want.tenant} is read-only in the config: its partner settings for "
                f"{want.partner} differ from what the links need "
                f"({', '.join(c.field for c in changes) or 'no partner configuration'})"
            )
        return steps, notes
    path = f"{POLICY}/partners/{want.partner_id}"
    if current is None or changes:
        creating = current is None
        params: dict[str, Any] = {
            "path": path,
            "patch": nested({c.field: c.new for c in changes}),
            "object": partner_key,
        }
        if creating:
            # Settings go in the create body (graph-limits §6.1); a 409 falls back to the patch.
            params = {
                "path": f"{POLICY}/partners",
                "body": {"tenantId": want.partner_id, **nested(want.members)},
                "patch_path": path,
                "patch": nested(want.members),
                "object": partner_key,
                "fields": sorted(want.members),
            }
            summary = f"create partner configuration for {want.partner}"
        elif _origin(ledger, tenant_id, partner_key) == "created":
            summary = f"update partner configuration for {want.partner} (created by ctsync)"
        else:
            summary = (
                f"update ctsync's settings on the partner configuration for {want.partner} "
                "(not created by ctsync: its other settings stay as they are)"
            )
        steps.append(
            Step(
                id=pid,
                tenant=want.tenant,
                resource="partner",
                action="create" if creating else "update",
                summary=summary,
                links=want.links,
                changes=changes,
                params=params,
            )
        )
    if want.sync_link:
        steps.extend(_sync_policy_steps(want, live, path, pid, partner_exists=current is not None))
    return steps, notes


def _sync_policy_steps(
    want: PartnerWant, live: LiveTenant, path: str, pid: str, *, partner_exists: bool
) -> list[Step]:
    """Allow user sync in from the partner, and group sync for a link that syncs groups
    (``groupSyncInbound``, written on Graph's beta endpoint: the config opted in)."""
    sync = live.identity_sync.get(want.partner_id)
    allowed = _get(sync, "userSyncInbound.isSyncAllowed")
    groups = want.group_sync_link is not None
    groups_allowed = live.group_sync.get(want.partner_id) if groups else None
    users_needed = sync is None or allowed is not True
    groups_needed = groups and groups_allowed is not True
    if not users_needed and not groups_needed:
        return []
    creating = sync is None
    members: dict[str, Any] = {}
    changes: list[FieldChange] = []
    if users_needed:
        members["userSyncInbound"] = {"isSyncAllowed": True}
        changes.append(FieldChange("userSyncInbound.isSyncAllowed", allowed, True))
    if groups_needed:
        members["groupSyncInbound"] = {"isSyncAllowed": True}
        changes.append(FieldChange(GROUP_SYNC_FIELD, groups_allowed, True))
    what = " and ".join(
        w for w, needed in (("user", users_needed), ("group", groups_needed)) if needed
    )
    links = tuple(sorted({link for link in (want.sync_link, want.group_sync_link) if link}))
    return [
        Step(
            id=sync_step_id(want.tenant, want.partner),
            tenant=want.tenant,
            resource="identitySynchronization",
            action="create" if creating else "update",
            summary=f"allow {what} sync in from {want.partner}"
            + (" (Graph beta: groupSyncInbound)" if groups_needed else ""),
            links=links,
            changes=tuple(changes),
            depends_on=(pid,) if not partner_exists else (),
            params={
                "path": f"{path}/identitySynchronization",
                "object": object_key("identitySynchronization", want.partner_id),
                **({"beta": True} if groups_needed else {}),
                **(
                    {"body": {"displayName": want.partner, **members}}
                    if creating
                    else {"patch": members}
                ),
            },
        )
    ]


def default_step_id(tenant: str) -> str:
    return f"{tenant}/defaultPolicy"


def _default_steps(
    tenant: str, members: dict[str, Any], live: LiveTenant, managed: bool
) -> tuple[list[Step], list[str]]:
    """Bring the default cross-tenant access settings ``default_access`` names to the config;
    the policy's other settings stay as they are (the policy always exists: an update)."""
    changes = tuple(
        FieldChange(path, _get(live.default, path), value)
        for path, value in sorted(members.items())
        if not _same(_get(live.default, path), value)
    )
    if not changes:
        return [], []
    if not managed:
        fields = ", ".join(c.field for c in changes)
        return [], [
            f"{tenant} is read-only in the config: its default cross-tenant access settings "
            f"differ from default_access ({fields})"
        ]
    step = Step(
        id=default_step_id(tenant),
        tenant=tenant,
        resource="defaultPolicy",
        action="update",
        summary="update the default cross-tenant access settings ctsync manages (the others "
        "stay as they are)",
        changes=changes,
        params={
            "path": f"{POLICY}/default",
            "patch": nested({c.field: c.new for c in changes}),
            "object": DEFAULT_KEY,
        },
    )
    return [step], []


def cloud_step_id(tenant: str) -> str:
    return f"{tenant}/cloudEndpoints"


def _cloud_steps(
    tenant: str, need: dict[str, tuple[str, ...]], live: LiveTenant, managed: bool
) -> tuple[list[Step], list[str]]:
    """Add the other clouds the tenant's cross-cloud links need to ``allowedCloudEndpoints``;
    the values already there stay (the step reads the collection again when it runs)."""
    current = list(live.cloud_endpoints or [])
    missing = [e for e in need if e not in current]
    if not missing:
        return [], []
    links = tuple(sorted({k for e in missing for k in need[e]}))
    if not managed:
        # Preflight makes this an error (clouds.not-allowed); the plan only says so.
        why = (
            f"{tenant} is read-only in the config: its cross-tenant access policy does not "
            f"allow {', '.join(missing)} (allowedCloudEndpoints), which cross-cloud link(s) "
            f"{', '.join(links)} need"
        )
        return [], [why]
    step = Step(
        id=cloud_step_id(tenant),
        tenant=tenant,
        resource="crossTenantAccessPolicy",
        action="update",
        summary=f"allow collaboration with the Microsoft cloud(s) {', '.join(missing)} "
        "(allowedCloudEndpoints; the clouds already allowed stay)",
        links=links,
        changes=(FieldChange("allowedCloudEndpoints", current, [*current, *missing]),),
        params={"path": POLICY, "add": missing, "object": POLICY_KEY},
    )
    return [step], []


def _after_clouds(steps: list[Step], desired: DesiredState, wanted: Wants) -> list[Step]:
    """A tenant's partner settings for a tenant in another cloud wait for its cloud step."""
    planned = {s.id for s in steps}
    out: list[Step] = []
    for step in steps:
        cid = cloud_step_id(step.tenant)
        partner = desired.tenants.get(step.id.rsplit("/", 1)[-1])
        crosses = partner is not None and partner.cloud.endpoint in wanted.clouds.get(
            step.tenant, {}
        )
        waits = step.resource in {"partner", "identitySynchronization"} and cid in planned
        out.append(replace(step, depends_on=(*step.depends_on, cid)) if waits and crosses else step)
    return out


#: Step ids of a link's source-side steps: ``<link>/<suffix>``.
_LINK_STEPS = {
    "app": "app",
    "job": "job",
    "secrets": "secrets",
    "stage": "rollout-stage",
    "schema": "schema",
    "assign": "assignments",
    "unassign": "assignments/remove",
    "validate": "validate",
    "start": "start",
}


def _rollout_state(
    want: LinkWant, live: LiveLink, stage: int | None
) -> tuple[int | None, dict[str, str], dict[tuple[str, str], str]]:
    """(stage, secrets, principals in scope) for a link: a staged rollout decides who is
    assigned (and, at its last stage, SyncAll) by the stage recorded on the app, or the stage
    ``ctsync promote`` asks for."""
    rollout = want.link.sync.rollout
    if rollout is None:
        return None, want.secrets, dict(live.principals)
    if stage is None:
        recorded = live.stage
        stage = recorded[0] if recorded else 0
    secrets = desired_secrets(want.link, want.target, sync_all=rollout.sync_all(stage))
    chosen = {(p.kind, p.ref) for p in rollout.principals(stage)}
    return stage, secrets, {k: v for k, v in live.principals.items() if k in chosen}


def _saved_fingerprint(want: LinkWant, live: LiveLink, ledger: Ledger | None) -> str | None:
    """The fingerprint of the secrets the app holds: its tag; for an adopted app ctsync never
    wrote to (no tags), what `ctsync import` noted its saved settings to be."""
    if live.secrets_tag is not None or not live.adopted or ledger is None or not live.sp_id:
        return live.secrets_tag
    entry = ledger.entry(want.source.tenant_id, app_key(live.sp_id))
    noted = entry.get("secrets")
    return str(noted) if noted else None


def _secrets_summary(want: LinkWant, live: LiveLink) -> str:
    summary = "save the job's credentials and settings, and tag the app for this link"
    if live.untagged:
        return f"adopt the untagged configuration app {want.app_name!r}: " + summary
    return summary  # an adopted app's steps say so (_adopted_suffix)


def _adopted_suffix(live: LiveLink) -> str:
    """Steps on a configuration ctsync did not create say so (destroy releases it)."""
    sp = live.service_principal or {}
    if live.adopted or ADOPTED_TAG in (sp.get("tags") or []):
        return f" (adopted configuration {sp.get('displayName')!r}: not created by ctsync)"
    return ""


def _link_steps(
    link: LinkSpec,
    want: LinkWant,
    live: LiveLink,
    planned: set[str],
    *,
    stage: int | None = None,
    ledger: Ledger | None = None,
) -> list[Step]:
    key, source, sync = link.key, link.source, link.sync
    steps: list[Step] = []
    ids = {name: f"{key}/{suffix}" for name, suffix in _LINK_STEPS.items()}
    base = {"link": key, "sp_id": live.sp_id, "app_role_id": live.app_role_id}
    if live.job:
        base["job_id"] = live.job["id"]
    new_app = live.service_principal is None
    whose = _adopted_suffix(live)

    def step(name: str, **kwargs: Any) -> Step:
        params = {**base, **kwargs.pop("params", {})}
        kwargs["summary"] += whose
        return Step(id=ids[name], tenant=source, links=(key,), params=params, **kwargs)

    stage, secrets, in_scope = _rollout_state(want, live, stage)
    fingerprint = secrets_tag(secrets)
    rollout, live_stage = sync.rollout, live.stage
    # The app's tags as read (None: the app is created by this plan and tagged from there).
    current_tags = (
        list(live.service_principal.get("tags") or []) if live.service_principal else None
    )
    stage_moves = rollout is not None and (live_stage is None or live_stage[0] != stage)
    if new_app:
        steps.append(
            step(
                "app",
                resource="application",
                action="create",
                summary=f"create the CTS configuration app {want.app_name!r} from template "
                "(the next steps wait for its service principal to replicate)",
                changes=(FieldChange("displayName", None, want.app_name),),
                params={"display_name": want.app_name, "link_tag": want.tag},
            )
        )
    app_ready = (ids["app"],) if new_app else ()

    if live.job is None:
        steps.append(
            step(
                "job",
                resource="synchronizationJob",
                action="create",
                summary="create the synchronization job (Azure2Azure)",
                changes=(FieldChange("templateId", None, "Azure2Azure"),),
                depends_on=app_ready,
            )
        )
    if _saved_fingerprint(want, live, ledger) != fingerprint or (stage_moves and new_app):
        # Tags go on with the secrets: one PATCH names the link (a re-run's stable identity)
        # and fingerprints what was saved. A run killed before it leaves an untagged app, which
        # the next run finds by name and adopts here.
        tags = [MANAGED_TAG, want.tag, fingerprint, *([ADOPTED_TAG] if live.adopted else [])]
        steps.append(
            step(
                "secrets",
                resource="synchronizationSecrets",
                action="update" if live.service_principal else "create",
                summary=_secrets_summary(want, live),
                changes=(
                    *(FieldChange(k, None, v) for k, v in secrets.items()),
                    FieldChange(
                        "tags", live.service_principal and live.service_principal.get("tags"), tags
                    ),
                ),
                depends_on=app_ready,
                params={
                    "secrets": secrets,
                    "tags": tags,
                    "current_tags": current_tags,
                    "link_tag": want.tag,
                    "stage": stage if rollout is not None else None,
                },
            )
        )
    elif stage_moves:
        steps.append(
            step(
                "stage",
                resource="servicePrincipal",
                action="update",
                summary=f"record rollout stage {stage}: "
                + (rollout.describe(stage or 0) if rollout else ""),
                changes=(
                    FieldChange("rollout stage", live_stage[0] if live_stage else None, stage),
                ),
                params={
                    "stage": stage,
                    "tags": [
                        MANAGED_TAG,
                        want.tag,
                        fingerprint,
                        *([ADOPTED_TAG] if live.adopted else []),
                    ],
                    "current_tags": current_tags,
                },
            )
        )
    edits = schema_edits(sync)
    if live.template is not None:
        changes = schema_changes_full(live.schema, live.template, edits)
    else:
        changes = schema_changes(live.schema, edits)
    if changes:
        job_dep = (ids["job"],) if live.job is None else ()
        steps.append(
            step(
                "schema",
                resource="synchronizationSchema",
                action="update",
                summary="set attribute mappings and scoping (full schema PUT)",
                changes=changes,
                depends_on=job_dep,
                params={"edits": edits},
            )
        )
    assigned = {a.get("principalId"): a for a in live.assignments}
    wanted_ids = {v: k for k, v in in_scope.items()}
    missing = [
        (kind, ref, oid) for (kind, ref), oid in sorted(in_scope.items()) if oid not in assigned
    ]
    if missing:
        steps.append(
            step(
                "assign",
                resource="appRoleAssignments",
                action="create",
                summary=f"assign {len(missing)} principal(s) to the configuration app",
                changes=tuple(
                    FieldChange(f"{kind} {ref}", None, oid) for kind, ref, oid in missing
                ),
                depends_on=app_ready,
                params={"principals": [oid for _, _, oid in missing]},
            )
        )
    extra = [a for oid, a in assigned.items() if oid not in wanted_ids]
    if extra:
        steps.append(
            step(
                "unassign",
                resource="appRoleAssignments",
                action="delete",
                summary=(
                    f"unassign {len(extra)} principal(s): their users leave scope and are "
                    "soft-deleted in the target when delete is enabled"
                ),
                changes=tuple(
                    FieldChange(
                        f"{a.get('principalType', 'principal').lower()} "
                        f"{a.get('principalDisplayName') or a.get('principalId')}",
                        a.get("principalId"),
                        None,
                    )
                    for a in extra
                ),
                destructive=True,
                params={"assignments": [a["id"] for a in extra]},
            )
        )
    schedule = ((live.job or {}).get("schedule") or {}).get("state")
    if sync.start and schedule != "Active":
        target = link.target
        policy_deps = [
            s
            for s in (
                cloud_step_id(source),
                cloud_step_id(target),
                partner_step_id(target, source),
                sync_step_id(target, source),
                partner_step_id(source, target),
            )
            if s in planned
        ]
        # The saved credentials are the service principal's, not the job's: the test needs
        # the secrets written, not the job (``jobs/validateCredentials``), so it runs beside
        # the job's creation rather than after it.
        link_deps = [ids[n] for n in ("app", "secrets") if ids[n] in {s.id for s in steps}]
        steps.append(
            step(
                "validate",
                resource="credentials",
                action="action",
                summary="test the connection (validateCredentials) with the saved credentials",
                depends_on=tuple(policy_deps + link_deps),
            )
        )
        later = [ids[n] for n in ("job", "schema", "assign") if ids[n] in {s.id for s in steps}]
        steps.append(
            step(
                "start",
                resource="synchronizationJob",
                action="action",
                summary="start the synchronization job",
                changes=(FieldChange("schedule.state", schedule, "Active"),),
                depends_on=(ids["validate"], *later),
            )
        )
    return steps


def _app_ref(sp: dict[str, Any]) -> str:
    job = sp.get("job")
    state = ((job or {}).get("schedule") or {}).get("state") if job else None
    runs = f", job {state}" if state else (", with a job" if job else ", no job")
    return f"{sp.get('displayName')!r} (service principal {sp.get('id')}{runs})"


def link_problems(key: str, tenant: str, live: LiveLink) -> list[Problem]:
    """Duplicate or ambiguous configuration apps of one link, with what to do about them."""
    problems: list[Problem] = []
    if live.duplicates and live.service_principal is not None:
        kept = _app_ref({**live.service_principal, "job": live.job})
        others = "; ".join(_app_ref(d) for d in live.duplicates)
        problems.append(
            Problem(
                link=key,
                tenant=tenant,
                code="duplicate-apps",
                message=(
                    f"{len(live.duplicates) + 1} configuration apps in {tenant} carry the tag "
                    f"of link {key}. ctsync keeps and manages {kept}; also tagged: {others}"
                    + (
                        f" — a duplicate with a job provisions into {key.partition(':')[2]} as well"
                        if any(d.get("job") for d in live.duplicates)
                        else ""
                    )
                ),
                remedy=f"ctsync destroy --duplicates --link {key}",
                objects=tuple(str(d.get("id")) for d in live.duplicates),
            )
        )
    if live.ambiguous:
        names = "; ".join(_app_ref(d) for d in live.ambiguous)
        problems.append(
            Problem(
                link=key,
                tenant=tenant,
                code="ambiguous-apps",
                severity="error",
                message=(
                    f"{len(live.ambiguous)} untagged configuration apps in {tenant} have the "
                    f"name of link {key}'s app and ctsync cannot tell which one it made, so it "
                    f"plans nothing for this link: {names}"
                ),
                remedy=(
                    "delete the app(s) you do not want in the Entra admin center (Enterprise "
                    "applications), keep at most one, then run `ctsync plan` again"
                ),
                objects=tuple(str(d.get("id")) for d in live.ambiguous),
            )
        )
    return problems


def coexistence_problems(
    want: LinkWant, live: LiveLink, source: LiveTenant, target_id: str
) -> list[Problem]:
    """Configurations ctsync does not manage in the link's source that serve (or may serve)
    its target, and an ``adopt:`` that names nothing: ctsync never plans a second
    configuration beside one it cannot rule out."""
    key, tenant = want.key, want.source.name
    problems: list[Problem] = []
    if live.adopt_missing:
        problems.append(
            Problem(
                link=key,
                tenant=tenant,
                code="adopt-missing",
                severity="error",
                message=f"link {key} adopts service principal {live.adopt_missing}, but "
                f"{tenant} holds no cross-tenant sync configuration with that id",
                remedy="check the id: `ctsync import` lists every configuration it finds",
                objects=(live.adopt_missing,),
            )
        )
    for other in source.foreign:
        ref = _app_ref(other)
        sp_id = str(other.get("id"))
        if other.get("target") == target_id:
            problems.append(
                Problem(
                    link=key,
                    tenant=tenant,
                    code="existing-configuration",
                    severity="error",
                    message=f"{tenant} already synchronizes into {want.target.name} through a "
                    f"configuration ctsync does not manage: {ref}, identified by its "
                    f"{other.get('how')}. A second one would provision the same users twice",
                    remedy=f"bring it under ctsync: add `adopt: {sp_id}` to link {key} "
                    f"(`ctsync import --link {key}={sp_id}` writes it with its settings), or "
                    "leave that configuration alone and remove this link from the config",
                    objects=(sp_id,),
                )
            )
        elif other.get("target") is None:
            problems.append(
                Problem(
                    link=key,
                    tenant=tenant,
                    code="unidentified-configuration",
                    severity="error",
                    message=f"{tenant} has a cross-tenant sync configuration ctsync does not "
                    f"manage and cannot tell which tenant it synchronizes into: {ref} (its "
                    "name is not MTO_Sync_<tenant id> and its job has no provisioning log). "
                    f"It may already serve {want.target.name}",
                    remedy=f"if it serves {want.target.name}, add `adopt: {sp_id}` to link "
                    f"{key}; otherwise name its target under "
                    f"tenants.{tenant}.unmanaged_configurations ({sp_id}: <tenant>)",
                    objects=(sp_id,),
                )
            )
    return problems


def plan_changes(
    desired: DesiredState,
    live: LiveState,
    wanted: Wants | None = None,
    *,
    stages: dict[str, int] | None = None,
    links: Sequence[str] = (),
    ledger: Ledger | None = None,
) -> Plan:
    """Every step that makes the live state match ``desired``.

    ``stages`` moves staged rollouts to the given stage (what ``ctsync promote`` does);
    ``links`` is recorded in the plan as the selection it was made for; ``ledger`` says which
    objects ctsync created (the plan says so).
    """
    wanted = wanted or wants(desired)
    steps: list[Step] = []
    notes: list[str] = []
    problems: list[Problem] = []
    for pkey in sorted(wanted.partners):
        pw = wanted.partners[pkey]
        spec = desired.tenants[pw.tenant]
        more, why = _partner_steps(
            pw, live.tenants[pw.tenant], spec.managed, tenant_id=spec.tenant_id, ledger=ledger
        )
        steps.extend(more)
        notes.extend(why)
    for name, members in sorted(wanted.defaults.items()):
        more, why = _default_steps(name, members, live.tenants[name], desired.tenants[name].managed)
        steps.extend(more)
        notes.extend(why)
    for name, need in sorted(wanted.clouds.items()):
        more, why = _cloud_steps(name, need, live.tenants[name], desired.tenants[name].managed)
        steps.extend(more)
        notes.extend(why)
    steps = _after_clouds(steps, desired, wanted)
    handoff: list[Step] = []
    if wanted.organization is not None:
        more, why, handoff = organization_steps(desired, live, wanted.organization)
        steps.extend(more)
        notes.extend(why)
    planned = {s.id for s in steps}
    for key in sorted(wanted.links):
        want = wanted.links[key]
        found = link_problems(key, want.source.name, live.links[key])
        found += coexistence_problems(
            want, live.links[key], live.tenants[want.source.name], want.target.tenant_id
        )
        problems.extend(found)
        if any(p.severity == "error" for p in found):
            continue  # ctsync does not guess: nothing is planned for this link
        steps.extend(
            _link_steps(
                want.link,
                want,
                live.links[key],
                planned,
                stage=(stages or {}).get(key),
                ledger=ledger,
            )
        )
    return Plan(
        kind="apply",
        config_path=str(desired.path),
        config_hash=desired.config_hash,
        live_hash=live.fingerprint(),
        steps=tuple(steps),
        notes=tuple(notes),
        links=tuple(links),
        problems=tuple(problems),
        handoff=tuple(handoff),
    )


def _release_steps(key: str, source: str, link: LiveLink) -> list[Step]:
    """Let go of an adopted configuration: pause its job, remove ctsync's tags. It stays."""
    sp = link.service_principal or {}
    name = sp.get("displayName")
    base = {"link": key, "sp_id": link.sp_id}
    steps: list[Step] = []
    state = ((link.job or {}).get("schedule") or {}).get("state")
    if link.job and state == "Active":
        steps.append(
            Step(
                id=f"{key}/job/pause",
                tenant=source,
                resource="synchronizationJob",
                action="update",
                summary=f"pause the job of the adopted configuration {name!r} (ctsync did not "
                "create it: the configuration stays, with its users; delete it with "
                "--delete-adopted)",
                links=(key,),
                changes=(FieldChange("schedule.state", state, "Paused"),),
                destructive=True,
                params={**base, "job_id": link.job["id"]},
            )
        )
    tags = list(sp.get("tags") or [])
    if any(t.startswith("ctsync:") for t in tags):
        steps.append(
            Step(
                id=f"{key}/release",
                tenant=source,
                resource="servicePrincipal",
                action="update",
                summary=f"release the adopted configuration {name!r}: remove ctsync's tags",
                links=(key,),
                changes=(
                    FieldChange("tags", tags, [t for t in tags if not t.startswith("ctsync:")]),
                ),
                depends_on=tuple(s.id for s in steps),
                destructive=True,
                params={**base, "release": True, "current_tags": tags},
            )
        )
    return steps


def _duplicate_steps(key: str, source: str, link: LiveLink) -> list[Step]:
    """Delete each duplicate app of a link: its job first, then the app."""
    steps: list[Step] = []
    for dup in link.duplicates:
        sp_id = str(dup.get("id"))
        base = {"link": key, "sp_id": sp_id, "app_id": dup.get("appId")}
        prefix = f"{key}/duplicate/{sp_id}"
        after: tuple[str, ...] = ()
        job = dup.get("job")
        if job:
            steps.append(
                Step(
                    id=f"{prefix}/job/delete",
                    tenant=source,
                    resource="synchronizationJob",
                    action="delete",
                    summary=f"stop and delete the duplicate app's job {job.get('id')}",
                    links=(key,),
                    changes=(FieldChange("job", job.get("id"), None),),
                    destructive=True,
                    params={**base, "job_id": job.get("id")},
                )
            )
            after = (f"{prefix}/job/delete",)
        steps.append(
            Step(
                id=f"{prefix}/app/delete",
                tenant=source,
                resource="application",
                action="delete",
                summary=f"delete the duplicate configuration app {dup.get('displayName')!r} "
                f"(service principal {sp_id}); the app ctsync keeps stays",
                links=(key,),
                changes=(FieldChange("servicePrincipal", sp_id, None),),
                depends_on=after,
                destructive=True,
                params=base,
            )
        )
    return steps


def duplicates_plan(desired: DesiredState, live: LiveState, wanted: Wants) -> Plan:
    """Delete only the duplicate apps of the links of ``wanted``; the kept app is untouched."""
    steps: list[Step] = []
    for key in sorted(wanted.links):
        steps.extend(_duplicate_steps(key, wanted.links[key].source.name, live.links[key]))
    return Plan(
        kind="destroy",
        config_path=str(desired.path),
        config_hash=desired.config_hash,
        live_hash=live.fingerprint(),
        steps=tuple(steps),
    )


#: Partner members Graph computes or owns, not settings anyone set.
_READ_ONLY_MEMBERS = frozenset({"tenantId", "isInMultiTenantOrganization"})


def unmanaged_settings(obj: dict[str, Any] | None, managed: Iterable[str]) -> list[str]:
    """The settings set on ``obj`` (a partner configuration) that are not in ``managed``:
    every member path with a value other than null, outside the managed paths. An entry the
    multitenant organization made (``isInMultiTenantOrganization``) counts as set."""
    paths = set(managed)
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if path in paths:
            return
        if isinstance(value, dict):
            for key, inner in value.items():
                if not key.startswith("@"):
                    walk(inner, f"{path}.{key}")
            return
        if value is not None:
            found.append(path)

    for member, value in sorted((obj or {}).items()):
        if member.startswith("@") or member in _READ_ONLY_MEMBERS:
            if member == "isInMultiTenantOrganization" and value is True:
                found.append(member)
            continue
        walk(value, member)
    return found


def _partner_teardown(
    pw: PartnerWant,
    tenant: LiveTenant,
    keep: PartnerWant | None,
    *,
    tenant_id: str,
    ledger: Ledger | None,
    after: tuple[str, ...],
    notes: list[str],
) -> list[Step]:
    """What destroy does to one partner configuration and its identitySynchronization.

    Deleted only when ctsync created it (the ledger) and nothing it does not manage is set on
    it; otherwise the destroyed links' fields go back: on an object ctsync created to ``null``
    (inherit the default), on one it did not to what they held before ctsync changed them (the
    ledger). A field ctsync has no record of changing — it already held what the config wants,
    or the ledger is lost — stays as it is (``notes`` says so), as does everything else.
    """
    steps: list[Step] = []
    current = tenant.partners.get(pw.partner_id)
    path = f"{POLICY}/partners/{pw.partner_id}"
    partner_key = object_key("partner", pw.partner_id)

    def created(key: str) -> bool:
        return ledger is not None and ledger.created(tenant_id, key)

    def restore(key: str, obj: dict[str, Any] | None, fields: list[str]) -> dict[str, Any]:
        """Field → the value it goes back to, for the fields ctsync changed that differ."""
        was = {} if ledger is None else ledger.before(tenant_id, key)
        back = {f: None if created(key) else was[f] for f in fields if created(key) or f in was}
        if unknown := [f for f in fields if f not in back and _get(obj, f) is not None]:
            notes.append(
                f"{pw.tenant}: {', '.join(unknown)} on the {key.partition(':')[0]} for "
                f"{pw.partner} stay as they are: ctsync has no record of changing them"
            )
        return {f: v for f, v in back.items() if not _same(_get(obj, f), v)}

    sync_steps, sync_stays = _sync_teardown(
        pw, tenant, keep, path=path, after=after, created=created, restore=restore
    )
    steps.extend(sync_steps)
    sync_gone = tuple(step.id for step in sync_steps)
    if current is None:
        return steps
    kept = set(keep.members) if keep else set()
    gone = [p for p in sorted(pw.members) if p not in kept]
    if not gone:
        return steps
    others = unmanaged_settings(current, pw.members)
    pid = partner_step_id(pw.tenant, pw.partner)
    if not kept and created(partner_key) and not others and not sync_stays:
        steps.append(
            Step(
                id=f"{pid}/delete",
                tenant=pw.tenant,
                resource="partner",
                action="delete",
                summary=f"delete the partner configuration for {pw.partner} (created by ctsync; "
                "nothing else is set on it)",
                links=pw.links,
                changes=(FieldChange("partner", pw.partner_id, None),),
                depends_on=after + sync_gone,
                destructive=True,
                params={"path": path, "object": partner_key},
            )
        )
        return steps
    revert = restore(partner_key, current, gone)
    if not revert:
        return steps
    why = []
    if kept:
        why.append("another link still uses it")
    elif not created(partner_key):
        why.append("ctsync did not create it")
    if others:
        why.append(f"settings ctsync does not manage are on it: {', '.join(others)}")
    elif sync_stays and not kept:
        why.append("an identitySynchronization ctsync did not create hangs off it")
    steps.append(
        Step(
            id=f"{pid}/revert",
            tenant=pw.tenant,
            resource="partner",
            action="update",
            summary=f"set ctsync's settings on the partner configuration for {pw.partner} back "
            f"to what they were before it; the configuration stays ({'; '.join(why)})",
            links=pw.links,
            changes=tuple(FieldChange(p, _get(current, p), v) for p, v in revert.items()),
            depends_on=after + sync_gone,
            destructive=True,
            params={
                "path": path,
                "patch": nested(revert),
                "object": partner_key,
                "revert": sorted(revert),
            },
        )
    )
    return steps


def _sync_teardown(
    pw: PartnerWant,
    tenant: LiveTenant,
    keep: PartnerWant | None,
    *,
    path: str,
    after: tuple[str, ...],
    created: Callable[[str], bool],
    restore: Callable[[str, dict[str, Any] | None, list[str]], dict[str, Any]],
) -> tuple[list[Step], bool]:
    """The identitySynchronization's part of :func:`_partner_teardown`: deleted when ctsync
    created it and user sync goes; otherwise the fields that go (user sync, the beta group
    sync) back to what they held. Returns the steps and whether the policy stays."""
    sync_key = object_key("identitySynchronization", pw.partner_id)
    stays = pw.partner_id in tenant.identity_sync
    users_go = bool(pw.sync_link) and not (keep and keep.sync_link)
    groups_go = bool(pw.group_sync_link) and not (keep and keep.group_sync_link)
    if not stays or not (users_go or groups_go):
        return [], stays
    sync = dict(tenant.identity_sync[pw.partner_id])
    if pw.partner_id in tenant.group_sync:
        sync["groupSyncInbound"] = {"isSyncAllowed": tenant.group_sync[pw.partner_id]}
    links = tuple(sorted({link for link in (pw.sync_link, pw.group_sync_link) if link}))
    if users_go and created(sync_key):
        return [
            Step(
                id=f"{sync_step_id(pw.tenant, pw.partner)}/delete",
                tenant=pw.tenant,
                resource="identitySynchronization",
                action="delete",
                summary=f"stop allowing user sync in from {pw.partner} (delete the "
                "identitySynchronization ctsync created)",
                links=links,
                changes=(FieldChange("identitySynchronization", "present", None),),
                depends_on=after,
                destructive=True,
                params={"path": f"{path}/identitySynchronization", "object": sync_key},
            )
        ], False
    going = [("userSyncInbound.isSyncAllowed", users_go), (GROUP_SYNC_FIELD, groups_go)]
    back = restore(sync_key, sync, [f for f, go in going if go])
    if not back:
        return [], True
    what = " and ".join(f.partition("SyncInbound")[0] for f in sorted(back, reverse=True))
    return [
        Step(
            id=f"{sync_step_id(pw.tenant, pw.partner)}/revert",
            tenant=pw.tenant,
            resource="identitySynchronization",
            action="update",
            summary=f"set inbound {what} sync from {pw.partner} back to what it was before "
            "ctsync (ctsync did not create this setting: it stays)",
            links=links,
            changes=tuple(FieldChange(f, _get(sync, f), was) for f, was in sorted(back.items())),
            depends_on=after,
            destructive=True,
            params={
                "path": f"{path}/identitySynchronization",
                "patch": nested(back),
                "object": sync_key,
                "revert": sorted(back),
                **({"beta": True} if GROUP_SYNC_FIELD in back else {}),
            },
        )
    ], True


def _default_teardown(
    name: str, tenant: LiveTenant, *, tenant_id: str, ledger: Ledger | None, reset: bool
) -> list[Step]:
    """The default policy is a singleton: never deleted. Its fields ctsync changed go back to
    what they were before (the ledger); ``reset`` resets the whole policy to Microsoft's
    defaults instead (``resetToSystemDefault``: settings ctsync did not make go too)."""
    sid = default_step_id(name)
    if reset:
        return [
            Step(
                id=f"{sid}/reset",
                tenant=name,
                resource="defaultPolicy",
                action="action",
                summary="reset the whole default cross-tenant access policy to Microsoft's "
                "defaults (--reset-default-policy: settings ctsync did not make are reset too)",
                changes=(
                    FieldChange(
                        "isServiceDefault", (tenant.default or {}).get("isServiceDefault"), True
                    ),
                ),
                destructive=True,
                params={"path": f"{POLICY}/default/resetToSystemDefault", "object": DEFAULT_KEY},
            )
        ]
    was = ledger.before(tenant_id, DEFAULT_KEY) if ledger is not None else {}
    revert = {p: v for p, v in was.items() if not _same(_get(tenant.default, p), v)}
    if not revert:
        return []
    return [
        Step(
            id=f"{sid}/revert",
            tenant=name,
            resource="defaultPolicy",
            action="update",
            summary="set ctsync's default cross-tenant access settings back to what they were "
            "before it (the policy stays: it is a singleton)",
            changes=tuple(FieldChange(p, _get(tenant.default, p), v) for p, v in revert.items()),
            destructive=True,
            params={
                "path": f"{POLICY}/default",
                "patch": nested(revert),
                "object": DEFAULT_KEY,
                "revert": sorted(revert),
            },
        )
    ]


def _cloud_teardown(
    name: str,
    tenant: LiveTenant,
    staying: dict[str, tuple[str, ...]],
    *,
    tenant_id: str,
    ledger: Ledger | None,
    after: tuple[str, ...],
) -> list[Step]:
    """Take out of ``allowedCloudEndpoints`` only the clouds ctsync added (the ledger) that no
    remaining link needs; a cloud the tenant allowed before ctsync stays. Last: after the
    partner settings and configurations that worked across them are gone."""
    added = ledger.added(tenant_id, POLICY_KEY) if ledger is not None else []
    current = list(tenant.cloud_endpoints or [])
    gone = [e for e in added if e in current and e not in staying]
    if not gone:
        return []
    return [
        Step(
            id=f"{cloud_step_id(name)}/revert",
            tenant=name,
            resource="crossTenantAccessPolicy",
            action="update",
            summary=f"stop allowing collaboration with {', '.join(gone)} (added by ctsync; "
            "clouds allowed before it stay)",
            changes=(
                FieldChange(
                    "allowedCloudEndpoints", current, [e for e in current if e not in gone]
                ),
            ),
            depends_on=after,
            destructive=True,
            params={"path": POLICY, "remove": gone, "object": POLICY_KEY},
        )
    ]


def destroy_plan(
    desired: DesiredState,
    live: LiveState,
    wanted: Wants,
    *,
    keep_users: bool,
    remaining: Wants,
    ledger: Ledger | None = None,
    delete_adopted: bool = False,
    reset_default: bool = False,
) -> Plan:
    """Tear the links of ``wanted`` down in the documented order (reference §1.4).

    ``remaining`` holds what the links that stay need: a partner configuration shared with a
    link that stays is trimmed of the destroyed link's settings instead of deleted. Duplicate
    apps of a link (they carry its tag) go with it. A configuration the link adopted is
    released — its job paused, ctsync's tags removed — and deleted only with
    ``delete_adopted``. A tenant no remaining link touches gets its default policy settings
    back (``reset_default``: the whole policy reset to Microsoft's defaults).
    """
    steps: list[Step] = []
    problems: list[Problem] = []
    notes: list[str] = []
    for key in sorted(wanted.links):
        want = wanted.links[key]
        link = live.links[key]
        # Untagged look-alikes are not ctsync's to delete: they stay, and the plan says so
        # (without stopping the rest of the teardown).
        problems.extend(
            replace(p, severity="warning")
            for p in link_problems(key, want.source.name, link)
            if p.code == "ambiguous-apps"
        )
        if link.service_principal is None:
            continue
        source = want.source.name
        steps.extend(_duplicate_steps(key, source, link))
        adopted = link.adopted or ADOPTED_TAG in (link.service_principal.get("tags") or [])
        if adopted and not delete_adopted:
            steps.extend(_release_steps(key, source, link))
            continue
        base = {"link": key, "sp_id": link.sp_id, "app_id": link.service_principal.get("appId")}
        previous: tuple[str, ...] = ()
        if link.assignments and not keep_users:
            steps.append(
                Step(
                    id=f"{key}/assignments/remove",
                    tenant=source,
                    resource="appRoleAssignments",
                    action="delete",
                    summary=(
                        f"unassign {len(link.assignments)} principal(s) and wait for a cycle "
                        "to deprovision their users in the target"
                    ),
                    links=(key,),
                    changes=tuple(
                        FieldChange(
                            f"assignment {a.get('principalDisplayName') or a.get('principalId')}",
                            a.get("principalId"),
                            None,
                        )
                        for a in link.assignments
                    ),
                    destructive=True,
                    params={
                        **base,
                        "assignments": [a["id"] for a in link.assignments],
                        "job_id": (link.job or {}).get("id"),
                        "wait_for_cycle": True,
                    },
                )
            )
            previous = (f"{key}/assignments/remove",)
        if link.job:
            steps.append(
                Step(
                    id=f"{key}/job/delete",
                    tenant=source,
                    resource="synchronizationJob",
                    action="delete",
                    summary="stop and delete the synchronization job (synced users stay)",
                    links=(key,),
                    changes=(FieldChange("job", link.job["id"], None),),
                    depends_on=previous,
                    destructive=True,
                    params={**base, "job_id": link.job["id"]},
                )
            )
            previous = (f"{key}/job/delete",)
        steps.append(
            Step(
                id=f"{key}/app/delete",
                tenant=source,
                resource="application",
                action="delete",
                summary="delete the configuration app "
                + repr(link.service_principal.get("displayName")),
                links=(key,),
                changes=(FieldChange("servicePrincipal", link.sp_id, None),),
                depends_on=previous,
                destructive=True,
                params=base,
            )
        )
    app_steps = {s.links[0]: s.id for s in steps if s.resource == "application"}
    for pkey in sorted(wanted.partners):
        pw = wanted.partners[pkey]
        if desired.tenants[pw.tenant].managed:
            after_apps = tuple(app_steps[k] for k in pw.links if k in app_steps)
            steps.extend(
                _partner_teardown(
                    pw,
                    live.tenants[pw.tenant],
                    remaining.partners.get(pkey),
                    tenant_id=desired.tenants[pw.tenant].tenant_id,
                    ledger=ledger,
                    after=after_apps,
                    notes=notes,
                )
            )
    for name in sorted(wanted.clouds):
        spec = desired.tenants[name]
        if spec.managed:
            after = tuple(s.id for s in steps if s.tenant == name and s.resource != "application")
            steps.extend(
                _cloud_teardown(
                    name,
                    live.tenants[name],
                    remaining.clouds.get(name, {}),
                    tenant_id=spec.tenant_id,
                    ledger=ledger,
                    after=after + tuple(app_steps.values()),
                )
            )
    staying = {t for lw in remaining.links.values() for t in (lw.source.name, lw.target.name)}
    for name in sorted(wanted.defaults):
        spec = desired.tenants[name]
        if spec.managed and name not in staying:
            steps.extend(
                _default_teardown(
                    name,
                    live.tenants[name],
                    tenant_id=spec.tenant_id,
                    ledger=ledger,
                    reset=reset_default,
                )
            )
    if wanted.organization is not None:
        more, why = organization_teardown(desired, live, wanted.organization, ledger=ledger)
        steps.extend(more)
        notes.extend(why)
    return Plan(
        kind="destroy",
        config_path=str(desired.path),
        config_hash=desired.config_hash,
        live_hash=live.fingerprint(),
        steps=tuple(steps),
        notes=tuple(notes),
        problems=tuple(problems),
    )
