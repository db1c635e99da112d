"""Sign-in methods as the config spells them: delegated admins (device code, browser) with
their token cache, pipelines' workload identity, and the one-tenant rule of managed identity."""

from __future__ import annotations

import pytest

from ctsync.config import loads
from ctsync.errors import ConfigError
from ctsync.graph.credentials import GRAPH_CLI_CLIENT_ID

from .helpers import CONTOSO_ID, FABRIKAM_ID

TWO_TENANTS = """\
version: 1
tenants:
  contoso:
    tenant_id: {contoso}
    auth: {contoso_auth}
  fabrikam:
    tenant_id: {fabrikam}
    auth: {fabrikam_auth}
"""


def _config(contoso_auth: str, fabrikam_auth: str = "{method: azure_cli}") -> str:
    return TWO_TENANTS.format(
        contoso=CONTOSO_ID,
        fabrikam=FABRIKAM_ID,
        contoso_auth=contoso_auth,
        fabrikam_auth=fabrikam_auth,
    )


def test_interactive_browser_and_device_code_default_to_graphs_command_line_tools() -> None:
    desired = loads(
        _config(
            "{method: interactive_browser}",
            "{method: device_code, token_cache: none}",
        ),
        path="c.yaml",
    )
    browser = desired.tenants["contoso"].auth.resolve(base_dir=desired.base_dir)
    device = desired.tenants["fabrikam"].auth.resolve(base_dir=desired.base_dir)
    assert (browser.method, browser.client_id, browser.token_cache) == (
        "interactive_browser",
        None,
        "keyring",
    )
    assert (device.method, device.token_cache) == ("device_code", "none")
    assert GRAPH_CLI_CLIENT_ID == "14d82eec-204b-4c2f-b7e8-296a70dab67e"


def test_a_token_cache_that_is_not_one_of_the_three_is_refused_at_its_line() -> None:
    text = _config("{method: device_code, token_cache: disk}")
    with pytest.raises(ConfigError) as info:
        loads(text, path="c.yaml")
    message = str(info.value)
    assert message.startswith("c.yaml:5:")
    assert "token_cache" in message
    assert "'keyring'" in message


def test_workload_identity_takes_an_azure_pipelines_service_connection() -> None:
    desired = loads(
        _config(
            "{method: workload_identity, client_id: c1000000-0000-4000-8000-0000000000aa, "
            "service_connection_id: 5e1a0000-0000-4000-8000-000000000001}"
        ),
        path="c.yaml",
    )
    spec = desired.tenants["contoso"].auth.resolve(base_dir=desired.base_dir)
    assert spec.service_connection_id == "5e1a0000-0000-4000-8000-000000000001"


def test_two_tenants_cannot_both_sign_in_with_a_managed_identity() -> None:
    text = _config("{method: managed_identity}", "{method: managed_identity}")
    with pytest.raises(ConfigError) as info:
        loads(text, path="c.yaml")
    message = str(info.value)
    assert message.startswith("c.yaml:8:")
    assert "both sign in with a managed identity" in message
    assert "give fabrikam a certificate or workload_identity credential" in message
