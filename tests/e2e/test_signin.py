"""Signing in as pipelines do, against `ctsync emulator serve`, with no client secret anywhere:
GitHub Actions' OIDC token (asked by ctsync itself), a federated token file, a certificate.
And every way it goes wrong is one clear message — tenant, method, Entra's sentence, the fix —
with no traceback, no SDK log line and no token byte in any output or file."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.served import Served, start, stop
from tests.reliability.harness import Lab

pytestmark = pytest.mark.e2e

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(tmp_path_factory.mktemp("signin"), "--replication-lag", "0")
    yield served
    stop(served)


@pytest.fixture
def lab(server: Served, tmp_path: Path) -> Lab:
    made = Lab(server, tmp_path)
    made.control("POST", "reset")
    made.control("POST", "seed", {"scenario": "demo"})
    for name in ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID"):
        made.env[name] = ""
    return made


def _auth(config: Path, tenant: str, block: str) -> None:
    """Replace ``tenant``'s auth block (init writes it over four lines) with ``block``."""
    text = config.read_text()
    pattern = re.compile(rf"(  {tenant}:\n(?:    .*\n)*?)    auth:\n(?:      .*\n)+")
    new, count = pattern.subn(lambda m: f"{m.group(1)}    auth: {block}\n", text, count=1)
    assert count == 1, text
    config.write_text(new)


def _no_secrets(config: Path) -> None:
    """Take every client secret away (the tenants the links use must do without; the third
    tenant, in no link, signs in with the Azure CLI, which it never has to)."""
    _auth(config, "tailspin", "{method: azure_cli}")
    shutil.rmtree(config.parent / ".ctsync" / "secrets")


def _clean(run: Any, *, also: tuple[str, ...] = ()) -> None:
    for stream in (run.stdout, run.stderr):
        assert "Traceback" not in stream
        assert "get_token failed" not in stream  # azure-identity's own log line
        assert not JWT.search(stream), stream
        for canary in also:
            assert canary not in stream


def _token_free(folder: Path, *canaries: str) -> None:
    """No token in any file ctsync wrote: plan files, audit trail, journal, ledger."""
    for path in (folder / ".ctsync").rglob("*"):
        if path.is_file() and path.suffix != ".pem":
            data = path.read_bytes()
            assert not JWT.search(data.decode("latin-1")), path
            for canary in canaries:
                assert canary.encode() not in data, path


def test_github_actions_oidc_and_a_token_file_plan_and_apply_with_no_secret(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    contoso, fabrikam = lab.served.tenant("contoso"), lab.served.tenant("fabrikam")
    # Contoso: inside a GitHub Actions job (ctsync asks GitHub's endpoint for the token);
    # Fabrikam: a federated token file, as AKS or a pipeline task leaves one.
    _auth(config, "contoso", f"{{method: workload_identity, client_id: {contoso['client_id']}}}")
    _auth(
        config,
        "fabrikam",
        f"{{method: workload_identity, client_id: {fabrikam['client_id']}, "
        f"token_file: {fabrikam['federated_token_file']}}}",
    )
    _no_secrets(config)
    run = lab.control(
        "POST", "oidc/actions", {"repository": "ctsync/emulator", "environment": "contoso"}
    )
    lab.env["ACTIONS_ID_TOKEN_REQUEST_URL"] = run["ACTIONS_ID_TOKEN_REQUEST_URL"]
    lab.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = run["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    request_token = run["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]

    planned = lab.ctsync(
        "plan", "-c", str(config), "--detailed-exitcode", "--out", str(lab.workdir / "p.json")
    )
    assert planned.returncode == 2, planned.stderr
    applied = lab.ctsync("apply", "-c", str(config), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    again = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    for done in (planned, applied, again):
        _clean(done, also=(request_token,))
    _token_free(config.parent, request_token)
    saved = (lab.workdir / "p.json").read_text()
    assert not JWT.search(saved)
    assert request_token not in saved


def test_a_certificate_plans_with_no_secret(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    for name in ("contoso", "fabrikam"):
        client = lab.served.tenant(name)
        _auth(
            config,
            name,
            f"{{method: certificate, client_id: {client['client_id']}, "
            f"certificate_path: {client['certificate_path']}}}",
        )
    _no_secrets(config)
    planned = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    _clean(planned)


def _one_error(run: Any, tenant: str, method: str, code: str, fix: str) -> None:
    assert run.returncode == 1, run.stdout + run.stderr
    _clean(run)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    assert errors[0].startswith(f"error: tenant {tenant}: {method} sign-in failed: {code}"), errors
    assert f"fix: {fix}" in run.stderr


def test_a_token_for_another_run_is_refused_with_the_fix(lab: Lab) -> None:
    config = lab.config(links="contoso:fabrikam")
    contoso = lab.served.tenant("contoso")
    _auth(config, "contoso", f"{{method: workload_identity, client_id: {contoso['client_id']}}}")
    run = lab.control(
        "POST", "oidc/actions", {"repository": "someone/else", "environment": "contoso"}
    )
    lab.env["ACTIONS_ID_TOKEN_REQUEST_URL"] = run["ACTIONS_ID_TOKEN_REQUEST_URL"]
    lab.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = run["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    planned = lab.ctsync("plan", "-c", str(config))
    _one_error(
        planned, "contoso", "workload_identity", "AADSTS70021", "no federated credential on app"
    )


def test_an_expired_federated_token_is_refused_with_the_fix(lab: Lab, tmp_path: Path) -> None:
    config = lab.config(links="contoso:fabrikam")
    fabrikam = lab.served.tenant("fabrikam")
    minted = lab.control(
        "POST",
        "oidc/token",
        {"subject": "repo:ctsync/emulator:environment:fabrikam", "lifetime": 60},
    )
    token_file = tmp_path / "expired.jwt"
    token_file.write_text(minted["value"])
    lab.control("POST", "clock/advance", {"seconds": 3600})
    _auth(
        config,
        "fabrikam",
        f"{{method: workload_identity, client_id: {fabrikam['client_id']}, "
        f"token_file: {token_file}}}",
    )
    planned = lab.ctsync("plan", "-c", str(config))
    _one_error(
        planned, "fabrikam", "workload_identity", "AADSTS700024", "the federated token has expired"
    )


def test_a_certificate_the_app_does_not_know_is_refused_with_the_fix(
    lab: Lab, tmp_path: Path
) -> None:
    from ctsync.ops.bootstrap import _new_certificate

    pem, _, _ = _new_certificate("not-registered")
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(pem)
    stranger.chmod(0o600)
    config = lab.config(links="contoso:fabrikam")
    contoso = lab.served.tenant("contoso")
    _auth(
        config,
        "contoso",
        f"{{method: certificate, client_id: {contoso['client_id']}, certificate_path: {stranger}}}",
    )
    planned = lab.ctsync("plan", "-c", str(config))
    _one_error(
        planned, "contoso", "certificate", "AADSTS700027", "the certificate is not one of app"
    )
