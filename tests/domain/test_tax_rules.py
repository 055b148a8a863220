"""Tax categories (EN 16931 VAT category rules, service/domain/tax.py), allowances and charges and line charges
in the totals and the tax breakdown (service/domain/totals.py). Pure: no I/O."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from service.domain.errors import Violations
from service.domain.models import AllowanceCharge, Invoice, TaxationItem, TaxCategory, TaxRateType
from service.domain.money import TaxMode
from service.domain.totals import amounts, price_invoice, tax_breakdown
from tests.domain.builders import D, line, new

C = TaxCategory
ITEM = "invoice.line_items[0].taxation_items[0]"


def _violations(inv: Invoice) -> list[str]:
    v = Violations()
    price_invoice(inv, v)
    return [x.field for x in v.items]


def _item(category: TaxCategory | None, rate: str | None, reason: str = "", code: str = "", **attrs: Any) -> Invoice:
    item = TaxationItem(
        name="VAT",
        tax_category=category,
        tax_rate=D(rate) if rate is not None else None,
        exemption_reason=reason,
        exemption_reason_code=code,
        **attrs,
    )
    return new(lines=[line(taxation_items=[item])])


# (category, rate, reason text, reason code) -> the fields refused; [] = accepted.
CATEGORY_RULES: list[tuple[str, TaxCategory | None, str | None, str, str, list[str]]] = [
    ("no_category_anything_goes", None, "7", "why", "", []),
    ("S_positive_rate", C.S, "20", "", "", []),
    ("S_zero_rate_refused", C.S, "0", "", "", [f"{ITEM}.tax_rate"]),
    ("S_no_rate_refused", C.S, None, "", "", [f"{ITEM}.tax_rate", f"{ITEM}.tax_amount"]),
    ("S_with_reason_refused", C.S, "20", "exempt", "", [f"{ITEM}.exemption_reason"]),
    ("S_with_code_refused", C.S, "20", "", "VATEX-EU-AE", [f"{ITEM}.exemption_reason_code"]),
    ("Z_zero_rate", C.Z, "0", "", "", []),
    ("Z_positive_rate_refused", C.Z, "5", "", "", [f"{ITEM}.tax_rate"]),
    ("Z_with_reason_refused", C.Z, "0", "zero", "", [f"{ITEM}.exemption_reason"]),
    ("E_zero_rate_with_reason", C.E, "0", "Exempt under Article 132", "", []),
    ("E_code_alone_is_enough", C.E, "0", "", "VATEX-EU-132-1I", []),
    ("E_without_reason_refused", C.E, "0", "", "", [f"{ITEM}.exemption_reason"]),
    ("E_positive_rate_refused", C.E, "10", "x", "", [f"{ITEM}.tax_rate"]),
    ("AE_reverse_charge", C.AE, "0", "", "VATEX-EU-AE", []),
    ("AE_without_reason_refused", C.AE, "0", "", "", [f"{ITEM}.exemption_reason"]),
    ("K_intra_community", C.K, "0", "Intra-community supply", "VATEX-EU-IC", []),
    ("K_positive_rate_refused", C.K, "19", "x", "", [f"{ITEM}.tax_rate"]),
    ("G_export", C.G, "0", "", "VATEX-EU-G", []),
    ("G_without_reason_refused", C.G, "0", "", "", [f"{ITEM}.exemption_reason"]),
    ("O_no_rate", C.O, None, "", "VATEX-EU-O", []),
    ("O_with_a_rate_refused", C.O, "0", "", "VATEX-EU-O", [f"{ITEM}.tax_rate"]),
    ("O_without_reason_refused", C.O, None, "", "", [f"{ITEM}.exemption_reason"]),
    ("L_igic_rate", C.L, "7", "", "", []),
    ("L_zero_rate_refused", C.L, "0", "", "", [f"{ITEM}.tax_rate"]),  # BR-AF-05: IGIC above 0
    ("L_with_reason_refused", C.L, "7", "x", "", [f"{ITEM}.exemption_reason"]),
    ("M_ipsi_rate", C.M, "4", "", "", []),
    ("M_with_code_refused", C.M, "4", "", "VATEX-EU-79-C", [f"{ITEM}.exemption_reason_code"]),
    ("code_not_vatex_refused", C.E, "0", "", "EXEMPT", [f"{ITEM}.exemption_reason_code"]),
]


@pytest.mark.parametrize(
    ("category", "rate", "reason", "code", "refused"),
    [pytest.param(*row[1:], id=row[0]) for row in CATEGORY_RULES],
)
def test_category_rules(
    category: TaxCategory | None, rate: str | None, reason: str, code: str, refused: list[str]
) -> None:
    assert sorted(_violations(_item(category, rate, reason, code))) == sorted(refused)


@pytest.mark.parametrize(
    ("category", "tax_amount", "refused"),
    [
        pytest.param(C.E, "5", [f"{ITEM}.tax_amount"], id="exempt_carries_no_tax"),
        pytest.param(C.Z, "0", [], id="zero_rated_tax_zero_sent"),
        pytest.param(C.S, "20", [], id="standard_tax_sent_as_computed"),
    ],
)
def test_untaxed_categories_refuse_a_tax_amount(category: TaxCategory, tax_amount: str, refused: list[str]) -> None:
    rate = "20" if category is C.S else "0"
    inv = _item(category, rate, "why" if category is C.E else "", tax_amount=D(tax_amount))
    assert _violations(inv) == refused


def test_category_with_a_flat_fee_refused() -> None:
    inv = _item(C.S, "5", tax_rate_type=TaxRateType.FLAT_FEE)
    assert _violations(inv) == [f"{ITEM}.tax_rate_type"]


def test_category_O_without_rate_is_taxed_zero() -> None:
    inv = _item(C.O, None, code="VATEX-EU-O")
    price_invoice(inv, Violations())
    assert inv.lines[0].taxation_items[0].tax_amount == D("0.00") and inv.total_amount == D("100.00")


@pytest.mark.parametrize(
    ("ac", "refused"),
    [
        pytest.param(AllowanceCharge(amount=D("5"), tax_category=C.S, tax_rate=D("0")), ["tax_rate"], id="S_rate_0"),
        pytest.param(AllowanceCharge(amount=D("5"), tax_category=C.E, tax_rate=D("0")), [], id="E_rate_0_no_reason"),
        pytest.param(AllowanceCharge(amount=D("5"), tax_category=C.O, tax_rate=D("0")), ["tax_rate"], id="O_rate"),
        pytest.param(AllowanceCharge(tax_category=C.S, tax_rate=D("10")), ["amount"], id="no_amount_no_percentage"),
        pytest.param(AllowanceCharge(amount=D("5.005")), ["amount"], id="amount_beyond_the_exponent"),
        pytest.param(AllowanceCharge(amount=D("6"), percentage=D("5")), ["amount"], id="amount_disagrees_with_pct"),
    ],
)
def test_allowance_charge_rules(ac: AllowanceCharge, refused: list[str]) -> None:
    inv = new(allowance_charges=[ac])
    assert _violations(inv) == [f"invoice.allowance_charges[0].{f}" for f in refused]


def test_allowance_charges_need_lines() -> None:
    inv = new(lines=[], total_amount=D("10"), allowance_charges=[AllowanceCharge(amount=D("1"))])
    assert _violations(inv) == ["invoice.allowance_charges"]


def _s(rate: str = "20") -> TaxationItem:
    return TaxationItem(name="VAT", tax_category=C.S, tax_rate=D(rate))


def _priced(inv: Invoice) -> Invoice:
    v = Violations()
    price_invoice(inv, v)
    assert v.items == []
    rows = tax_breakdown(inv)
    assert sum((r.tax_amount for r in rows), D(0)) == inv.total_tax_amount  # always adds up
    assert inv.total_amount == (inv.sub_total or D(0)) + (inv.total_tax_amount or D(0))
    return inv


def _totals(inv: Invoice) -> dict[str, str]:
    names = ("sub_total", "total_discount", "total_tax_amount", "total_amount")
    out = {n: format(getattr(inv, n), "f") for n in names}
    out |= {"allowances": format(inv.allowance_total_amount, "f"), "charges": format(inv.charge_total_amount, "f")}
    return out


def _rows(inv: Invoice) -> list[tuple[str, str | None, str, str]]:
    return [
        (b.category, None if b.rate is None else format(b.rate, "f"), format(b.taxable_amount, "f"),
         format(b.tax_amount, "f"))
        for b in tax_breakdown(inv)
    ]  # fmt: skip


TOTALS: list[tuple[str, Invoice, dict[str, str], list[tuple[str, str | None, str, str]]]] = [
    (
        "allowance_and_charge_taxed_in_the_line_category",
        new(
            lines=[line("2", "50", taxation_items=[_s()])],
            allowance_charges=[
                AllowanceCharge(amount=D("10"), reason="Loyalty", reason_code="95", tax_category=C.S, tax_rate=D(20)),
                AllowanceCharge(charge=True, amount=D("5"), reason_code="FC", tax_category=C.S, tax_rate=D(20)),
            ],
        ),
        {
            "sub_total": "95.00",
            "total_discount": "10.00",
            "total_tax_amount": "19.00",
            "total_amount": "114.00",
            "allowances": "10.00",
            "charges": "5.00",
        },
        [("S", "20", "95.00", "19.00")],
    ),
    (
        "percentage_allowance_of_the_line_sub_totals",
        new(
            lines=[line("1", "33.33", taxation_items=[_s("10")]), line("1", "66.67", taxation_items=[_s("10")])],
            allowance_charges=[AllowanceCharge(percentage=D("2.5"), tax_category=C.S, tax_rate=D(10))],
        ),
        {
            "sub_total": "97.50",
            "total_discount": "2.50",
            "total_tax_amount": "9.75",
            "total_amount": "107.25",
            "allowances": "2.50",
            "charges": "0.00",
        },
        [("S", "10", "97.50", "9.75")],
    ),
    (
        "percentage_of_an_explicit_base",
        new(allowance_charges=[AllowanceCharge(charge=True, percentage=D("10"), base_amount=D("40"))]),
        {
            "sub_total": "104.00",
            "total_discount": "0.00",
            "total_tax_amount": "0.00",
            "total_amount": "104.00",
            "allowances": "0.00",
            "charges": "4.00",
        },
        [("", None, "104.00", "0.00")],
    ),
    (
        "categories_and_rates_grouped_with_the_exempt_reason",
        new(
            lines=[
                line("1", "100", taxation_items=[_s()]),
                line(
                    "1",
                    "50",
                    taxation_items=[TaxationItem(tax_category=C.E, tax_rate=D(0), exemption_reason="Art 132")],
                ),
                line("1", "30", taxation_items=[_s("10")]),
            ],
            allowance_charges=[AllowanceCharge(amount=D("20"), tax_category=C.E, tax_rate=D(0))],
        ),
        {
            "sub_total": "160.00",
            "total_discount": "20.00",
            "total_tax_amount": "23.00",
            "total_amount": "183.00",
            "allowances": "20.00",
            "charges": "0.00",
        },
        [("S", "20", "100.00", "20.00"), ("E", "0", "30.00", "0.00"), ("S", "10", "30.00", "3.00")],
    ),
    (
        "line_charge_in_the_sub_total",
        new(lines=[line("1", "100", charge_percentage=D("5"), discount_amount=D("10"), taxation_items=[_s("10")])]),
        {
            "sub_total": "95.00",
            "total_discount": "10.00",
            "total_tax_amount": "9.50",
            "total_amount": "104.50",
            "allowances": "0.00",
            "charges": "0.00",
        },
        [("S", "10", "95.00", "9.50")],
    ),
    (
        "document_per_rate_group_tax_is_round_of_taxable_times_rate",
        new(
            tax_mode=TaxMode.DOCUMENT_PER_RATE,
            lines=[line("1", "10.04", taxation_items=[_s("19")]), line("1", "10.04", taxation_items=[_s("19")])],
            allowance_charges=[AllowanceCharge(amount=D("0.03"), tax_category=C.S, tax_rate=D(19))],
        ),
        # 20.05 x 19% = 3.8095 -> 3.81 (line-by-line: 1.91 + 1.91 - 0.01 = 3.81 too, but by the group rule)
        {
            "sub_total": "20.05",
            "total_discount": "0.03",
            "total_tax_amount": "3.81",
            "total_amount": "23.86",
            "allowances": "0.03",
            "charges": "0.00",
        },
        [("S", "19", "20.05", "3.81")],
    ),
    (
        "jpy_percentage_allowance_whole_yen",
        new(
            currency="JPY",
            lines=[line("3", "333", taxation_items=[_s("10")])],
            allowance_charges=[AllowanceCharge(percentage=D("3"), tax_category=C.S, tax_rate=D(10))],
        ),
        # 999 x 3% = 29.97 -> 30; tax 99.9 -> 100 minus 3 on the allowance
        {
            "sub_total": "969",
            "total_discount": "30",
            "total_tax_amount": "97",
            "total_amount": "1066",
            "allowances": "30",
            "charges": "0",
        },
        [("S", "10", "969", "97")],
    ),
    (
        "kwd_charge_three_decimals",
        new(
            currency="KWD",
            lines=[line("1", "10.005", taxation_items=[_s("5")])],
            allowance_charges=[AllowanceCharge(charge=True, percentage=D("1.5"), tax_category=C.S, tax_rate=D(5))],
        ),
        # charge 10.005 x 1.5% = 0.150075 -> 0.150; tax 0.50025 -> 0.500 + 0.0075 -> 0.008
        {
            "sub_total": "10.155",
            "total_discount": "0.000",
            "total_tax_amount": "0.508",
            "total_amount": "10.663",
            "allowances": "0.000",
            "charges": "0.150",
        },
        [("S", "5", "10.155", "0.508")],
    ),
]


@pytest.mark.parametrize(("inv", "totals", "rows"), [pytest.param(*t[1:], id=t[0]) for t in TOTALS])
def test_totals_with_allowances_and_charges(
    inv: Invoice, totals: dict[str, str], rows: list[tuple[str, str | None, str, str]]
) -> None:
    _priced(inv)
    assert _totals(inv) == totals
    assert _rows(inv) == rows
    for name, value in amounts(inv):  # every amount at the currency's exponent
        assert value is None or value == value.quantize(D(1).scaleb(-{"JPY": 0, "KWD": 3}.get(inv.currency, 2))), name


def test_breakdown_carries_category_and_first_exemption_reason() -> None:
    items = [
        TaxationItem(tax_category=C.K, tax_rate=D(0), exemption_reason_code="VATEX-EU-IC"),
        TaxationItem(tax_category=C.K, tax_rate=D(0), exemption_reason="Intra-community supply"),
    ]
    inv = _priced(new(lines=[line(taxation_items=[items[0]]), line(taxation_items=[items[1]])]))
    [row] = tax_breakdown(inv)
    assert (row.tax_category, row.category, row.exemption_reason, row.exemption_reason_code) == (
        C.K, "K", "Intra-community supply", "VATEX-EU-IC",
    )  # fmt: skip
    assert row.taxable_amount == D("200.00") and row.tax_amount == D("0.00")


def test_uncategorised_items_grouped_as_before() -> None:
    inv = _priced(new(lines=[line(taxation_items=[TaxationItem(tax_code="GST", tax_rate=D(5))])]))
    [row] = tax_breakdown(inv)
    assert (row.tax_category, row.category, row.rate, row.tax_amount) == (None, "GST", D(5), D("5.00"))


def test_client_totals_that_disagree_are_refused() -> None:
    ac = [AllowanceCharge(amount=D("10"))]
    assert _violations(new(allowance_charges=ac, sub_total=D("100"))) == ["invoice.sub_total"]
    assert _violations(new(allowance_charges=ac, total_amount=D("90"))) == []
    assert _violations(new(lines=[line(charge_amount=D("1"), charge_percentage=D("2"))])) == [
        "invoice.line_items[0].charge_amount"
    ]


def test_allowance_bigger_than_the_lines_is_a_negative_total() -> None:
    assert _violations(new(allowance_charges=[AllowanceCharge(amount=D("150"))])) == ["invoice.total_amount"]


def test_an_allowance_counts_negative_a_charge_positive() -> None:
    assert AllowanceCharge(amount=Decimal("1")).signed == Decimal("-1")
    assert AllowanceCharge(amount=Decimal("1"), charge=True).signed == Decimal("1")
