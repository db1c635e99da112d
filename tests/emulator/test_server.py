"""The serving pieces: the local CA, the ASGI adapter and its Host check, the info file, the
non-loopback warning, and dropped connections over a real socket (uvicorn in a thread)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from cryptography import x509

from ctsync.cli import cli
from ctsync.emulator import Emulator, EmulatorCredential, FaultProfile, OffsetClock
from ctsync.emulator.server import (
    LOOPBACK_HOSTS,
    ServerAddress,
    allowed_hosts_for,
    bind_socket,
    bind_warnings,
    host_name,
    info_document,
    is_loopback,
    make_app,
)
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
        # A served emulator answers a name beyond loopback only when told to (--allow-host).
        app = make_app(emu, allowed_hosts=["emu.internal"])
        transport = httpx.ASGITransport(app=app)
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
        async with httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1") as http:
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


# -- who may call: the Host header ----------------------------------------------------------


def _asgi_call(
    emu: Emulator, method: str, url: str, *, host: str | None, **kwargs: Any
) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=make_app(emu))
        async with httpx.AsyncClient(transport=transport) as http:
            request = http.build_request(method, url, **kwargs)
            if host is None:
                del request.headers["host"]
            else:
                request.headers["host"] = host
            return await http.send(request)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/_emulator/reset", {}),
        ("POST", "/_emulator/seed", {"scenario": "demo"}),
        ("GET", "/_emulator/state", None),
        ("GET", "/v1.0/policies/crossTenantAccessPolicy/default", None),
        ("GET", "/contoso/v2.0/.well-known/openid-configuration", None),
    ],
)
def test_a_foreign_host_is_refused_before_the_emulator_sees_it(
    method: str, path: str, body: Any
) -> None:
    """DNS rebinding: a page on attacker.example resolves its name to 127.0.0.1 and calls the
    emulator as same-origin, but its requests still say ``Host: attacker.example``."""
    emu = Emulator(scenario="demo")
    refused = _asgi_call(
        emu, method, f"http://127.0.0.1:8443{path}", host="attacker.example:8443", json=body
    )
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "Forbidden"
    assert "attacker.example" in error["message"]
    assert len(emu.tenants) == 3
    assert emu.stats["requests"] == 0


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8443", "LOCALHOST.:1", "127.0.0.1", "127.0.0.1:9", "[::1]:8443"],
)
def test_loopback_hosts_on_any_port_are_answered(host: str) -> None:
    emu = Emulator(scenario="demo")
    assert _asgi_call(emu, "GET", "http://127.0.0.1/_emulator/state", host=host).is_success
    reset = _asgi_call(emu, "POST", "http://127.0.0.1/_emulator/reset", host=host, json={})
    assert reset.is_success
    assert emu.tenants == {}


@pytest.mark.parametrize("host", [None, "", "127.0.0.2", "[::2]", "localhost.attacker.example"])
def test_other_or_missing_hosts_are_refused(host: str | None) -> None:
    response = _asgi_call(Emulator(), "GET", "http://127.0.0.1/_emulator/state", host=host)
    assert response.status_code == 403


def test_allowed_hosts_may_be_widened_or_switched_off() -> None:
    emu = Emulator()

    async def get(app_hosts: list[str] | None, host: str) -> int:
        transport = httpx.ASGITransport(app=make_app(emu, allowed_hosts=app_hosts))
        async with httpx.AsyncClient(transport=transport) as http:
            answer = await http.get(f"http://{host}/_emulator/state")
            return answer.status_code

    assert asyncio.run(get(["Emu.Internal"], "emu.internal:8443")) == 200
    assert asyncio.run(get(["emu.internal"], "localhost")) == 403  # the list replaces loopback
    assert asyncio.run(get(None, "anything.example")) == 200


def test_the_bind_address_decides_the_allowed_hosts() -> None:
    assert allowed_hosts_for("127.0.0.1") == LOOPBACK_HOSTS
    assert allowed_hosts_for("localhost") == LOOPBACK_HOSTS
    assert allowed_hosts_for("10.1.2.3") == LOOPBACK_HOSTS | {"10.1.2.3"}
    assert allowed_hosts_for("fe80::1") == LOOPBACK_HOSTS | {"[fe80::1]"}
    assert allowed_hosts_for("0.0.0.0", ["Emu.Internal", "10.0.0.5"]) == LOOPBACK_HOSTS | {
        "0.0.0.0",
        "emu.internal",
        "10.0.0.5",
    }
    assert allowed_hosts_for("", ["emu"]) == LOOPBACK_HOSTS | {"emu"}
    assert allowed_hosts_for("0.0.0.0", ["*"]) is None
    assert [host_name(h) for h in ("[::1]:8443", "::1", "Localhost.:80", "a.b")] == [
        "[::1]",
        "[::1]",
        "localhost",
        "a.b",
    ]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("emu.example", False),
    ],
)
def test_a_non_loopback_bind_is_warned_about(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    warnings = bind_warnings(host)
    if loopback:
        assert warnings == []
        return
    [warning] = warnings
    for needle in ("not a loopback", "no authentication", "client secrets", "info file"):
        assert needle in warning


def test_allowing_every_host_is_warned_about() -> None:
    [warning] = bind_warnings("127.0.0.1", ["*"])
    assert "Host check off" in warning
    assert len(bind_warnings("0.0.0.0", ["*"])) == 2


def test_serve_warns_on_stderr_before_it_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_serve(emulator: Emulator, **kwargs: Any) -> None:
        calls.append(kwargs)

    monkeypatch.setattr("ctsync.emulator.server.serve", fake_serve)
    args = ["emulator", "serve", "--port", "0", "--no-tls"]
    exposed = CliRunner().invoke(cli, [*args, "--host", "0.0.0.0", "--allow-host", "emu.internal"])
    assert exposed.exit_code == 0, exposed.output
    assert "WARNING" in exposed.stderr
    assert "'0.0.0.0'" in exposed.stderr
    assert "no authentication" in exposed.stderr
    assert exposed.stdout == ""
    assert calls[-1]["host"] == "0.0.0.0"
    assert calls[-1]["allow_hosts"] == ("emu.internal",)

    quiet = CliRunner().invoke(cli, args)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert calls[-1]["host"] == "127.0.0.1"
    assert calls[-1]["allow_hosts"] == ()


# -- a dropped connection over a real socket ------------------------------------------------


@contextlib.contextmanager
def _served(emu: Emulator) -> Iterator[str]:
    """``emu`` behind uvicorn on a loopback port in a thread (plain HTTP); yields the origin."""
    sock = bind_socket("127.0.0.1", 0)
    # No log_config: uvicorn's records reach the root logger, and so caplog.
    config = uvicorn.Config(make_app(emu), lifespan="off", log_config=None, log_level="info")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)  # waiting for a server thread to come up
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_a_served_drop_loses_the_answer_after_the_call_took_effect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile.parse("drop=100%"))
    partner = emu.tenant("fabrikam").id
    caplog.set_level(logging.INFO)
    with _served(emu) as origin:
        token = EmulatorCredential(emu, "contoso").get_token(f"{origin}/.default").token
        partners = f"{origin}/v1.0/policies/crossTenantAccessPolicy/partners"
        with httpx.Client(headers={"authorization": f"Bearer {token}"}) as graph:
            with pytest.raises(httpx.RemoteProtocolError):
                graph.post(partners, json={"tenantId": partner})
            with pytest.raises(httpx.RemoteProtocolError):  # a 204 is lost as well
                graph.patch(f"{partners}/{partner}", json={"inboundTrust": None})
            with pytest.raises(httpx.RemoteProtocolError):
                graph.get(f"{partners}/{partner}")
            # The control API is never dropped; switch the fault off and look.
            state = graph.get(f"{origin}/_emulator/state").json()
            assert state["stats"]["traffic"]["random_faults"] == {"drop": 3}
            assert graph.post(f"{origin}/_emulator/faults", json={"rate_drop": 0}).is_success
            assert graph.get(f"{partners}/{partner}").status_code == 200
    assert partner in emu.tenant("contoso").access_policy.partners
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []  # an injected drop is not an "Exception in ASGI application"


def test_a_served_drop_before_the_service_changes_nothing() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile(rate_drop_before=1.0))
    with _served(emu) as origin:
        token = EmulatorCredential(emu, "contoso").get_token(f"{origin}/.default").token
        partners = f"{origin}/v1.0/policies/crossTenantAccessPolicy/partners"
        with (
            httpx.Client(headers={"authorization": f"Bearer {token}"}) as graph,
            pytest.raises(httpx.RemoteProtocolError),
        ):
            graph.post(partners, json={"tenantId": emu.tenant("fabrikam").id})
    assert emu.tenant("contoso").access_policy.partners == {}
    assert emu.traffic.stats()["random_faults"] == {"drop_before": 1}


def test_a_served_emulator_accepts_tokens_issued_after_its_clock_moved() -> None:
    """The served clock is real time plus what was advanced: a token issued an hour ahead of
    the wall clock is checked against the emulator's own time, not the wall clock."""
    emu = Emulator(scenario="demo", clock=OffsetClock())
    tenant = emu.tenant("contoso")
    client = next(iter(tenant.clients.values()))
    with _served(emu) as origin, httpx.Client(base_url=origin, timeout=10) as http:
        advanced = http.post("/_emulator/clock/advance", json={"seconds": 3600})
        assert advanced.status_code == 200, advanced.text
        token = http.post(
            f"/{tenant.id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        assert token.status_code == 200, token.text
        graph = http.get(
            "/v1.0/policies/crossTenantAccessPolicy",
            headers={"authorization": f"Bearer {token.json()['access_token']}"},
        )
    assert graph.status_code == 200, graph.text
