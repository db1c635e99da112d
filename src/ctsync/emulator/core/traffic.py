"""Latency, injected faults and Graph's throttling model.

Every Graph call (and every request inside a ``$batch``) passes :meth:`TrafficControl.admit`
before its route runs. In order:

1. **Enforced Retry-After.** A quota 429 blocks the caller's (app, tenant, family) until its
   ``Retry-After`` ends — the bucket is empty for every call of that scope — and a call inside
   that window is refused again with the remaining time. A random (load) 429 blocks only the
   call it answered: a retry of that call (same ``client-request-id``) before its
   ``Retry-After`` ends is refused again. Calls refused by a block are counted
   (``requests_while_blocked``), and so is a call that repeats the ``client-request-id`` of a
   request told to wait (``early_retries``): a well-behaved client makes neither.
2. **Random faults** at the profile's seeded rates: 429 (with a drawn ``Retry-After``), 500
   and 503 (with a ``Retry-After`` too).
3. **Quotas** (graph-limits §1.1-1.4), when ``profile.quotas`` is on.

Dropped connections are decided once per outer HTTP request (a ``$batch`` as a whole), before
it is handled, by :meth:`TrafficControl.drop`: ``after`` (``rate_drop``) lets the emulator
process the request and then has the transport lose the answer; ``before``
(``rate_drop_before``) loses the request before the service sees it.

Families: ``identity`` calls are split into ``identity/read`` and ``identity/write`` so an
exhausted write bucket refuses writes while reads pass; ``reports`` (audit and provisioning
logs) and ``on_demand`` (provisionOnDemand) have their own. The outer ``$batch`` request
(kind ``batch``) is free and never answered with a random error: each inner request is
charged and faulted instead (only a dropped connection hits the ``$batch`` as a whole).

Bucket model (Microsoft names a token bucket but documents only quota per window): capacity =
the window's quota, refilled linearly at quota/window. ``quota_mode="window"`` switches to
fixed windows aligned to multiples of the window length. A request refused with 429 consumes
no tokens: the enforced Retry-After already stops a client from hammering, and charging
refusals would make the documented Retry-After a lie.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from ctsync.emulator.core.errors import GraphFault

__all__ = ["Admission", "FaultProfile", "QuotaLimits", "TrafficControl"]

_SIZE_CLASSES = ("S", "M", "L")
_QUOTA_MODES = ("bucket", "window")
_KINDS = ("identity", "reports", "on_demand", "batch")

# ---------------------------------------------------------------------------------------------
# the profile
# ---------------------------------------------------------------------------------------------

#: ``--faults`` spec keys (hyphens and underscores alike) → profile field.
_SPEC_KEYS = {
    "429": "rate_429",
    "rate-429": "rate_429",
    "500": "rate_500",
    "rate-500": "rate_500",
    "503": "rate_503",
    "rate-503": "rate_503",
    "drop": "rate_drop",
    "reset": "rate_drop",
    "rate-drop": "rate_drop",
    "drop-before": "rate_drop_before",
    "rate-drop-before": "rate_drop_before",
    "retry-after": "retry_after",
    "latency": "latency_ms",
    "latency-ms": "latency_ms",
    "jitter": "jitter_ms",
    "jitter-ms": "jitter_ms",
    "lag": "replication_lag",
    "replication-lag": "replication_lag",
    "quotas": "quotas",
    "size": "size_class",
    "size-class": "size_class",
    "quota-mode": "quota_mode",
    "extra-properties": "extra_properties",
}
_SPEC_HELP = (
    "429, 500, 503, retry-after, latency, jitter, lag, quotas, size, quota-mode, drop (or reset), "
    "drop-before, extra-properties"
)
_RATES = ("rate_429", "rate_500", "rate_503", "rate_drop", "rate_drop_before")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0}
_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}


def _seconds(text: str, default_unit: str) -> float:
    m = _DURATION.match(text)
    if m is None:
        msg = f"{text!r} is not a duration (e.g. 100ms, 2s, 1.5)"
        raise ValueError(msg)
    return float(m.group(1)) * _UNIT_SECONDS[(m.group(2) or default_unit).lower()]


def _rate(text: str) -> float:
    text = text.strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        msg = f"{text!r} is not a rate (e.g. 0.05 or 5%)"
        raise ValueError(msg) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class FaultProfile:
    """How the emulated service misbehaves. Defaults: no faults, documented quotas on.

    ``latency_ms``/``jitter_ms``: delay per response (uniform jitter ± ``jitter_ms``).
    ``rate_*``: chance per call of that fault (their sum is at most 1); ``rate_drop`` and
    ``rate_drop_before`` are per outer HTTP request (a ``$batch`` counts once): the connection
    drops after the emulator processed the request, or before. ``retry_after``: range
    in seconds the ``Retry-After`` of random 429/503 is drawn from. ``replication_lag``: seconds
    an object created through the API stays invisible to reads. ``size_class`` forces the
    tenant size class (S/M/L) that picks the identity RU quota. ``quota_mode``: ``bucket``
    (token bucket) or ``window`` (fixed windows). ``extra_properties``: entity answers carry a
    few properties Microsoft's v1.0 types do not document, as real tenants' answers do
    (``core/extras.py``).

    In-process every setting defaults to off (no lag, no extras); ``ctsync emulator serve``
    turns replication lag and extra properties on (``--replication-lag``,
    ``--no-extra-properties``).
    """

    latency_ms: float = 0
    jitter_ms: float = 0
    rate_429: float = 0
    rate_500: float = 0
    rate_503: float = 0
    rate_drop: float = 0
    rate_drop_before: float = 0
    retry_after: tuple[float, float] = (1, 5)
    replication_lag: float = 0
    quotas: bool = True
    size_class: str | None = None
    quota_mode: str = "bucket"
    extra_properties: bool = False

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms", "replication_lag"):
            if getattr(self, name) < 0:
                msg = f"{name} must not be negative"
                raise ValueError(msg)
        for name in _RATES:
            if not 0 <= getattr(self, name) <= 1:
                msg = f"{name} must be between 0 and 1"
                raise ValueError(msg)
        if sum(getattr(self, name) for name in _RATES) > 1 + 1e-9:
            msg = "the fault rates add up to more than 1"
            raise ValueError(msg)
        low, high = self.retry_after
        if not 0 <= low <= high:
            msg = f"retry_after must be a range low-high with 0 <= low <= high, not {low}-{high}"
            raise ValueError(msg)
        if self.size_class is not None and self.size_class not in _SIZE_CLASSES:
            msg = f"size_class must be one of {', '.join(_SIZE_CLASSES)} (or unset)"
            raise ValueError(msg)
        if self.quota_mode not in _QUOTA_MODES:
            msg = f"quota_mode must be one of {', '.join(_QUOTA_MODES)}"
            raise ValueError(msg)

    @classmethod
    def parse(cls, spec: str, *, base: FaultProfile | None = None) -> FaultProfile:
        """Read the CLI's ``--faults`` spec.

        Comma-separated ``key=value``, e.g. ``429=0.3,503=5%,drop=1%,retry-after=1-10,
        latency=100ms,jitter=20ms,lag=2s,quotas=off,size=L,quota-mode=window``. Bare numbers
        are milliseconds for latency and jitter, seconds for lag and retry-after. The items
        change ``base`` (default: the all-off profile); what the spec does not name keeps
        ``base``'s value.
        """
        changes: dict[str, Any] = {}
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            name = _SPEC_KEYS.get(key.strip().lower().replace("_", "-"))
            if not sep or name is None:
                msg = f"bad fault spec item {item!r}: expected key=value. Valid keys: {_SPEC_HELP}"
                raise ValueError(msg)
            try:
                changes[name] = _parse_spec_value(name, value.strip())
            except ValueError as exc:
                msg = f"bad fault spec item {item!r}: {exc}. Valid keys: {_SPEC_HELP}"
                raise ValueError(msg) from None
        try:
            return replace(base, **changes) if base is not None else cls(**changes)
        except ValueError as exc:
            msg = f"bad fault spec {spec!r}: {exc}"
            raise ValueError(msg) from None

    def with_latency(self, latency_ms: float) -> FaultProfile:
        """This profile with a different fixed latency (the CLI's ``--latency-ms``)."""
        return replace(self, latency_ms=float(latency_ms))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; :meth:`from_dict` and :meth:`merged` take the same keys."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["retry_after"] = list(self.retry_after)
        return out

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> FaultProfile:
        return cls().merged(mapping)

    def merged(self, mapping: Mapping[str, Any]) -> FaultProfile:
        """This profile with the given keys changed; unknown keys or bad values → ValueError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            msg = f"unknown fault setting(s) {unknown}; valid: {', '.join(sorted(known))}"
            raise ValueError(msg)
        changes: dict[str, Any] = {}
        for key, value in mapping.items():
            if key == "retry_after":
                pair = [value, value] if _is_number(value) else value
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    msg = "retry_after must be [low, high] seconds"
                    raise ValueError(msg)
                if not all(_is_number(v) for v in pair):
                    msg = "retry_after must be [low, high] seconds"
                    raise ValueError(msg)
                changes[key] = (float(pair[0]), float(pair[1]))
            elif key in {"quotas", "extra_properties"}:
                if not isinstance(value, bool):
                    msg = f"{key} must be true or false"
                    raise ValueError(msg)
                changes[key] = value
            elif key == "size_class":
                if value is not None and not isinstance(value, str):
                    msg = "size_class must be S, M, L or null"
                    raise ValueError(msg)
                changes[key] = value.upper() if isinstance(value, str) else None
            elif key == "quota_mode":
                if not isinstance(value, str):
                    msg = "quota_mode must be 'bucket' or 'window'"
                    raise ValueError(msg)
                changes[key] = value.lower()
            else:
                if not _is_number(value):
                    msg = f"{key} must be a number"
                    raise ValueError(msg)
                changes[key] = float(value)
        return replace(self, **changes)


def _parse_spec_value(name: str, value: str) -> Any:
    if name.startswith("rate_"):
        return _rate(value)
    if name in {"latency_ms", "jitter_ms"}:
        return _seconds(value, "ms") * 1000
    if name == "replication_lag":
        return _seconds(value, "s")
    if name == "retry_after":
        low, sep, high = value.partition("-")
        first = _seconds(low, "s")
        return (first, _seconds(high, "s") if sep else first)
    if name in {"quotas", "extra_properties"}:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        msg = f"{value!r} is not on/off"
        raise ValueError(msg)
    if name == "size_class":
        upper = value.upper()
        return None if upper in {"", "AUTO"} else upper
    return value.lower()


# ---------------------------------------------------------------------------------------------
# quotas
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaLimits:
    """Graph's documented limits (graph-limits §1): (quota, window seconds) per scope."""

    #: Identity RU per (app, tenant), by tenant size class, per ``ru_window``.
    ru_small: int = 3_500
    ru_medium: int = 5_000
    ru_large: int = 8_000
    ru_window: float = 10
    app_tenant_writes: tuple[int, float] = (3_000, 150)
    app_ru: tuple[int, float] = (150_000, 20)
    app_writes: tuple[int, float] = (35_000, 300)
    tenant_writes: tuple[int, float] = (18_000, 300)
    reports_app_tenant: tuple[int, float] = (5, 10)
    reports_app: tuple[int, float] = (122, 10)
    on_demand_app_tenant: tuple[int, float] = (5, 10)
    global_app: tuple[int, float] = (130_000, 10)

    def ru_for(self, size_class: str) -> tuple[int, float]:
        quota = {"S": self.ru_small, "M": self.ru_medium, "L": self.ru_large}[size_class]
        return quota, self.ru_window


@dataclass
class _Bucket:
    capacity: float
    window: float
    mode: str
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        if self.mode == "window":
            start = math.floor(now / self.window) * self.window
            if start > self.stamp:
                self.stamp = start
                self.tokens = self.capacity
            return
        if now > self.stamp:
            gained = (now - self.stamp) * self.capacity / self.window
            self.tokens = min(self.capacity, self.tokens + gained)
            self.stamp = now

    def has(self, amount: float) -> bool:
        # A request larger than the whole bucket is admitted from a full bucket rather than
        # refused forever.
        return self.tokens + 1e-9 >= min(amount, self.capacity)

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` tokens are there (``refill`` already applied)."""
        missing = min(amount, self.capacity) - self.tokens
        if missing <= 0:
            return 0.0
        if self.mode == "window":
            return self.stamp + self.window - now
        return missing * self.window / self.capacity

    def usage(self) -> float:
        return 1 - self.tokens / self.capacity


@dataclass(frozen=True)
class _Charge:
    key: tuple[str, ...]
    amount: float
    limit: tuple[float, float]
    #: ``Tenant_Application/ReadWrite`` style: the first two parts of ``x-ms-throttle-scope``.
    scope: str
    information: str
    #: Whether this scope counts towards ``x-ms-throttle-limit-percentage``.
    identity: bool = False


@dataclass(frozen=True)
class Admission:
    """The verdict on one call: a fault to answer with, or headers to add to the answer."""

    fault: GraphFault | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Block:
    until: float
    headers: dict[str, str]


def _whole_seconds(seconds: float) -> int:
    # Rounding first keeps float noise (3.0000000001 s) from adding a whole second.
    return max(1, math.ceil(round(seconds, 6)))


def _too_many(retry_after: int, headers: Mapping[str, str]) -> GraphFault:
    out = {"Retry-After": str(retry_after), **headers}
    return GraphFault(429, "TooManyRequests", "Too many requests.", headers=out)


class TrafficControl:
    """Applies a :class:`FaultProfile` and the quota model to each call; keeps the counters."""

    def __init__(
        self,
        profile: FaultProfile,
        *,
        rng: random.Random,
        limits: QuotaLimits | None = None,
    ) -> None:
        self.profile = profile
        self.limits = limits or QuotaLimits()
        self._rng = rng
        self._rng_start = rng.getstate()
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self._blocks: dict[tuple[str, str, str], _Block] = {}
        self._told_to_wait: dict[str, float] = {}
        self._call_blocks: dict[str, _Block] = {}
        #: The answer to the request being handled will be lost (a ``drop`` after
        #: processing): a Retry-After in it is never heard, so a retry cannot be early.
        self.answer_lost = False
        self._counts: Counter[str] = Counter()

    # -- configuration -----------------------------------------------------------------

    def reset(self, profile: FaultProfile) -> None:
        """Start over: new profile, full buckets, no blocks, zero counters, the seed's rng."""
        self.profile = profile
        self._rng.setstate(self._rng_start)
        self._buckets.clear()
        self._blocks.clear()
        self._told_to_wait.clear()
        self._call_blocks.clear()
        self._counts.clear()

    def configure(self, profile: FaultProfile) -> None:
        """Switch profile, keeping bucket levels, blocks and counters."""
        self.profile = profile

    def reseed(self, seed: int) -> None:
        """Draw faults and jitter from ``seed`` from now on (ids are not affected)."""
        self._rng.seed(seed)

    # -- latency -----------------------------------------------------------------------

    def latency(self) -> float:
        """Seconds to delay one response: fixed latency plus seeded uniform jitter."""
        millis = self.profile.latency_ms
        if self.profile.jitter_ms > 0:
            millis += self._rng.uniform(-self.profile.jitter_ms, self.profile.jitter_ms)
        return max(0.0, millis) / 1000

    # -- dropped connections -------------------------------------------------------------

    def drop(self) -> str | None:
        """Whether the transport loses this HTTP request's connection: ``"after"`` the emulator
        processed it (the answer is lost), ``"before"`` it reached the service, or ``None``.

        One seeded draw per outer request, and none at all while both rates are 0, so a profile
        without drops draws exactly the numbers it drew before drops existed.
        """
        p = self.profile
        self.answer_lost = False
        if p.rate_drop + p.rate_drop_before <= 0:
            return None
        roll = self._rng.random()
        if roll < p.rate_drop:
            self._counts["random_faults.drop"] += 1
            self.answer_lost = True
            return "after"
        if roll < p.rate_drop + p.rate_drop_before:
            self._counts["random_faults.drop_before"] += 1
            return "before"
        return None

    # -- admission -----------------------------------------------------------------------

    def admit(
        self,
        *,
        app_id: str,
        tenant_id: str,
        size_class: str,
        kind: str,
        cost: int,
        is_write: bool,
        query: Mapping[str, str],
        client_request_id: str,
        priority: str = "normal",
        now: datetime,
    ) -> Admission:
        """Decide one call. ``priority`` (``x-ms-throttle-priority``) is accepted and ignored:
        it changes which requests Graph sheds first under load, not the limits."""
        del priority
        if kind not in _KINDS:
            msg = f"unknown route kind {kind!r}; expected one of {', '.join(_KINDS)}"
            raise ValueError(msg)
        if kind == "batch":
            return Admission(None)
        t = now.timestamp()
        family = kind
        if kind == "identity":
            family = "identity/write" if is_write else "identity/read"
        block_key = (app_id, tenant_id.lower(), family)

        call_block = self._call_blocks.get(client_request_id)
        if call_block is not None and t < call_block.until:
            self._counts["requests_while_blocked"] += 1
            self._counts["throttled_429.blocked"] += 1
            self._counts["early_retries"] += 1
            remaining = _whole_seconds(call_block.until - t)
            return Admission(_too_many(remaining, call_block.headers))

        block = self._blocks.get(block_key)
        if block is not None and t < block.until:
            self._counts["requests_while_blocked"] += 1
            self._counts["throttled_429.blocked"] += 1
            if self._told_to_wait.get(client_request_id, -math.inf) > t:
                self._counts["early_retries"] += 1
            # This answer is a Retry-After too: retrying it early is just as early.
            self._tell_to_wait(client_request_id, block.until)
            return Admission(_too_many(_whole_seconds(block.until - t), block.headers))

        fault = self._random_fault(
            app_id=app_id,
            tenant_id=tenant_id,
            is_write=is_write,
            block_key=block_key,
            client_request_id=client_request_id,
            t=t,
        )
        if fault is not None:
            return Admission(fault)

        ru = self._resource_units(cost, query) if kind == "identity" else 1
        headers: dict[str, str] = {}
        if self.profile.quotas:
            charges = self._charges(
                app=app_id,
                tenant=tenant_id.lower(),
                size_class=size_class,
                kind=kind,
                ru=ru,
                is_write=is_write,
            )
            refused = self._take(charges, t)
            if refused is not None:
                wait, charge = refused
                retry_after = _whole_seconds(wait)
                info = {
                    "x-ms-throttle-scope": f"{charge.scope}/{app_id}/{tenant_id}",
                    "x-ms-throttle-information": charge.information,
                }
                self._counts[f"throttled_429.{charge.information}"] += 1
                self._block(block_key, client_request_id, t, t + retry_after, info)
                return Admission(_too_many(retry_after, info))
            usage = max((self._buckets[c.key].usage() for c in charges if c.identity), default=0.0)
            if usage >= 0.8:
                headers["x-ms-throttle-limit-percentage"] = f"{usage:.1f}"
        if kind == "identity":
            headers["x-ms-resource-unit"] = str(ru)
        self._counts["admitted"] += 1
        return Admission(None, headers)

    def _random_fault(
        self,
        *,
        app_id: str,
        tenant_id: str,
        is_write: bool,
        block_key: tuple[str, str, str],
        client_request_id: str,
        t: float,
    ) -> GraphFault | None:
        p = self.profile
        if p.rate_429 + p.rate_500 + p.rate_503 <= 0:
            return None
        roll = self._rng.random()
        if roll < p.rate_429:
            retry_after = self._draw_retry_after()
            info = {
                "x-ms-throttle-scope": (
                    f"Tenant_Application/{'Write' if is_write else 'Read'}/{app_id}/{tenant_id}"
                ),
                # Graph's documented value for throttling under load rather than over quota.
                "x-ms-throttle-information": "CPULimitExceeded",
            }
            self._counts["random_faults.429"] += 1
            self._counts["throttled_429.random"] += 1
            # Load shedding refuses one call, not the scope: only its retry is held back —
            # unless the answer saying so is lost on the way back.
            if not self.answer_lost:
                self._call_blocks[client_request_id] = _Block(t + retry_after, info)
            self._tell_to_wait(client_request_id, t + retry_after)
            if len(self._call_blocks) > 10_000:
                for crid in [c for c, b in self._call_blocks.items() if b.until <= t]:
                    del self._call_blocks[crid]
            return _too_many(retry_after, info)
        if roll < p.rate_429 + p.rate_500:
            self._counts["random_faults.500"] += 1
            return GraphFault(500, "generalException", "An unspecified error has occurred.")
        if roll < p.rate_429 + p.rate_500 + p.rate_503:
            self._counts["random_faults.503"] += 1
            retry_after = self._draw_retry_after()
            return GraphFault(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Retry after the Retry-After delay.",
                headers={"Retry-After": str(retry_after)},
            )
        return None

    def _draw_retry_after(self) -> int:
        low, high = self.profile.retry_after
        # Whole seconds, as Graph sends them; the block lasts exactly what the header says.
        return _whole_seconds(self._rng.uniform(low, high))

    def _block(
        self,
        key: tuple[str, str, str],
        client_request_id: str,
        t: float,
        until: float,
        info: dict[str, str],
    ) -> None:
        current = self._blocks.get(key)
        if current is None or current.until < until:
            self._blocks[key] = _Block(until, info)
        self._tell_to_wait(client_request_id, until)
        if len(self._told_to_wait) > 10_000:
            # Forget windows that have ended so a long run does not grow without bound.
            for crid in [c for c, u in self._told_to_wait.items() if u <= t]:
                del self._told_to_wait[crid]

    def _tell_to_wait(self, client_request_id: str, until: float) -> None:
        """Note that ``client_request_id`` was told to wait until ``until`` — if it hears it."""
        if self.answer_lost:
            return
        self._told_to_wait[client_request_id] = max(
            until, self._told_to_wait.get(client_request_id, -math.inf)
        )

    @staticmethod
    def _resource_units(cost: int, query: Mapping[str, str]) -> int:
        ru = cost
        if "$select" in query:
            ru -= 1
        if "$expand" in query:
            ru += 1
        top = query.get("$top")
        if top is not None and top.strip().isdigit() and int(top) < 20:
            ru -= 1
        return max(1, ru)

    def _charges(
        self, *, app: str, tenant: str, size_class: str, kind: str, ru: int, is_write: bool
    ) -> list[_Charge]:
        lim = self.limits
        size = self.profile.size_class or size_class
        charges: list[_Charge] = []
        if kind == "identity":
            charges += [
                _Charge(
                    ("ru", app, tenant),
                    ru,
                    lim.ru_for(size),
                    "Tenant_Application/ReadWrite",
                    "ResourceUnitLimitExceeded",
                    identity=True,
                ),
                _Charge(
                    ("ru", app),
                    ru,
                    lim.app_ru,
                    "Application/ReadWrite",
                    "ResourceUnitLimitExceeded",
                    identity=True,
                ),
            ]
            if is_write:
                charges += [
                    _Charge(
                        ("writes", app, tenant),
                        1,
                        lim.app_tenant_writes,
                        "Tenant_Application/Write",
                        "WriteLimitExceeded",
                        identity=True,
                    ),
                    _Charge(
                        ("writes", app),
                        1,
                        lim.app_writes,
                        "Application/Write",
                        "WriteLimitExceeded",
                        identity=True,
                    ),
                    _Charge(
                        ("writes", "", tenant),
                        1,
                        lim.tenant_writes,
                        "Tenant/Write",
                        "WriteLimitExceeded",
                        identity=True,
                    ),
                ]
        elif kind == "reports":
            charges += [
                _Charge(
                    ("reports", app, tenant),
                    1,
                    lim.reports_app_tenant,
                    "Tenant_Application/Read",
                    "RequestLimitExceeded",
                ),
                _Charge(
                    ("reports", app),
                    1,
                    lim.reports_app,
                    "Application/Read",
                    "RequestLimitExceeded",
                ),
            ]
        elif kind == "on_demand":
            charges.append(
                _Charge(
                    ("on_demand", app, tenant),
                    1,
                    lim.on_demand_app_tenant,
                    "Tenant_Application/Write",
                    "RequestLimitExceeded",
                )
            )
        charges.append(
            _Charge(
                ("global", app), 1, lim.global_app, "Application/ReadWrite", "RequestLimitExceeded"
            )
        )
        return charges

    def _take(self, charges: list[_Charge], t: float) -> tuple[float, _Charge] | None:
        """Charge every scope, or none: the longest wait among short scopes if refused."""
        worst: tuple[float, _Charge] | None = None
        for charge in charges:
            bucket = self._buckets.get(charge.key)
            quota, window = charge.limit
            if bucket is None or bucket.capacity != quota or bucket.window != window:
                mode = self.profile.quota_mode
                stamp = math.floor(t / window) * window if mode == "window" else t
                bucket = _Bucket(quota, window, mode, quota, stamp)
                self._buckets[charge.key] = bucket
            bucket.refill(t)
            if not bucket.has(charge.amount):
                wait = bucket.wait(charge.amount, t)
                if worst is None or wait > worst[0]:
                    worst = (wait, charge)
        if worst is not None:
            return worst
        for charge in charges:
            bucket = self._buckets[charge.key]
            bucket.tokens -= min(charge.amount, bucket.capacity)
        return None

    # -- counters ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset, JSON-ready."""
        throttled = {
            key.removeprefix("throttled_429."): n
            for key, n in sorted(self._counts.items())
            if key.startswith("throttled_429.")
        }
        faults = {
            key.removeprefix("random_faults."): n
            for key, n in sorted(self._counts.items())
            if key.startswith("random_faults.")
        }
        return {
            "admitted": self._counts["admitted"],
            "throttled_429": throttled,
            "throttled_429_total": sum(throttled.values()),
            "random_faults": faults,
            "requests_while_blocked": self._counts["requests_while_blocked"],
            "early_retries": self._counts["early_retries"],
        }
