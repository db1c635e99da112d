"""The control API under /_emulator: reset, seed, state, faults, clock/advance."""

from __future__ import annotations

import httpx
import pytest

from ctsync.emulator import Emulator, EmulatorCredential, EmulatorTransport

CONTROL = "https://graph.microsoft.com/_emulator"


@pytest.fixture
def control(demo: Emulator) -> httpx.Client:
    return httpx.Client(base_url=CONTROL, transport=EmulatorTransport(demo))


def test_state_describes_tenants_faults_and_counters(control: httpx.Client) -> None:
    state = control.get("/state").json()
    assert [t["name"] for t in state["tenants"]] == ["contoso", "fabrikam", "tailspin"]
    contoso = state["tenants"][0]
    assert contoso["users"] == 12
    assert contoso["groups"] == 4
    assert state["faults"]["quotas"] is True
    assert state["now"].startswith("2026-01-05T09:00:00")
    assert "traffic" in state["stats"]


def test_clock_advance_moves_emulator_time(demo: Emulator, control: httpx.Client) -> None:
    before = demo.clock.now()
    answer = control.post("/clock/advance", json={"seconds": 90})
    assert answer.status_code == 200
    assert (demo.clock.now() - before).total_seconds() == 90
    for bad in ({"seconds": -1}, {"seconds": "x"}, {}, {"seconds": True}):
        assert control.post("/clock/advance", json=bad).status_code == 400


def test_faults_switch_at_run_time(demo: Emulator, control: httpx.Client) -> None:
    answer = control.post("/faults", json={"rate_429": 1.0, "retry_after": [2, 2]})
    assert answer.status_code == 200
    assert answer.json()["rate_429"] == 1.0
    token = EmulatorCredential(demo, "contoso").get_token("https://graph.microsoft.com/.default")
    with httpx.Client(
        base_url="https://graph.microsoft.com/v1.0",
        transport=EmulatorTransport(demo),
        headers={"authorization": f"Bearer {token.token}"},
    ) as graph:
        throttled = graph.get("/policies/crossTenantAccessPolicy/default")
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "2"
        control.post("/faults", json={"rate_429": 0})
        assert graph.get("/policies/crossTenantAccessPolicy/default").status_code == 200
    assert control.post("/faults", json={"no_such_knob": 1}).status_code == 400


def test_reset_then_seed(demo: Emulator, control: httpx.Client) -> None:
    old_token = EmulatorCredential(demo, "contoso").get_token(
        "https://graph.microsoft.com/.default"
    )
    assert control.post("/reset").status_code == 200
    assert control.get("/state").json()["tenants"] == []
    # A token of a tenant the emulator no longer holds is refused.
    with httpx.Client(
        base_url="https://graph.microsoft.com/v1.0",
        transport=EmulatorTransport(demo),
        headers={"authorization": f"Bearer {old_token.token}"},
    ) as graph:
        refused = graph.get("/policies/crossTenantAccessPolicy/default")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"

    seeded = control.post(
        "/seed",
        json={"scenario": {"tenants": [{"name": "woodgrove", "clients": [{"permissions": []}]}]}},
    )
    assert seeded.status_code == 200
    entry = seeded.json()["tenants"][0]
    assert entry["name"] == "woodgrove"
    assert set(entry) == {
        "name",
        "tenant_id",
        "domain",
        "client_id",
        "client_secret",
        "permissions",
    }
    assert control.post("/seed", json={"scenario": "demo"}).status_code == 200
    assert len(control.get("/state").json()["tenants"]) == 4


def test_bad_control_requests(control: httpx.Client) -> None:
    assert control.post("/seed", json={"scenario": 3}).status_code == 400
    assert control.post("/seed", json={"scenario": "no-such-file.json"}).status_code == 400
    assert control.post("/seed", content=b"{oops").status_code == 400
    unknown = control.get("/nothing")
    assert unknown.status_code == 501
    assert unknown.json()["error"]["code"] == "NotImplemented"
