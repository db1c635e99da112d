"""``ctsync emulator``: serve the Graph/Entra emulator over HTTPS for any Graph client."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctsync.cli._common import file_path, need_emulator

if TYPE_CHECKING:
    from ctsync.emulator import FaultProfile

__all__ = ["emulator"]

DEFAULT_PORT = 8443

#: Seconds a served emulator hides a newly created object (emulator time): Entra replicates a
#: new application, service principal or policy object across its directory replicas before
#: every read sees it, and Microsoft says a new configuration "can take up to 15 seconds" to
#: show. Two seconds makes every client meet the 404-right-after-create case without slowing a
#: test suite down much.
DEFAULT_REPLICATION_LAG = 2.0


@click.group()
def emulator() -> None:
    """Run the Microsoft Graph / Entra ID emulator."""


@emulator.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Anything but loopback exposes the unauthenticated control API.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to bind; 0 picks a free port (read it from the info file).",
)
@click.option("--no-tls", is_flag=True, help="Serve plain HTTP (azure-identity needs HTTPS).")
@click.option(
    "--scenario",
    default="demo",
    show_default=True,
    metavar="demo|empty|brownfield|FILE",
    help="Tenants to seed: a built-in scenario or a JSON scenario file.",
)
@click.option(
    "--info-file",
    type=file_path(dir_okay=False),
    help="Write URLs, the CA path and the tenants' client credentials here (JSON, mode 0600) "
    "once the server is ready; removed on exit.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(min=0),
    help="Latency added to every Graph response, in milliseconds.",
)
@click.option(
    "--faults",
    metavar="SPEC",
    help="Fault profile, comma-separated key=value, e.g. '429=5%,latency=100ms,lag=2'.",
)
@click.option(
    "--replication-lag",
    type=click.FloatRange(min=0),
    default=DEFAULT_REPLICATION_LAG,
    show_default=True,
    metavar="SECONDS",
    help="Emulator seconds a newly created object (application, service principal, job, "
    "partner, ...) stays invisible to reads, as in a real tenant; 0 turns it off. A lag in "
    "--faults wins until the next control reset, which comes back to this value.",
)
@click.option(
    "--no-extra-properties",
    is_flag=True,
    help="Leave out the undocumented properties real Graph answers carry (on by default, so "
    "clients learn to ignore unknown properties).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for ids and faults.")
@click.option(
    "--state-dir",
    type=file_path(file_okay=False),
    help="Where to keep the TLS material (default: a temporary directory removed on exit).",
)
@click.option("--access-log", is_flag=True, help="Log every request (method, path, status).")
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host header names NAME (repeatable; added to the TLS "
    "certificate). Loopback names and the bind address are always allowed; '*' allows any.",
)
def serve(
    *,
    host: str,
    port: int,
    no_tls: bool,
    scenario: str,
    info_file: Path | None,
    latency_ms: int | None,
    faults: str | None,
    replication_lag: float,
    no_extra_properties: bool,
    seed: int,
    state_dir: Path | None,
    access_log: bool,
    allow_hosts: tuple[str, ...],
) -> None:
    """Serve the emulator until interrupted (Ctrl+C or SIGTERM).

    Bind loopback (the default): the control API under /_emulator takes no token.
    """
    need_emulator("uvicorn", "jwt")
    from ctsync.emulator import Emulator, OffsetClock
    from ctsync.emulator.server import ServerAddress, bind_warnings
    from ctsync.emulator.server import serve as serve_emulator

    for warning in bind_warnings(host, allow_hosts):
        click.secho(warning, err=True, fg="red", bold=True)

    from ctsync.emulator import FaultProfile

    # The tenant's own behaviour, kept across control resets; --faults adds to it (and wins).
    platform = FaultProfile(
        replication_lag=replication_lag, extra_properties=not no_extra_properties
    )
    profile = _fault_profile(faults, latency_ms, platform)
    try:
        emu = Emulator(
            seed=seed,
            clock=OffsetClock(),
            faults=profile,
            reset_faults=platform,
            scenario=_scenario(scenario),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--scenario'") from exc

    def ready(address: ServerAddress) -> None:
        where = f"; info file {address.info_file}" if address.info_file else ""
        trust = f"; trust {address.ca_cert}" if address.ca_cert else ""
        click.echo(
            f"ctsync emulator ready at {address.authority} (Graph {address.graph_url})"
            f"{where}{trust}",
            err=True,
        )

    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ctsync-emu-")))
        try:
            serve_emulator(
                emu,
                host=host,
                port=port,
                tls=not no_tls,
                state_dir=state_dir,
                info_file=info_file,
                ready=ready,
                access_log=access_log,
                log_level="info" if access_log else "warning",
                allow_hosts=allow_hosts,
            )
        except OSError as exc:  # the port is taken, the state dir is not writable, ...
            msg = f"cannot serve the emulator on {host}:{port}: {exc}"
            raise click.ClickException(msg) from exc


def _scenario(value: str) -> str | Path:
    from ctsync.emulator.scenarios import BUILTIN

    return value if value in BUILTIN else Path(value)


def _fault_profile(spec: str | None, latency_ms: int | None, base: FaultProfile) -> FaultProfile:
    from ctsync.emulator import FaultProfile

    try:
        profile = FaultProfile.parse(spec, base=base) if spec else base
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--faults'") from exc
    if latency_ms is not None:
        profile = profile.with_latency(latency_ms)
    return profile


@emulator.command("sign-in")
@click.argument("info_file", metavar="INFO", type=file_path(dir_okay=False, exists=True))
@click.option("--user", required=True, help="Who signs in: a user principal name or object id.")
@click.option(
    "--code",
    "user_code",
    default=None,
    help="Approve this pending device code. Without it, the next device code or browser "
    "sign-in in the user's tenant is approved as them the moment it is asked for.",
)
@click.option(
    "--consent",
    type=click.Choice(["self", "organization", "none"]),
    default="self",
    show_default=True,
    help="What the user answers the consent prompt: for themselves, for the whole tenant "
    "(an administrator's admin consent), or nothing.",
)
def sign_in(info_file: Path, user: str, user_code: str | None, consent: str) -> None:
    """Play the person who signs in to a served emulator (INFO: its --info-file).

    \b
    ctsync emulator sign-in emu.json --user lee@contoso.com      # then: ctsync bootstrap contoso
    ctsync emulator sign-in emu.json --user lee@contoso.com --code ABCD1234E
    """
    import json

    import httpx

    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
        control, ca = str(info["control_url"]), info.get("ca_cert")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise click.BadParameter(
            f"{info_file} is not an emulator info file ({type(exc).__name__})",
            param_hint="'INFO'",
        ) from None
    body: dict[str, str] = {"user": user, "consent": consent}
    path = "signin/next"
    if user_code is not None:
        body["user_code"] = user_code
        path = "signin/approve"
    try:
        answer = httpx.post(f"{control}/{path}", json=body, verify=ca or True, timeout=30)
    except httpx.HTTPError as exc:
        msg = f"cannot reach the emulator's control API at {control}: {type(exc).__name__}"
        raise click.ClickException(msg) from None
    data = (
        answer.json()
        if answer.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    if answer.status_code != 200:
        said = (data.get("error") or {}).get("message") or answer.text[:200]
        raise click.ClickException(f"the emulator refused: {said}")
    who = (data.get("user") or {}).get("userPrincipalName") or user
    tenant = (data.get("user") or {}).get("tenant") or data.get("tenant")
    if user_code is None:
        click.echo(f"the next sign-in to tenant {tenant} is {who}'s ({consent} consent)")
    else:
        click.echo(f"device code {user_code} approved as {who} in tenant {tenant}")
