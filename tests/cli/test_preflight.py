"""`ctsync preflight` and apply's preflight, as a user runs them: a served emulator over HTTPS
(azure-identity, the token endpoint), the demo scenario plus a Contoso client with fewer
permissions."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from ctsync.cli import cli
from ctsync.emulator.scenarios import CTSYNC_PERMISSIONS
from tests.e2e.served import Served, start, stop

pytestmark = pytest.mark.e2e

LITE_ID = "0e0e0e0e-1111-4222-8333-444444444444"
LITE_SECRET = "lite-client-secret"
#: Without Synchronization.ReadWrite.All, which Graph documents for the sync job's writes (the
#: emulator, like Graph's permission reference, also accepts Application.ReadWrite.All there).
LITE_PERMISSIONS = [p for p in CTSYNC_PERMISSIONS if p != "Synchronization.ReadWrite.All"]


def _scenario() -> dict[str, Any]:
    text = resources.files("ctsync.emulator.scenarios").joinpath("demo.json").read_text()
    scenario: dict[str, Any] = json.loads(text)
    contoso = next(t for t in scenario["tenants"] if t["name"] == "contoso")
    contoso["clients"].append(
        {
            "display_name": "ctsync-lite",
            "permissions": LITE_PERMISSIONS,
            "client_id": LITE_ID,
            "client_secret": LITE_SECRET,
        }
    )
    return scenario


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    scenario = tmp / "scenario.json"
    scenario.write_text(json.dumps(_scenario()))
    served = start(tmp, "--scenario", str(scenario), "--replication-lag", "0")
    yield served
    stop(served)


def _tls(served: Served) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=served.info["ca_cert"])


@pytest.fixture
def served(server: Served) -> Served:
    """The module's emulator, reset to the scenario (same seed: same ids and secrets)."""
    control = server.info["control_url"]
    httpx.post(f"{control}/reset", json={}, verify=_tls(server)).raise_for_status()
    seeded = httpx.post(f"{control}/seed", json={"scenario": _scenario()}, verify=_tls(server))
    seeded.raise_for_status()
    assert seeded.json()["tenants"] == server.info["tenants"]
    # Back-to-back runs would wait out the reports quota (5 requests per 10 s) on wall time.
    quotas = httpx.post(f"{control}/faults", json={"quotas": False}, verify=_tls(server))
    quotas.raise_for_status()
    return server


def ctsync(*args: str, input: str | None = None) -> Result:  # noqa: A002 - click's name
    return CliRunner().invoke(cli, list(args), input=input)


def _config(served: Served, tmp_path: Path, links: str = "contoso:fabrikam") -> Path:
    config = tmp_path / "ctsync.yaml"
    made = ctsync(
        "init", "--from-emulator", str(served.info_file), "--links", links, "-o", str(config)
    )
    assert made.exit_code == 0, made.output
    return config


def _edit(config: Path, old: str, new: str) -> None:
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))


def _tenants(served: Served) -> dict[str, Any]:
    state = httpx.get(f"{served.info['control_url']}/state", verify=_tls(served)).json()
    return {t["name"]: t for t in state["tenants"]}


#: What configuration writes change (the provisioning engine changes users and jobs on its own
#: clock once a job runs, so those are left out after an apply).
_CONFIGURATION = (
    "clients",
    "groups",
    "partners",
    "identity_synchronization",
    "default_policy_customized",
    "applications",
    "service_principals",
    "app_role_assignments",
)


def _configuration(served: Served) -> dict[str, Any]:
    return {
        name: {key: tenant[key] for key in _CONFIGURATION}
        for name, tenant in _tenants(served).items()
    }


def _findings(result: Result) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = json.loads(result.stdout)["findings"]
    return findings


def _codes(findings: list[dict[str, Any]], severity: str | None = None) -> set[str]:
    return {f["code"] for f in findings if severity is None or f["severity"] == severity}


def _graph_patch(served: Served, tenant: str, path: str, body: dict[str, Any]) -> None:
    """A change made outside ctsync: the tenant's own client, through the token endpoint."""
    entry = served.tenant(tenant)
    token = httpx.post(
        f"{served.info['authority']}/{entry['tenant_id']}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": entry["client_id"],
            "client_secret": entry["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
        },
        verify=_tls(served),
    ).json()["access_token"]
    answer = httpx.patch(
        f"{served.info['graph_url']}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=_tls(served),
    )
    assert answer.status_code == 204, answer.text


def test_preflight_on_the_demo_names_the_findings_and_writes_nothing(
    served: Served, tmp_path: Path
) -> None:
    config = _config(served, tmp_path, "contoso:fabrikam,contoso:tailspin")
    trail = tmp_path / ".ctsync" / "audit.sqlite"
    before = _tenants(served)

    table = ctsync("preflight", "-c", str(config))
    assert table.exit_code == 0, table.output
    for text in (
        "isaiah@contoso.com",
        "user.sms-sign-in",
        "--fix sms-sign-in",
        "diego@contoso.com",
        "user.no-mfa",
        "jordan_northwind.example",
        "user.external",
        "ca.mfa-missing",
        "0 error(s)",
    ):
        assert text in table.stdout, text

    result = ctsync("preflight", "-c", str(config), "--output", "json")
    assert result.exit_code == 0, result.output
    findings = _findings(result)
    assert not _codes(findings, "error")
    missing = [f for f in findings if f["code"] == "ca.mfa-missing"]
    assert [(f["link"], f["tenant"]) for f in missing] == [("contoso:fabrikam", "fabrikam")]
    assert all({"severity", "code", "link", "tenant", "message", "fix"} <= set(f) for f in findings)
    assert _tenants(served) == before
    assert not trail.exists()

    # With a trail from an apply, preflight leaves it byte for byte as it was.
    assert ctsync("apply", "-c", str(config), "--auto-approve").exit_code == 0
    recorded, state = trail.read_bytes(), _configuration(served)
    assert ctsync("preflight", "-c", str(config)).exit_code == 0
    assert trail.read_bytes() == recorded
    assert _configuration(served) == state


def test_a_missing_permission_fails_preflight_and_apply_until_skipped(
    served: Served, tmp_path: Path
) -> None:
    config = _config(served, tmp_path)
    secret = tmp_path / ".ctsync" / "secrets" / "contoso-lite.secret"
    secret.write_text(LITE_SECRET + "\n")
    _edit(config, f"client_id: {served.tenant('contoso')['client_id']}", f"client_id: {LITE_ID}")
    _edit(config, ".ctsync/secrets/contoso.secret", ".ctsync/secrets/contoso-lite.secret")

    result = ctsync("preflight", "-c", str(config), "--output", "json")
    assert result.exit_code == 1, result.output
    missing = [f for f in _findings(result) if f["code"] == "permission.missing"]
    assert [(f["tenant"], f["subject"], f["severity"]) for f in missing] == [
        ("contoso", "Synchronization.ReadWrite.All", "error")
    ]

    refused = ctsync("apply", "-c", str(config), "--auto-approve")
    assert refused.exit_code == 1
    assert "apply refused" in refused.output
    assert "Synchronization.ReadWrite.All" in refused.stdout
    assert _tenants(served)["contoso"]["applications"] == 0

    # The operator knows better (the app's other grant covers it): skip, and it is recorded.
    applied = ctsync("apply", "-c", str(config), "--auto-approve", "--skip-preflight")
    assert applied.exit_code == 0, applied.output
    shown = ctsync("audit", "show", "-c", str(config), "--output", "json")
    notes = [r for r in json.loads(shown.stdout) if r["method"] == "NOTE"]
    assert [(r["link"], r["step"], r["path"]) for r in notes] == [
        ("contoso:fabrikam", "preflight.skipped", "-")
    ]
    assert notes[0]["seq"] == 1  # before the writes it let through
    assert ctsync("audit", "verify", "-c", str(config)).exit_code == 0


def test_automatic_redemption_off_exits_1_and_apply_changes_nothing(
    served: Served, tmp_path: Path
) -> None:
    config = _config(served, tmp_path)
    _edit(config, "automatic_redemption: true", "automatic_redemption: false")
    result = ctsync("preflight", "-c", str(config), "--output", "json")
    assert result.exit_code == 1
    assert "redemption.off-in-config" in _codes(_findings(result), "error")

    before = _tenants(served)
    refused = ctsync("apply", "-c", str(config), "--auto-approve", "--output", "json")
    assert refused.exit_code == 1
    payload = json.loads(refused.stdout)
    assert payload["report"] is None
    assert "redemption.off-in-config" in _codes(payload["preflight"]["findings"], "error")
    assert _tenants(served) == before
    assert not (tmp_path / ".ctsync" / "audit.sqlite").exists()


def test_a_read_only_target_that_blocks_sync_exits_1(served: Served, tmp_path: Path) -> None:
    config = _config(served, tmp_path)
    _edit(config, "  fabrikam:\n", "  fabrikam:\n    managed: false\n")
    result = ctsync("preflight", "-c", str(config), "--output", "json")
    assert result.exit_code == 1
    errors = _codes(_findings(result), "error")
    assert {"redemption.inbound-blocked", "sync.inbound-blocked"} <= errors
    assert ctsync("apply", "-c", str(config), "--auto-approve").exit_code == 1
    assert _tenants(served)["contoso"]["applications"] == 0


def test_live_drift_in_a_managed_tenant_is_a_warning_apply_repairs(
    served: Served, tmp_path: Path
) -> None:
    config = _config(served, tmp_path)
    assert ctsync("apply", "-c", str(config), "--auto-approve").exit_code == 0
    contoso_id = served.tenant("contoso")["tenant_id"]
    _graph_patch(
        served,
        "fabrikam",
        f"/policies/crossTenantAccessPolicy/partners/{contoso_id}",
        {"automaticUserConsentSettings": {"inboundAllowed": False}},
    )
    result = ctsync("preflight", "-c", str(config), "--output", "json")
    assert result.exit_code == 0, result.output
    drift = [f for f in _findings(result) if f["code"] == "redemption.inbound-drift"]
    assert [(f["severity"], f["tenant"]) for f in drift] == [("warning", "fabrikam")]

    assert ctsync("apply", "-c", str(config), "--auto-approve").exit_code == 0
    again = ctsync("preflight", "-c", str(config), "--output", "json")
    assert "redemption.inbound-drift" not in _codes(_findings(again))


def test_fix_sms_sign_in_asks_changes_isaiah_and_records_one_row(
    served: Served, tmp_path: Path
) -> None:
    config = _config(served, tmp_path, "contoso:fabrikam,contoso:tailspin")
    declined = ctsync("preflight", "-c", str(config), "--fix", "sms-sign-in")
    assert declined.exit_code == 1  # no terminal and no --auto-approve: nothing changes
    assert "isaiah@contoso.com" in declined.output
    assert not (tmp_path / ".ctsync" / "audit.sqlite").exists()

    fixed = ctsync(
        "preflight", "-c", str(config), "--fix", "sms-sign-in", "--auto-approve", "--output", "json"
    )
    assert fixed.exit_code == 0, fixed.output
    payload = json.loads(fixed.stdout)
    assert [(f["user"], f["ok"]) for f in payload["fixes"]] == [("isaiah@contoso.com", True)]

    shown = ctsync("audit", "show", "-c", str(config), "--output", "json")
    records = json.loads(shown.stdout)
    assert [(r["step"], r["link"], r["method"], r["status"]) for r in records] == [
        ("preflight.fix.sms-sign-in", "contoso:fabrikam", "POST", 204)
    ]
    assert records[0]["path"].endswith("/disableSmsSignIn")

    again = ctsync("preflight", "-c", str(config), "--output", "json")
    assert "user.sms-sign-in" not in _codes(_findings(again))
    nothing = ctsync("preflight", "-c", str(config), "--fix", "sms-sign-in")
    assert "nothing to fix" in nothing.stdout
    assert (
        len(json.loads(ctsync("audit", "show", "-c", str(config), "--output", "json").stdout)) == 1
    )
