"""Masking secrets in request bodies before they reach logs, observers or the audit trail."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["REDACTED", "redact"]

REDACTED: Final = "***"

# Key names (lower-cased, without '_' and '-') whose string values are secrets.
_SECRET_KEY = re.compile(
    r"secret|password|passwd|token|assertion|privatekey|connectionstring|apikey|^authorization$"
)

# In synchronization secrets (PUT .../synchronization/secrets, validateCredentials) every
# value is masked unless its key is known to hold configuration rather than a credential.
_PUBLIC_SYNC_KEYS: Final = frozenset(
    {
        "applicationtemplateidentifier",
        "authenticationtype",
        "baseaddress",
        "companyid",
        "domain",
        "enforcedomain",
        "harddeletesenabled",
        "instancename",
        "performinboundentitlementgrants",
        "sandbox",
        "sandboxname",
        "server",
        "singlesignontype",
        "skipoutofscopedeletions",
        "syncall",
        "syncnotificationsettings",
        "synchronizationschedule",
        "systemofrecord",
        "testreferences",
        "updatekeyonsoftdelete",
        "url",
        "validatedomain",
    }
)
_SYNC_SECRET_PATHS = re.compile(r"/synchronization/(secrets|jobs(/[^/]+)?/validatecredentials)$")


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def redact(value: Any, *, path: str | None = None) -> Any:
    """A copy of a JSON-like ``value`` with secret values replaced by ``***``.

    Masks string values under keys that look secret (``client_secret``, ``secretToken``,
    ``password``, ``passwordProfile.password``, ``accessToken``...), the ``value`` of
    ``{"key", "value"}`` pairs whose key looks secret, and, for ``path`` ending in
    ``/synchronization/secrets`` or ``validateCredentials``, every pair's value except known
    configuration keys (``AuthenticationType``, ``CompanyId``, ``SyncAll``...).
    """
    strict = bool(path) and bool(_SYNC_SECRET_PATHS.search(_path_only(path or "").lower()))
    return _redact(value, strict=strict)


def _path_only(path: str) -> str:
    return path.split("?", 1)[0].rstrip("/")


def _redact(value: Any, *, strict: bool) -> Any:
    if isinstance(value, Mapping):
        if _is_key_value_pair(value):
            return _redact_pair(value, strict=strict)
        return {
            k: REDACTED
            if isinstance(v, str) and _SECRET_KEY.search(_norm(str(k)))
            else _redact(v, strict=strict)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, strict=strict) for v in value]
    return value


def _is_key_value_pair(value: Mapping[Any, Any]) -> bool:
    return "key" in value and "value" in value and isinstance(value.get("key"), str)


def _redact_pair(pair: Mapping[Any, Any], *, strict: bool) -> dict[Any, Any]:
    key = _norm(pair["key"])
    secret = _SECRET_KEY.search(key) is not None or (strict and key not in _PUBLIC_SYNC_KEYS)
    out = {k: _redact(v, strict=strict) for k, v in pair.items() if k != "value"}
    out["value"] = REDACTED if secret and pair["value"] is not None else pair["value"]
    return out
