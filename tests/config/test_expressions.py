"""Mapping expressions become Graph's attributeMappingSource; filters become scope groups."""

from __future__ import annotations

from typing import Any

import pytest

from ctsync.config import AttributeSource, ScopeClause
from ctsync.config._expression import FUNCTIONS, ExpressionError, parse_expression
from ctsync.config._scope import OPERATORS, FilterError, parse_filter


def _attr(name: str) -> dict[str, Any]:
    return {"type": "Attribute", "name": name, "expression": f"[{name}]", "parameters": []}


def _const(value: str) -> dict[str, Any]:
    return {"type": "Constant", "name": value, "expression": f'"{value}"', "parameters": []}


def test_graph_documented_example_shape() -> None:
    # microsoft-graph-docs: attributeMappingSource, "first 8 characters" example.
    source = parse_expression("Mid([userPrincipalName], 1, 8)")
    assert source.to_graph() == {
        "type": "Function",
        "name": "Mid",
        "expression": "Mid([userPrincipalName], 1, 8)",
        "parameters": [
            {"key": "source", "value": _attr("userPrincipalName")},
            {"key": "start", "value": _const("1")},
            {"key": "length", "value": _const("8")},
        ],
    }


def test_attribute_constant_and_escapes() -> None:
    assert parse_expression(" [department] ").to_graph() == _attr("department")
    assert parse_expression('"Contoso"').to_graph() == _const("Contoso")
    quoted = parse_expression(r'"say \"hi\" \\ bye"')
    assert quoted.name == 'say "hi" \\ bye'
    assert quoted.expression == r'"say \"hi\" \\ bye"'


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ('Join(" ", [givenName], [surname])', ["separator", "source", "source"]),
        (
            'Switch([c], "x", "US", "1", "DE", "2")',
            ["source", "defaultValue"] + ["switchValue"] * 4,
        ),
        ('Replace([mail], "@a", , , "@b", , )', None),
        ('Replace([mail], "@a")', ["source", "Find"]),
        ("Append([a], [b])", ["source", "suffix"]),
        ("Prepend([a], [b])", ["prefix", "source"]),
        ("DefaultDomain()", []),
        ("Coalesce([a], [b], [c])", ["source", "value1", "value2"]),
        ('IIF([country]="US", [a], "b")', ["source", "value1", "value2"]),
        ("Not([IsSoftDeleted])", ["source"]),
    ],
)
def test_parameter_names(text: str, keys: list[str] | None) -> None:
    if keys is None:
        with pytest.raises(ExpressionError):
            parse_expression(text)
        return
    assert [key for key, _ in parse_expression(text).parameters] == keys


def test_comparison_inside_iif() -> None:
    source = parse_expression('IIF([country] <> "US", "x", [a])')
    condition = source.parameters[0][1]
    assert condition == AttributeSource(
        type="Function",
        name="<>",
        expression='[country] <> "US"',
        parameters=(
            ("source", AttributeSource(type="Attribute", name="country", expression="[country]")),
            ("value", AttributeSource(type="Constant", name="US", expression='"US"')),
        ),
    )
    assert source.expression == 'IIF([country] <> "US", "x", [a])'


def test_nested_calls_are_normalised() -> None:
    source = parse_expression('ToUpper(Join(",",[a],Mid([b],1,2)))')
    assert source.expression == 'ToUpper(Join(",", [a], Mid([b], 1, 2)))'
    inner = source.parameters[0][1]
    assert inner.name == "Join"
    assert inner.parameters[2][1].expression == "Mid([b], 1, 2)"


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("", 0, "the expression is empty"),
        ("[a", 0, "missing its closing ]"),
        ('"abc', 0, 'missing its closing "'),
        ("'abc'", 0, "strings use double quotes"),
        ("[a] x", 4, "unexpected 'x' after the end"),
        ("ToUpper([a]", 11, "expected ',' or ')' to close ToUpper(, found the end"),
        ("Foo([a])", 0, "unknown function 'Foo'"),
        ("SelectUniqueValue([a])", 0, "not supported by cross-tenant synchronization"),
        ("Append([a])", 0, "Append needs 2 argument(s) (source, suffix), got 1"),
        ("Not([a], [b])", 9, "Not takes at most 1 argument(s), got 2"),
        ('Switch([a], "d", "k")', 0, "even number of arguments"),
        ("[a b]", 1, "[a b] is not an attribute name"),
        ("Join(,)", 5, "expected [attribute]"),
    ],
)
def test_expression_errors(text: str, offset: int, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert caught.value.offset == offset
    assert message in caught.value.message


def test_expression_length_limit() -> None:
    with pytest.raises(ExpressionError, match="at most 10,000"):
        parse_expression('"' + "x" * 10_000 + '"')


def test_function_catalogue_covers_graph_and_the_reference() -> None:
    assert {"Mid", "Join", "Prepend", "DefaultDomain", "IIF", "ToUpper", "Word"} <= set(FUNCTIONS)
    assert "SelectUniqueValue" not in FUNCTIONS
    assert list(FUNCTIONS) == sorted(FUNCTIONS)


# -- scoping filters ----------------------------------------------------------------------------


def test_filter_groups_and_clauses() -> None:
    groups = parse_filter(
        "department EQUALS 'Sales' and accountEnabled is_true OR extensionAttribute1 "
        'greater_than_or_equals 5 AND mail ENDS_WITH "@contoso.com"'
    )
    assert groups == [
        [
            ScopeClause(attribute="department", operator="EQUALS", values=("Sales",)),
            ScopeClause(attribute="accountEnabled", operator="IS TRUE"),
        ],
        [
            ScopeClause(
                attribute="extensionAttribute1", operator="Greater_Than_OR_EQUALS", values=("5",)
            ),
            ScopeClause(attribute="mail", operator="ENDS_WITH", values=("@contoso.com",)),
        ],
    ]
    assert groups[0][0].to_graph() == {
        "sourceOperandName": "department",
        "operatorName": "EQUALS",
        "targetOperand": {"values": ["Sales"]},
    }
    assert groups[0][1].to_graph()["targetOperand"] == {"values": []}


def test_every_operator_parses_to_its_wire_name() -> None:
    for name, arity in OPERATORS.items():
        text = f"a {name} 'v'" if arity == "Binary" else f"a {name}"
        (clause,) = parse_filter(text)[0]
        assert clause.operator == name


def test_filter_values() -> None:
    (clause,) = parse_filter(r"title REGEX MATCH '^(CEO|CFO)\'s$'")[0]
    assert clause.values == ("^(CEO|CFO)'s$",)
    (clause,) = parse_filter("flags !& 4")[0]
    assert (clause.operator, clause.values) == ("!&", ("4",))
    (clause,) = parse_filter("NOTEQUALS NOT EQUALS x")[0]  # an attribute may look like a word
    assert (clause.attribute, clause.operator) == ("NOTEQUALS", "NOT EQUALS")


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("", 0, "the filter is empty"),
        ("'x' EQUALS y", 0, "expected an attribute name"),
        ("a LIKE 'x'", 2, "unknown scoping operator 'LIKE'"),
        ("a EQUALS", 8, "EQUALS needs a value"),
        ("a EQUALS AND b IS NULL", 8, "EQUALS needs a value"),
        ("a IS NULL 'x'", 10, "IS NULL takes no value"),
        ("a EQUALS 'x", 9, "missing its closing '"),
        ("a EQUALS x y", 11, "expected AND, OR or the end of the filter, found 'y'"),
        ("a EQUALS x AND", 14, "expected an attribute name"),
        ("manager IS NOT NULL", 0, "manager can't be used in a scoping filter"),
    ],
)
def test_filter_errors(text: str, offset: int, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.offset == offset
    assert message in caught.value.message
