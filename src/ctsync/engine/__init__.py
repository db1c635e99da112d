"""Reconcile: read both tenants of every link, diff against the config, plan, execute.

The engine returns data (plans, reports) and never prints; ``ctsync.render`` turns them into
text, JSON or PowerShell.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctsync.config import DesiredState, LinkSpec
from ctsync.engine.desired import Wants, wants
from ctsync.engine.execute import Event, ExecuteOptions, execute
from ctsync.engine.live import LiveState, read_live
from ctsync.engine.model import (
    ApplyReport,
    FieldChange,
    Plan,
    PlanFileError,
    Problem,
    Step,
    StepOutcome,
)
from ctsync.engine.plan import destroy_plan, duplicates_plan, plan_changes
from ctsync.engine.session import CredentialFactory, Session
from ctsync.engine.settle import read_settled
from ctsync.errors import ConfigError

__all__ = [
    "ApplyReport",
    "CredentialFactory",
    "Event",
    "ExecuteOptions",
    "FieldChange",
    "LiveState",
    "Plan",
    "PlanFileError",
    "Problem",
    "Session",
    "Step",
    "StepOutcome",
    "execute",
    "make_destroy_plan",
    "make_plan",
    "read_live",
    "read_settled",
    "select_links",
]


def select_links(desired: DesiredState, keys: Sequence[str] | None) -> tuple[LinkSpec, ...]:
    """The links named ``SOURCE:TARGET`` (all when ``keys`` is empty)."""
    if not keys:
        return desired.links
    known = {link.key: link for link in desired.links}
    chosen = []
    for key in keys:
        if key not in known:
            listed = ", ".join(sorted(known)) or "none"
            msg = f"no link {key!r} in {desired.path} (links: {listed})"
            raise ConfigError(msg)
        chosen.append(known[key])
    return tuple(chosen)


async def make_plan(
    desired: DesiredState,
    session: Session,
    *,
    links: Sequence[str] | None = None,
    stages: dict[str, int] | None = None,
) -> Plan:
    """Read live state and plan every change ``apply`` would make.

    ``stages`` moves staged rollouts to a stage (``{"contoso:fabrikam": 1}``): promote.
    """
    wanted = wants(desired, links=select_links(desired, links), organization=not links)
    live = await read_settled(session, desired, wanted, stages=stages)
    return plan_changes(
        desired, live, wanted, stages=stages, links=tuple(links or ()), ledger=session.ledger
    )


async def make_destroy_plan(
    desired: DesiredState,
    session: Session,
    *,
    links: Sequence[str] | None = None,
    keep_users: bool = False,
    duplicates_only: bool = False,
    delete_adopted: bool = False,
    reset_default: bool = False,
) -> Plan:
    """Plan tearing the chosen links (default: all) down in the documented order.

    ``duplicates_only`` plans deleting only the duplicate apps of the links (the other apps
    carrying a link's tag; see :class:`Problem` ``duplicate-apps``), keeping the link.
    """
    chosen = select_links(desired, links)
    wanted: Wants = wants(desired, links=chosen, organization=not links)
    live = await read_settled(session, desired, wanted)
    if duplicates_only:
        return duplicates_plan(desired, live, wanted)
    remaining = wants(
        desired,
        links=tuple(lk for lk in desired.links if lk not in chosen),
        organization=bool(links),
    )
    return destroy_plan(
        desired,
        live,
        wanted,
        keep_users=keep_users,
        remaining=remaining,
        ledger=session.ledger,
        delete_adopted=delete_adopted,
        reset_default=reset_default,
    )
