"""No secret ever reaches the database file, whoever forgot to redact it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ctsync.audit import AuditContext, AuditTrail, recorder
from ctsync.graph import VirtualClock
from tests.unit.graph.fakes import FakeGraph, Reply, make_client

SECRET = "Zq8~client-secret-value-0123456789"
PASSWORD = "P@ssw0rd-never-stored"
SECRETS_PATH = "/servicePrincipals/sp-1/synchronization/secrets"


def _file_bytes(path: Path) -> bytes:
    """The database and its -wal/-shm companions: a secret in any of them is a leak."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def _assert_clean(path: Path) -> None:
    data = _file_bytes(path)
    assert data  # we did read something
    for secret in (SECRET, PASSWORD):
        assert secret.encode() not in data
        assert secret.encode("utf-16-le") not in data


def test_a_secret_appended_unredacted_is_redacted_anyway(db_path: Path) -> None:
    with AuditTrail(db_path) as trail:
        stored = trail.append(
            actor_tenant="contoso-tid",
            method="PUT",
            path=SECRETS_PATH,
            body={
                "value": [
                    {"key": "ClientSecret", "value": SECRET},
                    {"key": "CompanyId", "value": "fabrikam-tid"},
                ]
            },
            status=204,
        )
        trail.append(
            actor_tenant="contoso-tid",
            method="POST",
            path="/users",
            body={"displayName": "x", "passwordProfile": {"password": PASSWORD}},
            status=201,
        )
        assert stored.body == {
            "value": [
                {"key": "ClientSecret", "value": "***"},
                {"key": "CompanyId", "value": "fabrikam-tid"},
            ]
        }
        _assert_clean(db_path)  # while open: the records sit in the WAL
    _assert_clean(db_path)  # after close: checkpointed into the main file


def test_a_secrets_put_through_the_client_never_reaches_the_file(db_path: Path) -> None:
    graph = FakeGraph(VirtualClock())
    graph.on("PUT", SECRETS_PATH, Reply(204))

    async def main() -> None:
        async with make_client(graph) as client:
            client.add_observer(recorder(trail, AuditContext()))
            await client.put(
                SECRETS_PATH,
                json={"value": [{"key": "ClientSecret", "value": SECRET}]},
            )

    with AuditTrail(db_path) as trail:
        asyncio.run(main())
        [record] = trail.records()
        assert record.body == {"value": [{"key": "ClientSecret", "value": "***"}]}
        _assert_clean(db_path)
    # The secret did go over the wire: the test would pass vacuously otherwise.
    assert graph.seen("PUT")[0].body["value"][0]["value"] == SECRET
    _assert_clean(db_path)
