"""``/tenantRelationships``: look a tenant up by id (or domain) before partnering with it."""

from __future__ import annotations

from ctsync.emulator.core.context import RequestContext
from ctsync.emulator.core.errors import GraphFault
from ctsync.emulator.core.http import EmuResponse
from ctsync.emulator.core.routing import Router
from ctsync.emulator.state import Tenant

__all__ = ["router"]

router = Router()

PERMS = ("CrossTenantInformation.ReadBasic.All",)


def _info(ctx: RequestContext, tenant: Tenant) -> EmuResponse:
    # Public tenant metadata: the one read that crosses tenants, as in Graph.
    payload = {
        "tenantId": tenant.id,
        "displayName": tenant.display_name,
        "defaultDomainName": tenant.domain,
        "federationBrandName": None,
    }
    return ctx.entity(payload, context="microsoft.graph.tenantInformation")


def _not_found(what: str) -> GraphFault:
    return GraphFault(
        404, "Request_ResourceNotFound", f"Tenant information for '{what}' not found."
    )


@router.route(
    "GET",
    "/tenantRelationships/findTenantInformationByTenantId(tenantId='{tenantId}')",
    permissions=PERMS,
)
def find_by_tenant_id(ctx: RequestContext) -> EmuResponse:
    wanted = ctx.params["tenantId"].lower()
    tenant = ctx.emulator.tenants.get(wanted)
    if tenant is None:
        raise _not_found(ctx.params["tenantId"])
    return _info(ctx, tenant)


@router.route(
    "GET",
    "/tenantRelationships/findTenantInformationByDomainName(domainName='{domainName}')",
    permissions=PERMS,
)
def find_by_domain(ctx: RequestContext) -> EmuResponse:
    wanted = ctx.params["domainName"].lower()
    for tenant in ctx.emulator.tenants.values():
        if tenant.domain.lower() == wanted:
            return _info(ctx, tenant)
    raise _not_found(ctx.params["domainName"])
