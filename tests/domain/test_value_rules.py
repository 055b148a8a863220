"""Value parsing rules of service/domain/values.py and service/domain/ids.py as tables. Pure: no I/O.

Each row: the raw input, the parsed value (or None) and the violation it records (or none).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from service.domain.errors import Violations
from service.domain.ids import parse_id
from service.domain.values import (
    LONG_TEXT,
    MAX_METADATA_KEYS,
    SHORT_TEXT,
    check_company_id,
    check_metadata,
    check_text,
    clamp_scale,
    fmt_date,
    fmt_datetime,
    fmt_decimal,
    parse_currency,
    parse_date,
    parse_datetime,
    parse_decimal,
    shown,
)

D = Decimal


def _fields(v: Violations) -> list[str]:
    return [i.field for i in v.items]


@pytest.mark.parametrize(
    ("raw", "options", "expect", "violation"),
    [
        ("1234.56", {}, "1234.56", False),
        ("-0.5", {}, "-0.5", False),
        ("-0", {}, "0", False),
        ("-0.00", {}, "0.00", False),
        ("9" * 20, {}, "9" * 20, False),
        ("9" * 21, {}, None, True),
        ("0." + "1" * 9, {}, "0." + "1" * 9, False),
        ("0." + "1" * 10, {}, None, True),
        ("1e3", {}, None, True),
        ("NaN", {}, None, True),
        ("Infinity", {}, None, True),
        ("1,5", {}, None, True),
        (" 1", {}, None, True),
        ("1\n", {}, None, True),
        ("١٢", {}, None, True),
        (".5", {}, None, True),
        ("5.", {}, None, True),
        ("+5", {}, None, True),
        ("", {}, None, False),
        ("", {"required": True}, None, True),
        ("0", {"positive": True}, "0", True),
        ("0.01", {"positive": True}, "0.01", False),
        ("-1", {"minimum": D(0)}, "-1", True),
        ("0", {"minimum": D(0)}, "0", False),
        ("100.01", {"maximum": D(100)}, "100.01", True),
        ("100", {"maximum": D(100)}, "100", False),
    ],
    ids=["plain", "negative", "no_negative_zero", "no_negative_zero_keeps_scale", "twenty_integer_digits",
         "twenty_one_integer_digits", "nine_decimals", "ten_decimals", "no_exponent", "no_nan", "no_infinity",
         "no_comma", "no_space", "no_trailing_newline", "ascii_digits_only", "needs_integer_part",
         "needs_fraction_digits", "no_plus_sign", "empty_is_absent", "empty_required", "positive_refuses_zero",
         "positive_accepts_a_cent", "minimum_refuses_below", "minimum_inclusive", "maximum_refuses_above",
         "maximum_inclusive"],
)  # fmt: skip
def test_parse_decimal(raw: str, options: dict[str, Any], expect: str | None, violation: bool) -> None:
    v = Violations()
    got = parse_decimal(v, "x", raw, **options)
    assert (None if got is None else format(got, "f")) == expect
    assert _fields(v) == (["x"] if violation else [])


@pytest.mark.parametrize(
    ("raw", "required", "expect", "violation"),
    [
        ("2023-04-18T11:09:01Z", False, datetime(2023, 4, 18, 11, 9, 1, tzinfo=UTC), False),
        ("2023-04-18T11:09:01+02:00", False, datetime(2023, 4, 18, 9, 9, 1, tzinfo=UTC), False),
        ("2023-04-18T11:09:01", False, datetime(2023, 4, 18, 11, 9, 1, tzinfo=UTC), False),
        ("2023-04-18", False, datetime(2023, 4, 18, tzinfo=UTC), False),
        ("0001-01-01T00:30:00+01:00", False, None, True),
        ("2023-02-30T00:00:00Z", False, None, True),
        ("yesterday", False, None, True),
        (" 2023-04-18", False, None, True),
        ("2023-04-18T11:09:01Z" + "0" * 30, False, None, True),
        ("", False, None, False),
        ("", True, None, True),
    ],
    ids=["utc_z", "offset_converted_to_utc", "unqualified_is_utc", "date_only_is_midnight_utc",
         "offset_before_year_1", "no_such_day", "not_a_date", "leading_space", "longer_than_40", "empty_is_absent",
         "empty_required"],
)  # fmt: skip
def test_parse_datetime(raw: str, required: bool, expect: datetime | None, violation: bool) -> None:
    v = Violations()
    assert parse_datetime(v, "x", raw, required=required) == expect
    assert _fields(v) == (["x"] if violation else [])


@pytest.mark.parametrize(
    ("raw", "expect", "violation"),
    [
        ("2024-02-29", date(2024, 2, 29), False),
        ("2023-02-29", None, True),
        ("2024-02-29T23:30:00-01:00", date(2024, 3, 1), False),
        ("", None, False),
        ("29/02/2024", None, True),
    ],
    ids=["calendar_date", "no_such_date", "date_time_cut_to_its_utc_date", "empty_is_absent", "not_iso"],
)  # fmt: skip
def test_parse_date(raw: str, expect: date | None, violation: bool) -> None:
    v = Violations()
    assert parse_date(v, "x", raw) == expect
    assert _fields(v) == (["x"] if violation else [])


@pytest.mark.parametrize(
    ("raw", "required", "expect", "violation"),
    [
        ("USD", True, "USD", False),
        ("usd", True, "USD", False),
        ("XXX", True, "XXX", False),
        ("SLL", True, "SLL", False),
        ("ABC", True, None, True),
        ("US", True, None, True),
        ("", True, None, True),
        ("", False, None, False),
    ],
    ids=["iso_code", "upper_cased", "xxx_when_unknown", "withdrawn_still_accepted", "not_iso", "too_short",
         "required", "optional_empty"],
)  # fmt: skip
def test_parse_currency(raw: str, required: bool, expect: str | None, violation: bool) -> None:
    v = Violations()
    assert parse_currency(v, "x", raw, required=required) == expect
    assert _fields(v) == (["x"] if violation else [])


@pytest.mark.parametrize(
    ("raw", "limit", "required", "violation"),
    [
        ("Acme Ltd", SHORT_TEXT, False, False),
        ("a" * SHORT_TEXT, SHORT_TEXT, False, False),
        ("a" * (SHORT_TEXT + 1), SHORT_TEXT, False, True),
        ("line\nbreak", SHORT_TEXT, False, True),
        ("tab\there", SHORT_TEXT, False, True),
        ("nul\x00", SHORT_TEXT, False, True),
        ("del\x7f", SHORT_TEXT, False, True),
        ("line\nbreak\ttab\r\n", LONG_TEXT, False, False),
        ("bell\x07", LONG_TEXT, False, True),
        ("a" * (LONG_TEXT + 1), LONG_TEXT, False, True),
        ("", SHORT_TEXT, True, True),
        ("", SHORT_TEXT, False, False),
        ("日本語のテキスト", SHORT_TEXT, False, False),
    ],
    ids=["plain", "at_the_limit", "over_the_limit", "short_text_no_newline", "short_text_no_tab", "no_nul",
         "no_del", "long_text_allows_newlines_and_tabs", "long_text_no_other_control", "long_text_limit",
         "required", "optional_empty", "unicode_allowed"],
)  # fmt: skip
def test_check_text(raw: str, limit: int, required: bool, violation: bool) -> None:
    v = Violations()
    assert check_text(v, "x", raw, limit=limit, required=required) == raw
    assert _fields(v) == (["x"] if violation else [])


@pytest.mark.parametrize(
    ("raw", "violation"),
    [("co-1", False), ("Acme_2.eu:prod", False), ("a" * 64, False), ("a" * 65, True), ("", True), ("-co", True),
     ("co 1", True), ("co/1", True), ("ç", True)],
    ids=["plain", "allowed_punctuation", "sixty_four", "sixty_five", "required", "starts_with_letter_or_digit",
         "no_space", "no_slash", "ascii_only"],
)  # fmt: skip
def test_check_company_id(raw: str, violation: bool) -> None:
    v = Violations()
    check_company_id(v, "company_id", raw)
    assert _fields(v) == (["company_id"] if violation else [])


@pytest.mark.parametrize(
    ("metadata", "fields"),
    [
        ({"k": "v"}, []),
        ({f"k{i}": "v" for i in range(MAX_METADATA_KEYS)}, []),
        ({f"k{i}": "v" for i in range(MAX_METADATA_KEYS + 1)}, ["metadata"]),
        ({"": "v"}, ["metadata['']"]),
        ({"k" * 41: "v"}, [f"metadata[{shown('k' * 41)}]"]),
        ({"k": "v" * 501}, ["metadata['k']"]),
        ({"k": "v" * 500}, []),
    ],
    ids=["plain", "fifty_keys", "fifty_one_keys", "empty_key", "key_over_40", "value_over_500", "value_at_500"],
)  # fmt: skip
def test_check_metadata(metadata: dict[str, str], fields: list[str]) -> None:
    v = Violations()
    check_metadata(v, "metadata", metadata)
    assert _fields(v) == fields


@pytest.mark.parametrize(
    ("value", "expect"),
    [("1.1234567894", "1.123456789"), ("1.1234567895", "1.123456790"), ("1.5", "1.5"), ("2", "2")],
    ids=["beyond_nine_rounded_half_up_down", "beyond_nine_rounded_half_up_up", "short_kept", "integer_kept"],
)
def test_clamp_scale(value: str, expect: str) -> None:
    assert format(clamp_scale(D(value)), "f") == expect


@pytest.mark.parametrize(
    ("value", "expect"),
    [(D("2E-7"), "0.0000002"), (D("1E+3"), "1000"), (D("1.50"), "1.50"), (None, "")],
    ids=["never_exponent_small", "never_exponent_large", "scale_kept", "absent_is_empty"],
)
def test_fmt_decimal(value: Decimal | None, expect: str) -> None:
    assert fmt_decimal(value) == expect


@pytest.mark.parametrize(
    ("value", "expect"),
    [
        (datetime(2023, 4, 18, 11, 9, 1, tzinfo=UTC), "2023-04-18T11:09:01Z"),
        (datetime(2023, 4, 18, 11, 9, 1, 120000, tzinfo=UTC), "2023-04-18T11:09:01.120Z"),
        (datetime(2023, 4, 18, 11, 9, 1, 123456, tzinfo=UTC), "2023-04-18T11:09:01.123456Z"),
        (datetime(2023, 4, 18, 13, 9, 1, tzinfo=timezone(timedelta(hours=2))), "2023-04-18T11:09:01Z"),
        (datetime(5, 1, 1, tzinfo=UTC), "0005-01-01T00:00:00Z"),
        (None, ""),
    ],
    ids=["seconds", "milliseconds", "microseconds", "offset_to_utc", "four_digit_year", "absent_is_empty"],
)  # fmt: skip
def test_fmt_datetime(value: datetime | None, expect: str) -> None:
    assert fmt_datetime(value) == expect
    if value is not None:  # what is written is read back as the same instant
        assert parse_datetime(Violations(), "x", expect) == value


def test_fmt_date() -> None:
    assert (fmt_date(date(2024, 2, 29)), fmt_date(None)) == ("2024-02-29", "")


@pytest.mark.parametrize(
    ("raw", "expect"),
    [("short", "'short'"), ("x" * 41, repr("x" * 40 + "..."))],
    ids=["echoed", "cut_at_40"],
)
def test_shown(raw: str, expect: str) -> None:
    assert shown(raw) == expect


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        ("3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
        ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
        ("3f2504e04f8911d39a0c0305e82c3301", None),
        ("{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", None),
        ("3f2504e0-4f89-11d3-9a0c-0305e82c3301\n", None),
        ("INV-00001", None),
        ("", None),
    ],
    ids=["lower_case", "any_case_kept_lower", "no_unhyphenated", "no_braces", "no_trailing_newline",
         "a_number_is_not_an_id", "empty"],
)  # fmt: skip
def test_parse_id(raw: str, expect: str | None) -> None:
    assert parse_id(raw) == expect
