"""Microsoft Graph for ctsync: clients, clouds, credentials, retries, pacing, batching, models.

Only ``_http`` imports httpx and only ``credentials`` imports azure.identity (lazily); the
package's names are imported on first use, so importing it, or one of its modules, stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._http import HttpTransport
    from .batch import BatchRequest, BatchResult, plan_batches, raise_for_item
    from .client import ClientStats, GraphClient, GraphResponse, WriteIntent, WriteRecord
    from .clock import Clock, SystemClock, VirtualClock
    from .clouds import CLOUDS, Cloud, resolve_cloud
    from .credentials import (
        AUTH_METHODS,
        AccessTokenLike,
        AsyncTokenCredentialLike,
        AuthSpec,
        SafeCredential,
        TokenCredentialLike,
        build_credential,
    )
    from .models import (
        CrossTenantAccessPolicyB2BSetting,
        CrossTenantAccessPolicyConfigurationDefault,
        CrossTenantAccessPolicyConfigurationPartner,
        CrossTenantAccessPolicyInboundTrust,
        CrossTenantAccessPolicyTarget,
        CrossTenantAccessPolicyTargetConfiguration,
        CrossTenantAccessPolicyTenantRestrictions,
        CrossTenantIdentitySyncPolicyPartner,
        CrossTenantUserSyncInbound,
        GraphModel,
        InboundOutboundPolicyConfiguration,
        TenantInformation,
    )
    from .pacing import Cost, Pacer, Quota, Quotas, TokenBucket, estimate_cost
    from .policy import CrossTenantAccessPolicyApi
    from .redaction import redact
    from .retry import RetryPolicy, parse_retry_after

#: Where each public name lives: imported on first use (PEP 562), so ``import ctsync.graph.clouds``
#: — what the config needs — does not pull in httpx, pydantic models or the pacer.
_LAZY: dict[str, str] = {
    "AUTH_METHODS": ".credentials",
    "AccessTokenLike": ".credentials",
    "AsyncTokenCredentialLike": ".credentials",
    "AuthSpec": ".credentials",
    "BatchRequest": ".batch",
    "BatchResult": ".batch",
    "CLOUDS": ".clouds",
    "ClientStats": ".client",
    "Clock": ".clock",
    "Cloud": ".clouds",
    "Cost": ".pacing",
    "CrossTenantAccessPolicyApi": ".policy",
    "CrossTenantAccessPolicyB2BSetting": ".models",
    "CrossTenantAccessPolicyConfigurationDefault": ".models",
    "CrossTenantAccessPolicyConfigurationPartner": ".models",
    "CrossTenantAccessPolicyInboundTrust": ".models",
    "CrossTenantAccessPolicyTarget": ".models",
    "CrossTenantAccessPolicyTargetConfiguration": ".models",
    "CrossTenantAccessPolicyTenantRestrictions": ".models",
    "CrossTenantIdentitySyncPolicyPartner": ".models",
    "CrossTenantUserSyncInbound": ".models",
    "GraphClient": ".client",
    "GraphModel": ".models",
    "GraphResponse": ".client",
    "HttpTransport": "._http",
    "InboundOutboundPolicyConfiguration": ".models",
    "Pacer": ".pacing",
    "Quota": ".pacing",
    "Quotas": ".pacing",
    "RetryPolicy": ".retry",
    "SafeCredential": ".credentials",
    "SystemClock": ".clock",
    "TenantInformation": ".models",
    "TokenBucket": ".pacing",
    "TokenCredentialLike": ".credentials",
    "VirtualClock": ".clock",
    "WriteIntent": ".client",
    "WriteRecord": ".client",
    "build_credential": ".credentials",
    "estimate_cost": ".pacing",
    "parse_retry_after": ".retry",
    "plan_batches": ".batch",
    "raise_for_item": ".batch",
    "redact": ".redaction",
    "resolve_cloud": ".clouds",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AUTH_METHODS",
    "CLOUDS",
    "AccessTokenLike",
    "AsyncTokenCredentialLike",
    "AuthSpec",
    "BatchRequest",
    "BatchResult",
    "ClientStats",
    "Clock",
    "Cloud",
    "Cost",
    "CrossTenantAccessPolicyApi",
    "CrossTenantAccessPolicyB2BSetting",
    "CrossTenantAccessPolicyConfigurationDefault",
    "CrossTenantAccessPolicyConfigurationPartner",
    "CrossTenantAccessPolicyInboundTrust",
    "CrossTenantAccessPolicyTarget",
    "CrossTenantAccessPolicyTargetConfiguration",
    "CrossTenantAccessPolicyTenantRestrictions",
    "CrossTenantIdentitySyncPolicyPartner",
    "CrossTenantUserSyncInbound",
    "GraphClient",
    "GraphModel",
    "GraphResponse",
    "HttpTransport",
    "InboundOutboundPolicyConfiguration",
    "Pacer",
    "Quota",
    "Quotas",
    "RetryPolicy",
    "SafeCredential",
    "SystemClock",
    "TenantInformation",
    "TokenBucket",
    "TokenCredentialLike",
    "VirtualClock",
    "WriteIntent",
    "WriteRecord",
    "build_credential",
    "estimate_cost",
    "parse_retry_after",
    "plan_batches",
    "raise_for_item",
    "redact",
    "resolve_cloud",
]
