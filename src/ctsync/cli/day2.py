"""Day-2 commands: provision, start, pause, restart, status, logs."""

from __future__ import annotations

import math
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import click

from ctsync.cli._common import (
    Command,
    audit_option,
    config_option,
    echo_json,
    error_kind,
    fail,
    file_path,
    link_option,
    load_config,
)
from ctsync.errors import CtsyncError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ctsync.config import DesiredState
    from ctsync.engine import Session
    from ctsync.ops.jobs import Action

__all__ = ["logs", "pause", "provision", "restart", "start", "status"]

T = TypeVar("T")

#: A --users file is one UPN or object id a line: 10,000 users fit in 1 MB and already take
#: five and a half hours at on-demand provisioning's 5 requests per 10 seconds.
_MAX_USERS_BYTES: Final = 4 * 1024 * 1024
#: --watch polls at least once a day; time.sleep refuses much more (OverflowError) or NaN.
_MAX_INTERVAL: Final = 86_400.0
# C0 controls, DEL and C1 controls: in a UPN they are a mistake, and they would be printed.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _with_session(
    desired: DesiredState,
    audit_db: Path | None,
    work: Callable[[Session], Coroutine[Any, Any, T]],
    *,
    writes: bool,
    name: str = "day-2",
) -> T:
    """Run ``work`` with the config's clients; writes take the lock and go to the audit trail."""
    with Command(desired, name=name, writes=writes, audit_db=audit_db) as command:
        return command.run(work)


def _links(desired: DesiredState, keys: tuple[str, ...]) -> Any:
    from ctsync.engine import select_links

    try:
        return select_links(desired, keys)
    except CtsyncError as exc:
        fail(str(exc), kind=error_kind(exc))


@click.command("provision")
@config_option
@audit_option
@click.option("--link", "link_key", required=True, metavar="SOURCE:TARGET")
@click.option("--user", "users", multiple=True, metavar="UPN|ID", help="A user to provision.")
@click.option(
    "--users",
    "users_file",
    # Read and checked by _read_users: a directory, FIFO or device is an error there too.
    type=file_path(),
    help="A file with one UPN or object id per line (# comments allowed).",
)
@click.option(
    "--group",
    "groups",
    multiple=True,
    metavar="NAME|ID",
    help="A security group to provision with its members' memberships (a link with sync.groups).",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def provision(
    config_path: Path,
    audit_db: Path | None,
    link_key: str,
    users: tuple[str, ...],
    users_file: Path | None,
    groups: tuple[str, ...],
    output: str,
) -> None:
    """Provision users (or groups) on demand to validate a link before (or beside) its cycles.

    Each step — import, scoping, matching, export — is shown with its status and the reason in
    plain words. A list is paced to the API's limit of 5 requests per 10 seconds. A group
    (--group, on a link that syncs groups) comes with the memberships of its members already
    in the target.
    """
    from ctsync.ops import OnDemandResult, provision_groups, provision_users
    from ctsync.render.day2 import on_demand_text

    wanted = [_user(user, "--user") for user in users]
    if users_file is not None:
        wanted += _read_users(users_file)
    wanted_groups = [_user(group, "--group") for group in groups]
    if not wanted and not wanted_groups:
        fail("name at least one user or group: --user UPN, --users FILE or --group NAME")
    desired = load_config(config_path)
    link = _links(desired, (link_key,))[0]
    if wanted_groups and not link.sync.groups:
        fail(
            f"link {link.key} does not sync groups: set sync.groups: true (with "
            "`beta: [group_sync]`) to provision a group on demand, or provision its members "
            "with --user"
        )

    async def run(session: Any) -> list[OnDemandResult]:
        done = await provision_users(session, link, wanted) if wanted else []
        return done + (
            await provision_groups(session, link, wanted_groups) if wanted_groups else []
        )

    results = _with_session(desired, audit_db, run, writes=True, name="provision")
    if output == "json":
        echo_json([r.to_dict() for r in results])
    else:
        click.echo(on_demand_text(results))
    if not all(r.ok for r in results):
        sys.exit(1)


def _user(text: str, where: str) -> str:
    user = text.strip()
    if not user:
        fail(f"{where}: a user is a UPN or an object id, not an empty value")
    control = _CONTROL.search(user)
    if control:
        fail(f"{where}: {user!r} holds the control character {control.group(0)!r}")
    return user


def _read_users(path: Path) -> list[str]:
    from ctsync.config._files import read_bounded

    try:
        raw = read_bounded(path, limit=_MAX_USERS_BYTES, what="--users file")
    except FileNotFoundError:
        fail(f"{path}: --users file does not exist")
    except CtsyncError as exc:
        fail(str(exc), kind=error_kind(exc))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{path}: --users file is not UTF-8 text (byte {exc.start}); list one UPN per line")
    users: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.split("#", 1)[0].strip():
            users.append(_user(line.split("#", 1)[0], f"{path}:{number}"))
    return users


def _job_command(action: str) -> Any:
    @config_option
    @link_option
    @audit_option
    @click.option(
        "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
    )
    def command(
        config_path: Path,
        links: tuple[str, ...],
        audit_db: Path | None,
        output: str,
        reset: str | None = None,
    ) -> None:
        from ctsync.ops import control_jobs, reset_scope
        from ctsync.render.day2 import jobs_text

        desired = load_config(config_path)
        chosen = _links(desired, links)
        words = [w.strip() for w in (reset or "").split(",") if w.strip()]
        if reset is not None and not words:
            fail("--reset needs what to clear: escrows, watermark, quarantine or full")
        if words:
            try:
                reset_scope(words)
            except CtsyncError as exc:
                fail(str(exc), kind=error_kind(exc))
        changes = _with_session(
            desired,
            audit_db,
            lambda s: control_jobs(s, chosen, cast("Action", action), reset=words),
            writes=True,
            name=action,
        )
        if output == "json":
            echo_json([c.to_dict() for c in changes])
        else:
            click.echo(jobs_text(changes))

    return command


start = click.command(
    "start", help="Start (or resume) the links' jobs; clears quarantine. Default: every link."
)(_job_command("start"))
pause = click.command("pause", help="Pause the links' jobs; the current cycle runs to completion.")(
    _job_command("pause")
)
restart = click.command(
    "restart",
    help="Restart the links' jobs: a full re-evaluation, optionally clearing state.",
)(
    click.option(
        "--reset",
        metavar="escrows,watermark,quarantine|full",
        help="What to clear (never the provisioning cache: target users stay matched).",
    )(_job_command("restart"))
)


@click.command("status")
@config_option
@link_option
@click.option("--watch", is_flag=True, help="Keep polling and print each change.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds between polls with --watch.",
)
@click.option("--polls", type=click.IntRange(min=1), default=None, hidden=True)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status(
    config_path: Path,
    links: tuple[str, ...],
    watch: bool,
    interval: float,
    polls: int | None,
    output: str,
) -> None:
    """Per link: schedule, last cycle, steady state, escrows, quarantine and its remedy.

    Exits 1 when a link is quarantined, failing or not set up, so CI can alert.
    """
    from ctsync.ops import statuses
    from ctsync.render.day2 import status_text

    if not math.isfinite(interval) or interval > _MAX_INTERVAL:
        fail(f"--interval is seconds between polls, from 0 to {_MAX_INTERVAL:.0f}, not {interval}")
    desired = load_config(config_path)
    chosen = _links(desired, links)
    count = 0
    seen: dict[str, dict[str, Any]] = {}
    while True:
        items = _with_session(desired, None, lambda s: statuses(s, chosen), writes=False)
        # The first poll shows every link; with --watch each later one only the links whose
        # status moved (a quiet fleet prints nothing, not the same block every minute).
        shown = [i for i in items if seen.get(i.link) != i.to_dict()]
        seen = {i.link: i.to_dict() for i in items}
        if output == "json":
            if shown or not count:
                echo_json([i.to_dict() for i in shown])
        elif shown or not count:
            if watch:
                moved = "" if not count else f" ({len(shown)} link(s) changed)"
                click.echo(f"-- {datetime.now(UTC).isoformat(timespec='seconds')}{moved}")
            click.echo(status_text(shown))
        count += 1
        if not watch or (polls is not None and count >= polls):
            break
        time.sleep(interval)
    if not all(i.healthy for i in items):
        sys.exit(1)


_SINCE = re.compile(r"^([0-9]+)([mhd])$")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days"}
_SINCE_FORMS = "a duration like 24h, 30m, 7d or a date like 2026-11-01"


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = text.strip()
    if not value:
        # It used to mean "no filter": an unset variable in a script read every entry.
        fail(f"--since needs {_SINCE_FORMS}, not an empty value")
    now = datetime.now(UTC)
    m = _SINCE.match(value)
    if m:
        digits, unit = m.groups()
        try:
            moment = now - timedelta(**{_UNITS[unit]: int(digits)})
        except (OverflowError, ValueError):
            fail(f"--since {_shown(value)} reaches back before the year 1; give {_SINCE_FORMS}")
        if moment >= now:
            fail(f"--since {value} is now: no entry is newer; give a duration above zero")
        return moment
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since takes {_SINCE_FORMS}, not {_shown(text)!r}")
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        fail(f"--since {value} is in the future: no entry is newer")
    return moment


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."


@click.command("logs")
@config_option
@link_option
@click.option("--since", help="Only entries newer than this: 24h, 30m, 7d or a date/time.")
@click.option(
    "--status", "status_", type=click.Choice(["failure", "skipped", "success", "warning"])
)
@click.option(
    "--action",
    type=click.Choice(["create", "update", "delete", "disable", "stagedDelete", "other"]),
)
@click.option("--summary", is_flag=True, help="Counts by action, status and reason, with fixes.")
@click.option(
    "--incremental",
    is_flag=True,
    help="Only what is new since the last --incremental run (a watermark per link).",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 1000),
    default=500,
    show_default=True,
    help="Entries per request; larger pages spend fewer of the reports quota's 5 per 10 s.",
)
@click.option(
    "--output", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
def logs(
    config_path: Path,
    links: tuple[str, ...],
    since: str | None,
    status_: str | None,
    action: str | None,
    summary: bool,
    incremental: bool,
    page_size: int,
    output: str,
) -> None:
    """Audit what the provisioning service did, per link (server-side filters first)."""
    from ctsync.ops import Watermarks, read_logs
    from ctsync.render.day2 import logs_csv, logs_text

    newer_than = _since(since)  # before anything is read or written
    desired = load_config(config_path)
    chosen = _links(desired, links)
    marks = (
        Watermarks(desired.base_dir / ".ctsync" / "logs-watermark.json") if incremental else None
    )
    report = _with_session(
        desired,
        None,
        lambda s: read_logs(
            s,
            chosen,
            since=newer_than,
            status=status_,
            action=action,
            watermarks=marks,
            page_size=page_size,
        ),
        writes=False,
    )
    if marks is not None:
        marks.save()
    if output == "json":
        payload: dict[str, Any] = {"entries": [e.to_dict() for e in report.entries]}
        payload["summary"] = report.summary()
        payload["requests"] = report.pages
        echo_json(payload)
    elif output == "csv":
        click.echo(logs_csv(report), nl=False)
    else:
        click.echo(logs_text(report, summary=summary))
