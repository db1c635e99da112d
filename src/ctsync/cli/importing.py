"""``ctsync import``: describe the cross-tenant sync already running among the config's
tenants as links of the config, and check the round trip with a plan. Writes nothing to any
tenant."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ctsync.cli._common import (
    Command,
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
    from ctsync.config import DesiredState
    from ctsync.engine import Plan
    from ctsync.ops.importer import ImportReport

__all__ = ["import_"]

_LINK = re.compile(
    r"^(?P<source>[^:=]+):(?P<target>[^:=]+)"
    r"(?:=(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))?$"
)


def _chosen(desired: DesiredState, values: tuple[str, ...]) -> dict[tuple[str, str], str | None]:
    chosen: dict[tuple[str, str], str | None] = {}
    for value in values:
        match = _LINK.match(value)
        if match is None:
            fail(f"--link takes SOURCE:TARGET or SOURCE:TARGET=SERVICE_PRINCIPAL_ID, not {value!r}")
        source, target = match["source"], match["target"]
        for name in (source, target):
            if name not in desired.tenants:
                listed = ", ".join(sorted(desired.tenants))
                fail(f"--link {value}: no tenant {name!r} in {desired.path} (tenants: {listed})")
        chosen[(source, target)] = match["id"].lower() if match["id"] else None
    return chosen


@click.command("import")
@config_option
@click.option(
    "--link",
    "links",
    multiple=True,
    metavar="SOURCE:TARGET[=ID]",
    help="Only this pair (repeatable); =ID names the configuration (its service principal "
    "object id) when ctsync cannot tell which tenant it serves, or picks one of several.",
)
@click.option(
    "-o",
    "--out",
    type=file_path(dir_okay=False),
    default=None,
    help="Write the config here [default: rewrite the config file, keeping its comments].",
)
@output_option("text", "json")
def import_(config_path: Path, links: tuple[str, ...], out: Path | None, output: str) -> None:
    """Bring the cross-tenant sync already set up among the config's tenants under ctsync.

    Finds every cross-tenant sync configuration (made in the portal, by the multitenant-
    organization wizard, or by ctsync), tells which tenant each serves, and writes each as a
    link that adopts it, with its partner settings, scope, filter and mappings. Writes nothing
    to any tenant. Then plans once: right after an import, plan should show nothing.
    """
    from ctsync.config import loads, merge_links
    from ctsync.engine import make_plan
    from ctsync.engine.ownership import Ledger
    from ctsync.ops.importer import config_entries, discover, note_adopted

    desired = load_config(config_path)
    chosen = _chosen(desired, links)
    destination = out or config_path
    with Command(desired, name="import") as command:
        report = command.run(lambda session: discover(session, chosen=chosen or None))
    templates, entries = config_entries(report.links)
    try:
        text = merge_links(
            config_path.read_text(encoding="utf-8"),
            name=str(config_path),
            templates=templates,
            links=entries,
            tenant_settings={
                name: {"default_access": access} for name, access in report.defaults.items()
            },
            organization=report.organization,
            beta=["group_sync"] if any(link.sync.get("groups") for link in report.links) else [],
        )
        written = loads(text, path=destination, base_dir=desired.base_dir)
    except CtsyncError as exc:
        fail(f"the imported config does not load, nothing was written: {exc}")
    keys = {link.key for link in report.links}
    note_adopted(written, keys, Ledger(state_dir(written) / "ownership.json"), report)
    _write(destination, text)
    plan = None
    if keys or report.defaults or report.organization:
        with Command(written, name="import") as command:
            plan = command.run(
                lambda session: make_plan(written, session, links=sorted(keys) or None)
            )
    if output == "json":
        echo_json(
            {
                **report.to_dict(),
                "written": str(destination),
                "plan": None if plan is None else plan.to_dict(),
            }
        )
        return
    click.echo(_text(report, destination, plan))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        fail(f"could not write {path}: {exc.strerror or exc}")


def _text(report: ImportReport, destination: Path, plan: Plan | None) -> str:
    lines = ["Cross-tenant sync configurations found:"]
    if not report.found:
        lines.append("  (none)")
    for found in report.found:
        job = f"job {found.job}" if found.job else "no job"
        how = {None: "", "--link": ", named by --link"}.get(
            found.how, f", identified by its {found.how}"
        )
        target = found.target or "an unknown tenant"
        head = f"  {found.tenant}: {found.name!r} ({found.sp_id}, {job}) → {target}{how}"
        lines.append(printable(head))
        verdict = (
            f"imported as link {found.link}" if found.link else f"not imported: {found.skipped}"
        )
        lines.append(printable(f"      {verdict}"))
    managed = [p for p in report.partners if p["settings"]]
    if managed:
        lines.append("")
        lines.append("Partner configurations and what each sets (ctsync never writes the settings")
        lines.append("it does not model, marked 'left as they are'):")
        for partner in managed:
            extra = " (multitenant organization)" if partner["multitenant_organization"] else ""
            modelled = [m for m in partner["settings"] if m not in partner["unmodelled"]]
            said = ", ".join(modelled) or "nothing ctsync models"
            if partner["unmodelled"]:
                said += f"; left as they are: {', '.join(partner['unmodelled'])}"
            lines.append(printable(f"  {partner['tenant']} → {partner['partner']}{extra}: {said}"))
    if report.defaults:
        lines.append("")
        lines.append(
            "Customised default cross-tenant access policies (imported as default_access):"
        )
        lines.extend(
            printable(f"  {name}: {', '.join(sorted(access)) or 'nothing ctsync models'}")
            for name, access in sorted(report.defaults.items())
        )
    if report.organization is not None:
        org = report.organization
        members = ", ".join(org["members"]) or "no other tenant of the config"
        lines.append("")
        lines.append(
            printable(
                f"Multitenant organization {org['name']!r}: owner {org['owner']}, "
                f"members {members} (imported as organization)"
            )
        )
    lines.extend(
        printable(f"note: {link.key}: {note}") for link in report.links for note in link.notes
    )
    lines.extend(printable(f"note: organization: {note}") for note in report.organization_notes)
    lines.append("")
    if not report.links and not report.defaults and report.organization is None:
        lines.append(f"Nothing to import; {destination} is unchanged.")
        return "\n".join(lines)
    wrote = [f"{len(report.links)} link(s)"]
    if report.defaults:
        wrote.append(f"default_access for {', '.join(sorted(report.defaults))}")
    if report.organization is not None:
        wrote.append("the organization")
    lines.append(f"Wrote {' and '.join(wrote)} to {destination}.")
    if plan is not None and plan.empty and not plan.problems:
        lines.append("Planned at once: no changes — ctsync now manages them as they are.")
    elif plan is not None:
        from ctsync.render.plan import plan_text

        lines.append("Planned at once; what ctsync would still change:")
        lines.append(plan_text(plan))
    return "\n".join(lines)
