"""Day-2 work: preflight checks, provision on demand, job control, status, the log audit.

Library functions first — they return data and never print; ``ctsync.cli`` renders them.
"""

from __future__ import annotations

from ctsync.ops.jobs import RESETS, JobChange, control_jobs, reset_scope
from ctsync.ops.knowledge import Advice, advice_for, quarantine_advice
from ctsync.ops.locate import LinkJob, LinkNotSetUpError, locate, locate_all
from ctsync.ops.logs import LogEntry, LogReport, Watermarks, read_logs
from ctsync.ops.preflight import (
    FINDING_CODES,
    Finding,
    PreflightReport,
    SmsSignInFix,
    TokenRoles,
    disable_sms_sign_in,
    preflight,
)
from ctsync.ops.provision import (
    OnDemandResult,
    OnDemandStep,
    parse_on_demand,
    provision_groups,
    provision_users,
)
from ctsync.ops.status import LinkStatus, link_status, statuses, summarize

__all__ = [
    "FINDING_CODES",
    "RESETS",
    "Advice",
    "Finding",
    "JobChange",
    "LinkJob",
    "LinkNotSetUpError",
    "LinkStatus",
    "LogEntry",
    "LogReport",
    "OnDemandResult",
    "OnDemandStep",
    "PreflightReport",
    "SmsSignInFix",
    "TokenRoles",
    "Watermarks",
    "advice_for",
    "control_jobs",
    "disable_sms_sign_in",
    "link_status",
    "locate",
    "locate_all",
    "parse_on_demand",
    "preflight",
    "provision_groups",
    "provision_users",
    "quarantine_advice",
    "read_logs",
    "reset_scope",
    "statuses",
    "summarize",
]
