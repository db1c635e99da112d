"""The audit trail: one sqlite3 file, append-only, every record chained to the one before.

Each record's ``hash`` is the SHA-256 of the canonical JSON of all its other fields, its
``prev_hash`` included, so changing, removing or reordering a record breaks the chain.

A write is recorded twice: an ``intent`` before it is sent and its ``outcome`` once Graph
answered (or did not), both carrying the same ``intent_id``. A process killed while a write was
in flight leaves an intent with no outcome; :meth:`AuditTrail.unresolved` lists those, and the
outcomes that came without an HTTP answer, so a write whose effect is unknown is never invisible.

The ``head`` table holds the last seq and hash, updated in the same transaction as the insert, so
cutting records off the end breaks the agreement between ``head`` and the last record.
Triggers refuse UPDATE and DELETE on records; they stop accidents and casual edits, not someone
who drops them, which is why :meth:`AuditTrail.verify` never trusts them.

What this cannot catch: someone who rewrites the whole chain *and* the head consistently (the
hash is unkeyed, anyone can recompute it). Keep :meth:`AuditTrail.export_head` somewhere the
database's owner cannot rewrite (CI logs, a ticket) and pass it back to ``verify``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from ctsync.errors import CtsyncError
from ctsync.graph.redaction import redact

__all__ = [
    "DEFAULT_AUDIT_DB",
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "AuditError",
    "AuditRecord",
    "AuditTrail",
    "VerifyResult",
    "default_audit_path",
    "record_hash",
]

SCHEMA_VERSION: Final = 2
"""Stored in ``PRAGMA user_version``; a newer file is refused rather than misread. Version 2
added ``phase`` and ``intent_id``; a version 1 file is upgraded in place when opened."""

GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of the first record."""

DEFAULT_AUDIT_DB: Final = Path(".ctsync") / "audit.sqlite"
"""Where the trail lives, relative to the directory of the config file."""

BUSY_TIMEOUT: Final = 30.0
"""Seconds a writer waits for another process's transaction before giving up."""

MAX_PROBLEMS: Final = 100
"""verify() stops listing after this many; a rewritten file would otherwise list every row."""

# Column order of the records table; the hash covers every one of them but ``hash``.
FIELDS: Final = (
    "seq",
    "time",
    "actor_tenant",
    "actor_client_id",
    "actor_object_id",
    "link",
    "step",
    "method",
    "path",
    "body",
    "status",
    "request_id",
    "client_request_id",
    "error_code",
    "plan_id",
    "config_hash",
    "phase",
    "intent_id",
    "prev_hash",
)

#: Fields added after version 1: hashed only when set, so version 1 records keep their hash.
_LATER_FIELDS: Final = frozenset({"phase", "intent_id"})

#: The records table's columns in order (version 2 added its columns at the end).
COLUMNS: Final = (
    *(f for f in FIELDS if f not in _LATER_FIELDS),
    "hash",
    *(f for f in FIELDS if f in _LATER_FIELDS),
)

INTENT: Final = "intent"
OUTCOME: Final = "outcome"
#: Outcomes without an HTTP answer that certainly did not change anything.
_NOT_SENT: Final = "NotSent"

TRIGGERS: Final = (
    "records_no_update",
    "records_no_delete",
    "records_extend_head",
    "head_no_insert",
    "head_no_delete",
    "head_forward_only",
)

_SCHEMA: Final = """
CREATE TABLE records (
    seq               INTEGER PRIMARY KEY,
    time              TEXT NOT NULL,
    actor_tenant      TEXT NOT NULL,
    actor_client_id   TEXT,
    actor_object_id   TEXT,
    link              TEXT,
    step              TEXT,
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    body              TEXT,
    status            INTEGER,
    request_id        TEXT,
    client_request_id TEXT,
    error_code        TEXT,
    plan_id           TEXT,
    config_hash       TEXT,
    prev_hash         TEXT NOT NULL,
    hash              TEXT NOT NULL,
    phase             TEXT,
    intent_id         TEXT
);
CREATE INDEX records_link ON records (link, seq);
CREATE INDEX records_intent ON records (intent_id);
CREATE INDEX records_time ON records (time);

-- One row: the last seq and hash. A truncated tail no longer matches it.
CREATE TABLE head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);

CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: records cannot be changed'); END;

CREATE TRIGGER records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: records cannot be deleted'); END;

-- Also blocks INSERT OR REPLACE over an existing seq: only head.seq + 1 may be inserted.
CREATE TRIGGER records_extend_head BEFORE INSERT ON records
WHEN NEW.seq IS NOT (SELECT seq + 1 FROM head) OR NEW.prev_hash IS NOT (SELECT hash FROM head)
BEGIN SELECT RAISE(ABORT, 'an audit record must extend the head of the chain'); END;

-- Fires before conflict resolution, so INSERT OR REPLACE cannot reset the head either.
CREATE TRIGGER head_no_insert BEFORE INSERT ON head
WHEN EXISTS (SELECT 1 FROM head)
BEGIN SELECT RAISE(ABORT, 'the audit head cannot be replaced'); END;

CREATE TRIGGER head_no_delete BEFORE DELETE ON head
BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END;

CREATE TRIGGER head_forward_only BEFORE UPDATE ON head
WHEN NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq + 1
  OR NEW.hash IS NOT (SELECT hash FROM records WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward, onto the newest record'); END;
"""

_INSERT: Final = """
INSERT INTO records (
    seq, time, actor_tenant, actor_client_id, actor_object_id, link, step, method, path, body,
    status, request_id, client_request_id, error_code, plan_id, config_hash, phase, intent_id,
    prev_hash, hash
) VALUES (
    :seq, :time, :actor_tenant, :actor_client_id, :actor_object_id, :link, :step, :method,
    :path, :body, :status, :request_id, :client_request_id, :error_code, :plan_id,
    :config_hash, :phase, :intent_id, :prev_hash, :hash
)
"""

_SELECT: Final = """
SELECT seq, time, actor_tenant, actor_client_id, actor_object_id, link, step, method, path,
       body, status, request_id, client_request_id, error_code, plan_id, config_hash,
       phase, intent_id, prev_hash, hash
FROM records
"""


class AuditError(CtsyncError):
    """The audit trail could not be opened or written."""


@dataclass(frozen=True)
class AuditRecord:
    """One Graph write as recorded. ``body`` is the redacted request body, decoded."""

    seq: int
    time: str
    """ISO 8601 UTC with microseconds, e.g. ``2026-01-05T09:00:00.000000Z``."""
    actor_tenant: str
    actor_client_id: str | None
    actor_object_id: str | None
    link: str | None
    step: str | None
    method: str
    path: str
    body: Any
    status: int | None
    """None: no HTTP answer came, so whether the write happened is unknown."""
    request_id: str | None
    client_request_id: str | None
    error_code: str | None
    plan_id: str | None
    config_hash: str | None
    prev_hash: str
    hash: str
    phase: str | None = None
    """``intent`` (about to send), ``outcome`` (the answer), or None (a note, or version 1)."""
    intent_id: str | None = None
    """Pairs an outcome with its intent."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, for ``--output json``."""
        return asdict(self)

    def unknown_reason(self) -> str:
        """Why this record's write has an unknown outcome (for listings)."""
        if self.phase == INTENT:
            return "in flight when the run stopped (no outcome recorded)"
        if self.error_code == "Interrupted":
            return "in flight when the run was interrupted"
        return f"no answer came ({self.error_code or 'connection lost'})"


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`AuditTrail.verify` found. ``problems`` is empty exactly when ``ok``."""

    ok: bool
    count: int
    problems: list[str] = field(default_factory=list)
    last_seq: int = 0
    """The head's seq: worth keeping outside the database (see the module docstring)."""
    last_hash: str = GENESIS_HASH
    unknown: list[AuditRecord] = field(default_factory=list)
    """Writes whose outcome is unknown (:meth:`AuditTrail.unresolved`); not tampering."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "problems": list(self.problems),
            "unknown_outcomes": [
                {**r.to_dict(), "reason": r.unknown_reason()} for r in self.unknown
            ],
        }


def default_audit_path(config_path: Path) -> Path:
    """The default database for a config file: ``.ctsync/audit.sqlite`` beside it."""
    return config_path.parent / DEFAULT_AUDIT_DB


def record_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of every field in :data:`FIELDS`.

    Canonical: keys sorted, no whitespace, ASCII only, ``body`` as the JSON *text* stored in the
    database. Anyone can recompute it with ``json.dumps(row, sort_keys=True,
    separators=(",", ":"))``. A value of a type the schema never stores (someone wrote a blob
    into the file) hashes as its repr, so it can only ever mismatch.
    """
    canonical = json.dumps(
        {
            name: fields.get(name)
            for name in FIELDS
            if name not in _LATER_FIELDS or fields.get(name) is not None
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=repr,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        msg = "audit times must be timezone-aware"
        raise ValueError(msg)
    # Fixed width, so text order is time order and `since` can compare strings in SQL.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Intents whose body is kept for their outcome: more than a run has in flight at once.
_BODY_MEMO = 1024


def _body_text(body: Any, *, path: str) -> tuple[str | None, Any]:
    """The body as stored (JSON text, redacted) and as the record shows it."""
    if body is None:
        return None, None
    # The client redacts before its observers see the body; this is the second line, for
    # callers that append directly or a future observer path that forgets to.
    safe = redact(body, path=path)
    try:
        return json.dumps(safe, separators=(",", ":"), ensure_ascii=True), safe
    except (TypeError, ValueError) as exc:
        msg = f"the body of {path} is not JSON: {exc}"
        raise AuditError(msg) from None


def _record(row: sqlite3.Row) -> AuditRecord:
    values = dict(row)
    body = values["body"]
    try:
        values["body"] = None if body is None else json.loads(body)
    except (TypeError, ValueError):
        # Only a hand-edited file holds non-JSON here; show it rather than fail the listing.
        values["body"] = body
    return AuditRecord(**values)


class AuditTrail:
    """An append-only, hash-chained audit trail in one sqlite3 file.

    Safe to share between threads of one process (a lock serialises its connection) and between
    processes appending to the same file (each append is one ``BEGIN IMMEDIATE`` transaction
    that reads the head inside it). ``now`` supplies record times; inject one in tests.
    """

    def __init__(
        self,
        path: Path,
        *,
        now: Callable[[], datetime] | None = None,
        lazy: bool = False,
    ) -> None:
        """Open (or create) the trail at ``path``. ``lazy`` defers that to the first use, so
        a run that ends up writing nothing (a refused apply) leaves no file behind; an error
        opening it then surfaces at the first record — before the write it would record."""
        self.path = Path(path)
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._handle: sqlite3.Connection | None = None
        self._closed = False
        #: Records :meth:`append_soon` holds until the next group commit, and its task.
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._drainer: asyncio.Future[None] | None = None
        #: The body of each intent recorded lately, for its outcome (see :meth:`_body`).
        self._intent_bodies: dict[str, tuple[Any, str | None, Any]] = {}
        if not lazy:
            self._open()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._closed:
            msg = "Cannot operate on a closed database."
            raise sqlite3.ProgrammingError(msg)
        if self._handle is None:
            self._open()
            assert self._handle is not None
        return self._handle

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open the audit trail {self.path}: {exc}"
            raise AuditError(msg) from None
        handle.row_factory = sqlite3.Row
        self._handle = handle
        try:
            self._setup_patiently()
        except sqlite3.Error as exc:
            self._handle = None
            handle.close()
            msg = f"cannot open the audit trail {self.path}: {exc}"
            raise AuditError(msg) from None
        except BaseException:
            self._handle = None
            handle.close()
            raise

    def __repr__(self) -> str:
        return f"AuditTrail({str(self.path)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Store the records :meth:`append_soon` still holds, then close."""
        waiting, self._waiting = self._waiting, []
        if waiting and not self._closed:
            self._commit([fields for fields, _ in waiting])
        with self._lock:
            self._closed = True
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def _setup_patiently(self) -> None:
        # Opening a WAL database right as another connection recovers or checkpoints it can
        # answer "database is locked" at once, without waiting on the busy timeout: retry.
        deadline = time.monotonic() + BUSY_TIMEOUT
        delay = 0.01
        while True:
            try:
                self._setup()
            except sqlite3.OperationalError as exc:
                text = str(exc).lower()
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            else:
                return

    def _setup(self) -> None:
        # WAL lets readers (audit show, verify) run while an apply appends; FULL sync because a
        # record of a write that happened must survive a power cut, not only a crash.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction(immediate=True):
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    msg = f"{self.path} is a sqlite database but not a ctsync audit trail"
                    raise AuditError(msg)
                self._create()
            elif version == 1:
                self._upgrade_from_1()
            elif version > SCHEMA_VERSION:
                msg = (
                    f"{self.path} has audit schema version {version}; this ctsync reads up to "
                    f"{SCHEMA_VERSION}: upgrade ctsync"
                )
                raise AuditError(msg)

    def _create(self) -> None:
        # executescript() would COMMIT the open transaction; run statements one by one instead
        # so a second process creating the same file at the same moment waits, then sees it.
        for statement in _split_sql(_SCHEMA):
            self._db.execute(statement)
        self._db.execute("INSERT INTO head (id, seq, hash) VALUES (1, 0, ?)", (GENESIS_HASH,))
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _upgrade_from_1(self) -> None:
        # New columns only: version 1 records keep NULL there and, since record_hash skips
        # unset later fields, keep their hashes.
        self._db.execute("ALTER TABLE records ADD COLUMN phase TEXT")
        self._db.execute("ALTER TABLE records ADD COLUMN intent_id TEXT")
        self._db.execute("CREATE INDEX records_intent ON records (intent_id)")
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self, *, immediate: bool = False) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two appenders never both read the same
        # head; a plain BEGIN gives readers one consistent snapshot of records and head.
        self._db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            msg = f"could not {doing} the audit trail {self.path}: {exc}"
            raise AuditError(msg) from None

    # -- writing --------------------------------------------------------------------------

    def append(
        self,
        *,
        actor_tenant: str,
        method: str,
        path: str,
        actor_client_id: str | None = None,
        actor_object_id: str | None = None,
        link: str | None = None,
        step: str | None = None,
        body: Any = None,
        status: int | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        error_code: str | None = None,
        plan_id: str | None = None,
        config_hash: str | None = None,
        phase: str | None = None,
        intent_id: str | None = None,
    ) -> AuditRecord:
        """Record one write and return it as stored. ``body`` is redacted again here.

        ``phase`` is ``intent`` before a write is sent and ``outcome`` once it is answered,
        both with the write's ``intent_id``; None for notes.
        """
        fields, shown = self._prepare(locals())
        self._commit([fields])
        return AuditRecord(**{**fields, "body": shown})

    def append_soon(self, **record: Any) -> asyncio.Future[None]:
        """:meth:`append`, committed with the records other tasks append meanwhile — one
        transaction (one sync to disk) per group, in a thread: not on the event loop. The
        future is done once the record is stored (or fails with :class:`AuditError`); a
        record still waiting when the trail closes is stored by :meth:`close`."""
        fields, _ = self._prepare(record)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((fields, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.ensure_future(self._drain())
        return done

    async def _drain(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                await asyncio.to_thread(self._commit, [fields for fields, _ in group])
            except AuditError as exc:
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in group:
                if not done.done():
                    done.set_result(None)

    def _prepare(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        """The stored fields of a record (no seq, hash or time yet) and its body as shown."""
        phase, intent_id, body = record.get("phase"), record.get("intent_id"), record.get("body")
        if phase not in (None, INTENT, OUTCOME):
            msg = f"audit phase must be {INTENT!r}, {OUTCOME!r} or None, not {phase!r}"
            raise ValueError(msg)
        path = str(record["path"])
        text, shown = self._body(body, path, intent_id if phase == OUTCOME else None)
        if phase == INTENT:
            self._note_intent_body(intent_id, body, text, shown)
        status = record.get("status")
        fields: dict[str, Any] = {
            "actor_tenant": record["actor_tenant"],
            "actor_client_id": record.get("actor_client_id"),
            "actor_object_id": record.get("actor_object_id"),
            "link": record.get("link"),
            "step": record.get("step"),
            "method": str(record["method"]).upper(),
            "path": path,
            "body": text,
            "status": None if status is None else int(status),
            "request_id": record.get("request_id"),
            "client_request_id": record.get("client_request_id") or None,
            "error_code": record.get("error_code"),
            "plan_id": record.get("plan_id"),
            "config_hash": record.get("config_hash"),
            "phase": phase,
            "intent_id": intent_id,
        }
        return fields, shown

    def _commit(self, group: list[dict[str, Any]]) -> None:
        """Store ``group`` in order, in one transaction (seq, chain hash and time set here)."""
        with self._lock:
            try:
                with self._transaction(immediate=True):
                    head = self._db.execute("SELECT seq, hash FROM head").fetchone()
                    if head is None:
                        # Only a tampered file lacks its head; extend the records so the
                        # write is still recorded, and let verify() report the missing head.
                        head = self._db.execute(
                            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
                        ).fetchone() or (0, GENESIS_HASH)
                    # The head, not the last row, decides what comes next: after a truncated
                    # tail the gap stays visible instead of being papered over.
                    seq, prev = int(head[0]), str(head[1])
                    for fields in group:
                        seq += 1
                        fields["seq"] = seq
                        fields["prev_hash"] = prev
                        # Taken inside the lock so time order follows seq order across
                        # processes.
                        fields["time"] = _utc_text(self._now())
                        fields["hash"] = prev = record_hash(fields)
                        self._db.execute(_INSERT, fields)
                        # Each record must extend the head (a trigger checks): moved each time.
                        self._db.execute(
                            "UPDATE head SET seq = :seq, hash = :hash WHERE id = 1", fields
                        )
            except sqlite3.Error as exc:
                first = group[0]
                more = f" (and {len(group) - 1} more)" if len(group) > 1 else ""
                what = f"{first['method']} {first['path']}{more}"
                msg = f"could not record {what} in {self.path}: {exc}"
                raise AuditError(msg) from None

    def _body(self, body: Any, path: str, outcome_of: str | None) -> tuple[str | None, Any]:
        """:func:`_body_text`, once per write: the outcome of an intent recorded with the very
        same body object (the client hands both records one) reuses the intent's text — a
        schema PUT's body is tens of KB, redacted and written out twice otherwise."""
        if body is None:
            return None, None
        if outcome_of is not None:
            seen = self._intent_bodies.pop(outcome_of, None)
            if seen is not None and seen[0] is body:
                return seen[1], seen[2]
        text, shown = _body_text(body, path=path)
        return text, shown

    def _note_intent_body(self, intent_id: str | None, body: Any, text: Any, shown: Any) -> None:
        if intent_id is None or body is None:
            return
        self._intent_bodies[intent_id] = (body, text, shown)
        while len(self._intent_bodies) > _BODY_MEMO:
            del self._intent_bodies[next(iter(self._intent_bodies))]

    # -- reading --------------------------------------------------------------------------

    def records(
        self,
        *,
        link: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        writes: bool = False,
    ) -> list[AuditRecord]:
        """Records in seq order, optionally of one ``link`` and at or after ``since``.

        ``limit`` keeps the most recent ``limit`` matching records (still oldest first), which
        is what ``audit show`` wants. ``writes`` lists each write once: its outcome, or its
        intent when no outcome was recorded (notes stay).
        """
        where: list[str] = []
        params: dict[str, Any] = {}
        if writes:
            where.append(
                "NOT (phase = 'intent' AND EXISTS (SELECT 1 FROM records AS o "
                "WHERE o.intent_id = records.intent_id AND o.phase = 'outcome'))"
            )
        if link is not None:
            where.append("link = :link")
            params["link"] = link
        if since is not None:
            where.append("time >= :since")
            params["since"] = _utc_text(since)
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
        if limit is not None:
            sql += " ORDER BY seq DESC LIMIT :limit"
            params["limit"] = max(0, int(limit))
        else:
            sql += " ORDER BY seq"
        with self._lock, self._errors("read"):
            rows = self._db.execute(sql, params).fetchall()
        found = [_record(row) for row in rows]
        return found[::-1] if limit is not None else found

    def unresolved(self, *, link: str | None = None) -> list[AuditRecord]:
        """Writes whose outcome is unknown, oldest first: intents with no outcome recorded
        (the process died, or was stopped, while they were in flight) and outcomes with no
        HTTP answer that may have reached Graph (a lost answer, an interrupted run)."""
        sql = (
            _SELECT  # noqa: S608 - constant text; values are bound parameters
            + """ AS r WHERE ((phase = 'intent' AND NOT EXISTS (
                SELECT 1 FROM records AS o
                WHERE o.intent_id = r.intent_id AND o.phase = 'outcome'))
              OR (phase IS NOT 'intent' AND method != 'NOTE' AND status IS NULL
                  AND (error_code IS NULL OR error_code != :not_sent)))"""
        )
        params: dict[str, Any] = {"not_sent": _NOT_SENT}
        if link is not None:
            sql += " AND link = :link"
            params["link"] = link
        with self._lock, self._errors("read"):
            rows = self._db.execute(sql + " ORDER BY seq", params).fetchall()
        return [_record(row) for row in rows]

    def export_head(self) -> dict[str, Any]:
        """``{"count", "last_seq", "last_hash"}``: keep it outside the database, pass it to
        :meth:`verify` later to prove nothing up to that point was rewritten."""
        with self._lock, self._errors("read"), self._transaction():
            count = self._db.execute("SELECT count(*) FROM records").fetchone()[0]
            head = self._db.execute("SELECT seq, hash FROM head").fetchone()
        seq, last = (int(head[0]), str(head[1])) if head else (0, GENESIS_HASH)
        return {"count": int(count), "last_seq": seq, "last_hash": last}

    def verify(self, *, expected_head: Mapping[str, Any] | None = None) -> VerifyResult:
        """Check the whole chain, the head and the append-only triggers.

        ``expected_head`` is an earlier :meth:`export_head`: the record it names must still
        be there with the same hash, which also catches a chain rewritten consistently after
        that export (up to that record).
        """
        problems: list[str] = []
        count, last_seq, last_hash = 0, 0, GENESIS_HASH
        with self._lock:
            try:
                with self._transaction():
                    count, last_seq, last_hash = self._check_chain(problems)
                    self._check_head(problems, last_seq, last_hash)
                    self._check_triggers(problems)
                    if expected_head is not None:
                        self._check_expected(problems, expected_head)
            except sqlite3.Error as exc:
                problems.append(f"the database could not be read: {exc}")
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems = [*problems[:MAX_PROBLEMS], f"... and {more} more problems"]
        try:
            unknown = self.unresolved()
        except AuditError:
            unknown = []  # an unreadable file already is a problem above
        return VerifyResult(
            ok=not problems,
            count=count,
            problems=problems,
            last_seq=last_seq,
            last_hash=last_hash,
            unknown=unknown,
        )

    def _check_chain(self, problems: list[str]) -> tuple[int, int, str]:
        count = 0
        expected_seq, prev_hash = 1, GENESIS_HASH
        last_seq = 0
        for row in self._db.execute(_SELECT + " ORDER BY seq"):
            count += 1
            values = dict(row)
            seq = values["seq"]
            stored = values["hash"]
            if record_hash(values) != stored:
                problems.append(
                    f"seq {seq}: hash mismatch, the record was changed after it was written"
                )
            if seq != expected_seq:
                missing = (
                    f"seq {expected_seq}"
                    if seq == expected_seq + 1
                    else f"seqs {expected_seq}-{seq - 1}"
                )
                problems.append(f"seq {seq}: {missing} missing, records were deleted")
            elif values["prev_hash"] != prev_hash:
                # A gap already explains a broken link; report this only when seqs are
                # contiguous, where it means rows were reordered, replaced or re-chained.
                problems.append(
                    f"seq {seq}: prev_hash does not match the hash of seq {seq - 1}, "
                    "records were reordered or replaced"
                )
            # Chain on from the stored hash: one edited record is one problem, not a cascade.
            expected_seq, prev_hash, last_seq = seq + 1, stored, seq
        return count, last_seq, prev_hash

    def _check_head(self, problems: list[str], last_seq: int, last_hash: str) -> None:
        heads = self._db.execute("SELECT seq, hash FROM head").fetchall()
        if len(heads) != 1:
            problems.append(f"the head table holds {len(heads)} rows instead of 1")
            return
        seq, hash_ = int(heads[0][0]), str(heads[0][1])
        if seq > last_seq:
            problems.append(
                f"the head is at seq {seq} but the last record is seq {last_seq}: "
                "records were deleted from the end"
            )
        elif seq < last_seq:
            problems.append(
                f"the head is at seq {seq} but records go up to seq {last_seq}: "
                "records were added outside ctsync"
            )
        elif hash_ != last_hash:
            problems.append(f"the head's hash does not match seq {seq}: the head was changed")

    def _check_triggers(self, problems: list[str]) -> None:
        present = {
            row[0]
            for row in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = ?", ("trigger",)
            )
        }
        # The chain does not depend on them, but nobody removes them by accident.
        problems.extend(
            f"the append-only trigger {name} is missing: the schema was tampered with"
            for name in TRIGGERS
            if name not in present
        )

    def _check_expected(self, problems: list[str], expected: Mapping[str, Any]) -> None:
        try:
            seq, hash_ = int(expected["last_seq"]), str(expected["last_hash"])
        except (KeyError, TypeError, ValueError):
            problems.append("the expected head needs last_seq and last_hash")
            return
        if seq == 0:
            return
        row = self._db.execute("SELECT hash FROM records WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            problems.append(f"seq {seq}, the exported head, is no longer in the trail")
        elif row[0] != hash_:
            problems.append(
                f"seq {seq}: its hash differs from the exported head, the chain was rewritten"
            )


def _split_sql(script: str) -> list[str]:
    """Statements of :data:`_SCHEMA`; trigger bodies end in ``END;`` and hold ``;`` inside."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if not line.strip() or line.lstrip().startswith("--"):
            continue
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
