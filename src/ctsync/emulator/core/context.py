"""Everything a route handler needs to answer one request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ctsync.emulator.core.errors import GraphFault, not_found
from ctsync.emulator.core.http import EmuRequest, EmuResponse, json_response, no_content

if TYPE_CHECKING:
    from ctsync.emulator._emulator import Emulator, GraphCall
    from ctsync.emulator.core.odata import ExpandSpec
    from ctsync.emulator.state import Tenant

__all__ = ["RequestContext"]


@dataclass
class RequestContext:
    emulator: Emulator
    request: EmuRequest
    tenant: Tenant
    app_id: str
    roles: frozenset[str]
    #: Normalised path under the version root, e.g. ``/policies/crossTenantAccessPolicy``.
    path: str
    params: dict[str, str]
    #: Query parameters; OData system options keyed in lower case (``$select``).
    query: dict[str, str]
    body: Any
    request_id: str
    client_request_id: str
    now: datetime
    #: ``https://host[:port]/v1.0``: the root absolute links are built from.
    base_url: str
    #: The authenticated call itself, which ``$batch`` re-dispatches its inner requests with.
    call: GraphCall
    extra_headers: dict[str, str] = field(default_factory=dict)

    # -- answers -------------------------------------------------------------------------

    def json(self, status: int, payload: Any) -> EmuResponse:
        return json_response(status, payload)

    def no_content(self) -> EmuResponse:
        return no_content()

    def entity(
        self,
        payload: Mapping[str, Any],
        *,
        context: str,
        status: int = 200,
        expand: ExpandSpec | None = None,
        keep: Iterable[str] = (),
    ) -> EmuResponse:
        """One object with its ``@odata.context``, after ``$expand`` (what ``expand`` serves;
        any other is refused as Graph refuses it) and ``$select`` (which keeps expanded
        properties and ``keep``)."""
        from ctsync.emulator.core.odata import apply_select, expand_entity

        expanded, names = expand_entity(self, dict(payload), expand)
        body = {"@odata.context": f"{self.base_url}/$metadata#{context}"}
        body.update(apply_select(expanded, self.query.get("$select"), keep=[*names, *keep]))
        return json_response(status, body)

    # -- body helpers ------------------------------------------------------------------

    def body_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        if not isinstance(self.body, dict):
            raise GraphFault(400, "BadRequest", "The request body must be a JSON object.")
        return self.body

    # -- replication lag -----------------------------------------------------------------

    def visible(self, key: str) -> bool:
        """False while an object created ``key`` is still inside the replication-lag window."""
        created = self.tenant.created_at.get(key)
        lag = self.emulator.faults.replication_lag
        if created is None or lag <= 0:
            return True
        return (self.now - created).total_seconds() >= lag

    def require_visible(self, key: str, message: str) -> None:
        if not self.visible(key):
            raise not_found(message)

    def mark_created(self, key: str) -> None:
        self.tenant.created_at[key] = self.now
