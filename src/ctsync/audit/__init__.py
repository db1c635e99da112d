"""The local, tamper-evident audit trail of every Graph write ctsync makes.

```python
trail = AuditTrail(default_audit_path(config_path))
context = AuditContext(plan_id=plan.id, config_hash=config_hash)
client.add_intent_observer(intent_recorder(trail, context))  # before each write
client.add_observer(recorder(trail, context))  # its outcome
with audit_step(link="contoso:fabrikam", step="partner.create"):
    await client.post(...)
assert trail.verify().ok
```

See ``docs/audit.md`` for what is recorded and what :meth:`AuditTrail.verify` can and cannot
catch.
"""

from __future__ import annotations

from .recording import (
    Actor,
    AuditContext,
    AuditStep,
    audit_step,
    current_step,
    intent_recorder,
    recorder,
)
from .trail import (
    DEFAULT_AUDIT_DB,
    GENESIS_HASH,
    SCHEMA_VERSION,
    AuditError,
    AuditRecord,
    AuditTrail,
    VerifyResult,
    default_audit_path,
    record_hash,
)

__all__ = [
    "DEFAULT_AUDIT_DB",
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "Actor",
    "AuditContext",
    "AuditError",
    "AuditRecord",
    "AuditStep",
    "AuditTrail",
    "VerifyResult",
    "audit_step",
    "current_step",
    "default_audit_path",
    "intent_recorder",
    "record_hash",
    "recorder",
]
