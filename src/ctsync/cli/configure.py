"""``ctsync init`` and ``ctsync validate``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ctsync.cli._common import (
    DEFAULT_CONFIG,
    config_option,
    echo_json,
    error_kind,
    fail,
    file_path,
    load_config,
)
from ctsync.errors import CtsyncError

__all__ = ["init", "validate"]


@click.command("init")
@click.option(
    "--from-emulator",
    "info_file",
    type=file_path(exists=True, dir_okay=False),
    help="The --info-file of a running `ctsync emulator serve`: write a config that works "
    "against it as is.",
)
@click.option(
    "--links",
    metavar="S:T,...",
    help="With --from-emulator: the links to configure (default: the first tenant to each other).",
)
@click.option(
    "-o",
    "--out",
    type=file_path(dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Where to write the config.",
)
@click.option(
    "--auth",
    "auth",
    type=click.Choice(["client_secret", "certificate", "workload_identity"]),
    default=None,
    help="With --from-emulator: how the tenants sign in — the client secret (kept in a 0600 "
    "file beside the config; default), or the certificate or federated token file the "
    "emulator wrote for each client (no secret anywhere).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(
    info_file: Path | None, links: str | None, auth: str | None, out: Path, force: bool
) -> None:
    """Write a starting config: a commented example, or one for a running emulator."""
    from ctsync.config import init_example, init_from_emulator

    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    if info_file is None:
        if links:
            fail("--links goes with --from-emulator")
        if auth:
            fail("--auth goes with --from-emulator")
        text = init_example()
    else:
        try:
            info = json.loads(info_file.read_text())
        except ValueError as exc:
            fail(f"{info_file}: not an emulator info file ({exc})")
        pairs = None
        if links:
            pairs = []
            for item in links.split(","):
                source, sep, target = item.strip().partition(":")
                if not sep or not source or not target:
                    fail(f"--links: {item.strip()!r} is not SOURCE:TARGET")
                pairs.append((source, target))
        try:
            text = init_from_emulator(info, links=pairs, path=out, auth=auth or "client_secret")
        except CtsyncError as exc:
            fail(str(exc), kind=error_kind(exc))
    out.parent.mkdir(parents=True, exist_ok=True)
    # The config's JSON Schema beside it, and a modeline pointing there: an editor's YAML
    # extension completes and checks keys with no network (and the file can be committed).
    schema = out.parent / SCHEMA_FILE
    schema.write_text(_schema_text())
    out.write_text(f"# yaml-language-server: $schema=./{SCHEMA_FILE}\n{text}")
    click.echo(f"Wrote {out} (and {schema} for editors). Next: `ctsync plan -c {out}`.")


#: The JSON Schema file ``init`` writes beside a config.
SCHEMA_FILE = "ctsync.schema.json"


def _schema_text() -> str:
    from ctsync.config import json_schema

    return json.dumps(json_schema(), indent=2) + "\n"


@click.command("schema")
@click.option(
    "-o",
    "--out",
    type=file_path(dir_okay=False),
    default=None,
    help="Write it to this file [default: standard output].",
)
def schema(out: Path | None) -> None:
    """Print the config file's JSON Schema (editors' completion, CI checks)."""
    text = _schema_text()
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text)
    except OSError as exc:
        fail(f"could not write {out}: {exc.strerror or exc}")
    click.echo(f"Wrote {out}.")


@click.command("validate")
@config_option
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(config_path: Path, output: str) -> None:
    """Check a config file without touching any tenant."""
    desired = load_config(config_path)
    if output == "json":
        echo_json(
            {
                "valid": True,
                "config": str(desired.path),
                "config_hash": desired.config_hash,
                "tenants": sorted(desired.tenants),
                "links": [link.key for link in desired.links],
                "beta": sorted(desired.beta),
            }
        )
        return
    click.echo(
        f"{desired.path} is valid: {len(desired.tenants)} tenant(s), {len(desired.links)} link(s)."
    )
    for link in desired.links:
        scope = (
            "all members"
            if link.sync.all_members
            else (
                ", ".join(f"{p.kind} {p.ref}" for p in link.sync.assigned) or "nobody assigned yet"
            )
        )
        groups = "; security groups too (beta opt-in)" if link.sync.groups else ""
        click.echo(f"  {link.key}: {scope}; actions {', '.join(sorted(link.sync.actions))}{groups}")
