"""A plan: the steps that make both tenants of every link match the config.

Each :class:`Step` is one create, update, delete or action on one object in one tenant, with
its field-level changes and the steps it waits for. Steps form a DAG; the executor runs them in
dependency order with bounded concurrency. Plans are plain data: they render to text, JSON or
PowerShell, and a saved plan is re-checked against live state before it is applied.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ApplyReport",
    "FieldChange",
    "Plan",
    "PlanFileError",
    "Problem",
    "Step",
    "StepOutcome",
]

Action = Literal["create", "update", "delete", "action", "wait"]


@dataclass(frozen=True)
class FieldChange:
    """One field that changes: ``old`` is the live value (None when absent)."""

    field: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class Step:
    """One change in one tenant.

    ``id`` is stable across runs for the same config (``fabrikam/partner/contoso``,
    ``contoso:fabrikam/job``); ``links`` names every link the object serves (a partner
    configuration can serve the links in both directions of a pair). ``params`` carries what
    the executor needs (ids known at plan time, bodies); ``destructive`` steps need approval.
    """

    id: str
    tenant: str
    resource: str
    action: Action
    summary: str
    links: tuple[str, ...] = ()
    changes: tuple[FieldChange, ...] = ()
    depends_on: tuple[str, ...] = ()
    destructive: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """What the step does, hashed: the object, the action and the values it writes.

        Two plans that would make the same change share it; a changed desired value does not.
        """
        what = [
            self.id,
            self.tenant,
            self.resource,
            self.action,
            [[c.field, c.new] for c in self.changes],
        ]
        text = json.dumps(what, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "resource": self.resource,
            "action": self.action,
            "summary": self.summary,
            "links": list(self.links),
            "changes": [c.to_dict() for c in self.changes],
            "depends_on": list(self.depends_on),
            "destructive": self.destructive,
            "params": self.params,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return cls(
            id=data["id"],
            tenant=data["tenant"],
            resource=data["resource"],
            action=data["action"],
            summary=data["summary"],
            links=tuple(data.get("links", ())),
            changes=tuple(
                FieldChange(c["field"], c["old"], c["new"]) for c in data.get("changes", ())
            ),
            depends_on=tuple(data.get("depends_on", ())),
            destructive=bool(data.get("destructive", False)),
            params=dict(data.get("params", {})),
        )


@dataclass(frozen=True)
class Problem:
    """Something in a tenant that ctsync will not fix on its own: shown with its remedy."""

    link: str
    tenant: str
    code: str
    message: str
    remedy: str
    objects: tuple[str, ...] = ()
    severity: Literal["error", "warning"] = "warning"
    """``error``: ctsync will not guess; nothing is applied until it is resolved."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "link": self.link,
            "tenant": self.tenant,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "remedy": self.remedy,
            "objects": list(self.objects),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(
            link=data["link"],
            tenant=data["tenant"],
            code=data["code"],
            message=data["message"],
            remedy=data["remedy"],
            objects=tuple(data.get("objects", ())),
            severity=_choice(data.get("severity", "warning"), ("error", "warning")),
        )


class PlanFileError(ValueError):
    """A saved plan file that is not one ``ctsync plan --out`` wrote."""


@dataclass(frozen=True)
class Plan:
    """Everything ``apply`` would do, and what it was computed from."""

    kind: Literal["apply", "destroy"]
    config_path: str
    config_hash: str
    #: Hash of the live objects the plan was computed from: a saved plan is refused when
    #: live state has moved since.
    live_hash: str
    steps: tuple[Step, ...]
    #: Things worth knowing that are not changes (e.g. a read-only tenant that drifted).
    notes: tuple[str, ...] = ()
    version: int = 1
    #: The links asked for (``--link``); empty: every link of the config.
    links: tuple[str, ...] = ()
    #: What ctsync found and will not fix by itself (e.g. duplicate apps), with remedies.
    problems: tuple[Problem, ...] = ()
    #: Steps of tenants that are read-only in the config: what their admins must run. Shown
    #: and written as PowerShell, never run by apply.
    handoff: tuple[Step, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.steps

    @property
    def id(self) -> str:
        """A short fingerprint of the plan, recorded beside every write it makes."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def destructive(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.destructive)

    @property
    def blockers(self) -> tuple[Problem, ...]:
        """Problems that stop apply (and make ``plan`` exit 1)."""
        return tuple(p for p in self.problems if p.severity == "error")

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0, "action": 0, "wait": 0}
        for step in self.steps:
            out[step.action] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kind": self.kind,
            "config_path": self.config_path,
            "config_hash": self.config_hash,
            "live_hash": self.live_hash,
            "summary": self.counts(),
            "steps": [s.to_dict() for s in self.steps],
            "notes": list(self.notes),
            "links": list(self.links),
            "problems": [p.to_dict() for p in self.problems],
            "handoff": [s.to_dict() for s in self.handoff],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """A plan from :meth:`to_dict`'s shape; :class:`PlanFileError` for anything else.

        Only the shape is checked here: a saved plan is never executed as written, but only
        when planning again yields the very same plan (see ``ctsync apply PLAN``).
        """
        try:
            return cls(
                kind=_choice(data["kind"], ("apply", "destroy")),
                config_path=_text(data["config_path"]),
                config_hash=_text(data["config_hash"]),
                live_hash=_text(data["live_hash"]),
                steps=tuple(Step.from_dict(s) for s in _items(data["steps"])),
                notes=tuple(_text(n) for n in _items(data.get("notes", []))),
                version=int(data.get("version", 1)),
                links=tuple(_text(k) for k in _items(data.get("links", []))),
                problems=tuple(Problem.from_dict(p) for p in _items(data.get("problems", []))),
                handoff=tuple(Step.from_dict(s) for s in _items(data.get("handoff", []))),
            )
        except PlanFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            msg = f"not a plan written by `ctsync plan --out` ({what})"
            raise PlanFileError(msg) from None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        msg = f"expected text, found {type(value).__name__}"
        raise PlanFileError(msg)
    return value


def _items(value: Any) -> list[Any]:
    if not isinstance(value, list):
        msg = f"expected a list, found {type(value).__name__}"
        raise PlanFileError(msg)
    return value


def _choice(value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        msg = f"expected one of {', '.join(allowed)}, found {value!r}"
        raise PlanFileError(msg)
    return value


@dataclass
class StepOutcome:
    step_id: str
    status: Literal["done", "failed", "skipped"]
    error: str | None = None
    #: Graph error details when the step failed on a Graph answer.
    graph_error: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step_id,
            "status": self.status,
            "error": self.error,
            "graph_error": self.graph_error,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ApplyReport:
    plan: Plan
    outcomes: list[StepOutcome] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0

    @property
    def ok(self) -> bool:
        return all(o.status == "done" for o in self.outcomes)

    def by_status(self, status: str) -> list[StepOutcome]:
        return [o for o in self.outcomes if o.status == status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "done": len(self.by_status("done")),
            "failed": len(self.by_status("failed")),
            "skipped": len(self.by_status("skipped")),
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "outcomes": [o.to_dict() for o in self.outcomes],
        }
