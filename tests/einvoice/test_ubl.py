"""UBL 2.1 (EN 16931, Peppol BIS Billing 3.0): Documents written, validated by the real XSD and CEN
schematron, and read back equal; broken documents get the exact rule ids; broken XML values are refused
naming their XPath."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from lxml import etree

from service.domain.errors import InvalidArgument
from service.einvoice.document import (
    CREDIT_NOTE,
    INVOICE,
    Address,
    AllowanceCharge,
    Document,
    Line,
    Party,
    VatBreakdown,
)
from service.einvoice.terms import TERMS
from service.einvoice.ubl import (
    CUSTOMIZATION_ID,
    NS,
    PROFILE_ID,
    TABLE,
    Group,
    Leaf,
    Node,
    document_xml,
    read_document,
    read_xml,
    xpaths,
)
from service.einvoice.validation import Finding, Syntax, fatal, parser, validate
from tests.einvoice.documents import documents

D = Decimal
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def parse(xml: bytes) -> Any:
    return etree.fromstring(xml, parser())


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule_id for f in fatal(findings)}


def assert_valid_and_round_trips(doc: Document) -> bytes:
    xml = document_xml(doc)
    assert fatal(validate(Syntax.UBL, xml)) == []
    root = parse(xml)
    assert read_document(root) == doc
    # Peppol BIS 3.0 (PEPPOL-EN16931-R008): no empty elements; the CEN rules do not check it
    assert [el.tag for el in root.iter() if len(el) == 0 and not (el.text or "").strip()] == []
    return xml


@PROPERTY
@given(documents(INVOICE))
def test_invoices_export_valid_and_read_back_equal(doc: Document) -> None:
    root = parse(assert_valid_and_round_trips(doc))
    assert root.tag == f"{{{NS['inv']}}}Invoice"


@PROPERTY
@given(documents(CREDIT_NOTE))
def test_credit_notes_export_valid_and_read_back_equal(doc: Document) -> None:
    root = parse(assert_valid_and_round_trips(doc))
    assert root.tag == f"{{{NS['cn']}}}CreditNote"
    assert root.find("cbc:CreditNoteTypeCode", NS).text == "381"
    assert root.find("cac:CreditNoteLine/cbc:CreditedQuantity", NS) is not None
    assert root.find("cbc:DueDate", NS) is None  # UBL 2.1 credit notes: PaymentMeans/PaymentDueDate
    due = root.findtext("cac:PaymentMeans/cbc:PaymentDueDate", namespaces=NS)
    assert due == (doc.due_date.isoformat() if doc.due_date else None)


@pytest.mark.parametrize("category", ["S", "Z", "E", "AE", "K", "G", "O", "L", "M"])
def test_every_vat_category_exports_valid(category: str) -> None:
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(documents(category=category))
    def check(doc: Document) -> None:
        assert category in {b.category for b in doc.vat_breakdown}
        assert_valid_and_round_trips(doc)

    check()


# -- one fixed document, broken on purpose ---------------------------------------------------------------


def simple(**changes: Any) -> Document:
    """Two standard-rated lines at 19 %, one at 7 %, a document charge: valid as it is."""
    lines = [
        Line("1", D("3"), "C62", D("300.00"), D("100.00"), "Consulting", "S", D("19")),
        Line(
            "2",
            D("2"),
            "HUR",
            D("90.00"),
            D("50.00"),
            "Support",
            "S",
            D("19"),
            allowances_charges=[AllowanceCharge(False, D("10.00"), reason="Loyalty", reason_code="95")],
        ),
        Line("3", D("1"), "C62", D("20.00"), D("20.00"), "Book", "S", D("7")),
    ]
    doc = Document(
        type_code=INVOICE,
        number="INV-1",
        issue_date=date(2026, 1, 15),
        currency="EUR",
        seller=Party(
            name="Seller GmbH",
            legal_id="HRB 1234",
            vat_id="DE123456789",
            address=Address(["Hauptstr. 1"], "Berlin", "10115", country="DE"),
        ),
        buyer=Party(name="Buyer SARL", vat_id="FR12345678901", address=Address(country="FR")),
        lines=lines,
        vat_breakdown=[
            VatBreakdown(D("395.00"), D("75.05"), "S", D("19")),
            VatBreakdown(D("20.00"), D("1.40"), "S", D("7")),
        ],
        line_total=D("410.00"),
        charge_total=D("5.00"),
        tax_exclusive_total=D("415.00"),
        tax_total=D("76.45"),
        grand_total=D("491.45"),
        due_payable=D("491.45"),
        due_date=date(2026, 2, 14),
        allowances_charges=[
            AllowanceCharge(True, D("5.00"), category="S", rate=D("19"), reason="Freight", reason_code="FC")
        ],
    )
    return dataclasses.replace(doc, **changes)


def without_charge(**changes: Any) -> Document:
    vat = [VatBreakdown(D("390.00"), D("74.10"), "S", D("19")), VatBreakdown(D("20.00"), D("1.40"), "S", D("7"))]
    return simple(
        allowances_charges=[],
        charge_total=None,
        vat_breakdown=vat,
        tax_exclusive_total=D("410.00"),
        tax_total=D("75.50"),
        grand_total=D("485.50"),
        due_payable=D("485.50"),
        **changes,
    )


def test_the_fixed_documents_are_valid() -> None:
    assert validate(Syntax.UBL, document_xml(simple())) == []
    assert validate(Syntax.UBL, document_xml(without_charge())) == []


def test_missing_seller_vat_id_with_standard_rated_lines_is_br_s_02() -> None:
    seller = dataclasses.replace(simple().seller, vat_id="")
    assert rules(validate(Syntax.UBL, document_xml(simple(seller=seller)))) == {"BR-S-02", "BR-S-04"}  # lines, charge
    assert rules(validate(Syntax.UBL, document_xml(without_charge(seller=seller)))) == {"BR-S-02"}


def test_seller_tax_registration_satisfies_br_s_02() -> None:
    seller = dataclasses.replace(simple().seller, vat_id="", tax_id="27/123/45678")
    doc = simple(seller=seller)
    assert_valid_and_round_trips(doc)


def test_taxable_amount_not_the_sum_of_its_lines_is_br_s_08() -> None:
    vat = simple().vat_breakdown
    broken = [dataclasses.replace(vat[0], taxable_amount=vat[0].taxable_amount + 3), vat[1]]
    assert rules(validate(Syntax.UBL, document_xml(simple(vat_breakdown=broken)))) == {"BR-S-08"}


def test_vat_total_not_the_sum_of_the_breakdown_is_br_co_14() -> None:
    doc = simple()
    broken = simple(
        tax_total=doc.tax_total + D("0.01"),
        grand_total=doc.grand_total + D("0.01"),
        due_payable=doc.due_payable + D("0.01"),
    )
    assert rules(validate(Syntax.UBL, document_xml(broken))) == {"BR-CO-14"}


def test_unknown_vat_category_is_the_code_list_rule() -> None:
    doc = simple()
    lines = [dataclasses.replace(doc.lines[0], category="X"), *doc.lines[1:]]
    assert "BR-CL-18" in rules(validate(Syntax.UBL, document_xml(simple(lines=lines))))
    vat = [dataclasses.replace(doc.vat_breakdown[1], category="X")]
    assert "BR-CL-17" in rules(validate(Syntax.UBL, document_xml(simple(vat_breakdown=doc.vat_breakdown[:1] + vat))))


@PROPERTY
@given(documents(category="S"))
def test_any_standard_rated_document_without_seller_vat_is_br_s_02(doc: Document) -> None:
    seller = dataclasses.replace(doc.seller, vat_id="", tax_id="")
    assert "BR-S-02" in rules(validate(Syntax.UBL, document_xml(dataclasses.replace(doc, seller=seller))))


# -- broken XML values: InvalidArgument naming the XPath ---------------------------------------------------


def _set(path: str, text: str) -> Callable[[Any], None]:
    def change(root: Any) -> None:
        root.xpath(path, namespaces=NS)[0].text = text

    return change


def _drop(path: str) -> Callable[[Any], None]:
    def change(root: Any) -> None:
        el = root.xpath(path, namespaces=NS)[0]
        el.getparent().remove(el)

    return change


def _unset(path: str, attr: str) -> Callable[[Any], None]:
    def change(root: Any) -> None:
        del root.xpath(path, namespaces=NS)[0].attrib[attr]

    return change


BROKEN = [
    (_set("cbc:IssueDate", "2026-02-30"), "/Invoice/cbc:IssueDate", "not a date"),
    (_set("cbc:DueDate", "15.01.2026"), "/Invoice/cbc:DueDate", "not a date"),
    (
        _set("cac:InvoiceLine[2]/cbc:LineExtensionAmount", "90,00"),
        "/Invoice/cac:InvoiceLine[2]/cbc:LineExtensionAmount",
        "not a decimal",
    ),
    (
        _set("cac:InvoiceLine[1]/cbc:InvoicedQuantity", "NaN"),
        "/Invoice/cac:InvoiceLine[1]/cbc:InvoicedQuantity",
        "not a decimal",
    ),
    (
        _set("cac:InvoiceLine[3]/cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", "7%"),
        "/Invoice/cac:InvoiceLine[3]/cac:Item/cac:ClassifiedTaxCategory/cbc:Percent",
        "not a decimal",
    ),
    (
        _set("cac:TaxTotal/cac:TaxSubtotal[2]/cbc:TaxAmount", "1e2"),
        "/Invoice/cac:TaxTotal/cac:TaxSubtotal[2]/cbc:TaxAmount",
        "not a decimal",
    ),
    (
        _set("cac:AllowanceCharge/cbc:ChargeIndicator", "yes"),
        "/Invoice/cac:AllowanceCharge[1]/cbc:ChargeIndicator",
        "not true or false",
    ),
    (_drop("cbc:ID"), "/Invoice/cbc:ID", "missing"),
    (_drop("cbc:DocumentCurrencyCode"), "/Invoice/cbc:DocumentCurrencyCode", "missing"),
    (_drop("cac:LegalMonetaryTotal/cbc:PayableAmount"), "/Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount", "missing"),
    (_drop("cac:AccountingCustomerParty"), "/Invoice/cac:AccountingCustomerParty/cac:Party", "missing"),
    (
        _drop("cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"),
        "/Invoice/cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
        "missing",
    ),
    (
        _drop("cac:InvoiceLine[2]/cac:Item/cac:ClassifiedTaxCategory/cbc:ID"),
        "/Invoice/cac:InvoiceLine[2]/cac:Item/cac:ClassifiedTaxCategory/cbc:ID",
        "missing",
    ),
    (
        _unset("cac:InvoiceLine[1]/cbc:InvoicedQuantity", "unitCode"),
        "/Invoice/cac:InvoiceLine[1]/cbc:InvoicedQuantity/@unitCode",
        "missing",
    ),
    (
        _unset("cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "currencyID"),
        "/Invoice/cac:LegalMonetaryTotal/cbc:LineExtensionAmount/@currencyID",
        "missing",
    ),
    (
        lambda r: r.find("cac:InvoiceLine/cac:Price/cbc:PriceAmount", NS).set("currencyID", "USD"),
        "/Invoice/cac:InvoiceLine[1]/cac:Price/cbc:PriceAmount/@currencyID",
        "not the document currency",
    ),
]


@pytest.mark.parametrize(("change", "field", "why"), BROKEN, ids=[b[1] for b in BROKEN])
def test_broken_values_are_refused_naming_their_xpath(change: Callable[[Any], None], field: str, why: str) -> None:
    root = parse(document_xml(simple()))
    change(root)
    with pytest.raises(InvalidArgument) as err:
        read_document(root)
    assert [(v.field, why in v.description) for v in err.value.violations] == [(field, True)]


def test_every_broken_value_is_reported_at_once() -> None:
    root = parse(
        document_xml(simple(type_code="381", payment_means_code="58", payment_account="DE89370400440532013000"))
    )
    _set("cbc:IssueDate", "yesterday")(root)
    _drop("cac:CreditNoteLine[2]/cbc:CreditedQuantity")(root)
    _set("cac:PaymentMeans/cbc:PaymentDueDate", "2026-13-01")(root)
    with pytest.raises(InvalidArgument) as err:
        read_document(root)
    assert [v.field for v in err.value.violations] == [
        "/CreditNote/cbc:IssueDate",
        "/CreditNote/cac:PaymentMeans/cbc:PaymentDueDate",
        "/CreditNote/cac:CreditNoteLine[2]/cbc:CreditedQuantity",
    ]


def test_a_document_that_is_not_ubl_is_refused() -> None:
    root = parse(b'<CrossIndustryInvoice xmlns="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"/>')
    with pytest.raises(InvalidArgument) as err:
        read_document(root)
    assert err.value.violations[0].field == "/"


# -- Peppol BIS Billing 3.0 ---------------------------------------------------------------------------------


def test_peppol_bis_customization_and_profile_are_written_and_accepted_by_the_cen_rules() -> None:
    for doc in (simple(), simple(type_code="381", due_date=None)):
        root = parse(assert_valid_and_round_trips(doc))
        assert root.findtext("cbc:CustomizationID", namespaces=NS) == CUSTOMIZATION_ID
        assert root.findtext("cbc:ProfileID", namespaces=NS) == PROFILE_ID
        assert CUSTOMIZATION_ID.startswith("urn:cen.eu:en16931:2017#compliant#")  # a CIUS of EN 16931


def test_sales_order_without_purchase_order_writes_peppols_na_and_reads_it_back_absent() -> None:
    doc = simple(sales_order_reference="SO-77")
    root = parse(assert_valid_and_round_trips(doc))
    assert root.findtext("cac:OrderReference/cbc:ID", namespaces=NS) == "NA"
    assert root.findtext("cac:OrderReference/cbc:SalesOrderID", namespaces=NS) == "SO-77"


# -- the table -----------------------------------------------------------------------------------------------


def full(type_code: str = INVOICE) -> Document:
    """The fixed document with every term the table places."""
    doc = simple(type_code=type_code)
    party = dataclasses.replace(
        doc.seller,
        trading_name="Seller",
        identifier="4035811991021",
        tax_id="27/123/45678",
        electronic_address="4035811991021",
        electronic_scheme="0088",
        address=Address(["Hauptstr. 1", "Hof", "3. OG"], "Berlin", "10115", "BE", "DE"),
        contact_name="Anna",
        contact_phone="+49301234567",
        contact_email="anna@example.com",
    )
    lines = [
        dataclasses.replace(
            doc.lines[0],
            period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 31),
            seller_item_id="C-1",
            price_base_quantity=D("1"),
            allowances_charges=[AllowanceCharge(True, D("0.00"), D("300.00"), D("0"), reason="Setup")],
        ),
        *doc.lines[1:],
    ]
    return dataclasses.replace(
        doc,
        seller=party,
        buyer=dataclasses.replace(party, name="Buyer", tax_id="", vat_id="FR12345678901"),
        lines=lines,
        vat_breakdown=[*doc.vat_breakdown, VatBreakdown(D("0.00"), D("0.00"), "E", D("0"), "Exempt", "VATEX-EU-132")],
        allowances_charges=[
            *doc.allowances_charges,
            AllowanceCharge(False, D("0.00"), D("410.00"), D("0"), "E", D("0"), "Promotion", "95"),
        ],
        allowance_total=D("0.00"),
        paid_amount=D("0.00"),
        rounding_amount=D("0.00"),
        buyer_reference="REF-1",
        purchase_order_reference="PO-1",
        sales_order_reference="SO-1",
        payment_terms="30 days",
        notes=["Thanks"],
        preceding_invoice="INV-0",
        preceding_invoice_date=date(2025, 12, 1),
        delivery_name="Warehouse",
        delivery_date=date(2026, 1, 10),
        delivery_address=Address(["Lager 1", "Tor 2", "Rampe 3"], "Hamburg", "20095", "HH", "DE"),
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        payment_means_code="58",
        remittance_information="INV-1",
        payment_account="DE89370400440532013000",
        payment_account_name="Seller GmbH",
        payment_service_provider="COBADEFFXXX",
    )


@pytest.mark.parametrize("type_code", [INVOICE, CREDIT_NOTE])
def test_every_row_of_the_printed_table_selects_what_the_writer_wrote(type_code: str) -> None:
    doc = full(type_code)
    root = parse(assert_valid_and_round_trips(doc))
    prefix = "inv" if type_code == INVOICE else "cn"
    rows = xpaths(type_code)
    assert len(rows) > 100
    for bt, path in rows:
        absolute = f"/{prefix}:" + path.removeprefix("/")
        assert root.xpath(absolute, namespaces=NS), (bt, path)


def test_the_table_names_en16931_terms_only() -> None:
    for type_code in (INVOICE, CREDIT_NOTE):
        for bt, path in xpaths(type_code):
            for term in bt.split("/"):
                base = term[: term.rindex("-")] if term.count("-") == 2 else term  # BT-34-1: BT-34's scheme
                assert base in TERMS, (term, path)


def _placed(nodes: tuple[Node, ...], cls: type, out: set[tuple[str, str]]) -> None:
    for node in nodes:
        if isinstance(node, Leaf):
            out.add((cls.__name__, node.attr))
            out.update((cls.__name__, attr) for _, attr, _ in node.xml_attrs)
        elif isinstance(node, Group):
            if node.attr:
                out.add((cls.__name__, node.attr))
            _placed(node.children, node.make if node.make is not None else cls, out)


def test_the_table_places_every_document_attribute() -> None:
    placed: set[tuple[str, str]] = set()
    _placed(TABLE.children, Document, placed)
    every = {
        (cls.__name__, f.name)
        for cls in (Document, Party, Address, Line, AllowanceCharge, VatBreakdown)
        for f in dataclasses.fields(cls)
    }
    assert every - placed == set()


def test_hostile_xml_is_refused_without_expanding_entities_or_reading_files() -> None:
    xml = document_xml(simple())
    with pytest.raises(InvalidArgument) as err:
        read_xml(xml[:-20])
    assert err.value.violations[0].field == "/"
    body = xml.decode().split("?>", 1)[1]
    dtd = '<!DOCTYPE Invoice [<!ENTITY secret SYSTEM "file:///etc/hostname"><!ENTITY a "aaaaaaaaaa">]>'
    hostile = dtd + body.replace("<cbc:ID>INV-1</cbc:ID>", "<cbc:ID>&secret;&a;</cbc:ID>", 1)
    with pytest.raises(InvalidArgument) as err:
        read_xml(hostile.encode())
    assert [v.field for v in err.value.violations] == ["/Invoice/cbc:ID"]  # entities left unexpanded: empty
    deep = b"<a>" * 300 + b"</a>" * 300
    with pytest.raises(InvalidArgument):
        read_xml(deep)
