"""The UBL examples the EN 16931 project publishes (ConnectingEurope/eInvoicing-EN16931, ubl/examples), made
here from their published field values (the files are not copied): read, checked term by term, exported
again and valid by the XSD and the CEN rules. Terms the Document does not carry (item descriptions, order
line references, payee and tax representative, identifier schemes) are left out or, in the XML read,
ignored."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree

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
from service.einvoice.ubl import CUSTOMIZATION_ID, NS, document_xml, read_document
from service.einvoice.validation import Syntax, fatal, parser, validate

D = Decimal


def parse(xml: bytes) -> Any:
    return etree.fromstring(xml, parser())


def export_valid(doc: Document) -> Any:
    xml = document_xml(doc)
    assert fatal(validate(Syntax.UBL, xml)) == []
    root = parse(xml)
    assert read_document(root) == doc
    return root


def text(root: Any, path: str) -> list[str]:
    return [(el.text or "") if isinstance(el, etree._Element) else str(el) for el in root.xpath(path, namespaces=NS)]


def test_cen_example_2_invoice_nok_two_standard_rates_exempt_line_allowances_charges_prepaid() -> None:
    """ubl-tc434-example2.xml: NOK, S 25 % and 15 %, an exempt returned item, document and line allowances
    and charges, a prepaid amount, negative quantities."""
    s25, s15 = ("S", D("25")), ("S", D("15"))
    one = D("1")
    doc = Document(
        type_code=INVOICE,
        number="TOSL108",
        issue_date=date(2013, 6, 30),
        due_date=date(2013, 7, 20),
        notes=["Ordered in our booth at the convention"],
        currency="NOK",
        period_start=date(2013, 6, 1),
        period_end=date(2013, 6, 30),
        purchase_order_reference="123",
        seller=Party(
            name="Salescompany ltd.",
            identifier="1238764941386",
            legal_id="123456789",
            vat_id="NO123456789MVA",
            address=Address(["Main street 34", "Suite 123"], "Big city", "303", "RegionA", "NO"),
            contact_name="Antonio Salesmacher",
            contact_phone="46211230",
            contact_email="antonio@salescompany.no",
        ),
        buyer=Party(
            name="The Buyercompany",
            identifier="3456789012098",
            legal_id="987654321",
            vat_id="NO987654321MVA",
            address=Address(["Anystreet 8", "Back door"], "Anytown", "101", "RegionB", "NO"),
            contact_name="John Doe",
            contact_phone="5121230",
            contact_email="john@buyercompany.no",
        ),
        delivery_date=date(2013, 6, 15),
        delivery_address=Address(["Deliverystreet 2", "Side door"], "DeliveryCity", "523427", "RegionD", "NO"),
        payment_means_code="30",
        remittance_information="0003434323213231",
        payment_account="NO9386011117947",
        payment_service_provider="DNBANOKK",
        payment_terms="2 % discount if paid within 2 days\nPenalty percentage 10% from due date",
        allowances_charges=[
            AllowanceCharge(
                False, D("100.00"), category="S", rate=D("25"), reason="Promotion discount", reason_code="88"
            ),
            AllowanceCharge(True, D("100.00"), category="S", rate=D("25"), reason="Freight"),
        ],
        vat_breakdown=[
            VatBreakdown(D("1460.50"), D("365.13"), *s25),
            VatBreakdown(D("1.00"), D("0.15"), *s15),
            VatBreakdown(D("-25.00"), D("0.00"), "E", D("0"), "Exempt New Means of Transport"),
        ],
        tax_total=D("365.28"),
        line_total=D("1436.50"),
        tax_exclusive_total=D("1436.50"),
        grand_total=D("1801.78"),
        allowance_total=D("100.00"),
        charge_total=D("100.00"),
        paid_amount=D("1000.00"),
        due_payable=D("801.78"),
        lines=[
            Line(
                "1",
                D("2"),
                "EA",
                D("1273.00"),
                D("1273.00"),
                "Laptop computer",
                *s25,
                period_start=date(2013, 6, 1),
                period_end=date(2013, 6, 30),
                allowances_charges=[
                    AllowanceCharge(False, D("12.00"), reason="Damage"),
                    AllowanceCharge(True, D("12.00"), reason="Testing"),
                ],
                seller_item_id="JB007",
                price_base_quantity=one,
            ),
            Line(
                "2",
                D("-1"),
                "EA",
                D("-3.96"),
                D("3.96"),
                'Returned "Advanced computing" book',
                *s15,
                seller_item_id="JB008",
                price_base_quantity=one,
            ),
            Line(
                "3",
                D("2"),
                "EA",
                D("4.96"),
                D("2.48"),
                '"Computing for dummies" book',
                *s15,
                seller_item_id="JB009",
                price_base_quantity=one,
            ),
            Line(
                "4",
                D("-1"),
                "EA",
                D("-25.00"),
                D("25.00"),
                "Returned IBM 5150 desktop",
                "E",
                D("0"),
                seller_item_id="JB010",
                price_base_quantity=one,
            ),
            Line(
                "5",
                D("250"),
                "MTR",
                D("187.50"),
                D("0.75"),
                "Network cable",
                *s25,
                seller_item_id="JB011",
                price_base_quantity=one,
            ),
        ],
    )
    root = export_valid(doc)
    assert text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == ["801.78"]
    assert text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount/@currencyID") == ["NOK"]
    assert text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID") == ["S", "S", "E"]
    assert text(root, "cac:InvoiceLine/cbc:InvoicedQuantity/@unitCode") == ["EA", "EA", "EA", "EA", "MTR"]
    assert text(root, "cac:AllowanceCharge/cbc:ChargeIndicator") == ["false", "true"]
    assert text(root, "cac:Delivery/cac:DeliveryLocation/cac:Address/cbc:CityName") == ["DeliveryCity"]
    assert text(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID") == [
        "DNBANOKK"
    ]


def test_cen_credit_note_1_exempt_belgian_endpoints() -> None:
    """ubl-tc434-creditnote1.xml: a Belgian credit note, one exempt line, Peppol endpoints (scheme 0201)."""
    doc = Document(
        type_code=CREDIT_NOTE,
        number="018304 / 28865",
        issue_date=date(2019, 9, 23),
        currency="EUR",
        buyer_reference="018304 / 28865",
        period_start=date(2019, 2, 1),
        period_end=date(2019, 2, 28),
        seller=Party(
            name="My Supplier Company",
            trading_name="My Supplier Company N.V.",
            legal_id="0000000196",
            vat_id="BE0000000196",
            electronic_address="0000000196",
            electronic_scheme="0201",
            address=Address(["De Grote Meir 22"], "ANTWERPEN", "2000", country="BE"),
            contact_email="john.doole@mysuppliercompany.be",
        ),
        buyer=Party(
            name="My Customer Company",
            trading_name="My Customer Company S.A.",
            legal_id="0000000295",
            vat_id="BE0000000295",
            electronic_address="0000000295",
            electronic_scheme="0201",
            address=Address(["Boulevard Sint Michel 53"], "BRUXELLES", "1000", country="BE"),
            contact_email="pete.smith@mycustomercompany.be",
        ),
        payment_means_code="1",
        remittance_information="010676609538",
        payment_account="BE91000000143476",
        payment_service_provider="BPOTBEB1",
        vat_breakdown=[VatBreakdown(D("100.11"), D("0.00"), "E", D("0.00"), "Taxes are not applicable")],
        tax_total=D("0.00"),
        line_total=D("100.11"),
        tax_exclusive_total=D("100.11"),
        grand_total=D("100.11"),
        due_payable=D("100.11"),
        lines=[
            Line(
                "1",
                D("1.00"),
                "C62",
                D("100.11"),
                D("100.11"),
                "Exonération du versement du PP",
                "E",
                D("0.00"),
                seller_item_id="V55",
            )
        ],
    )
    root = export_valid(doc)
    assert etree.QName(root).localname == "CreditNote"
    assert text(root, "cbc:CreditNoteTypeCode") == ["381"]
    assert text(root, "cac:CreditNoteLine/cbc:CreditedQuantity") == ["1.00"]
    assert text(root, "cac:AccountingSupplierParty/cac:Party/cbc:EndpointID/@schemeID") == ["0201"]
    assert text(root, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:TaxExemptionReason") == [
        "Taxes are not applicable"
    ]


# ubl-tc434-example7.xml's published values in UBL as another writer lays them out: indented, the plain EN 16931
# customization id, an item description and an order line reference (not carried: ignored), VAT category O.
EXAMPLE_7 = """<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
    xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
  <cbc:ID>INVOICE_test_7</cbc:ID>
  <cbc:IssueDate>2013-03-11</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:Note>Testscenario 7</cbc:Note>
  <cbc:DocumentCurrencyCode>SEK</cbc:DocumentCurrencyCode>
  <cac:InvoicePeriod>
    <cbc:StartDate>2013-01-01</cbc:StartDate>
    <cbc:EndDate>2013-12-31</cbc:EndDate>
  </cac:InvoicePeriod>
  <cac:OrderReference><cbc:ID>Order_9988_x</cbc:ID></cac:OrderReference>
  <cac:AccountingSupplierParty>
    <cac:Party>
      <cac:PartyIdentification><cbc:ID>5532331183</cbc:ID></cac:PartyIdentification>
      <cac:PartyName><cbc:Name>Civic Service Centre</cbc:Name></cac:PartyName>
      <cac:PostalAddress>
        <cbc:StreetName>Main street 2, Building 4</cbc:StreetName>
        <cbc:CityName>Big city</cbc:CityName>
        <cbc:PostalZone>54321</cbc:PostalZone>
        <cac:Country><cbc:IdentificationCode>SE</cbc:IdentificationCode></cac:Country>
      </cac:PostalAddress>
      <cac:PartyLegalEntity>
        <cbc:RegistrationName>The Sellercompany Incorporated</cbc:RegistrationName>
      </cac:PartyLegalEntity>
      <cac:Contact>
        <cbc:Name>Anthon Larsen</cbc:Name>
        <cbc:Telephone>4698989898</cbc:Telephone>
        <cbc:ElectronicMail>Anthon@SellerCompany.se</cbc:ElectronicMail>
      </cac:Contact>
    </cac:Party>
  </cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty>
    <cac:Party>
      <cac:PostalAddress>
        <cbc:StreetName>Anystreet 8</cbc:StreetName>
        <cbc:AdditionalStreetName>Back door</cbc:AdditionalStreetName>
        <cbc:CityName>Anytown</cbc:CityName>
        <cbc:PostalZone>101</cbc:PostalZone>
        <cbc:CountrySubentity>RegionB</cbc:CountrySubentity>
        <cac:Country><cbc:IdentificationCode>SE</cbc:IdentificationCode></cac:Country>
      </cac:PostalAddress>
      <cac:PartyLegalEntity><cbc:RegistrationName>THe Buyercompany</cbc:RegistrationName></cac:PartyLegalEntity>
      <cac:Contact>
        <cbc:Name>A3150bdn</cbc:Name>
        <cbc:Telephone>5121230</cbc:Telephone>
        <cbc:ElectronicMail>john@buyercompany.no</cbc:ElectronicMail>
      </cac:Contact>
    </cac:Party>
  </cac:AccountingCustomerParty>
  <cac:PaymentMeans>
    <cbc:PaymentMeansCode>30</cbc:PaymentMeansCode>
    <cac:PayeeFinancialAccount>
      <cbc:ID>SE1212341234123412</cbc:ID>
      <cac:FinancialInstitutionBranch><cbc:ID>SEXDABCD</cbc:ID></cac:FinancialInstitutionBranch>
    </cac:PayeeFinancialAccount>
  </cac:PaymentMeans>
  <cac:PaymentTerms><cbc:Note>Payment within 30 days</cbc:Note></cac:PaymentTerms>
  <cac:TaxTotal>
    <cbc:TaxAmount currencyID="SEK">0.00</cbc:TaxAmount>
    <cac:TaxSubtotal>
      <cbc:TaxableAmount currencyID="SEK">3200.00</cbc:TaxableAmount>
      <cbc:TaxAmount currencyID="SEK">0.00</cbc:TaxAmount>
      <cac:TaxCategory>
        <cbc:ID>O</cbc:ID>
        <cbc:TaxExemptionReason>Tax</cbc:TaxExemptionReason>
        <cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>
      </cac:TaxCategory>
    </cac:TaxSubtotal>
  </cac:TaxTotal>
  <cac:LegalMonetaryTotal>
    <cbc:LineExtensionAmount currencyID="SEK">3200.00</cbc:LineExtensionAmount>
    <cbc:TaxExclusiveAmount currencyID="SEK">3200.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="SEK">3200.00</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="SEK">3200.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
{lines}
</Invoice>
"""
LINE_7 = """  <cac:InvoiceLine>
    <cbc:ID>{id}</cbc:ID>
    <cbc:InvoicedQuantity unitCode="EA">1</cbc:InvoicedQuantity>
    <cbc:LineExtensionAmount currencyID="SEK">{amount}</cbc:LineExtensionAmount>
    <cac:OrderLineReference><cbc:LineID>1</cbc:LineID></cac:OrderLineReference>
    <cac:Item>
      <cbc:Description>{description}</cbc:Description>
      <cbc:Name>{name}</cbc:Name>
      <cac:SellersItemIdentification><cbc:ID>{item}</cbc:ID></cac:SellersItemIdentification>
      <cac:ClassifiedTaxCategory>
        <cbc:ID>O</cbc:ID>
        <cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>
      </cac:ClassifiedTaxCategory>
    </cac:Item>
    <cac:Price><cbc:PriceAmount currencyID="SEK">{amount}</cbc:PriceAmount></cac:Price>
  </cac:InvoiceLine>"""


def test_cen_example_7_not_subject_to_vat_read_from_another_writers_xml() -> None:
    lines = [
        LINE_7.format(
            id=1,
            amount="2500.00",
            description="Weight-based tax, vehicles &gt;3000 KGM",
            name="Road tax",
            item="RT3000",
        ),
        LINE_7.format(
            id=2, amount="700.00", description="Annual registration fee", name="Road Register fee", item="REG"
        ),
    ]
    xml = EXAMPLE_7.replace("{lines}", "\n".join(lines)).encode()
    assert fatal(validate(Syntax.UBL, xml)) == []  # as published: valid
    doc = read_document(parse(xml))
    assert doc == Document(
        type_code=INVOICE,
        number="INVOICE_test_7",
        issue_date=date(2013, 3, 11),
        notes=["Testscenario 7"],
        currency="SEK",
        period_start=date(2013, 1, 1),
        period_end=date(2013, 12, 31),
        purchase_order_reference="Order_9988_x",
        seller=Party(
            name="The Sellercompany Incorporated",
            trading_name="Civic Service Centre",
            identifier="5532331183",
            address=Address(["Main street 2, Building 4"], "Big city", "54321", country="SE"),
            contact_name="Anthon Larsen",
            contact_phone="4698989898",
            contact_email="Anthon@SellerCompany.se",
        ),
        buyer=Party(
            name="THe Buyercompany",
            address=Address(["Anystreet 8", "Back door"], "Anytown", "101", "RegionB", "SE"),
            contact_name="A3150bdn",
            contact_phone="5121230",
            contact_email="john@buyercompany.no",
        ),
        payment_means_code="30",
        payment_account="SE1212341234123412",
        payment_service_provider="SEXDABCD",
        payment_terms="Payment within 30 days",
        vat_breakdown=[VatBreakdown(D("3200.00"), D("0.00"), "O", None, "Tax")],
        tax_total=D("0.00"),
        line_total=D("3200.00"),
        tax_exclusive_total=D("3200.00"),
        grand_total=D("3200.00"),
        due_payable=D("3200.00"),
        lines=[
            Line("1", D("1"), "EA", D("2500.00"), D("2500.00"), "Road tax", "O", None, seller_item_id="RT3000"),
            Line("2", D("1"), "EA", D("700.00"), D("700.00"), "Road Register fee", "O", None, seller_item_id="REG"),
        ],
    )
    root = export_valid(doc)
    assert text(root, "cbc:CustomizationID") == [CUSTOMIZATION_ID]  # exported as Peppol BIS Billing 3.0
    assert text(root, "cac:InvoiceLine/cac:Item/cac:ClassifiedTaxCategory/cbc:Percent") == []  # O: no rate


def test_a_vat_total_in_the_accounting_currency_is_not_taken_for_the_document_total() -> None:
    """BT-111 is a second cac:TaxTotal in the VAT accounting currency (BT-6), without subtotals; the reader
    takes BT-110 from the one with the breakdown, wherever the other stands."""
    xml = EXAMPLE_7.replace("{lines}", LINE_7.format(id=1, amount="3200.00", description="d", name="n", item="i"))
    xml = xml.replace(
        "<cbc:DocumentCurrencyCode>SEK</cbc:DocumentCurrencyCode>",
        "<cbc:DocumentCurrencyCode>SEK</cbc:DocumentCurrencyCode><cbc:TaxCurrencyCode>EUR</cbc:TaxCurrencyCode>",
    ).replace(
        "<cac:TaxTotal>",
        '<cac:TaxTotal><cbc:TaxAmount currencyID="EUR">0.00</cbc:TaxAmount></cac:TaxTotal><cac:TaxTotal>',
        1,
    )
    assert fatal(validate(Syntax.UBL, xml.encode())) == []
    doc = read_document(parse(xml.encode()))
    assert doc.tax_total == D("0.00") and [b.category for b in doc.vat_breakdown] == ["O"]
