"""CII D16B (EN 16931) writer and reader (service/einvoice/cii.py) with the real validator: the XML's fixed
parts, refusals of broken documents by their exact rule ids, and unreadable values refused naming their
XPath. The published examples are in test_cii_examples.py, the property test in test_cii_properties.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from service.domain.errors import InvalidArgument
from service.einvoice import cii, semantic
from service.einvoice.cii import NS, ROOT
from service.einvoice.document import Document
from service.einvoice.terms import CARRIED, TERMS
from service.einvoice.validation import Syntax, fatal, parser, validate
from tests.einvoice.generate import SELLER, issued, line, taxed

D = Decimal
_SETTLEMENT = f"{ROOT}/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
_TOTALS = f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_LINE1 = f"{ROOT}/rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem[1]"


def _fatal_rules(doc: Document) -> set[str]:
    return {f.rule_id for f in fatal(validate(Syntax.CII, cii.document_xml(doc)))}


def _parse(xml: bytes) -> Any:
    return etree.fromstring(xml, parser())


def test_fixed_parts_and_value_formats() -> None:
    inv = issued(lines=[line("1.5", "10.00", discount_percentage=D(10))], note="Danke")
    root = _parse(cii.document_xml(semantic.from_invoice(inv)))

    def text(path: str) -> list[str]:
        return [str(x) if isinstance(x, str) else x.text for x in root.xpath(path, namespaces=NS)]

    assert text("rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == [
        "urn:cen.eu:en16931:2017"
    ]
    assert text("rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString") == ["20260302"]
    assert text("rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString/@format") == ["102"]
    assert text("rsm:ExchangedDocument/ram:IncludedNote/ram:Content") == ["Danke"]
    assert text(".//ram:BilledQuantity") == ["1.5"]
    assert text(".//ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeAllowanceCharge/ram:CalculationPercent") == [
        "10"
    ]
    assert text(".//ram:TaxTotalAmount/@currencyID") == ["EUR"]
    assert text(".//ram:TaxTotalAmount") == ["2.57"]
    assert text(".//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID/@schemeID") == ["VA"]


def test_valid_invoice_has_no_fatal_finding() -> None:
    assert _fatal_rules(semantic.from_invoice(issued())) == set()


# -- broken documents are refused with the exact rule ids -------------------------------------------


def _no_seller_vat(doc: Document) -> None:
    doc.seller.vat_id = ""


def _tax_off(doc: Document) -> None:
    doc.vat_breakdown[0].tax_amount += D("0.10")


def _taxable_off(doc: Document) -> None:
    doc.vat_breakdown[0].taxable_amount += D("5.00")


def _unknown_category(doc: Document) -> None:
    doc.lines[0].category = doc.vat_breakdown[0].category = "X"


def _no_number(doc: Document) -> None:
    doc.number = ""


# (case, what breaks the valid document, the fatal rule ids the validator gives)
BROKEN: list[tuple[str, Callable[[Document], None], set[str]]] = [
    ("seller_vat_id_missing_with_standard_rated_lines", _no_seller_vat, {"BR-S-02"}),
    ("breakdown_tax_does_not_add_up", _tax_off, {"BR-CO-14"}),
    ("breakdown_taxable_does_not_add_up", _taxable_off, {"BR-S-08"}),
    # Factur-X's code-list assertions (it has no BR-CL ids): line BT-151, breakdown BT-118.
    ("unknown_vat_category", _unknown_category, {"FX-SCH-A-000619", "FX-SCH-A-000587"}),
    ("no_invoice_number", _no_number, {"BR-02"}),
]


@pytest.mark.parametrize(("breaks", "rules"), [pytest.param(*r[1:], id=r[0]) for r in BROKEN])
def test_broken_document_refused_with_rule_ids(breaks: Callable[[Document], None], rules: set[str]) -> None:
    doc = semantic.from_invoice(issued())
    breaks(doc)
    assert _fatal_rules(doc) == rules


def test_line_without_vat_category_is_refused_by_the_schema() -> None:
    """A taxation item without a category (as before categories existed) has no BT-151: the CII schema wants
    ram:CategoryCode, so the document never passes (an empty code would: the CEN rules test its presence)."""
    inv = issued(lines=[line(item=replace(taxed(), tax_category=None))])
    findings = fatal(validate(Syntax.CII, cii.document_xml(semantic.from_invoice(inv))))
    assert {f.rule_id for f in findings} == {"XSD"}
    assert all("CategoryCode" in f.message for f in findings)


def test_missing_seller_vat_id_from_the_canonical_invoice() -> None:
    """The profile without a VAT id: BR-S-02, naming the canonical field to fix."""
    inv = issued(profile=replace(SELLER, tax_registrations=[]))
    findings = fatal(validate(Syntax.CII, cii.document_xml(semantic.from_invoice(inv))))
    assert [(f.rule_id, f.field) for f in findings] == [("BR-S-02", "seller.tax_registrations[scheme=VAT].id")]


# -- reading: unreadable values are refused naming their XPath ----------------------------------------


def _spoil(root: Any, path: str, value: str | None) -> None:
    """Sets the text (or attribute) at the absolute `path`; None removes the element."""
    relative = path.removeprefix(ROOT + "/")
    element, _, attribute = relative.partition("/@")
    node = root.xpath(element, namespaces=NS)[0]
    if value is None:
        node.getparent().remove(node)
    elif attribute:
        node.set(attribute, value)
    else:
        node.text = value


_ISSUE = f"{ROOT}/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString"
_LINE_SETTLEMENT = f"{_LINE1}/ram:SpecifiedLineTradeSettlement"

# (case, absolute XPath of the value made bad, the bad value (None: removed), what the refusal says)
UNREADABLE: list[tuple[str, str, str | None, str]] = [
    ("amount_with_comma", f"{_TOTALS}/ram:GrandTotalAmount", "119,00", "is not a decimal number"),
    (
        "amount_as_float",
        f"{_LINE_SETTLEMENT}/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        "1E+2",
        "is not a decimal number",
    ),
    ("quantity_as_text", f"{_LINE1}/ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", "ten", "is not a decimal"),
    ("date_with_dashes", _ISSUE, "2026-03-02", "is not a date YYYYMMDD"),
    ("impossible_date", _ISSUE, "20260231", "is not a date YYYYMMDD"),
    ("date_not_format_102", f"{_ISSUE}/@format", "610", "must be 102"),
    (
        "unknown_line_category",
        f"{_LINE_SETTLEMENT}/ram:ApplicableTradeTax/ram:CategoryCode",
        "X",
        "is not an EN 16931 VAT category",
    ),
    ("unknown_document_type", f"{ROOT}/rsm:ExchangedDocument/ram:TypeCode", "384", "must be 380 (invoice) or 381"),
    (
        "indicator_not_boolean",
        f"{_LINE_SETTLEMENT}/ram:SpecifiedTradeAllowanceCharge[1]/ram:ChargeIndicator/udt:Indicator",
        "yes",
        "must be true or false",
    ),
    ("amount_due_missing", f"{_TOTALS}/ram:DuePayableAmount", None, "is required (BT-115)"),
]


@pytest.mark.parametrize(("path", "value", "why"), [pytest.param(*r[1:], id=r[0]) for r in UNREADABLE])
def test_unreadable_value_refused_naming_its_xpath(path: str, value: str | None, why: str) -> None:
    root = _parse(cii.document_xml(semantic.from_invoice(issued(lines=[line(discount_amount=D("1.00"))]))))
    _spoil(root, path, value)
    with pytest.raises(InvalidArgument) as info:
        cii.read_document(root)
    assert [v.field for v in info.value.violations] == [path]
    assert why in info.value.violations[0].description


def test_every_unreadable_value_is_named_at_once() -> None:
    root = _parse(cii.document_xml(semantic.from_invoice(issued())))
    _spoil(root, _ISSUE, "yesterday")
    _spoil(root, f"{_TOTALS}/ram:GrandTotalAmount", "NaN")
    with pytest.raises(InvalidArgument) as info:
        cii.read_document(root)
    assert [v.field for v in info.value.violations] == [_ISSUE, f"{_TOTALS}/ram:GrandTotalAmount"]


def test_text_xml_cannot_carry_is_refused_naming_the_field() -> None:
    doc = semantic.from_invoice(issued())
    doc.lines[0].name = "bell\x07"
    with pytest.raises(InvalidArgument) as info:
        cii.document_xml(doc)
    assert info.value.violations[0].field == "line_items[].description"


def test_not_a_cii_document() -> None:
    with pytest.raises(InvalidArgument) as info:
        cii.read_document(_parse(b"<Invoice/>"))
    assert info.value.violations[0].field == "/"


# -- the table ------------------------------------------------------------------------------------


def test_every_carried_term_has_its_cii_path_and_every_path_a_term() -> None:
    placed = cii.paths()
    assert sorted(CARRIED - placed.keys()) == []
    assert sorted(placed.keys() - TERMS.keys()) == []
    assert placed["BT-1"] == [f"{ROOT}/rsm:ExchangedDocument/ram:ID"]
    assert placed["BT-141"] == [
        f"{_LINE_SETTLEMENT.replace('[1]', '')}/ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount"
    ]
