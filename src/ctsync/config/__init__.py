"""The desired state: ctsync's YAML config, validated, with templates and topologies resolved.

```python
from ctsync.config import load

state = load("ctsync.yaml")          # ConfigError("ctsync.yaml:12:7: ...") if anything is wrong
for link in state.links:
    print(link.key, link.sync.flow_types)
```

docs/config.md is the reference for the file; :func:`json_schema` gives editors completion.
"""

from __future__ import annotations

from ._init import init_example, init_from_emulator
from ._load import load, loads
from ._schema import json_schema
from ._state import (
    AccessSettings,
    AttributeSource,
    AuthRef,
    DefaultAccessSettings,
    DesiredState,
    InboundTrust,
    LinkSpec,
    MappingSpec,
    OrganizationSpec,
    Principal,
    Rollout,
    ScopeClause,
    ScopeGroup,
    SecretRef,
    SyncSettings,
    TenantSpec,
)
from ._write import merge_links, set_tenant_keys

__all__ = [
    "AccessSettings",
    "AttributeSource",
    "AuthRef",
    "DefaultAccessSettings",
    "DesiredState",
    "InboundTrust",
    "LinkSpec",
    "MappingSpec",
    "OrganizationSpec",
    "Principal",
    "Rollout",
    "ScopeClause",
    "ScopeGroup",
    "SecretRef",
    "SyncSettings",
    "TenantSpec",
    "init_example",
    "init_from_emulator",
    "json_schema",
    "load",
    "loads",
    "merge_links",
    "set_tenant_keys",
]
