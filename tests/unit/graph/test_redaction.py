from __future__ import annotations

import copy

from ctsync.graph import redact

SECRETS_PATH = "/servicePrincipals/sp/synchronization/secrets"


def test_secret_looking_keys_are_masked_at_any_depth() -> None:
    body = {
        "displayName": "app",
        "client_secret": "s1",
        "secretToken": "s2",
        "passwordProfile": {"password": "s3", "forceChangePasswordNextSignIn": True},
        "passwordCredentials": [{"displayName": "k", "secretText": "s4"}],
        "nested": {"deeper": [{"accessToken": "s5", "refresh_token": "s6"}]},
        "inboundTrust": {"isMfaAccepted": True},
    }
    original = copy.deepcopy(body)
    assert redact(body) == {
        "displayName": "app",
        "client_secret": "***",
        "secretToken": "***",
        "passwordProfile": {"password": "***", "forceChangePasswordNextSignIn": True},
        "passwordCredentials": [{"displayName": "k", "secretText": "***"}],
        "nested": {"deeper": [{"accessToken": "***", "refresh_token": "***"}]},
        "inboundTrust": {"isMfaAccepted": True},
    }
    assert body == original


def test_synchronization_secrets_mask_every_value_but_known_settings() -> None:
    body = {
        "value": [
            {"key": "AuthenticationType", "value": "SyncPolicy"},
            {"key": "CompanyId", "value": "tenant-b"},
            {"key": "SyncAll", "value": "false"},
            {"key": "SecretToken", "value": "s1"},
            {"key": "UserName", "value": "admin@example.com"},
            {"key": "SomethingNew", "value": "s2"},
        ]
    }
    masked = redact(body, path=SECRETS_PATH)
    assert [pair["value"] for pair in masked["value"]] == [
        "SyncPolicy",
        "tenant-b",
        "false",
        "***",
        "***",
        "***",
    ]
    validate = redact(
        {"credentials": body["value"]},
        path="/servicePrincipals/sp/synchronization/jobs/validateCredentials",
    )
    assert [p["value"] for p in validate["credentials"]][3:] == ["***", "***", "***"]


def test_key_value_pairs_elsewhere_mask_only_secret_keys() -> None:
    body = {"value": [{"key": "ClientSecret", "value": "s"}, {"key": "CompanyId", "value": "t"}]}
    assert redact(body, path="/somewhere/else") == {
        "value": [{"key": "ClientSecret", "value": "***"}, {"key": "CompanyId", "value": "t"}]
    }


def test_non_containers_pass_through() -> None:
    assert redact(None) is None
    assert redact("text") == "text"
    assert redact([1, {"password": None}]) == [1, {"password": None}]
