"""Find a link's configuration app and job in its source tenant (by the tags apply set)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ctsync.config import LinkSpec
from ctsync.engine import Session
from ctsync.engine.desired import MANAGED_TAG, link_tag
from ctsync.errors import CtsyncError
from ctsync.graph import BatchRequest, raise_for_item
from ctsync.graph.apps import odata_string
from ctsync.graph.sync import SynchronizationApi

__all__ = ["LinkJob", "LinkNotSetUpError", "locate", "locate_all", "locate_many"]


@dataclass
class LinkJob:
    """A link as it lives in its source tenant: the app's service principal and its job."""

    link: LinkSpec
    sp_id: str
    sp_name: str
    job: dict[str, Any]

    @property
    def key(self) -> str:
        return self.link.key

    @property
    def job_id(self) -> str:
        return str(self.job["id"])


class LinkNotSetUpError(CtsyncError):
    """The link has no configuration app or job yet."""


async def locate(session: Session, link: LinkSpec) -> LinkJob:
    desired = session.desired
    source, target = desired.tenants[link.source], desired.tenants[link.target]
    client = session.client(link.source)
    tag = link_tag(source.tenant_id, target.tenant_id)
    found = await client.list_all(
        "/servicePrincipals",
        filter=f"tags/any(t:t eq {odata_string(tag)})",
        select=["id", "displayName", "tags"],
    )
    if not found:
        msg = f"link {link.key} is not set up in {link.source} (run `ctsync apply` first)"
        raise LinkNotSetUpError(msg)
    sp = found[0]
    jobs = await SynchronizationApi(client).list_jobs(sp["id"])
    cts = [j for j in jobs if j.get("templateId") == "Azure2Azure"]
    if not cts:
        msg = f"link {link.key} has no synchronization job (run `ctsync apply` first)"
        raise LinkNotSetUpError(msg)
    return LinkJob(link=link, sp_id=str(sp["id"]), sp_name=str(sp.get("displayName")), job=cts[0])


async def locate_all(session: Session, links: Sequence[LinkSpec]) -> list[LinkJob]:
    """Every link's app and job; raises :class:`LinkNotSetUpError` for the first one missing."""
    found = await locate_many(session, links)
    out = []
    for link in links:
        where = found[link.key]
        if isinstance(where, LinkNotSetUpError):
            raise where
        out.append(where)
    return out


async def locate_many(
    session: Session, links: Sequence[LinkSpec]
) -> dict[str, LinkJob | LinkNotSetUpError]:
    """Each link's app and job, read per source tenant: one paged list of the apps ctsync
    manages and one ``$batch`` round for their jobs, instead of two GETs per link."""
    by_source: dict[str, list[LinkSpec]] = {}
    for link in links:
        by_source.setdefault(link.source, []).append(link)
    results: dict[str, LinkJob | LinkNotSetUpError] = {}

    async def tenant(source: str, mine: list[LinkSpec]) -> None:
        if len(mine) == 1:
            try:
                results[mine[0].key] = await locate(session, mine[0])
            except LinkNotSetUpError as exc:
                results[mine[0].key] = exc
            return
        client = session.client(source)
        managed = await client.list_all(
            "/servicePrincipals",
            filter=f"tags/any(t:t eq {odata_string(MANAGED_TAG)})",
            select=["id", "displayName", "tags"],
            top=999,
        )
        by_tag = {
            t: sp for sp in managed for t in sp.get("tags") or [] if t.startswith("ctsync:link:")
        }
        desired = session.desired
        sps: dict[str, dict[str, Any]] = {}
        for link in mine:
            tag = link_tag(
                desired.tenants[link.source].tenant_id, desired.tenants[link.target].tenant_id
            )
            if tag in by_tag:
                sps[link.key] = by_tag[tag]
            else:
                msg = f"link {link.key} is not set up in {link.source} (run `ctsync apply` first)"
                results[link.key] = LinkNotSetUpError(msg)
        keys = sorted(sps)
        answers = await client.batch(
            [
                BatchRequest(
                    id=str(i),
                    method="GET",
                    url=f"/servicePrincipals/{quote(str(sps[k]['id']))}/synchronization/jobs",
                )
                for i, k in enumerate(keys)
            ],
            concurrency=8,
        )
        for i, key in enumerate(keys):
            answer = raise_for_item(answers[str(i)])
            jobs = (answer.body or {}).get("value") or []
            cts = [j for j in jobs if j.get("templateId") == "Azure2Azure"]
            link = next(lk for lk in mine if lk.key == key)
            if not cts:
                msg = f"link {key} has no synchronization job (run `ctsync apply` first)"
                results[key] = LinkNotSetUpError(msg)
                continue
            sp = sps[key]
            results[key] = LinkJob(
                link=link, sp_id=str(sp["id"]), sp_name=str(sp.get("displayName")), job=cts[0]
            )

    await asyncio.gather(*(tenant(source, mine) for source, mine in by_source.items()))
    return results
