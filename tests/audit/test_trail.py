from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from ctsync.audit import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    AuditError,
    AuditTrail,
    default_audit_path,
    record_hash,
)
from ctsync.audit.trail import COLUMNS

from .conftest import START, raw, ticking, write


def test_the_chain_grows_and_verifies(trail: AuditTrail, db_path: Path) -> None:
    assert trail.verify().ok
    write(trail, 3)
    records = trail.records()
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS_HASH
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
    for r in records:
        stored = r.to_dict()
        stored["body"] = json.dumps(r.body, separators=(",", ":"))
        assert r.hash == record_hash(stored)
    result = trail.verify()
    assert result.ok, result.problems
    assert (result.count, result.last_seq, result.last_hash) == (3, 3, records[-1].hash)
    assert db_path.exists()


def test_append_returns_the_stored_record(trail: AuditTrail) -> None:
    record = trail.append(
        actor_tenant="contoso-tid",
        actor_client_id="app-id",
        actor_object_id=None,
        link=None,
        step="default.update",
        method="patch",
        path="/policies/crossTenantAccessPolicy/default",
        body={"automaticUserConsentSettings": {"inboundAllowed": True}},
        status=None,
        client_request_id="",
    )
    assert record == trail.records()[0]
    assert record.method == "PATCH"
    assert record.status is None
    assert record.client_request_id is None
    assert record.time == "2026-01-05T09:00:00.000000Z"
    json.dumps(record.to_dict())  # JSON-ready for --output json


def test_records_filter_by_link_time_and_limit(db_path: Path) -> None:
    with AuditTrail(db_path, now=ticking(step=60)) as trail:
        write(trail, 2, link="contoso:fabrikam")
        write(trail, 2, link="contoso:tailspin")
        write(trail, 2, link="contoso:fabrikam")
        assert [r.seq for r in trail.records(link="contoso:fabrikam")] == [1, 2, 5, 6]
        assert [r.seq for r in trail.records(since=START + timedelta(minutes=3))] == [4, 5, 6]
        assert [r.seq for r in trail.records(limit=2)] == [5, 6]
        assert [r.seq for r in trail.records(link="contoso:tailspin", limit=1)] == [4]
        assert trail.records(link="nobody:nowhere") == []


def test_reopening_continues_the_chain(db_path: Path) -> None:
    with AuditTrail(db_path, now=ticking()) as trail:
        write(trail, 2)
        head = trail.export_head()
    with AuditTrail(db_path, now=ticking()) as trail:
        write(trail, 1)
        assert trail.records()[-1].prev_hash == head["last_hash"]
        assert trail.verify(expected_head=head).ok
        assert trail.export_head()["count"] == 3


def test_export_head(trail: AuditTrail) -> None:
    assert trail.export_head() == {"count": 0, "last_seq": 0, "last_hash": GENESIS_HASH}
    write(trail, 2)
    last = trail.records()[-1]
    assert trail.export_head() == {"count": 2, "last_seq": 2, "last_hash": last.hash}
    assert trail.verify().to_dict() == {
        "ok": True,
        "count": 2,
        "last_seq": 2,
        "last_hash": last.hash,
        "problems": [],
        "unknown_outcomes": [],
    }


def test_schema_wal_and_version(trail: AuditTrail, db_path: Path) -> None:
    with raw(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in db.execute("PRAGMA table_info(records)")]
    assert columns == list(COLUMNS)


def test_a_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with raw(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(AuditError, match="not a ctsync audit trail"):
        AuditTrail(other)


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    AuditTrail(db_path).close()
    with raw(db_path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(AuditError, match="upgrade ctsync"):
        AuditTrail(db_path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "audit.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(AuditError, match="cannot open"):
        AuditTrail(junk)


def test_default_path_is_beside_the_config(tmp_path: Path) -> None:
    assert default_audit_path(tmp_path / "ctsync.yaml") == tmp_path / ".ctsync" / "audit.sqlite"


def test_naive_times_are_refused(db_path: Path) -> None:
    with AuditTrail(db_path, now=lambda: START.replace(tzinfo=None)) as trail:
        with pytest.raises(ValueError, match="timezone-aware"):
            write(trail)
        assert trail.verify().count == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE records SET status = 500 WHERE seq = 1",
        "DELETE FROM records WHERE seq = 2",
        "DELETE FROM records",
        "INSERT OR REPLACE INTO records (seq, time, actor_tenant, method, path, prev_hash, hash)"
        " VALUES (1, 't', 'x', 'POST', '/x', 'p', 'h')",
        "INSERT INTO records (seq, time, actor_tenant, method, path, prev_hash, hash)"
        " VALUES (9, 't', 'x', 'POST', '/x', 'p', 'h')",
        "UPDATE head SET seq = 1, hash = (SELECT hash FROM records WHERE seq = 1)",
        "DELETE FROM head",
        "INSERT OR REPLACE INTO head (id, seq, hash) VALUES (1, 0, 'x')",
    ],
)
def test_sql_cannot_change_the_trail_while_the_triggers_stand(
    trail: AuditTrail, db_path: Path, statement: str
) -> None:
    write(trail, 2)
    before = trail.records()
    with raw(db_path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute(statement)
    assert trail.records() == before
    assert trail.verify().ok


def test_an_unusable_location_is_an_audit_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(AuditError, match="cannot open"):
        AuditTrail(blocker / ".ctsync" / "audit.sqlite")
