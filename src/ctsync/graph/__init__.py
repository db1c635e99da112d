"""Microsoft Graph for ctsync: clients, clouds, credentials, retries, pacing, batching, models.

Only ``_http`` imports httpx and only ``credentials`` imports azure.identity (lazily), so
importing this package stays cheap.
"""

from __future__ import annotations

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
