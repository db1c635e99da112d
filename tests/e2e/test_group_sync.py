"""Group sync as a user runs it against `ctsync emulator serve`: a link with `sync.groups`
provisions an assigned security group and its direct members into the target on one cycle;
a member removed in the source leaves the target group on the next; day 2 sees groups."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential
from click.testing import CliRunner, Result

from ctsync.cli import cli
from ctsync.emulator import scenarios
from tests.e2e.served import Served, init_config, start, stop

pytestmark = pytest.mark.e2e


#: The demo scenario, with a second client in Contoso that manages group memberships (an
#: administrator's, not ctsync's: ctsync never writes a member).
ADMIN = "group admin"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("serve")
    scenario = json.loads((Path(scenarios.__file__).parent / "demo.json").read_text())
    contoso = next(t for t in scenario["tenants"] if t["name"] == "contoso")
    contoso["clients"].append({"display_name": ADMIN, "permissions": ["GroupMember.ReadWrite.All"]})
    seed = folder / "scenario.json"
    seed.write_text(json.dumps(scenario))
    served = start(folder, "--scenario", str(seed), "--replication-lag", "0")
    yield served
    stop(served)


def ctsync(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _graph(served: Served, name: str, *, admin: bool = False) -> httpx.Client:
    clients = [t for t in served.info["tenants"] if t["name"] == name]
    tenant = next(t for t in clients if ("GroupMember.ReadWrite.All" in t["permissions"]) == admin)
    credential = ClientSecretCredential(
        tenant["tenant_id"],
        tenant["client_id"],
        tenant["client_secret"],
        authority=served.info["authority"],
        disable_instance_discovery=True,
        connection_verify=served.info["ca_cert"],
    )
    with credential:
        token = credential.get_token("https://graph.microsoft.com/.default").token
    return httpx.Client(
        base_url=served.info["graph_url"],
        verify=ssl.create_default_context(cafile=served.info["ca_cert"]),
        headers={"authorization": f"Bearer {token}"},
    )


def _run_cycle(served: Served) -> None:
    context = ssl.create_default_context(cafile=served.info["ca_cert"])
    url = f"{served.info['control_url']}/cycles/run"
    httpx.post(url, json={}, verify=context).raise_for_status()


def _groups_named(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    answer = client.get("/groups", params={"$filter": f"displayName eq '{name}'"})
    answer.raise_for_status()
    return list(answer.json()["value"])


def _member_ids(client: httpx.Client, group_id: str) -> set[str]:
    answer = client.get(f"/groups/{group_id}/members")
    answer.raise_for_status()
    return {m["id"] for m in answer.json()["value"]}


def _with_groups(text: str) -> str:
    text = text.replace(
        "      actions: [create, update]\n", "      actions: [create, update]\n      groups: true\n"
    )
    return text + "\nbeta: [group_sync]\n"


def test_a_group_and_its_members_arrive_and_a_removed_member_leaves(
    served: Served, tmp_path: Path
) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:fabrikam")
    config.write_text(_with_groups(config.read_text()))
    with _graph(served, "contoso") as contoso, _graph(served, "fabrikam") as fabrikam:
        _group_sync(served, config, contoso, fabrikam)


def _group_sync(
    served: Served, config: Path, contoso: httpx.Client, fabrikam: httpx.Client
) -> None:
    (pilot,) = _groups_named(contoso, "CTS-Pilot")
    before = {g["id"] for g in _groups_named(fabrikam, "CTS-Pilot")}

    applied = ctsync("apply", "-c", str(config), "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert "Graph beta: groupSyncInbound" in applied.output
    _run_cycle(served)

    # One cycle: a new security group in the target, holding the synced members.
    made = [g for g in _groups_named(fabrikam, "CTS-Pilot") if g["id"] not in before]
    assert len(made) == 1
    group = made[0]
    assert (group["securityEnabled"], group["mailEnabled"]) == (True, False)
    status = ctsync("status", "-c", str(config), "--output", "json")
    assert status.exit_code == 0, status.output
    link = json.loads(status.output)[0]
    assert link["synchronized_groups"] == 1
    text = ctsync("status", "-c", str(config))
    assert "groups synchronized: 1" in text.output

    # Its members are the pilot's members the job provisioned (the demo's Isaiah signs in by
    # SMS and Jordan is a guest: CTS skips both, so their memberships cannot follow).
    sources = _member_ids(contoso, pilot["id"])
    members = _member_ids(fabrikam, group["id"])
    assert len(members) == link["synchronized_users"] == len(sources) - 2
    listed = fabrikam.get("/users", params={"$select": "id,userType"}).json()["value"]
    users = {u["id"]: u for u in listed}
    assert all(users[m]["userType"] == "Member" for m in members)

    # A member leaves the source group: the next cycle takes the membership out.
    gone = contoso.get("/users/adele@contoso.com").json()["id"]
    assert gone in sources
    with _graph(served, "contoso", admin=True) as admin:
        removed = admin.delete(f"/groups/{pilot['id']}/members/{gone}/$ref")
    assert removed.status_code == 204, removed.text
    _run_cycle(served)
    after = _member_ids(fabrikam, group["id"])
    assert len(after) == len(members) - 1
    assert after < members

    logs = ctsync("logs", "-c", str(config), "--output", "json")
    assert logs.exit_code == 0, logs.output
    entries = json.loads(logs.output)["entries"]
    grouped = [e for e in entries if e["object_type"] == "Group" and e["source_id"] == pilot["id"]]
    assert {e["action"] for e in grouped} >= {"create", "update"}

    # On demand: the group is already there, in step.
    on_demand = ctsync(
        "provision", "-c", str(config), "--link", "contoso:fabrikam", "--group", "CTS-Pilot"
    )
    assert on_demand.exit_code == 0, on_demand.output
    assert on_demand.output.startswith("group CTS-Pilot (contoso:fabrikam): ")


def test_provisioning_a_group_on_a_link_without_group_sync_is_refused(
    served: Served, tmp_path: Path
) -> None:
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:tailspin")
    refused = ctsync(
        "provision", "-c", str(config), "--link", "contoso:tailspin", "--group", "CTS-Pilot"
    )
    assert refused.exit_code == 1
    assert "does not sync groups: set sync.groups: true" in refused.output
