"""The engine's rule language: scoping-filter operators (cts-defaults §2.1, [COND]) and
attribute-mapping expressions (cts-defaults §2.2)."""

from __future__ import annotations

from typing import Any

import pytest

from ctsync.emulator.engine.expressions import (
    ExpressionError,
    UnsupportedFunctionError,
    evaluate_source,
)
from ctsync.emulator.engine.scoping import clause_holds, evaluate_groups
from ctsync.emulator.services.azure2azure import FILTER_OPERATORS


@pytest.mark.parametrize(
    ("operator", "value", "operands", "expected"),
    [
        ("EQUALS", "Sales", ["Sales"], True),
        ("EQUALS", "sales", ["Sales"], False),  # case-sensitive
        ("NOT EQUALS", "Sales", ["Marketing"], True),
        ("NOT EQUALS", "Sales", ["Sales"], False),
        ("REGEX MATCH", "42", ["([1-9][0-9])"], True),
        ("REGEX MATCH", "420", ["([1-9][0-9])"], False),
        ("REGEX MATCH", "SALES", ["sales"], False),
        ("NOT REGEX MATCH", "abc", ["[0-9]+"], True),
        ("IS TRUE", "True", [], True),
        ("IS TRUE", "False", [], False),
        ("IS FALSE", "False", [], True),
        ("IS NULL", None, [], True),
        ("IS NULL", "", [], True),
        ("IS NULL", "x", [], False),
        ("IS NOT NULL", "x", [], True),
        ("IS NOT NULL", None, [], False),
        ("Includes", "Senior Engineer", ["Engineer"], True),
        ("Includes", "Senior Engineer", ["engineer"], False),
        ("ENDS_WITH", "adele@contoso.com", ["@contoso.com"], True),
        ("&", "Sales", ["Sales,Marketing"], True),
        ("&", "Finance", ["Sales,Marketing"], False),
        ("!&", "Finance", ["Sales,Marketing"], True),
        ("Greater_Than", "1500000", ["1000000"], True),
        ("Greater_Than", "abc", ["1"], False),
        ("Greater_Than_OR_EQUALS", "5", ["5"], True),
        # A null or empty value makes every other clause false.
        ("EQUALS", None, ["x"], False),
        ("NOT EQUALS", None, ["x"], False),
        ("NOT REGEX MATCH", "", ["x"], False),
        ("Includes", "", ["x"], False),
        # Multi-valued attributes never match.
        ("EQUALS", ["a", "b"], ["a"], False),
    ],
)
def test_scoping_operators(operator: str, value: Any, operands: list[str], expected: bool) -> None:
    assert clause_holds(operator, value, operands, lenient=False) is expected


#: For every operator the catalogue publishes, a value and operands it holds for and a value and
#: operands it fails for: an operator that is not implemented (falls through to False) or
#: answers a constant fails one of the two.
OPERATOR_CASES: dict[str, tuple[tuple[Any, list[str]], tuple[Any, list[str]]]] = {
    "EQUALS": (("1", ["1"]), ("2", ["1"])),
    "NOT EQUALS": (("2", ["1"]), ("1", ["1"])),
    "REGEX MATCH": (("12", ["[0-9]+"]), ("1a", ["[0-9]+"])),
    "NOT REGEX MATCH": (("1a", ["[0-9]+"]), ("12", ["[0-9]+"])),
    "IS TRUE": (("True", []), ("False", [])),
    "IS FALSE": (("False", []), ("True", [])),
    "IS NULL": ((None, []), ("1", [])),
    "IS NOT NULL": (("1", []), (None, [])),
    "&": (("1", ["1,2"]), ("3", ["1,2"])),
    "!&": (("3", ["1,2"]), ("1", ["1,2"])),
    "ENDS_WITH": (("a@contoso.com", ["@contoso.com"]), ("a@fabrikam.com", ["@contoso.com"])),
    "Greater_Than": (("2", ["1"]), ("1", ["1"])),
    "Greater_Than_OR_EQUALS": (("1", ["1"]), ("0", ["1"])),
    "Includes": (("Senior Engineer", ["Engineer"]), ("Senior Manager", ["Engineer"])),
}


def test_every_published_operator_is_implemented() -> None:
    assert sorted(OPERATOR_CASES) == sorted(name for name, *_ in FILTER_OPERATORS)
    for name, ((holds, holds_with), (fails, fails_with)) in OPERATOR_CASES.items():
        assert clause_holds(name, holds, holds_with, lenient=False) is True, name
        assert clause_holds(name, fails, fails_with, lenient=False) is False, name


def _clause(attr: str, op: str, *values: str) -> dict[str, Any]:
    return {
        "sourceOperandName": attr,
        "operatorName": op,
        "targetOperand": {"values": list(values)},
    }


def test_groups_or_clauses_and() -> None:
    groups = [
        {
            "name": "US sales",
            "clauses": [
                _clause("department", "EQUALS", "Sales"),
                _clause("country", "EQUALS", "US"),
            ],
        },
        {"name": "Enabled", "clauses": [_clause("accountEnabled", "IS TRUE")]},
    ]
    us_sales = {"department": "Sales", "country": "US", "accountEnabled": "False"}
    result = evaluate_groups(groups, us_sales)
    assert result.passed
    assert result.scope_evaluation() == {
        "US sales.department EQUALS 'Sales'": True,
        "US sales.country EQUALS 'US'": True,
        "Enabled.accountEnabled IS TRUE": False,
    }
    gb_sales = {"department": "Sales", "country": "GB", "accountEnabled": "False"}
    assert not evaluate_groups(groups, gb_sales).passed
    assert evaluate_groups(groups, {**gb_sales, "accountEnabled": "True"}).passed
    assert evaluate_groups([], {}).passed


@pytest.mark.parametrize("failing", [0, 1, 2], ids=["first", "middle", "last"])
def test_any_failing_clause_fails_its_group(failing: int) -> None:
    # Every clause of the group decides, wherever it stands: one that fails (first, middle or
    # last) fails the group, and with it the filter when no other group passes.
    user = {"department": "Sales", "country": "US", "city": "Seattle"}
    clauses = [
        _clause("department", "EQUALS", "Sales"),
        _clause("country", "EQUALS", "US"),
        _clause("city", "EQUALS", "Seattle"),
    ]
    groups = [{"name": "g", "clauses": clauses}]
    assert evaluate_groups(groups, user).passed
    clauses[failing] = _clause(clauses[failing]["sourceOperandName"], "EQUALS", "Elsewhere")
    result = evaluate_groups(groups, user)
    assert not result.passed
    assert [c.holds for c in result.clauses] == [i != failing for i in range(3)]
    # A later group that passes still lets the user through (OR across groups)...
    passing = {"name": "h", "clauses": [_clause("country", "EQUALS", "US")]}
    assert evaluate_groups([*groups, passing], user).passed
    # ...and one that passes, followed by the failing one, too: the last group does not decide.
    assert evaluate_groups([passing, *groups], user).passed


def test_the_input_filter_lets_a_null_user_state_through() -> None:
    clause = {
        "sourceOperandName": "userState",
        "operatorName": "NOT EQUALS",
        "targetOperand": {"values": ["PendingAcceptance"]},
    }
    group = [{"name": "Filter external users", "clauses": [clause]}]
    assert evaluate_groups(group, {"userState": None}, lenient=True).passed
    assert not evaluate_groups(group, {"userState": None}).passed
    assert not evaluate_groups(group, {"userState": "PendingAcceptance"}, lenient=True).passed


ATTRIBUTES: dict[str, Any] = {
    "givenName": "Adele",
    "surname": "Vance",
    "mail": "Adele@Contoso.com",
    "department": "Sales",
    "jobTitle": None,
    "country": "US",
    "displayName": "  Adele  Vance ",
    "IsSoftDeleted": "False",
    "employeeId": "C1001",
    "city": "Séville",
}


def _expr(text: str) -> dict[str, Any]:
    return {"type": "Function", "name": text.split("(", 1)[0], "expression": text, "parameters": []}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('Append([givenName], ".ext")', "Adele.ext"),
        ('Prepend("x-", [surname])', "x-Vance"),
        ('Join(" ", [givenName], [surname])', "Adele Vance"),
        ('Join(".", [givenName], [jobTitle], [surname])', "Adele.Vance"),
        ("ToLower([mail])", "adele@contoso.com"),
        ("ToUpper([department])", "SALES"),
        ("StripSpaces([displayName])", "AdeleVance"),
        ("Trim([displayName])", "Adele  Vance"),
        ("Mid([employeeId], 2, 4)", "1001"),
        ("Left([surname], 2)", "Va"),
        ("Not([IsSoftDeleted])", "True"),
        (
            'Switch([country], "Other", "US", "United States", "GB", "United Kingdom")',
            "United States",
        ),
        ('Switch([department], "Other", "US", "United States")', "Other"),
        ('IIF([country]="US", "domestic", "foreign")', "domestic"),
        ('IIF([jobTitle]="x", "yes", "no")', "no"),
        ('Coalesce([jobTitle], [department], "none")', "Sales"),
        ('Replace([mail], "@Contoso.com", , , "@fabrikam.com", , )', "Adele@fabrikam.com"),
        ("NormalizeDiacritics([city])", "Seville"),
        ("IsNullOrEmpty([jobTitle])", "True"),
        ("IsPresent([givenName])", "True"),
        ("ToLower([jobTitle])", None),
        ('Word("a b c", 2, " ")', "b"),
    ],
)
def test_functions(expression: str, expected: str | None) -> None:
    assert evaluate_source(_expr(expression), ATTRIBUTES) == expected


def test_structured_sources() -> None:
    assert (
        evaluate_source(
            {"type": "Attribute", "name": "surname", "expression": "[surname]"}, ATTRIBUTES
        )
        == "Vance"
    )
    assert (
        evaluate_source({"type": "Constant", "name": "Member", "expression": '"Member"'}, {})
        == "Member"
    )
    join = {
        "type": "Function",
        "name": "Join",
        "expression": 'Join("-", [givenName], [surname])',
        "parameters": [
            {"key": "separator", "value": {"type": "Constant", "name": "-", "parameters": []}},
            {
                "key": "source",
                "value": {"type": "Attribute", "name": "givenName", "parameters": []},
            },
            {"key": "source", "value": {"type": "Attribute", "name": "surname", "parameters": []}},
        ],
    }
    assert evaluate_source(join, ATTRIBUTES) == "Adele-Vance"
    alt_sec = {
        "type": "Function",
        "name": "AltSecIdFromNetId",
        "expression": "AltSecIdFromNetId([netId])",
        "parameters": [{"key": "source", "value": {"type": "Attribute", "name": "netId"}}],
    }
    assert (
        evaluate_source(alt_sec, {"netId": "1003ABC"}, context={"tenantId": "t"}) == "5::t:1003ABC"
    )


def test_unknown_functions_and_bad_expressions_raise() -> None:
    with pytest.raises(UnsupportedFunctionError):
        evaluate_source(_expr("RandomString(8)"), ATTRIBUTES)
    with pytest.raises(ExpressionError):
        evaluate_source(_expr("Append([givenName]"), ATTRIBUTES)
    with pytest.raises(ExpressionError):
        evaluate_source(_expr("Left([surname])"), ATTRIBUTES)
