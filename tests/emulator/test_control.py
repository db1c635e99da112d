"""The control API under /_emulator: reset, seed, state, faults, clock/advance, and the JSON
content type its POSTs need."""

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
    assert control.post("/reset", json={}).status_code == 200
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
    json_type = {"content-type": "application/json"}
    assert control.post("/seed", content=b"{oops", headers=json_type).status_code == 400
    unknown = control.get("/nothing")
    assert unknown.status_code == 501
    assert unknown.json()["error"]["code"] == "NotImplemented"


# -- what a web page cannot send -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content", "content_type"),
    [
        ("/reset", b"", None),
        ("/reset", b"", "text/plain"),
        ("/reset", b"{}", "text/plain;charset=UTF-8"),
        ("/seed", b'{"scenario": "demo"}', "text/plain"),
        ("/faults", b"rate_429=1", "application/x-www-form-urlencoded"),
        ("/clock/advance", b'{"seconds": 60}', "multipart/form-data; boundary=x"),
        ("/cycles/run", b"{}", "application/jsonp"),
        ("/provisioning", b'{"escrow_floor": 3}', "application/x-json"),
    ],
)
def test_control_posts_need_a_json_content_type(
    demo: Emulator, control: httpx.Client, path: str, content: bytes, content_type: str | None
) -> None:
    """A browser sends text/plain, form and multipart POSTs cross-origin without asking first;
    the control API answers none of them, so a web page cannot reset or seed it."""
    before = control.get("/state").json()
    headers = {} if content_type is None else {"content-type": content_type}
    refused = control.post(path, content=content, headers=headers)
    assert refused.status_code == 415
    assert refused.json()["error"]["code"] == "UnsupportedMediaType"
    assert "application/json" in refused.json()["error"]["message"]
    after = control.get("/state").json()
    assert after == before
    assert len(demo.tenants) == 3


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_content_types_are_accepted_with_or_without_a_body(
    demo: Emulator, control: httpx.Client, content_type: str
) -> None:
    headers = {"content-type": content_type}
    assert control.post("/clock/advance", content=b'{"seconds": 5}', headers=headers).is_success
    assert control.post("/cycles/run", headers=headers).is_success  # no body: {}
    assert control.post("/reset", headers=headers).is_success
    assert demo.tenants == {}


def test_reads_need_no_content_type(control: httpx.Client) -> None:
    assert control.get("/state").status_code == 200
    assert control.get("/provisioning").status_code == 200
    # Other methods need JSON too, before the API says it has no such route.
    assert control.delete("/state").status_code == 415
    assert control.request("DELETE", "/state", json={}).status_code == 501


def test_state_shows_the_drop_fault(control: httpx.Client) -> None:
    answer = control.post("/faults", json={"rate_drop": 0.25, "rate_drop_before": 0.05})
    assert answer.status_code == 200
    faults = control.get("/state").json()["faults"]
    assert (faults["rate_drop"], faults["rate_drop_before"]) == (0.25, 0.05)
    too_much = control.post("/faults", json={"rate_429": 0.8})
    assert too_much.status_code == 400
    assert "add up to more than 1" in too_much.json()["error"]["message"]


def test_requests_lists_every_answered_graph_call_in_order(
    demo: Emulator, control: httpx.Client
) -> None:
    token = EmulatorCredential(demo, "contoso").get_token("https://graph.microsoft.com/.default")
    with httpx.Client(
        base_url="https://graph.microsoft.com/v1.0",
        transport=EmulatorTransport(demo),
        headers={"authorization": f"Bearer {token.token}", "client-request-id": "c-1"},
    ) as graph:
        graph.get("/policies/crossTenantAccessPolicy/partners?$top=5")
        mark = control.get("/requests").json()["requests"][-1]["seq"]
        graph.post(
            "/$batch",
            json={"requests": [{"id": "1", "method": "GET", "url": "/organization"}]},
        )
    later = control.get("/requests", params={"after": mark}).json()["requests"]
    assert [(r["method"], r["path"], r["in_batch"]) for r in later] == [
        ("GET", "/organization", True),
        ("POST", "/$batch", False),
    ]
    first = control.get("/requests").json()["requests"][0]
    assert first["path"] == "/policies/crossTenantAccessPolicy/partners"
    assert (first["status"], first["client_request_id"]) == (200, "c-1")
    assert control.get("/requests", params={"after": "x"}).status_code == 400
    control.post("/reset", json={})
    assert control.get("/requests").json()["requests"] == []


def test_faults_can_be_reseeded(demo: Emulator, control: httpx.Client) -> None:
    token = EmulatorCredential(demo, "contoso").get_token("https://graph.microsoft.com/.default")

    def statuses() -> list[int]:
        with httpx.Client(
            base_url="https://graph.microsoft.com/v1.0",
            transport=EmulatorTransport(demo),
            headers={"authorization": f"Bearer {token.token}"},
        ) as graph:
            return [graph.get("/organization").status_code for _ in range(30)]

    assert control.post("/faults", json={"rate_503": 0.5, "seed": 1}).status_code == 200
    first = statuses()
    control.post("/faults", json={"seed": 1})
    assert statuses() == first  # the same seed, the same dice
    control.post("/faults", json={"seed": 2})
    assert statuses() != first
    assert control.post("/faults", json={"seed": "x"}).status_code == 400
