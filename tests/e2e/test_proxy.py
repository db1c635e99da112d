"""Behind a corporate proxy: ctsync honours HTTPS_PROXY and NO_PROXY, for Graph and sign-ins.

Against `ctsync emulator serve` (real TLS) through a small CONNECT proxy run by the test: it
counts the tunnels it opens and to where. Graph calls used to ignore the environment's proxy
(only the sign-ins, through ``requests``, went through it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctsync.config import load
from ctsync.engine import Session
from ctsync.graph._http import environment_proxy

from .served import Served, init_config, serving


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 (its own thread and event loop); ``tunnels`` lists
    the ``host:port`` of every tunnel it opened."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        host, port = target.rsplit(":", 1)
        self.tunnels.append(target)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("proxy"), "--replication-lag", "0") as running:
        yield running


def _read_everything(config: Path) -> list[str]:
    desired = load(config)

    async def main() -> list[str]:
        async with Session(desired) as session:
            out = []
            for name in desired.tenants:
                answer = await session.client(name).get("/organization")
                out.append(answer.json_object()["value"][0]["id"])
            return out

    return asyncio.run(main())


def _clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def _through_proxy(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, no_proxy: str | None
) -> list[str]:
    """Every tenant's ``/organization`` read with HTTPS_PROXY set: the proxy's tunnels."""
    config = tmp_path / "ctsync.yaml"
    init_config(served, config, "contoso:fabrikam")
    _clear_proxies(monkeypatch)
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        if no_proxy is not None:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        ids = _read_everything(config)
    assert ids == [t.tenant_id for t in load(config).tenants.values()]
    return proxy.tunnels


def test_graph_calls_and_sign_ins_go_through_the_proxy(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tunnels = _through_proxy(served, tmp_path, monkeypatch, no_proxy=None)
    # Every tunnel leads to the emulator, which is both the authority and Graph here: at least
    # one for the sign-ins' pool and one for Graph's.
    assert set(tunnels) == {served.info["graph_url"].split("/")[2]}
    assert len(tunnels) >= 2


def test_no_proxy_goes_direct(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tunnels = _through_proxy(served, tmp_path, monkeypatch, no_proxy="localhost,127.0.0.1")
    assert tunnels == []


def test_environment_proxy_reads_like_curl(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_proxies(monkeypatch)
    assert environment_proxy("https", "graph.microsoft.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")  # no scheme: http:// meant
    assert environment_proxy("https", "graph.microsoft.com") == "http://proxy.corp:3128"
    monkeypatch.setenv("NO_PROXY", ".microsoft.com")
    assert environment_proxy("https", "graph.microsoft.com") is None
    assert environment_proxy("https", "login.microsoftonline.us") == "http://proxy.corp:3128"
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("ALL_PROXY", "http://all.corp:8080")
    assert environment_proxy("https", "login.microsoftonline.us") == "http://all.corp:8080"
