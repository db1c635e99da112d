"""Synchronization jobs, secrets, schema (graph-cts-api §2.3, §3.6–3.9).

Every path hangs off ``/servicePrincipals/{spId}/synchronization``; ``spId`` is the service
principal's object id.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from ctsync.errors import CtsyncError

from .batch import BatchRequest, BatchResult, raise_for_item
from .client import GraphClient

__all__ = ["AZURE2AZURE", "NewJob", "SynchronizationApi", "guess_job_id"]

#: The synchronization template of cross-tenant synchronization.
AZURE2AZURE: Final = "Azure2Azure"


def _root(sp_id: str) -> str:
    return f"/servicePrincipals/{quote(sp_id)}/synchronization"


def _job(sp_id: str, job_id: str) -> str:
    return f"{_root(sp_id)}/jobs/{quote(job_id, safe='')}"


def guess_job_id(tenant_id: str, app_id: str) -> str:
    """The id Graph gives a tenant's new Azure2Azure job of the sync app ``app_id``:
    ``Azure2Azure.<tenant id without dashes>.<appId>`` (cts-defaults §1.1). Graph calls job ids
    opaque, so this is only ever a guess that saves a round trip when right (see
    :meth:`SynchronizationApi.create_job_reading`)."""
    return f"{AZURE2AZURE}.{tenant_id.replace('-', '').lower()}.{app_id}"


@dataclass(frozen=True)
class NewJob:
    """A job just created, with what was read beside it (None: not read, or unreadable)."""

    job: dict[str, Any]
    #: The Azure2Azure template's default schema.
    template: dict[str, Any] | None = None
    #: The new job's own schema.
    schema: dict[str, Any] | None = None


def _template_of(templates: list[Any], sp_id: str, template_id: str) -> dict[str, Any]:
    for template in templates:
        if isinstance(template, dict) and str(template.get("id")).lower() == template_id.lower():
            schema = template.get("schema")
            if isinstance(schema, dict):
                return {k: v for k, v in schema.items() if not k.startswith("@")}
    msg = f"the service principal {sp_id} offers no {template_id} synchronization template"
    raise CtsyncError(msg)


class SynchronizationApi:
    def __init__(self, client: GraphClient) -> None:
        self.client = client

    async def list_jobs(self, sp_id: str) -> list[dict[str, Any]]:
        return await self.client.list_all(f"{_root(sp_id)}/jobs")

    async def create_job(self, sp_id: str, *, template_id: str = AZURE2AZURE) -> dict[str, Any]:
        response = await self.client.post(f"{_root(sp_id)}/jobs", json={"templateId": template_id})
        return response.json_object()

    async def create_job_reading(self, sp_id: str, guess: str | None) -> NewJob:
        """:meth:`create_job`, with the template's schema and (if the new job's id is
        ``guess``, see :func:`guess_job_id`) the job's schema read in the same ``$batch``, each
        read ``dependsOn`` the create: the link's schema step then reads nothing. Raises what
        the create raises; a read that fails or guessed wrong is left None, to be read again."""
        create = BatchRequest(
            id="job", method="POST", url=f"{_root(sp_id)}/jobs", body={"templateId": AZURE2AZURE}
        )
        reads = [BatchRequest(id="templates", method="GET", url=f"{_root(sp_id)}/templates")]
        if guess:
            reads.append(
                BatchRequest(id="schema", method="GET", url=f"{_job(sp_id, guess)}/schema")
            )
        created, *read = await self.client.chain(create, *reads)
        job = raise_for_item(created).body
        if not isinstance(job, dict):
            msg = "POST jobs answered without the job"
            raise CtsyncError(msg)
        template = schema = None
        templates = read[0].body if read[0].ok and isinstance(read[0].body, dict) else {}
        if isinstance(templates.get("value"), list) and "@odata.nextLink" not in templates:
            template = _template_of(templates["value"], sp_id, AZURE2AZURE)
        if len(read) > 1 and read[1].ok and job.get("id") == guess:
            schema = read[1].body if isinstance(read[1].body, dict) else None
        return NewJob(job=job, template=template, schema=schema)

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
        self,
        sp_id: str,
        secrets: Mapping[str, str],
        changes: Mapping[str, Any],
        *,
        validate_context: contextvars.Context | None = None,
    ) -> BatchResult | None:
        """:meth:`put_secrets`, then a ``PATCH`` of the service principal with ``changes``, in
        one round trip: a ``$batch`` whose PATCH ``dependsOn`` the PUT (so the PATCH never
        lands without it). Raises what either raises. With ``validate_context`` the test of
        the saved credentials (:meth:`validate_credentials`) follows the PUT in the same batch,
        its write told in that context: its answer is returned, unraised."""
        body = {"value": [{"key": k, "value": v} for k, v in secrets.items()]}
        then = [
            BatchRequest(
                id="sp",
                method="PATCH",
                url=f"/servicePrincipals/{quote(sp_id)}",
                body=dict(changes),
            )
        ]
        if validate_context is not None:
            then.append(
                BatchRequest(
                    id="validate",
                    method="POST",
                    url=f"{_root(sp_id)}/jobs/validateCredentials",
                    body=_validate_body(None, AZURE2AZURE),
                    context=validate_context,
                )
            )
        put, patch, *validated = await self.client.chain(
            BatchRequest(id="secrets", method="PUT", url=f"{_root(sp_id)}/secrets", body=body),
            *then,
        )
        raise_for_item(put)
        raise_for_item(patch)
        return validated[0] if validated else None

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
        body = _validate_body(credentials, template_id)
        await self.client.post(path or f"{_root(sp_id)}/jobs/validateCredentials", json=body)

    async def template_schema(self, sp_id: str, template_id: str = "Azure2Azure") -> dict[str, Any]:
        """The default schema of a job template (``GET …/synchronization/templates``): what a
        new job starts from."""
        return _template_of(
            await self.client.list_all(f"{_root(sp_id)}/templates"), sp_id, template_id
        )

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
        put, start = await self.client.chain(
            BatchRequest(id="schema", method="PUT", url=f"{job}/schema", body=body),
            BatchRequest(id="start", method="POST", url=f"{job}/start", context=start_context),
        )
        raise_for_item(put)
        return start

    async def filter_operators(self, sp_id: str, job_id: str) -> list[dict[str, Any]]:
        return await self.client.list_all(f"{_job(sp_id, job_id)}/schema/filterOperators")


def _validate_body(credentials: Mapping[str, str] | None, template_id: str) -> dict[str, Any]:
    """``validateCredentials``' body: the saved credentials (None) or these."""
    return {
        "useSavedCredentials": credentials is None,
        "templateId": template_id,
        "credentials": [{"key": k, "value": v} for k, v in (credentials or {}).items()],
    }
