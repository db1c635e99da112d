"""Plugging the audit trail into Graph clients: who writes, for which link, in which step.

The client knows the tenant, the call and the answer (a :class:`~ctsync.graph.WriteRecord`);
it does not know why the call was made. The engine says so with :func:`audit_step` around each
step. The current (link, step) lives in a :class:`~contextvars.ContextVar`, so each asyncio task
(one per link) carries its own: tasks copy the context they were created in, and an observer
runs inside the task that made the write, ``$batch`` items included.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final, Literal

from ctsync.graph.client import WriteIntent, WriteRecord

from .trail import INTENT, OUTCOME, AuditTrail

__all__ = [
    "Actor",
    "AuditContext",
    "AuditStep",
    "audit_step",
    "current_step",
    "intent_recorder",
    "recorder",
]


class _Inherit(Enum):
    INHERIT = "inherit"


_INHERIT: Final = _Inherit.INHERIT


@dataclass(frozen=True)
class AuditStep:
    """Why a write happens: the link it serves (``"contoso:fabrikam"``) and the plan step."""

    link: str | None = None
    step: str | None = None


_NOWHERE: Final = AuditStep()
_current: ContextVar[AuditStep] = ContextVar("ctsync_audit_step", default=_NOWHERE)


def current_step() -> AuditStep:
    """The (link, step) that writes made right now are recorded under."""
    return _current.get()


@contextmanager
def audit_step(
    *,
    link: str | Literal[_Inherit.INHERIT] | None = _INHERIT,
    step: str | Literal[_Inherit.INHERIT] | None = _INHERIT,
) -> Iterator[AuditStep]:
    """Record the writes made inside this block under ``link`` and ``step``.

    An argument left out keeps the enclosing block's value, so a task can set its link once
    and each step only names itself; pass ``None`` to clear one.
    """
    outer = _current.get()
    inner = AuditStep(
        link=outer.link if link is _INHERIT else link,
        step=outer.step if step is _INHERIT else step,
    )
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _current.reset(token)


@dataclass(frozen=True)
class Actor:
    """The identity ctsync writes as in one tenant."""

    tenant: str
    client_id: str | None = None
    object_id: str | None = None
    """The service principal's (or user's) object id, the token's ``oid``."""

    @classmethod
    def from_access_token(cls, token: str) -> Actor:
        """Read ``tid``, ``appid`` (or ``azp``) and ``oid`` from a JWT access token.

        The signature is not checked: the token came from our own credential and is only used
        to label records, never to decide anything. Errors never quote the token.
        """
        claims = _jwt_claims(token)
        tenant = claims.get("tid")
        if not isinstance(tenant, str) or not tenant:
            msg = "the access token carries no tenant id (tid claim)"
            raise ValueError(msg)
        client_id = claims.get("appid") or claims.get("azp")
        object_id = claims.get("oid")
        return cls(
            tenant=tenant,
            client_id=client_id if isinstance(client_id, str) else None,
            object_id=object_id if isinstance(object_id, str) else None,
        )


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        msg = "the access token is not a JWT"
        raise ValueError(msg)
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        msg = "the access token's claims could not be decoded"
        raise ValueError(msg) from None
    # Anything but an object has no claims; the caller reports the missing tid.
    return claims if isinstance(claims, dict) else {}


@dataclass
class AuditContext:
    """What one run (a plan, an apply, a destroy) records beside each write.

    ``actors`` maps a tenant id to the identity ctsync writes as there; the engine adds them as
    it gets tokens (:meth:`add_actor`). A write in a tenant with no actor is still recorded,
    with only the tenant.
    """

    plan_id: str | None = None
    config_hash: str | None = None
    actors: dict[str, Actor] = field(default_factory=dict)

    def add_actor(self, actor: Actor) -> None:
        self.actors[actor.tenant] = actor

    def actor_for(self, tenant: str) -> Actor:
        return self.actors.get(tenant) or Actor(tenant=tenant)


def _append(
    trail: AuditTrail, context: AuditContext, write: WriteIntent | WriteRecord, **fields: Any
) -> Awaitable[None] | None:
    """Append ``write`` under the current (link, step) and the run's plan and actor.

    On an event loop the record joins the next group commit (:meth:`AuditTrail.append_soon`)
    and the awaitable is done once it is stored: the client awaits it before it goes on (an
    intent before its write is sent). Elsewhere it is stored at once."""
    where = _current.get()
    actor = context.actor_for(write.tenant)
    try:
        asyncio.get_running_loop()
        append: Callable[..., Any] = trail.append_soon
    except RuntimeError:
        append = trail.append
    stored = append(
        actor_tenant=write.tenant,
        actor_client_id=actor.client_id,
        actor_object_id=actor.object_id,
        link=where.link,
        step=where.step,
        method=write.method,
        path=write.path,
        body=write.body,
        plan_id=context.plan_id,
        config_hash=context.config_hash,
        intent_id=write.intent_id,
        **fields,
    )
    return stored if inspect.isawaitable(stored) else None


def recorder(
    trail: AuditTrail, context: AuditContext
) -> Callable[[WriteRecord], Awaitable[None] | None]:
    """An observer for :meth:`GraphClient.add_observer` that appends each write to ``trail``.

    It raises :class:`~ctsync.audit.AuditError` when the record cannot be stored; the client
    lets that reach the caller, so an unrecorded write never passes silently.
    """

    def record(write: WriteRecord) -> Awaitable[None] | None:
        return _append(
            trail,
            context,
            write,
            status=write.status,
            request_id=write.request_id,
            client_request_id=write.client_request_id or None,
            error_code=write.error_code,
            phase=OUTCOME if write.intent_id else None,
        )

    return record


def intent_recorder(
    trail: AuditTrail, context: AuditContext
) -> Callable[[WriteIntent], Awaitable[None] | None]:
    """An observer for :meth:`GraphClient.add_intent_observer`: each write is recorded as an
    intent before it is sent, so a process killed while it is in flight leaves it visible.

    Like :func:`recorder`, it raises :class:`~ctsync.audit.AuditError` when the record cannot
    be stored — and then the write is not sent.
    """

    def record(intent: WriteIntent) -> Awaitable[None] | None:
        return _append(trail, context, intent, phase=INTENT)

    return record
