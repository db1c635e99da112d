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
    return router
