"""Seeding cross-tenant sync as admins leave it: the default policy, partners, and CTS
configurations made in the portal or by the multitenant-organization (MTO) wizard, with jobs
that have already run.

Every object goes through the service code the matching API call runs (``PATCH …/default``,
``POST …/partners``, ``PUT …/identitySynchronization``, ``POST …/instantiate``, ``PUT
secrets``, ``POST jobs``, ``PUT schema``, ``POST appRoleAssignedTo``, ``start``, ``pause``), so
a seeded object is exactly what the API would hold, and is checked the same way (a refused
body is a :class:`ScenarioError` naming where). A job's history runs on the provisioning engine
(``engine.cycles.run_now``) at past instants on the grid of the cycle interval: the last cycle
half an interval ago, the ones before it an interval apart. Seeded objects are old: none of
them (nor the users the history created in a target) is subject to replication lag.

The keys are described in ``ctsync/emulator/scenarios/__init__.py`` and ``docs/emulator.md``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctsync.emulator.core.errors import GraphFault
from ctsync.emulator.scenarios._common import (
    ScenarioError,
    SeededTenant,
    need,
    resolve_tenant_id,
)
from ctsync.emulator.services import azure2azure as a2a
from ctsync.emulator.state import ServicePrincipalSync, SyncJobRecord, Tenant

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator

__all__ = ["MAX_HISTORY", "portal_secrets", "seed"]

#: The most provisioning cycles a seeded job may have run (about four weeks of cycles).
MAX_HISTORY = 1000
JOB_STATES = ("Active", "Paused", "Disabled")

_CONFIG_KEYS = frozenset(
    {
        "display_name",
        "target",
        "job",
        "secrets",
        "assigned",
        "scoping_filter",
        "mapping_edits",
        "history",
    }
)
_EDIT_KEYS = frozenset(
    {"target", "constant", "attribute", "expression", "remove", "flow_type", "default_value"}
)
_SOURCE_KEYS = ("constant", "attribute", "expression", "remove")
_FUNCTION_CALL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)\s*\(")
_QUOTED = re.compile(r"\s*'((?:[^']|'')*)'\s*(?:,|$)")
_ARITY = {name: arity for name, arity, _, _ in a2a.FILTER_OPERATORS}
#: Longest first, so ``NOT REGEX MATCH`` wins over ``NOT EQUALS``-like prefixes.
_OPERATORS = sorted(_ARITY, key=len, reverse=True)


def portal_secrets(target_id: str) -> list[dict[str, str]]:
    """What the portal (and Microsoft's Graph walkthrough, S9) saves for a configuration:
    ``SyncPolicy`` authentication, the target tenant, notifications and the accidental-deletion
    threshold off, and "Sync only assigned users and groups"."""
    return [
        {"key": "AuthenticationType", "value": "SyncPolicy"},
        {"key": "CompanyId", "value": target_id},
        {
            "key": "SyncNotificationSettings",
            "value": '{"Enabled":false,"DeleteThresholdEnabled":false,'
            '"HumanResourcesLookaheadQueryEnabled":false}',
        },
        {"key": "SyncAll", "value": "false"},
    ]


@contextmanager
def _graph(where: str) -> Iterator[None]:
    """Around a service call: its Graph error becomes a :class:`ScenarioError` naming where."""
    try:
        yield
    except GraphFault as exc:
        msg = f"{where}: {exc.message}"
        raise ScenarioError(msg) from exc


def seed(emulator: Emulator, seeded: list[SeededTenant]) -> None:
    """The cross-tenant keys of every tenant of a scenario, in dependency order: default
    policies and partners (sync configurations check them), then configurations, then the
    history of their jobs."""
    for entry in seeded:
        _seed_default_policy(entry)
    for entry in seeded:
        _seed_partners(emulator, entry)
    before = {tid: set(t.created_at) for tid, t in emulator.tenants.items()}
    configs: list[_Config] = []
    for entry in seeded:
        configs.extend(_seed_configurations(emulator, entry))
    if configs:
        _run_history(emulator, configs)
    # Seeded objects are old: nothing they brought (users a history created) is replicating.
    for tid, tenant in emulator.tenants.items():
        for key in set(tenant.created_at) - before.get(tid, set()):
            del tenant.created_at[key]
    # Jobs were added and started outside any request: queue every job's next event afresh.
    emulator.cycle_queue.rebuild()


# -- default policy and partners -------------------------------------------------------------


def _seed_default_policy(entry: SeededTenant) -> None:
    """``"default_policy": {...}``: changes to the default settings, applied as a PATCH."""
    from ctsync.emulator.services.policies import apply_default_changes

    spec = entry.spec.get("default_policy")
    if spec is None:
        return
    where = f"{entry.where}.default_policy"
    if not isinstance(spec, dict):
        msg = f"{where} must be an object"
        raise ScenarioError(msg)
    with _graph(where):
        apply_default_changes(entry.tenant, copy.deepcopy(spec))


def _seed_partners(emulator: Emulator, entry: SeededTenant) -> None:
    """``"partners": [{"tenantId": ..., ..., "identitySynchronization": {...}}]``: bodies as
    POSTed (a tenant name stands for its id), each with its identitySynchronization as PUT."""
    from ctsync.emulator.services.policies import add_identity_sync, add_partner

    spec = entry.spec.get("partners")
    if spec is None:
        return
    if not isinstance(spec, list):
        msg = f"{entry.where}.partners must be a list"
        raise ScenarioError(msg)
    for i, raw in enumerate(spec):
        where = f"{entry.where}.partners[{i}]"
        if not isinstance(raw, dict):
            msg = f"{where} must be an object"
            raise ScenarioError(msg)
        body = copy.deepcopy(raw)
        identity_sync = body.pop("identitySynchronization", None)
        tenant_id = resolve_tenant_id(
            emulator, body.get("tenantId"), f"{where}.tenantId", guid_ok=True
        )
        body["tenantId"] = tenant_id
        with _graph(where):
            add_partner(entry.tenant, body)
        if identity_sync is None:
            continue
        sync_where = f"{where}.identitySynchronization"
        if not isinstance(identity_sync, dict):
            msg = f"{sync_where} must be an object"
            raise ScenarioError(msg)
        if "tenantId" in identity_sync:
            identity_sync["tenantId"] = resolve_tenant_id(
                emulator, identity_sync["tenantId"], f"{sync_where}.tenantId", guid_ok=True
            )
        with _graph(sync_where):
            add_identity_sync(entry.tenant, tenant_id, identity_sync)


# -- cross-tenant synchronization configurations ---------------------------------------------


@dataclass
class _Config:
    """A seeded configuration with a job, waiting for its history and final state."""

    tenant: Tenant
    sync: ServicePrincipalSync
    record: SyncJobRecord
    state: str
    history: int
    #: When its cycles run (empty without history).
    cycles: list[datetime]
    where: str


def _seed_configurations(emulator: Emulator, entry: SeededTenant) -> list[_Config]:
    spec = entry.spec.get("cts_configurations")
    if spec is None:
        return []
    if not isinstance(spec, list):
        msg = f"{entry.where}.cts_configurations must be a list"
        raise ScenarioError(msg)
    out = []
    for i, raw in enumerate(spec):
        config = _seed_configuration(emulator, entry, raw, f"{entry.where}.cts_configurations[{i}]")
        if config is not None:
            out.append(config)
    return out


def _history(spec: dict[str, Any], state: str | None, where: str) -> int:
    history = spec.get("history", 0)
    if isinstance(history, bool) or not isinstance(history, int):
        history = -1
    if not 0 <= history <= MAX_HISTORY:
        msg = f"{where}.history must be a whole number from 0 to {MAX_HISTORY}"
        raise ScenarioError(msg)
    if history and state not in {"Active", "Paused"}:
        msg = (
            f"{where}.history: only a started job has run cycles "
            '(give "job": {"state": "Active"} or "Paused")'
        )
        raise ScenarioError(msg)
    return history


def _job_state(spec: dict[str, Any], where: str) -> str | None:
    job = spec.get("job")
    if job is None:
        return None
    if not isinstance(job, dict):
        msg = f'{where}.job must be an object such as {{"state": "Active"}}'
        raise ScenarioError(msg)
    unknown = sorted(set(job) - {"state"})
    if unknown:
        msg = f"{where}.job: unknown key {unknown[0]!r} (a job takes only 'state')"
        raise ScenarioError(msg)
    state = job.get("state", "Active")
    if state not in JOB_STATES:
        msg = f"{where}.job.state must be one of {', '.join(JOB_STATES)}; got {state!r}"
        raise ScenarioError(msg)
    return str(state)


def _seed_configuration(
    emulator: Emulator, entry: SeededTenant, spec: Any, where: str
) -> _Config | None:
    from ctsync.emulator.services.applications import new_instance
    from ctsync.emulator.services.synchronization import new_job_record

    if not isinstance(spec, dict):
        msg = f"{where} must be an object"
        raise ScenarioError(msg)
    unknown = sorted(set(spec) - _CONFIG_KEYS)
    if unknown:
        msg = f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_CONFIG_KEYS))})"
        raise ScenarioError(msg)
    tenant = entry.tenant
    target_id = resolve_tenant_id(emulator, spec.get("target"), f"{where}.target", guid_ok=False)
    if target_id == tenant.id:
        msg = f"{where}.target: a configuration synchronizes into another tenant, not its own"
        raise ScenarioError(msg)
    display_name = need(spec, "display_name", str, where).replace("{target}", target_id)
    if not display_name.strip():
        msg = f"{where}.display_name must not be empty"
        raise ScenarioError(msg)
    state = _job_state(spec, where)
    history = _history(spec, state, where)
    now = emulator.clock.now()
    interval = timedelta(seconds=emulator.provisioning.interval)
    # The history's cycles: the last half an interval ago, the others an interval apart.
    cycles = [now - interval / 2 - interval * (history - 1 - j) for j in range(history)]
    created = cycles[0] if cycles else now

    application, sp = new_instance(
        emulator.ids, tenant, a2a.CTS_TEMPLATE_ID, display_name, now=created
    )
    tenant.applications[application["id"]] = application
    tenant.service_principals[sp["id"]] = sp
    sync = tenant.synchronization.setdefault(sp["id"], ServicePrincipalSync())
    _seed_secrets(sync, spec, target_id, has_job=state is not None, where=where)
    record = new_job_record(tenant.id, sp, sync, emulator.ids) if state is not None else None
    _edit_schema(emulator, record, spec, when=created, where=where)
    _assign(emulator, entry, sp, spec.get("assigned"), when=created, where=f"{where}.assigned")
    if record is None or state is None:
        return None
    return _Config(tenant, sync, record, state, history, cycles, where)


def _seed_secrets(
    sync: ServicePrincipalSync, spec: dict[str, Any], target_id: str, *, has_job: bool, where: str
) -> None:
    """``secrets``: absent, the portal's (only with a job: the portal saves them with it);
    ``null``, none; an object, the portal's with these keys changed (``null`` drops one)."""
    from ctsync.emulator.services.synchronization import save_secrets

    if "secrets" not in spec:
        pairs = portal_secrets(target_id) if has_job else None
    elif spec["secrets"] is None:
        pairs = None
    elif isinstance(spec["secrets"], dict):
        values = {p["key"]: p["value"] for p in portal_secrets(target_id)}
        for key, value in spec["secrets"].items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = _secret_text(value, f"{where}.secrets.{key}")
        pairs = [{"key": k, "value": v} for k, v in values.items()]
    else:
        msg = f"{where}.secrets must be an object (keys changed from the portal's) or null"
        raise ScenarioError(msg)
    if pairs is not None:
        with _graph(f"{where}.secrets"):
            save_secrets(sync, pairs)


def _secret_text(value: Any, where: str) -> str:
    """A secret's string value: strings as they are, booleans ``true``/``false``, numbers as
    digits, objects compact JSON (as ``SyncNotificationSettings`` is saved)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    msg = f"{where} must be a string, boolean, number or object"
    raise ScenarioError(msg)


def _assign(
    emulator: Emulator,
    entry: SeededTenant,
    sp: dict[str, Any],
    spec: Any,
    *,
    when: datetime,
    where: str,
) -> None:
    """``assigned``: user and group aliases granted the app's ``msiam_access`` role."""
    from ctsync.emulator.services.applications import add_app_role_assignment

    if spec is None:
        return
    if not isinstance(spec, list):
        msg = f"{where} must be a list of user and group aliases"
        raise ScenarioError(msg)
    tenant = entry.tenant
    role_id = sp["appRoles"][0]["id"]
    for i, alias in enumerate(spec):
        object_id = entry.aliases.get(alias) if isinstance(alias, str) else None
        if object_id is None:
            msg = f"{where}[{i}]: unknown alias {alias!r}"
            raise ScenarioError(msg)
        if object_id in tenant.groups:
            principal_type, principal = "Group", tenant.groups[object_id]
        else:
            principal_type, principal = "User", tenant.users[object_id]
        with _graph(f"{where}[{i}]"):
            add_app_role_assignment(
                tenant, sp, role_id, principal_type, principal, ids=emulator.ids, now=when
            )


# -- the job's schema: scoping filter and mapping edits --------------------------------------


def _edit_schema(
    emulator: Emulator,
    record: SyncJobRecord | None,
    spec: dict[str, Any],
    *,
    when: datetime,
    where: str,
) -> None:
    from ctsync.emulator.services.synchronization import replace_schema

    edits = [key for key in ("scoping_filter", "mapping_edits") if spec.get(key) is not None]
    if not edits:
        return
    if record is None:
        msg = f"{where}.{edits[0]}: the schema belongs to the job; give the configuration a job"
        raise ScenarioError(msg)
    schema = copy.deepcopy(record.schema)
    mapping = _user_mapping(schema)
    if "scoping_filter" in edits:
        groups = _scoping_groups(spec["scoping_filter"], f"{where}.scoping_filter")
        scope = mapping.get("scope") or {"inputFilterGroups": [], "categoryFilterGroups": []}
        mapping["scope"] = {**scope, "groups": groups}
    if "mapping_edits" in edits:
        _apply_mapping_edits(mapping, spec["mapping_edits"], f"{where}.mapping_edits")
    with _graph(where):
        replace_schema(
            record, schema, new_id=emulator.ids.guid, now=when, cycles=emulator.cycle_queue
        )


def _user_mapping(schema: dict[str, Any]) -> dict[str, Any]:
    for rule in schema["synchronizationRules"]:
        for mapping in rule["objectMappings"]:
            if mapping["sourceObjectName"] == "User":
                found: dict[str, Any] = mapping
                return found
    msg = "the Azure2Azure schema has no user mapping"  # pragma: no cover - template data
    raise AssertionError(msg)


def _scoping_groups(spec: Any, where: str) -> list[dict[str, Any]]:
    """``scoping_filter``: a clause, or a list of groups (OR) — each a clause or ``{"name",
    "clauses": [...]}`` (AND). A clause is text, ``department EQUALS 'Sales'``, or a
    ``filterClause`` object as stored."""
    items = [spec] if isinstance(spec, str) else spec
    if not isinstance(items, list) or not items:
        msg = f"{where} must be a clause or a non-empty list of filter groups"
        raise ScenarioError(msg)
    groups = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]" if isinstance(spec, list) else where
        if isinstance(item, str):
            groups.append({"name": f"Scoping filter {i + 1}", "clauses": [_clause(item, at)]})
            continue
        if not isinstance(item, dict) or not isinstance(item.get("clauses"), list):
            msg = f'{at} must be a clause or {{"name": ..., "clauses": [...]}}'
            raise ScenarioError(msg)
        unknown = sorted(set(item) - {"name", "clauses"})
        if unknown:
            msg = f"{at}: unknown key {unknown[0]!r} (a filter group takes name and clauses)"
            raise ScenarioError(msg)
        clauses = [_clause(c, f"{at}.clauses[{j}]") for j, c in enumerate(item["clauses"])]
        if not clauses:
            msg = f"{at}.clauses must not be empty"
            raise ScenarioError(msg)
        name = str(item.get("name") or f"Scoping filter {i + 1}")
        groups.append({"name": name, "clauses": clauses})
    return groups


def _clause(spec: Any, where: str) -> dict[str, Any]:
    """``<attribute> <OPERATOR> ['value'[, 'value' ...]]`` (quote a quote by doubling it), or
    a ``filterClause`` object (``sourceOperandName``, ``operatorName``, ``targetOperand``)."""
    if isinstance(spec, dict):
        return copy.deepcopy(spec)
    if not isinstance(spec, str):
        msg = f"{where} must be a clause such as \"department EQUALS 'Sales'\" or an object"
        raise ScenarioError(msg)
    attribute, _, rest = spec.strip().partition(" ")
    rest = rest.lstrip()
    operator = next(
        (
            op
            for op in _OPERATORS
            if rest.startswith(op) and (len(rest) == len(op) or rest[len(op)].isspace())
        ),
        None,
    )
    if not attribute or operator is None:
        msg = (
            f"{where}: {spec!r} is not '<attribute> <operator> [values]' with an operator "
            f"among {', '.join(_ARITY)}"
        )
        raise ScenarioError(msg)
    values = _quoted_values(rest[len(operator) :], spec, where)
    unary = _ARITY[operator] == "Unary"
    if unary and values:
        msg = f"{where}: {operator} takes no value ({spec!r})"
        raise ScenarioError(msg)
    if not unary and not values:
        msg = f"{where}: {operator} needs a value in single quotes ({spec!r})"
        raise ScenarioError(msg)
    return {
        "sourceOperandName": attribute,
        "operatorName": operator,
        "targetOperand": {"values": values},
    }


def _quoted_values(text: str, spec: str, where: str) -> list[str]:
    values = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _QUOTED.match(text, position)
        if match is None:
            msg = f"{where}: values are single-quoted and comma-separated ({spec!r})"
            raise ScenarioError(msg)
        values.append(match.group(1).replace("''", "'"))
        position = match.end()
    return values


def _apply_mapping_edits(mapping: dict[str, Any], spec: Any, where: str) -> None:
    """``mapping_edits``: ``{"target": <attribute>, "constant" | "attribute" | "expression":
    ..., "flow_type", "default_value"}`` changes (or adds) the mapping of a target attribute;
    ``{"target": ..., "remove": true}`` deletes it."""
    if not isinstance(spec, list):
        msg = f"{where} must be a list"
        raise ScenarioError(msg)
    mappings: list[dict[str, Any]] = mapping["attributeMappings"]
    for i, edit in enumerate(spec):
        at = f"{where}[{i}]"
        if not isinstance(edit, dict):
            msg = f"{at} must be an object"
            raise ScenarioError(msg)
        unknown = sorted(set(edit) - _EDIT_KEYS)
        if unknown:
            msg = f"{at}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_EDIT_KEYS))})"
            raise ScenarioError(msg)
        target = need(edit, "target", str, at)
        sources = [key for key in _SOURCE_KEYS if key in edit]
        if len(sources) > 1:
            msg = f"{at}: give one of {', '.join(_SOURCE_KEYS)}, not {' and '.join(sources)}"
            raise ScenarioError(msg)
        index = next(
            (j for j, m in enumerate(mappings) if m.get("targetAttributeName") == target), None
        )
        if sources == ["remove"]:
            if edit["remove"] is not True or len(edit) > 2:
                msg = f'{at}: a removal is {{"target": ..., "remove": true}}'
                raise ScenarioError(msg)
            if index is None:
                msg = f"{at}: {target!r} is not mapped"
                raise ScenarioError(msg)
            del mappings[index]
            continue
        if not sources and index is None:
            msg = f"{at}: {target!r} is not mapped; give its constant, attribute or expression"
            raise ScenarioError(msg)
        if not sources and len(edit) == 1:
            msg = f"{at}: nothing to change (give a source, flow_type or default_value)"
            raise ScenarioError(msg)
        current = mappings[index] if index is not None else a2a.attribute_mapping(target, {})
        edited = copy.deepcopy(current)
        if sources:
            edited["source"] = _source(edit, sources[0], at)
        if "flow_type" in edit:
            edited["flowType"] = edit["flow_type"]
        if "default_value" in edit:
            edited["defaultValue"] = edit["default_value"]
        if index is None:
            mappings.append(edited)
        else:
            mappings[index] = edited


def _source(edit: dict[str, Any], kind: str, where: str) -> dict[str, Any]:
    value = edit[kind]
    if not isinstance(value, str) or not value:
        msg = f"{where}.{kind} must be a non-empty string"
        raise ScenarioError(msg)
    if kind == "constant":
        return a2a.constant_source(value)
    if kind == "attribute":
        return a2a.attribute_source(value)
    call = _FUNCTION_CALL.match(value)
    if call is None:
        msg = f"{where}.expression must be a function call such as 'Join(\" \", [a], [b])'"
        raise ScenarioError(msg)
    return {"type": "Function", "name": call.group(1), "expression": value, "parameters": []}


# -- history ---------------------------------------------------------------------------------


def _run_history(emulator: Emulator, configs: list[_Config]) -> None:
    """Start each job at its first cycle and run its cycles in time order (every job's on one
    grid), then leave it in its state: a job without history is started now."""
    from ctsync.emulator.engine.cycles import run_now
    from ctsync.emulator.services.synchronization import pause_record, start_record

    events = sorted(
        ((when, n, config) for n, config in enumerate(configs) for when in config.cycles),
        key=lambda event: (event[0], event[1]),
    )
    started: set[int] = set()
    for when, n, config in events:
        if n not in started:
            with _graph(f"{config.where}.job"):
                start_record(config.sync, config.record, when, cycles=emulator.cycle_queue)
            started.add(n)
        run_now(emulator, [config.record.id], now=when)
    now = emulator.clock.now()
    for n, config in enumerate(configs):
        if config.state in {"Active", "Paused"} and n not in started:
            with _graph(f"{config.where}.job"):
                start_record(config.sync, config.record, now, cycles=emulator.cycle_queue)
        if config.state == "Paused":
            pause_record(config.record)
