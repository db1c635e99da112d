"""Planning compares live settings with the config's as values: the order in which Graph
happens to list an object's keys is no change (no step, no write), a different value is."""

from __future__ import annotations

from typing import Any

from ctsync.engine.desired import PartnerWant
from ctsync.engine.live import LiveTenant
from ctsync.engine.plan import _default_steps, _partner_steps

PARTNER_ID = "2e2a5c51-0b39-4c1b-9c3b-7a5f1f0c2d11"
#: The config's inbound trust, keys in the order ctsync writes them...
WANTED_TRUST = {
    "isMfaAccepted": True,
    "isCompliantDeviceAccepted": False,
    "isHybridAzureADJoinedDeviceAccepted": False,
}
#: ...and as Graph answers it: the same values, the keys in another order.
LIVE_TRUST = {
    "isHybridAzureADJoinedDeviceAccepted": False,
    "isCompliantDeviceAccepted": False,
    "isMfaAccepted": True,
}
CONSENT = "automaticUserConsentSettings.inboundAllowed"


def _want() -> PartnerWant:
    want = PartnerWant(tenant="fabrikam", partner="contoso", partner_id=PARTNER_ID)
    want.want("inboundTrust", dict(WANTED_TRUST), "contoso:fabrikam")
    want.want(CONSENT, True, "contoso:fabrikam")
    return want


def _live_partner(trust: dict[str, Any]) -> LiveTenant:
    partner = {
        "tenantId": PARTNER_ID,
        "inboundTrust": trust,
        "automaticUserConsentSettings": {"inboundAllowed": True},
    }
    return LiveTenant(name="fabrikam", partners={PARTNER_ID: partner})


def test_the_order_of_a_partner_settings_keys_is_no_change() -> None:
    assert list(LIVE_TRUST) != list(WANTED_TRUST)
    steps, notes = _partner_steps(_want(), _live_partner(LIVE_TRUST), managed=True)
    assert steps == []
    assert notes == []


def test_a_different_partner_setting_value_is_a_change() -> None:
    live_trust = {**LIVE_TRUST, "isMfaAccepted": False}
    steps, _ = _partner_steps(_want(), _live_partner(live_trust), managed=True)
    [step] = steps
    assert step.action == "update"
    assert [(c.field, c.old, c.new) for c in step.changes] == [
        ("inboundTrust", live_trust, WANTED_TRUST)
    ]
    assert step.params["patch"] == {"inboundTrust": WANTED_TRUST}


def test_the_order_of_default_settings_keys_is_no_change() -> None:
    members = {"inboundTrust": dict(WANTED_TRUST)}
    live = LiveTenant(name="fabrikam", default={"inboundTrust": dict(LIVE_TRUST)})
    assert _default_steps("fabrikam", members, live, managed=True) == ([], [])

    live.default = {"inboundTrust": {**LIVE_TRUST, "isCompliantDeviceAccepted": True}}
    [step], _ = _default_steps("fabrikam", members, live, managed=True)
    assert [c.field for c in step.changes] == ["inboundTrust"]
    assert step.params["patch"] == {"inboundTrust": WANTED_TRUST}
