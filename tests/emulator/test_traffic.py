"""Faults and throttling: bucket arithmetic on a frozen clock, enforced Retry-After, seeded
random faults, and the ``--faults`` spec."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import pytest

from ctsync.emulator import EmulatorCredential, EmulatorTransport
from ctsync.emulator._emulator import Emulator
from ctsync.emulator.core.clock import FrozenClock
from ctsync.emulator.core.http import EmuRequest
from ctsync.emulator.core.traffic import Admission, FaultProfile, QuotaLimits, TrafficControl

APP = "11111111-1111-4111-8111-111111111111"
TENANT = "22222222-2222-4222-8222-222222222222"


class Harness:
    """A TrafficControl and the frozen clock it is judged by."""

    def __init__(
        self,
        profile: FaultProfile | None = None,
        *,
        seed: int = 0,
        limits: QuotaLimits | None = None,
    ) -> None:
        self.clock = FrozenClock()
        self.traffic = TrafficControl(
            profile or FaultProfile(), rng=random.Random(seed), limits=limits
        )

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def call(
        self,
        *,
        kind: str = "identity",
        write: bool = False,
        cost: int = 1,
        app: str = APP,
        tenant: str = TENANT,
        size: str = "S",
        query: dict[str, str] | None = None,
        crid: str = "",
    ) -> Admission:
        return self.traffic.admit(
            app_id=app,
            tenant_id=tenant,
            size_class=size,
            kind=kind,
            cost=cost,
            is_write=write,
            query=query or {},
            client_request_id=crid or f"crid-{random.random()}",
            priority="normal",
            now=self.now,
        )

    def calls(self, n: int, **kwargs: Any) -> list[Admission]:
        return [self.call(**kwargs) for _ in range(n)]


def status(admission: Admission) -> int:
    return 200 if admission.fault is None else admission.fault.status


def header(admission: Admission, name: str) -> str | None:
    assert admission.fault is not None
    return admission.fault.headers.get(name)


# -- identity buckets ---------------------------------------------------------------------


@pytest.mark.parametrize(("size", "quota"), [("S", 3_500), ("M", 5_000), ("L", 8_000)])
def test_identity_ru_bucket_per_app_and_tenant(size: str, quota: int) -> None:
    h = Harness()
    assert {status(a) for a in h.calls(quota, size=size)} == {200}
    refused = h.call(size=size)
    assert status(refused) == 429
    assert refused.fault is not None
    assert refused.fault.code == "TooManyRequests"
    assert refused.fault.message == "Too many requests."
    # One RU comes back every 10/quota seconds: the wait rounds up to one whole second.
    assert header(refused, "Retry-After") == "1"
    assert header(refused, "x-ms-throttle-scope") == f"Tenant_Application/ReadWrite/{APP}/{TENANT}"
    assert header(refused, "x-ms-throttle-information") == "ResourceUnitLimitExceeded"
    # Another tenant of the same app has its own bucket.
    assert status(h.call(size=size, tenant="33333333-3333-4333-8333-333333333333")) == 200


def test_bucket_refills_linearly() -> None:
    h = Harness()
    h.calls(3_500)
    h.clock.advance(1)  # enforced block over; 350 RU back
    assert {status(a) for a in h.calls(350)} == {200}
    assert status(h.call()) == 429
    h.clock.advance(20)  # never above capacity
    assert {status(a) for a in h.calls(3_500)} == {200}
    assert status(h.call()) == 429


def test_profile_size_class_overrides_the_tenant() -> None:
    h = Harness(FaultProfile(size_class="L"))
    assert {status(a) for a in h.calls(8_000, size="S")} == {200}
    assert status(h.call(size="S")) == 429


def test_retry_after_waits_for_enough_tokens_for_an_expensive_call() -> None:
    h = Harness()
    h.calls(3_500)
    refused = h.call(cost=1_000)
    # 1,000 RU at 350 RU/s: 2.86 s, rounded up.
    assert header(refused, "Retry-After") == "3"
    h.clock.advance(3)
    assert status(h.call(cost=1_000)) == 200


@pytest.mark.parametrize(
    ("cost", "query", "expected"),
    [
        (1, {}, 1),
        (2, {}, 2),
        (2, {"$select": "id"}, 1),
        (1, {"$select": "id"}, 1),
        (2, {"$expand": "members"}, 3),
        (5, {"$select": "id", "$top": "10"}, 3),
        (5, {"$top": "20"}, 5),
        (1, {"$top": "5"}, 1),
    ],
)
def test_resource_unit_cost_and_header(cost: int, query: dict[str, str], expected: int) -> None:
    h = Harness()
    admitted = h.call(cost=cost, query=query)
    assert admitted.fault is None
    assert admitted.headers["x-ms-resource-unit"] == str(expected)


def test_limit_percentage_header_above_80_percent() -> None:
    h = Harness()
    below = h.calls(2_799)[-1]
    assert "x-ms-throttle-limit-percentage" not in below.headers
    at = h.call()
    assert at.headers["x-ms-throttle-limit-percentage"] == "0.8"
    h.calls(698)
    assert h.call().headers["x-ms-throttle-limit-percentage"] == "1.0"


def test_write_bucket_exhausted_while_reads_still_pass() -> None:
    h = Harness()
    assert {status(a) for a in h.calls(3_000, write=True, size="L")} == {200}
    refused = h.call(write=True, size="L")
    assert status(refused) == 429
    assert header(refused, "x-ms-throttle-information") == "WriteLimitExceeded"
    assert header(refused, "x-ms-throttle-scope") == f"Tenant_Application/Write/{APP}/{TENANT}"
    assert header(refused, "Retry-After") == "1"  # 20 writes/s refill
    read = h.call(size="L")
    assert status(read) == 200
    assert read.headers["x-ms-resource-unit"] == "1"
    # Writes stay refused for the Retry-After window (enforced), then pass again.
    assert status(h.call(write=True, size="L")) == 429
    h.clock.advance(1)
    assert status(h.call(write=True, size="L")) == 200


def test_tenant_wide_write_quota_spans_apps() -> None:
    h = Harness(limits=QuotaLimits(tenant_writes=(3, 300)))
    apps = [f"{i}1111111-1111-4111-8111-111111111111" for i in range(4)]
    assert [status(h.call(write=True, app=a)) for a in apps] == [200, 200, 200, 429]
    refused = h.call(write=True, app=apps[3])
    assert header(refused, "x-ms-throttle-scope") == f"Tenant/Write/{apps[3]}/{TENANT}"
    assert header(refused, "Retry-After") == "100"


def test_app_wide_quotas_span_tenants() -> None:
    h = Harness(limits=QuotaLimits(app_ru=(4, 20), app_writes=(2, 300)))
    tenants = [f"{i}2222222-2222-4222-8222-222222222222" for i in range(5)]
    assert [status(h.call(write=True, tenant=t)) for t in tenants[:3]] == [200, 200, 429]
    refused = h.call(write=True, tenant=tenants[3])
    assert header(refused, "x-ms-throttle-scope") == f"Application/Write/{APP}/{tenants[3]}"
    assert [status(h.call(tenant=t)) for t in tenants[3:]] == [200, 200]
    refused = h.call(tenant=tenants[0])
    assert header(refused, "x-ms-throttle-information") == "ResourceUnitLimitExceeded"
    assert header(refused, "x-ms-throttle-scope") == f"Application/ReadWrite/{APP}/{tenants[0]}"


def test_global_request_limit_per_app() -> None:
    h = Harness(limits=QuotaLimits(global_app=(3, 10)))
    kinds = ["identity", "reports", "on_demand", "identity"]
    assert [status(h.call(kind=k)) for k in kinds] == [200, 200, 200, 429]


# -- reports and provisionOnDemand --------------------------------------------------------


def test_reports_bucket_five_per_ten_seconds() -> None:
    h = Harness()
    admitted = h.calls(6, kind="reports")
    assert [status(a) for a in admitted] == [200] * 5 + [429]
    assert admitted[0].headers == {}  # resource units are an identity notion
    refused = h.call(kind="reports")
    assert header(refused, "Retry-After") == "2"
    assert header(refused, "x-ms-throttle-information") == "RequestLimitExceeded"
    h.clock.advance(2)
    assert [status(a) for a in h.calls(2, kind="reports")] == [200, 429]
    # Reports do not touch identity buckets, and identity reads do not touch reports.
    assert status(h.call()) == 200


def test_reports_app_wide_limit_across_tenants() -> None:
    h = Harness()
    tenants = [f"{i:08d}-2222-4222-8222-222222222222" for i in range(25)]
    results = [status(h.call(kind="reports", tenant=t)) for t in tenants for _ in range(5)]
    assert results.count(200) == 122
    assert results[122:] == [429, 429, 429]
    refused = h.call(kind="reports", tenant="99999999-2222-4222-8222-222222222222")
    assert header(refused, "x-ms-throttle-scope") == (
        f"Application/Read/{APP}/99999999-2222-4222-8222-222222222222"
    )


def test_on_demand_bucket() -> None:
    h = Harness()
    assert [status(a) for a in h.calls(6, kind="on_demand", write=True)] == [200] * 5 + [429]


def test_fixed_window_mode() -> None:
    h = Harness(FaultProfile(quota_mode="window"))
    h.clock.advance(3.5)  # 09:00:03.5: 6.5 s left in this 10 s window
    assert [status(a) for a in h.calls(6, kind="reports")] == [200] * 5 + [429]
    refused = h.call(kind="reports")
    assert header(refused, "Retry-After") == "7"
    # The window refills at 09:00:10, but the block lasts the whole seconds it announced.
    h.clock.advance(6.5)
    assert status(h.call(kind="reports")) == 429
    h.clock.advance(0.5)
    assert [status(a) for a in h.calls(6, kind="reports")] == [200] * 5 + [429]


def test_quotas_off() -> None:
    h = Harness(FaultProfile(quotas=False))
    assert {status(a) for a in h.calls(200, kind="reports")} == {200}
    assert h.call().headers == {"x-ms-resource-unit": "1"}


# -- enforced Retry-After -----------------------------------------------------------------


def test_retry_after_is_enforced() -> None:
    h = Harness()
    h.calls(5, kind="reports")
    first = h.call(kind="reports", crid="logical-1")
    assert header(first, "Retry-After") == "2"
    h.clock.advance(1.5)
    again = h.call(kind="reports", crid="logical-1")
    assert status(again) == 429
    assert header(again, "Retry-After") == "1"  # 0.5 s left, rounded up
    assert header(again, "x-ms-throttle-information") == "RequestLimitExceeded"
    h.clock.advance(0.5)
    assert status(h.call(kind="reports", crid="logical-1")) == 200
    stats = h.traffic.stats()
    assert stats["requests_while_blocked"] == 1
    assert stats["early_retries"] == 1
    assert stats["throttled_429"] == {"RequestLimitExceeded": 1, "blocked": 1}


def test_early_retries_are_keyed_by_client_request_id() -> None:
    h = Harness()
    h.calls(5, kind="reports")
    h.call(kind="reports", crid="told-to-wait")
    h.clock.advance(1)
    h.call(kind="reports", crid="someone-else")
    h.call(kind="reports", crid="told-to-wait")
    stats = h.traffic.stats()
    assert stats["requests_while_blocked"] == 2
    assert stats["early_retries"] == 1
    h.call(kind="reports", crid="someone-else")  # told to wait by the blocked answer
    assert h.traffic.stats()["early_retries"] == 2
    h.clock.advance(1)
    assert status(h.call(kind="reports", crid="told-to-wait")) == 200
    assert h.traffic.stats()["early_retries"] == 2


def test_a_retry_after_lost_with_its_answer_makes_no_retry_early() -> None:
    # A 429 whose answer the connection drop swallows was never heard: the client's retry of
    # the same request (same client-request-id) right away is not early.
    h = Harness(FaultProfile(rate_429=0.5, rate_drop=0.5, retry_after=(5, 5)), seed=3)
    for attempt in range(200):
        crid = f"call-{attempt}"
        lost = h.traffic.drop() == "after"
        if lost and status(h.call(crid=crid)) == 429:
            break
    else:
        pytest.fail("no call was both throttled and dropped")
    h.traffic.drop()  # the retry's own draw
    h.traffic.answer_lost = False  # ... which this time gets through
    h.call(crid=crid)
    assert h.traffic.stats()["early_retries"] == 0


def test_a_block_covers_only_its_family() -> None:
    h = Harness()
    h.calls(6, kind="reports")
    assert status(h.call(kind="reports")) == 429
    assert status(h.call()) == 200
    assert status(h.call(write=True)) == 200
    assert status(h.call(kind="reports", app="a" + APP[1:])) == 200


def test_refused_calls_consume_nothing() -> None:
    h = Harness()
    h.calls(5, kind="reports")
    h.calls(50, kind="reports")  # all refused, none charged
    h.clock.advance(10)
    assert [status(a) for a in h.calls(6, kind="reports")] == [200] * 5 + [429]


def test_the_batch_envelope_is_free() -> None:
    h = Harness(FaultProfile(rate_429=1.0))
    for _ in range(100):
        admitted = h.call(kind="batch")
        assert admitted.fault is None
        assert admitted.headers == {}
    assert h.traffic.stats()["admitted"] == 0


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown route kind 'report'"):
        Harness().call(kind="report")


# -- random faults ------------------------------------------------------------------------


def _outcomes(seed: int, n: int, profile: FaultProfile) -> list[tuple[int, str | None]]:
    h = Harness(profile, seed=seed)
    out = []
    for _ in range(n):
        admission = h.call()
        out.append(
            (
                status(admission),
                None if admission.fault is None else header(admission, "Retry-After"),
            )
        )
        h.clock.advance(11)  # past any Retry-After, so every call rolls
    return out


def test_random_faults_are_reproducible_from_the_seed() -> None:
    profile = FaultProfile(rate_429=0.2, rate_500=0.1, rate_503=0.1, retry_after=(1, 10))
    assert _outcomes(7, 300, profile) == _outcomes(7, 300, profile)
    assert _outcomes(7, 300, profile) != _outcomes(8, 300, profile)


def test_random_fault_rates_match_the_profile() -> None:
    profile = FaultProfile(rate_429=0.2, rate_500=0.05, rate_503=0.1, quotas=False)
    counts = Counter(s for s, _ in _outcomes(1, 10_000, profile))
    assert 1_850 <= counts[429] <= 2_150
    assert 420 <= counts[500] <= 580
    assert 900 <= counts[503] <= 1_100
    assert counts[200] == 10_000 - counts[429] - counts[500] - counts[503]


def test_random_fault_headers_and_blocking() -> None:
    h = Harness(FaultProfile(rate_429=1.0, retry_after=(3, 3)))
    refused = h.call(write=True, crid="x")
    assert header(refused, "Retry-After") == "3"
    assert header(refused, "x-ms-throttle-scope") == f"Tenant_Application/Write/{APP}/{TENANT}"
    assert header(refused, "x-ms-throttle-information") == "CPULimitExceeded"
    h.clock.advance(2)
    blocked = h.call(write=True, crid="x")
    assert header(blocked, "Retry-After") == "1"
    stats = h.traffic.stats()
    assert stats["random_faults"] == {"429": 1}
    assert stats["throttled_429"] == {"blocked": 1, "random": 1}
    assert stats["early_retries"] == 1
    # A load-shedding 429 holds back the refused call only, not its scope.
    h.traffic.configure(FaultProfile())
    assert status(h.call(write=True, crid="y")) == 200
    assert status(h.call(write=True, crid="x")) == 429
    h.clock.advance(1)
    assert status(h.call(write=True, crid="x")) == 200

    h = Harness(FaultProfile(rate_503=1.0, retry_after=(2, 2)))
    unavailable = h.call()
    assert status(unavailable) == 503
    assert header(unavailable, "Retry-After") == "2"
    assert status(h.call()) == 503  # 503s advise, they do not block
    h = Harness(FaultProfile(rate_500=1.0))
    failed = h.call()
    assert status(failed) == 500
    assert failed.fault is not None
    assert "Retry-After" not in failed.fault.headers


def test_retry_after_draws_stay_in_range() -> None:
    outcomes = _outcomes(3, 500, FaultProfile(rate_429=1.0, retry_after=(2, 6)))
    values = {int(r) for _, r in outcomes if r is not None}
    assert values <= {2, 3, 4, 5, 6}
    assert len(values) >= 4


def test_latency_and_jitter_are_seeded() -> None:
    fixed = Harness(FaultProfile(latency_ms=100))
    assert fixed.traffic.latency() == pytest.approx(0.1)
    jittery = [Harness(FaultProfile(latency_ms=100, jitter_ms=20), seed=5) for _ in range(2)]
    draws = [[h.traffic.latency() for _ in range(50)] for h in jittery]
    assert draws[0] == draws[1]
    assert all(0.08 <= d <= 0.12 for d in draws[0])
    assert len(set(draws[0])) > 40
    assert Harness(FaultProfile(latency_ms=5, jitter_ms=50)).traffic.latency() >= 0


def _rolls(h: Harness, n: int) -> list[int]:
    out = []
    for _ in range(n):
        out.append(status(h.call()))
        h.clock.advance(2)
    return out


def test_reset_starts_over() -> None:
    profile = FaultProfile(rate_429=0.5, retry_after=(1, 1))
    h = Harness(profile, seed=9)
    first = _rolls(h, 20)
    h.calls(5, kind="reports")
    h.traffic.reset(profile)
    assert h.traffic.stats()["admitted"] == 0
    again = _rolls(h, 20)
    assert again == first
    h.traffic.reset(FaultProfile())
    assert [status(a) for a in h.calls(5, kind="reports")] == [200] * 5


def test_configure_keeps_state() -> None:
    h = Harness()
    h.calls(5, kind="reports")
    h.traffic.configure(FaultProfile(latency_ms=50))
    assert h.traffic.profile.latency_ms == 50
    assert status(h.call(kind="reports")) == 429


def test_stats_shape() -> None:
    h = Harness(FaultProfile(rate_500=1.0))
    h.call()
    assert h.traffic.stats() == {
        "admitted": 0,
        "throttled_429": {},
        "throttled_429_total": 0,
        "random_faults": {"500": 1},
        "requests_while_blocked": 0,
        "early_retries": 0,
    }


# -- the profile and its spec -------------------------------------------------------------


def test_parse_the_documented_example() -> None:
    profile = FaultProfile.parse(
        "429=0.3,503=0.05,500=0.01,retry-after=1-10,latency=100ms,jitter=20ms,lag=2s,quotas=off"
    )
    assert profile == FaultProfile(
        latency_ms=100,
        jitter_ms=20,
        rate_429=0.3,
        rate_500=0.01,
        rate_503=0.05,
        retry_after=(1, 10),
        replication_lag=2,
        quotas=False,
    )


@pytest.mark.parametrize(
    ("spec", "field", "value"),
    [
        ("latency=150", "latency_ms", 150),
        ("latency=0.2s", "latency_ms", 200),
        ("jitter=5 ms", "jitter_ms", 5),
        ("lag=3", "replication_lag", 3),
        ("lag=500ms", "replication_lag", 0.5),
        ("lag=1m", "replication_lag", 60),
        ("retry-after=4", "retry_after", (4, 4)),
        ("retry_after=1s-2500ms", "retry_after", (1, 2.5)),
        ("429=5%", "rate_429", 0.05),
        ("drop=8%", "rate_drop", 0.08),
        ("reset=0.1", "rate_drop", 0.1),
        ("rate_drop=2%", "rate_drop", 0.02),
        ("drop-before=1%", "rate_drop_before", 0.01),
        ("rate-drop-before=0.3", "rate_drop_before", 0.3),
        ("quotas=on", "quotas", True),
        ("size=l", "size_class", "L"),
        ("size=auto", "size_class", None),
        ("quota-mode=window", "quota_mode", "window"),
        (" 503 = 0.1 , ", "rate_503", 0.1),
        ("", "rate_429", 0),
    ],
)
def test_parse_units_and_aliases(spec: str, field: str, value: Any) -> None:
    assert getattr(FaultProfile.parse(spec), field) == pytest.approx(value)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("404=0.1", "'404=0.1'"),
        ("latency", "'latency'"),
        ("latency=fast", "'latency=fast'"),
        ("429=lots", "'429=lots'"),
        ("quotas=maybe", "'quotas=maybe'"),
        ("retry-after=1-x", "'retry-after=1-x'"),
        ("429=1.5", "rate_429 must be between 0 and 1"),
        ("429=0.6,500=0.6", "add up to more than 1"),
        ("429=0.6,drop=0.5", "add up to more than 1"),
        ("drop=0.6,drop-before=0.6", "add up to more than 1"),
        ("drop=150%", "rate_drop must be between 0 and 1"),
        ("drop=often", "'drop=often'"),
        ("retry-after=5-1", "retry_after"),
        ("size=XL", "size_class"),
        ("quota-mode=sliding", "quota_mode"),
    ],
)
def test_parse_errors_name_the_problem(spec: str, needle: str) -> None:
    with pytest.raises(ValueError, match="bad fault spec") as info:
        FaultProfile.parse(spec)
    assert needle in str(info.value)


def test_parse_errors_list_the_valid_keys() -> None:
    with pytest.raises(ValueError, match="Valid keys: 429, 500, 503, retry-after, latency"):
        FaultProfile.parse("latancy=5")
    with pytest.raises(ValueError, match=r"drop \(or reset\), drop-before"):
        FaultProfile.parse("latancy=5")


def test_dict_round_trip_and_merge() -> None:
    profile = FaultProfile.parse("429=0.1,retry-after=2-4,latency=10,size=M")
    data = profile.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["retry_after"] == [2, 4]
    assert FaultProfile.from_dict(data) == profile
    merged = profile.merged({"rate_503": 0.2, "quotas": False})
    assert (merged.rate_429, merged.rate_503, merged.quotas) == (0.1, 0.2, False)
    assert profile.merged({"retry_after": 3}).retry_after == (3, 3)
    assert profile.merged({"size_class": None}).size_class is None
    assert profile.with_latency(250).latency_ms == 250
    dropping = FaultProfile.parse("drop=5%,drop-before=1%")
    data = dropping.to_dict()
    assert (data["rate_drop"], data["rate_drop_before"]) == (0.05, 0.01)
    assert FaultProfile.from_dict(data) == dropping
    assert dropping.merged({"rate_drop": 0}).rate_drop == 0


@pytest.mark.parametrize(
    "change",
    [
        {"rate_4xx": 0.1},
        {"rate_429": "high"},
        {"rate_429": True},
        {"quotas": "off"},
        {"retry_after": [1, 2, 3]},
        {"retry_after": ["1", "2"]},
        {"size_class": 3},
        {"quota_mode": 1},
        {"latency_ms": -1},
        {"rate_drop": "often"},
        {"rate_drop": 1.5},
        {"rate_drop": 0.5, "rate_429": 0.6},
        {"rate_drop_before": -0.1},
    ],
)
def test_merge_refuses_bad_settings(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FaultProfile().merged(change)


# -- through the emulator -----------------------------------------------------------------


def test_emulator_answers_throttled_calls_with_graphs_envelope() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile(rate_429=1.0, retry_after=(4, 4)))
    tenant = emu.tenant("contoso")
    client = next(iter(tenant.clients.values()))
    token, _ = emu.issue_token(tenant, client)
    request = EmuRequest(
        "GET",
        "https://graph.microsoft.com/v1.0/policies/crossTenantAccessPolicy/default",
        {"authorization": f"Bearer {token}", "client-request-id": "abc"},
    )
    response = emu.handle(request)
    assert response.status == 429
    assert response.headers["Retry-After"] == "4"
    assert response.headers["x-ms-throttle-scope"].startswith("Tenant_Application/Read/")
    error = response.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["innerError"]["client-request-id"] == "abc"
    emu.traffic.configure(FaultProfile())
    emu.clock.advance(3)
    assert emu.handle(request).status == 429
    emu.clock.advance(1)
    ok = emu.handle(request)
    assert ok.status == 200
    assert ok.headers["x-ms-resource-unit"] == "1"
    assert emu.traffic.stats()["early_retries"] == 1


# -- dropped connections --------------------------------------------------------------------

PARTNERS_URL = "https://graph.microsoft.com/v1.0/policies/crossTenantAccessPolicy/partners"


def _graph(emu: Emulator, tenant: str = "contoso") -> httpx.Client:
    token = EmulatorCredential(emu, tenant).get_token("https://graph.microsoft.com/.default")
    return httpx.Client(
        transport=EmulatorTransport(emu), headers={"authorization": f"Bearer {token.token}"}
    )


def _partner_id(emu: Emulator) -> str:
    return emu.tenant("fabrikam").id


def test_drop_decisions_are_seeded_and_follow_the_rates() -> None:
    profile = FaultProfile(rate_drop=0.2, rate_drop_before=0.1)

    def decisions(seed: int) -> list[str | None]:
        traffic = Harness(profile, seed=seed).traffic
        return [traffic.drop() for _ in range(5_000)]

    first = decisions(4)
    assert first == decisions(4)
    assert first != decisions(5)
    counts = Counter(first)
    assert 900 <= counts["after"] <= 1_100
    assert 420 <= counts["before"] <= 580
    traffic = Harness(profile, seed=4).traffic
    [traffic.drop() for _ in range(10)]
    assert traffic.stats()["random_faults"] == {
        "drop": first[:10].count("after"),
        "drop_before": first[:10].count("before"),
    }


def test_a_profile_without_drops_draws_no_numbers() -> None:
    traffic = Harness(FaultProfile(rate_429=0.5), seed=3).traffic
    state = traffic._rng.getstate()
    assert traffic.drop() is None
    assert traffic._rng.getstate() == state


def test_a_dropped_call_is_processed_and_its_answer_lost() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile.parse("drop=100%"))
    partner = _partner_id(emu)
    with _graph(emu) as graph:
        with pytest.raises(httpx.RemoteProtocolError) as info:
            graph.post(PARTNERS_URL, json={"tenantId": partner})
        assert info.value.request.method == "POST"
        # A 204 is lost the same way: the change happened, the client cannot know.
        with pytest.raises(httpx.RemoteProtocolError):
            graph.patch(f"{PARTNERS_URL}/{partner}", json={"inboundTrust": {"isMfaAccepted": True}})
        emu.traffic.configure(FaultProfile())
        stored = graph.get(f"{PARTNERS_URL}/{partner}")
        assert stored.status_code == 200
        assert stored.json()["inboundTrust"]["isMfaAccepted"] is True
        # The retry a client makes after a lost answer meets the object it created.
        assert graph.post(PARTNERS_URL, json={"tenantId": partner}).status_code == 409
    stats = emu.traffic.stats()
    assert stats["random_faults"] == {"drop": 2}
    assert emu.stats["requests"] == 4


def test_a_dropped_call_through_an_async_client() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile(rate_drop=1.0, latency_ms=30))
    token = EmulatorCredential(emu, "contoso").get_token("https://graph.microsoft.com/.default")
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def run() -> None:
        transport = EmulatorTransport(emu, async_sleep=sleep)
        headers = {"authorization": f"Bearer {token.token}"}
        async with httpx.AsyncClient(transport=transport, headers=headers) as graph:
            with pytest.raises(httpx.RemoteProtocolError):
                await graph.post(PARTNERS_URL, json={"tenantId": _partner_id(emu)})

    asyncio.run(run())
    assert slept == [pytest.approx(0.03)]  # the client waited, then lost the answer
    assert _partner_id(emu) in emu.tenant("contoso").access_policy.partners


def test_a_batch_is_dropped_whole_after_every_inner_request_ran() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile(rate_drop=1.0))
    partners = [emu.tenant("fabrikam").id, emu.tenant("tailspin").id]
    requests = [
        {
            "id": str(i),
            "method": "POST",
            "url": "/policies/crossTenantAccessPolicy/partners",
            "headers": {"content-type": "application/json"},
            "body": {"tenantId": tenant_id},
        }
        for i, tenant_id in enumerate(partners)
    ]
    with _graph(emu) as graph, pytest.raises(httpx.RemoteProtocolError):
        graph.post("https://graph.microsoft.com/v1.0/$batch", json={"requests": requests})
    assert sorted(emu.tenant("contoso").access_policy.partners) == sorted(partners)
    assert emu.traffic.stats()["random_faults"] == {"drop": 1}


def test_a_call_dropped_before_the_service_changes_nothing() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile.parse("drop-before=100%"))
    with _graph(emu) as graph:
        with pytest.raises(httpx.RemoteProtocolError):
            graph.post(PARTNERS_URL, json={"tenantId": _partner_id(emu)})
        assert emu.tenant("contoso").access_policy.partners == {}
        assert emu.stats["requests"] == 0
        assert emu.traffic.stats()["random_faults"] == {"drop_before": 1}
        emu.traffic.configure(FaultProfile())
        assert graph.post(PARTNERS_URL, json={"tenantId": _partner_id(emu)}).status_code == 201


def test_only_graph_calls_are_dropped() -> None:
    emu = Emulator(scenario="demo", faults=FaultProfile(rate_drop=1.0))
    tenant = emu.tenant("contoso")
    client = next(iter(tenant.clients.values()))
    with httpx.Client(transport=EmulatorTransport(emu)) as http:
        token = http.post(
            f"https://login.microsoftonline.com/{tenant.id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        assert token.status_code == 200
        state = http.get("https://graph.microsoft.com/_emulator/state").json()
        assert state["faults"]["rate_drop"] == 1.0
        head = http.head(
            f"{PARTNERS_URL}/{_partner_id(emu)}",
            headers={"authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert head.status_code == 405  # HEAD is never dropped: its headers are the answer
    assert emu.traffic.stats()["random_faults"] == {}


def test_the_same_seed_drops_the_same_calls() -> None:
    def outcomes(seed: int) -> list[int | str]:
        emu = Emulator(scenario="demo", seed=seed, faults=FaultProfile(rate_drop=0.3))
        out: list[int | str] = []
        with _graph(emu) as graph:
            for _ in range(60):
                try:
                    out.append(graph.get(PARTNERS_URL).status_code)
                except httpx.RemoteProtocolError:
                    out.append("dropped")
        return out

    first = outcomes(1)
    assert first == outcomes(1)
    assert 5 <= first.count("dropped") <= 35
    assert set(first) == {200, "dropped"}
