"""Scope of a cross-tenant sync job: the source view of a user (or group), and scoping-filter
clauses.

The provisioning service reads a source user through the schema's attribute names
(``mobile``, ``telephoneNumber``, ``netId``, ``alternativeSecurityIds``, ``IsSoftDeleted``…),
not Graph's; :func:`source_view` builds that view. :func:`evaluate_groups` runs a
``filter``'s groups: OR across groups, AND within a group, the fourteen operators of
cts-defaults §2.1, case-sensitive, a null or empty value making a clause false (except ``IS
NULL``), multi-valued attributes never matching (reference §3.7, [COND]).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ctsync.emulator.state import Tenant

__all__ = [
    "ClauseResult",
    "CompiledGroups",
    "GroupsResult",
    "evaluate_groups",
    "group_view",
    "net_id",
    "sms_sign_in_number",
    "source_view",
]

Value = str | list[str] | None

#: Graph user property behind a sync-schema attribute, where the names differ.
_RENAMED = {"mobile": "mobilePhone"}
_EXTENSIONS = tuple(f"extensionAttribute{i}" for i in range(1, 16))
_NO_EXTENSIONS: dict[str, Value] = dict.fromkeys(_EXTENSIONS)


def net_id(user_id: str) -> str:
    """A stable PUID-like ``netId`` (16 hex digits) for a user, derived from its object id."""
    digest = hashlib.sha1(user_id.lower().encode(), usedforsecurity=False).hexdigest()
    return ("1003" + digest[:12]).upper()


def sms_sign_in_number(tenant: Tenant, user_id: str) -> str | None:
    """The phone number of the user's mobile method when SMS sign-in is ``ready``."""
    for method in tenant.auth_methods.get(user_id, []):
        if (
            method.get("@odata.type") == "#microsoft.graph.phoneAuthenticationMethod"
            and method.get("smsSignInState") == "ready"
        ):
            return str(method.get("phoneNumber") or "")
    return None


def _string(value: Any) -> Value:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, _NUMBERS):
        return str(value)
    if isinstance(value, list):
        return [s for v in value if isinstance(s := _string(v), str)]
    return None


_NUMBERS = (int, float)


def is_external(user: Mapping[str, Any]) -> bool:
    """An external (B2B) or guest user: never synchronized by CTS (reference §3.12)."""
    return user.get("userType") == "Guest" or user.get("creationType") == "Invitation"


def source_view(
    tenant: Tenant,
    user: Mapping[str, Any],
    *,
    deleted: bool,
    assigned: bool,
) -> dict[str, Value]:
    """The user as the provisioning service imports it (sync-schema attribute names)."""
    view: dict[str, Value] = {}
    for key, value in user.items():
        if key[:1] == "@":
            continue
        if value is None or type(value) is str:
            view[key] = value
        elif not isinstance(value, dict):
            view[key] = _string(value)
    for schema_name, graph_name in _RENAMED.items():
        view[schema_name] = _string(user.get(graph_name))
    phones = user.get("businessPhones") or []
    view["telephoneNumber"] = str(phones[0]) if phones else None
    extensions = user.get("onPremisesExtensionAttributes")
    if extensions:
        for name in _EXTENSIONS:
            view[name] = _string(extensions.get(name))
    else:
        view.update(_NO_EXTENSIONS)
    uid = str(user["id"])
    view["objectId"] = uid
    view["netId"] = net_id(uid)
    # Internal members carry no alternative security id; external users (their home tenant's)
    # and users with SMS sign-in (a phone-number identity) do, which is what the built-in
    # input filter "Filter external users" checks.
    external = is_external(user) or sms_sign_in_number(tenant, uid) is not None
    view["alternativeSecurityIds"] = "(1 values)" if external else "None"
    view["userState"] = _string(user.get("externalUserState"))
    view["IsSoftDeleted"] = "True" if deleted else "False"
    view["appRoleAssignments"] = "msiam_access" if assigned else None
    view["manager"] = None
    return view


def group_view(
    group: Mapping[str, Any], *, members: list[str], deleted: bool, assigned: bool
) -> dict[str, Value]:
    """A group as the provisioning service imports it (group mapping and scoping names):
    its properties as text (``displayName``, ``description``, ``mailNickname``,
    ``securityEnabled`` ``"True"``…), ``objectId``, ``netId``, and ``members`` (the direct
    members' ids: multi-valued, so no scoping clause on it ever holds)."""
    view: dict[str, Value] = {}
    for key, value in group.items():
        if key[:1] != "@" and not isinstance(value, dict):
            view[key] = _string(value)
    gid = str(group["id"])
    view["objectId"] = gid
    view["netId"] = net_id(gid)
    view["IsSoftDeleted"] = "True" if deleted else "False"
    view["appRoleAssignments"] = "msiam_access" if assigned else None
    view["members"] = list(members)
    return view


# -- clauses ---------------------------------------------------------------------------------


def _empty(value: Value) -> bool:
    return value is None or value in ("", [])


def _integer(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _regex(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value) is not None
    except re.error:
        return False


def clause_holds(operator: str, value: Value, operands: Sequence[str], *, lenient: bool) -> bool:
    """One scoping clause.

    ``lenient`` is for the built-in input filter: there a null value is "not equal", so the
    internal members it must let through (whose ``userState`` is null) pass ``userState NOT
    EQUALS PendingAcceptance``. Everywhere else a null or empty value makes a clause false.
    """
    if operator == "IS NULL":
        return _empty(value)
    if operator == "IS NOT NULL":
        return not _empty(value)
    if _empty(value):
        return lenient and operator in {"NOT EQUALS", "NOT REGEX MATCH", "!&"}
    if isinstance(value, list):
        # Filtering is not supported on multi-valued attributes.
        return False
    assert isinstance(value, str)
    first = operands[0] if operands else ""
    if operator == "EQUALS":
        return value in operands
    if operator == "NOT EQUALS":
        return value not in operands
    if operator == "REGEX MATCH":
        return _regex(first, value)
    if operator == "NOT REGEX MATCH":
        return not _regex(first, value)
    if operator == "IS TRUE":
        return value.lower() == "true"
    if operator == "IS FALSE":
        return value.lower() == "false"
    if operator == "Includes":
        return first in value
    if operator == "ENDS_WITH":
        return value.endswith(first)
    if operator == "&":
        return value in first
    if operator == "!&":
        return value not in first
    if operator in {"Greater_Than", "Greater_Than_OR_EQUALS"}:
        left, right = _integer(value), _integer(first)
        if left is None or right is None:
            return False
        return left > right if operator == "Greater_Than" else left >= right
    return False


@dataclass(frozen=True)
class ClauseResult:
    #: How logs name it: ``<group>.<attribute> <OPERATOR> '<value>'``.
    label: str
    holds: bool


@dataclass(frozen=True)
class GroupsResult:
    passed: bool
    clauses: tuple[ClauseResult, ...]

    def scope_evaluation(self) -> dict[str, bool]:
        return {c.label: c.holds for c in self.clauses}

    @property
    def failed(self) -> tuple[ClauseResult, ...]:
        return tuple(c for c in self.clauses if not c.holds)


def _label(group: str, clause: Mapping[str, Any]) -> str:
    operand = clause.get("sourceOperandName")
    operator = clause.get("operatorName")
    values = ((clause.get("targetOperand") or {}).get("values")) or []
    head = f"{group}.{operand} {operator}"
    if not values:
        return head
    return head + " " + ", ".join(f"'{v}'" for v in values)


def evaluate_groups(
    groups: Iterable[Any], view: Mapping[str, Value], *, lenient: bool = False
) -> GroupsResult:
    """OR across ``filterGroup``s, AND across each group's clauses; no group at all passes."""
    groups = [g for g in groups if isinstance(g, dict)]
    if not groups:
        return GroupsResult(True, ())
    results: list[ClauseResult] = []
    passed = False
    for group in groups:
        name = str(group.get("name") or "")
        group_ok = True
        for clause in group.get("clauses") or []:
            if not isinstance(clause, dict):
                continue
            operand = str(clause.get("sourceOperandName") or "")
            values = [str(v) for v in ((clause.get("targetOperand") or {}).get("values") or [])]
            value = view.get(operand)
            if value is None and operand not in view:
                lowered = operand.lower()
                value = next((v for k, v in view.items() if k.lower() == lowered), None)
            holds = clause_holds(str(clause.get("operatorName")), value, values, lenient=lenient)
            results.append(ClauseResult(_label(name, clause), holds))
            group_ok = group_ok and holds
        passed = passed or group_ok
    return GroupsResult(passed, tuple(results))


@dataclass(frozen=True)
class _Clause:
    label: str
    operand: str
    operator: str
    values: tuple[str, ...]


class CompiledGroups:
    """``filterGroup``s read once, evaluated per user as :func:`evaluate_groups` does; results
    with the same outcome are the same object (a cycle keeps many)."""

    def __init__(self, groups: Iterable[Any], *, lenient: bool = False) -> None:
        self.lenient = lenient
        compiled: list[tuple[_Clause, ...]] = []
        for group in groups:
            if not isinstance(group, dict):
                continue
            name = str(group.get("name") or "")
            clauses = tuple(
                _Clause(
                    _label(name, clause),
                    str(clause.get("sourceOperandName") or ""),
                    str(clause.get("operatorName")),
                    tuple(
                        str(v) for v in ((clause.get("targetOperand") or {}).get("values") or [])
                    ),
                )
                for clause in group.get("clauses") or []
                if isinstance(clause, dict)
            )
            compiled.append(clauses)
        self.groups = tuple(compiled)
        self._results: dict[tuple[bool, ...], GroupsResult] = {}

    def evaluate(self, view: Mapping[str, Value]) -> GroupsResult:
        if not self.groups:
            return _NO_GROUPS
        holds: list[bool] = []
        passed = False
        for clauses in self.groups:
            group_ok = True
            for clause in clauses:
                value = view.get(clause.operand)
                if value is None and clause.operand not in view:
                    lowered = clause.operand.lower()
                    value = next((v for k, v in view.items() if k.lower() == lowered), None)
                ok = clause_holds(clause.operator, value, clause.values, lenient=self.lenient)
                holds.append(ok)
                group_ok = group_ok and ok
            passed = passed or group_ok
        key = (passed, *holds)
        result = self._results.get(key)
        if result is None:
            labels = [c.label for clauses in self.groups for c in clauses]
            found = tuple(ClauseResult(c, ok) for c, ok in zip(labels, holds, strict=True))
            result = self._results[key] = GroupsResult(passed, found)
        return result


_NO_GROUPS = GroupsResult(True, ())
