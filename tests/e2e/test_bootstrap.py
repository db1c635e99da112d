"""`ctsync bootstrap` against `ctsync emulator serve`, as an administrator runs it: a device code
sign-in (approved through the control API as a named user), then ctsync's own app registration
with exactly the permissions the tenant's duties need, a local certificate and the config's auth
block — after which `plan` and `apply` run on that certificate, with no secret anywhere. A second
run creates nothing; an account without the role is one clear message and nothing changes."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctsync.permissions import Side, application_permissions
from tests.e2e.served import Served, start, stop
from tests.reliability.harness import Lab, Run, audit_records

pytestmark = pytest.mark.e2e

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")
ADMINS = {"contoso": "lee@contoso.com", "fabrikam": "miriam@fabrikam.com"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(tmp_path_factory.mktemp("bootstrap"), "--replication-lag", "0")
    yield served
    stop(served)


@pytest.fixture
def lab(server: Served, tmp_path: Path) -> Lab:
    made = Lab(server, tmp_path)
    made.control("POST", "reset")
    made.control("POST", "seed", {"scenario": "demo"})
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        made.env[name] = ""
    return made


def _secrets(server: Served) -> list[str]:
    return [str(c["client_secret"]) for c in server.info["tenants"]]


def _bootstrap(lab: Lab, config: Path, tenant: str, *extra: str, user: str | None = None) -> Run:
    """Queue the administrator's device code approval, then run bootstrap to its end."""
    lab.control("POST", "signin/next", {"user": user or ADMINS[tenant]})
    return lab.ctsync("bootstrap", "-c", str(config), tenant, "--output", "json", *extra)


def _apps(lab: Lab, tenant: str) -> list[dict[str, Any]]:
    with lab.graph(tenant) as graph:
        listed: list[dict[str, Any]] = graph.get("/applications").json()["value"]
    return listed


def _no_secret_in(text: str, server: Served) -> None:
    assert "PRIVATE KEY" not in text
    assert not JWT.search(text)
    for secret in _secrets(server):
        assert secret not in text


def _dates_are_the_certificate_s(app: dict[str, Any], pem: Path) -> None:
    """The key credential's dates are the certificate's own (Entra refuses dates outside it:
    taken from the clock instead, a second boundary between the two made bootstrap fail)."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    [key] = app["keyCredentials"]
    assert key["startDateTime"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert key["endDateTime"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_bootstrap_sets_up_each_tenant_and_plan_runs_on_its_certificate(
    lab: Lab, server: Served
) -> None:
    config = lab.config(links="contoso:fabrikam")
    before = {t: len(_apps(lab, t)) for t in ADMINS}

    # As in a real tenant, a new app and service principal take seconds to replicate.
    lab.faults({"replication_lag": 2})
    runs = {tenant: _bootstrap(lab, config, tenant) for tenant in ADMINS}
    lab.faults({"replication_lag": 0})

    for tenant, run in runs.items():
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
        # The device code prompt is for the person at the terminal: on stderr, never stdout.
        assert "enter the code" in run.stderr
        # Where no OS keyring exists (as here, in CI) ctsync says so in one line, and goes on.
        for line in run.stderr.splitlines():
            assert not line.startswith("warning:") or "no OS keyring here" in line, line
        assert "allow_unencrypted_storage" not in run.stderr
        shown = run.json()
        assert shown["signed_in_as"] == ADMINS[tenant]
        assert shown["reused"] == []
        pem = config.parent / ".ctsync" / "certs" / f"{tenant}.pem"
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
        assert shown["auth"] == {
            "method": "certificate",
            "client_id": shown["app_id"],
            "certificate_path": f".ctsync/certs/{tenant}.pem",
        }
        side: Side = "source" if tenant == "contoso" else "target"
        assert shown["permissions"] == list(application_permissions([side]))
        assert len(_apps(lab, tenant)) == before[tenant] + 1
        _no_secret_in(run.stdout + run.stderr, server)

    # The app holds exactly the tenant's permissions, granted (admin consent).
    with lab.graph("contoso") as graph:
        app_id = runs["contoso"].json()["app_id"]
        [sp] = graph.get("/servicePrincipals", params={"$filter": f"appId eq '{app_id}'"}).json()[
            "value"
        ]
        [microsoft_graph] = graph.get(
            "/servicePrincipals",
            params={"$filter": "appId eq '00000003-0000-0000-c000-000000000000'"},
        ).json()["value"]
        assigned = graph.get(f"/servicePrincipals/{microsoft_graph['id']}/appRoleAssignedTo")
        app = graph.get(f"/applications(appId='{app_id}')").json()
    granted = [a for a in assigned.json()["value"] if a["principalId"] == sp["id"]]
    assert len(granted) == len(runs["contoso"].json()["permissions"])
    _dates_are_the_certificate_s(app, config.parent / ".ctsync" / "certs" / "contoso.pem")

    from ctsync.config import load

    loaded = load(config)
    # Written as a person would write it: one key a line, the rest of the file as it was.
    assert "    auth:\n      method: certificate\n      client_id: " in config.read_text()
    assert config.read_text().startswith(
        "# yaml-language-server: $schema=./ctsync.schema.json\n# ctsync config for the emulator"
    )
    for tenant in ADMINS:
        assert loaded.tenants[tenant].auth.method == "certificate"
        # The secret files init wrote are not what signs in any more: gone, plan still runs.
        (config.parent / ".ctsync" / "secrets" / f"{tenant}.secret").unlink()
    _no_secret_in(config.read_text(), server)
    planned = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    applied = lab.ctsync("apply", "-c", str(config), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert lab.ctsync("plan", "-c", str(config), "--detailed-exitcode").returncode == 0

    # The trail records bootstrap's writes, and nothing secret.
    records = audit_records(config)
    made = {(r["actor_tenant"], r["method"], r["path"]) for r in records if r["status"] == 201}
    for tenant in ADMINS:
        tenant_id = loaded.tenants[tenant].tenant_id
        assert (tenant_id, "POST", "/applications") in made
        assert (tenant_id, "POST", "/servicePrincipals") in made
    _no_secret_in(repr(records), server)


def test_a_second_run_creates_nothing(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    first = _bootstrap(lab, config, "contoso")
    assert first.returncode == 0, first.stderr
    written = config.read_text()

    again = _bootstrap(lab, config, "contoso")
    assert again.returncode == 0, again.stderr
    shown = again.json()
    assert shown["created"] == []
    assert shown["app_id"] == first.json()["app_id"]
    assert config.read_text() == written
    assert len([a for a in _apps(lab, "contoso") if "ctsync:bootstrap" in a["tags"]]) == 1

    # The text says so, for a person — who signs in with the emulator's own command.
    info = str(lab.served.info_file)
    queued = lab.ctsync("emulator", "sign-in", info, "--user", ADMINS["contoso"])
    assert queued.returncode == 0, queued.stderr
    assert (
        queued.stdout == "the next sign-in to tenant contoso is lee@contoso.com's (self consent)\n"
    )
    text = lab.ctsync("bootstrap", "-c", str(config), "contoso")
    assert text.returncode == 0, text.stderr
    assert "Nothing to create: ctsync's app was already set up." in text.stdout


def test_dry_run_shows_what_it_would_create_and_changes_nothing(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    written = config.read_text()
    before = _apps(lab, "contoso")
    run = _bootstrap(lab, config, "contoso", "--dry-run")
    assert run.returncode == 0, run.stderr
    shown = run.json()
    assert shown["dry_run"] is True
    assert shown["created"][0] == "app registration 'ctsync'"
    assert any(item.startswith("permission ") for item in shown["created"])
    assert _apps(lab, "contoso") == before
    assert config.read_text() == written
    assert not (config.parent / ".ctsync" / "certs").exists()


def _one_error(run: Run) -> str:
    assert run.returncode == 1, run.stdout
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    return run.stderr[run.stderr.index("error:") :]


def test_an_account_without_the_role_changes_nothing_and_names_the_role(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    # An administrator once consented to Graph Command Line Tools for everyone (common in real
    # tenants), so an ordinary user's sign-in gets the scopes; the role is what they lack.
    lab.control("POST", "signin/next", {"user": ADMINS["contoso"], "consent": "organization"})
    dry = lab.ctsync("bootstrap", "-c", str(config), "contoso", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    written = config.read_text()
    before = _apps(lab, "contoso")

    run = _bootstrap(lab, config, "contoso", user="megan@contoso.com")

    said = _one_error(run)
    assert "megan@contoso.com may not grant Microsoft Graph application permissions" in said
    assert "Privileged Role Administrator or Global Administrator" in said
    assert "Nothing was changed." in said
    assert _apps(lab, "contoso") == before
    assert config.read_text() == written
    assert not (config.parent / ".ctsync" / "certs").exists()


def test_a_sign_in_without_consent_is_one_message_with_the_fix(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    before = _apps(lab, "contoso")
    run = _bootstrap(lab, config, "contoso", user="megan@contoso.com")
    said = _one_error(run)
    assert "tenant contoso: device_code sign-in failed: AADSTS" in said
    assert "fix:" in said
    assert _apps(lab, "contoso") == before


def test_the_emulator_sign_in_command_says_what_went_wrong(lab: Lab, tmp_path: Path) -> None:
    info = str(lab.served.info_file)
    nobody = lab.ctsync("emulator", "sign-in", info, "--user", "nobody@contoso.com")
    assert nobody.returncode == 1
    assert nobody.stderr.startswith("Error: the emulator refused: ")
    stale = lab.ctsync("emulator", "sign-in", info, "--user", "lee@contoso.com", "--code", "NOPE")
    assert stale.returncode == 1
    assert "No device code with user code 'NOPE' is pending." in stale.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("[]")
    bad = lab.ctsync("emulator", "sign-in", str(junk), "--user", "lee@contoso.com")
    assert bad.returncode == 1
    assert "is not an emulator info file" in bad.stderr
    assert lab.control("GET", "signin/pending")["next"] == []


def test_bootstrap_a_federated_credential_and_the_pipeline_signs_in_with_it(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    # The emulator's own issuer stands in for GitHub's (--github writes GitHub's issuer).
    issuer = lab.served.info["oidc_issuer"]
    subject = "repo:my-org/tenants:environment:production"
    for tenant in ADMINS:
        run = _bootstrap(
            lab,
            config,
            tenant,
            "--federated-issuer",
            issuer,
            "--federated-subject",
            subject,
        )
        assert run.returncode == 0, run.stderr
        shown = run.json()
        assert shown["auth"] == {"method": "workload_identity", "client_id": shown["app_id"]}
        assert shown["federation"] == {"issuer": issuer, "subject": subject}
    assert not (config.parent / ".ctsync" / "certs").exists()

    # A job of that repository's environment: ctsync asks for the job's token itself.
    job = lab.control(
        "POST", "oidc/actions", {"repository": "my-org/tenants", "environment": "production"}
    )
    lab.env["ACTIONS_ID_TOKEN_REQUEST_URL"] = job["ACTIONS_ID_TOKEN_REQUEST_URL"]
    lab.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = job["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    for tenant in ADMINS:
        (config.parent / ".ctsync" / "secrets" / f"{tenant}.secret").unlink()
    planned = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr

    # Another environment's job is not trusted.
    other = lab.control(
        "POST", "oidc/actions", {"repository": "my-org/tenants", "environment": "dev"}
    )
    lab.env["ACTIONS_ID_TOKEN_REQUEST_URL"] = other["ACTIONS_ID_TOKEN_REQUEST_URL"]
    lab.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = other["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    refused = lab.ctsync("plan", "-c", str(config))
    assert "AADSTS70021" in _one_error(refused)
