"""Brownfield, as a new user meets it: `ctsync emulator serve --scenario brownfield` holds a
portal-made "Sync to Fabrikam" configuration that has run for a while, an MTO configuration
without a job, and partner settings ctsync does not model (B2B direct connect, tenant
restrictions, MTO entries). Replication lag is on, as `serve` has it by default."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.served import Served, start, stop
from tests.reliability.harness import Lab

pytestmark = pytest.mark.e2e

POLICY = "/policies/crossTenantAccessPolicy"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(tmp_path_factory.mktemp("brownfield"), "--scenario", "brownfield")
    yield served
    stop(served)


@pytest.fixture
def lab(server: Served, tmp_path: Path) -> Lab:
    made = Lab(server, tmp_path)
    made.reset(scenario="brownfield")
    made.env["CTSYNC_REPLICATION_WAIT"] = "10"
    return made


def _tenants_only(lab: Lab) -> Path:
    config = lab.config(links="contoso:fabrikam")
    text = config.read_text()
    config.write_text(text[: text.index("\nlinks:")] + "\nlinks: []\n")
    return config


def _raw(lab: Lab) -> dict[str, Any]:
    ids = {t["name"]: t["tenant_id"] for t in lab.served.info["tenants"]}
    out: dict[str, Any] = {}
    with lab.graph("fabrikam") as fabrikam:
        out["fabrikam partner"] = fabrikam.get(f"{POLICY}/partners/{ids['contoso']}").json()
        out["fabrikam sync"] = fabrikam.get(
            f"{POLICY}/partners/{ids['contoso']}/identitySynchronization"
        ).json()
        out["fabrikam default"] = fabrikam.get(f"{POLICY}/default").json()
    with lab.graph("contoso") as contoso:
        out["contoso partner"] = contoso.get(f"{POLICY}/partners/{ids['fabrikam']}").json()
        out["contoso default"] = contoso.get(f"{POLICY}/default").json()
        out["contoso apps"] = sorted(
            sp["id"] for sp in contoso.get("/servicePrincipals").json()["value"]
        )
    return out


def _import(lab: Lab, config: Path) -> dict[str, Any]:
    imported = lab.ctsync("import", "-c", str(config), "--output", "json")
    assert imported.returncode == 0, imported.stderr
    report: dict[str, Any] = imported.json()
    return report


def test_import_then_plan_shows_nothing(lab: Lab) -> None:
    config = _tenants_only(lab)
    report = _import(lab, config)
    found = {c["name"]: c for c in report["configurations"]}
    portal = found["Sync to Fabrikam"]
    assert (portal["target"], portal["identified_by"], portal["link"]) == (
        "fabrikam",
        "provisioning logs",
        "contoso:fabrikam",
    )
    mto = next(c for name, c in found.items() if name.startswith("MTO_Sync_"))
    assert (mto["target"], mto["identified_by"]) == ("tailspin", "MTO name")
    assert mto["link"] is None
    assert "no job" in mto["skipped"]
    text = config.read_text()
    assert f"adopt: {portal['service_principal']}" in text
    assert "employeeId: '\"N/A\"'" in text  # a readable mapping, not raw schema JSON
    assert "filter: department EQUALS 'Sales'" in text
    # Contoso's admin customised its default policy (MFA trusted): it comes in as
    # default_access; Fabrikam's is Microsoft's default and stays out of the config.
    assert report["default_access"]["contoso"]["inbound_trust"]["mfa"] is True
    assert "fabrikam" not in report["default_access"]
    contoso_block = text[text.index("  contoso:") : text.index("  fabrikam:")]
    assert "default_access:" in contoso_block
    assert report["plan"]["steps"] == []
    planned = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr


def test_a_link_beside_a_portal_configuration_stops_plan_and_apply(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    before = _raw(lab)
    planned = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert planned.returncode == 1
    assert "'Sync to Fabrikam'" in planned.stdout
    assert re.search(r"adopt: [0-9a-f-]{36}", planned.stdout)
    applied = lab.ctsync("apply", "-c", str(config), "--auto-approve")
    assert applied.returncode == 1
    assert "nothing was changed" in applied.stderr or "Nothing was changed" in applied.stderr
    assert _raw(lab) == before  # no second configuration, nothing written


def test_apply_then_destroy_gives_back_everything_ctsync_did_not_make(lab: Lab) -> None:
    config = _tenants_only(lab)
    _import(lab, config)
    before = _raw(lab)
    applied = lab.ctsync("apply", "-c", str(config), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    destroyed = lab.ctsync("destroy", "-c", str(config), "--auto-approve", "--keep-users")
    assert destroyed.returncode == 0, destroyed.stderr
    after = _raw(lab)
    keys = ("fabrikam partner", "fabrikam sync", "contoso partner", "contoso apps")
    for key in (*keys, "contoso default", "fabrikam default"):
        assert after[key] == before[key], key


def test_one_hand_change_shows_as_one_drifted_field(lab: Lab) -> None:
    config = _tenants_only(lab)
    _import(lab, config)
    contoso_id = next(t["tenant_id"] for t in lab.served.info["tenants"] if t["name"] == "contoso")
    with lab.graph("fabrikam") as fabrikam:  # in the portal: stop trusting Contoso's MFA
        changed = fabrikam.patch(
            f"{POLICY}/partners/{contoso_id}",
            json={
                "inboundTrust": {
                    "isMfaAccepted": False,
                    "isCompliantDeviceAccepted": True,
                    "isHybridAzureADJoinedDeviceAccepted": False,
                }
            },
        )
        assert changed.status_code == 204
    planned = lab.ctsync("plan", "-c", str(config), "--output", "json")
    steps = json.loads(planned.stdout)["steps"]
    assert [(s["id"], [c["field"] for c in s["changes"]]) for s in steps] == [
        ("fabrikam/partner/contoso", ["inboundTrust"])
    ]
