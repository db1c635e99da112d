"""Every kind of tampering with the file is caught by verify(), triggers dropped first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctsync.audit import AuditTrail, VerifyResult, record_hash
from ctsync.audit.trail import FIELDS, TRIGGERS

from .conftest import raw, tamper, ticking, write


@pytest.fixture
def sealed(db_path: Path) -> Path:
    """A closed trail of five records; the third is a failed write (404)."""
    with AuditTrail(db_path, now=ticking()) as trail:
        write(trail, 2)
        write(trail, 1, method="PATCH", status=404, error_code="Request_ResourceNotFound")
        write(trail, 2, link="contoso:tailspin")
        assert trail.verify().ok
    return db_path


def verify(path: Path, **kwargs: Any) -> VerifyResult:
    with AuditTrail(path) as trail:
        return trail.verify(**kwargs)


def chain_problems(result: VerifyResult) -> list[str]:
    """The problems other than the dropped triggers, which every tampering here causes."""
    return [p for p in result.problems if "trigger" not in p]


def test_dropping_the_triggers_alone_fails_verify(sealed: Path) -> None:
    tamper(sealed)
    result = verify(sealed)
    assert not result.ok
    assert chain_problems(result) == []
    assert len(result.problems) == len(TRIGGERS)


def test_an_edited_body_names_its_seq(sealed: Path) -> None:
    tamper(sealed, """UPDATE records SET body = '{"tenantId":"evil-tid"}' WHERE seq = 2""")
    result = verify(sealed)
    assert not result.ok
    assert chain_problems(result) == [
        "seq 2: hash mismatch, the record was changed after it was written"
    ]


def test_an_edited_status_names_its_seq(sealed: Path) -> None:
    tamper(sealed, "UPDATE records SET status = 204, error_code = NULL WHERE seq = 3")
    assert chain_problems(verify(sealed)) == [
        "seq 3: hash mismatch, the record was changed after it was written"
    ]


def test_the_same_bytes_stored_as_another_type_are_caught(sealed: Path) -> None:
    # Identical text as a BLOB: `audit show` might render it alike, the hash does not.
    tamper(sealed, "UPDATE records SET body = CAST(body AS BLOB) WHERE seq = 1")
    with raw(sealed) as db:
        assert db.execute("SELECT typeof(body) FROM records WHERE seq = 1").fetchone() == ("blob",)
    assert chain_problems(verify(sealed)) == [
        "seq 1: hash mismatch, the record was changed after it was written"
    ]


def test_a_deleted_middle_record_is_a_gap(sealed: Path) -> None:
    tamper(sealed, "DELETE FROM records WHERE seq = 2")
    result = verify(sealed)
    assert result.count == 4
    assert chain_problems(result) == ["seq 3: seq 2 missing, records were deleted"]


def test_several_deleted_records_are_one_gap(sealed: Path) -> None:
    tamper(sealed, "DELETE FROM records WHERE seq IN (2, 3, 4)")
    assert chain_problems(verify(sealed)) == ["seq 5: seqs 2-4 missing, records were deleted"]


def test_a_deleted_first_record_is_a_gap(sealed: Path) -> None:
    tamper(sealed, "DELETE FROM records WHERE seq = 1")
    assert chain_problems(verify(sealed)) == ["seq 2: seq 1 missing, records were deleted"]


def test_a_deleted_last_record_disagrees_with_the_head(sealed: Path) -> None:
    tamper(sealed, "DELETE FROM records WHERE seq = 5")
    result = verify(sealed)
    assert chain_problems(result) == [
        "the head is at seq 5 but the last record is seq 4: records were deleted from the end"
    ]


def test_a_truncated_tail_with_the_head_rolled_back_needs_the_exported_head(
    sealed: Path,
) -> None:
    with AuditTrail(sealed) as trail:
        exported = trail.export_head()
    tamper(
        sealed,
        "DELETE FROM records WHERE seq >= 4",
        "UPDATE head SET seq = 3, hash = (SELECT hash FROM records WHERE seq = 3)",
    )
    assert chain_problems(verify(sealed)) == []  # the documented limit...
    assert chain_problems(verify(sealed, expected_head=exported)) == [
        "seq 5, the exported head, is no longer in the trail"  # ...and its remedy
    ]


def test_appending_after_a_truncated_tail_keeps_the_gap_visible(sealed: Path) -> None:
    tamper(sealed, "DELETE FROM records WHERE seq = 5")
    with AuditTrail(sealed) as trail:
        write(trail)
        assert [r.seq for r in trail.records()][-2:] == [4, 6]
        assert "seq 6: seq 5 missing, records were deleted" in trail.verify().problems


def test_swapped_contents_of_two_records(sealed: Path) -> None:
    others = [f for f in (*FIELDS, "hash") if f != "seq"]
    swap = ", ".join(f"{f} = (SELECT {f} FROM old WHERE old.seq = 5 - records.seq)" for f in others)
    tamper(
        sealed,
        "CREATE TEMP TABLE old AS SELECT * FROM records WHERE seq IN (2, 3)",
        f"UPDATE records SET {swap} WHERE seq IN (2, 3)",
    )
    assert chain_problems(verify(sealed)) == [
        "seq 2: hash mismatch, the record was changed after it was written",
        "seq 2: prev_hash does not match the hash of seq 1, records were reordered or replaced",
        "seq 3: hash mismatch, the record was changed after it was written",
        "seq 3: prev_hash does not match the hash of seq 2, records were reordered or replaced",
        "seq 4: prev_hash does not match the hash of seq 3, records were reordered or replaced",
    ]


def test_renumbered_records(sealed: Path) -> None:
    tamper(
        sealed,
        "UPDATE records SET seq = -1 WHERE seq = 2",
        "UPDATE records SET seq = 2 WHERE seq = 3",
        "UPDATE records SET seq = 3 WHERE seq = -1",
    )
    problems = chain_problems(verify(sealed))
    assert "seq 2: hash mismatch, the record was changed after it was written" in problems
    assert "seq 3: hash mismatch, the record was changed after it was written" in problems
    assert any(p.startswith("seq 2: prev_hash") for p in problems)


def _forged(path: Path, *, right_hash: bool) -> dict[str, Any]:
    with AuditTrail(path) as trail:
        last = trail.records()[-1]
    row = {**last.to_dict(), "seq": 6, "prev_hash": last.hash, "body": '{"forged":true}'}
    row["hash"] = record_hash(row) if right_hash else "f" * 64
    return row


def _insert(row: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    columns = [*FIELDS, "hash"]
    marks = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO records ({', '.join(columns)}) VALUES ({marks})"
    return sql, tuple(row[c] for c in columns)


def test_a_forged_record_with_a_wrong_hash(sealed: Path) -> None:
    row = _forged(sealed, right_hash=False)
    tamper(sealed, _insert(row))
    assert chain_problems(verify(sealed)) == [
        "seq 6: hash mismatch, the record was changed after it was written",
        "the head is at seq 5 but records go up to seq 6: records were added outside ctsync",
    ]
    tamper(sealed, ("UPDATE head SET seq = 6, hash = ?", (row["hash"],)))
    assert chain_problems(verify(sealed)) == [
        "seq 6: hash mismatch, the record was changed after it was written"
    ]


def test_a_forged_record_with_a_right_hash_but_no_head(sealed: Path) -> None:
    tamper(sealed, _insert(_forged(sealed, right_hash=True)))
    assert chain_problems(verify(sealed)) == [
        "the head is at seq 5 but records go up to seq 6: records were added outside ctsync"
    ]


def test_an_edited_head(sealed: Path) -> None:
    tamper(sealed, ("UPDATE head SET hash = ?", ("0" * 64,)))
    assert chain_problems(verify(sealed)) == [
        "the head's hash does not match seq 5: the head was changed"
    ]


def test_a_deleted_head(sealed: Path) -> None:
    tamper(sealed, "DELETE FROM head")
    assert chain_problems(verify(sealed)) == ["the head table holds 0 rows instead of 1"]


def test_a_consistently_rewritten_chain_is_caught_only_by_an_exported_head(
    sealed: Path,
) -> None:
    """The documented limit: an unkeyed chain can be recomputed by whoever holds the file."""
    with AuditTrail(sealed) as trail:
        exported = trail.export_head()
        rows = [r.to_dict() for r in trail.records()]
    with raw(sealed) as db:
        triggers = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE type='trigger'")]
    statements: list[str | tuple[str, tuple[Any, ...]]] = []
    prev = "0" * 64
    for row in rows:
        row["body"] = '{"rewritten":true}' if row["seq"] == 2 else _text(row["body"])
        row["prev_hash"] = prev
        row["hash"] = prev = record_hash(row)
        statements.append(
            (
                "UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (row["body"], row["prev_hash"], row["hash"], row["seq"]),
            )
        )
    statements.append(("UPDATE head SET hash = ?", (prev,)))
    tamper(sealed, *statements, *triggers)
    assert verify(sealed).ok
    result = verify(sealed, expected_head=exported)
    assert result.problems == [
        "seq 5: its hash differs from the exported head, the chain was rewritten"
    ]


def _text(body: Any) -> str | None:
    return None if body is None else json.dumps(body, separators=(",", ":"))


def test_a_corrupt_file_fails_verify_rather_than_crashing(sealed: Path) -> None:
    with AuditTrail(sealed) as trail:
        tamper(sealed, "ALTER TABLE records DROP COLUMN request_id")
        result = trail.verify()
    assert not result.ok
    assert any("could not be read" in p for p in result.problems)


def test_many_problems_are_capped(db_path: Path) -> None:
    with AuditTrail(db_path, now=ticking()) as trail:
        write(trail, 120)
    tamper(db_path, "UPDATE records SET status = 500")
    result = verify(db_path)
    assert len(result.problems) == 101
    assert result.problems[-1] == f"... and {120 + len(TRIGGERS) - 100} more problems"
