"""The permissions table is the one source: the guide shows it as the code has it."""

from __future__ import annotations

from pathlib import Path

from ctsync.permissions import (
    ROLE_IDS,
    application_permissions,
    delegated_scopes,
    directory_roles,
    guide_table,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_guide_shows_the_table_the_code_uses() -> None:
    assert guide_table() in (ROOT / "docs" / "guide.md").read_text()


def test_a_tenant_that_is_both_source_and_target_needs_the_union() -> None:
    source = set(application_permissions(["source"]))
    target = set(application_permissions(["target"]))
    assert set(application_permissions(["source", "target"])) == source | target
    assert "Synchronization.ReadWrite.All" in source - target
    assert application_permissions(["target"], required_only=True) == (
        "Policy.ReadWrite.CrossTenantAccess",
        "Policy.Read.All",
    )
    assert "Policy.ReadWrite.CrossTenantAccess" in delegated_scopes(["target"])


def test_every_role_named_has_its_template_id() -> None:
    for roles in directory_roles(["source", "target"], required_only=False):
        for role in roles:
            assert role in ROLE_IDS, role
