"""What every command shares: the config option, loading it, sessions, audit, output."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import sys
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NoReturn, Self, TypeVar

import click

from ctsync.errors import CtsyncError

if TYPE_CHECKING:
    import asyncio

    from ctsync.audit import AuditContext, AuditTrail
    from ctsync.config import DesiredState, TenantSpec
    from ctsync.engine import Plan, Session, Step
    from ctsync.engine.lock import RunLock

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG = "ctsync.yaml"


class SafePath(click.Path):
    """``click.Path`` that refuses a path no file system takes (a NUL byte) or that would
    forge output when printed back (control characters), as a usage error, not a traceback."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = os.fsdecode(value) if isinstance(value, bytes) else str(value)
        shown = repr(text if len(text) <= 80 else text[:77] + "...")
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            self.fail(f"{shown} has control characters, which ctsync refuses in a path", param, ctx)
        try:
            Path(text).stat()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            pass  # whether it must exist is click.Path's to say
        except (OSError, ValueError) as exc:  # too long, a loop of links, a NUL byte
            self.fail(f"{shown}: {getattr(exc, 'strerror', None) or exc}", param, ctx)
        return super().convert(value, param, ctx)


def file_path(**kwargs: Any) -> SafePath:
    """The type of every path option: a :class:`pathlib.Path`, checked by :class:`SafePath`."""
    return SafePath(path_type=Path, **kwargs)


def config_option(func: F) -> F:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=file_path(dir_okay=False),
        default=DEFAULT_CONFIG,
        show_default=True,
        envvar="CTSYNC_CONFIG",
        show_envvar=True,
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
        type=file_path(dir_okay=False),
        default=None,
        envvar="CTSYNC_AUDIT_DB",
        show_envvar=True,
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


def fail(message: str, *, code: int = 1, kind: str = "error") -> NoReturn:
    """Stop the command: ``error: MESSAGE`` on stderr, and — under ``--output json`` — the
    error as JSON on stdout (``{"error": {"code", "message", "location"}}``), so a pipeline
    never parses prose. ``kind`` is the JSON ``code``; a message that starts with a file
    position (a config error) gives its ``location``."""
    context = click.get_current_context(silent=True)
    sent = context is not None and context.find_root().meta.get(_JSON_SENT, False)
    if context is not None and _json_output(context) and not sent:
        location = _LOCATION.match(message)
        json_error(kind, message, location.group(1) if location else None)
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def error_kind(exc: BaseException) -> str:
    """The JSON error ``code`` of a ctsync error: ``config``, ``auth``, ``transport``, ``graph``
    (Graph answered with an error), ``audit``, or ``error``."""
    from ctsync.errors import AuthenticationError, ConfigError, GraphError, TransportError

    for kind, cls in (
        ("config", ConfigError),
        ("auth", AuthenticationError),
        ("transport", TransportError),
        ("graph", GraphError),
    ):
        if isinstance(exc, cls):
            return kind
    return "audit" if type(exc).__name__ == "AuditError" else "error"


#: ``path:line[:col]: `` at the start of a config error.
_LOCATION: Final = re.compile(r"^([^\s:][^:\n]*:\d+(?::\d+)?): ")


def _json_output(context: click.Context) -> bool:
    while context is not None:
        # `--output json`, or `report --format json`.
        if "json" in (context.params.get("output"), context.params.get("fmt")):
            return True
        context = context.parent  # type: ignore[assignment]
    return False


def need_emulator(*modules: str) -> None:
    """Stop with the install hint when the ``emulator`` extra is not installed (a production
    install of ctsync has no use for the served emulator)."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            fail(
                f"this command runs the Graph emulator, which needs {name!r} from ctsync's "
                "'emulator' extra: pip install 'ctsync[emulator]'"
            )


def console(*, stderr: bool = False) -> Any:
    """A rich console for people: data is never read as emoji codes (a tag ``ctsync:link:…``
    stays text) nor highlighted; with ``NO_COLOR`` set, no escape code at all (rich alone
    would still send bold and the like)."""
    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    return Console(
        stderr=stderr, highlight=False, emoji=False, color_system=None if plain else "auto"
    )


def json_error(code: str, message: str, location: str | None) -> None:
    """An error as JSON on stdout, one object: ``{"error": {"code", "message", "location"}}``."""
    error = {"code": code, "message": message, "location": location}
    click.echo(json.dumps({"error": error}, indent=2))


def load_config(path: Path) -> DesiredState:
    from ctsync.config import load

    if not path.exists():
        fail(f"{path}: no such config file (create one with `ctsync init`)", kind="config")
    try:
        return load(path)
    except CtsyncError as exc:
        fail(str(exc), kind=error_kind(exc))


INTERRUPTED = "interrupted: run the command again to continue where it stopped"


def audit_path(desired: DesiredState, override: Path | None) -> Path:
    from ctsync.audit import default_audit_path

    return override or default_audit_path(desired.path)


def open_trail(path: Path, *, lazy: bool = False) -> AuditTrail:
    from ctsync.audit import AuditTrail

    try:
        return AuditTrail(path, lazy=lazy)
    except CtsyncError as exc:
        fail(str(exc), kind=error_kind(exc))


def state_dir(desired: DesiredState) -> Path:
    """``.ctsync`` beside the config: the journal, the lock and (by default) the audit trail."""
    return desired.base_dir / ".ctsync"


def session_for(
    desired: DesiredState,
    *,
    trail: AuditTrail | None = None,
    context: AuditContext | None = None,
    on_token: Callable[[str], None] | None = None,
    credentials: Callable[[TenantSpec], Any] | None = None,
) -> Session:
    """The Graph clients of a run; with a trail, every write they make is recorded in it —
    as an intent before it is sent, and its outcome after. ``credentials`` replaces the
    config's sign-in (``ctsync bootstrap`` signs an administrator in)."""
    from ctsync.audit import Actor, intent_recorder, recorder
    from ctsync.engine import Session
    from ctsync.engine.journal import Journal
    from ctsync.engine.ownership import Ledger

    journal = Journal(state_dir(desired) / "journal.json")
    ledger = Ledger(state_dir(desired) / "ownership.json")
    wait = replication_wait()
    if trail is None or context is None:
        return Session(
            desired,
            journal=journal,
            ledger=ledger,
            on_token=on_token,
            replication_wait=wait,
            credentials=credentials,
        )

    def tap(token: str) -> None:
        assert context is not None
        context.add_actor(Actor.from_access_token(token))
        if on_token is not None:
            on_token(token)

    return Session(
        desired,
        observers=[recorder(trail, context)],
        intent_observers=[intent_recorder(trail, context)],
        on_token=tap,
        journal=journal,
        ledger=ledger,
        replication_wait=wait,
        credentials=credentials,
    )


REPLICATION_WAIT_ENV = "CTSYNC_REPLICATION_WAIT"


def replication_wait() -> float:
    """``CTSYNC_REPLICATION_WAIT`` (seconds, default 120): how long a re-run waits for an app
    an interrupted run may have created before it creates one."""
    text = os.environ.get(REPLICATION_WAIT_ENV, "").strip()
    if not text:
        return 120.0
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:
        fail(f"{REPLICATION_WAIT_ENV} is seconds from 0 to 3600, not {text!r}")
    return seconds


class Command:
    """What one command run holds, from its first read to its last write: one event loop and
    one session (a token per tenant, one connection pool, the journal), and — for a command
    that writes — the config's lock and the audit trail.

    ``run`` may be called several times (preflight, then apply after the approval prompt,
    which runs outside the loop so Ctrl-C at the prompt stops at once). Use it as a context
    manager: leaving it closes the session and the trail and releases the lock on any exit.
    """

    def __init__(
        self,
        desired: DesiredState,
        *,
        name: str,
        writes: bool = False,
        audit_db: Path | None = None,
        on_token: Callable[[str], None] | None = None,
        credentials: Callable[[TenantSpec], Any] | None = None,
    ) -> None:
        from ctsync.audit import AuditContext

        self.desired = desired
        self.name = name
        self.writes = writes
        self._audit_db = audit_db
        self._on_token = on_token
        self._credentials = credentials
        self.context = AuditContext(config_hash=desired.config_hash)
        self.trail: AuditTrail | None = None
        self._lock: RunLock | None = None
        self._runner: asyncio.Runner | None = None  # imported when a command runs one
        self._session: Session | None = None

    def __enter__(self) -> Self:
        try:
            if self.writes:
                self._take_lock()
                # Opened at the first record: a run refused before any write leaves no trail.
                self.trail = open_trail(audit_path(self.desired, self._audit_db), lazy=True)
            self._session = session_for(
                self.desired,
                trail=self.trail,
                context=self.context,
                on_token=self._on_token,
                credentials=self._credentials,
            )
            if self._session.journal is not None:
                self._session.journal.created_apps()  # a broken journal stops us before any read
            if self._session.ledger is not None:
                self._session.ledger.check()
        except CtsyncError as exc:
            self.__exit__(None, None, None)
            fail(str(exc), kind=error_kind(exc))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        import asyncio  # not at import: commands that touch no tenant need no event loop

        self._runner = asyncio.Runner()
        return self

    def _take_lock(self) -> None:
        from ctsync.engine.lock import LockHeldError, RunLock

        lock = RunLock(state_dir(self.desired) / "lock", command=f"ctsync {self.name}")
        try:
            stale = lock.acquire()
        except LockHeldError as exc:
            fail(str(exc), kind=error_kind(exc))
        self._lock = lock
        if stale is not None:
            click.echo(
                f"warning: an earlier run, {stale.describe()}, ended without finishing (it was "
                "killed or crashed). `ctsync audit verify` lists the writes it had in flight; "
                "this run reads the tenants as they are now.",
                err=True,
            )

    @property
    def session(self) -> Session:
        assert self._session is not None, "use Command as a context manager"
        return self._session

    def run(self, work: Callable[[Session], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(session)`` on the command's loop; a ctsync error becomes one clear line
        and exit 1, Ctrl-C exit 130."""
        assert self._runner is not None, "use Command as a context manager"
        startup_done()
        try:
            return self._runner.run(work(self.session))
        except CtsyncError as exc:
            fail(str(exc), kind=error_kind(exc))
        except KeyboardInterrupt:
            fail(INTERRUPTED, code=130)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._runner is not None:
                if self._session is not None:
                    # Closing connections must not hide why the command ended.
                    with contextlib.suppress(Exception, KeyboardInterrupt):
                        self._runner.run(self._session.aclose())
                self._runner.close()
                self._runner = None
        finally:
            if self.trail is not None:
                self.trail.close()
                self.trail = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def step_scope(step: Step) -> AbstractContextManager[Any]:
    """Attribute every write of a step to its link and step in the audit trail."""
    from ctsync.audit import audit_step

    return audit_step(link=step.links[0] if step.links else None, step=step.id)


def echo_json(payload: Any) -> None:
    """The command's JSON document on stdout (one per run: a later :func:`fail` adds no
    second one — the document, with exit 1, is what a pipeline reads)."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.find_root().meta[_JSON_SENT] = True
    click.echo(json.dumps(payload, indent=2, default=str))


_JSON_SENT: Final = "ctsync.json_sent"


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


def startup_done() -> None:
    """The command's work begins: what start-up made (modules, the config) is frozen out of
    the cycle collector, which runs again from here (``main`` turned it off)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
