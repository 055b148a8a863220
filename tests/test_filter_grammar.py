"""The filter grammar on its own: both spellings, precedence, grouping, operators, types, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from service.domain.filtering import (
    FIELDS,
    And,
    Comparison,
    DayRange,
    FilterError,
    Node,
    Not,
    Or,
    parse_filter,
    parse_order_by,
)


def shape(node: Node | None) -> object:
    """A compact form for assertions: ('and', ...), ('or', ...), ('not', x), 'field op value'."""
    if isinstance(node, Comparison):
        return f"{node.metadata_key or node.field.name} {node.op} {node.value}"
    if isinstance(node, Not):
        return ("not", shape(node.item))
    if isinstance(node, And | Or):
        return ("and" if isinstance(node, And) else "or", *(shape(i) for i in node.items))
    return None


def test_codat_and_aip_spellings_mean_the_same():
    aip = parse_filter("amount_due > 0 AND due_date > 2021-01-28")
    codat = parse_filter("amountDue > 0 && dueDate > 2021-01-28")
    assert shape(aip) == shape(codat)
    assert (
        shape(parse_filter("customerRef.id = 61"))
        == shape(parse_filter("customer_ref.id = 61"))
        == "customer_ref.id = 61"
    )


def test_keyword_precedence_is_aip160_or_binds_tighter():
    assert shape(parse_filter("status = paid AND status = void OR status = draft")) == (
        "and", "status = PAID", ("or", "status = VOID", "status = DRAFT"),
    )  # fmt: skip


def test_symbol_precedence_is_conventional_and_binds_tighter():
    assert shape(parse_filter("status = paid && status = void || status = draft")) == (
        "or", ("and", "status = PAID", "status = VOID"), "status = DRAFT",
    )  # fmt: skip


def test_grouping_with_parentheses_and_braces_and_implicit_and():
    braces = parse_filter("{totalAmount > 100 || totalAmount < 50} && status != paid")
    parens = parse_filter("(total_amount > 100 OR total_amount < 50) status != PAID")
    assert shape(braces) == shape(parens) == (
        "and", ("or", "total_amount > 100", "total_amount < 50"), "status != PAID",
    )  # fmt: skip
    assert shape(parse_filter("NOT (note ~ rent OR note ~ fee)")) == ("not", ("or", "note ~ rent", "note ~ fee"))
    assert shape(parse_filter("!status = void")) == ("not", "status = VOID")


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_every_comparator_on_decimals_and_timestamps(op):
    node = parse_filter(f"total_amount {op} 12.50")
    assert isinstance(node, Comparison) and node.op == op and node.value == Decimal("12.50")
    stamp = parse_filter(f"modified_date {op} 2024-02-03T04:05:06+01:00")
    assert isinstance(stamp, Comparison) and stamp.value == datetime(2024, 2, 3, 3, 5, 6, tzinfo=UTC)
    day = parse_filter(f"due_date {op} 2024-02-03")
    assert isinstance(day, Comparison) and isinstance(day.value, DayRange)
    assert day.value.start == datetime(2024, 2, 3, tzinfo=UTC)


def test_text_contains_enums_null_metadata_and_quotes():
    assert shape(parse_filter("note : rent")) == shape(parse_filter("note ~ rent")) == "note ~ rent"
    assert shape(parse_filter('note = "rent, due (May)"')) == "note = rent, due (May)"
    assert shape(parse_filter("note = 'it\\'s'")) == "note = it's"
    for spelling in ("partially_paid", "PartiallyPaid", "PARTIALLY_PAID", "INVOICE_STATUS_PARTIALLY_PAID"):
        assert shape(parse_filter(f"status = {spelling}")) == "status = PARTIALLY_PAID"
    assert shape(parse_filter("payment_status = succeeded")) == "payment_status = SUCCEEDED"
    assert shape(parse_filter("status : paid")) == "status = PAID"
    assert shape(parse_filter("due_date = null")) == "due_date = None"
    assert shape(parse_filter("metadata.region = eu")) == "region = eu"
    assert shape(parse_filter("currency = usd")) == "currency = USD"
    assert shape(parse_filter("customer_id = c1 invoice_status = draft")) == (
        "and", "customer_ref.id = c1", "status = DRAFT",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "position", "token"),
    [
        ("amount_due >", 13, ""),
        ("amount_due > abc", 14, "abc"),
        ("bogus = 1", 1, "bogus"),
        ("status = nope", 10, "nope"),
        ("(status = paid", 15, ""),
        ("status = paid)", 14, ")"),
        ("(status = paid}", 15, "}"),
        ("status < paid", 10, "paid"),
        ("amount_due ~ 5", 14, "~"),
        ("note = 'open", 8, "'open"),
        ("amount_due = 1e5", 14, "1e5"),
        ("due_date > 2021-13-01", 12, "2021-13-01"),
        ("status = paid AND", 18, ""),
        ("; DROP TABLE invoices", 1, ";"),
        ("amount_due = null", 14, "null"),
        ("id = 42", 6, "42"),
    ],
)
def test_errors_name_position_and_token(text, position, token):
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    assert (info.value.position, info.value.token) == (position, token), info.value


def test_limits():
    parse_filter(" AND ".join(["amount_due > 0"] * 64))
    with pytest.raises(FilterError, match="more than 64"):
        parse_filter(" AND ".join(["amount_due > 0"] * 65))
    with pytest.raises(FilterError, match="2048"):
        parse_filter("note ~ " + "x" * 2050)
    with pytest.raises(FilterError, match="nesting"):
        parse_filter("(" * 20 + "amount_due > 0" + ")" * 20)
    assert parse_filter("   ") is None


def test_order_by_both_forms_and_errors():
    due, total = FIELDS["due_date"], FIELDS["total_amount"]
    assert parse_order_by("due_date desc, total_amount") == ((due, True), (total, False))
    assert parse_order_by("-modifiedDate") == ((FIELDS["modified_date"], True),)
    assert parse_order_by("dueDate ASC") == ((due, False),)
    for bad in ("bogus", "due_date sideways", "due_date, due_date", "id", ",", "a, b, c, d, e"):
        with pytest.raises(FilterError):
            parse_order_by(bad)
