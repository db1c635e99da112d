from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ctsync.audit import AuditTrail
from ctsync.audit.trail import TRIGGERS

START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


def ticking(start: datetime = START, step: float = 1.0) -> Callable[[], datetime]:
    """A clock that moves ``step`` seconds each time it is read."""
    ticks = itertools.count()
    return lambda: start + timedelta(seconds=step * next(ticks))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    # A nested path: the trail creates its parent directories.
    return tmp_path / "project" / ".ctsync" / "audit.sqlite"


@pytest.fixture
def trail(db_path: Path) -> Iterator[AuditTrail]:
    with AuditTrail(db_path, now=ticking()) as opened:
        yield opened


def write(trail: AuditTrail, n: int = 1, **fields: Any) -> None:
    """Append ``n`` ordinary records (partner creates in contoso:fabrikam)."""
    for i in range(n):
        values: dict[str, Any] = {
            "actor_tenant": "contoso-tid",
            "actor_client_id": "app-id",
            "actor_object_id": "sp-oid",
            "link": "contoso:fabrikam",
            "step": "partner.create",
            "method": "POST",
            "path": "/policies/crossTenantAccessPolicy/partners",
            "body": {"tenantId": "fabrikam-tid", "n": i},
            "status": 201,
            "request_id": f"req-{i}",
            "client_request_id": f"crid-{i}",
            "plan_id": "plan-1",
            "config_hash": "cfg-hash",
        }
        values.update(fields)
        trail.append(**values)


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the file, autocommitting, as an attacker would open it."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def tamper(path: Path, *statements: str | tuple[str, tuple[Any, ...]]) -> None:
    """Drop the append-only triggers, then run ``statements`` against the file directly."""
    with raw(path) as db:
        for name in TRIGGERS:
            db.execute(f"DROP TRIGGER IF EXISTS {name}")
        for statement in statements:
            if isinstance(statement, tuple):
                db.execute(*statement)
            else:
                db.execute(statement)
