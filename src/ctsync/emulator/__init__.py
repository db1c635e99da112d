"""A Microsoft Graph / Entra ID emulator: tenants, policies and tokens, in-process or served.

It imports nothing from the rest of ctsync and speaks Graph over HTTP (or an in-process httpx
transport), exactly as Microsoft Graph would::

    from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport

    emu = Emulator(scenario="demo")
    transport = EmulatorTransport(emu)              # give it to any httpx client
    credential = EmulatorCredential(emu, "contoso")  # an azure-core style TokenCredential
"""

from __future__ import annotations

from ctsync.emulator._emulator import Emulator
from ctsync.emulator.core.clock import FrozenClock, OffsetClock
from ctsync.emulator.core.http import EmuRequest, EmuResponse
from ctsync.emulator.core.traffic import FaultProfile
from ctsync.emulator.transport import EmulatorCredential, EmulatorTransport

__all__ = [
    "EmuRequest",
    "EmuResponse",
    "Emulator",
    "EmulatorCredential",
    "EmulatorTransport",
    "FaultProfile",
    "FrozenClock",
    "OffsetClock",
]
