"""scope.rollout: stages, gate, and what it may not be combined with."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctsync.config import DesiredState, Principal, load
from ctsync.errors import ConfigError

HEAD = """\
version: 1
tenants:
  contoso: {tenant_id: 11111111-1111-4111-8111-111111111111, auth: {method: azure_cli}}
  fabrikam: {tenant_id: 22222222-2222-4222-8222-222222222222, auth: {method: azure_cli}}
links:
  - source: contoso
    target: fabrikam
    sync:
      scope:
"""


def _load(tmp_path: Path, scope: str) -> DesiredState:
    path = tmp_path / "ctsync.yaml"
    path.write_text(HEAD + scope)
    return load(path)


def test_stages_and_gate(tmp_path: Path) -> None:
    state = _load(
        tmp_path,
        "        rollout: {pilot: CTS-Pilot, then: [Sales, all_members],"
        " gate: {max_failure_rate: 0.05, min_cycles: 2}}\n",
    )
    rollout = state.links[0].sync.rollout
    assert rollout is not None
    assert rollout.stages == 3
    assert rollout.principals(0) == (Principal(kind="group", ref="CTS-Pilot"),)
    assert [p.ref for p in rollout.principals(1)] == ["CTS-Pilot", "Sales"]
    assert not rollout.sync_all(1)
    assert rollout.sync_all(2)
    assert rollout.describe(2) == "all members"
    assert (rollout.max_failure_rate, rollout.min_cycles) == (0.05, 2)


def test_defaults(tmp_path: Path) -> None:
    state = _load(tmp_path, "        rollout: {pilot: CTS-Pilot, then: all_members}\n")
    rollout = state.links[0].sync.rollout
    assert rollout is not None
    assert rollout.stages == 2
    assert (rollout.max_failure_rate, rollout.min_cycles) == (0.0, 1)


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        (
            "        assigned: [{group: X}]\n        rollout: {pilot: CTS-Pilot}\n",
            "rollout decides who is assigned",
        ),
        (
            "        rollout: {pilot: P, then: [all_members, Sales]}\n",
            "all_members can only be the last stage",
        ),
        ("        rollout: {pilot: P, gate: {max_failure_rate: 2}}\n", "max_failure_rate"),
        ("        rollout: {pilot: P, gate: {min_cycles: 0}}\n", "min_cycles"),
        ("        rollout: {then: [Sales]}\n", "pilot"),
    ],
)
def test_bad_rollouts(tmp_path: Path, scope: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, scope)
    assert message in str(caught.value)
    assert ":9:" in str(caught.value) or ":10:" in str(caught.value)
