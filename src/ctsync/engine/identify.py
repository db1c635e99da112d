"""Which tenant an existing cross-tenant sync configuration synchronizes into.

ctsync must never plan a second configuration beside one that already serves a link's
source → target pair (two jobs provisioning the same users into one tenant). For a
configuration it does not manage, the target is taken only from what can be known — in this
order, the first that answers wins:

1. **The config**: ``tenants.<source>.unmanaged_configurations`` names it (the admin said so).
2. **A ctsync tag** of another config: ``ctsync:link:<source id>:<target id>``.
3. **The name the multitenant-organization wizard gives**: ``MTO_Sync_<target tenant id>``.
4. **Its job's provisioning logs**: each entry's ``tenantId`` is the tenant the user was
   provisioned into, as Microsoft's cross-tenant sync article shows (one entry is read,
   ``GET /auditLogs/provisioning?$filter=jobId eq '…'&$top=1``, under the reports quota).

Nothing else is used: not a display name like "Sync to Fabrikam", not a guess. A configuration
none of these identifies is reported as unidentified, and the plan stops and asks.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import quote

from ctsync.config import TenantSpec
from ctsync.engine.desired import LINK_TAG_PREFIX
from ctsync.errors import GraphError
from ctsync.graph import BatchRequest, GraphClient
from ctsync.graph.apps import odata_string

__all__ = ["MTO_NAME", "identify", "target_from_tag"]

#: The display name the Microsoft 365 multitenant-organization wizard gives a configuration.
MTO_NAME: Final = re.compile(
    r"^MTO_Sync_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I
)


def target_from_tag(tags: list[str] | None) -> str | None:
    """The target tenant id a ``ctsync:link:<source>:<target>`` tag names, if any."""
    for tag in tags or []:
        if tag.startswith(LINK_TAG_PREFIX):
            parts = tag[len(LINK_TAG_PREFIX) :].split(":")
            if len(parts) == 2 and parts[1]:
                return parts[1].lower()
    return None


async def identify(client: GraphClient, tenant: TenantSpec, foreign: list[dict[str, Any]]) -> None:
    """Fill in ``job``, ``target`` and ``how`` of each configuration in ``foreign`` (in place)."""
    if not foreign:
        return
    for sp in foreign:
        sp.setdefault("job", None)
        sp_id = str(sp["id"]).lower()
        named = MTO_NAME.match(str(sp.get("displayName") or ""))
        if sp_id in tenant.unmanaged_configurations:
            sp["target"], sp["how"] = tenant.unmanaged_configurations[sp_id], "config"
        elif (tagged := target_from_tag(sp.get("tags"))) is not None:
            sp["target"], sp["how"] = tagged, "ctsync tag"
        elif named:
            sp["target"], sp["how"] = named.group(1).lower(), "MTO name"
        else:
            sp["target"], sp["how"] = None, None
    await _read_jobs(client, foreign)
    for sp in foreign:
        if sp["target"] is None and sp["job"]:
            logged = await _logged_target(client, str(sp["job"]["id"]), tenant.tenant_id)
            if logged is not None:
                sp["target"], sp["how"] = logged, "provisioning logs"


async def _read_jobs(client: GraphClient, foreign: list[dict[str, Any]]) -> None:
    requests = [
        BatchRequest(
            id=str(i),
            method="GET",
            url=f"/servicePrincipals/{quote(str(sp['id']))}/synchronization/jobs",
        )
        for i, sp in enumerate(foreign)
    ]
    results = await client.batch(requests, concurrency=8)
    for i, sp in enumerate(foreign):
        result = results[str(i)]
        if result.status >= 400 or not isinstance(result.body, dict):
            continue  # gone meanwhile, or unreadable: shown without a job
        jobs = [j for j in result.body.get("value") or [] if isinstance(j, dict)]
        cts = [j for j in jobs if j.get("templateId") == "Azure2Azure"]
        if cts:
            sp["job"] = {k: v for k, v in cts[0].items() if not k.startswith("@odata.")}


async def _logged_target(client: GraphClient, job_id: str, source_id: str) -> str | None:
    try:
        answer = await client.get(
            "/auditLogs/provisioning",
            params={"$filter": f"jobId eq {odata_string(job_id)}", "$top": 1},
        )
    except GraphError:
        return None  # no permission to read logs, or none kept: unidentified
    entries = answer.json_object().get("value") or []
    for entry in entries:
        tenant_id = str((entry or {}).get("tenantId") or "").lower()
        if tenant_id and tenant_id != source_id.lower():
            return tenant_id
    return None
