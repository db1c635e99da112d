"""The ``ctsync`` command line: parse, call the library, render. No logic lives here.

Sub-command modules are imported only when their command runs, so ``ctsync --help`` stays
fast and imports neither azure.identity, uvicorn nor rich.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from ctsync._version import __version__

__all__ = ["main"]

#: command name -> (module, attribute, one-line help shown by `ctsync --help`)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "apply": ("ctsync.cli.reconcile", "apply", "Make both tenants of every link match the config."),
    "audit": ("ctsync.cli.audit", "audit", "Show or verify the audit trail of every write."),
    "bootstrap": (
        "ctsync.cli.bootstrap",
        "bootstrap",
        "Set up ctsync's app registration in a tenant, as its administrator.",
    ),
    "demo": ("ctsync.cli.demo", "demo", "Run the demo on a built-in emulator."),
    "destroy": ("ctsync.cli.reconcile", "destroy", "Tear links down in the documented order."),
    "emulator": ("ctsync.cli.emulator", "emulator", "Run the Graph/Entra emulator."),
    "import": (
        "ctsync.cli.importing",
        "import_",
        "Bring existing cross-tenant sync under ctsync (writes the config).",
    ),
    "init": ("ctsync.cli.configure", "init", "Write a starting config."),
    "plan": ("ctsync.cli.reconcile", "plan", "Show what apply would change. Writes nothing."),
    "preflight": (
        "ctsync.cli.preflight",
        "preflight",
        "Check that each link will work, before apply. Writes nothing.",
    ),
    "schema": ("ctsync.cli.configure", "schema", "Print the config file's JSON Schema."),
    "validate": ("ctsync.cli.configure", "validate", "Check a config without touching tenants."),
    "report": (
        "ctsync.cli.report",
        "report",
        "Write an HTML (or Markdown, JSON) report of every link.",
    ),
    "provision": ("ctsync.cli.day2", "provision", "Provision users on demand, step by step."),
    "start": ("ctsync.cli.day2", "start", "Start (or resume) the links' sync jobs."),
    "pause": ("ctsync.cli.day2", "pause", "Pause the links' sync jobs."),
    "restart": ("ctsync.cli.day2", "restart", "Restart the links' sync jobs (optionally reset)."),
    "status": (
        "ctsync.cli.day2",
        "status",
        "Job status, last cycle, quarantine; exit 1 if failing.",
    ),
    "logs": ("ctsync.cli.day2", "logs", "Audit the provisioning logs of the links."),
    "promote": ("ctsync.cli.rollout", "promote", "Widen a staged rollout when its gate holds."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attr, _ = entry
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's ``main`` with ctsync's exit contract, however it is called (the console
        script, ``python -m ctsync``, click's test runner): every error exits 1 — a usage error
        too (click's 2 is what ``--detailed-exitcode`` means by "changes") — with JSON on
        stdout under ``--output json``; Ctrl-C exits 130."""
        argv = list(sys.argv[1:] if args is None else args)
        try:
            # Not standalone: click hands back --help's and --version's exit code instead.
            done = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, KeyboardInterrupt):
                _stop("interrupted", "interrupted", EXIT_INTERRUPTED, argv)
            _stop("aborted", "aborted: no answer (end of input)", 1, argv)
        except click.ClickException as exc:
            if _wants_json(argv):
                _json_error("usage", exc.format_message(), None)
            exc.show()
            sys.exit(1)
        except KeyboardInterrupt:
            _stop("interrupted", "interrupted", EXIT_INTERRUPTED, argv)
        if standalone_mode:
            sys.exit(done if isinstance(done, int) else 0)
        return done


def _wants_json(argv: Sequence[str]) -> bool:
    """``--output json`` (or ``--output=json``; ``report``'s ``--format json``) among the
    arguments."""
    flags = ("--output", "--format")
    return any(f"{f}=json" in argv for f in flags) or any(
        a in flags and b == "json" for a, b in itertools.pairwise(argv)
    )


def _json_error(code: str, message: str, location: str | None) -> None:
    from ctsync.cli._common import json_error

    json_error(code, message, location)


def _stop(code: str, message: str, exit_code: int, argv: Sequence[str]) -> NoReturn:
    if _wants_json(argv):
        _json_error(code, message, None)
    click.echo(message, err=True)
    sys.exit(exit_code)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ctsync")
@click.option(
    "-v", "--verbose", is_flag=True, help="Say more of what ctsync does (info lines on stderr)."
)
@click.option(
    "--debug",
    is_flag=True,
    help="Every Graph request on stderr (method, path, status, request-id, time; never a token "
    "or secret), and azure-identity's and MSAL's own log lines.",
)
def cli(verbose: bool, debug: bool) -> None:
    """Entra ID cross-tenant synchronization as code."""
    if debug:
        _logging(level=logging.DEBUG, sdk=True)
    elif verbose:
        _logging(level=logging.INFO, sdk=False)


#: The exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


class _Stderr(logging.Handler):
    """``warning: <message>`` on whatever ``sys.stderr`` is when the record comes (click's
    test runner swaps it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname.lower()}: {record.getMessage()}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            self.handleError(record)


def _logging(level: int | None = None, *, sdk: bool | None = None) -> None:
    """ctsync's own warnings as ``warning: ...`` lines on stderr; the SDKs' log lines
    (azure-identity's ``get_token failed``, MSAL's) never reach the terminal unformatted:
    ctsync reports their failures itself. ``--debug`` (or ``CTSYNC_DEBUG=1``) shows
    everything, through the same handler; ``-v`` ctsync's info lines."""
    import os

    debug = os.environ.get("CTSYNC_DEBUG", "") not in ("", "0")
    if level is None:
        level = logging.DEBUG if debug else logging.WARNING
    if sdk is None:
        sdk = debug
    ours = logging.getLogger("ctsync")
    if not any(isinstance(h, _Stderr) for h in ours.handlers):
        ours.addHandler(_Stderr())
        ours.propagate = False
    ours.setLevel(level)
    for name in ("azure", "msal", "msal_extensions", "urllib3"):
        other = logging.getLogger(name)
        other.handlers = [
            h for h in other.handlers if not isinstance(h, _Stderr | logging.NullHandler)
        ]
        other.propagate = False
        if sdk:
            other.addHandler(_Stderr())
            other.setLevel(logging.DEBUG)
        else:
            other.addHandler(logging.NullHandler())


def main(argv: list[str] | None = None) -> Any:
    """The console entry point. Ctrl-C exits 130 wherever it lands — at a prompt, while the
    config loads, during a run — never 1 with "Aborted!" (which a script would read as an
    ordinary failure); every error exits 1 (see :meth:`_LazyGroup.main`)."""
    # Start-up is imports and the config: objects that live as long as the process. Cycle
    # collections while they are made only walk them again and again (~50 ms of every
    # command's start); collection starts once the work does (startup_done).
    gc.disable()
    _logging()
    try:
        return cli.main(args=argv, prog_name="ctsync", standalone_mode=False)
    finally:
        # The process ends next. Frozen, the objects the imports made are not walked once more
        # by the interpreter's last cycle collection (~40 ms of every command).
        gc.freeze()
