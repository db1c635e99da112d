"""The serving pieces in-process: the local CA, the ASGI adapter, the info file."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from ctsync.emulator import Emulator, EmulatorCredential, FaultProfile
from ctsync.emulator.server import ServerAddress, info_document, make_app
from ctsync.emulator.tls import generate_tls, write_private

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_local_ca_signs_a_server_certificate_for_loopback_and_the_bind_host(
    tmp_path: Path,
) -> None:
    files = generate_tls(tmp_path / "tls", hosts=["emu.internal", "0.0.0.0", "10.1.2.3"], now=NOW)

    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    server.verify_directly_issued_by(ca)

    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "emu.internal"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.1.2.3"),
    }
    for cert in (ca, server):
        assert cert.not_valid_before_utc == NOW - timedelta(days=1)
        assert cert.not_valid_after_utc == NOW + timedelta(days=30)

    assert files.server_key.is_absolute()
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    assert sorted(p.name for p in files.ca_cert.parent.iterdir()) == [
        "ca.pem",
        "server-key.pem",
        "server.pem",
    ]


def test_write_private_replaces_the_file_with_owner_only_access(tmp_path: Path) -> None:
    target = tmp_path / "info.json"
    target.write_text("old")
    target.chmod(0o644)

    write_private(target, b"new")

    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["info.json"]


def test_info_document_lists_every_client_of_every_tenant() -> None:
    emu = Emulator(scenario="demo")
    extra = emu.add_client(emu.tenant("contoso"), permissions=["Policy.Read.All"])
    address = ServerAddress(
        authority="https://127.0.0.1:9",
        graph_url="https://127.0.0.1:9/v1.0",
        control_url="https://127.0.0.1:9/_emulator",
        ca_cert=Path("/x/ca.pem"),
        info_file=None,
    )

    document = info_document(emu, address)

    assert json.loads(json.dumps(document)) == document
    assert document["ca_cert"] == "/x/ca.pem"
    entries = [(t["name"], t["client_id"]) for t in document["tenants"]]
    expected = [(t.name, c) for t in emu.tenants.values() for c in t.clients]
    assert entries == expected
    assert ("contoso", extra.client_id) in entries
    mine = next(t for t in document["tenants"] if t["client_id"] == extra.client_id)
    assert mine["permissions"] == ["Policy.Read.All"]
    assert mine["client_secret"] == extra.client_secret


def test_asgi_app_serves_tokens_and_graph_with_the_host_as_origin() -> None:
    emu = Emulator(scenario="demo")
    tenant = emu.tenant("contoso")
    client = next(iter(tenant.clients.values()))
    base = "https://emu.internal:8443"

    async def run() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=make_app(emu))
        async with httpx.AsyncClient(transport=transport, base_url=base) as http:
            token = await http.post(
                f"/{tenant.name}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client.client_id,
                    "client_secret": client.client_secret,
                    "scope": f"{base}/.default",
                },
            )
            graph = await http.get(
                "/v1.0/policies/crossTenantAccessPolicy/partners?$top=5",
                headers={
                    "authorization": f"Bearer {token.json()['access_token']}",
                    "client-request-id": "asgi-1",
                },
            )
            head = await http.head("/v1.0/policies/crossTenantAccessPolicy/default")
            return token, graph, head

    token, graph, head = asyncio.run(run())
    assert token.status_code == 200, token.text
    assert graph.status_code == 200, graph.text
    assert graph.headers["client-request-id"] == "asgi-1"
    assert graph.json()["@odata.context"].startswith(f"{base}/v1.0/$metadata#")
    assert head.status_code == 401  # no token: Graph's error, with its body left out
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0


def test_asgi_app_refuses_websockets() -> None:
    app = make_app(Emulator())

    async def receive() -> dict[str, object]:
        return {}

    async def send(message: object) -> None:
        return None

    async def connect() -> None:
        await app({"type": "websocket"}, receive, send)

    with pytest.raises(RuntimeError, match="HTTP only"):
        asyncio.run(connect())


def test_injected_latency_holds_up_no_other_request() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile.parse("latency=250ms"))
    tenant = emu.tenant("contoso")
    client = next(iter(tenant.clients.values()))
    token = EmulatorCredential(emu, "contoso").get_token("https://graph.microsoft.com/.default")
    delays: list[float] = []

    async def run() -> None:
        released = asyncio.Event()

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            await released.wait()

        transport = httpx.ASGITransport(app=make_app(emu, sleep=sleep))
        async with httpx.AsyncClient(transport=transport, base_url="https://emu.test") as http:
            slow = asyncio.create_task(
                http.get(
                    "/v1.0/policies/crossTenantAccessPolicy/default",
                    headers={"authorization": f"Bearer {token.token}"},
                )
            )
            while not delays:  # let the Graph call reach its latency
                await asyncio.sleep(0)
            fast = await http.post(
                f"/{tenant.id}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client.client_id,
                    "client_secret": client.client_secret,
                    "scope": "https://graph.microsoft.com/.default",
                },
            )
            assert fast.status_code == 200
            assert not slow.done()
            released.set()
            assert (await slow).status_code == 200

    asyncio.run(run())
    assert delays == [pytest.approx(0.25)]
