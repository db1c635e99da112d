"""Shared text for the config tests: two tenants, so snippets only add what they test."""

from __future__ import annotations

import textwrap

from ctsync.config import DesiredState, loads
from ctsync.errors import ConfigError

CONTOSO_ID = "3d3c0000-0000-4000-8000-000000000001"
FABRIKAM_ID = "3d3c0000-0000-4000-8000-000000000002"
TAILSPIN_ID = "3d3c0000-0000-4000-8000-000000000003"
CLIENT_ID = "c1000000-0000-4000-8000-0000000000aa"

#: Eight lines; a snippet appended to it starts on line 9.
HEADER = f"""\
version: 1
tenants:
  contoso:
    tenant_id: {CONTOSO_ID}
    auth: {{method: client_secret, client_id: {CLIENT_ID}, client_secret_env: CONTOSO_SECRET}}
  fabrikam:
    tenant_id: {FABRIKAM_ID}
    auth: {{method: azure_cli}}
"""


def load_text(text: str, *, header: bool = True) -> DesiredState:
    """Load ``text`` (dedented) after HEADER, as ``c.yaml``."""
    body = textwrap.dedent(text)
    return loads(HEADER + body if header else body, path="c.yaml")


def error_of(text: str, *, header: bool = True) -> ConfigError:
    """The ConfigError loading ``text`` (as is, after HEADER) raises; fails if it loads."""
    try:
        loads(HEADER + text if header else text, path="c.yaml")
    except ConfigError as exc:
        return exc
    msg = "the config loaded, but an error was expected"
    raise AssertionError(msg)
