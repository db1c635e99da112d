"""One module per Graph area; each holds its routes (and, where it has any, its models)."""

from __future__ import annotations

from ctsync.emulator.core.routing import Router

__all__ = ["all_routes"]


def all_routes() -> Router:
    from ctsync.emulator.services.applications import router as applications
    from ctsync.emulator.services.batch import router as batch
    from ctsync.emulator.services.directory import router as directory
    from ctsync.emulator.services.policies import router as policies
    from ctsync.emulator.services.synchronization import router as synchronization
    from ctsync.emulator.services.tenant_relationships import router as tenant_relationships

    router = Router()
    for part in (policies, tenant_relationships, directory, applications, synchronization, batch):
        router.include(part)
    # Readiness surfaces: authentication methods, the registration report, Conditional Access
    # and the authorization policy.
    from ctsync.emulator.services.authentication import router as authentication
    from ctsync.emulator.services.authorization_policy import router as authorization_policy
    from ctsync.emulator.services.conditional_access import router as conditional_access
    from ctsync.emulator.services.reports import router as reports

    for part in (authentication, reports, conditional_access, authorization_policy):
        router.include(part)
    # The provisioning engine's surfaces: provisionOnDemand and the provisioning logs.
    from ctsync.emulator.services.provisioning import router as provisioning

    router.include(provisioning)
    # An application's credentials: secrets, certificates, federated identity credentials.
    from ctsync.emulator.services.app_credentials import router as app_credentials

    router.include(app_credentials)
    # Delegated permission grants (consent): what a signed-in user's token may carry.
    from ctsync.emulator.services.permission_grants import router as permission_grants

    router.include(permission_grants)
    # The multitenant organization and its policy templates.
    from ctsync.emulator.services.multitenant_org import router as multitenant_org

    router.include(multitenant_org)
    return router
