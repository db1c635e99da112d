"""The floor model of graph-limits §6.3: the fastest any client could possibly be.

``T_floor = max(D·L, calls·L/C, max_s max(0, W_s − B_s)/r_s)``

- ``D``: dependency depth, round trips on the critical path;
- ``L``: per-call latency (0.1 s);
- ``calls``/``C``: round trips to the binding tenant over the concurrency allowed there;
- ``W_s``: units charged to scope ``s`` (the hub's app+tenant write bucket), ``B_s`` what that
  bucket holds at the start (its capacity when full, 0 when drained), ``r_s`` its refill rate.

Two flavours are computed:

- the **reference floor** takes the work Graph really requires (graph-limits §6.1/§6.2): the
  minimal call set per link (8 calls; 6 of them writes in the hub, 2 in the spoke) and its depth;
- the **plan floor** takes the work ctsync's own plan asks for: the critical path of the real
  plan's DAG, each step weighted by the round trips its handler makes one after another, and
  the writes/calls the hub was actually charged.

The reference floor is what the targets are judged against; the plan floor shows how much of
the gap is scheduling (executor, pacer) and how much is extra work in the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ctsync.emulator.core.traffic import QuotaLimits
from ctsync.engine import Plan
from ctsync.engine.execute import ExecuteOptions
from ctsync.engine.live import READ_BATCH_CONCURRENCY
from ctsync.engine.session import MAX_IN_FLIGHT as SESSION_IN_FLIGHT

__all__ = [
    "MINIMAL_CALLS_PER_LINK",
    "MINIMAL_HUB_CALLS_PER_LINK",
    "MINIMAL_HUB_WRITES_PER_LINK",
    "READ_CONCURRENCY",
    "REF_DEPTH_MINIMAL",
    "REF_DEPTH_VALIDATED",
    "TENANT_CONCURRENCY",
    "Floor",
    "FloorError",
    "QuotaScope",
    "audit_floor",
    "critical_path",
    "efficiency",
    "hub_write_scope",
    "step_weights",
]

#: The most requests ctsync can have in flight in one tenant: its session's cap across tenants
#: (``engine.session.MAX_IN_FLIGHT``) — not ``ExecuteOptions.per_tenant``, which bounds steps,
#: and a step may send requests side by side — and, for its live read, the ``$batch`` round
#: trips in flight. Imported, so a floor can never assume less parallelism than the code
#: has. Graph documents no concurrency limit for identity calls.
TENANT_CONCURRENCY: int = max(ExecuteOptions().per_tenant, SESSION_IN_FLIGHT)
READ_CONCURRENCY: int = READ_BATCH_CONCURRENCY


class FloorError(ValueError):
    """A measurement beat its floor: the floor model, not the tool, is wrong."""


def efficiency(floor: Floor, measured: float, what: str) -> float:
    """``floor / measured``, refusing anything above 1 (no run can beat the fastest possible)."""
    if measured <= 0:
        msg = f"{what}: measured {measured} s"
        raise FloorError(msg)
    value = floor.seconds / measured
    if value > 1.0 + 1e-6:
        msg = (
            f"{what}: {measured:.3f} s beat its floor of {floor.seconds:.3f} s "
            f"(binding {floor.binding}): the floor model is wrong"
        )
        raise FloorError(msg)
    return value


#: graph-limits §6.1: T1', T2, S1', S3, S5, S6, S7, S10 for k = 1.
MINIMAL_CALLS_PER_LINK = 8
MINIMAL_HUB_CALLS_PER_LINK = 6
MINIMAL_HUB_WRITES_PER_LINK = 6
#: graph-limits §6.2: S3 → S5 → S10 (the target's 2-RT chain runs alongside) ...
REF_DEPTH_MINIMAL = 3
#: ... and S3 → S5 → S8 → S9 → S10 with validate and provision-on-demand.
REF_DEPTH_VALIDATED = 5


@dataclass(frozen=True)
class QuotaScope:
    name: str
    #: W_s: units charged.
    units: float
    #: Bucket capacity (the window's quota).
    capacity: float
    #: r_s: refill per second.
    rate: float
    #: B_s: what the bucket holds at the start (capacity when full, 0 when drained).
    start_level: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.units - self.start_level) / self.rate


def hub_write_scope(
    writes: float, *, drained: bool, limits: QuotaLimits | None = None
) -> QuotaScope:
    """The hub's app+tenant write bucket (3,000 per 150 s: B = 3,000, r = 20/s)."""
    quota, window = (limits or QuotaLimits()).app_tenant_writes
    return QuotaScope(
        name="hub app+tenant writes",
        units=writes,
        capacity=quota,
        rate=quota / window,
        start_level=0.0 if drained else float(quota),
    )


@dataclass(frozen=True)
class Floor:
    depth: float
    latency: float
    calls: float
    concurrency: float
    scopes: tuple[QuotaScope, ...] = ()

    def terms(self) -> dict[str, float]:
        quota = max((s.seconds for s in self.scopes), default=0.0)
        return {
            "depth": self.depth * self.latency,
            "throughput": self.calls * self.latency / self.concurrency,
            "quota": quota,
        }

    @property
    def seconds(self) -> float:
        return max(self.terms().values())

    @property
    def binding(self) -> str:
        terms = self.terms()
        return max(terms, key=lambda k: terms[k])

    def as_dict(self) -> dict[str, object]:
        return {
            "seconds": round(self.seconds, 3),
            "binding": self.binding,
            "terms": {k: round(v, 3) for k, v in self.terms().items()},
            "D": self.depth,
            "L": self.latency,
            "calls": self.calls,
            "C": self.concurrency,
            "scopes": [
                {
                    "name": s.name,
                    "W": s.units,
                    "B_capacity": s.capacity,
                    "B_start": s.start_level,
                    "r": s.rate,
                    "seconds": round(s.seconds, 3),
                }
                for s in self.scopes
            ],
        }


def critical_path(
    plan: Plan, weights: Mapping[tuple[str, str], float], default: float = 1.0
) -> float:
    """Round trips on the longest dependency chain of ``plan``.

    ``weights`` gives, per ``(resource, action)``, the round trips a step makes one after
    another (measured in an unthrottled run); unknown kinds count ``default``.
    """
    steps = {s.id: s for s in plan.steps}
    memo: dict[str, float] = {}

    def finish(step_id: str) -> float:
        if step_id not in memo:
            step = steps[step_id]
            before = max((finish(d) for d in step.depends_on if d in steps), default=0.0)
            memo[step_id] = before + weights.get((step.resource, step.action), default)
        return memo[step_id]

    return max((finish(s) for s in steps), default=0.0)


def step_weights(
    timeline: Iterable[tuple[str, str, float]], latency: float
) -> dict[tuple[str, str], float]:
    """Round trips per step kind from ``(resource, action, simulated seconds)`` records.

    A step that took no simulated time made no round trip of its own (a link's start, sent in
    its schema PUT's ``$batch``): it weighs 0."""
    out: dict[tuple[str, str], float] = {}
    for resource, action, seconds in timeline:
        trips = float(max(0, round(seconds / latency)))
        out[(resource, action)] = max(out.get((resource, action), 0.0), trips)
    return out


def audit_floor(
    pages_per_tenant: list[int],
    *,
    latency: float,
    extra_depth: float = 0.0,
    limits: QuotaLimits | None = None,
) -> Floor:
    """graph-limits §6.4/§9 (B4): reading provisioning-log pages under the reports quota.

    ``T_floor = max((D + max_t p_t)·L, max_t max(0, p_t − B_t)/r_t, max(0, Σ p_t − B_a)/r_a)``

    - ``p_t``: pages of tenant ``t``; each page needs the previous one's ``@odata.nextLink``, so
      a tenant's pages are a chain of round trips (plus ``extra_depth`` round trips before the
      first page, e.g. finding the job id);
    - per app and tenant: B_t = 5 requests (burst), r_t = 0.5 per second (5 / 10 s);
    - per app, all tenants: B_a = 122 (burst), r_a = 12.2 per second (122 / 10 s).

    Buckets start full. Concurrency across tenants is free (Graph documents no limit).
    """
    lim = limits or QuotaLimits()
    t_quota, t_window = lim.reports_app_tenant
    a_quota, a_window = lim.reports_app
    busiest = max(pages_per_tenant, default=0)
    scopes = (
        QuotaScope(
            name="tenant reports bucket",
            units=busiest,
            capacity=t_quota,
            rate=t_quota / t_window,
            start_level=float(t_quota),
        ),
        QuotaScope(
            name="app reports bucket",
            units=sum(pages_per_tenant),
            capacity=a_quota,
            rate=a_quota / a_window,
            start_level=float(a_quota),
        ),
    )
    return Floor(
        depth=extra_depth + busiest,
        latency=latency,
        calls=0,
        concurrency=1,
        scopes=scopes,
    )
