"""The ``Azure2Azure`` synchronization template: what a fresh cross-tenant sync job looks like.

Everything here is data, built per call so a caller may change what it gets. Sources:
``cts-defaults.md`` §1 (schema), §1.5 (new job), §2.1 (operators), §2.2 (functions), §5 (job
status); reference §1.2 S8 and S13a. Reconstructions are listed in ``docs/emulator.md``
(section "Synchronization").
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CTS_TEMPLATE_ID",
    "FILTER_OPERATORS",
    "MATCHING_ATTRIBUTE",
    "NEVER",
    "SOURCE_DIRECTORY",
    "TARGET_DIRECTORY",
    "TEMPLATE_ID",
    "USER_MAPPING_NAME",
    "USER_RULE_NAME",
    "attribute_mapping",
    "attribute_source",
    "constant_source",
    "default_schema",
    "filter_operators",
    "functions",
    "job_id",
    "new_job",
    "not_run_execution",
    "template",
]

#: The gallery template that instantiates a cross-tenant synchronization configuration app.
CTS_TEMPLATE_ID = "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7"
#: The synchronization template of that app, and its only one.
TEMPLATE_ID = "Azure2Azure"
USER_RULE_NAME = "USER_INBOUND_USER"
SOURCE_DIRECTORY = "Azure Active Directory"
TARGET_DIRECTORY = "Azure Active Directory (target tenant)"
USER_MAPPING_NAME = "Provision Azure Active Directory Users"
GROUP_MAPPING_NAME = "Provision Azure Active Directory Groups"
#: The one matching attribute of CTS; it cannot be changed (cts-defaults §1.2 row 1).
MATCHING_ATTRIBUTE = "alternativeSecurityIds"
#: How Graph writes "never happened" in non-nullable timestamps.
NEVER = "0001-01-01T00:00:00Z"


def job_id(tenant_id: str, app_id: str) -> str:
    """``Azure2Azure.<tenant id without dashes>.<the sync app's appId>`` (cts-defaults §1.1)."""
    return f"{TEMPLATE_ID}.{tenant_id.replace('-', '').lower()}.{app_id}"


# -- jobs ------------------------------------------------------------------------------------


def new_job(job: str) -> dict[str, Any]:
    """A job right after ``POST jobs``: paused, schedule disabled, 40-minute interval (S8)."""
    return {
        "id": job,
        "templateId": TEMPLATE_ID,
        "schedule": {"expiration": None, "interval": "PT40M", "state": "Disabled"},
        "status": {
            "countSuccessiveCompleteFailures": 0,
            "escrowsPruned": False,
            "code": "Paused",
            "lastExecution": None,
            "lastSuccessfulExecution": None,
            "lastSuccessfulExecutionWithExports": None,
            "quarantine": None,
            "steadyStateFirstAchievedTime": NEVER,
            "steadyStateLastAchievedTime": NEVER,
            "troubleshootingUrl": None,
            "progress": [],
            "synchronizedEntryCountByType": [],
        },
        "synchronizationJobSettings": [
            {"name": "AzureIngestionAttributeOptimization", "value": "False"},
            {"name": "LookaheadQueryEnabled", "value": "False"},
        ],
    }


def not_run_execution() -> dict[str, Any]:
    """The placeholder ``lastExecution`` a started job shows before its first cycle (S13a).

    "Failed" with error code "None" is how the service says "nothing ran yet".
    """
    counts = (
        "countEntitled",
        "countEntitledForProvisioning",
        "countEscrowed",
        "countEscrowedRaw",
        "countExported",
        "countExports",
        "countImported",
        "countImportedDeltas",
        "countImportedReferenceDeltas",
    )
    return {
        "activityIdentifier": None,
        **dict.fromkeys(counts, 0),
        "error": {"code": "None", "message": "", "tenantActionable": False},
        "state": "Failed",
        "timeBegan": NEVER,
        "timeEnded": NEVER,
    }


# -- schema ----------------------------------------------------------------------------------


def _attribute_source(name: str) -> dict[str, Any]:
    return {"type": "Attribute", "name": name, "expression": f"[{name}]", "parameters": []}


def attribute_source(name: str) -> dict[str, Any]:
    """An ``attributeMappingSource`` reading source attribute ``name`` (``[name]``)."""
    return _attribute_source(name)


def constant_source(value: str) -> dict[str, Any]:
    """An ``attributeMappingSource`` for the constant ``value``, as the portal saves one."""
    return {"type": "Constant", "name": value, "expression": f'"{value}"', "parameters": []}


def attribute_mapping(
    target: str,
    source: dict[str, Any],
    *,
    flow_type: str = "Always",
    matching: int = 0,
) -> dict[str, Any]:
    """An ``attributeMapping`` with the defaults every mapping of the template carries."""
    return {
        "targetAttributeName": target,
        "source": source,
        "defaultValue": None,
        "exportMissingReferences": False,
        "flowBehavior": "FlowWhenChanged",
        "flowType": flow_type,
        "matchingPriority": matching,
    }


_mapping = attribute_mapping


def _direct(name: str) -> dict[str, Any]:
    return _mapping(name, _attribute_source(name))


def _constant(target: str, value: str, *, flow_type: str = "Always") -> dict[str, Any]:
    return _mapping(target, constant_source(value), flow_type=flow_type)


#: Attributes mapped one to one, in the portal's order (cts-defaults §1.2 rows 2-18, 20).
_DIRECT_BEFORE_CONSTANTS = (
    "IsSoftDeleted",
    "accountEnabled",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
    "department",
    "employeeId",
    "displayName",
    "givenName",
    "mailNickname",
    "jobTitle",
    "mobile",
    "preferredLanguage",
    "surname",
    "telephoneNumber",
    "userPrincipalName",
)


def _user_mappings() -> list[dict[str, Any]]:
    alt_sec_id = {
        "type": "Function",
        "name": "AltSecIdFromNetId",
        "expression": "AltSecIdFromNetId([netId])",
        "parameters": [{"key": "source", "value": _attribute_source("netId")}],
    }
    mappings = [_mapping(MATCHING_ATTRIBUTE, alt_sec_id, matching=1)]
    mappings.extend(_direct(name) for name in _DIRECT_BEFORE_CONSTANTS)
    mappings.append(_constant("showInAddressList", "true"))
    mappings.append(_direct("mail"))
    # Only on creation: an existing B2B user keeps its userType (cts-defaults §1.2 row 21).
    mappings.append(_constant("userType", "Member", flow_type="ObjectAddOnly"))
    mappings.append(_direct("manager"))
    return mappings


def _clause(attribute: str, operator: str, *values: str) -> dict[str, Any]:
    return {
        "sourceOperandName": attribute,
        "operatorName": operator,
        "targetOperand": {"values": list(values)},
    }


def _user_scope() -> dict[str, Any]:
    # The built-in input filter (cts-defaults §1.4): it skips external users, users with SMS
    # sign-in and invite-pending users without ever deprovisioning them.
    return {
        "groups": [],
        "categoryFilterGroups": [],
        "inputFilterGroups": [
            {
                "name": "Filter external users",
                "clauses": [
                    _clause(MATCHING_ATTRIBUTE, "EQUALS", "None"),
                    _clause("userState", "NOT EQUALS", "PendingAcceptance"),
                ],
            }
        ],
    }


def _user_mapping() -> dict[str, Any]:
    return {
        "name": USER_MAPPING_NAME,
        "enabled": True,
        "flowTypes": "Add, Update, Delete",
        "sourceObjectName": "User",
        "targetObjectName": "User",
        "metadata": [],
        "scope": _user_scope(),
        "attributeMappings": _user_mappings(),
    }


def _group_mapping() -> dict[str, Any]:
    # Group provisioning is a preview feature and off by default; its mappings are a
    # reconstruction (docs/emulator.md), matching on the same cross-tenant identifier.
    alt_sec_id = {
        "type": "Function",
        "name": "AltSecIdFromNetId",
        "expression": "AltSecIdFromNetId([netId])",
        "parameters": [{"key": "source", "value": _attribute_source("netId")}],
    }
    return {
        "name": GROUP_MAPPING_NAME,
        "enabled": False,
        "flowTypes": "Add, Update, Delete",
        "sourceObjectName": "Group",
        "targetObjectName": "Group",
        "metadata": [],
        "scope": None,
        "attributeMappings": [
            _mapping(MATCHING_ATTRIBUTE, alt_sec_id, matching=1),
            _direct("displayName"),
            _direct("description"),
            _direct("mailNickname"),
            _direct("members"),
        ],
    }


def _attribute(
    name: str,
    type_: str = "String",
    *,
    anchor: bool = False,
    multivalued: bool = False,
    referenced: str | None = None,
) -> dict[str, Any]:
    return {
        "anchor": anchor,
        "apiExpressions": [],
        "caseExact": False,
        "defaultValue": None,
        "flowNullValues": False,
        "metadata": [],
        "multivalued": multivalued,
        "mutability": "ReadWrite",
        "name": name,
        "referencedObjects": (
            [{"referencedObjectName": referenced, "referencedProperty": None}] if referenced else []
        ),
        "required": False,
        "type": type_,
    }


def _user_attributes(*, target: bool) -> list[dict[str, Any]]:
    attrs = [
        _attribute("objectId", anchor=True),
        _attribute(MATCHING_ATTRIBUTE, multivalued=target),
        _attribute("IsSoftDeleted", "Boolean"),
        _attribute("accountEnabled", "Boolean"),
        *(_attribute(n) for n in _DIRECT_BEFORE_CONSTANTS[2:]),
        _attribute("mail"),
        _attribute("manager", "Reference", referenced="User"),
        _attribute("showInAddressList", "Boolean"),
        _attribute("userType"),
        _attribute("userState"),
    ]
    if not target:
        attrs.insert(1, _attribute("netId", "Binary"))
        attrs.append(_attribute("appRoleAssignments", multivalued=True))
    return attrs


def _group_attributes() -> list[dict[str, Any]]:
    return [
        _attribute("objectId", anchor=True),
        _attribute(MATCHING_ATTRIBUTE),
        _attribute("netId", "Binary"),
        _attribute("displayName"),
        _attribute("description"),
        _attribute("mailNickname"),
        _attribute("members", "Reference", multivalued=True, referenced="User"),
    ]


def _directory(directory_id: str, name: str, *, target: bool) -> dict[str, Any]:
    return {
        "id": directory_id,
        "name": name,
        "discoverabilities": "AttributeNames, AttributeDataTypes",
        "discoveryDateTime": None,
        "readOnly": False,
        "version": None,
        "objects": [
            {
                "name": "User",
                "attributes": _user_attributes(target=target),
                "metadata": [],
                "supportedApis": [],
            },
            {
                "name": "Group",
                "attributes": _group_attributes(),
                "metadata": [],
                "supportedApis": [],
            },
        ],
    }


def default_schema(
    schema_id: str, rule_id: str, source_directory_id: str, target_directory_id: str
) -> dict[str, Any]:
    """The schema of a new Azure2Azure job (cts-defaults §1, checklist §7.1).

    ``schema_id`` is the job id (or the template id for a template's schema); ``rule_id`` is a
    per-job GUID, as on real tenants.
    """
    return {
        "id": schema_id,
        "version": "v1.2",
        "synchronizationRules": [
            {
                "id": rule_id,
                "name": USER_RULE_NAME,
                "priority": 1,
                "editable": True,
                "sourceDirectoryName": SOURCE_DIRECTORY,
                "targetDirectoryName": TARGET_DIRECTORY,
                "containerFilter": None,
                "groupFilter": None,
                "metadata": [
                    {"key": "defaultSourceObjectMappings", "value": "User"},
                    {"key": "supportsProvisionOnDemand", "value": "true"},
                ],
                "objectMappings": [_user_mapping(), _group_mapping()],
            }
        ],
        "directories": [
            _directory(source_directory_id, SOURCE_DIRECTORY, target=False),
            _directory(target_directory_id, TARGET_DIRECTORY, target=True),
        ],
    }


def template(app_id: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The ``Azure2Azure`` ``synchronizationTemplate`` of a CTS service principal."""
    return {
        "id": TEMPLATE_ID,
        "applicationId": app_id,
        "default": True,
        "description": None,
        "discoverable": True,
        "factoryTag": TEMPLATE_ID,
        "metadata": [],
        "schema": schema,
    }


# -- catalogues ------------------------------------------------------------------------------

#: ``(name, arity, multivaluedComparisonType, supportedAttributeTypes)``: the eight operators
#: of Graph's published answer, then the six the portal documents (cts-defaults §2.1).
FILTER_OPERATORS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("EQUALS", "Binary", "All", ("Integer", "String")),
    ("IS FALSE", "Unary", "All", ("Boolean",)),
    ("IS NOT NULL", "Unary", "All", ("Integer", "String", "Binary", "Boolean")),
    ("IS NULL", "Unary", "All", ("Integer", "String", "Binary", "Boolean")),
    ("IS TRUE", "Unary", "All", ("Boolean",)),
    ("NOT EQUALS", "Binary", "All", ("Integer", "String")),
    ("NOT REGEX MATCH", "Binary", "All", ("Integer", "String")),
    ("REGEX MATCH", "Binary", "All", ("Integer", "String")),
    ("&", "Binary", "All", ("Integer",)),
    ("!&", "Binary", "All", ("Integer",)),
    ("ENDS_WITH", "Binary", "All", ("String",)),
    ("Greater_Than", "Binary", "All", ("Integer",)),
    ("Greater_Than_OR_EQUALS", "Binary", "All", ("Integer",)),
    ("Includes", "Binary", "All", ("String",)),
)


def filter_operators() -> list[dict[str, Any]]:
    """``filterOperatorSchema`` items named by ``name``, as Microsoft's examples show."""
    return [
        {
            "name": name,
            "arity": arity,
            "multivaluedComparisonType": comparison,
            "supportedAttributeTypes": list(types),
        }
        for name, arity, comparison, types in FILTER_OPERATORS
    ]


def _param(
    name: str, type_: str = "String", *, required: bool = True, many: bool = False
) -> dict[str, Any]:
    return {"allowMultipleOccurrences": many, "name": name, "required": required, "type": type_}


def functions() -> list[dict[str, Any]]:
    """``attributeMappingFunctionSchema`` items: Graph's published list (cts-defaults §2.2)."""
    return [
        {"name": "Append", "parameters": [_param("source"), _param("suffix")]},
        {"name": "DefaultDomain", "parameters": []},
        {"name": "AppRoleAssignments", "parameters": [_param("source")]},
        {
            "name": "FormatDateTime",
            "parameters": [_param("source"), _param("inputFormat"), _param("outputFormat")],
        },
        {"name": "IsNothing", "parameters": [_param("source", "Boolean")]},
        {"name": "Join", "parameters": [_param("separator"), _param("source", many=True)]},
        {"name": "Prepend", "parameters": [_param("prefix"), _param("source")]},
        {
            "name": "Mid",
            "parameters": [
                _param("source"),
                _param("start", "Integer"),
                _param("length", "Integer"),
            ],
        },
        {"name": "Not", "parameters": [_param("source", "Boolean")]},
        {
            "name": "Replace",
            "parameters": [
                _param("source"),
                *(
                    _param(name, required=False)
                    for name in (
                        "Find",
                        "RegularExpression",
                        "RegularExpressionGroupName",
                        "Replacement",
                        "ReplacementPropertyName",
                        "Template",
                    )
                ),
            ],
        },
        {"name": "SingleAppRoleAssignment", "parameters": [_param("source")]},
        {"name": "Split", "parameters": [_param("source"), _param("delimiter", required=False)]},
        {"name": "StripSpaces", "parameters": [_param("source")]},
        {
            "name": "Switch",
            "parameters": [
                _param("source"),
                _param("defaultValue", required=False),
                _param("switchValue", required=False, many=True),
            ],
        },
    ]
