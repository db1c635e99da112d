"""One link of Microsoft's Graph walkthrough, one call at a time, doing the work ctsync does.

Shared by the simulated naive baseline (:mod:`benchmarks.naive`) and the naive process
(:mod:`benchmarks.naive_process`), so it imports only the Graph client: a script an admin
writes does not load ctsync's config, engine or emulator, and the naive process must not pay for
them either.

"The work ctsync does" (:class:`LinkWork`, computed from the same config ctsync applies): the
partner configurations' automatic redemption and inbound trust (T3, S2), the job's secrets
(S6), and the config's attribute mappings and scoping on the user mapping (S8b: the schema
read at S8, its user mapping's managed parts replaced, PUT back), as an admin would paste them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

from ctsync.graph import GraphClient
from ctsync.graph.apps import CTS_TEMPLATE_ID, ApplicationsApi
from ctsync.graph.policy import CrossTenantAccessPolicyApi
from ctsync.graph.sync import AZURE2AZURE, SynchronizationApi

__all__ = ["LinkWork", "walk_link", "with_user_mapping"]


class LinkWork(TypedDict):
    """What ctsync's config asks of one link, as request bodies."""

    #: T3: the target's PATCH of its partner configuration for the source.
    inbound: dict[str, Any]
    #: S2: the source's PATCH of its partner configuration for the target.
    outbound: dict[str, Any]
    #: S6: the job's secrets (``AuthenticationType``, ``CompanyId`` and settings).
    secrets: dict[str, str]
    #: S8b: the user object mapping's ``flowTypes``, ``attributeMappings`` and ``scope``.
    user_mapping: dict[str, Any]


def with_user_mapping(schema: dict[str, Any], parts: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (as read) with the User → User mapping's members replaced by ``parts``."""
    out = {k: v for k, v in schema.items() if not k.startswith("@")}
    for rule in out.get("synchronizationRules") or []:
        for mapping in rule.get("objectMappings") or []:
            source = str(mapping.get("sourceObjectName") or "").lower()
            target = str(mapping.get("targetObjectName") or "").lower()
            if source == target == "user":
                mapping.update(parts)
                return out
    msg = "the job's schema has no User → User object mapping"
    raise ValueError(msg)


async def walk_link(
    hub: GraphClient,
    spoke: GraphClient,
    *,
    hub_id: str,
    spoke_id: str,
    group_id: str,
    app_name: str,
    work: LinkWork,
    on_demand: Callable[[str, str, dict[str, Any]], Awaitable[None]] | None = None,
) -> tuple[str, str]:
    """One link of the walkthrough, T1 to S10, one call at a time: (service principal id,
    job id). ``on_demand`` is S9, between the schema's update and the start."""
    target = CrossTenantAccessPolicyApi(spoke)
    hub_policy = CrossTenantAccessPolicyApi(hub)
    apps = ApplicationsApi(hub)
    sync = SynchronizationApi(hub)
    await target.create_partner(hub_id)  # T1
    await target.put_identity_sync(hub_id, display_name="hub")  # T2
    await target.update_partner(hub_id, work["inbound"])  # T3
    await hub_policy.create_partner(spoke_id)  # S1
    await hub_policy.update_partner(spoke_id, work["outbound"])  # S2
    created = await apps.instantiate(app_name, template_id=CTS_TEMPLATE_ID)  # S3
    sp = created["servicePrincipal"]
    sp_id = str(sp["id"])
    role_id = str(sp["appRoles"][0]["id"])
    secrets = work["secrets"]
    credentials = {k: secrets[k] for k in ("AuthenticationType", "CompanyId")}
    await sync.validate_credentials(sp_id, credentials=credentials)  # S4
    job = await sync.create_job(sp_id, template_id=AZURE2AZURE)  # S5
    job_id = str(job["id"])
    await sync.put_secrets(sp_id, secrets)  # S6
    await apps.assign(sp_id, principal_id=group_id, app_role_id=role_id)  # S7
    schema = await sync.get_schema(sp_id, job_id)  # S8 (its ruleId feeds S9)
    await sync.put_schema(sp_id, job_id, with_user_mapping(schema, work["user_mapping"]))  # S8b
    if on_demand is not None:
        await on_demand(sp_id, job_id, schema)  # S9
    await sync.start(sp_id, job_id)  # S10
    return sp_id, job_id
