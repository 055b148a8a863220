"""Documents made from the field values of published examples (issue 17): the CEN EN 16931 CII example 5
("maximum content", DKK, line and document allowances and charges, prepaid half), the Factur-X EN16931
invoice (Lieferant GmbH / Kunden AG Mitte, two VAT rates, H87 units), and a credit note correcting it. The XML
is written here from those values (only the business terms the canonical model carries, plus the zero totals
the Factur-X example writes). Each is valid as given, imports into the canonical form without loss (fields
checked), is priced by the domain as an import is, and exports again valid with the same business terms."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from lxml import etree

from service.domain import lifecycle
from service.domain.errors import Violations
from service.domain.models import AllocationSource, Status, TaxCategory
from service.domain.totals import infer_modes
from service.einvoice import cii, semantic
from service.einvoice.document import Document
from service.einvoice.validation import Syntax, fatal, parser, validate
from tests.domain.builders import check
from tests.einvoice.generate import NOW

D = Decimal
_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"'
    ' xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100"'
    ' xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"'
    ' xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">'
    "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>"
    "<ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>"
    "</rsm:ExchangedDocumentContext>"
)


def _day(value: str) -> str:
    return f'<udt:DateTimeString format="102">{value}</udt:DateTimeString>'


def _tax(category: str, rate: str) -> str:
    return (
        f"<ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>{category}</ram:CategoryCode>"
        f"<ram:RateApplicablePercent>{rate}</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
    )


def _ac(charge: bool, percent: str, base: str, amount: str, code: str, reason: str = "", tax: str = "") -> str:
    return (
        f"<ram:SpecifiedTradeAllowanceCharge><ram:ChargeIndicator><udt:Indicator>{str(charge).lower()}"
        f"</udt:Indicator></ram:ChargeIndicator><ram:CalculationPercent>{percent}</ram:CalculationPercent>"
        f"<ram:BasisAmount>{base}</ram:BasisAmount><ram:ActualAmount>{amount}</ram:ActualAmount>"
        f"<ram:ReasonCode>{code}</ram:ReasonCode>{f'<ram:Reason>{reason}</ram:Reason>' if reason else ''}"
        f"{tax.replace('ApplicableTradeTax', 'CategoryTradeTax')}</ram:SpecifiedTradeAllowanceCharge>"
    )


def _line(
    n: str, name: str, price: str, quantity: str, unit: str, tax: str, total: str, sku: str = "", extra: str = ""
) -> str:
    product = f"<ram:SellerAssignedID>{sku}</ram:SellerAssignedID>" if sku else ""
    return (
        f"<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>{n}</ram:LineID>"
        f"</ram:AssociatedDocumentLineDocument><ram:SpecifiedTradeProduct>{product}<ram:Name>{name}</ram:Name>"
        "</ram:SpecifiedTradeProduct><ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice>"
        f"<ram:ChargeAmount>{price}</ram:ChargeAmount></ram:NetPriceProductTradePrice>"
        "</ram:SpecifiedLineTradeAgreement><ram:SpecifiedLineTradeDelivery>"
        f'<ram:BilledQuantity unitCode="{unit}">{quantity}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>'
        f"<ram:SpecifiedLineTradeSettlement>{tax}{extra}<ram:SpecifiedTradeSettlementLineMonetarySummation>"
        f"<ram:LineTotalAmount>{total}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>"
        "</ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>"
    )


def _address(post: str, lines: list[str], city: str, country: str, subdivision: str = "") -> str:
    names = ["LineOne", "LineTwo", "LineThree"]
    body = "".join(f"<ram:{names[i]}>{text}</ram:{names[i]}>" for i, text in enumerate(lines))
    sub = f"<ram:CountrySubDivisionName>{subdivision}</ram:CountrySubDivisionName>" if subdivision else ""
    return (
        f"<ram:PostalTradeAddress><ram:PostcodeCode>{post}</ram:PostcodeCode>{body}<ram:CityName>{city}"
        f"</ram:CityName><ram:CountryID>{country}</ram:CountryID>{sub}</ram:PostalTradeAddress>"
    )


def _breakdown(tax: str, base: str, category: str, rate: str) -> str:
    return (
        f"<ram:ApplicableTradeTax><ram:CalculatedAmount>{tax}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>"
        f"<ram:BasisAmount>{base}</ram:BasisAmount><ram:CategoryCode>{category}</ram:CategoryCode>"
        f"<ram:RateApplicablePercent>{rate}</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
    )


_PERIOD = (
    "<ram:BillingSpecifiedPeriod><ram:StartDateTime>" + _day("20130310") + "</ram:StartDateTime>"
    "<ram:EndDateTime>" + _day("20130310") + "</ram:EndDateTime></ram:BillingSpecifiedPeriod>"
)

# CEN EN 16931 CII example 5 ("maximum content"), its carried terms. Its creditor account is empty in the
# example (it pays half by direct debit, not carried): a valid Danish IBAN stands in.
EXAMPLE_5 = (
    _HEAD
    + "<rsm:ExchangedDocument><ram:ID>TOSL110</ram:ID><ram:TypeCode>380</ram:TypeCode><ram:IssueDateTime>"
    + _day("20130410")
    + "</ram:IssueDateTime><ram:IncludedNote><ram:Content>Ordered through our website</ram:Content>"
    "</ram:IncludedNote></rsm:ExchangedDocument><rsm:SupplyChainTradeTransaction>"
    + _line(
        "1",
        "Printing paper",
        "1",
        "1000",
        "C62",
        _tax("S", "25"),
        "1000",
        "JB007",
        _PERIOD + _ac(False, "10", "1000", "100", "95") + _ac(True, "10", "1000", "100", "ABL", "Packaging"),
    )
    + _line("2", "Parker Pen", "5", "100", "C62", _tax("S", "25"), "500", "JB008", _PERIOD)
    + _line("3", "American Cookies", "5", "500", "C62", _tax("S", "12"), "2500", "JB009")
    + "<ram:ApplicableHeaderTradeAgreement><ram:BuyerReference>qwerty</ram:BuyerReference>"
    "<ram:SellerTradeParty><ram:Name>SellerCompany</ram:Name><ram:SpecifiedLegalOrganization>"
    "<ram:ID>NL16356706</ram:ID><ram:TradingBusinessName>SelCo</ram:TradingBusinessName>"
    "</ram:SpecifiedLegalOrganization><ram:DefinedTradeContact><ram:PersonName>Anthon Larsen</ram:PersonName>"
    "<ram:TelephoneUniversalCommunication><ram:CompleteNumber>+3198989898</ram:CompleteNumber>"
    "</ram:TelephoneUniversalCommunication><ram:EmailURIUniversalCommunication><ram:URIID>Anthon@Selco.nl"
    "</ram:URIID></ram:EmailURIUniversalCommunication></ram:DefinedTradeContact>"
    + _address("54321", ["Hoofdstraat 4", "Om de hoek"], "Grootstad", "NL", "Overijssel")
    + '<ram:URIUniversalCommunication><ram:URIID schemeID="EM">Anthon@Selco.nl</ram:URIID>'
    '</ram:URIUniversalCommunication><ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">NL16356706</ram:ID>'
    '</ram:SpecifiedTaxRegistration><ram:SpecifiedTaxRegistration><ram:ID schemeID="FC">NL16356706</ram:ID>'
    "</ram:SpecifiedTaxRegistration></ram:SellerTradeParty><ram:BuyerTradeParty>"
    "<ram:Name>Buyercompany ltd</ram:Name><ram:SpecifiedLegalOrganization><ram:ID>DK16356607</ram:ID>"
    "<ram:TradingBusinessName>Buyco</ram:TradingBusinessName></ram:SpecifiedLegalOrganization>"
    "<ram:DefinedTradeContact><ram:PersonName>John Hansen</ram:PersonName><ram:TelephoneUniversalCommunication>"
    "<ram:CompleteNumber>+4598989898</ram:CompleteNumber></ram:TelephoneUniversalCommunication>"
    "<ram:EmailURIUniversalCommunication><ram:URIID>john.hansen@buyercompany.dk</ram:URIID>"
    "</ram:EmailURIUniversalCommunication></ram:DefinedTradeContact>"
    + _address("101", ["Anystreet, Building 1", "5th floor"], "Anytown", "DK", "Jutland")
    + '<ram:URIUniversalCommunication><ram:URIID schemeID="EM">john.hansen@buyercompany.dk</ram:URIID>'
    '</ram:URIUniversalCommunication><ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">DK16356607</ram:ID>'
    "</ram:SpecifiedTaxRegistration></ram:BuyerTradeParty><ram:SellerOrderReferencedDocument>"
    "<ram:IssuerAssignedID>123</ram:IssuerAssignedID></ram:SellerOrderReferencedDocument>"
    "<ram:BuyerOrderReferencedDocument><ram:IssuerAssignedID>PO4711</ram:IssuerAssignedID>"
    "</ram:BuyerOrderReferencedDocument></ram:ApplicableHeaderTradeAgreement>"
    "<ram:ApplicableHeaderTradeDelivery><ram:ShipToTradeParty><ram:Name>Logistic service Ltd</ram:Name>"
    + _address("9000", ["Deliverystreet", "Gate 15"], "Deliverycity", "DK", "Jutland")
    + "</ram:ShipToTradeParty><ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime>"
    + _day("20130415")
    + "</ram:OccurrenceDateTime></ram:ActualDeliverySupplyChainEvent></ram:ApplicableHeaderTradeDelivery>"
    "<ram:ApplicableHeaderTradeSettlement><ram:PaymentReference>Payref1</ram:PaymentReference>"
    "<ram:InvoiceCurrencyCode>DKK</ram:InvoiceCurrencyCode><ram:SpecifiedTradeSettlementPaymentMeans>"
    "<ram:TypeCode>58</ram:TypeCode><ram:PayeePartyCreditorFinancialAccount><ram:IBANID>DK5000400440116243"
    "</ram:IBANID></ram:PayeePartyCreditorFinancialAccount></ram:SpecifiedTradeSettlementPaymentMeans>"
    + _breakdown("375", "1500", "S", "25")
    + _breakdown("300", "2500", "S", "12")
    + "<ram:BillingSpecifiedPeriod><ram:StartDateTime>"
    + _day("20130310")
    + "</ram:StartDateTime><ram:EndDateTime>"
    + _day("20130410")
    + "</ram:EndDateTime></ram:BillingSpecifiedPeriod>"
    + _ac(False, "10", "1500", "150", "95", "Loyal customer", _tax("S", "25"))
    + _ac(True, "10", "1500", "150", "ABL", "Packaging", _tax("S", "25"))
    + "<ram:SpecifiedTradePaymentTerms><ram:Description>50% prepaid, 50% within one month</ram:Description>"
    "<ram:DueDateDateTime>" + _day("20130510") + "</ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>"
    "<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>4000.00</ram:LineTotalAmount>"
    "<ram:ChargeTotalAmount>150</ram:ChargeTotalAmount><ram:AllowanceTotalAmount>150</ram:AllowanceTotalAmount>"
    '<ram:TaxBasisTotalAmount>4000</ram:TaxBasisTotalAmount><ram:TaxTotalAmount currencyID="DKK">675.00'
    "</ram:TaxTotalAmount><ram:GrandTotalAmount>4675</ram:GrandTotalAmount>"
    "<ram:TotalPrepaidAmount>2337.5</ram:TotalPrepaidAmount><ram:DuePayableAmount>2337.5</ram:DuePayableAmount>"
    "</ram:SpecifiedTradeSettlementHeaderMonetarySummation></ram:ApplicableHeaderTradeSettlement>"
    "</rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>"
)

_LIEFERANT = (
    "<ram:SellerTradeParty><ram:Name>Lieferant GmbH</ram:Name>"
    + _address("80333", ["Lieferantenstraße 20"], "München", "DE")
    + '<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">DE123456789</ram:ID></ram:SpecifiedTaxRegistration>'
    '<ram:SpecifiedTaxRegistration><ram:ID schemeID="FC">201/113/40209</ram:ID></ram:SpecifiedTaxRegistration>'
    "</ram:SellerTradeParty><ram:BuyerTradeParty><ram:ID>GE2020211</ram:ID><ram:Name>Kunden AG Mitte</ram:Name>"
    "<ram:DefinedTradeContact><ram:PersonName>Hans Muster</ram:PersonName></ram:DefinedTradeContact>"
    + _address("69876", ["Kundenstraße 15"], "Frankfurt", "DE")
    + "</ram:BuyerTradeParty>"
)
_DELIVERED = (
    "<ram:ApplicableHeaderTradeDelivery><ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime>"
    + _day("20180305")
    + "</ram:OccurrenceDateTime></ram:ActualDeliverySupplyChainEvent></ram:ApplicableHeaderTradeDelivery>"
)
_TERMS = (
    "<ram:SpecifiedTradePaymentTerms><ram:Description>Zahlbar innerhalb 30 Tagen netto bis 04.04.2018, 3% Skonto"
    " innerhalb 10 Tagen bis 15.03.2018</ram:Description></ram:SpecifiedTradePaymentTerms>"
)

# The Factur-X EN16931 example invoice (Lieferant GmbH to Kunden AG Mitte), its carried terms.
FACTURX_EN16931 = (
    _HEAD
    + "<rsm:ExchangedDocument><ram:ID>471102</ram:ID><ram:TypeCode>380</ram:TypeCode><ram:IssueDateTime>"
    + _day("20180305")
    + "</ram:IssueDateTime><ram:IncludedNote><ram:Content>Rechnung gemäß Bestellung vom 01.03.2018.</ram:Content>"
    "</ram:IncludedNote><ram:IncludedNote><ram:Content>Lieferant GmbH, Lieferantenstraße 20, 80333 München, "
    "Geschäftsführer: Hans Muster, Handelsregisternummer: H A 123</ram:Content></ram:IncludedNote>"
    "</rsm:ExchangedDocument><rsm:SupplyChainTradeTransaction>"
    + _line("1", "Trennblätter A4", "9.9000", "20.0000", "H87", _tax("S", "19.00"), "198.00", "TB100A4")
    + _line("2", "Joghurt Banane", "5.5000", "50.0000", "H87", _tax("S", "7.00"), "275.00", "ARNR2")
    + "<ram:ApplicableHeaderTradeAgreement>"
    + _LIEFERANT
    + "</ram:ApplicableHeaderTradeAgreement>"
    + _DELIVERED
    + "<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>"
    + _breakdown("19.25", "275.00", "S", "7.00")
    + _breakdown("37.62", "198.00", "S", "19.00")
    + _TERMS
    + "<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>473.00</ram:LineTotalAmount>"
    "<ram:ChargeTotalAmount>0.00</ram:ChargeTotalAmount><ram:AllowanceTotalAmount>0.00</ram:AllowanceTotalAmount>"
    '<ram:TaxBasisTotalAmount>473.00</ram:TaxBasisTotalAmount><ram:TaxTotalAmount currencyID="EUR">56.87'
    "</ram:TaxTotalAmount><ram:GrandTotalAmount>529.87</ram:GrandTotalAmount>"
    "<ram:TotalPrepaidAmount>0.00</ram:TotalPrepaidAmount><ram:DuePayableAmount>529.87</ram:DuePayableAmount>"
    "</ram:SpecifiedTradeSettlementHeaderMonetarySummation></ram:ApplicableHeaderTradeSettlement>"
    "</rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>"
)

# A credit note (381) of that invoice: ten of its yoghurts, same parties, referring to 471102 of 5 March 2018.
CREDIT_NOTE = (
    _HEAD
    + "<rsm:ExchangedDocument><ram:ID>471102-G1</ram:ID><ram:TypeCode>381</ram:TypeCode><ram:IssueDateTime>"
    + _day("20180312")
    + "</ram:IssueDateTime><ram:IncludedNote><ram:Content>10 Becher Joghurt Banane beschädigt</ram:Content>"
    "</ram:IncludedNote></rsm:ExchangedDocument><rsm:SupplyChainTradeTransaction>"
    + _line("1", "Joghurt Banane", "5.50", "10", "C62", _tax("S", "7"), "55.00")
    + "<ram:ApplicableHeaderTradeAgreement>"
    + _LIEFERANT
    + "</ram:ApplicableHeaderTradeAgreement>"
    + _DELIVERED
    + "<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>"
    + _breakdown("3.85", "55.00", "S", "7")
    + _TERMS
    + "<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>55.00</ram:LineTotalAmount>"
    '<ram:TaxBasisTotalAmount>55.00</ram:TaxBasisTotalAmount><ram:TaxTotalAmount currencyID="EUR">3.85'
    "</ram:TaxTotalAmount><ram:GrandTotalAmount>58.85</ram:GrandTotalAmount>"
    "<ram:DuePayableAmount>58.85</ram:DuePayableAmount></ram:SpecifiedTradeSettlementHeaderMonetarySummation>"
    "<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>471102</ram:IssuerAssignedID>"
    '<ram:FormattedIssueDateTime><qdt:DateTimeString format="102">20180305</qdt:DateTimeString>'
    "</ram:FormattedIssueDateTime></ram:InvoiceReferencedDocument></ram:ApplicableHeaderTradeSettlement>"
    "</rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>"
)


def _valid(xml: bytes) -> Document:
    """The document read from `xml`, which the validator finds no fatal rule in."""
    findings = fatal(validate(Syntax.CII, xml))
    assert findings == [], [(f.rule_id, f.message) for f in findings]
    return cii.read_document(etree.fromstring(xml, parser()))


def _terms(doc: Document) -> Document:
    """The business terms as a set: the VAT breakdown in any order, optional totals written as 0.00 (as the
    Factur-X example does) the same as absent ones."""
    rows = sorted(doc.vat_breakdown, key=lambda b: (b.category, b.rate is None, b.rate or 0))
    return replace(
        doc,
        vat_breakdown=rows,
        allowance_total=doc.allowance_total or None,
        charge_total=doc.charge_total or None,
        paid_amount=doc.paid_amount or None,
        rounding_amount=doc.rounding_amount or None,
    )


def _reexported(doc: Document) -> Document:
    """`doc` imported as the service imports, priced, and exported again (validated)."""
    imported = semantic.to_canonical(doc).invoice
    infer_modes(imported)
    lifecycle.prepare_new(imported, Violations(), NOW, imported=True)
    return _valid(cii.document_xml(semantic.from_invoice(imported)))


def test_en16931_example_5_imports_without_loss() -> None:
    doc = _valid(EXAMPLE_5.encode())
    inv = semantic.to_canonical(doc).invoice
    check(
        inv,
        {
            "invoice_number": "TOSL110",
            "issue_date": datetime(2013, 4, 10, tzinfo=UTC),
            "due_date": datetime(2013, 5, 10, tzinfo=UTC),
            "currency": "DKK",
            "note": "Ordered through our website",
            "buyer_reference": "qwerty",
            "purchase_order_reference": "PO4711",
            "sales_order_refs": [{"id": "123"}],
            "period_end": datetime(2013, 4, 10, tzinfo=UTC),
            "seller.name": "SellerCompany",
            "seller.trading_name": "SelCo",
            "seller.legal_registration_id": "NL16356706",
            "seller.address.address_lines": ["Hoofdstraat 4", "Om de hoek"],
            "seller.address.country_subdivision": "Overijssel",
            "seller.contact.email": "Anthon@Selco.nl",
            "buyer.tax_registrations[0].id": "DK16356607",
            "buyer.contact.phone": "+4598989898",
            "delivery.name": "Logistic service Ltd",
            "delivery.delivery_date": date(2013, 4, 15),
            "delivery.address.city": "Deliverycity",
            "payment_terms.text": "50% prepaid, 50% within one month",
            "payment_means.iban": "DK5000400440116243",
            "payment_means.payment_reference": "Payref1",
            "lines[0].sku": "JB007",
            "lines[0].discount_amount": "100",
            "lines[0].discount_percentage": D(10),
            "lines[0].charge_amount": "100",
            "lines[0].charge_reason": "Packaging",
            "lines[0].charge_reason_code": "ABL",
            "lines[0].service_start_date": date(2013, 3, 10),
            "lines[2].taxation_items[0].tax_rate": D(12),
            "allowance_charges[0].reason": "Loyal customer",
            "allowance_charges[0].base_amount": "1500",
            "allowance_charges[1].charge": True,
            "total_amount": "4675",
            "amount_due": "2337.5",
            "status": Status.PARTIALLY_PAID,
        },
    )
    assert [(a.applied_amount, a.source) for a in inv.allocations] == [(D("2337.5"), AllocationSource.IMPORTED)]
    assert inv.seller is not None and [t.scheme for t in inv.seller.tax_registrations] == ["VAT", "FC"]
    assert _reexported(doc) == doc


def test_facturx_en16931_example_imports_without_loss() -> None:
    doc = _valid(FACTURX_EN16931.encode())
    inbound = semantic.to_canonical(doc)
    check(
        inbound.invoice,
        {
            "invoice_number": "471102",
            "customer_id": "GE2020211",
            "customer_name": "Kunden AG Mitte",
            "buyer.contact.name": "Hans Muster",
            "seller.tax_registrations[1].id": "201/113/40209",
            "delivery.delivery_date": date(2018, 3, 5),
            "lines[0].unit_of_measure": "H87",
            "lines[1].quantity": D(50),
            "lines[1].unit_amount": D("5.5"),
            "lines[1].taxation_items[0].tax_category": TaxCategory.S,
            "total_tax_amount": "56.87",
            "amount_due": "529.87",
            "status": Status.SUBMITTED,
        },
    )
    assert len(inbound.notes) == 2
    again = _reexported(doc)
    assert again.notes == ["\n".join(doc.notes)]  # the canonical note is one text: the notes joined
    assert _terms(replace(again, notes=doc.notes)) == _terms(doc)


def test_credit_note_example_imports_without_loss() -> None:
    doc = _valid(CREDIT_NOTE.encode())
    inbound = semantic.to_canonical(doc)
    note = inbound.credit_note
    assert note is not None
    check(
        note,
        {
            "credit_note_number": "471102-G1",
            "invoice_number": "471102",
            "invoice_issue_date": datetime(2018, 3, 5, tzinfo=UTC),
            "issue_time": datetime(2018, 3, 12, tzinfo=UTC),
            "reason": "10 Becher Joghurt Banane beschädigt",
            "customer_id": "GE2020211",
            "sub_total": "55.00",
            "total_tax_amount": "3.85",
            "total_amount": "58.85",
            "lines[0].quantity": D(10),
            "lines[0].tax_rate": D(7),
            "lines[0].tax_amount": "3.85",
            "status": "DRAFT",
        },
    )
    again = _valid(cii.document_xml(semantic.from_credit_note(note, inbound.invoice)))
    assert again == doc
