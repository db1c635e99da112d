"""Run ctsync against an in-process emulator (the demo): one clock and one pacer for both sides."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ctsync.graph import Pacer, VirtualClock

if TYPE_CHECKING:
    from ctsync.config import DesiredState, TenantSpec
    from ctsync.emulator import Emulator
    from ctsync.engine import Session

__all__ = ["EmulatorTimeClock", "InProcess"]


class EmulatorTimeClock(VirtualClock):
    """Simulated time the emulator shares: a wait (Retry-After, pacing, latency) advances the
    emulator's clock instead of sleeping, and the wall clock reads the emulator's, so client and
    server agree on the time even when the emulator moves on by itself (a provisioning cycle)."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(start=emulator.clock.now(), on_advance=emulator.clock.advance)
        self._emulator = emulator

    def wall(self) -> datetime:
        return self._emulator.clock.now()


class InProcess:
    """Sessions for a config whose tenants live in ``emulator``, sharing a clock and a pacer."""

    def __init__(self, emulator: Emulator) -> None:
        from ctsync.emulator import EmulatorTransport

        self.emulator = emulator
        self.clock = EmulatorTimeClock(emulator)
        self.pacer = Pacer(clock=self.clock)
        self.transport = EmulatorTransport(emulator, async_sleep=self.clock.sleep)

    def credential(self, tenant: TenantSpec) -> Any:
        from ctsync.emulator import EmulatorCredential

        return EmulatorCredential(self.emulator, tenant.name)

    def session(self, desired: DesiredState, **kwargs: Any) -> Session:
        from ctsync.engine import Session
        from ctsync.engine.ownership import Ledger

        kwargs.setdefault("ledger", Ledger(desired.base_dir / ".ctsync" / "ownership.json"))
        return Session(
            desired,
            transport=self.transport,
            credentials=self.credential,
            clock=self.clock,
            pacer=self.pacer,
            **kwargs,
        )
