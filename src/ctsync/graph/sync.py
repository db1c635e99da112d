"""Synchronization jobs, secrets, schema (graph-cts-api §2.3, §3.6–3.9).

Every path hangs off ``/servicePrincipals/{spId}/synchronization``; ``spId`` is the service
principal's object id.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from ctsync.errors import CtsyncError

from .batch import BatchRequest, BatchResult, raise_for_item
from .client import GraphClient

__all__ = ["AZURE2AZURE", "SynchronizationApi"]

#: The synchronization template of cross-tenant synchronization.
AZURE2AZURE: Final = "Azure2Azure"


def _root(sp_id: str) -> str:
    return f"/servicePrincipals/{quote(sp_id)}/synchronization"


def _job(sp_id: str, job_id: str) -> str:
    return f"{_root(sp_id)}/jobs/{quote(job_id, safe='')}"


class SynchronizationApi:
    def __init__(self, client: GraphClient) -> None:
        self.client = client

    async def list_jobs(self, sp_id: str) -> list[dict[str, Any]]:
        return await self.client.list_all(f"{_root(sp_id)}/jobs")

    async def create_job(self, sp_id: str, *, template_id: str = AZURE2AZURE) -> dict[str, Any]:
        response = await self.client.post(f"{_root(sp_id)}/jobs", json={"templateId": template_id})
        return response.json_object()

    async def get_job(self, sp_id: str, job_id: str) -> dict[str, Any]:
        return (await self.client.get(_job(sp_id, job_id))).json_object()

    async def delete_job(self, sp_id: str, job_id: str) -> None:
        await self.client.delete(_job(sp_id, job_id))

    async def start(self, sp_id: str, job_id: str) -> None:
        await self.client.post(f"{_job(sp_id, job_id)}/start")

    async def pause(self, sp_id: str, job_id: str) -> None:
        await self.client.post(f"{_job(sp_id, job_id)}/pause")

    async def restart(self, sp_id: str, job_id: str, *, reset_scope: str) -> None:
        """``reset_scope``: flags of ``synchronizationJobRestartScope``, e.g.
        ``"Watermark, Escrows, QuarantineState"``."""
        body = {"criteria": {"resetScope": reset_scope}}
        await self.client.post(f"{_job(sp_id, job_id)}/restart", json=body)

    async def put_secrets(self, sp_id: str, secrets: Mapping[str, str]) -> None:
        """Replace the whole set of saved credentials and settings."""
        body = {"value": [{"key": k, "value": v} for k, v in secrets.items()]}
        await self.client.put(f"{_root(sp_id)}/secrets", json=body)

    async def put_secrets_then_update(
        self, sp_id: str, secrets: Mapping[str, str], changes: Mapping[str, Any]
    ) -> None:
        """:meth:`put_secrets`, then a ``PATCH`` of the service principal with ``changes``, in
        one round trip: a ``$batch`` whose PATCH ``dependsOn`` the PUT (so the PATCH never
        lands without it). Raises what either raises."""
        body = {"value": [{"key": k, "value": v} for k, v in secrets.items()]}
        put, patch = await self._chain(
            BatchRequest(id="secrets", method="PUT", url=f"{_root(sp_id)}/secrets", body=body),
            BatchRequest(
                id="sp",
                method="PATCH",
                url=f"/servicePrincipals/{quote(sp_id)}",
                body=dict(changes),
            ),
        )
        raise_for_item(put)
        raise_for_item(patch)

    async def validate_credentials(
        self,
        sp_id: str,
        *,
        job_id: str | None = None,
        credentials: Mapping[str, str] | None = None,
        template_id: str = AZURE2AZURE,
    ) -> None:
        """ "Test connection". With ``credentials`` None the saved secrets are validated."""
        path = f"{_job(sp_id, job_id)}/validateCredentials" if job_id else None
        body: dict[str, Any] = {
            "useSavedCredentials": credentials is None,
            "templateId": template_id,
            "credentials": [{"key": k, "value": v} for k, v in (credentials or {}).items()],
        }
        await self.client.post(path or f"{_root(sp_id)}/jobs/validateCredentials", json=body)

    async def template_schema(self, sp_id: str, template_id: str = "Azure2Azure") -> dict[str, Any]:
        """The default schema of a job template (``GET …/synchronization/templates``): what a
        new job starts from."""
        templates = await self.client.list_all(f"{_root(sp_id)}/templates")
        for template in templates:
            if str(template.get("id")).lower() == template_id.lower():
                schema = template.get("schema")
                if isinstance(schema, dict):
                    return {k: v for k, v in schema.items() if not k.startswith("@")}
        msg = f"the service principal {sp_id} offers no {template_id} synchronization template"
        raise CtsyncError(msg)

    async def get_schema(self, sp_id: str, job_id: str) -> dict[str, Any]:
        return (await self.client.get(f"{_job(sp_id, job_id)}/schema")).json_object()

    async def put_schema(self, sp_id: str, job_id: str, schema: Mapping[str, Any]) -> None:
        """Replace the whole schema (mappings and scoping)."""
        body = {k: v for k, v in schema.items() if not k.startswith("@odata.")}
        await self.client.put(f"{_job(sp_id, job_id)}/schema", json=body)

    async def put_schema_then_start(
        self,
        sp_id: str,
        job_id: str,
        schema: Mapping[str, Any],
        *,
        start_context: contextvars.Context | None = None,
    ) -> BatchResult:
        """:meth:`put_schema`, then :meth:`start`, in one round trip: a ``$batch`` whose start
        ``dependsOn`` the PUT (Graph runs it only after the PUT succeeded, else answers it
        ``424``). Raises what the PUT raises; returns the start's answer, unraised (see
        :func:`~ctsync.graph.batch.raise_for_item`). ``start_context``: the context the start's
        write is told in (which step writes it, for the audit trail)."""
        body = {k: v for k, v in schema.items() if not k.startswith("@odata.")}
        job = _job(sp_id, job_id)
        put, start = await self._chain(
            BatchRequest(id="schema", method="PUT", url=f"{job}/schema", body=body),
            BatchRequest(id="start", method="POST", url=f"{job}/start", context=start_context),
        )
        raise_for_item(put)
        return start

    async def _chain(
        self, first: BatchRequest, then: BatchRequest
    ) -> tuple[BatchResult, BatchResult]:
        """``first``, then ``then`` (only if ``first`` succeeded), in one ``$batch``."""
        after = BatchRequest(
            id=then.id,
            method=then.method,
            url=then.url,
            body=then.body,
            depends_on=(first.id,),
            context=then.context,
        )
        results = await self.client.batch([first, after], concurrency=1)
        return results[first.id], results[then.id]

    async def filter_operators(self, sp_id: str, job_id: str) -> list[dict[str, Any]]:
        return await self.client.list_all(f"{_job(sp_id, job_id)}/schema/filterOperators")
