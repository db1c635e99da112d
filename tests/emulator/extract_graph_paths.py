"""Rebuild ``src/ctsync/emulator/core/graph_v1_paths.json`` from Microsoft's v1.0 metadata.

    git clone https://github.com/microsoftgraph/msgraph-metadata
    python tests/emulator/extract_graph_paths.py \
        msgraph-metadata/clean_v10_metadata/cleanMetadata.xml <commit> \
        > src/ctsync/emulator/core/graph_v1_paths.json

What the emulator needs to tell a path Graph does not have (``400 BadRequest`` "Resource not
found for the segment '…'.") from a Graph path it does not serve (``501``): every entity set
and singleton of the ``GraphService`` container, and for the types on the routes the emulator
serves (plus their base types) the names a segment after one of them may take — structural
and navigation properties, and bound actions and functions (on the type and on a collection
of it). Not a test (the name does not start with ``test_``): run by hand when the metadata
moves on.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from typing import Any

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"

#: The types on the routes the emulator serves. Base types are added; navigation targets
#: outside this list are recorded but not described (the path check stops there).
SERVED_TYPES = [
    "user",
    "group",
    "organization",
    "application",
    "servicePrincipal",
    "applicationTemplate",
    "appRoleAssignment",
    "directoryObject",
    "policyRoot",
    "crossTenantAccessPolicy",
    "crossTenantAccessPolicyConfigurationDefault",
    "crossTenantAccessPolicyConfigurationPartner",
    "crossTenantIdentitySyncPolicyPartner",
    "authorizationPolicy",
    "tenantRelationship",
    "multiTenantOrganization",
    "multiTenantOrganizationMember",
    "multiTenantOrganizationJoinRequestRecord",
    "policyTemplate",
    "multiTenantOrganizationPartnerConfigurationTemplate",
    "multiTenantOrganizationIdentitySyncPolicyTemplate",
    "identityContainer",
    "conditionalAccessRoot",
    "conditionalAccessPolicy",
    "reportRoot",
    "authenticationMethodsRoot",
    "userRegistrationDetails",
    "auditLogRoot",
    "provisioningObjectSummary",
    "authentication",
    "authenticationMethod",
    "phoneAuthenticationMethod",
    "synchronization",
    "synchronizationJob",
    "synchronizationSchema",
    "synchronizationTemplate",
]


def _short(name: str) -> str:
    for prefix in ("microsoft.graph.", "graph."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _target(type_ref: str) -> tuple[str, bool]:
    if type_ref.startswith("Collection(") and type_ref.endswith(")"):
        return _short(type_ref[len("Collection(") : -1]), True
    return _short(type_ref), False


def extract(path: str, commit: str) -> dict[str, Any]:
    root = ET.parse(path).getroot()
    schema = next(s for s in root.iter(f"{EDM}Schema") if s.get("Namespace") == "microsoft.graph")
    entity_types = {t.get("Name"): t for t in schema.findall(f"{EDM}EntityType")}
    bound: dict[tuple[str, bool], set[str]] = {}
    for kind in ("Action", "Function"):
        for op in schema.findall(f"{EDM}{kind}"):
            if op.get("IsBound") != "true":
                continue
            first = op.find(f"{EDM}Parameter")
            if first is None:
                continue
            bound.setdefault(_target(first.get("Type", "")), set()).add(op.get("Name", ""))

    wanted: list[str] = []
    for served in SERVED_TYPES:
        name = served
        while name and name not in wanted:
            wanted.append(name)
            base = entity_types[name].get("BaseType")
            name = _short(base) if base else ""

    types: dict[str, Any] = {}
    for name in sorted(wanted):
        element = entity_types[name]
        base = element.get("BaseType")
        types[name] = {
            "base": _short(base) if base else None,
            "properties": sorted(p.get("Name", "") for p in element.findall(f"{EDM}Property")),
            "navigation": {
                n.get("Name", ""): list(_target(n.get("Type", "")))
                for n in element.findall(f"{EDM}NavigationProperty")
            },
            "operations": sorted(bound.get((name, False), set())),
            "collectionOperations": sorted(bound.get((name, True), set())),
        }
    container = schema.find(f"{EDM}EntityContainer")
    assert container is not None
    roots: dict[str, list[Any]] = {}
    for entity_set in container.findall(f"{EDM}EntitySet"):
        roots[entity_set.get("Name", "")] = [_short(entity_set.get("EntityType", "")), True]
    for singleton in container.findall(f"{EDM}Singleton"):
        roots[singleton.get("Name", "")] = [_short(singleton.get("Type", "")), False]
    imports = [i.get("Name") for i in container if i.tag.endswith("Import")]
    return {
        "source": (
            "microsoftgraph/msgraph-metadata clean_v10_metadata/cleanMetadata.xml at commit "
            f"{commit}"
        ),
        "notes": (
            "roots: every EntitySet (collection true) and Singleton of the GraphService "
            "container, name -> [entity type, collection]. types: the entity types on the "
            "emulator's routes and their base types: structural property names, navigation "
            "properties (name -> [target type, collection]), bound actions and functions "
            "(operations: bound to the type; collectionOperations: bound to a collection of "
            "it). Produced by tests/emulator/extract_graph_paths.py."
        ),
        "imports": imports,
        "roots": dict(sorted(roots.items())),
        "types": types,
    }


if __name__ == "__main__":
    document = extract(sys.argv[1], sys.argv[2])
    json.dump(document, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
