"""Secrets are references until a credential is built; no value is ever printed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctsync.config import AuthRef, SecretRef, loads
from ctsync.errors import ConfigError

from .helpers import CLIENT_ID, CONTOSO_ID, HEADER, error_of

SECRET = "s3cr3t~Value.with-Chars_42"

CONFIG = f"""\
version: 1
tenants:
  env:
    tenant_id: {CONTOSO_ID}
    auth: {{method: client_secret, client_id: {CLIENT_ID}, client_secret_env: CTSYNC_TEST_SECRET}}
  file:
    tenant_id: 3d3c0000-0000-4000-8000-000000000002
    auth: {{method: client_secret, client_id: {CLIENT_ID}, client_secret_file: s/file.secret}}
  cert:
    tenant_id: 3d3c0000-0000-4000-8000-000000000003
    auth:
      method: certificate
      client_id: {CLIENT_ID}
      certificate_path: certs/c.pem
      certificate_password_file: /abs/c.pass
  wi:
    tenant_id: 3d3c0000-0000-4000-8000-000000000004
    auth: {{method: workload_identity, token_file: tokens/t.jwt}}
  wi-default:
    tenant_id: 3d3c0000-0000-4000-8000-000000000005
    auth: {{method: workload_identity}}
links:
  - {{source: env, target: file}}
"""


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "file.secret").write_text(SECRET + "\n")
    return tmp_path


def test_secret_refs_hold_names_not_values(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTSYNC_TEST_SECRET", SECRET)
    state = loads(CONFIG, path=state_dir / "ctsync.yaml")

    assert state.tenants["env"].auth.secret == SecretRef(env="CTSYNC_TEST_SECRET")
    assert state.tenants["file"].auth.secret == SecretRef(file="s/file.secret")
    assert state.tenants["cert"].auth.certificate_password == SecretRef(file="/abs/c.pass")
    for text in (repr(state), str(state), repr(state.to_dict()), state.config_hash):
        assert SECRET not in text
    assert repr(SecretRef(env="X")) == "SecretRef(env='X', file=None, location=None)"
    assert SecretRef(env="X").describe() == "environment variable X"
    assert SecretRef(file="f").describe() == "file f"


def test_resolve_reads_env_and_file(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_TEST_SECRET", f"  {SECRET}\n")
    state = loads(CONFIG, path=state_dir / "ctsync.yaml")

    from_env = state.tenants["env"].auth.resolve(base_dir=state.base_dir)
    from_file = state.tenants["file"].auth.resolve(base_dir=state.base_dir)

    assert from_env.client_secret == SECRET
    assert from_file.client_secret == SECRET  # relative to the config file, newline dropped
    assert (from_env.method, from_env.client_id) == ("client_secret", CLIENT_ID)
    for spec in (from_env, from_file):
        assert SECRET not in repr(spec)
        spec.check()


def test_resolve_makes_paths_absolute(state_dir: Path) -> None:
    state = loads(CONFIG, path=state_dir / "ctsync.yaml")
    (state_dir / "c.pass").write_text("pw")
    cert = AuthRef(
        method="certificate",
        client_id=CLIENT_ID,
        certificate_path="certs/c.pem",
        certificate_password=SecretRef(file="c.pass"),
    ).resolve(base_dir=state_dir)
    assert cert.certificate_path == str(state_dir / "certs" / "c.pem")
    assert cert.certificate_password == "pw"
    wi = state.tenants["wi"].auth.resolve(base_dir=state_dir)
    assert wi.token_file == str(state_dir / "tokens" / "t.jwt")
    # No token file: AuthSpec falls back to $AZURE_FEDERATED_TOKEN_FILE itself.
    assert state.tenants["wi-default"].auth.resolve(base_dir=state_dir).token_file is None


def test_missing_or_empty_secrets_name_their_source(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = loads(CONFIG, path="ctsync.yaml", base_dir=state_dir)
    env_auth = state.tenants["env"].auth
    file_auth = state.tenants["file"].auth

    monkeypatch.delenv("CTSYNC_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError) as caught:
        env_auth.resolve(base_dir=state_dir)
    assert str(caught.value) == (
        "ctsync.yaml:5:103: environment variable CTSYNC_TEST_SECRET is not set; "
        "it should hold the secret"
    )

    monkeypatch.setenv("CTSYNC_TEST_SECRET", "  \n")
    with pytest.raises(ConfigError, match="CTSYNC_TEST_SECRET is empty"):
        env_auth.resolve(base_dir=state_dir)

    (state_dir / "s" / "file.secret").write_text("\n")
    with pytest.raises(ConfigError, match=r"secret file .*file\.secret is empty"):
        file_auth.resolve(base_dir=state_dir)

    (state_dir / "s" / "file.secret").unlink()
    with pytest.raises(ConfigError) as caught:
        file_auth.resolve(base_dir=state_dir)
    assert caught.value.location == "ctsync.yaml:8:104"
    assert f"secret file {state_dir / 's' / 'file.secret'} does not exist" in str(caught.value)


def test_unreadable_secret_file_does_not_leak_its_content(state_dir: Path) -> None:
    (state_dir / "s" / "file.secret").write_bytes(SECRET.encode() + b"\xff\xfe")
    state = loads(CONFIG, path="ctsync.yaml", base_dir=state_dir)
    with pytest.raises(ConfigError) as caught:
        state.tenants["file"].auth.resolve(base_dir=state_dir)
    assert "UnicodeDecodeError" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_secret_ref_names_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef(env="A", file="b")
    with pytest.raises(ValueError, match="exactly one"):
        SecretRef()


def test_duplicate_key_messages_do_not_repeat_values() -> None:
    # ruamel's own message quotes both values; ours names the key only.
    error = error_of("links:\n  - {source: contoso, source: 'hunter2'}\n")
    assert "hunter2" not in str(error)
    assert "duplicate key 'source'" in str(error)


def test_no_secret_in_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTOSO_SECRET", SECRET)
    error = error_of("links:\n  - {source: contoso, target: nowhere}\n")
    assert SECRET not in str(error)
    assert os.environ["CONTOSO_SECRET"] == SECRET  # loading never consumed or changed it
    assert HEADER.count("CONTOSO_SECRET") == 1
