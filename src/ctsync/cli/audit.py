"""``ctsync audit show`` and ``ctsync audit verify``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctsync.cli._common import (
    audit_option,
    audit_path,
    config_option,
    echo_json,
    fail,
    load_config,
    open_trail,
)
from ctsync.render.text import printable

if TYPE_CHECKING:
    from ctsync.audit import AuditRecord

__all__ = ["audit"]

#: Unknown outcomes `verify` lists in text; JSON has them all.
MAX_UNKNOWN_SHOWN = 20


@click.group("audit")
def audit() -> None:
    """The local, tamper-evident record of every Graph write ctsync made."""


def _trail_path(config_path: Path, audit_db: Path | None) -> Path:
    if audit_db is not None:
        return audit_db
    return audit_path(load_config(config_path), None)


@audit.command("show")
@config_option
@audit_option
@click.option("--link", default=None, metavar="SOURCE:TARGET", help="Only this link's writes.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="The last N writes.")
@click.option(
    "--all-records",
    is_flag=True,
    help="Every record as stored: each write's intent (before it was sent) and its outcome.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show(
    config_path: Path,
    audit_db: Path | None,
    link: str | None,
    limit: int | None,
    all_records: bool,
    output: str,
) -> None:
    """List recorded writes, oldest first; a write whose outcome is unknown says so."""
    path = _trail_path(config_path, audit_db)
    if not path.exists():
        fail(f"{path}: no audit trail yet (nothing has been applied with this config)")
    with open_trail(path) as trail:
        records = trail.records(link=link, limit=limit, writes=not all_records)
        unknown = {r.seq for r in trail.unresolved(link=link)}
    if output == "json":
        echo_json([{**r.to_dict(), "outcome_unknown": r.seq in unknown} for r in records])
        return
    if not records:
        click.echo("No records.")
    for r in records:
        click.echo(printable(_line(r, unknown=r.seq in unknown)))


def _line(record: AuditRecord, *, unknown: bool) -> str:
    if record.phase == "intent":
        status = "outcome unknown (in flight when the run stopped)" if unknown else "sending"
    elif record.status is not None:
        status = str(record.status)
    else:
        status = f"no answer ({record.error_code or 'unknown'})"
        if unknown:
            status += ", outcome unknown"
    return (
        f"{record.seq:>5} {record.time} {record.actor_tenant} {record.method:6} {record.path} "
        f"→ {status}  [{record.link or '-'} {record.step or '-'}] "
        f"request-id {record.request_id or '-'}"
    )


@audit.command("verify")
@config_option
@audit_option
@click.option(
    "--expected-head",
    default=None,
    metavar="SEQ:HASH",
    help="A head exported earlier (`verify --output json` prints last_seq and last_hash, e.g. "
    "in CI logs): also catches a chain rewritten since.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify(
    config_path: Path, audit_db: Path | None, expected_head: str | None, output: str
) -> None:
    """Check the hash chain: exit 1 if any record was edited, deleted or reordered."""
    path = _trail_path(config_path, audit_db)
    if not path.exists():
        fail(f"{path}: no audit trail to verify")
    head = None
    if expected_head is not None:
        seq, sep, digest = expected_head.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            fail("--expected-head takes SEQ:HASH, e.g. 42:3f9a… (the 64-hex last_hash)")
        head = {"last_seq": int(seq), "last_hash": digest}
    with open_trail(path) as trail:
        result = trail.verify(expected_head=head)
    if output == "json":
        echo_json(result.to_dict())
    elif result.ok:
        click.echo(f"OK: {result.count} records, chain intact (head {result.last_hash}).")
    else:
        click.echo(f"TAMPERED: {len(result.problems)} problem(s) in {result.count} records:")
        for problem in result.problems:
            click.echo(f"  - {problem}")
    if output != "json" and result.unknown:
        click.echo(
            f"{len(result.unknown)} write(s) with an unknown outcome — they may or may not have "
            "changed the tenant; `ctsync plan` shows what the tenants hold now:"
        )
        shown = result.unknown[-MAX_UNKNOWN_SHOWN:]
        if len(result.unknown) > len(shown):
            click.echo(f"  (the latest {len(shown)}; `ctsync audit show` marks every one)")
        for record in shown:
            click.echo(
                printable(
                    f"  - seq {record.seq}: {record.method} {record.path} "
                    f"(step {record.step or '-'}): {record.unknown_reason()}"
                )
            )
    if not result.ok:
        raise SystemExit(1)
