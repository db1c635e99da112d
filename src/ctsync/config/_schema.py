"""The config file's shape, as pydantic models: validation and the JSON Schema for editors.

Every model forbids unknown keys (and says which key it meant), validates strictly (YAML's
``"true"`` is text, not a boolean) and carries descriptions that become the JSON Schema's help
text. ``access`` and ``sync`` sections are *partial*: an omitted key is "not set here", so a
template and a link's overrides can be merged key by key before defaults are applied.

Errors raised here carry a ``ctx`` the loader uses to point at the right place:
``key`` (point at that child key), ``offset`` (a character inside a string), ``at_key`` (point
at the key naming this node rather than at its value).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ._expression import ExpressionError, parse_expression
from ._scope import OPERATORS, FilterError, parse_filter
from ._state import ScopeGroup

__all__ = [
    "FORBIDDEN_TARGETS",
    "PARTIAL",
    "ConfigFile",
    "LinkSettings",
    "Sync",
    "closest",
    "filter_groups",
    "json_schema",
    "suggest",
]

GUID_PATTERN: Final = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
ENV_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]*$"
TARGET_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"

#: Graph keeps the accidental-deletions threshold (``DeleteThresholdValue``) as a 32-bit int.
MAX_DELETION_THRESHOLD: Final = 2**31 - 1
#: A rollout gate waits at most this many cycles: about four weeks at Entra's 40-minute cycle.
#: The gate is a minimum, so a longer pilot needs no larger value: run promote later.
MAX_GATE_CYCLES: Final = 1_000

# C0 controls, DEL and C1 controls. In a name they would break a line of `ctsync plan`, move
# the cursor or recolour the terminal (ESC), and end up as is in Graph's display names.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The same, but tab, line feed and carriage return: layout in multi-line text.
_CONTROL_NOT_LAYOUT: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

#: Target attributes a mapping may not name, lower-cased, with the reason.
FORBIDDEN_TARGETS: Final = {
    "alternativesecurityids": (
        "alternativeSecurityIds is the matching attribute of cross-tenant sync; Entra does not "
        "let it be changed, removed or joined by another (schemaInvalid)"
    ),
    "othermails": (
        "otherMails is computed by the target tenant and must not be a mapping target in "
        "cross-tenant sync"
    ),
    "proxyaddresses": (
        "proxyAddresses is read-only in the target tenant (it can only be a source attribute)"
    ),
    "usertype": "userType is set with sync.user_type (e.g. {value: Member, apply: always})",
    "showinaddresslist": "showInAddressList is set with sync.show_in_address_list",
}


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """``; did you mean 'x'?`` for the closest choice, or nothing."""
    close = closest(word, choices)
    return f"; did you mean {close!r}?" if close else ""


def closest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The choice ``word`` was most likely meant to be, if any is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _fail(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, "{message}", {"message": message, **ctx})


# -- scalar types -------------------------------------------------------------------------------


def _guid(value: str) -> str:
    if not re.fullmatch(GUID_PATTERN, value):
        msg = f"{value!r} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        raise _fail("guid", msg)
    return value.lower()


def _name(value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        msg = (
            f"{value!r} is not a valid name: use letters, digits, '-', '_' or '.', "
            "start with a letter or digit, at most 64 characters"
        )
        raise _fail("name", msg)
    return value


def _env(value: str) -> str:
    if not re.fullmatch(ENV_PATTERN, value):
        msg = f"{value!r} is not an environment variable name (letters, digits and '_')"
        raise _fail("env_name", msg)
    return value


def _text(value: str) -> str:
    if not value.strip():
        raise _fail("empty", "must not be empty")
    return value


def _one_line(value: str) -> str:
    _refuse_controls(value, _CONTROL, "must be printable text on one line")
    return value


def _free_text(value: str) -> str:
    _refuse_controls(value, _CONTROL_NOT_LAYOUT, "may hold only printable text and line breaks")
    return value


def _refuse_controls(value: str, controls: re.Pattern[str], rule: str) -> None:
    found = controls.search(value)
    if found:
        char = found.group(0)
        msg = f"contains the control character {char!r} (U+{ord(char):04X}); {rule}"
        raise _fail("control_character", msg, offset=found.start())


def _expression(value: str) -> str:
    _free_text(value)
    try:
        parse_expression(value)
    except ExpressionError as exc:
        raise _fail("expression", exc.message, offset=exc.offset) from None
    return value


def _filter(value: str) -> str:
    _free_text(value)
    try:
        parse_filter(value)
    except FilterError as exc:
        raise _fail("filter", exc.message, offset=exc.offset) from None
    return value


def _version(value: Any) -> Any:
    # Literal[1] alone would take YAML's `true` (True == 1).
    if type(value) is not int or value != 1:
        msg = f"version must be 1, the only config format this ctsync reads (got {value!r})"
        raise _fail("version", msg)
    return value


Guid = Annotated[str, AfterValidator(_guid), Field(json_schema_extra={"pattern": GUID_PATTERN})]
Name = Annotated[str, AfterValidator(_name), Field(json_schema_extra={"pattern": NAME_PATTERN})]
EnvName = Annotated[str, AfterValidator(_env), Field(json_schema_extra={"pattern": ENV_PATTERN})]
Text = Annotated[str, AfterValidator(_text), AfterValidator(_one_line), Field(min_length=1)]
FilePath = Annotated[str, AfterValidator(_text), AfterValidator(_one_line), Field(min_length=1)]
OneLine = Annotated[str, AfterValidator(_one_line)]
FreeText = Annotated[str, AfterValidator(_free_text)]
Expression = Annotated[str, AfterValidator(_expression), Field(min_length=1)]
FilterText = Annotated[str, AfterValidator(_filter), Field(min_length=1)]


def _partial(info: ValidationInfo) -> bool:
    """True while validating sections on their own, before templates and overrides merge."""
    return bool(isinstance(info.context, dict) and info.context.get("partial"))


def _by_shape(**tags: type | tuple[type, ...]) -> Callable[[Any], str | None]:
    """A union discriminator choosing a member by the input's Python type (YAML node kind)."""

    def choose(value: Any) -> str | None:
        for tag, kinds in tags.items():
            if isinstance(value, kinds):
                return tag
        return None

    return choose


# -- the base of every section ------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    noun: ClassVar[str] = "this section"
    """How messages name this section: "unknown key 'x' in <noun>"."""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # pydantic's own extra_forbidden error cannot suggest the key that was meant.
        if isinstance(data, dict):
            allowed = [field.alias or name for name, field in cls.model_fields.items()]
            for key in data:
                if key not in allowed:
                    msg = (
                        f"unknown key {key!r} in {cls.noun}{suggest(str(key), allowed)} "
                        f"(valid keys: {', '.join(allowed)})"
                    )
                    raise _fail("unknown_key", msg, key=key)
        return data


# -- tenants ------------------------------------------------------------------------------------


class CloudEndpoints(_Section):
    """Explicit endpoints: the emulator, a proxy, or a cloud without a name here."""

    noun: ClassVar[str] = "cloud"
    graph_url: OneLine = Field(
        description="Graph version root, ending in /v1.0 or /beta, e.g. "
        "https://127.0.0.1:8443/v1.0. https, except on 127.0.0.1, localhost or ::1."
    )
    authority: OneLine = Field(description="Token authority host URL, e.g. https://127.0.0.1:8443.")
    ca_bundle: FilePath | None = Field(
        None,
        description="PEM file of the CA to trust instead of the system store; relative to "
        "the config file.",
    )
    name: Text | None = Field(None, description="A label for messages (default: custom).")
    endpoint: (
        Literal["microsoftonline.com", "microsoftonline.us", "partner.microsoftonline.cn"] | None
    ) = Field(
        None,
        description="The Microsoft cloud these endpoints stand for, as allowedCloudEndpoints "
        "names it; needed when a link joins this tenant with one in another cloud definition.",
    )


CloudName = Literal["global", "usgov", "usgovdod", "china"]

CloudSetting = Annotated[
    Annotated[CloudName, Tag("name")] | Annotated[CloudEndpoints, Tag("endpoints")],
    Discriminator(
        _by_shape(name=str, endpoints=(dict, CloudEndpoints)),
        custom_error_type="cloud_shape",
        custom_error_message="cloud is a name (global, usgov, usgovdod, china) or a mapping "
        "{graph_url, authority, ca_bundle}",
    ),
]


class ClientSecretAuth(_Section):
    """An app registration's client secret, read from an environment variable or a file."""

    noun: ClassVar[str] = "auth (method client_secret)"
    method: Literal["client_secret"]
    client_id: Guid = Field(description="Application (client) id of the app registration.")
    client_secret_env: EnvName | None = Field(
        None, description="Environment variable holding the client secret."
    )
    client_secret_file: FilePath | None = Field(
        None,
        description="File holding the client secret (relative to the config file); keep it "
        "mode 0600.",
    )

    @model_validator(mode="after")
    def _one_secret(self) -> ClientSecretAuth:
        _exactly_one_secret(self, "client_secret", method="client_secret", required=True)
        return self


class CertificateAuth(_Section):
    """An app registration's certificate (PEM or PKCS#12 with the private key)."""

    noun: ClassVar[str] = "auth (method certificate)"
    method: Literal["certificate"]
    client_id: Guid = Field(description="Application (client) id of the app registration.")
    certificate_path: FilePath = Field(
        description="Certificate file with its private key, relative to the config file."
    )
    certificate_password_env: EnvName | None = Field(
        None, description="Environment variable holding the certificate's password, if any."
    )
    certificate_password_file: FilePath | None = Field(
        None, description="File holding the certificate's password, if any."
    )

    @model_validator(mode="after")
    def _one_password(self) -> CertificateAuth:
        _exactly_one_secret(self, "certificate_password", method="certificate", required=False)
        return self


class WorkloadIdentityAuth(_Section):
    """A federated token file (Kubernetes workload identity, GitHub OIDC...)."""

    noun: ClassVar[str] = "auth (method workload_identity)"
    method: Literal["workload_identity"]
    client_id: Guid | None = Field(None, description="Client id (default: $AZURE_CLIENT_ID).")
    token_file: FilePath | None = Field(
        None,
        description="Federated token file (default: $AZURE_FEDERATED_TOKEN_FILE). Leave it out "
        "in GitHub Actions (ctsync asks the job's OIDC endpoint) or Azure Pipelines (with "
        "service_connection_id).",
    )
    service_connection_id: str | None = Field(
        None,
        description="Azure Pipelines: the service connection (workload identity federation) "
        "to sign in with; needs $SYSTEM_ACCESSTOKEN in the step's environment.",
        max_length=100,
    )


class ManagedIdentityAuth(_Section):
    """The Azure managed identity of the machine ctsync runs on."""

    noun: ClassVar[str] = "auth (method managed_identity)"
    method: Literal["managed_identity"]
    client_id: Guid | None = Field(
        None, description="Client id of a user-assigned identity (default: system-assigned)."
    )


class AzureCliAuth(_Section):
    """Whoever is signed in with `az login`."""

    noun: ClassVar[str] = "auth (method azure_cli)"
    method: Literal["azure_cli"]


TokenCache = Literal["keyring", "file", "none"]
_CACHE_HELP = (
    "Where the sign-in is kept between runs: keyring (the OS keyring, encrypted; default), "
    "file (an unencrypted file in ~/.IdentityService, mode 0600) or none (sign in every run)."
)
_PUBLIC_CLIENT_HELP = (
    "Public client app to sign in with (default: Microsoft Graph Command Line Tools, "
    "14d82eec-204b-4c2f-b7e8-296a70dab67e, asked for exactly ctsync's scopes)."
)


class DeviceCodeAuth(_Section):
    """An administrator signs in with a device code (on any machine, even without a browser)."""

    noun: ClassVar[str] = "auth (method device_code)"
    method: Literal["device_code"]
    client_id: Guid | None = Field(None, description=_PUBLIC_CLIENT_HELP)
    token_cache: TokenCache = Field("keyring", description=_CACHE_HELP)


class InteractiveBrowserAuth(_Section):
    """An administrator signs in in a browser this machine opens."""

    noun: ClassVar[str] = "auth (method interactive_browser)"
    method: Literal["interactive_browser"]
    client_id: Guid | None = Field(None, description=_PUBLIC_CLIENT_HELP)
    token_cache: TokenCache = Field("keyring", description=_CACHE_HELP)


def _exactly_one_secret(model: _Section, stem: str, *, method: str, required: bool) -> None:
    env = getattr(model, f"{stem}_env")
    file = getattr(model, f"{stem}_file")
    if env is not None and file is not None:
        msg = f"give {stem}_env or {stem}_file, not both"
        raise _fail("secret_source", msg, key=f"{stem}_file")
    if required and env is None and file is None:
        msg = (
            f"auth method {method} needs {stem}_env (an environment variable) "
            f"or {stem}_file (a file)"
        )
        raise _fail("secret_source", msg, at_key=True)


Auth = Annotated[
    ClientSecretAuth
    | CertificateAuth
    | WorkloadIdentityAuth
    | ManagedIdentityAuth
    | AzureCliAuth
    | DeviceCodeAuth
    | InteractiveBrowserAuth,
    Field(discriminator="method"),
]


# -- access settings ----------------------------------------------------------------------------


class InboundTrust(_Section):
    """Which claims from the source tenant the target trusts (unset flags are false)."""

    noun: ClassVar[str] = "inbound_trust"
    mfa: bool | None = Field(None, description="Trust MFA done in the source tenant.")
    compliant_device: bool | None = Field(
        None, description="Trust the source tenant's compliant-device claim."
    )
    hybrid_joined_device: bool | None = Field(
        None, description="Trust the source tenant's hybrid Entra joined-device claim."
    )


B2BAccess = Literal["allow_all", "block_all"]


class B2BCollaboration(_Section):
    """B2B collaboration for all users and applications; an omitted direction is left alone."""

    noun: ClassVar[str] = "b2b_collaboration"
    inbound: B2BAccess | None = Field(None, description="allow_all or block_all.")
    outbound: B2BAccess | None = Field(None, description="allow_all or block_all.")


class Access(_Section):
    """Cross-tenant access (partner) settings of a link. Omitted settings are left alone."""

    noun: ClassVar[str] = "access"
    inbound_trust: InboundTrust | None = Field(
        None, description="Inbound trust on the target's partner entry for the source."
    )
    b2b_collaboration: B2BCollaboration | None = Field(
        None, description="B2B collaboration on the partner entries of the link."
    )
    automatic_redemption: bool | None = Field(
        None,
        description="Suppress consent prompts: inbound on the target, outbound on the "
        "source. Cross-tenant sync needs it (default true).",
    )


class Redemption(_Section):
    """Automatic redemption in the default policy: each direction on its own."""

    noun: ClassVar[str] = "automatic_redemption"
    inbound: bool | None = Field(None, description="Suppress consent for users coming in.")
    outbound: bool | None = Field(None, description="Suppress consent for users going out.")


class DefaultAccess(_Section):
    """A tenant's default cross-tenant access settings (what partners without their own
    inherit). Omitted settings are left alone."""

    noun: ClassVar[str] = "default_access"
    inbound_trust: InboundTrust | None = Field(
        None, description="Which claims from other tenants this tenant trusts by default."
    )
    b2b_collaboration: B2BCollaboration | None = Field(
        None, description="B2B collaboration with every other tenant, in and out."
    )
    automatic_redemption: Redemption | None = Field(
        None, description="{inbound, outbound}: suppress consent prompts by default."
    )


class Tenant(_Section):
    """One Entra tenant and how ctsync signs in to it."""

    noun: ClassVar[str] = "a tenant"
    tenant_id: Guid = Field(description="The tenant id (a GUID).")
    cloud: CloudSetting = Field(
        "global",
        description="global, usgov, usgovdod, china, or explicit endpoints "
        "{graph_url, authority, ca_bundle}.",
    )
    auth: Auth = Field(
        description="How to get tokens: method client_secret, certificate, "
        "workload_identity, managed_identity, azure_cli or device_code. Secrets come from "
        "environment variables or files, never from this file."
    )
    managed: bool = Field(
        True,
        description="false: a partner manages this tenant; ctsync only reads it and shows "
        "what it lacks. A link's source must be managed (its sync job lives there).",
    )
    size: Literal["S", "M", "L"] | None = Field(
        None, description="Pacing hint for Graph's per-tenant quotas: S, M or L."
    )
    default_access: DefaultAccess | None = Field(
        None,
        description="The tenant's default cross-tenant access policy, as far as ctsync "
        "manages it (inbound trust, B2B collaboration, automatic redemption).",
    )
    unmanaged_configurations: dict[Guid, str] | None = Field(
        None,
        description="Cross-tenant sync configurations in this tenant that ctsync leaves alone, "
        "by service principal object id, each with the tenant it synchronizes into (a tenant "
        "of this file, or a tenant id): what ctsync cannot learn from Graph itself.",
    )


# -- sync settings ------------------------------------------------------------------------------


class UserTypeSetting(_Section):
    """The userType of synced users, and when to apply it."""

    noun: ClassVar[str] = "user_type"
    value: Literal["Member", "Guest"] = Field("Member", description="Member or Guest.")
    apply: Literal["on_create", "always"] = Field(
        "on_create",
        description="on_create (Entra's default) or always: always also turns existing B2B "
        "users into the chosen type.",
    )


UserTypeField = Annotated[
    Annotated[Literal["Member", "Guest"], Tag("value")]
    | Annotated[UserTypeSetting, Tag("setting")],
    Discriminator(
        _by_shape(value=str, setting=(dict, UserTypeSetting)),
        custom_error_type="user_type_shape",
        custom_error_message="user_type is Member, Guest or {value: Member, apply: always}",
    ),
]


class AssignedPrincipal(_Section):
    """A group or a user assigned to the sync app: {group: name-or-id} or {user: upn-or-id}."""

    noun: ClassVar[str] = "an assigned principal"
    group: Text | None = Field(None, description="Group display name or object id.")
    user: Text | None = Field(None, description="User principal name or object id.")

    @field_validator("user")
    @classmethod
    def _upn_or_id(cls, user: str | None) -> str | None:
        if user is not None and "@" not in user and not re.fullmatch(GUID_PATTERN, user):
            msg = f"user {user!r} is neither a user principal name (x@y) nor an object id"
            raise _fail("principal", msg)
        return user

    @model_validator(mode="after")
    def _one_principal(self) -> AssignedPrincipal:
        if (self.group is None) == (self.user is None):
            msg = "an assigned principal is either {group: name-or-id} or {user: upn-or-id}"
            raise _fail("principal", msg)
        return self


class NamedFilter(_Section):
    """A scoping filter with the name Entra shows in provisioning logs."""

    noun: ClassVar[str] = "a named filter"
    name: Text = Field(description="Name of the filter group.")
    filter_: FilterText = Field(
        alias="filter", description="Clauses joined by AND (OR starts another group)."
    )


FilterItem = Annotated[
    Annotated[FilterText, Tag("text")] | Annotated[NamedFilter, Tag("named")],
    Discriminator(
        _by_shape(text=str, named=(dict, NamedFilter)),
        custom_error_type="filter_shape",
        custom_error_message="a filter is text (\"department EQUALS 'Sales'\") or {name, filter}",
    ),
]

FilterSetting = Annotated[
    Annotated[FilterText, Tag("text")] | Annotated[list[FilterItem], Tag("list")],
    Discriminator(
        _by_shape(text=str, list=list),
        custom_error_type="filter_shape",
        custom_error_message="filter is text or a list of filters (any of which may match)",
    ),
]


def filter_groups(setting: str | list[str | NamedFilter]) -> list[ScopeGroup]:
    """The scope groups a ``filter`` setting describes, in order, with unique-ish names.

    Unnamed filters are called ``ctsync filter 1``, ``ctsync filter 2``... (the name shows in
    provisioning logs); an OR inside a named filter yields ``name``, ``name (2)``...
    """
    items = [setting] if isinstance(setting, str) else setting
    groups: list[ScopeGroup] = []
    counter = 0
    for item in items:
        text = item if isinstance(item, str) else item.filter_
        for index, clauses in enumerate(parse_filter(text)):
            if isinstance(item, str):
                counter += 1
                name = f"ctsync filter {counter}"
            else:
                name = item.name if index == 0 else f"{item.name} ({index + 1})"
            groups.append(ScopeGroup(name=name, clauses=tuple(clauses)))
    return groups


class RolloutGate(_Section):
    """When `ctsync promote` may widen a rollout to its next stage."""

    noun: ClassVar[str] = "a rollout gate"
    max_failure_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Highest share of failed provisioning-log entries since the stage began "
        "(0.0: none may fail).",
    )
    min_cycles: int = Field(
        1,
        ge=1,
        le=MAX_GATE_CYCLES,
        description="Provisioning cycles that must have run since the stage began (1 to "
        "1000; the gate is a minimum, promote can always run later).",
    )


class Rollout(_Section):
    """A staged rollout: the pilot group first, then each next stage after a clean gate."""

    noun: ClassVar[str] = "a rollout"
    pilot: Text = Field(description="The pilot group (display name or object id).")
    then: list[Text] | Literal["all_members"] = Field(
        default_factory=list,
        description="Groups added stage by stage; `all_members` (alone, or last) ends with "
        "every member in scope (SyncAll).",
    )
    gate: RolloutGate = Field(default_factory=RolloutGate, description="When to promote.")

    @model_validator(mode="after")
    def _stages(self) -> Rollout:
        if isinstance(self.then, list) and "all_members" in self.then[:-1]:
            msg = "all_members can only be the last stage of a rollout"
            raise _fail("rollout", msg, key="then")
        return self


class Scope(_Section):
    """Who is synced: assigned users and groups and/or every user, narrowed by filters."""

    noun: ClassVar[str] = "scope"
    assigned: list[AssignedPrincipal] | None = Field(
        None,
        description="Users and groups assigned to the sync app (Entra's recommended scope). "
        "A list replaces a template's list.",
    )
    filter_: FilterSetting | None = Field(
        None,
        alias="filter",
        description="Attribute filter: clauses joined by AND, groups by OR (or a list of "
        f"filters). Operators: {', '.join(OPERATORS)}.",
    )
    all_members: bool | None = Field(
        None, description="true: every user is in scope (SyncAll), not only assigned ones."
    )
    rollout: Rollout | None = Field(
        None,
        description="Stage the scope: apply assigns the pilot group only; `ctsync promote` "
        "widens it stage by stage when the gate holds. Replaces assigned and all_members.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Scope:
        if self.rollout is not None and (self.assigned or self.all_members):
            msg = (
                "rollout decides who is assigned, stage by stage; remove assigned and "
                "all_members from this scope"
            )
            raise _fail("scope", msg, key="rollout")
        if self.all_members and self.assigned:
            msg = (
                "all_members: true puts every user in scope, so assigned would be ignored; "
                "remove one (with a template, assigned: [] clears its list)"
            )
            raise _fail("scope", msg, key="all_members")
        if self.filter_ is not None:
            names = [group.name for group in filter_groups(self.filter_)]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                msg = f"filter names must be unique; {', '.join(map(repr, duplicates))} repeats"
                raise _fail("scope", msg, key="filter")
        return self


class MappingDetail(_Section):
    """A mapping with options: an expression or a constant, and when to apply it."""

    noun: ClassVar[str] = "a mapping"
    expression: Expression | None = Field(
        None, description='Entra expression: [attribute], "constant" or Function(...).'
    )
    constant: OneLine | None = Field(None, description="A constant value, no quoting needed.")
    apply: Literal["always", "on_create"] = Field(
        "always", description="always, or on_create (only when the user is created)."
    )
    graph: dict[str, Any] | None = Field(
        None,
        description="The attribute mapping exactly as Graph stores it (attributeMapping JSON, "
        "without targetAttributeName): for what expressions and apply cannot say. "
        "`ctsync import` writes it; it is written as is.",
    )

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> MappingDetail:
        given = [k for k in ("expression", "constant", "graph") if getattr(self, k) is not None]
        if len(given) > 1:
            msg = "a mapping has one of expression, constant or graph, not several"
            raise _fail("mapping", msg, key=given[1])
        # In a template or overrides, {apply: always} alone is fine: it is merged over a
        # mapping that has the source. Once merged, the source must be there.
        if not given and not _partial(info):
            msg = "a mapping needs an expression, a constant or graph"
            raise _fail("mapping", msg, at_key=True)
        if self.graph is not None and not isinstance(self.graph.get("source"), dict | None):
            msg = "graph.source must be an attributeMappingSource object"
            raise _fail("mapping", msg, key="graph")
        return self


MappingValue = (
    Annotated[
        Annotated[Expression, Tag("text")] | Annotated[MappingDetail, Tag("detail")],
        Discriminator(
            _by_shape(text=str, detail=(dict, MappingDetail)),
            custom_error_type="mapping_shape",
            custom_error_message="a mapping is an expression, null (remove the default "
            "mapping) or {expression | constant, apply}",
        ),
    ]
    | None
)

Action = Literal["create", "update", "delete"]
#: Graph beta features a config may opt into (``beta:``).
BetaFeature = Literal["group_sync"]


class Sync(_Section):
    """The sync job of a link (it lives in the source tenant)."""

    noun: ClassVar[str] = "sync"
    user_type: UserTypeField | None = Field(
        None,
        description="Member (default) or Guest, or {value, apply}; applied on_create unless "
        "apply: always.",
    )
    scope: Scope | None = Field(None, description="Who is synced.")
    actions: list[Action] | None = Field(
        None,
        min_length=1,
        description="What the job may do in the target: create, update, delete "
        "(default [create, update]).",
    )
    show_in_address_list: bool | None = Field(
        None, description="Show synced users in the target's global address list (default true)."
    )
    mappings: dict[str, MappingValue] | None = Field(
        None,
        description="Target attribute: source expression. Merged by key over the defaults "
        "Entra creates; null removes a default mapping.",
    )
    deletion_threshold: int | None = Field(
        None,
        ge=1,
        le=MAX_DELETION_THRESHOLD,
        description="Accidental-deletion threshold (default 500, at most 2147483647: Graph "
        "keeps it as a 32-bit number); null turns it off.",
    )
    start: bool | None = Field(None, description="Start the job after apply (default true).")
    app_display_name: Text | None = Field(
        None,
        max_length=256,
        description="Display name of the sync app in the source tenant (default: chosen by "
        "ctsync).",
    )
    groups: bool | None = Field(
        None,
        description="Also sync the security groups in scope (assigned groups; every security "
        "group with all_members) and their direct members' memberships (default false). Needs "
        "`beta: [group_sync]` at the top level and Microsoft Entra ID Governance.",
    )
    group_filter: FilterSetting | None = Field(
        None,
        description="Attribute filter on the groups synced (displayName, description, "
        "mailNickname...): clauses joined by AND, groups by OR (or a list of filters).",
    )

    @field_validator("mappings")
    @classmethod
    def _targets(cls, mappings: dict[str, Any] | None) -> dict[str, Any] | None:
        for target in mappings or {}:
            if not re.fullmatch(TARGET_PATTERN, target):
                msg = f"{target!r} is not an attribute name"
                raise _fail("mapping_target", msg, key=target)
            reason = FORBIDDEN_TARGETS.get(target.lower())
            if reason:
                raise _fail("mapping_target", f"can't map {target}: {reason}", key=target)
        return mappings


class LinkSettings(_Section):
    """``access`` and ``sync`` of one link after templates and overrides are merged."""

    noun: ClassVar[str] = "link settings"
    access: Access | None = None
    sync: Sync | None = None


# -- templates, links, topologies ---------------------------------------------------------------


class Template(_Section):
    """Reusable access and sync settings for links."""

    noun: ClassVar[str] = "a template"
    description: FreeText | None = Field(None, description="What this template is for.")
    access: Access | None = Field(None, description="Cross-tenant access settings.")
    sync: Sync | None = Field(None, description="Sync job settings.")


class Overrides(_Section):
    """Settings merged over the template: mappings by key, other mappings key by key, lists
    and scalars replaced."""

    noun: ClassVar[str] = "overrides"
    access: Access | None = Field(None, description="Merged over the template's access.")
    sync: Sync | None = Field(None, description="Merged over the template's sync.")


_TEMPLATE = "Template to use (a key of templates)."
_OVERRIDES = "Changes merged over the template (only with template)."
_ACCESS = "Access settings (only without template; with one, use overrides)."
_SYNC = "Sync settings (only without template; with one, use overrides)."


class _Linkish(_Section):
    """What links and topologies share: a template with overrides, or inline settings."""

    if TYPE_CHECKING:
        # Declared by each subclass, so that their own keys come first in messages and schema.
        template: str | None
        overrides: Overrides | None
        access: Access | None
        sync: Sync | None

    @model_validator(mode="after")
    def _template_or_inline(self) -> _Linkish:
        if self.template is None and self.overrides is not None:
            msg = "overrides needs a template; without one, write access and sync directly"
            raise _fail("link_settings", msg, key="overrides")
        if self.template is not None:
            for key in ("access", "sync"):
                if getattr(self, key) is not None:
                    msg = f"with a template, put {key} under overrides (it is merged over it)"
                    raise _fail("link_settings", msg, key=key)
        return self


class Link(_Linkish):
    """Users of source are synchronized into target."""

    noun: ClassVar[str] = "a link"
    source: Name = Field(description="Tenant whose users are synced (runs the sync job).")
    target: Name = Field(description="Tenant the users are synced into.")
    template: Name | None = Field(None, description=_TEMPLATE)
    overrides: Overrides | None = Field(None, description=_OVERRIDES)
    access: Access | None = Field(None, description=_ACCESS)
    sync: Sync | None = Field(None, description=_SYNC)
    adopt: Guid | None = Field(
        None,
        description="The service principal object id of an existing cross-tenant sync "
        "configuration in the source that serves this link (made in the portal or by the "
        "multitenant-organization wizard): ctsync manages it instead of creating one. "
        "`ctsync import` writes it.",
    )


class MeshTopology(_Linkish):
    """A link in both directions between every two tenants listed."""

    noun: ClassVar[str] = "a mesh topology"
    mesh: list[Name] = Field(min_length=2, description="Tenants to link with each other.")
    template: Name | None = Field(None, description=_TEMPLATE)
    overrides: Overrides | None = Field(None, description=_OVERRIDES)
    access: Access | None = Field(None, description=_ACCESS)
    sync: Sync | None = Field(None, description=_SYNC)


class HubTopology(_Linkish):
    """Links between one hub tenant and each spoke."""

    noun: ClassVar[str] = "a hub topology"
    hub: Name = Field(description="The hub tenant.")
    spokes: list[Name] = Field(min_length=1, description="The spoke tenants.")
    direction: Literal["out", "in", "both"] = Field(
        "out", description="out: hub → spokes (default); in: spokes → hub; both."
    )
    template: Name | None = Field(None, description=_TEMPLATE)
    overrides: Overrides | None = Field(None, description=_OVERRIDES)
    access: Access | None = Field(None, description=_ACCESS)
    sync: Sync | None = Field(None, description=_SYNC)


def _topology_kind(value: Any) -> str | None:
    if isinstance(value, MeshTopology):
        return "mesh-topology"
    if isinstance(value, HubTopology):
        return "hub-topology"
    if isinstance(value, dict) and ("mesh" in value) != ("hub" in value):
        return "mesh-topology" if "mesh" in value else "hub-topology"
    return None


Topology = Annotated[
    Annotated[MeshTopology, Tag("mesh-topology")] | Annotated[HubTopology, Tag("hub-topology")],
    Discriminator(
        _topology_kind,
        custom_error_type="topology_shape",
        custom_error_message="a topology is {mesh: [tenants...]} or "
        "{hub: tenant, spokes: [tenants...]} (exactly one of mesh and hub)",
    ),
]


# -- the multitenant organization ---------------------------------------------------------------

TemplateLevel = Literal["newPartners", "existingPartners", "none"]
_APPLY_TO = (
    "Which partner configurations the template shapes when a tenant joins "
    "(templateApplicationLevel): newPartners, existingPartners (or a list of both), or none."
)


class PartnerConfigurationTemplate(_Section):
    """The MTO partner-configuration template: settings a member's partner configurations for
    the other MTO tenants get when they join. Omitted settings are left alone."""

    noun: ClassVar[str] = "partner_configuration"
    automatic_redemption: Redemption | None = Field(
        None, description="{inbound, outbound}: suppress consent prompts (automaticUserConsent)."
    )
    apply_to: TemplateLevel | list[TemplateLevel] | None = Field(None, description=_APPLY_TO)


class IdentitySyncTemplate(_Section):
    """The MTO identity-synchronization template: whether the MTO's tenants may sync users in."""

    noun: ClassVar[str] = "identity_synchronization"
    user_sync_inbound: bool | None = Field(
        None, description="Allow users of the other MTO tenants to be synced in."
    )
    apply_to: TemplateLevel | list[TemplateLevel] | None = Field(None, description=_APPLY_TO)


class OrganizationTemplates(_Section):
    """The MTO policy templates every member's tenant holds (set in each managed member)."""

    noun: ClassVar[str] = "templates"
    partner_configuration: PartnerConfigurationTemplate | None = Field(
        None, description="The partner-configuration template."
    )
    identity_synchronization: IdentitySyncTemplate | None = Field(
        None, description="The identity-synchronization template."
    )


class Organization(_Section):
    """A multitenant organization (MTO): its owner creates it and adds the members; each member
    joins it."""

    noun: ClassVar[str] = "organization"
    name: Text = Field(description="The organization's display name.")
    description: FreeText | None = Field(None, description="What the organization is for.")
    owner: Name = Field(description="The tenant that creates and owns the organization.")
    members: list[Name] = Field(
        default_factory=list, description="The other tenants of the organization."
    )
    templates: OrganizationTemplates | None = Field(
        None, description="The MTO policy templates, set in the owner and every member."
    )


#: Validation context for sections read on their own (see MappingDetail).
PARTIAL: Final = {"partial": True}


class ConfigFile(_Section):
    """A ctsync config: tenants, and the cross-tenant synchronization links between them."""

    model_config = ConfigDict(title="ctsync configuration")
    noun: ClassVar[str] = "the top level"
    version: Annotated[Literal[1], BeforeValidator(_version)] = Field(
        description="Config format version: 1."
    )
    tenants: dict[Name, Tenant] = Field(
        min_length=1, description="Tenants by the name links use for them."
    )
    templates: dict[Name, Template] = Field(
        default_factory=dict, description="Reusable link settings by name."
    )
    links: list[Link] = Field(default_factory=list, description="Links, one by one.")
    topologies: list[Topology] = Field(
        default_factory=list, description="Shapes that expand into links: mesh, hub and spokes."
    )
    organization: Organization | None = Field(
        None, description="A multitenant organization of tenants of this file."
    )
    beta: list[BetaFeature] = Field(
        default_factory=list,
        description="Microsoft Graph beta features this file opts into; ctsync makes no beta "
        "call without it. group_sync: sync.groups (the target's groupSyncInbound is beta).",
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the config file, with help text for editors.

    docs/ctsync.schema.json is this, written with ``json.dumps(..., indent=2)``; point an
    editor's YAML extension at it (``# yaml-language-server: $schema=...``).
    """
    schema = ConfigFile.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
