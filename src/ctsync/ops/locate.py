"""Find a link's configuration app and job in its source tenant (by the tags apply set)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ctsync.config import LinkSpec
from ctsync.engine import Session
from ctsync.engine.desired import link_tag
from ctsync.errors import CtsyncError
from ctsync.graph.apps import odata_string
from ctsync.graph.sync import SynchronizationApi

__all__ = ["LinkJob", "LinkNotSetUpError", "locate", "locate_all"]


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
    return list(await asyncio.gather(*(locate(session, link) for link in links)))
