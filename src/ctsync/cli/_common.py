"""What every command shares: the config option, loading it, sessions, audit, output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ctsync.errors import CtsyncError

if TYPE_CHECKING:
    from ctsync.audit import AuditContext, AuditTrail
    from ctsync.config import DesiredState
    from ctsync.engine import Plan, Session, Step

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG = "ctsync.yaml"


def config_option(func: F) -> F:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_CONFIG,
        show_default=True,
        help="The ctsync config file.",
    )(func)


def output_option(*choices: str) -> Callable[[F], F]:
    def wrap(func: F) -> F:
        return click.option(
            "--output",
            "output",
            type=click.Choice(list(choices)),
            default=choices[0],
            show_default=True,
            help="Human-readable text, or JSON for machines.",
        )(func)

    return wrap


def audit_option(func: F) -> F:
    return click.option(
        "--audit-db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The audit trail database [default: .ctsync/audit.sqlite beside the config].",
    )(func)


def link_option(func: F) -> F:
    return click.option(
        "--link",
        "links",
        multiple=True,
        metavar="SOURCE:TARGET",
        help="Only this link (repeatable). Default: every link of the config.",
    )(func)


def fail(message: str, *, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def load_config(path: Path) -> DesiredState:
    from ctsync.config import load

    if not path.exists():
        fail(f"{path}: no such config file (create one with `ctsync init`)")
    try:
        return load(path)
    except CtsyncError as exc:
        fail(str(exc))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a library coroutine; a ctsync error becomes one clear line and exit code 1."""
    try:
        return asyncio.run(coro)
    except CtsyncError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted: run the command again to continue where it stopped", code=130)


def audit_path(desired: DesiredState, override: Path | None) -> Path:
    from ctsync.audit import default_audit_path

    return override or default_audit_path(desired.path)


def open_trail(path: Path) -> AuditTrail:
    from ctsync.audit import AuditTrail

    try:
        return AuditTrail(path)
    except CtsyncError as exc:
        fail(str(exc))


def session_for(
    desired: DesiredState,
    *,
    trail: AuditTrail | None = None,
    context: AuditContext | None = None,
) -> Session:
    """The Graph clients of a run; with a trail, every write they make is recorded in it."""
    from ctsync.audit import Actor, recorder
    from ctsync.engine import Session
    from ctsync.engine.journal import Journal

    journal = Journal(desired.base_dir / ".ctsync" / "journal.json")
    if trail is None or context is None:
        return Session(desired, journal=journal)

    def tap(token: str) -> None:
        assert context is not None
        context.add_actor(Actor.from_access_token(token))

    return Session(desired, observers=[recorder(trail, context)], on_token=tap, journal=journal)


def step_scope(step: Step) -> AbstractContextManager[Any]:
    """Attribute every write of a step to its link and step in the audit trail."""
    from ctsync.audit import audit_step

    return audit_step(link=step.links[0] if step.links else None, step=step.id)


def echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def confirm_or_exit(plan: Plan, *, auto_approve: bool, verb: str) -> None:
    """Apply only what the user approved: a 'yes' at a terminal, or --auto-approve."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        fail(
            f"{verb} changes tenants and needs approval: "
            "run it in a terminal, or pass --auto-approve"
        )
    destructive = len(plan.destructive)
    warning = f" ({destructive} destructive)" if destructive else ""
    answer = click.prompt(
        f"Do you want to perform these {len(plan.steps)} steps{warning}? "
        "Only 'yes' will be accepted",
        default="",
        show_default=False,
    )
    if answer.strip() != "yes":
        fail(f"{verb} cancelled; nothing was changed", code=1)
