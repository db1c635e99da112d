"""``ctsync report``: every link in one file — HTML for people, Markdown for a pull request,
JSON for dashboards. Reads what plan, preflight, status, logs and the audit trail read; writes
nothing to any tenant, and nothing at all until the report is complete."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from ctsync.cli._common import (
    Command,
    audit_option,
    audit_path,
    config_option,
    fail,
    file_path,
    link_option,
    load_config,
)
from ctsync.cli.day2 import _links, _since
from ctsync.cli.importing import _write

if TYPE_CHECKING:
    from ctsync.ops.report import Report

__all__ = ["report"]

FORMATS: Final = ("html", "markdown", "json")
DEFAULT_HTML: Final = Path("ctsync-report.html")
STDOUT: Final = Path("-")


@click.command("report")
@config_option
@link_option
@audit_option
@click.option(
    "-o",
    "--out",
    type=file_path(allow_dash=True),
    default=None,
    help="Where to write it; `-` is stdout. [default: ctsync-report.html for html, stdout for "
    "markdown and json]",
)
@click.option(
    "--format",
    "fmt",
    default="html",
    show_default=True,
    metavar="html|markdown|json",
    help="A self-contained HTML page, Markdown for a pull-request comment, or the data as JSON.",
)
@click.option(
    "--since",
    default="7d",
    show_default=True,
    help="The window of provisioning logs and audit writes: 24h, 30m, 7d or a date/time.",
)
def report(
    config_path: Path,
    links: tuple[str, ...],
    audit_db: Path | None,
    out: Path | None,
    fmt: str,
    since: str,
) -> None:
    """Write a report of every link: topology by health, status, preflight, drift, logs, writes.

    Writes nothing to any tenant. Exits 0 once the report is written, whatever it shows (use
    `ctsync status` or `ctsync preflight` to gate on health), 1 on an error.
    """
    from ctsync.ops import TokenRoles
    from ctsync.ops.report import gather_report

    if fmt not in FORMATS:
        fail(f"--format takes html, markdown or json, not {fmt!r}")
    moment = _since(since)
    assert moment is not None
    target = out if out is not None else (DEFAULT_HTML if fmt == "html" else STDOUT)
    if target != STDOUT:
        _check_writable(target)
    desired = load_config(config_path)
    _links(desired, links)  # an unknown link stops here, before any tenant is read
    roles = TokenRoles()
    trail = audit_path(desired, audit_db)
    with Command(desired, name="report", on_token=roles) as command:
        data = command.run(
            lambda session: gather_report(
                session, links or None, since=moment, audit_path=trail, roles=roles
            )
        )
    text = _render(data, fmt)
    if target == STDOUT:
        click.echo(text, nl=False)
        return
    _write(target, text)
    click.echo(f"Wrote {target}: {_verdict(data)}", err=True)


def _render(data: Report, fmt: str) -> str:
    from ctsync.render.report import RENDERERS

    return RENDERERS[fmt](data)


def _verdict(data: Report) -> str:
    counts = data.health_counts()
    worse = ", ".join(
        f"{n} {h.replace('-', ' ')}" for h, n in counts.items() if n and h != "healthy"
    )
    return f"{len(data.links)} link(s), {counts['healthy']} healthy" + (
        f", {worse}" if worse else ""
    )


def _check_writable(target: Path) -> None:
    """Refuse an output path the report could not be written to, before reading any tenant."""
    if target.is_dir():
        fail(f"-o {target}: is a directory; name a file")
    parent = target.parent
    if not parent.is_dir():
        fail(f"-o {target}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        fail(f"-o {target}: not writable")
