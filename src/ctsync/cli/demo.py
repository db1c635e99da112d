"""``ctsync demo``: the emulator up, and the Graph client walking the partner policy through it.

Until the main job (config, plan, apply) lands, the demo shows the foundation: an in-process
emulator seeded with the demo tenants, and ctsync's Graph client doing the cross-tenant access
policy steps of Microsoft's walkthrough in both tenants — idempotently, so a re-run converges.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import click

__all__ = ["demo"]


@dataclass
class _Step:
    tenant: str
    action: str
    outcome: str


@dataclass
class _Report:
    steps: list[_Step] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0


async def _walk(report: _Report) -> None:
    from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport
    from ctsync.errors import ConflictError, NotFoundError
    from ctsync.graph import CrossTenantAccessPolicyApi, GraphClient

    emulator = Emulator(scenario="demo")
    transport = EmulatorTransport(emulator)
    source, target = emulator.tenant("contoso"), emulator.tenant("fabrikam")
    cloud = {
        "graph_url": "https://graph.microsoft.com/v1.0",
        "authority": "https://login.microsoftonline.com",
    }

    def client(name: str, tenant_id: str) -> GraphClient:
        credential = EmulatorCredential(emulator, name)
        return GraphClient(
            tenant_id=tenant_id, credential=credential, cloud=cloud, transport=transport
        )

    async with client("fabrikam", target.id) as in_target, client("contoso", source.id) as in_src:
        target_policy = CrossTenantAccessPolicyApi(in_target)
        source_policy = CrossTenantAccessPolicyApi(in_src)

        async def ensure_partner(
            api: CrossTenantAccessPolicyApi, who: str, partner_id: str, settings: dict[str, Any]
        ) -> None:
            try:
                await api.create_partner(partner_id, **settings)
                report.steps.append(_Step(who, f"create partner {partner_id[:8]}…", "201 created"))
            except ConflictError:
                await api.update_partner(partner_id, settings)
                report.steps.append(
                    _Step(who, f"create partner {partner_id[:8]}…", "409 exists → PATCH 204")
                )

        async def ensure_sync(partner_id: str) -> None:
            try:
                await target_policy.put_identity_sync(partner_id, display_name="Contoso")
                report.steps.append(_Step("fabrikam", "allow inbound user sync", "204 created"))
            except ConflictError:
                await target_policy.update_identity_sync(
                    partner_id, {"userSyncInbound": {"isSyncAllowed": True}}
                )
                report.steps.append(
                    _Step("fabrikam", "allow inbound user sync", "409 exists → PATCH 204")
                )

        for _round in range(2):  # the second round shows a re-run converging
            await ensure_partner(
                target_policy,
                "fabrikam",
                source.id,
                {"automaticUserConsentSettings": {"inboundAllowed": True}},
            )
            await ensure_sync(source.id)
            await ensure_partner(
                source_policy,
                "contoso",
                target.id,
                {"automaticUserConsentSettings": {"outboundAllowed": True}},
            )
        try:
            await source_policy.get_partner("11111111-2222-4333-8444-555555555555")
        except NotFoundError as exc:
            report.steps.append(
                _Step("contoso", "read an unknown partner", f"{exc.status} {exc.code}")
            )

        partner = await target_policy.get_partner(source.id)
        sync = await target_policy.get_identity_sync(source.id)
        outbound = await source_policy.get_partner(target.id)
        report.state = {
            "fabrikam (target)": {
                "partner": source.id,
                "automaticUserConsentSettings": partner.model_dump(by_alias=True)[
                    "automaticUserConsentSettings"
                ],
                "identitySynchronization": sync.model_dump(by_alias=True, exclude_none=True),
            },
            "contoso (source)": {
                "partner": target.id,
                "automaticUserConsentSettings": outbound.model_dump(by_alias=True)[
                    "automaticUserConsentSettings"
                ],
            },
        }
        report.requests = in_target.stats.attempts + in_src.stats.attempts


@click.command("demo")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def demo(output: str) -> None:
    """Run the demo on a built-in, in-process emulator (no network, no Azure tenant)."""
    report = _Report()
    started = time.perf_counter()
    asyncio.run(_walk(report))
    report.seconds = time.perf_counter() - started
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "steps": [s.__dict__ for s in report.steps],
                    "state": report.state,
                    "requests": report.requests,
                    "seconds": round(report.seconds, 3),
                },
                indent=2,
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print("[bold]ctsync demo[/] — emulator up with Contoso, Fabrikam and Tailspin Toys")
    table = Table("tenant", "step", "answer", title="Partner policy walkthrough (run twice)")
    for step in report.steps:
        table.add_row(step.tenant, step.action, step.outcome)
    console.print(table)
    console.print_json(json.dumps(report.state))
    console.print(
        f"{report.requests} Graph requests in {report.seconds:.2f} s. "
        "Next: `ctsync emulator serve` to reach the same emulator over HTTPS."
    )
