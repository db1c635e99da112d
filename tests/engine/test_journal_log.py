"""The journal's notes are appended, one line each, and folded into its snapshot once a run
records what it applied; a torn last line (a kill mid-write) is ignored, anything else that is
not a note is refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctsync.engine.journal import Journal, JournalError


def _journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / ".ctsync" / "journal.json")


def test_notes_are_appended_not_rewritten_and_read_back_by_the_next_run(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record_applied(["a"], at="2026-01-05T09:00:00Z")
    snapshot = journal.path.read_bytes()
    for i in range(50):
        journal.record_intent(f"link{i}", display_name=f"spoke{i} (ctsync)")
        journal.record_app(f"link{i}", sp_id=f"sp{i}", app_id=f"app{i}")
        if i % 2:
            journal.forget_app(f"link{i}")

    # The snapshot was not touched: every note is one appended line.
    assert journal.path.read_bytes() == snapshot
    assert len(journal.log_path.read_text().splitlines()) == 125

    # A run killed here: the next one (a new process) sees every note.
    again = _journal(tmp_path)
    notes = again.created_apps()
    assert sorted(notes) == sorted(f"link{i}" for i in range(0, 50, 2))
    assert notes["link4"] == {
        "display_name": "spoke4 (ctsync)",
        "sp_id": "sp4",
        "app_id": "app4",
        "noted_at": None,
    }
    assert again.last_applied() == (frozenset({"a"}), "2026-01-05T09:00:00Z")

    # Recording what a run applied folds the notes into the snapshot and drops the log.
    again.record_applied(["b"], at="2026-01-05T10:00:00Z")
    assert not again.log_path.exists()
    assert sorted(_journal(tmp_path).created_apps()) == sorted(notes)


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.record_intent("one", display_name="one (ctsync)")
    with journal.log_path.open("a") as handle:
        handle.write('{"set": "two", "note": {"display_na')  # killed mid-write
    assert sorted(_journal(tmp_path).created_apps()) == ["one"]


@pytest.mark.parametrize(
    "line",
    ["not json at all", '{"set": 5, "note": {}}', "[1, 2]", '{"forget": null}'],
)
def test_a_log_that_is_not_notes_is_refused(tmp_path: Path, line: str) -> None:
    journal = _journal(tmp_path)
    journal.record_intent("one", display_name="one (ctsync)")
    with journal.log_path.open("a") as handle:
        handle.write(line + "\n")
        handle.write('{"forget": "one"}\n')
    with pytest.raises(JournalError, match=r"line 2 of its log|not JSON|not a note"):
        _journal(tmp_path).created_apps()
