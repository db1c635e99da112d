"""Starting configs: from a running emulator (works as is, no secret in the YAML), the example."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from ctsync.config import init_example, init_from_emulator, load, loads
from ctsync.emulator import Emulator
from ctsync.emulator.server import ServerAddress, info_document
from ctsync.emulator.tls import generate_tls
from ctsync.errors import ConfigError


@pytest.fixture
def info(tmp_path: Path) -> dict[str, Any]:
    """The info file `ctsync emulator serve --info-file` writes for the demo scenario."""
    ca = generate_tls(tmp_path / "emulator").ca_cert
    address = ServerAddress(
        authority="https://127.0.0.1:8443",
        graph_url="https://127.0.0.1:8443/v1.0",
        control_url="https://127.0.0.1:8443/_emulator",
        ca_cert=ca,
        info_file=None,
    )
    document = info_document(Emulator(scenario="demo"), address)
    # What the CLI reads back: JSON, not Python objects.
    loaded: dict[str, Any] = json.loads(json.dumps(document))
    return loaded


def test_from_emulator_works_as_is(info: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "project" / "ctsync.yaml"
    config.parent.mkdir()
    text = init_from_emulator(info, links=None, path=config)
    config.write_text(text)

    state = load(config)

    names = list(dict.fromkeys(t["name"] for t in info["tenants"]))
    first, *others = names
    assert [link.key for link in state.links] == [f"{first}:{other}" for other in others]
    for tenant in info["tenants"]:
        spec = state.tenants[tenant["name"]]
        assert spec.tenant_id == tenant["tenant_id"]
        assert spec.cloud.graph_url == info["graph_url"]
        assert spec.cloud.authority == info["authority"]
        assert spec.cloud.ca_bundle == info["ca_cert"]
        auth = spec.auth.resolve(base_dir=state.base_dir)
        assert (auth.client_id, auth.client_secret) == (
            tenant["client_id"],
            tenant["client_secret"],
        )
        # The secret is in a private file beside the config, never in the YAML.
        assert tenant["client_secret"] not in text
        secret_file = config.parent / ".ctsync" / "secrets" / f"{tenant['name']}.secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    link = state.links[0]
    assert link.template == "member-sync"
    assert link.sync.assigned[0].ref == "CTS-Pilot"
    assert link.sync.actions == {"create", "update"}
    assert link.access.automatic_redemption is True
    assert link.access.inbound_trust is not None
    assert link.access.inbound_trust.mfa is True


def test_from_emulator_with_chosen_links(info: dict[str, Any], tmp_path: Path) -> None:
    names = list(dict.fromkeys(t["name"] for t in info["tenants"]))
    links = [(names[1], names[0]), (names[0], names[2])]
    text = init_from_emulator(info, links=links, path=tmp_path / "c.yaml")
    state = loads(text, path=tmp_path / "c.yaml")
    assert [(link.source, link.target) for link in state.links] == links


def test_from_emulator_refuses_bad_input(info: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no tenant 'nowhere'"):
        init_from_emulator(info, links=[("contoso", "nowhere")], path=tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="two different tenants"):
        init_from_emulator(info, links=[("contoso", "contoso")], path=tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="graph_url is missing"):
        init_from_emulator({"tenants": []}, links=None, path=tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="no tenants"):
        init_from_emulator({**info, "tenants": []}, links=None, path=tmp_path / "c.yaml")
    # Nothing was written for refused input.
    assert not (tmp_path / ".ctsync").exists()


def test_from_emulator_without_tls(info: dict[str, Any], tmp_path: Path) -> None:
    plain = {
        **info,
        "graph_url": "http://127.0.0.1:8080/v1.0",
        "authority": "http://127.0.0.1:8080",
        "ca_cert": None,
    }
    text = init_from_emulator(plain, links=None, path=tmp_path / "c.yaml")
    assert "ca_bundle" not in text
    state = loads(text, path=tmp_path / "c.yaml")
    assert all(t.cloud.ca_bundle is None for t in state.tenants.values())


def test_secret_files_are_replaced_privately(info: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / ".ctsync" / "secrets" / f"{info['tenants'][0]['name']}.secret"
    target.parent.mkdir(parents=True)
    target.write_text("old")
    target.chmod(0o644)
    init_from_emulator(info, links=None, path=tmp_path / "c.yaml")
    assert target.read_text().strip() == info["tenants"][0]["client_secret"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_example_loads_and_resolves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = init_example()
    monkeypatch.setenv("CONTOSO_CLIENT_SECRET", "dummy-1")
    monkeypatch.setenv("FABRIKAM_CLIENT_SECRET", "dummy-2")
    state = loads(text, path=tmp_path / "ctsync.yaml")
    assert [link.key for link in state.links] == ["contoso:fabrikam"]
    secrets = [t.auth.resolve(base_dir=tmp_path).client_secret for t in state.tenants.values()]
    assert secrets == ["dummy-1", "dummy-2"]
    assert text.count("#") > 20  # it explains itself


@pytest.fixture
def served_info(tmp_path: Path) -> dict[str, Any]:
    """The info file with the certificate and federated token files `serve` writes."""
    from ctsync.emulator.identities import issue_client_identities

    emulator = Emulator(scenario="demo")
    address = ServerAddress(
        authority="https://127.0.0.1:8443",
        graph_url="https://127.0.0.1:8443/v1.0",
        control_url="https://127.0.0.1:8443/_emulator",
        ca_cert=generate_tls(tmp_path / "emulator").ca_cert,
        info_file=None,
    )
    files = issue_client_identities(
        emulator, tmp_path / "emulator" / "clients", origin=address.authority
    )
    loaded: dict[str, Any] = json.loads(json.dumps(info_document(emulator, address, files)))
    return loaded


@pytest.mark.parametrize(
    ("auth", "key", "field"),
    [
        ("certificate", "certificate_path", "certificate_path"),
        ("workload_identity", "federated_token_file", "token_file"),
    ],
)
def test_from_emulator_without_a_secret(
    served_info: dict[str, Any], tmp_path: Path, auth: str, key: str, field: str
) -> None:
    config = tmp_path / "project" / "ctsync.yaml"
    config.parent.mkdir()
    text = init_from_emulator(served_info, links=None, path=config, auth=auth)
    config.write_text(text)

    state = load(config)

    for tenant in served_info["tenants"]:
        spec = state.tenants[tenant["name"]]
        resolved = spec.auth.resolve(base_dir=state.base_dir)
        assert resolved.method == auth
        assert resolved.client_id == tenant["client_id"]
        assert getattr(resolved, field) == tenant[key]
        assert resolved.client_secret is None
        assert tenant["client_secret"] not in text
    assert "client_secret" not in text
    assert not (config.parent / ".ctsync").exists()


def test_from_emulator_names_what_an_info_file_lacks(info: dict[str, Any], tmp_path: Path) -> None:
    # `ctsync demo`'s in-process info has secrets only.
    with pytest.raises(ConfigError, match="lacks certificate_path"):
        init_from_emulator(info, links=None, path=tmp_path / "c.yaml", auth="certificate")
    with pytest.raises(ConfigError, match="auth 'password'"):
        init_from_emulator(info, links=None, path=tmp_path / "c.yaml", auth="password")
