"""``python -m benchmarks.naive_process INFO WORK``: the naive walkthrough as a process, against a
served emulator (INFO: its ``--info-file``).

What an admin's script does: sign in to each tenant with its client secret (azure-identity, over
the emulator's TLS), look up the pilot group once, then per link T1 … S10 one call at a time
(:func:`benchmarks.walkthrough.walk_link`; no provision on demand: the same work as ctsync's
apply), no pacing, ``Retry-After`` honoured by the client. Exits 0 when every link's job was
started.

WORK (JSON, written by the harness from the config ctsync applies): ``{"hub": NAME, "group":
NAME, "links": {SPOKE: LinkWork}}`` — the request bodies an admin would paste into the script.
Only the Graph client is imported: not ctsync's config, engine or emulator.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ctsync.graph import AuthSpec, GraphClient, Pacer, build_credential, resolve_cloud

from .walkthrough import walk_link


async def _main(info: dict[str, Any], work: dict[str, Any]) -> None:
    cloud = resolve_cloud(
        {
            "graph_url": info["graph_url"],
            "authority": info["authority"],
            "ca_bundle": info["ca_cert"],
        }
    )
    entries = {t["name"]: t for t in info["tenants"]}
    hub_name, spokes = str(work["hub"]), list(work["links"])
    clients: dict[str, GraphClient] = {}
    for name in (hub_name, *spokes):
        entry = entries[name]
        spec = AuthSpec(
            method="client_secret",
            client_id=entry["client_id"],
            client_secret=entry["client_secret"],
        )
        credential = build_credential(spec, tenant_id=entry["tenant_id"], cloud=cloud, name=name)
        clients[name] = GraphClient(
            tenant_id=entry["tenant_id"],
            credential=credential,
            cloud=cloud,
            pacer=Pacer(enabled=False),
        )
    try:
        hub = clients[hub_name]
        groups = await hub.list_all("/groups", filter=f"displayName eq '{work['group']}'")
        group_id = str(groups[0]["id"])
        for spoke in spokes:
            await walk_link(
                hub,
                clients[spoke],
                hub_id=entries[hub_name]["tenant_id"],
                spoke_id=entries[spoke]["tenant_id"],
                group_id=group_id,
                app_name=f"{spoke} (naive)",
                work=work["links"][spoke],
            )
    finally:
        for client in clients.values():
            await client.aclose()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    info = json.loads(Path(argv[0]).read_text())
    work = json.loads(Path(argv[1]).read_text())
    asyncio.run(_main(info, work))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
