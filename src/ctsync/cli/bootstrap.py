"""``ctsync bootstrap``: sign an administrator in to one tenant and set up ctsync's own app
registration there, then write the tenant's ``auth`` block into the config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ctsync.cli._common import (
    Command,
    audit_option,
    config_option,
    echo_json,
    fail,
    file_path,
    load_config,
    output_option,
    state_dir,
)
from ctsync.errors import CtsyncError
from ctsync.render.text import printable

if TYPE_CHECKING:
    from ctsync.config import TenantSpec
    from ctsync.ops.bootstrap import BootstrapResult, Federation

__all__ = ["bootstrap"]

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@click.command("bootstrap")
@config_option
@click.argument("tenant")
@click.option(
    "--sign-in",
    type=click.Choice(["device-code", "browser"]),
    default="device-code",
    show_default=True,
    help="How the administrator signs in: a device code (any machine) or a browser here.",
)
@click.option(
    "--certificate",
    "certificate",
    type=file_path(dir_okay=False),
    default=None,
    help="Where the app's certificate and private key are kept (PEM, mode 0600) "
    "[default: .ctsync/certs/TENANT.pem beside the config].",
)
@click.option(
    "--github",
    "repository",
    metavar="OWNER/REPO",
    default=None,
    help="Instead of a certificate, trust GitHub Actions runs of this repository (a "
    "federated credential; no secret anywhere).",
)
@click.option("--branch", default=None, help="With --github: runs on this branch [main].")
@click.option("--environment", default=None, help="With --github: runs in this environment.")
@click.option(
    "--pull-requests",
    is_flag=True,
    help="With --github: runs for pull requests (plans). They get the same permissions.",
)
@click.option(
    "--federated-issuer",
    default=None,
    metavar="URL",
    help="Instead of a certificate, trust tokens of this OIDC issuer (with --federated-subject).",
)
@click.option("--federated-subject", default=None, metavar="SUBJECT")
@click.option(
    "--app-name",
    default="ctsync",
    show_default=True,
    help="The app registration's name (a re-run finds it by this name and ctsync's tag).",
)
@click.option(
    "--dry-run", is_flag=True, help="Sign in and show what would be created; change nothing."
)
@audit_option
@output_option("text", "json")
def bootstrap(
    config_path: Path,
    tenant: str,
    sign_in: str,
    certificate: Path | None,
    repository: str | None,
    branch: str | None,
    environment: str | None,
    pull_requests: bool,
    federated_issuer: str | None,
    federated_subject: str | None,
    app_name: str,
    dry_run: bool,
    audit_db: Path | None,
    output: str,
) -> None:
    """Set up ctsync's app registration in TENANT, signed in as an administrator.

    Creates (or finds again) the app and its service principal, grants exactly the Microsoft
    Graph application permissions TENANT's place in the config needs (admin consent: needs a
    Privileged Role Administrator or Global Administrator), adds a credential — a certificate
    made here whose private key never leaves this machine, or a federated credential for a
    GitHub repository — and writes TENANT's auth block into the config. Run it again: it
    creates nothing that is there.
    """
    from ctsync.permissions import sides_of

    desired = load_config(config_path)
    spec = desired.tenants.get(tenant)
    if spec is None:
        listed = ", ".join(sorted(desired.tenants))
        fail(f"no tenant {tenant!r} in {desired.path} (tenants: {listed})")
    if not spec.managed:
        fail(
            f"tenant {tenant} is managed: false: ctsync only reads it, and its own "
            "administrators grant that access. Bootstrap sets up tenants ctsync manages."
        )
    sides = sides_of(desired, tenant)
    if not sides:
        fail(f"tenant {tenant} is in no link of {desired.path}: nothing for ctsync to do there")
    federation = _federation(
        tenant,
        repository,
        (branch, environment, pull_requests),
        federated_issuer,
        federated_subject,
    )
    target = certificate or state_dir(desired) / "certs" / f"{tenant}.pem"
    admin: dict[str, Any] = {}
    with Command(
        desired,
        name="bootstrap",
        writes=not dry_run,
        audit_db=audit_db,
        on_token=lambda token: admin.update(_claims(token)),
        credentials=lambda t: _admin_credential(t, sign_in, state_dir(desired)),
    ) as command:
        from ctsync.ops.bootstrap import bootstrap as run_bootstrap

        result = command.run(
            lambda session: run_bootstrap(
                session,
                spec,
                sides=sides,
                app_name=app_name,
                certificate_path=None if federation else target,
                config_dir=desired.base_dir,
                federation=federation,
                admin=admin,
                dry_run=dry_run,
            )
        )
    if not dry_run:
        _write_auth(config_path, tenant, result.auth)
    if output == "json":
        echo_json({**result.to_dict(), "config": str(config_path), "written": not dry_run})
        return
    click.echo(_text(result, config_path))


def _federation(
    tenant: str,
    repository: str | None,
    runs: tuple[str | None, str | None, bool],
    issuer: str | None,
    subject: str | None,
) -> Federation | None:
    from ctsync.ops.bootstrap import GITHUB_ISSUER, Federation, github_subject

    branch, environment, pull_requests = runs
    if repository is not None and (issuer or subject):
        fail("give --github or --federated-issuer/--federated-subject, not both")
    if (branch or environment or pull_requests) and repository is None:
        fail("--branch, --environment and --pull-requests go with --github OWNER/REPO")
    if sum(bool(x) for x in runs) > 1:
        fail("give one of --branch, --environment and --pull-requests")
    if repository is not None:
        if not _REPOSITORY.match(repository):
            fail(f"--github takes OWNER/REPO, not {repository!r}")
        sub = github_subject(
            repository, branch=branch, environment=environment, pull_requests=pull_requests
        )
        name = re.sub(r"[^A-Za-z0-9_-]", "-", f"ctsync-{sub}")[:120]
        return Federation(GITHUB_ISSUER, sub, name, description=f"GitHub Actions: {sub}")
    if bool(issuer) != bool(subject):
        fail("--federated-issuer and --federated-subject go together")
    if issuer and subject:
        if not issuer.startswith("https://"):
            fail(f"--federated-issuer must be an https:// URL, not {issuer!r}")
        name = re.sub(r"[^A-Za-z0-9_-]", "-", f"ctsync-{tenant}-{subject}")[:120]
        return Federation(issuer, subject, name)
    return None


def _admin_credential(tenant: TenantSpec, sign_in: str, state: Path) -> Any:
    from ctsync.graph import AuthSpec, build_credential
    from ctsync.permissions import BOOTSTRAP_SCOPES

    method = "interactive_browser" if sign_in == "browser" else "device_code"
    cache = tenant.auth.token_cache if tenant.auth.method == method else "keyring"
    spec = AuthSpec(method, token_cache=cache, scopes=BOOTSTRAP_SCOPES)
    return build_credential(
        spec,
        tenant_id=tenant.tenant_id,
        cloud=tenant.cloud,
        name=tenant.name,
        record_dir=state / "auth" / "bootstrap",
    )


def _claims(token: str) -> dict[str, Any]:
    import base64
    import binascii
    import json

    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    # Only who signed in and their roles are kept: nothing of the token itself.
    keep = ("wids", "upn", "preferred_username", "unique_name", "name", "tid")
    return {k: data[k] for k in keep if isinstance(data, dict) and k in data}


def _write_auth(config_path: Path, tenant: str, auth: dict[str, Any]) -> None:
    from ctsync.config import loads, set_tenant_keys

    try:
        text = set_tenant_keys(
            config_path.read_text(encoding="utf-8"),
            name=str(config_path),
            settings={tenant: {"auth": auth}},
        )
        loads(text, path=config_path)  # what is written must load
    except (CtsyncError, OSError) as exc:
        fail(
            f"the app is set up, but {config_path} could not be updated ({exc}); set "
            f"tenants.{tenant}.auth to {auth} by hand"
        )
    tmp = config_path.with_name(f".{config_path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(config_path)


def _text(result: BootstrapResult, config_path: Path) -> str:
    verb = "Would create" if result.dry_run else "Created"
    who = f" as {result.signed_in_as}" if result.signed_in_as else ""
    lines = [
        f"Tenant {result.tenant} ({result.tenant_id}), signed in{who}; "
        f"ctsync's duties there: {' and '.join(result.sides)}.",
    ]
    if result.created:
        lines.append(f"{verb}:")
        lines.extend(f"  + {printable(item)}" for item in result.created)
    if result.reused:
        lines.append("Already there (reused):")
        lines.extend(f"  = {printable(item)}" for item in result.reused)
    if result.dry_run:
        lines.append("Dry run: nothing was changed, in the tenant or in the config.")
        return "\n".join(lines)
    if not result.created:
        lines.append("Nothing to create: ctsync's app was already set up.")
    lines.append(
        f"Wrote tenants.{result.tenant}.auth to {config_path} (method {result.auth['method']}, "
        f"client_id {result.app_id}); no secret is in it."
    )
    if result.credential == "federated":
        lines.append(
            "In the pipeline, ctsync signs in with the job's OIDC token (GitHub Actions: "
            "`permissions: id-token: write`)."
        )
    lines.append(f"Next: `ctsync plan -c {config_path}`.")
    return "\n".join(lines)
