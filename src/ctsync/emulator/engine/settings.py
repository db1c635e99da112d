"""Knobs of the simulated provisioning engine, defaulting to Microsoft's documented values.

``Emulator.provisioning`` holds one :class:`ProvisioningSettings`; tests lower thresholds or
pick the provisionOnDemand answer shape by assigning to it (or through ``POST
/_emulator/provisioning``). Sources: graph-limits §4.1-4.4 (interval, durations, escrow and
quarantine thresholds, retry ladder), §3 (log retention), reference §3.9 (answer shapes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ON_DEMAND_SHAPES", "ProvisioningSettings"]

#: ``cts``: the CTS article's answer (key ``…SyncFabric.StatusInfo``, value a JSON array);
#: ``reference``: the API reference's (key a JSON result, value a JSON object).
ON_DEMAND_SHAPES = ("cts", "reference")

_HOUR = 3600.0


@dataclass
class ProvisioningSettings:
    #: Seconds between cycle starts (CTS: fixed ``PT40M``).
    interval: float = 40 * 60.0
    #: Simulated seconds one object takes (uniform in the range, seeded): a match, skip, update,
    #: disable or delete; a create takes twice as long (graph-limits §4.2: 0.6-4.8 s/object).
    object_seconds: tuple[float, float] = (0.6, 2.4)
    #: Escrow thresholds (graph-limits §4.4): evaluated once at least ``escrow_floor`` objects
    #: are escrowed; quarantine when more than ``escrow_proportion`` of a cycle's exports fail,
    #: when escrows exceed ``escrow_base_limit``, or ``escrow_total_limit`` (the absolute cap).
    escrow_floor: int = 5_000
    escrow_proportion: float = 0.40
    escrow_base_limit: int = 40_000
    escrow_total_limit: int = 60_000
    #: Retries of a quarantined job after the first failure, in seconds (+6 h, +12 h, +24 h),
    #: then every ``quarantine_repeat``; the job is disabled after ``quarantine_give_up``.
    quarantine_ladder: tuple[float, ...] = (6 * _HOUR, 12 * _HOUR, 24 * _HOUR)
    quarantine_repeat: float = 24 * _HOUR
    quarantine_give_up: float = 28 * 24 * _HOUR
    #: The accidental-deletion threshold when ``SyncNotificationSettings`` has none.
    delete_threshold: int = 500
    #: Provisioning-log retention in seconds (30 days with a premium licence).
    log_retention: float = 30 * 24 * _HOUR
    #: Soft-deleted target users are hard-deleted after this many seconds (30 days).
    soft_delete_retention: float = 30 * 24 * _HOUR
    #: The shape of provisionOnDemand answers (see :data:`ON_DEMAND_SHAPES`).
    on_demand_shape: str = "cts"
    #: Page size of ``/auditLogs/provisioning`` without ``$top``, and the largest ``$top``.
    log_page_default: int = 1000
    log_page_max: int = 1000
    #: Seconds a multitenant organization takes to process a join or a removal (Microsoft:
    #: "wait up to 2 hours"); ``services/multitenant_org.py``.
    mto_processing_seconds: float = 2 * _HOUR
    #: Extra knobs tests may read back; ignored by the engine.
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["object_seconds"] = list(self.object_seconds)
        out["quarantine_ladder"] = list(self.quarantine_ladder)
        return out

    def merged(self, changes: dict[str, Any]) -> ProvisioningSettings:
        """A copy with ``changes`` applied; unknown names or bad values raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(self)}
        values = dataclasses.asdict(self)
        for name, raw in changes.items():
            if name not in known:
                msg = f"unknown provisioning setting {name!r}"
                raise ValueError(msg)
            values[name] = _coerce(name, values[name], raw)
        settings = ProvisioningSettings(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.on_demand_shape not in ON_DEMAND_SHAPES:
            msg = f"on_demand_shape must be one of {', '.join(ON_DEMAND_SHAPES)}"
            raise ValueError(msg)
        low, high = self.object_seconds
        if not 0 <= low <= high:
            msg = "object_seconds must be [low, high] with 0 <= low <= high"
            raise ValueError(msg)
        if self.interval <= 0:
            msg = "interval must be > 0"
            raise ValueError(msg)
        if not 1 <= self.log_page_default <= self.log_page_max:
            msg = "log_page_default must be between 1 and log_page_max"
            raise ValueError(msg)


def _coerce(name: str, current: Any, value: Any) -> Any:
    """``value`` in the type of the setting's ``current`` value, or ``ValueError``."""
    if isinstance(current, tuple):
        numbers = isinstance(value, list | tuple) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        )
        if not numbers:
            msg = f"{name} takes a list of numbers"
            raise ValueError(msg)
        return tuple(float(v) for v in value)
    if isinstance(current, dict):
        if not isinstance(value, dict):
            msg = f"{name} takes an object"
            raise ValueError(msg)  # noqa: TRY004 - the control API answers 400 for ValueError
        return dict(value)
    if isinstance(current, str):
        if not isinstance(value, str):
            msg = f"{name} takes a string"
            raise ValueError(msg)  # noqa: TRY004 - the control API answers 400 for ValueError
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or value < 0:
        msg = f"{name} takes a number >= 0"
        raise ValueError(msg)
    return type(current)(value)
